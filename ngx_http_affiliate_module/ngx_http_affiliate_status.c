
/*
 * Copyright (C) ngx_http_affiliate_module authors
 *
 * affiliate_status: a zone's counters as JSON.
 */


#include "ngx_http_affiliate_module.h"


#define ngx_http_affiliate_load(v)  __atomic_load_n(&(v), __ATOMIC_RELAXED)


/* the names of the counters from NGX_HTTP_AFFILIATE_GEO_MISSES on */
static char  *ngx_http_affiliate_counters[] = {
    "clicks", "misses", "dropped", "geo_misses", "unique_clicks",
    "bot_clicks", "landings", "conversions", "duplicate_orders", "rejected",
    "invalid_cookies", "unauthenticated", "invalid_conversions", "not_yet",
    "expired", "capped", "cap_table_full"
};


ngx_int_t
ngx_http_affiliate_status_handler(ngx_http_request_t *r)
{
    size_t                          len;
    u_char                         *p;
    uint32_t                        code;
    uint64_t                        head, tail, used, units, frac;
    ngx_uint_t                      i, n;
    ngx_http_affiliate_revenue_t   *rv;
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
          + 32 * (sizeof(",\"invalid_conversions\":") + NGX_INT64_LEN)
          + NGX_HTTP_AFFILIATE_CURRENCIES * (2 * NGX_INT64_LEN + 16)
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

    for (i = NGX_HTTP_AFFILIATE_GEO_MISSES; i < NGX_HTTP_AFFILIATE_NCOUNTERS;
         i++)
    {
        p = ngx_sprintf(p, ",\"%s\":%uL", ngx_http_affiliate_counters[i],
                        ngx_http_affiliate_load(sh->counters[i].value));
    }

    p = ngx_cpymem(p, ",\"revenue\":{", sizeof(",\"revenue\":{") - 1);

    for (i = 0, n = 0; i < NGX_HTTP_AFFILIATE_CURRENCIES; i++) {
        rv = &sh->revenue[i];
        code = ngx_http_affiliate_load(rv->code);

        if (code == 0) {
            continue;
        }

        units = ngx_http_affiliate_load(rv->units);
        frac = ngx_http_affiliate_load(rv->frac);

        p = ngx_sprintf(p, "%s\"%c%c%c\":\"%uL.%04uL\"", n++ ? "," : "",
                        (int) (code >> 16) & 0xff, (int) (code >> 8) & 0xff,
                        (int) code & 0xff, units + frac / 10000,
                        frac % 10000);
    }

    *p++ = '}';

    p = ngx_sprintf(p, ",\"bytes_written\":%uL",
                    ngx_http_affiliate_load(sh->bytes));

    if (last) {
        p = ngx_cpymem(p, ",\"last_flush\":\"",
                       sizeof(",\"last_flush\":\"") - 1);
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
