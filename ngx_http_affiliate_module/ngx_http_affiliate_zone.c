
/*
 * Copyright (C) ngx_http_affiliate_module authors
 *
 * affiliate_zone and affiliate_log: a zone's size, its tables and its
 * log file, checked at configuration time.  See docs/internals.md.
 */


#include "ngx_http_affiliate_module.h"


/* the recent-key tables of affiliate_zone, see docs/internals.md */
#define NGX_HTTP_AFFILIATE_NTABLES  5

typedef struct {
    ngx_str_t                  name;
    size_t                     offset;      /* in the zone */
    size_t                     entry;       /* entry size */
    size_t                     share;       /* default: 1/share of a zone */
} ngx_http_affiliate_table_param_t;


static ngx_int_t ngx_http_affiliate_zone_size(ngx_conf_t *cf,
    ngx_str_t *value, ngx_str_t *name, ssize_t *size);
static ngx_int_t ngx_http_affiliate_zone_tables(ngx_conf_t *cf,
    ngx_http_affiliate_zone_t *zone, size_t size);
static ngx_int_t ngx_http_affiliate_zone_running(ngx_conf_t *cf,
    ngx_str_t *name, size_t size);


static ngx_http_affiliate_table_param_t
    ngx_http_affiliate_table_params[NGX_HTTP_AFFILIATE_NTABLES + 1] =
{
    { ngx_string("clicks="), offsetof(ngx_http_affiliate_zone_t, clicks_size),
      sizeof(ngx_http_affiliate_click_entry_t), 8 },
    { ngx_string("unique="), offsetof(ngx_http_affiliate_zone_t, unique_size),
      sizeof(ngx_http_affiliate_entry_t), 16 },
    { ngx_string("orders="), offsetof(ngx_http_affiliate_zone_t, orders_size),
      sizeof(ngx_http_affiliate_entry_t), 32 },
    { ngx_string("caps="), offsetof(ngx_http_affiliate_zone_t, caps_size),
      sizeof(ngx_http_affiliate_cap_entry_t), 256 },
    { ngx_string("creators="),
      offsetof(ngx_http_affiliate_zone_t, stats_size),
      sizeof(ngx_http_affiliate_stat_t), 32 },
    { ngx_null_string, 0, 0, 0 }
};


ngx_http_affiliate_zone_t *
ngx_http_affiliate_zone_find(ngx_conf_t *cf, ngx_str_t *name)
{
    ngx_uint_t                       i;
    ngx_http_affiliate_zone_t       *zone, **zp;
    ngx_http_affiliate_main_conf_t  *amcf;

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_affiliate_module);

    zp = amcf->zones.elts;

    for (i = 0; i < amcf->zones.nelts; i++) {
        if (zp[i]->name.len == name->len
            && ngx_strncmp(zp[i]->name.data, name->data, name->len) == 0)
        {
            return zp[i];
        }
    }

    zone = ngx_pcalloc(cf->pool, sizeof(ngx_http_affiliate_zone_t));
    if (zone == NULL) {
        return NULL;
    }

    zp = ngx_array_push(&amcf->zones);
    if (zp == NULL) {
        return NULL;
    }

    *zp = zone;

    zone->name = *name;
    zone->flush = NGX_CONF_UNSET_MSEC;
    zone->conf_file = cf->conf_file->file.name.data;
    zone->conf_line = cf->conf_file->line;

    return zone;
}


ngx_http_affiliate_zone_t *
ngx_http_affiliate_zone_param(ngx_conf_t *cf, ngx_str_t *value)
{
    ngx_str_t  name;

    if (ngx_strncmp(value->data, "zone=", 5) != 0 || value->len == 5) {
        return NULL;
    }

    name.len = value->len - 5;
    name.data = value->data + 5;

    return ngx_http_affiliate_zone_find(cf, &name);
}


char *
ngx_http_affiliate_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ssize_t                     size;
    ngx_str_t                  *value, name;
    ngx_shm_zone_t             *shm_zone;
    ngx_http_affiliate_zone_t  *zone;

    value = cf->args->elts;

    if (ngx_http_affiliate_zone_size(cf, &value[1], &name, &size) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    zone = ngx_http_affiliate_zone_find(cf, &name);
    if (zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (zone->shm_zone) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "affiliate zone \"%V\" is already declared",
                           &name);
        return NGX_CONF_ERROR;
    }

    if (ngx_http_affiliate_zone_tables(cf, zone, size) != NGX_OK
        || ngx_http_affiliate_zone_running(cf, &name, size) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    shm_zone = ngx_shared_memory_add(cf, &name, size,
                                     &ngx_http_affiliate_module);
    if (shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate zone \"%V\"", &name);
        return NGX_CONF_ERROR;
    }

    shm_zone->init = ngx_http_affiliate_zone_init;
    shm_zone->data = zone;

    zone->shm_zone = shm_zone;
    zone->conf_file = cf->conf_file->file.name.data;
    zone->conf_line = cf->conf_file->line;

    return NGX_CONF_OK;
}


/* "name:size" */

static ngx_int_t
ngx_http_affiliate_zone_size(ngx_conf_t *cf, ngx_str_t *value,
    ngx_str_t *name, ssize_t *size)
{
    u_char     *p;
    ngx_str_t   s;

    p = (u_char *) ngx_strchr(value->data, ':');

    if (p == NULL || p == value->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone \"%V\", expected NAME:SIZE", value);
        return NGX_ERROR;
    }

    name->data = value->data;
    name->len = p - value->data;

    s.data = p + 1;
    s.len = value->data + value->len - s.data;

    *size = ngx_parse_size(&s);

    if (*size == NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone size \"%V\"", value);
        return NGX_ERROR;
    }

    if (*size < NGX_HTTP_AFFILIATE_MIN_SIZE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "affiliate zone \"%V\" is too small: %V, "
                           "the minimum is %uzk", name, &s,
                           (size_t) NGX_HTTP_AFFILIATE_MIN_SIZE / 1024);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * The recent-key tables: each holds at least TABLE_MIN entries (a
 * default share too small for that is raised to it), and together they
 * leave half the minimum zone to the ring.
 * Every value is at most the zone size before it is subtracted from
 * what is left, so no sum can overflow.
 */

static ngx_int_t
ngx_http_affiliate_zone_tables(ngx_conf_t *cf,
    ngx_http_affiliate_zone_t *zone, size_t size)
{
    size_t                            *sp, left;
    ngx_str_t                         *value, s;
    ngx_str_t                          given[NGX_HTTP_AFFILIATE_NTABLES];
    ngx_uint_t                         i, k;
    ngx_http_affiliate_table_param_t  *t;

    value = cf->args->elts;
    t = ngx_http_affiliate_table_params;

    for (k = 0; t[k].name.len; k++) {
        sp = (size_t *) ((u_char *) zone + t[k].offset);
        *sp = ngx_max(size / t[k].share,
                      NGX_HTTP_AFFILIATE_TABLE_MIN * t[k].entry);
        ngx_str_null(&given[k]);
    }

    for (i = 2; i < cf->args->nelts; i++) {

        for (k = 0; t[k].name.len; k++) {
            if (value[i].len >= t[k].name.len
                && ngx_strncmp(value[i].data, t[k].name.data, t[k].name.len)
                   == 0)
            {
                break;
            }
        }

        if (t[k].name.len == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\"", &value[i]);
            return NGX_ERROR;
        }

        s.data = value[i].data + t[k].name.len;
        s.len = value[i].len - t[k].name.len;

        sp = (size_t *) ((u_char *) zone + t[k].offset);
        *sp = (size_t) ngx_parse_size(&s);

        if (*sp == (size_t) NGX_ERROR) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid size \"%V\"", &value[i]);
            return NGX_ERROR;
        }

        given[k] = value[i];
    }

    left = size - NGX_HTTP_AFFILIATE_MIN_SIZE / 2;

    for (k = 0; t[k].name.len; k++) {
        sp = (size_t *) ((u_char *) zone + t[k].offset);

        if (given[k].len == 0) {
            given[k] = t[k].name;
        }

        if (*sp / t[k].entry < NGX_HTTP_AFFILIATE_TABLE_MIN) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "affiliate zone \"%V\": \"%V\" holds %uz "
                               "entries, the minimum is %d (%uz bytes)",
                               &zone->name, &given[k], *sp / t[k].entry,
                               NGX_HTTP_AFFILIATE_TABLE_MIN,
                               NGX_HTTP_AFFILIATE_TABLE_MIN * t[k].entry);
            return NGX_ERROR;
        }

        if (*sp > left) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "affiliate zone \"%V\": \"%V\" is too large, "
                               "clicks=, unique=, orders=, caps= and "
                               "creators= must leave "
                               "%uzk of the zone for the ring",
                               &zone->name, &given[k],
                               (size_t) NGX_HTTP_AFFILIATE_MIN_SIZE / 2048);
            return NGX_ERROR;
        }

        left -= *sp;
    }

    return NGX_OK;
}


/*
 * A zone of another size would be a new, empty one while the old
 * workers still append to the old one: refuse rather than split the
 * record sequence.  ngx_cycle is still the running cycle here.
 */

static ngx_int_t
ngx_http_affiliate_zone_running(ngx_conf_t *cf, ngx_str_t *name, size_t size)
{
    ngx_uint_t        i;
    ngx_shm_zone_t   *oshm;
    ngx_list_part_t  *part;

    if (ngx_cycle->shared_memory.part.elts == NULL) {
        return NGX_OK;
    }

    part = (ngx_list_part_t *) &ngx_cycle->shared_memory.part;
    oshm = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }
            part = part->next;
            oshm = part->elts;
            i = 0;
        }

        if (oshm[i].tag != &ngx_http_affiliate_module
            || oshm[i].shm.name.len != name->len
            || ngx_strncmp(oshm[i].shm.name.data, name->data, name->len) != 0)
        {
            continue;
        }

        if (oshm[i].shm.size != size) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "affiliate zone \"%V\" cannot change "
                               "size from %uzk to %uzk on reload: its "
                               "unflushed records and its sequence "
                               "would be split; restart nginx or give "
                               "the zone a new name", name,
                               oshm[i].shm.size / 1024, size / 1024);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


char *
ngx_http_affiliate_log(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_str_t                  *value, s;
    ngx_uint_t                  i;
    ngx_msec_t                  flush;
    ngx_http_affiliate_zone_t  *zone;

    value = cf->args->elts;

    zone = NULL;
    flush = 1000;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "zone=", 5) == 0) {
            zone = ngx_http_affiliate_zone_param(cf, &value[i]);
            if (zone == NULL) {
                goto invalid;
            }
            continue;
        }

        if (ngx_strncmp(value[i].data, "flush=", 6) == 0) {
            s.len = value[i].len - 6;
            s.data = value[i].data + 6;

            flush = ngx_parse_time(&s, 0);
            if (flush == (ngx_msec_t) NGX_ERROR || flush == 0) {
                goto invalid;
            }
            continue;
        }

        goto invalid;
    }

    if (zone == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"affiliate_log\" needs \"zone=NAME\"");
        return NGX_CONF_ERROR;
    }

    if (zone->file) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "affiliate zone \"%V\" already has a log \"%V\"",
                           &zone->name, &zone->log_path);
        return NGX_CONF_ERROR;
    }

    if (value[1].len == 0 || ngx_strcmp(value[1].data, "off") == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid log path \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    /* a file of its own; sharing one is refused once files are open */

    zone->file = ngx_http_affiliate_log_file(cf, &value[1]);
    if (zone->file == NULL) {
        return NGX_CONF_ERROR;
    }

    zone->cycle = cf->cycle;
    zone->log_conf_file = cf->conf_file->file.name.data;
    zone->log_conf_line = cf->conf_file->line;
    zone->log_path = value[1];
    zone->flush = flush;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\"", &value[i]);
    return NGX_CONF_ERROR;
}
