
/*
 * Copyright (C) ngx_http_affiliate_module authors
 *
 * Geolocation: MaxMind DB (libmaxminddb) lookups of the client address,
 * the $affiliate_country, $affiliate_region, $affiliate_city and
 * $affiliate_asn variables, and the per worker auto_reload of databases.
 * See docs/geo.md.
 */


#include "ngx_http_affiliate_module.h"

#include <maxminddb.h>


/* the string fields first, then the number */
#define NGX_HTTP_AFFILIATE_GEO_COUNTRY   0
#define NGX_HTTP_AFFILIATE_GEO_REGION    1
#define NGX_HTTP_AFFILIATE_GEO_CITY      2
#define NGX_HTTP_AFFILIATE_GEO_ASN       3
#define NGX_HTTP_AFFILIATE_GEO_NFIELDS   4

/* data paths tried a field and database: the GeoIP2 one, the flat one */
#define NGX_HTTP_AFFILIATE_GEO_NPATHS    2

/* components of an explicit data path */
#define NGX_HTTP_AFFILIATE_GEO_DEPTH     16

/*
 * A worker keeps the fields of the database records it read last, by the
 * record's offset: MMDB_aget_value() walks the record's maps again for
 * every path, the tree lookup that finds the offset costs much less.
 */
#define NGX_HTTP_AFFILIATE_GEO_CACHE     4096       /* entries, a power of 2 */
#define NGX_HTTP_AFFILIATE_GEO_CACHE_STR 46         /* bytes a string */


typedef struct {
    uint32_t                         key;         /* offset + 1, 0: free */
    uint32_t                         asn;
    u_char                           len[NGX_HTTP_AFFILIATE_GEO_ASN];
    u_char                           str[NGX_HTTP_AFFILIATE_GEO_ASN]
                                        [NGX_HTTP_AFFILIATE_GEO_CACHE_STR];
} ngx_http_affiliate_geo_cached_t;


/* a NULL-terminated MMDB_aget_value() path */
typedef const char *const  *ngx_http_affiliate_geo_path_t;


typedef struct {
    MMDB_s                          *mmdb;        /* ngx_alloc()'ed */
    ngx_str_t                        file;        /* null-terminated */

    /* per field, the paths to try, NULL-terminated */
    ngx_http_affiliate_geo_path_t    paths[NGX_HTTP_AFFILIATE_GEO_NFIELDS]
                                          [NGX_HTTP_AFFILIATE_GEO_NPATHS + 1];

    /* auto_reload: the identity of the file loaded (or tried last) */
    ngx_msec_t                       auto_reload;
    ngx_file_uniq_t                  uniq;
    time_t                           mtime;
    off_t                            size;
    unsigned                         stat_failed:1;

    ngx_event_t                      event;       /* per worker */

    /* per worker; emptied whenever mmdb changes */
    ngx_http_affiliate_geo_cached_t *cache;
} ngx_http_affiliate_geo_db_t;


typedef struct {
    ngx_array_t                     *dbs;  /* ngx_http_affiliate_geo_db_t * */
    ngx_int_t                        source;      /* variable index */
} ngx_http_affiliate_geo_main_conf_t;


static ngx_int_t ngx_http_affiliate_geo_addr(ngx_http_request_t *r,
    ngx_http_affiliate_geo_main_conf_t *gmcf, ngx_sockaddr_t *addr,
    struct sockaddr **sap);
static void ngx_http_affiliate_geo_entry(ngx_http_request_t *r,
    ngx_http_affiliate_geo_db_t *db, MMDB_entry_s *entry, ngx_str_t *s,
    uint32_t *asn);
static ngx_int_t ngx_http_affiliate_geo_string(ngx_http_request_t *r,
    ngx_http_affiliate_geo_db_t *db, MMDB_entry_s *entry, ngx_uint_t field,
    ngx_str_t *s);
static uint32_t ngx_http_affiliate_geo_number(ngx_http_request_t *r,
    ngx_http_affiliate_geo_db_t *db, MMDB_entry_s *entry);
static ngx_int_t ngx_http_affiliate_geo_value(ngx_http_request_t *r,
    ngx_http_affiliate_geo_db_t *db, MMDB_entry_s *entry,
    ngx_http_affiliate_geo_path_t path, MMDB_entry_data_s *data);

static ngx_int_t ngx_http_affiliate_geo_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_affiliate_geo_asn_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_http_affiliate_geo_t *ngx_http_affiliate_geo_get(
    ngx_http_request_t *r);

static void ngx_http_affiliate_geo_reload_handler(ngx_event_t *ev);
static void ngx_http_affiliate_geo_reload(ngx_http_affiliate_geo_db_t *db,
    ngx_log_t *log);
static void ngx_http_affiliate_geo_cleanup(void *data);

static ngx_int_t ngx_http_affiliate_geo_add_variables(ngx_conf_t *cf);
static void *ngx_http_affiliate_geo_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_affiliate_geo_init_main_conf(ngx_conf_t *cf,
    void *conf);
static char *ngx_http_affiliate_geoip(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_affiliate_geoip_source(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_affiliate_geo_path(ngx_conf_t *cf, ngx_str_t *value,
    ngx_http_affiliate_geo_path_t *path);
static ngx_int_t ngx_http_affiliate_geo_init_process(ngx_cycle_t *cycle);


static ngx_command_t  ngx_http_affiliate_geo_commands[] = {

    { ngx_string("affiliate_geoip"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_affiliate_geoip,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("affiliate_geoip_source"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_affiliate_geoip_source,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_affiliate_geo_module_ctx = {
    ngx_http_affiliate_geo_add_variables,  /* preconfiguration */
    NULL,                                  /* postconfiguration */

    ngx_http_affiliate_geo_create_main_conf, /* create main configuration */
    ngx_http_affiliate_geo_init_main_conf, /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    NULL,                                  /* create location configuration */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_http_affiliate_geo_module = {
    NGX_MODULE_V1,
    &ngx_http_affiliate_geo_module_ctx,    /* module context */
    ngx_http_affiliate_geo_commands,       /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_affiliate_geo_init_process,   /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_http_variable_t  ngx_http_affiliate_geo_vars[] = {

    { ngx_string("affiliate_country"), NULL,
      ngx_http_affiliate_geo_variable,
      offsetof(ngx_http_affiliate_geo_t, country),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("affiliate_region"), NULL,
      ngx_http_affiliate_geo_variable,
      offsetof(ngx_http_affiliate_geo_t, region),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("affiliate_city"), NULL,
      ngx_http_affiliate_geo_variable,
      offsetof(ngx_http_affiliate_geo_t, city),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("affiliate_asn"), NULL,
      ngx_http_affiliate_geo_asn_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


static ngx_str_t  ngx_http_affiliate_geo_fields[] = {
    ngx_string("country"),
    ngx_string("region"),
    ngx_string("city"),
    ngx_string("asn")
};


/* MaxMind GeoIP2 / GeoLite2 */
static const char *const  ngx_http_affiliate_geo_geoip2_country[] =
    { "country", "iso_code", NULL };
static const char *const  ngx_http_affiliate_geo_geoip2_region[] =
    { "subdivisions", "0", "names", "en", NULL };
static const char *const  ngx_http_affiliate_geo_geoip2_city[] =
    { "city", "names", "en", NULL };

/* both schemas, GeoLite2-ASN and the ip-location-db ASN databases */
static const char *const  ngx_http_affiliate_geo_asn[] =
    { "autonomous_system_number", NULL };

/* the flat ip-location-db schema */
static const char *const  ngx_http_affiliate_geo_flat_country[] =
    { "country_code", NULL };
static const char *const  ngx_http_affiliate_geo_flat_region[] =
    { "state1", NULL };
static const char *const  ngx_http_affiliate_geo_flat_city[] =
    { "city", NULL };


static ngx_http_affiliate_geo_path_t
    ngx_http_affiliate_geo_default_paths[NGX_HTTP_AFFILIATE_GEO_NFIELDS]
                                        [NGX_HTTP_AFFILIATE_GEO_NPATHS + 1] =
{
    { ngx_http_affiliate_geo_geoip2_country,
      ngx_http_affiliate_geo_flat_country, NULL },
    { ngx_http_affiliate_geo_geoip2_region,
      ngx_http_affiliate_geo_flat_region, NULL },
    { ngx_http_affiliate_geo_geoip2_city,
      ngx_http_affiliate_geo_flat_city, NULL },
    { ngx_http_affiliate_geo_asn, NULL, NULL }
};


ngx_int_t
ngx_http_affiliate_geo_lookup(ngx_http_request_t *r,
    ngx_http_affiliate_geo_t *geo)
{
    int                                  rc;
    size_t                               len;
    u_char                              *p;
    uint32_t                             asn, n;
    ngx_str_t                            found[3];  /* the strings */
    ngx_str_t                            s[3];
    ngx_uint_t                           i, f, want;
    ngx_sockaddr_t                       addr;
    struct sockaddr                     *sa;
    MMDB_lookup_result_s                 res;
    ngx_http_affiliate_geo_db_t        **dbp, *db;
    ngx_http_affiliate_geo_main_conf_t  *gmcf;

    ngx_str_null(&geo->country);
    ngx_str_null(&geo->region);
    ngx_str_null(&geo->city);
    geo->asn = 0;

    gmcf = ngx_http_get_module_main_conf(r, ngx_http_affiliate_geo_module);

    if (gmcf == NULL || gmcf->dbs == NULL) {
        return NGX_DECLINED;
    }

    if (ngx_http_affiliate_geo_addr(r, gmcf, &addr, &sa) != NGX_OK) {
        return NGX_ABORT;
    }

    for (f = 0; f < NGX_HTTP_AFFILIATE_GEO_ASN; f++) {
        ngx_str_null(&found[f]);
    }

    asn = 0;
    want = (1 << NGX_HTTP_AFFILIATE_GEO_NFIELDS) - 1;

    dbp = gmcf->dbs->elts;

    for (i = 0; i < gmcf->dbs->nelts && want; i++) {
        db = dbp[i];

        if (sa->sa_family != AF_INET && db->mmdb->metadata.ip_version == 4) {
            continue;
        }

        res = MMDB_lookup_sockaddr(db->mmdb, sa, &rc);

        if (rc != MMDB_SUCCESS) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "affiliate_geoip: lookup in \"%V\" failed: %s",
                          &db->file, MMDB_strerror(rc));
            continue;
        }

        if (!res.found_entry) {
            continue;
        }

        ngx_http_affiliate_geo_entry(r, db, &res.entry, s, &n);

        for (f = 0; f < NGX_HTTP_AFFILIATE_GEO_ASN; f++) {
            if ((want & (1 << f)) && s[f].len) {
                found[f] = s[f];
                want &= ~(1 << f);
            }
        }

        if ((want & (1 << NGX_HTTP_AFFILIATE_GEO_ASN)) && n) {
            asn = n;
            want &= ~(1 << NGX_HTTP_AFFILIATE_GEO_ASN);
        }
    }

    if (want == (1 << NGX_HTTP_AFFILIATE_GEO_NFIELDS) - 1) {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "affiliate geo: not found");
        return NGX_ABORT;
    }

    geo->asn = asn;

    /*
     * the strings point into the mapped databases, which auto_reload may
     * unmap before the request ends, or into the worker's cache, which the
     * next lookup may overwrite: one copy for all of them
     */

    len = found[NGX_HTTP_AFFILIATE_GEO_COUNTRY].len
          + found[NGX_HTTP_AFFILIATE_GEO_REGION].len
          + found[NGX_HTTP_AFFILIATE_GEO_CITY].len;

    if (len) {
        p = ngx_pnalloc(r->pool, len);
        if (p == NULL) {
            return geo->asn ? NGX_OK : NGX_ABORT;
        }

        /* an absent field has a NULL data: memcpy() from NULL is UB */

        geo->country.data = p;
        geo->country.len = found[NGX_HTTP_AFFILIATE_GEO_COUNTRY].len;

        if (geo->country.len) {
            p = ngx_cpymem(p, found[NGX_HTTP_AFFILIATE_GEO_COUNTRY].data,
                           geo->country.len);
        }

        geo->region.data = p;
        geo->region.len = found[NGX_HTTP_AFFILIATE_GEO_REGION].len;

        if (geo->region.len) {
            p = ngx_cpymem(p, found[NGX_HTTP_AFFILIATE_GEO_REGION].data,
                           geo->region.len);
        }

        geo->city.data = p;
        geo->city.len = found[NGX_HTTP_AFFILIATE_GEO_CITY].len;

        if (geo->city.len) {
            ngx_memcpy(p, found[NGX_HTTP_AFFILIATE_GEO_CITY].data,
                       geo->city.len);
        }
    }

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "affiliate geo: \"%V\" \"%V\" \"%V\" %uD",
                   &geo->country, &geo->region, &geo->city, geo->asn);

    return NGX_OK;
}


static ngx_int_t
ngx_http_affiliate_geo_addr(ngx_http_request_t *r,
    ngx_http_affiliate_geo_main_conf_t *gmcf, ngx_sockaddr_t *addr,
    struct sockaddr **sap)
{
    u_char                     *p, *last;
    in_addr_t                   inaddr;
    struct sockaddr            *sa;
    ngx_http_variable_value_t  *vv;
#if (NGX_HAVE_INET6)
    u_char                     *a;
    struct sockaddr_in6        *sin6;
#endif

    if (gmcf->source == NGX_CONF_UNSET) {
        sa = r->connection->sockaddr;

    } else {
        vv = ngx_http_get_indexed_variable(r, gmcf->source);

        if (vv == NULL || vv->not_found || vv->len == 0) {
            return NGX_DECLINED;
        }

        p = vv->data;
        last = p + vv->len;

        while (p < last && (*p == ' ' || *p == '\t')) {
            p++;
        }

        while (last > p && (last[-1] == ' ' || last[-1] == '\t')) {
            last--;
        }

        sa = &addr->sockaddr;

        inaddr = ngx_inet_addr(p, last - p);

        if (inaddr != INADDR_NONE) {
            ngx_memzero(&addr->sockaddr_in, sizeof(struct sockaddr_in));
            addr->sockaddr_in.sin_family = AF_INET;
            addr->sockaddr_in.sin_addr.s_addr = inaddr;

#if (NGX_HAVE_INET6)
        } else if (ngx_inet6_addr(p, last - p,
                                  addr->sockaddr_in6.sin6_addr.s6_addr)
                   == NGX_OK)
        {
            addr->sockaddr_in6.sin6_family = AF_INET6;
            addr->sockaddr_in6.sin6_port = 0;
            addr->sockaddr_in6.sin6_flowinfo = 0;
            addr->sockaddr_in6.sin6_scope_id = 0;
#endif

        } else {
            ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "affiliate geo: invalid source address \"%v\"",
                           vv);
            return NGX_DECLINED;
        }
    }

    switch (sa->sa_family) {

#if (NGX_HAVE_INET6)
    case AF_INET6:
        sin6 = (struct sockaddr_in6 *) sa;

        if (!IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
            break;
        }

        /* ::ffff:a.b.c.d, as a.b.c.d: it works in IPv4-only databases */

        a = &sin6->sin6_addr.s6_addr[12];

        inaddr = (in_addr_t) a[0] << 24 | a[1] << 16 | a[2] << 8 | a[3];

        ngx_memzero(&addr->sockaddr_in, sizeof(struct sockaddr_in));
        addr->sockaddr_in.sin_family = AF_INET;
        addr->sockaddr_in.sin_addr.s_addr = htonl(inaddr);

        sa = &addr->sockaddr;
        break;
#endif

    case AF_INET:
        break;

    default: /* unix domain sockets */
        return NGX_DECLINED;
    }

    *sap = sa;

    return NGX_OK;
}


/*
 * The string fields (length 0: not found) and the ASN (0: not found) of
 * a database record, from the worker's cache or read and then cached.
 */

static void
ngx_http_affiliate_geo_entry(ngx_http_request_t *r,
    ngx_http_affiliate_geo_db_t *db, MMDB_entry_s *entry, ngx_str_t *s,
    uint32_t *asn)
{
    ngx_uint_t                        f, i;
    ngx_http_affiliate_geo_cached_t  *c;

    c = NULL;

    if (db->cache) {
        i = ((entry->offset * 2654435761u) >> 12)
            & (NGX_HTTP_AFFILIATE_GEO_CACHE - 1);
        c = &db->cache[i];

        if (c->key == entry->offset + 1) {
            for (f = 0; f < NGX_HTTP_AFFILIATE_GEO_ASN; f++) {
                s[f].len = c->len[f];
                s[f].data = c->str[f];
            }

            *asn = c->asn;
            return;
        }
    }

    for (f = 0; f < NGX_HTTP_AFFILIATE_GEO_ASN; f++) {
        if (ngx_http_affiliate_geo_string(r, db, entry, f, &s[f]) != NGX_OK) {
            s[f].len = 0;
        }
    }

    *asn = ngx_http_affiliate_geo_number(r, db, entry);

    if (c == NULL) {
        return;
    }

    /* a record with a longer string is read every time */

    for (f = 0; f < NGX_HTTP_AFFILIATE_GEO_ASN; f++) {
        if (s[f].len > NGX_HTTP_AFFILIATE_GEO_CACHE_STR) {
            return;
        }
    }

    for (f = 0; f < NGX_HTTP_AFFILIATE_GEO_ASN; f++) {
        c->len[f] = (u_char) s[f].len;
        ngx_memcpy(c->str[f], s[f].data, s[f].len);
    }

    c->asn = *asn;
    c->key = entry->offset + 1;
}


static ngx_int_t
ngx_http_affiliate_geo_string(ngx_http_request_t *r,
    ngx_http_affiliate_geo_db_t *db, MMDB_entry_s *entry, ngx_uint_t field,
    ngx_str_t *s)
{
    ngx_uint_t          n;
    MMDB_entry_data_s   data;

    for (n = 0; db->paths[field][n]; n++) {

        if (ngx_http_affiliate_geo_value(r, db, entry, db->paths[field][n],
                                         &data)
            != NGX_OK)
        {
            continue;
        }

        if (data.type != MMDB_DATA_TYPE_UTF8_STRING || data.data_size == 0) {
            continue;
        }

        s->len = data.data_size;
        s->data = (u_char *) data.utf8_string;

        return NGX_OK;
    }

    return NGX_DECLINED;
}


static uint32_t
ngx_http_affiliate_geo_number(ngx_http_request_t *r,
    ngx_http_affiliate_geo_db_t *db, MMDB_entry_s *entry)
{
    u_char                          *p;
    size_t                           len;
    ngx_int_t                        n;
    MMDB_entry_data_s                data;
    ngx_http_affiliate_geo_path_t   *path;

    for (path = db->paths[NGX_HTTP_AFFILIATE_GEO_ASN]; *path; path++) {

        if (ngx_http_affiliate_geo_value(r, db, entry, *path, &data)
            != NGX_OK)
        {
            continue;
        }

        switch (data.type) {

        case MMDB_DATA_TYPE_UINT32:
            return data.uint32;

        case MMDB_DATA_TYPE_UINT16:
            return data.uint16;

        case MMDB_DATA_TYPE_UINT64:
            if (data.uint64 <= 0xffffffff) {
                return (uint32_t) data.uint64;
            }
            break;

        case MMDB_DATA_TYPE_INT32:
            if (data.int32 > 0) {
                return (uint32_t) data.int32;
            }
            break;

        case MMDB_DATA_TYPE_UTF8_STRING:

            /* "13335" or "AS13335" */

            p = (u_char *) data.utf8_string;
            len = data.data_size;

            if (len > 2 && (p[0] == 'A' || p[0] == 'a')
                && (p[1] == 'S' || p[1] == 's'))
            {
                p += 2;
                len -= 2;
            }

            n = ngx_atoi(p, len);

            if (n > 0 && (uint64_t) n <= 0xffffffff) {
                return (uint32_t) n;
            }
            break;
        }
    }

    return 0;
}


static ngx_int_t
ngx_http_affiliate_geo_value(ngx_http_request_t *r,
    ngx_http_affiliate_geo_db_t *db, MMDB_entry_s *entry,
    ngx_http_affiliate_geo_path_t path, MMDB_entry_data_s *data)
{
    int  rc;

    rc = MMDB_aget_value(entry, data, path);

    switch (rc) {

    case MMDB_SUCCESS:
        return data->has_data ? NGX_OK : NGX_DECLINED;

    /* the path is not there or is not of this schema */
    case MMDB_LOOKUP_PATH_DOES_NOT_MATCH_DATA_ERROR:
    case MMDB_INVALID_LOOKUP_PATH_ERROR:
        return NGX_DECLINED;

    default:
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "affiliate_geoip: reading \"%s...\" in \"%V\" "
                      "failed: %s", path[0], &db->file, MMDB_strerror(rc));
        return NGX_ERROR;
    }
}


static ngx_int_t
ngx_http_affiliate_geo_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t                 *s;
    ngx_http_affiliate_geo_t  *geo;

    geo = ngx_http_affiliate_geo_get(r);

    if (geo == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    s = (ngx_str_t *) ((u_char *) geo + data);

    if (s->len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->len = s->len;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    v->data = s->data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_affiliate_geo_asn_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                    *p;
    ngx_http_affiliate_geo_t  *geo;

    geo = ngx_http_affiliate_geo_get(r);

    if (geo == NULL || geo->asn == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, NGX_INT32_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    v->len = ngx_sprintf(p, "%uD", geo->asn) - p;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    v->data = p;

    return NGX_OK;
}


static ngx_http_affiliate_geo_t *
ngx_http_affiliate_geo_get(ngx_http_request_t *r)
{
    ngx_http_affiliate_ctx_t            *ctx;
    ngx_http_affiliate_geo_main_conf_t  *gmcf;

    gmcf = ngx_http_get_module_main_conf(r, ngx_http_affiliate_geo_module);

    if (gmcf->dbs == NULL) {
        return NULL;
    }

    ctx = ngx_http_affiliate_get_ctx(r);

    if (ctx == NULL) {
        return NULL;
    }

    if (!ctx->geo_done) {
        ctx->geo_miss = (ngx_http_affiliate_geo_lookup(r, &ctx->geo)
                         == NGX_ABORT);
        ctx->geo_done = 1;
    }

    return &ctx->geo;
}


static void
ngx_http_affiliate_geo_reload_handler(ngx_event_t *ev)
{
    ngx_http_affiliate_geo_db_t  *db;

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    db = ev->data;

    ngx_http_affiliate_geo_reload(db, ev->log);

    ngx_add_timer(ev, db->auto_reload);
}


static void
ngx_http_affiliate_geo_reload(ngx_http_affiliate_geo_db_t *db, ngx_log_t *log)
{
    int              rc;
    MMDB_s          *mmdb, *old;
    ngx_err_t        err;
    ngx_file_info_t  fi;

    if (ngx_file_info(db->file.data, &fi) == NGX_FILE_ERROR) {

        /* possibly between an unlink() and a rename(): keep the old one */

        if (!db->stat_failed) {
            ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                          "affiliate_geoip: " ngx_file_info_n " \"%V\" "
                          "failed, keeping the database loaded", &db->file);
            db->stat_failed = 1;
        }

        return;
    }

    db->stat_failed = 0;

    if (ngx_file_uniq(&fi) == db->uniq
        && ngx_file_mtime(&fi) == db->mtime
        && ngx_file_size(&fi) == db->size)
    {
        return;
    }

    /* tried once a version of the file, even when it fails */

    db->uniq = ngx_file_uniq(&fi);
    db->mtime = ngx_file_mtime(&fi);
    db->size = ngx_file_size(&fi);

    mmdb = ngx_alloc(sizeof(MMDB_s), log);
    if (mmdb == NULL) {
        return;
    }

    ngx_set_errno(0);

    rc = MMDB_open((char *) db->file.data, MMDB_MODE_MMAP, mmdb);

    if (rc != MMDB_SUCCESS) {
        err = (rc == MMDB_FILE_OPEN_ERROR || rc == MMDB_IO_ERROR)
              ? ngx_errno : 0;

        ngx_log_error(NGX_LOG_ERR, log, err,
                      "affiliate_geoip: MMDB_open(\"%V\") failed: %s, "
                      "keeping the database loaded",
                      &db->file, MMDB_strerror(rc));

        ngx_free(mmdb);
        return;
    }

    /* a worker is single-threaded: no lookup uses the old one right now */

    old = db->mmdb;
    db->mmdb = mmdb;

    /* the cache holds the old database's records, by their offsets */

    if (db->cache) {
        ngx_memzero(db->cache, NGX_HTTP_AFFILIATE_GEO_CACHE
                               * sizeof(ngx_http_affiliate_geo_cached_t));
    }

    MMDB_close(old);
    ngx_free(old);

    ngx_log_error(NGX_LOG_NOTICE, log, 0,
                  "affiliate_geoip: reloaded \"%V\" (%s, built %T)",
                  &db->file, mmdb->metadata.database_type,
                  (time_t) mmdb->metadata.build_epoch);
}


static void
ngx_http_affiliate_geo_cleanup(void *data)
{
    ngx_http_affiliate_geo_db_t  *db = data;

    if (db->mmdb) {
        MMDB_close(db->mmdb);
        ngx_free(db->mmdb);
        db->mmdb = NULL;
    }
}


static ngx_int_t
ngx_http_affiliate_geo_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_affiliate_geo_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


static void *
ngx_http_affiliate_geo_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_affiliate_geo_main_conf_t  *gmcf;

    gmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_affiliate_geo_main_conf_t));
    if (gmcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     gmcf->dbs = NULL;
     */

    gmcf->source = NGX_CONF_UNSET;

    return gmcf;
}


static char *
ngx_http_affiliate_geo_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_affiliate_geo_main_conf_t  *gmcf = conf;

    if (gmcf->source != NGX_CONF_UNSET && gmcf->dbs == NULL) {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "\"affiliate_geoip_source\" is set, "
                           "but there is no \"affiliate_geoip\"");
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_affiliate_geoip(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_affiliate_geo_main_conf_t  *gmcf = conf;

    int                            rc;
    char                          *rv;
    ngx_err_t                      err;
    ngx_str_t                     *value, s;
    ngx_int_t                      ms;
    ngx_uint_t                     i, f;
    ngx_file_info_t                fi;
    ngx_pool_cleanup_t            *cln;
    ngx_http_affiliate_geo_db_t   *db, **dbp;

    if (gmcf->dbs == NULL) {
        gmcf->dbs = ngx_array_create(cf->pool, 2,
                                     sizeof(ngx_http_affiliate_geo_db_t *));
        if (gmcf->dbs == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    /* allocated apart: the cleanup and the timer point to it */

    db = ngx_pcalloc(cf->pool, sizeof(ngx_http_affiliate_geo_db_t));
    if (db == NULL) {
        return NGX_CONF_ERROR;
    }

    dbp = ngx_array_push(gmcf->dbs);
    if (dbp == NULL) {
        return NGX_CONF_ERROR;
    }

    *dbp = db;

    ngx_memcpy(db->paths, ngx_http_affiliate_geo_default_paths,
               sizeof(ngx_http_affiliate_geo_default_paths));

    value = cf->args->elts;

    db->file = value[1];

    if (ngx_conf_full_name(cf->cycle, &db->file, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "auto_reload=", 12) == 0) {

            s.len = value[i].len - 12;
            s.data = value[i].data + 12;

            ms = ngx_parse_time(&s, 0);
            if (ms == NGX_ERROR || ms == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid auto_reload time \"%V\"", &s);
                return NGX_CONF_ERROR;
            }

            db->auto_reload = (ngx_msec_t) ms;
            continue;
        }

        for (f = 0; f < NGX_HTTP_AFFILIATE_GEO_NFIELDS; f++) {
            s = ngx_http_affiliate_geo_fields[f];

            if (value[i].len > s.len
                && value[i].data[s.len] == '='
                && ngx_strncmp(value[i].data, s.data, s.len) == 0)
            {
                break;
            }
        }

        if (f == NGX_HTTP_AFFILIATE_GEO_NFIELDS) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\", expected "
                               "country=, region=, city=, asn= or "
                               "auto_reload=", &value[i]);
            return NGX_CONF_ERROR;
        }

        s.len = value[i].len - ngx_http_affiliate_geo_fields[f].len - 1;
        s.data = value[i].data + ngx_http_affiliate_geo_fields[f].len + 1;

        /* an explicit path replaces the defaults; "off" disables the field */

        db->paths[f][1] = NULL;

        if (s.len == 3 && ngx_strncmp(s.data, "off", 3) == 0) {
            db->paths[f][0] = NULL;
            continue;
        }

        rv = ngx_http_affiliate_geo_path(cf, &s, &db->paths[f][0]);
        if (rv != NGX_CONF_OK) {
            return rv;
        }
    }

    /* the identity of the file opened, for auto_reload */

    ngx_set_errno(0);

    if (ngx_file_info(db->file.data, &fi) == NGX_FILE_ERROR) {
        err = ngx_errno;

    } else {
        err = 0;
        db->uniq = ngx_file_uniq(&fi);
        db->mtime = ngx_file_mtime(&fi);
        db->size = ngx_file_size(&fi);
    }

    db->mmdb = ngx_alloc(sizeof(MMDB_s), cf->log);
    if (db->mmdb == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_set_errno(0);

    rc = MMDB_open((char *) db->file.data, MMDB_MODE_MMAP, db->mmdb);

    if (rc != MMDB_SUCCESS) {
        if (rc == MMDB_FILE_OPEN_ERROR || rc == MMDB_IO_ERROR) {
            err = ngx_errno ? ngx_errno : err;

        } else {
            err = 0;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, err,
                           "affiliate_geoip: MMDB_open(\"%V\") failed: %s",
                           &db->file, MMDB_strerror(rc));

        ngx_free(db->mmdb);
        db->mmdb = NULL;

        return NGX_CONF_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        MMDB_close(db->mmdb);
        ngx_free(db->mmdb);
        db->mmdb = NULL;
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_http_affiliate_geo_cleanup;
    cln->data = db;

    if (err) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, err,
                           "affiliate_geoip: " ngx_file_info_n " \"%V\" "
                           "failed", &db->file);
        return NGX_CONF_ERROR;
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, cf->log, 0,
                   "affiliate geoip: \"%V\" %s, IPv%uD",
                   &db->file, db->mmdb->metadata.database_type,
                   (uint32_t) db->mmdb->metadata.ip_version);

    return NGX_CONF_OK;
}


static char *
ngx_http_affiliate_geo_path(ngx_conf_t *cf, ngx_str_t *value,
    ngx_http_affiliate_geo_path_t *path)
{
    u_char       *p, *start, *last;
    const char  **elts;
    ngx_uint_t    n;

    /* "subdivisions.0.names.en" -> { "subdivisions", "0", "names", "en" } */

    n = 1;

    for (p = value->data; p < value->data + value->len; p++) {
        if (*p == '.') {
            n++;
        }
    }

    if (n > NGX_HTTP_AFFILIATE_GEO_DEPTH) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "data path \"%V\" is too deep", value);
        return NGX_CONF_ERROR;
    }

    elts = ngx_palloc(cf->pool, (n + 1) * sizeof(char *));
    if (elts == NULL) {
        return NGX_CONF_ERROR;
    }

    p = ngx_pnalloc(cf->pool, value->len + 1);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memcpy(p, value->data, value->len);
    last = p + value->len;
    *last = '\0';

    n = 0;
    start = p;

    for ( ;; ) {
        if (p == last || *p == '.') {

            if (p == start) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid data path \"%V\"", value);
                return NGX_CONF_ERROR;
            }

            elts[n++] = (char *) start;

            if (p == last) {
                break;
            }

            *p++ = '\0';
            start = p;
            continue;
        }

        p++;
    }

    elts[n] = NULL;

    *path = elts;

    return NGX_CONF_OK;
}


static char *
ngx_http_affiliate_geoip_source(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_affiliate_geo_main_conf_t  *gmcf = conf;

    ngx_str_t  *value, name;

    if (gmcf->source != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len < 2 || value[1].data[0] != '$') {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid variable name \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    name.len = value[1].len - 1;
    name.data = value[1].data + 1;

    gmcf->source = ngx_http_get_variable_index(cf, &name);
    if (gmcf->source == NGX_ERROR) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_affiliate_geo_init_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                           i;
    ngx_event_t                         *ev;
    ngx_http_affiliate_geo_db_t        **db;
    ngx_http_affiliate_geo_main_conf_t  *gmcf;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    gmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_affiliate_geo_module);

    if (gmcf == NULL || gmcf->dbs == NULL) {
        return NGX_OK;
    }

    db = gmcf->dbs->elts;

    for (i = 0; i < gmcf->dbs->nelts; i++) {

        /* without memory for it, lookups go uncached */

        db[i]->cache = ngx_pcalloc(cycle->pool,
                                   NGX_HTTP_AFFILIATE_GEO_CACHE
                                   * sizeof(ngx_http_affiliate_geo_cached_t));

        if (db[i]->auto_reload == 0) {
            continue;
        }

        ev = &db[i]->event;

        ev->handler = ngx_http_affiliate_geo_reload_handler;
        ev->data = db[i];
        ev->log = cycle->log;
        ev->cancelable = 1;

        ngx_add_timer(ev, db[i]->auto_reload);
    }

    return NGX_OK;
}
