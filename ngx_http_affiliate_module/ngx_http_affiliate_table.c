
/*
 * Copyright (C) ngx_http_affiliate_module authors
 *
 * Bounded tables of recent keys in shared memory: unique clicks, orders
 * and the click-id index.  Direct-mapped: a new key takes the place of
 * whatever shared its slot, so the table never fills and never fails.
 * Each entry is a seqlock: a writer makes the version odd with a
 * compare-and-swap, then a release fence keeps its stores to the entry
 * from becoming visible before the odd version (an acquire CAS alone
 * does not order them on arm64); it fills the entry and makes the
 * version even again with a release store.  A reader loads the version
 * (acquire), copies, issues an acquire fence and loads the version
 * again; a version that is odd or changed means "not found", readers
 * retry nothing.  A writer killed
 * mid-write leaves one entry odd for good: that entry is lost, nothing
 * waits for it.
 */


#include "ngx_http_affiliate_module.h"


static ngx_http_affiliate_entry_t *ngx_http_affiliate_table_entry(
    ngx_http_affiliate_table_t *t, uint64_t key);


void
ngx_http_affiliate_table_init(ngx_http_affiliate_table_t *t, u_char *mem,
    size_t size, size_t entry_size)
{
    t->size = entry_size;
    t->n = size / entry_size;
    t->entries = mem;
}


static ngx_http_affiliate_entry_t *
ngx_http_affiliate_table_entry(ngx_http_affiliate_table_t *t, uint64_t key)
{
    return (ngx_http_affiliate_entry_t *)
               (t->entries
                + ngx_http_affiliate_key_index(key, t->n) * t->size);
}


/*
 * Asks for the lines of key's entry (len bytes of it) to be fetched for
 * writing while the request goes on: the tables are megabytes, a
 * lookup is a cache miss.
 */

void
ngx_http_affiliate_table_prefetch(ngx_http_affiliate_table_t *t,
    uint64_t key, size_t len)
{
    u_char  *p, *last;

    if (t->n == 0) {
        return;
    }

    p = (u_char *) ngx_http_affiliate_table_entry(t, key);
    last = p + ngx_min(len, t->size);

    for (p = ngx_align_ptr(p - 63, 64); p < last; p += 64) {
        __builtin_prefetch(p, 1);
    }
}


/*
 * Returns 1 if key was stored less than window seconds ago; otherwise
 * stores it with the time now and returns 0.
 */

ngx_uint_t
ngx_http_affiliate_table_seen(ngx_http_affiliate_table_t *t, uint64_t key,
    time_t now, time_t window)
{
    uint64_t                     v, k;
    int64_t                      tm;
    ngx_http_affiliate_entry_t  *e;

    if (t->n == 0) {
        return 0;
    }

    e = ngx_http_affiliate_table_entry(t, key);

    v = __atomic_load_n(&e->version, __ATOMIC_ACQUIRE);

    if (v & 1) {
        return 0;
    }

    k = __atomic_load_n(&e->key, __ATOMIC_RELAXED);
    tm = __atomic_load_n(&e->time, __ATOMIC_RELAXED);

    __atomic_thread_fence(__ATOMIC_ACQUIRE);

    if (__atomic_load_n(&e->version, __ATOMIC_RELAXED) == v
        && k == key && now - tm < window)
    {
        return 1;
    }

    if (__atomic_compare_exchange_n(&e->version, &v, v + 1, 0,
                                    __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
    {
        __atomic_thread_fence(__ATOMIC_RELEASE);

        __atomic_store_n(&e->key, key, __ATOMIC_RELAXED);
        __atomic_store_n(&e->time, (int64_t) now, __ATOMIC_RELAXED);
        __atomic_store_n(&e->version, v + 2, __ATOMIC_RELEASE);
    }

    return 0;
}


void
ngx_http_affiliate_click_index_add(ngx_http_affiliate_sh_t *sh,
    ngx_http_affiliate_ctx_t *ctx)
{
    uint64_t                           v, key;
    ngx_http_affiliate_click_entry_t  *ce;

    if (sh->clicks.n == 0) {
        return;
    }

    key = ctx->click_keyed ? ctx->click_key
                           : ngx_http_affiliate_click_key(sh, ctx->click_id);

    ce = (ngx_http_affiliate_click_entry_t *)
             ngx_http_affiliate_table_entry(&sh->clicks, key);

    v = __atomic_load_n(&ce->e.version, __ATOMIC_ACQUIRE);

    if ((v & 1)
        || !__atomic_compare_exchange_n(&ce->e.version, &v, v + 1, 0,
                                        __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
    {
        return;
    }

    __atomic_thread_fence(__ATOMIC_RELEASE);

    __atomic_store_n(&ce->e.key, key, __ATOMIC_RELAXED);
    __atomic_store_n(&ce->e.time, (int64_t) ngx_time(), __ATOMIC_RELAXED);

    ngx_memcpy(ce->click_id, ctx->click_id, NGX_HTTP_AFFILIATE_ULID_LEN);

    /* an empty string may have a NULL data: memcpy() from NULL is UB */

    ce->creator_len = (u_char) ngx_min(ctx->creator.len, sizeof(ce->creator));

    if (ce->creator_len) {
        ngx_memcpy(ce->creator, ctx->creator.data, ce->creator_len);
    }

    ce->campaign_len = (u_char) ngx_min(ctx->campaign.len,
                                        sizeof(ce->campaign));

    if (ce->campaign_len) {
        ngx_memcpy(ce->campaign, ctx->campaign.data, ce->campaign_len);
    }

    __atomic_store_n(&ce->e.version, v + 2, __ATOMIC_RELEASE);
}


ngx_int_t
ngx_http_affiliate_click_index_find(ngx_http_affiliate_sh_t *sh,
    ngx_str_t *click_id, time_t window, ngx_pool_t *pool,
    ngx_str_t *creator, ngx_str_t *campaign)
{
    u_char                            *p;
    uint64_t                           v, key;
    ngx_http_affiliate_click_entry_t  *ce, copy;

    if (sh->clicks.n == 0 || click_id->len != NGX_HTTP_AFFILIATE_ULID_LEN) {
        return NGX_DECLINED;
    }

    key = ngx_http_affiliate_click_key(sh, click_id->data);

    ce = (ngx_http_affiliate_click_entry_t *)
             ngx_http_affiliate_table_entry(&sh->clicks, key);

    v = __atomic_load_n(&ce->e.version, __ATOMIC_ACQUIRE);

    if (v & 1) {
        return NGX_DECLINED;
    }

    ngx_memcpy(&copy, ce, sizeof(ngx_http_affiliate_click_entry_t));

    __atomic_thread_fence(__ATOMIC_ACQUIRE);

    if (__atomic_load_n(&ce->e.version, __ATOMIC_RELAXED) != v
        || copy.e.key != key
        || ngx_time() - copy.e.time >= window
        || ngx_memcmp(copy.click_id, click_id->data, click_id->len) != 0
        || copy.creator_len > sizeof(copy.creator)
        || copy.campaign_len > sizeof(copy.campaign))
    {
        return NGX_DECLINED;
    }

    p = ngx_pnalloc(pool, copy.creator_len + copy.campaign_len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    creator->data = p;
    creator->len = copy.creator_len;
    p = ngx_cpymem(p, copy.creator, copy.creator_len);

    campaign->data = p;
    campaign->len = copy.campaign_len;
    ngx_memcpy(p, copy.campaign, copy.campaign_len);

    return NGX_OK;
}


/*
 * A click id's key in the click index: its last eight characters (40 of
 * its 80 random bits, different for every id of a millisecond) hashed
 * with the salt.  Only ids the module made are added, so hashing the
 * rest would add nothing; a lookup compares the whole id.
 */

uint64_t
ngx_http_affiliate_click_key(ngx_http_affiliate_sh_t *sh, u_char *id)
{
    return ngx_http_affiliate_hash(sh->salt,
                                   id + NGX_HTTP_AFFILIATE_ULID_LEN - 8, 8);
}


/* FNV-1a seeded with the zone's random salt, then a 64-bit finalizer */

uint64_t
ngx_http_affiliate_hash(uint64_t h, u_char *data, size_t len)
{
    uint64_t  w;
#if (NGX_HAVE_LITTLE_ENDIAN)
    size_t    i;
    u_char   *start;
#endif

    /* eight bytes a step (a byte a step cost ~1,000 instructions a click) */

    h ^= 0xcbf29ce484222325ULL;

#if (NGX_HAVE_LITTLE_ENDIAN)
    start = data;
#endif

    for ( /* void */ ; len >= 8; data += 8, len -= 8) {
        ngx_memcpy(&w, data, 8);
        h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
        h ^= h >> 29;
    }

    if (len) {

        /*
         * the last len bytes over the length, as a memcpy() puts them;
         * after a full word they are read as one, ending at the end
         */

#if (NGX_HAVE_LITTLE_ENDIAN)
        if (data - start >= 8) {
            ngx_memcpy(&w, data + len - 8, 8);
            w = (w >> (8 * (8 - len))) | (uint64_t) len << 56;

        } else {
            w = (uint64_t) len << 56;

            for (i = 0; i < len; i++) {
                w |= (uint64_t) data[i] << (8 * i);
            }
        }
#else
        w = (uint64_t) len << 56;
        ngx_memcpy(&w, data, len);
#endif

        h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
        h ^= h >> 29;
    }

    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;

    return h;
}
