
/*
 * Copyright (C) ngx_http_affiliate_module authors
 *
 * affiliate_status: a zone's counters as JSON.
 */


#include "ngx_http_affiliate_module.h"


#define ngx_http_affiliate_load(v)  __atomic_load_n(&(v), __ATOMIC_RELAXED)


ngx_int_t
ngx_http_affiliate_status_handler(ngx_http_request_t *r)
{
    size_t                          len;
    u_char                         *p;
    uint64_t                        head, tail, used;
    ngx_int_t                       rc;
    ngx_buf_t                      *b;
    ngx_msec_t                      last;
    ngx_chain_t                     out;
    ngx_http_affiliate_sh_t        *sh;
    ngx_http_affiliate_zone_t      *zone;
    ngx_http_affiliate_loc_conf_t  *alcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_affiliate_module);
    zone = alcf->status_zone;
    sh = zone->sh;

    head = ngx_http_affiliate_load(sh->head);
    tail = ngx_http_affiliate_load(sh->tail);
    used = head > tail ? head - tail : 0;
    last = ngx_http_affiliate_load(sh->last_flush);

    len = sizeof("{\"zone\":\"\",") + zone->name.len
          + 32 * (sizeof(",\"geo_misses\":") + NGX_INT64_LEN)
          + sizeof(",\"last_flush\":\"1970-09-28T12:00:00.000Z\"}\n");

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_sprintf(b->last, "{\"zone\":\"%V\"", &zone->name);

    p = ngx_sprintf(p, ",\"clicks\":%uL,\"misses\":%uL",
                    ngx_http_affiliate_load(
                        sh->counters[NGX_HTTP_AFFILIATE_CLICKS].value),
                    ngx_http_affiliate_load(
                        sh->counters[NGX_HTTP_AFFILIATE_MISSES].value));

    p = ngx_sprintf(p, ",\"records\":{\"accepted\":%uL,\"written\":%uL"
                       ",\"dropped\":%uL,\"lost\":%uL}",
                    head, ngx_http_affiliate_load(sh->written),
                    ngx_http_affiliate_load(
                        sh->counters[NGX_HTTP_AFFILIATE_DROPPED].value),
                    ngx_http_affiliate_load(sh->lost));

    p = ngx_sprintf(p, ",\"ring\":{\"capacity\":%uL,\"used\":%uL"
                       ",\"slot_size\":%uz}",
                    sh->nslots, ngx_min(used, sh->nslots),
                    (size_t) NGX_HTTP_AFFILIATE_SLOT_SIZE);

    p = ngx_sprintf(p, ",\"geo_misses\":%uL",
                    ngx_http_affiliate_load(
                        sh->counters[NGX_HTTP_AFFILIATE_GEO_MISSES].value));

    p = ngx_sprintf(p, ",\"bytes_written\":%uL",
                    ngx_http_affiliate_load(sh->bytes));

    if (last) {
        p = ngx_cpymem(p, ",\"last_flush\":\"", sizeof(",\"last_flush\":\"") - 1);
        p = ngx_http_affiliate_time_iso(p, last / 1000, last % 1000);
        p = ngx_cpymem(p, "\"}\n", 3);

    } else {
        p = ngx_cpymem(p, ",\"last_flush\":null}\n",
                       sizeof(",\"last_flush\":null}\n") - 1);
    }

    b->last = p;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = b->last - b->pos;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}
