
/*
 * Copyright (C) ngx_http_affiliate_module authors
 *
 * Geolocation at request time: MaxMind DB (libmaxminddb) lookups of the
 * client address, a worker's cache of the records read, and the
 * $affiliate_country, $affiliate_region, $affiliate_city and
 * $affiliate_asn variables.  The directives and the databases' life in a
 * worker are in ngx_http_affiliate_geo_conf.c.  See docs/geo.md.
 */


#include "ngx_http_affiliate_geo.h"


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

    return ngx_http_affiliate_variable_set(v, s->data, s->len);
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

    return ngx_http_affiliate_variable_set(v, p,
                                           ngx_sprintf(p, "%uD", geo->asn) - p);
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


ngx_int_t
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
