
/*
 * Copyright (C) ngx_http_affiliate_module authors
 *
 * Attribution of a click or landing: its click id, bot or person,
 * unique or repeat, the cookie, the anonymized address, then the record.
 * See docs/attribution.md.
 */


#include "ngx_http_affiliate_module.h"

#include <openssl/rand.h>


/* random bytes drawn at once for click ids: 409 milliseconds' worth */
#define NGX_HTTP_AFFILIATE_RAND_POOL     4090


static ngx_inline void ngx_http_affiliate_base32_40(u_char *dst, uint64_t v,
    ngx_uint_t n);
static uint64_t ngx_http_affiliate_unique_key(ngx_http_request_t *r,
    ngx_http_affiliate_sh_t *sh, ngx_http_affiliate_ctx_t *ctx);


/*
 * A ULID: 48 bits of milliseconds and 80 random bits, Crockford base32.
 * Within one millisecond a worker increments the random part, so ids
 * of a worker are strictly increasing; workers and hosts draw their own.
 */

void
ngx_http_affiliate_ulid(u_char *dst)
{
    uint64_t         ms;
    ngx_int_t        i;
    ngx_time_t      *tp;

    static uint64_t  last_ms;
    static u_char    rnd[10];
    static u_char    time32[10];    /* last_ms in base32 */

    /*
     * RAND_bytes() costs about 3,500 instructions a call, whatever the
     * size: a worker draws random bytes for many milliseconds at once
     */
    static u_char    pool[NGX_HTTP_AFFILIATE_RAND_POOL];
    static size_t    pooled;
    static ngx_pid_t pool_pid;      /* a forked process draws its own */

    tp = ngx_timeofday();
    ms = (uint64_t) tp->sec * 1000 + tp->msec;

    if (ms > last_ms) {
        last_ms = ms;

        if (pool_pid != ngx_pid) {
            pool_pid = ngx_pid;
            pooled = 0;
        }

        if (pooled < sizeof(rnd)) {
            if (RAND_bytes(pool, sizeof(pool)) == 1) {
                pooled = sizeof(pool);

            } else {
                /* cannot happen with a seeded OpenSSL; still never repeat */
                for (i = 0; i < 10; i++) {
                    rnd[i] ^= (u_char) (ngx_random() >> 3);
                }
            }
        }

        if (pooled >= sizeof(rnd)) {
            pooled -= sizeof(rnd);
            ngx_memcpy(rnd, pool + pooled, sizeof(rnd));
            ngx_explicit_memzero(pool + pooled, sizeof(rnd));
        }

        rnd[0] &= 0x7f;     /* leave room to increment */

        /* 50 bits of time -> 10 characters, once a millisecond */

        ngx_http_affiliate_base32_40(time32, last_ms >> 40, 2);
        ngx_http_affiliate_base32_40(time32 + 2, last_ms, 8);

    } else {
        for (i = 9; i >= 0; i--) {
            if (++rnd[i] != 0) {
                break;
            }
        }
    }

    /* then 80 random bits -> 16 characters */

    ngx_memcpy(dst, time32, sizeof(time32));

    ngx_http_affiliate_base32_40(dst + 10,
                                 (uint64_t) rnd[0] << 32
                                 | (uint64_t) rnd[1] << 24
                                 | (uint64_t) rnd[2] << 16
                                 | (uint64_t) rnd[3] << 8 | rnd[4], 8);
    ngx_http_affiliate_base32_40(dst + 18,
                                 (uint64_t) rnd[5] << 32
                                 | (uint64_t) rnd[6] << 24
                                 | (uint64_t) rnd[7] << 16
                                 | (uint64_t) rnd[8] << 8 | rnd[9], 8);
}


/* the n low 5-bit groups of v, most significant first, unrolled */

static ngx_inline void
ngx_http_affiliate_base32_40(u_char *dst, uint64_t v, ngx_uint_t n)
{
    ngx_uint_t  i;

    for (i = n; i > 0; i--) {
        dst[i - 1] = ngx_http_affiliate_base32[v & 0x1f];
        v >>= 5;
    }
}


/*
 * The shared-memory entries a click will update (unique clicks, the
 * per-creator counters), asked for as soon as their keys are known:
 * each is a cache miss into megabytes of tables, fetched while the
 * destination is built instead of one after another in the click.
 */

void
ngx_http_affiliate_click_prefetch(ngx_http_request_t *r,
    ngx_http_affiliate_zone_t *zone, ngx_http_affiliate_ctx_t *ctx)
{
    ngx_http_affiliate_main_conf_t  *amcf;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_affiliate_module);

    if (amcf->unique) {
        ctx->unique_key = ngx_http_affiliate_unique_key(r, zone->sh, ctx);
        ctx->unique_keyed = 1;

        ngx_http_affiliate_table_prefetch(&zone->sh->unique, ctx->unique_key,
                                          sizeof(ngx_http_affiliate_entry_t));
    }

    ngx_http_affiliate_stat_prefetch(zone->sh, ctx);
}


/*
 * A person following a link: a salted hash of address, User-Agent and
 * link (the User-Agent's own hash is shared with the bot check)
 */

static uint64_t
ngx_http_affiliate_unique_key(ngx_http_request_t *r,
    ngx_http_affiliate_sh_t *sh, ngx_http_affiliate_ctx_t *ctx)
{
    uint64_t  key;

    key = ngx_http_affiliate_hash(sh->salt ^ ngx_http_affiliate_ua_hash(r),
                                  r->connection->addr_text.data,
                                  r->connection->addr_text.len);

    return ngx_http_affiliate_hash(key, ctx->link.data, ctx->link.len);
}


void
ngx_http_affiliate_click(ngx_http_request_t *r,
    ngx_http_affiliate_zone_t *zone, ngx_http_affiliate_ctx_t *ctx,
    ngx_http_affiliate_type_e type)
{
    uint64_t                            key;
    ngx_str_t                           v;
    ngx_http_affiliate_sh_t            *sh;
    ngx_http_affiliate_cookie_t        *c;
    ngx_http_affiliate_loc_conf_t      *alcf;
    ngx_http_affiliate_main_conf_t     *amcf;
    ngx_http_affiliate_cookie_value_t   cv;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_affiliate_module);
    alcf = ngx_http_get_module_loc_conf(r, ngx_http_affiliate_module);
    sh = zone->sh;

    if (!ctx->bot_done) {
        ctx->bot_reason = ngx_http_affiliate_bot(r, amcf);
    }

    if (ctx->bot_reason) {
        ngx_http_affiliate_count(sh, NGX_HTTP_AFFILIATE_BOT_CLICKS);
        goto record;
    }

    /*
     * A person's click on a link that is not live (410 or the expired=
     * fallback) is no click of the link: counted by its reason only
     * (choose.c); no click id, no click-index entry, no cookie (a
     * visitor's valid one stays), not in the creator's counters
     */

    if (ctx->reason) {
        goto anonymize;
    }

    ngx_http_affiliate_count(sh, type == NGX_HTTP_AFFILIATE_CLICK
                                 ? NGX_HTTP_AFFILIATE_CLICKS
                                 : NGX_HTTP_AFFILIATE_LANDINGS);

    if (amcf->unique) {
        key = ctx->unique_keyed ? ctx->unique_key
                                : ngx_http_affiliate_unique_key(r, sh, ctx);

        if (ngx_http_affiliate_table_seen(&sh->unique, key, ngx_time(),
                                          amcf->unique))
        {
            ctx->unique = NGX_HTTP_AFFILIATE_FALSE;

        } else {
            ctx->unique = NGX_HTTP_AFFILIATE_TRUE;
            ngx_http_affiliate_count(sh, NGX_HTTP_AFFILIATE_UNIQUE_CLICKS);
        }
    }

    ngx_http_affiliate_click_index_add(sh, ctx);

    c = alcf->cookie;

    if (c == NULL) {
        goto record;
    }

    if (c->consent) {
        if (ngx_http_complex_value(r, c->consent, &v) != NGX_OK) {
            goto record;
        }

        if (v.len == 0 || (v.len == 1 && v.data[0] == '0')) {
            ctx->cookie = "no_consent";
            goto record;
        }
    }

    if (alcf->attribution == NGX_HTTP_AFFILIATE_FIRST_CLICK
        && ngx_http_affiliate_cookie_get(r, zone, &cv) == NGX_OK)
    {
        ctx->cookie = "kept";
        goto record;
    }

    if (ngx_http_affiliate_set_cookie(r, zone, amcf, c, ctx) == NGX_OK) {
        ctx->cookie = "set";
    }

record:

    ngx_http_affiliate_stat_count(sh, ctx, type);

anonymize:

    if (alcf->anonymize_ip) {
        ngx_http_affiliate_anonymize(r, ctx);
    }

    ngx_http_affiliate_record(r, zone, ctx, type);
}


/* the record keeps the /24 of IPv4 and the /48 of IPv6 */

void
ngx_http_affiliate_anonymize(ngx_http_request_t *r,
    ngx_http_affiliate_ctx_t *ctx)
{
    u_char               *p;
    size_t                len;
    ngx_sockaddr_t        sa;
    struct sockaddr_in   *sin;
#if (NGX_HAVE_INET6)
    u_char               *a;
    struct sockaddr_in6  *sin6;
#endif

    len = r->connection->socklen;

    if (len > sizeof(ngx_sockaddr_t)) {
        return;
    }

    ngx_memcpy(&sa, r->connection->sockaddr, len);

    switch (sa.sockaddr.sa_family) {

    case AF_INET:
        sin = &sa.sockaddr_in;
        sin->sin_addr.s_addr &= htonl(0xffffff00);
        break;

#if (NGX_HAVE_INET6)
    case AF_INET6:
        sin6 = &sa.sockaddr_in6;
        a = sin6->sin6_addr.s6_addr;

        if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
            a[15] = 0;

        } else {
            ngx_memzero(a + 6, 10);
        }

        break;
#endif

    default:
        return;
    }

    p = ngx_pnalloc(r->pool, NGX_SOCKADDR_STRLEN);
    if (p == NULL) {
        return;
    }

    ctx->ip.len = ngx_sock_ntop(&sa.sockaddr, len, p, NGX_SOCKADDR_STRLEN, 0);
    ctx->ip.data = p;
}


char *
ngx_http_affiliate_attr_init(ngx_conf_t *cf,
    ngx_http_affiliate_main_conf_t *amcf)
{
    if (amcf->window == NGX_CONF_UNSET) {
        amcf->window = 30 * 86400;
    }

    if (amcf->unique == NGX_CONF_UNSET) {
        amcf->unique = 86400;
    }

    if (amcf->secret.len) {
        amcf->secret_mac = ngx_http_affiliate_mac_new(cf, &amcf->secret);
        if (amcf->secret_mac == NULL) {
            return "cannot set up HMAC-SHA256 for affiliate_secret";
        }
    }

    if (amcf->postback_key.len) {
        amcf->postback_mac = ngx_http_affiliate_mac_new(cf,
                                                        &amcf->postback_key);
        if (amcf->postback_mac == NULL) {
            return "cannot set up HMAC-SHA256 for affiliate_postback_key";
        }
    }

    return NGX_CONF_OK;
}
