
/*
 * Copyright (C) ngx_http_affiliate_module authors
 *
 * affiliate_capture (ngx_http_affiliate_capture.c): decoding the creator
 * and campaign parameters of a landing (affiliate_capture creator=ref
 * campaign=cmp) and the strip=on target, the same URL without them.
 *
 * Input: URI \n ARGS: r->uri as nginx normalises it (any bytes) and the
 * query as sent.
 *
 * Properties: the creator is the form-decoding ('+' is a space, then
 * %XX) of the first ref= parameter, name compared case-insensitively,
 * and valid text within 64 bytes, else the landing is not captured; the
 * campaign likewise or empty.  The target is printable ASCII, starts
 * with one '/' not followed by '/' or '\' (a browser stays on this
 * host), its path decodes to the URI with its leading slashes and
 * backslashes collapsed, holds no raw '?' or '#', and its query is the
 * request's non-empty parameters but ref and cmp, in order, with bytes
 * a header cannot carry percent-encoded.
 */


#include "fuzz_common.h"

#include "../ngx_http_affiliate_module/ngx_http_affiliate_capture.c"


/* the form decoding of the first NAME= (any case); 0 when well-formed */

static ngx_int_t
fz_first_param(ngx_str_t *args, const char *name, ngx_str_t *out,
    ngx_uint_t *found)
{
    u_char  *p, *last, *amp;
    size_t   n;

    *found = 0;
    n = ngx_strlen(name);
    last = args->data + args->len;

    for (p = args->data; p < last; p = amp + 1) {
        amp = memchr(p, '&', last - p);
        amp = amp ? amp : last;

        if ((size_t) (amp - p) <= n || p[n] != '='
            || ngx_strncasecmp(p, (u_char *) name, n) != 0)
        {
            continue;
        }

        *found = 1;

        return fz_form_decode(p + n + 1, amp, out->data, &out->len, 1);
    }

    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char                         *p, *last, *amp, *eq, *d, *q, *path, c;
    ngx_int_t                       rc, wf;
    ngx_str_t                       f[2], want, target, dec;
    ngx_uint_t                      found, i;
    ngx_pool_t                     *pool;
    ngx_http_request_t              r;
    ngx_http_affiliate_ctx_t        ctx;
    ngx_http_affiliate_loc_conf_t   alcf;

    if (size > 4096) {
        return -1;
    }

    pool = fz_pool();

    (void) fz_split(data, size, '\n', f, 2);

    fz_request(&r, pool, NULL, NULL);
    r.uri = f[0];
    r.args = f[1];
    (void) fz_dup(pool, &r.uri);
    (void) fz_dup(pool, &r.args);

    ngx_memzero(&alcf, sizeof(ngx_http_affiliate_loc_conf_t));
    ngx_str_set(&alcf.capture_creator, "ref");
    ngx_str_set(&alcf.capture_campaign, "cmp");

    ngx_memzero(&ctx, sizeof(ngx_http_affiliate_ctx_t));

    want.data = ngx_pnalloc(pool, r.args.len + 1);

    /* the parameters */

    rc = ngx_http_affiliate_capture_params(&r, &alcf, &ctx);

    wf = fz_first_param(&r.args, "ref", &want, &found);

    if (rc != NGX_OK) {
        fz_assert(!found || wf != 0 || want.len == 0
                  || !ngx_http_affiliate_text_valid(&want,
                                              NGX_HTTP_AFFILIATE_CREATOR_MAX),
                  "creator \"%s\" not captured", fz_show(want.data,
                                                         want.len));

    } else {
        fz_assert(found && ngx_http_affiliate_text_valid(&ctx.creator,
                                              NGX_HTTP_AFFILIATE_CREATOR_MAX),
                  "creator \"%s\" captured",
                  fz_show(ctx.creator.data, ctx.creator.len));

        fz_assert(wf != 0 || (want.len == ctx.creator.len
                              && ngx_memcmp(want.data, ctx.creator.data,
                                            want.len) == 0),
                  "creator decodes to \"%s\"",
                  fz_show(ctx.creator.data, ctx.creator.len));

        wf = fz_first_param(&r.args, "cmp", &want, &found);

        if (ctx.campaign.len) {
            fz_assert(found && ngx_http_affiliate_text_valid(&ctx.campaign,
                                             NGX_HTTP_AFFILIATE_CAMPAIGN_MAX)
                      && (wf != 0
                          || (want.len == ctx.campaign.len
                              && ngx_memcmp(want.data, ctx.campaign.data,
                                            want.len) == 0)),
                      "campaign \"%s\"",
                      fz_show(ctx.campaign.data, ctx.campaign.len));
        }
    }

    /* the strip=on target */

    fz_assert(ngx_http_affiliate_capture_target(&r, &alcf, &target)
              == NGX_OK, "capture_target failed");

    for (i = 0; i < target.len; i++) {
        fz_assert(target.data[i] > 0x20 && target.data[i] < 0x7f,
                  "target byte 0x%02x: %s", target.data[i],
                  fz_show(target.data, target.len));
    }

    fz_assert(target.len >= 1 && target.data[0] == '/'
              && (target.len == 1
                  || (target.data[1] != '/' && target.data[1] != '\\')),
              "target leaves the host: %s",
              fz_show(target.data, target.len));

    q = memchr(target.data, '?', target.len);
    last = q ? q : target.data + target.len;

    fz_assert(memchr(target.data, '#', last - target.data) == NULL,
              "raw '#' in the target's path: %s",
              fz_show(target.data, target.len));

    /* the path decodes to the URI, leading slashes collapsed */

    dec.data = ngx_pnalloc(pool, target.len + 1);
    d = dec.data;
    p = target.data;
    ngx_unescape_uri(&d, &p, last - target.data, 0);
    dec.len = d - dec.data;

    path = r.uri.data;

    while (path < r.uri.data + r.uri.len && (*path == '/' || *path == '\\')) {
        path++;
    }

    fz_assert(dec.len == 1 + (size_t) (r.uri.data + r.uri.len - path)
              && ngx_memcmp(dec.data + 1, path, dec.len - 1) == 0,
              "target path decodes to \"%s\"", fz_show(dec.data, dec.len));

    /* the query: the other non-empty parameters, in order */

    want.data = ngx_pnalloc(pool, 3 * r.args.len + 2);
    d = want.data;
    last = r.args.data + r.args.len;

    for (p = r.args.data; p < last; p = amp + 1) {
        amp = memchr(p, '&', last - p);
        amp = amp ? amp : last;

        eq = memchr(p, '=', amp - p);
        eq = eq ? eq : amp;

        if (amp == p
            || ((size_t) (eq - p) == 3
                && (ngx_strncasecmp(p, (u_char *) "ref", 3) == 0
                    || ngx_strncasecmp(p, (u_char *) "cmp", 3) == 0)))
        {
            continue;
        }

        c = (d == want.data) ? '?' : '&';
        *d++ = c;

        for (q = p; q < amp; q++) {
            if (*q > 0x20 && *q < 0x7f && *q != '#') {
                *d++ = *q;

            } else {
                d = ngx_sprintf(d, "%%%02XD", (uint32_t) *q);
            }
        }
    }

    want.len = d - want.data;

    q = memchr(target.data, '?', target.len);
    q = q ? q : target.data + target.len;

    fz_assert((size_t) (target.data + target.len - q) == want.len
              && ngx_memcmp(q, want.data, want.len) == 0,
              "target query \"%s\"",
              fz_show(q, target.data + target.len - q));

    ngx_destroy_pool(pool);

    return 0;
}
