
/*
 * Copyright (C) ngx_http_affiliate_module authors
 *
 * Live counters per creator and campaign, and revenue per currency, in
 * the zone's "creators=" table.  See docs/log-format.md and
 * docs/internals.md.
 */


#include "ngx_http_affiliate_module.h"


/* a pair is looked for in at most this many entries: bounded work */
#define NGX_HTTP_AFFILIATE_STAT_PROBES  64

#define NGX_HTTP_AFFILIATE_STAT_SEED    0x243f6a8885a308d3ULL


static ngx_http_affiliate_stat_t *ngx_http_affiliate_stat_find(
    ngx_http_affiliate_sh_t *sh, uint64_t key, ngx_str_t *creator,
    ngx_str_t *campaign);
static uint64_t ngx_http_affiliate_ctx_stat_key(ngx_http_affiliate_ctx_t *ctx);
static void ngx_http_affiliate_amount_parse(ngx_str_t *amount,
    uint64_t *units, uint64_t *frac);


/*
 * The entry of a creator and campaign, added when first seen.  Entry 0
 * is the "other" bucket: pairs that find no room (the table is full or
 * its entry is still being written) are counted there, never lost.
 *
 * Adding is lock-free: a CAS claims a free key, the names are copied,
 * then "ready" is set.  A worker killed in between leaves that pair in
 * "other" for good (one entry per crash).
 */

ngx_http_affiliate_stat_t *
ngx_http_affiliate_stat(ngx_http_affiliate_sh_t *sh,
    ngx_http_affiliate_ctx_t *ctx)
{
    if (ctx->creator.len == 0 || sh->stats.n < 2) {
        return NULL;
    }

    return ngx_http_affiliate_stat_find(sh,
                                        ngx_http_affiliate_ctx_stat_key(ctx),
                                        &ctx->creator, &ctx->campaign);
}


/* a pair's key: never 0, the mark of a free entry */

uint64_t
ngx_http_affiliate_stat_key(ngx_str_t *creator, ngx_str_t *campaign)
{
    uint64_t  key;

    key = ngx_http_affiliate_hash(NGX_HTTP_AFFILIATE_STAT_SEED,
                                  creator->data, creator->len);
    key = ngx_http_affiliate_hash(key ^ creator->len, campaign->data,
                                  campaign->len);

    return key | 1;
}


/* a request's pair key, made once (a link's when its table was loaded) */

static uint64_t
ngx_http_affiliate_ctx_stat_key(ngx_http_affiliate_ctx_t *ctx)
{
    if (!ctx->stat_keyed) {
        ctx->stat_key = ngx_http_affiliate_stat_key(&ctx->creator,
                                                    &ctx->campaign);
        ctx->stat_keyed = 1;
    }

    return ctx->stat_key;
}


/* the key of a click's pair, and its first entry fetched meanwhile */

void
ngx_http_affiliate_stat_prefetch(ngx_http_affiliate_sh_t *sh,
    ngx_http_affiliate_ctx_t *ctx)
{
    ngx_http_affiliate_stat_t  *st;

    if (ctx->creator.len == 0 || sh->stats.n < 2) {
        return;
    }

    st = (ngx_http_affiliate_stat_t *) sh->stats.entries;
    st += 1 + ngx_http_affiliate_key_index(
                  ngx_http_affiliate_ctx_stat_key(ctx), sh->stats.n - 1);

    __builtin_prefetch(st, 1);
    __builtin_prefetch((u_char *) st + 64, 1);
}


static ngx_http_affiliate_stat_t *
ngx_http_affiliate_stat_find(ngx_http_affiliate_sh_t *sh, uint64_t key,
    ngx_str_t *creator, ngx_str_t *campaign)
{
    uint64_t                    k, i, j, n;
    ngx_http_affiliate_stat_t  *st;

    st = (ngx_http_affiliate_stat_t *) sh->stats.entries;
    n = sh->stats.n;

    for (i = 0, j = 1 + ngx_http_affiliate_key_index(key, n - 1);
         i < ngx_min(n - 1, NGX_HTTP_AFFILIATE_STAT_PROBES);
         i++, j = (j == n - 1) ? 1 : j + 1)
    {
        k = __atomic_load_n(&st[j].key, __ATOMIC_ACQUIRE);

        if (k == 0) {
            if (!__atomic_compare_exchange_n(&st[j].key, &k, key, 0,
                                             __ATOMIC_ACQ_REL,
                                             __ATOMIC_ACQUIRE))
            {
                goto taken;
            }

            st[j].creator_len = (u_char) ngx_min(creator->len,
                                        NGX_HTTP_AFFILIATE_CREATOR_MAX);
            st[j].campaign_len = (u_char) ngx_min(campaign->len,
                                        NGX_HTTP_AFFILIATE_CAMPAIGN_MAX);

            if (st[j].creator_len) {
                ngx_memcpy(st[j].creator, creator->data, st[j].creator_len);
            }

            if (st[j].campaign_len) {
                ngx_memcpy(st[j].campaign, campaign->data,
                           st[j].campaign_len);
            }

            __atomic_store_n(&st[j].ready, 1, __ATOMIC_RELEASE);

            return &st[j];
        }

    taken:

        if (k == key) {
            return __atomic_load_n(&st[j].ready, __ATOMIC_ACQUIRE)
                   ? &st[j] : &st[0];
        }
    }

    return &st[0];
}


void
ngx_http_affiliate_stat_count(ngx_http_affiliate_sh_t *sh,
    ngx_http_affiliate_ctx_t *ctx, ngx_http_affiliate_type_e type)
{
    ngx_http_affiliate_stat_t  *st;

    st = ngx_http_affiliate_stat(sh, ctx);

    if (st == NULL) {
        return;
    }

    if (ctx->bot_reason) {
        ngx_http_affiliate_stat_inc(st->bots);
        return;
    }

    if (type == NGX_HTTP_AFFILIATE_LANDING) {
        ngx_http_affiliate_stat_inc(st->landings);

    } else {
        ngx_http_affiliate_stat_inc(st->clicks);
    }

    if (ctx->unique == NGX_HTTP_AFFILIATE_TRUE) {
        ngx_http_affiliate_stat_inc(st->unique);
    }
}


/* an attributed conversion that is not a duplicate */

void
ngx_http_affiliate_stat_conversion(ngx_http_affiliate_sh_t *sh,
    ngx_http_affiliate_ctx_t *ctx)
{
    ngx_http_affiliate_stat_t  *st;

    st = ngx_http_affiliate_stat(sh, ctx);

    if (st == NULL) {
        return;
    }

    ngx_http_affiliate_stat_inc(st->conversions);

    if (ngx_http_affiliate_revenue_add(st->revenue,
                                       NGX_HTTP_AFFILIATE_STAT_CURRENCIES,
                                       &ctx->amount, &ctx->currency)
        != NGX_OK
        && st != &((ngx_http_affiliate_stat_t *) sh->stats.entries)[0])
    {
        /* a fifth currency for this pair: its money goes to "other" */

        st = (ngx_http_affiliate_stat_t *) sh->stats.entries;

        (void) ngx_http_affiliate_revenue_add(st->revenue,
                                          NGX_HTTP_AFFILIATE_STAT_CURRENCIES,
                                          &ctx->amount, &ctx->currency);
    }
}


/*
 * Adds an exact amount (at most 15 + 4 digits, checked before) to the
 * slot of its currency, taking a free slot when it has none.
 * NGX_DECLINED: every slot holds another currency.
 */

ngx_int_t
ngx_http_affiliate_revenue_add(ngx_http_affiliate_revenue_t *rv,
    ngx_uint_t n, ngx_str_t *amount, ngx_str_t *currency)
{
    uint32_t    code, cur;
    uint64_t    units, frac;
    ngx_uint_t  i;

    code = (uint32_t) currency->data[0] << 16
           | (uint32_t) currency->data[1] << 8 | currency->data[2];

    ngx_http_affiliate_amount_parse(amount, &units, &frac);

    for (i = 0; i < n; i++) {
        cur = __atomic_load_n(&rv[i].code, __ATOMIC_ACQUIRE);

        if (cur == 0) {
            if (!__atomic_compare_exchange_n(&rv[i].code, &cur, code, 0,
                                             __ATOMIC_ACQ_REL,
                                             __ATOMIC_ACQUIRE)
                && cur != code)
            {
                continue;
            }

        } else if (cur != code) {
            continue;
        }

        (void) __atomic_fetch_add(&rv[i].units, units, __ATOMIC_RELAXED);
        (void) __atomic_fetch_add(&rv[i].frac, frac, __ATOMIC_RELAXED);
        (void) __atomic_fetch_add(&rv[i].count, 1, __ATOMIC_RELAXED);

        return NGX_OK;
    }

    return NGX_DECLINED;
}


/* "59.8" -> 59 units and 8000 ten-thousandths */

static void
ngx_http_affiliate_amount_parse(ngx_str_t *amount, uint64_t *units,
    uint64_t *frac)
{
    u_char      *p, *dot, *last;
    ngx_uint_t   n;

    last = amount->data + amount->len;
    dot = ngx_strlchr(amount->data, last, '.');

    *units = 0;

    for (p = amount->data; p < (dot ? dot : last); p++) {
        *units = *units * 10 + (*p - '0');
    }

    *frac = 0;
    n = 0;

    if (dot) {
        for (p = dot + 1; p < last; p++, n++) {
            *frac = *frac * 10 + (*p - '0');
        }
    }

    for ( /* void */ ; n < 4; n++) {
        *frac *= 10;
    }
}


/* the ready entries, most clicks first, at most top of them */

ngx_uint_t
ngx_http_affiliate_stats_top(ngx_http_affiliate_sh_t *sh, ngx_pool_t *pool,
    ngx_uint_t top, ngx_http_affiliate_stat_t ***out)
{
    ngx_uint_t                   i, n;
    ngx_http_affiliate_stat_t   *st, **list;

    st = (ngx_http_affiliate_stat_t *) sh->stats.entries;

    list = ngx_palloc(pool, (sh->stats.n + 1) * sizeof(void *));
    if (list == NULL) {
        return 0;
    }

    for (i = 1, n = 0; i < sh->stats.n; i++) {
        if (__atomic_load_n(&st[i].ready, __ATOMIC_ACQUIRE)) {
            list[n++] = &st[i];
        }
    }

    ngx_sort(list, n, sizeof(void *), ngx_http_affiliate_stat_cmp);

    *out = list;

    return ngx_min(n, top);
}


ngx_int_t
ngx_http_affiliate_stat_cmp(const void *one, const void *two)
{
    uint64_t                    a, b;
    ngx_http_affiliate_stat_t  *s1, *s2;

    s1 = *(ngx_http_affiliate_stat_t **) one;
    s2 = *(ngx_http_affiliate_stat_t **) two;

    a = __atomic_load_n(&s1->clicks, __ATOMIC_RELAXED);
    b = __atomic_load_n(&s2->clicks, __ATOMIC_RELAXED);

    return (a < b) - (a > b);
}
