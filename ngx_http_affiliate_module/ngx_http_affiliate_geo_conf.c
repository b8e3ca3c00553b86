
/*
 * Copyright (C) ngx_http_affiliate_module authors
 *
 * Geolocation's configuration: the affiliate_geoip and
 * affiliate_geoip_source directives, and each database's life in a
 * worker (opened with the configuration, auto_reload by a timer, closed
 * with the cycle).  The lookups are in ngx_http_affiliate_geo.c.  See
 * docs/geo.md.
 */


#include "ngx_http_affiliate_geo.h"


static void ngx_http_affiliate_geo_reload_handler(ngx_event_t *ev);
static void ngx_http_affiliate_geo_reload(ngx_http_affiliate_geo_db_t *db,
    ngx_log_t *log);
static void ngx_http_affiliate_geo_cleanup(void *data);

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
