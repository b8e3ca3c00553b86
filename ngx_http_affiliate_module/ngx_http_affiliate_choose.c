
/*
 * Copyright (C) ngx_http_affiliate_module authors
 *
 * Where a link with options goes for this request: schedule and cap,
 * device, geo, A/B; and query=forward.  A link without options never
 * reaches this file.  See docs/links.md.
 */


#include "ngx_http_affiliate_module.h"


/* a cap lookup probes at most this many entries: bounded work */
#define NGX_HTTP_AFFILIATE_CAP_PROBES   64

/* the UA bytes scanned for the device, as for bots */
#define NGX_HTTP_AFFILIATE_DEVICE_SCAN  512


static ngx_int_t ngx_http_affiliate_schedule(ngx_http_request_t *r,
    ngx_http_affiliate_zone_t *zone, ngx_http_affiliate_ctx_t *ctx,
    ngx_http_affiliate_link_opts_t *o);
static ngx_inline void ngx_http_affiliate_schedule_count(
    ngx_http_affiliate_zone_t *zone, ngx_http_affiliate_ctx_t *ctx,
    ngx_uint_t counter);
static ngx_uint_t ngx_http_affiliate_device(ngx_http_request_t *r);
static ngx_http_affiliate_dest_t *ngx_http_affiliate_variant(
    ngx_http_request_t *r, ngx_http_affiliate_zone_t *zone,
    ngx_http_affiliate_ctx_t *ctx, ngx_http_affiliate_link_opts_t *o);
static ngx_uint_t ngx_http_affiliate_query_has(
    ngx_http_affiliate_dest_t *dest, ngx_str_t *name);


static char  *ngx_http_affiliate_devices[] = { "ios", "android", "desktop" };


/*
 * The destination of a link with options, in the documented order:
 * schedule and cap, device, geo, A/B, the link's own.  NGX_DECLINED:
 * the link is not live and has no "expired=" (410).
 */

ngx_int_t
ngx_http_affiliate_link_dest(ngx_http_request_t *r,
    ngx_http_affiliate_zone_t *zone, ngx_http_affiliate_ctx_t *ctx,
    ngx_http_affiliate_link_t *link, ngx_http_affiliate_dest_t **dest)
{
    ngx_uint_t                       device;
    ngx_http_affiliate_dest_t       *d;
    ngx_http_affiliate_link_opts_t  *o;

    o = link->opts;

    if ((o->from || o->until || o->max_clicks)
        && ngx_http_affiliate_schedule(r, zone, ctx, o) != NGX_OK)
    {
        if (o->expired == NULL) {
            return NGX_DECLINED;
        }

        *dest = o->expired;
        return NGX_OK;
    }

    if (o->device[0] || o->device[1] || o->device[2]) {
        device = ngx_http_affiliate_device(r);
        ctx->device = ngx_http_affiliate_devices[device];

        if (o->device[device]) {
            *dest = o->device[device];
            return NGX_OK;
        }
    }

    d = ngx_http_affiliate_geo_dest(link, ctx);

    if (d == NULL && o->nvariants) {
        d = ngx_http_affiliate_variant(r, zone, ctx, o);
    }

    *dest = d ? d : &link->dest;

    return NGX_OK;
}


/*
 * Before from=, after until=, or past max_clicks= human clicks: the
 * reason in ctx, counted for a person (a bot is counted in bot_clicks,
 * as on any link).  The cap is exact across workers: every human click
 * takes a number with one atomic add, the first max_clicks numbers get
 * the link.  Bots and prefetches look at the count, never take one.
 */

static ngx_int_t
ngx_http_affiliate_schedule(ngx_http_request_t *r,
    ngx_http_affiliate_zone_t *zone, ngx_http_affiliate_ctx_t *ctx,
    ngx_http_affiliate_link_opts_t *o)
{
    time_t     now;
    uint64_t  *count, n;

    now = ngx_time();

    if (o->from && now < o->from) {
        ctx->reason = "not_yet";
        ngx_http_affiliate_schedule_count(zone, ctx,
                                          NGX_HTTP_AFFILIATE_NOT_YET);
        return NGX_DECLINED;
    }

    if (o->until && now >= o->until) {
        ctx->reason = "expired";
        ngx_http_affiliate_schedule_count(zone, ctx,
                                          NGX_HTTP_AFFILIATE_EXPIRED);
        return NGX_DECLINED;
    }

    if (o->max_clicks == 0) {
        return NGX_OK;
    }

    count = ngx_http_affiliate_cap_counter(zone->sh, o->cap_key);

    if (count == NULL) {
        /*
         * No room for the counter within its 64 probes (the caps= table
         * is full or nearly so): serve the link rather than refuse it
         */
        ngx_http_affiliate_count(zone->sh, NGX_HTTP_AFFILIATE_CAP_FULL);
        return NGX_OK;
    }

    if (ctx->bot_reason) {
        n = __atomic_load_n(count, __ATOMIC_RELAXED);

    } else {
        n = __atomic_fetch_add(count, 1, __ATOMIC_RELAXED);
    }

    if (n < o->max_clicks) {
        return NGX_OK;
    }

    ctx->reason = "capped";
    ngx_http_affiliate_schedule_count(zone, ctx, NGX_HTTP_AFFILIATE_CAPPED);

    return NGX_DECLINED;
}


static ngx_inline void
ngx_http_affiliate_schedule_count(ngx_http_affiliate_zone_t *zone,
    ngx_http_affiliate_ctx_t *ctx, ngx_uint_t counter)
{
    if (ctx->bot_reason == NULL) {
        ngx_http_affiliate_count(zone->sh, counter);
    }
}


/* the counter of a capped link, found or added; NULL when full */

uint64_t *
ngx_http_affiliate_cap_counter(ngx_http_affiliate_sh_t *sh, uint64_t key)
{
    uint64_t                         k, i, j;
    ngx_http_affiliate_cap_entry_t  *e;

    e = (ngx_http_affiliate_cap_entry_t *) sh->caps.entries;
    key |= 1;

    for (i = 0, j = key % sh->caps.n;
         i < ngx_min(sh->caps.n, NGX_HTTP_AFFILIATE_CAP_PROBES);
         i++, j = (j + 1) % sh->caps.n)
    {
        k = __atomic_load_n(&e[j].key, __ATOMIC_ACQUIRE);

        if (k == 0) {
            if (__atomic_compare_exchange_n(&e[j].key, &k, key, 0,
                                            __ATOMIC_ACQ_REL,
                                            __ATOMIC_ACQUIRE))
            {
                return &e[j].count;
            }

            /* another worker took it: for this key too? */
        }

        if (k == key) {
            return &e[j].count;
        }
    }

    return NULL;
}


/*
 * iPhone, iPad, iPod: ios; Android: android; anything else: desktop.
 * In-app browsers (Instagram, TikTok, Facebook) keep the platform's
 * token.  An iPad in desktop mode says "Macintosh": desktop.
 */

static ngx_uint_t
ngx_http_affiliate_device(ngx_http_request_t *r)
{
    size_t   len;
    u_char  *ua, *p, *last;

    if (r->headers_in.user_agent == NULL) {
        return NGX_HTTP_AFFILIATE_DESKTOP;
    }

    ua = r->headers_in.user_agent->value.data;
    len = ngx_min(r->headers_in.user_agent->value.len,
                  NGX_HTTP_AFFILIATE_DEVICE_SCAN);

    /*
     * memchr() for the rare capitals the tokens hold ("A", the "P" of
     * "iP"), then a compare: four memmem() calls cost 3 times as much
     */

    last = ua + len;

    for (p = ua; (p = memchr(p, 'A', last - p)) != NULL; p++) {
        if (last - p >= 7 && ngx_strncmp(p, "Android", 7) == 0) {
            return NGX_HTTP_AFFILIATE_ANDROID;
        }
    }

    for (p = ua + 1; p < last && (p = memchr(p, 'P', last - p)) != NULL; p++)
    {
        if (p[-1] == 'i'
            && ((last - p >= 5 && ngx_strncmp(p, "Phone", 5) == 0)
                || (last - p >= 3 && (ngx_strncmp(p, "Pad", 3) == 0
                                      || ngx_strncmp(p, "Pod", 3) == 0))))
        {
            return NGX_HTTP_AFFILIATE_IOS;
        }
    }

    return NGX_HTTP_AFFILIATE_DESKTOP;
}


/*
 * A/B: the visitor's key (from the cookie when there is one, else the
 * address and User-Agent) hashed as split_clients does, then placed on
 * the weights.  The same visitor gets the same variant.
 */

static ngx_http_affiliate_dest_t *
ngx_http_affiliate_variant(ngx_http_request_t *r,
    ngx_http_affiliate_zone_t *zone, ngx_http_affiliate_ctx_t *ctx,
    ngx_http_affiliate_link_opts_t *o)
{
    uint32_t    hash, point;
    ngx_uint_t  i;

    if (ctx->visitor == 0) {
        ngx_http_affiliate_visitor(r, zone, ctx);
    }

    hash = ngx_murmur_hash2((u_char *) &ctx->visitor, sizeof(uint64_t));
    point = (uint32_t) (((uint64_t) hash * o->total) >> 32);

    for (i = 0; i < o->nvariants - 1; i++) {
        if (point < o->variants[i].upto) {
            break;
        }
    }

    ctx->variant = i + 1;

    return &o->variants[i].dest;
}


/*
 * query=forward: the visitor's own query parameters that the destination
 * does not set and that are not the module's, kept in order; bytes a
 * header must not carry are percent-encoded.  The result goes in extra.
 */

ngx_int_t
ngx_http_affiliate_forward_query(ngx_http_request_t *r,
    ngx_http_affiliate_dest_t *dest, ngx_str_t *extra)
{
    u_char     *p, *start, *last, *amp;
    ngx_str_t   name, value;

    ngx_str_null(extra);

    if (r->args.len == 0) {
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, 3 * r->args.len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    extra->data = p;
    last = r->args.data + r->args.len;

    for (start = r->args.data; start < last; start = amp + 1) {

        amp = ngx_http_affiliate_arg_split(start, last, &name, &value);

        /*
         * Names are compared as sent, so a name with "%" or "+" (which a
         * shop decodes, click%5Fid is click_id) is not forwarded at all.
         */

        if (name.len == 0
            || ngx_strlchr(name.data, name.data + name.len, '%')
            || ngx_strlchr(name.data, name.data + name.len, '+')
            || ngx_http_affiliate_query_has(dest, &name)
            || (name.len == 8
                && ngx_strncasecmp(name.data, (u_char *) "click_id", 8) == 0)
            || (name.len >= 4
                && ngx_strncasecmp(name.data, (u_char *) "utm_", 4) == 0))
        {
            continue;
        }

        if (p != extra->data) {
            *p++ = '&';
        }

        p = ngx_http_affiliate_escape_args(p, start, amp - start);
    }

    extra->len = p - extra->data;

    return NGX_OK;
}


/*
 * Whether the destination sets a parameter of this name (one without "%"
 * or "+": forward_query leaves those out).  A destination's name is
 * compared as the shop reads it, form-decoded: "a%62" is "ab".
 */

static ngx_uint_t
ngx_http_affiliate_query_has(ngx_http_affiliate_dest_t *dest,
    ngx_str_t *name)
{
    u_char     *p, *last, *d, *s, *q;
    ngx_str_t   n, v;
    u_char      dec[NGX_HTTP_AFFILIATE_DEST_MAX];

    if (!(dest->flags & NGX_HTTP_AFFILIATE_HAS_QUERY)) {
        return 0;
    }

    last = dest->data + dest->frag;
    p = ngx_strlchr(dest->data, last, '?');

    for (p++; p < last; p++) {

        p = ngx_http_affiliate_arg_split(p, last, &n, &v);

        if (ngx_strlchr(n.data, n.data + n.len, '%')
            || ngx_strlchr(n.data, n.data + n.len, '+'))
        {
            for (q = dec, s = n.data; s < n.data + n.len; s++) {
                *q++ = (*s == '+') ? ' ' : *s;
            }

            d = dec;
            s = dec;
            ngx_unescape_uri(&d, &s, n.len, 0);

            n.data = dec;
            n.len = d - dec;
        }

        if (n.len == name->len
            && ngx_strncmp(n.data, name->data, name->len) == 0)
        {
            return 1;
        }
    }

    return 0;
}
