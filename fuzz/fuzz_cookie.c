
/*
 * Copyright (C) ngx_http_affiliate_module authors
 *
 * The signed attribution cookie (ngx_http_affiliate_cookie.c): set by
 * ngx_http_affiliate_set_cookie(), read back by _cookie_get().  The
 * cookie is configured through the affiliate_cookie directive handler,
 * the key through ngx_http_affiliate_mac_new().
 *
 * Input: a control byte, then CLICK_ID \n CREATOR \n CAMPAIGN (the click
 * id mapped onto the base32 alphabet, as ids always are; creator and
 * campaign taken when valid text or empty, as the handlers give them).
 * Control byte 0xff: the rest is a Cookie header as a client sends it.
 *
 * Properties: Set-Cookie is printable ASCII and its value only RFC 6265
 * cookie-octets; verify(sign(x)) gives back the click id, creator,
 * campaign and time exactly, among other cookies; a one-byte change of
 * the value (eight positions an input, one in each eighth) fails
 * verification; a Cookie header from a client that does not know the
 * key never verifies.
 */


#define FZ_OWN_INIT  1

#include "fuzz_common.h"

#include "../ngx_http_affiliate_module/ngx_http_affiliate_cookie.c"


static ngx_http_affiliate_main_conf_t   fz_amcf;
static ngx_http_affiliate_loc_conf_t    fz_alcf;
static ngx_http_affiliate_zone_t        fz_zone;
static void                            *fz_main_conf[1];
static void                            *fz_loc_conf[1];
static ngx_str_t                        fz_secret =
    ngx_string("cookie-secret-for-fuzzing-0123456789abcdef");


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    ngx_str_t      *a;
    ngx_uint_t      i;
    ngx_conf_t      cf;
    ngx_command_t   cmd;

    static char  *args[] = {
        "affiliate_cookie", "aff", "path=/", "domain=.brand.example",
        "secure", "httponly", "samesite=lax", NULL
    };

    fz_init();
    fz_module_index();

    fz_conf(&cf, fz_cycle.pool);

    cf.args = ngx_array_create(cf.pool, 8, sizeof(ngx_str_t));

    for (i = 0; args[i]; i++) {
        a = ngx_array_push(cf.args);
        a->data = (u_char *) args[i];
        a->len = ngx_strlen(args[i]);
    }

    ngx_memzero(&cmd, sizeof(ngx_command_t));
    fz_alcf.cookie = NGX_CONF_UNSET_PTR;

    if (ngx_http_affiliate_cookie(&cf, &cmd, &fz_alcf) != NGX_CONF_OK) {
        abort();
    }

    fz_amcf.secret = fz_secret;
    fz_amcf.secret_mac = ngx_http_affiliate_mac_new(&cf, &fz_secret);
    fz_amcf.window = 30 * 86400;

    if (fz_amcf.secret_mac == NULL) {
        abort();
    }

    fz_zone.sh = calloc(1, sizeof(ngx_http_affiliate_sh_t));

    fz_main_conf[0] = &fz_amcf;
    fz_loc_conf[0] = &fz_alcf;

    return 0;
}


/* a request that sends one Cookie header */

static ngx_int_t
fz_get(ngx_pool_t *pool, u_char *header, size_t len,
    ngx_http_affiliate_cookie_value_t *cv)
{
    ngx_table_elt_t     *h, **hp;
    ngx_http_request_t   r;

    fz_request(&r, pool, fz_main_conf, fz_loc_conf);

    h = ngx_pcalloc(pool, sizeof(ngx_table_elt_t));
    ngx_str_set(&h->key, "Cookie");
    /* nginx ends every header value with a NUL; its parsers rely on it */

    h->value.data = ngx_pnalloc(pool, len + 1);
    h->value.len = len;

    if (len) {
        ngx_memcpy(h->value.data, header, len);
    }

    h->value.data[len] = '\0';

#if (nginx_version >= 1023000)
    h->next = NULL;
    r.headers_in.cookie = h;
#else
    if (ngx_array_init(&r.headers_in.cookies, pool, 1,
                       sizeof(ngx_table_elt_t *))
        != NGX_OK)
    {
        abort();
    }

    hp = ngx_array_push(&r.headers_in.cookies);
    *hp = h;
#endif

    ngx_memzero(cv, sizeof(ngx_http_affiliate_cookie_value_t));

    return ngx_http_affiliate_cookie_get(&r, &fz_zone, cv);
}


static ngx_uint_t
fz_cookie_octet(u_char c)
{
    return c == 0x21 || (c >= 0x23 && c <= 0x2b) || (c >= 0x2d && c <= 0x3a)
           || (c >= 0x3c && c <= 0x5b) || (c >= 0x5d && c <= 0x7e);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char                             *hdr, *v, *semi, old;
    size_t                              vlen, i, k, hlen;
    ngx_str_t                           f[3];
    ngx_int_t                           rc;
    ngx_pool_t                         *pool;
    ngx_list_part_t                    *part;
    ngx_table_elt_t                    *h;
    ngx_http_request_t                  r;
    ngx_http_affiliate_ctx_t            ctx;
    ngx_http_affiliate_cookie_value_t   cv;

    static u_char  pre[] = "theme=dark; aff_x=1; ";
    static u_char  post[] = "; other=2";

    if (size < 1 || size > 4096) {
        return -1;
    }

    pool = fz_pool();

    if (data[0] == 0xff) {
        rc = fz_get(pool, (u_char *) data + 1, size - 1, &cv);

        fz_assert(rc != NGX_OK, "a forged cookie verified: %s",
                  fz_show(data + 1, size - 1));
        goto done;
    }

    (void) fz_split(data + 1, size - 1, '\n', f, 3);

    if (!fz_names_valid(&f[1], &f[2])) {
        goto done;
    }

    ngx_memzero(&ctx, sizeof(ngx_http_affiliate_ctx_t));

    ngx_memset(ctx.click_id, '0', NGX_HTTP_AFFILIATE_ULID_LEN);

    for (i = 0; i < ngx_min(f[0].len, NGX_HTTP_AFFILIATE_ULID_LEN); i++) {
        ctx.click_id[i] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"[f[0].data[i]
                                                             & 0x1f];
    }

    ctx.has_click_id = 1;
    ctx.visitor = (0x9e3779b97f4a7c15ULL * (data[0] + 1)) | 1;
    ctx.creator = f[1];
    ctx.campaign = f[2];
    (void) fz_dup(pool, &ctx.creator);
    (void) fz_dup(pool, &ctx.campaign);

    /* sign */

    fz_request(&r, pool, fz_main_conf, fz_loc_conf);

    fz_assert(ngx_http_affiliate_set_cookie(&r, &fz_zone, &fz_amcf,
                                            fz_alcf.cookie, &ctx)
              == NGX_OK, "set_cookie failed");

    part = &r.headers_out.headers.part;
    h = part->elts;

    fz_assert(part->nelts == 1 && h[0].key.len == 10
              && ngx_strncmp(h[0].key.data, "Set-Cookie", 10) == 0,
              "no Set-Cookie header");

    for (i = 0; i < h[0].value.len; i++) {
        fz_assert(h[0].value.data[i] >= 0x20 && h[0].value.data[i] < 0x7f,
                  "Set-Cookie byte 0x%02x", h[0].value.data[i]);
    }

    fz_assert(h[0].value.len > 4
              && ngx_strncmp(h[0].value.data, "aff=", 4) == 0,
              "Set-Cookie name: %s",
              fz_show(h[0].value.data, h[0].value.len));

    v = h[0].value.data + 4;
    semi = memchr(v, ';', h[0].value.data + h[0].value.len - v);
    vlen = (semi ? semi : h[0].value.data + h[0].value.len) - v;

    for (i = 0; i < vlen; i++) {
        fz_assert(fz_cookie_octet(v[i]), "cookie value byte 0x%02x: %s",
                  v[i], fz_show(v, vlen));
    }

    /* verify, among other cookies */

    hlen = sizeof(pre) - 1 + 4 + vlen + sizeof(post) - 1;
    hdr = ngx_pnalloc(pool, hlen);

    ngx_memcpy(ngx_cpymem(ngx_cpymem(ngx_cpymem(hdr, pre, sizeof(pre) - 1),
                                     "aff=", 4),
                          v, vlen),
               post, sizeof(post) - 1);

    rc = fz_get(pool, hdr, hlen, &cv);

    fz_assert(rc == NGX_OK, "verify(sign(x)) failed: %s", fz_show(v, vlen));

    fz_assert(cv.click_id.len == NGX_HTTP_AFFILIATE_ULID_LEN
              && ngx_memcmp(cv.click_id.data, ctx.click_id,
                            NGX_HTTP_AFFILIATE_ULID_LEN) == 0,
              "click id differs");

    fz_assert(cv.creator.len == ctx.creator.len
              && (ctx.creator.len == 0
                  || ngx_memcmp(cv.creator.data, ctx.creator.data,
                                ctx.creator.len) == 0),
              "creator differs: %s", fz_show(cv.creator.data,
                                             cv.creator.len));

    fz_assert(cv.campaign.len == ctx.campaign.len
              && (ctx.campaign.len == 0
                  || ngx_memcmp(cv.campaign.data, ctx.campaign.data,
                                ctx.campaign.len) == 0),
              "campaign differs: %s", fz_show(cv.campaign.data,
                                              cv.campaign.len));

    fz_assert(cv.time == ngx_time(), "time %ld", (long) cv.time);

    /*
     * A one-byte change of the value fails: eight positions an input,
     * one in each eighth of the value, offset by the input's bytes.
     */

    v = hdr + sizeof(pre) - 1 + 4;

    for (k = 0; k < 8; k++) {
        i = (k * vlen / 8 + data[k % size]) % vlen;
        old = v[i];
        v[i] = (u_char) (old ^ (data[0] | 1));

        rc = fz_get(pool, hdr, hlen, &cv);

        fz_assert(rc != NGX_OK, "a cookie changed at byte %zu verified: %s",
                  i, fz_show(v, vlen));

        v[i] = old;
    }

done:

    ngx_destroy_pool(pool);

    return 0;
}
