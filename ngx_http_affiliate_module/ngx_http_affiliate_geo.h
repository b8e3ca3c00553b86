
/*
 * Copyright (C) ngx_http_affiliate_module authors
 *
 * Geolocation, shared by ngx_http_affiliate_geo.c (the lookups and the
 * variables, at request time) and ngx_http_affiliate_geo_conf.c (the
 * directives, and the databases' life in a worker).
 */


#ifndef _NGX_HTTP_AFFILIATE_GEO_H_INCLUDED_
#define _NGX_HTTP_AFFILIATE_GEO_H_INCLUDED_


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


ngx_int_t ngx_http_affiliate_geo_add_variables(ngx_conf_t *cf);


#endif /* _NGX_HTTP_AFFILIATE_GEO_H_INCLUDED_ */
