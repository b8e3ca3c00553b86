
/*
 * Copyright (C) ngx_http_affiliate_module authors
 *
 * Conversion parameters (ngx_http_affiliate_conversion.c): parsing the
 * query or form body, the checks of click_id, order_id, amount and
 * currency, the postback signature and key, and the revenue sums.
 *
 * Input: one control byte, then the arguments.  Control bit 0: append
 * "&sig=" with the right HMAC-SHA256 (hex, in the case bits 2-7 pick);
 * bit 1: append "&key=" with the right key instead.
 *
 * Properties: parsing and checking never change the request's bytes;
 * the signed part is every parameter but sig, in order; a parameter
 * read is the form-decoding of its last occurrence; an accepted
 * click_id is 26 upper-case Crockford base32 characters, an order_id 1-64
 * printable ASCII bytes, an amount a plain decimal of at most 15 + 4
 * digits (and a refused one is one the grammar refuses), a currency three
 * capitals; the revenue sums hold the amount exactly, to 1/10000, and
 * twice the amount after two conversions; the right signature or key is
 * accepted in any hex case, and a one-byte change of the signature, the
 * key or any signed byte is refused.
 */


#define FZ_OWN_INIT  1

#include "fuzz_common.h"

#include <openssl/hmac.h>

#include "../ngx_http_affiliate_module/ngx_http_affiliate_conversion.c"


static ngx_http_affiliate_main_conf_t   fz_amcf;
static void                            *fz_main_conf[1];
static ngx_str_t                        fz_key =
    ngx_string("postback-key-for-fuzzing-0123456789");


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    ngx_conf_t  cf;

    fz_init();
    fz_module_index();

    fz_conf(&cf, fz_cycle.pool);

    fz_amcf.postback_key = fz_key;
    fz_amcf.postback_mac = ngx_http_affiliate_mac_new(&cf, &fz_key);

    if (fz_amcf.postback_mac == NULL) {
        abort();
    }

    fz_main_conf[0] = &fz_amcf;

    return 0;
}


/* the name of the parameter at p, up to amp */

static ngx_uint_t
fz_is(u_char *p, u_char *amp, const char *name)
{
    u_char  *eq;

    eq = memchr(p, '=', amp - p);
    eq = eq ? eq : amp;

    return (size_t) (eq - p) == ngx_strlen(name)
           && ngx_strncmp(p, name, eq - p) == 0;
}


/*
 * What docs/directives.md says is signed: the query or body without the
 * sig parameters, the others joined by '&' exactly as sent, in order.
 */

static void
fz_signed_part(ngx_str_t *args, u_char *out, size_t *len)
{
    u_char      *p, *last, *amp, *d;
    ngx_uint_t   first;

    d = out;
    first = 1;
    last = args->data + args->len;

    for (p = args->data; /* void */; p = amp + 1) {
        amp = memchr(p, '&', last - p);
        amp = amp ? amp : last;

        if (!fz_is(p, amp, "sig")) {
            if (!first) {
                *d++ = '&';
            }

            d = ngx_cpymem(d, p, amp - p);
            first = 0;
        }

        if (amp == last) {
            break;
        }
    }

    *len = d - out;
}


/*
 * The form decoding of the last NAME=value, when its '%'s are all
 * well-formed; -1: absent, -2: a malformed '%' (not compared).
 */

static ngx_int_t
fz_param(ngx_str_t *args, const char *name, u_char *out, size_t *len)
{
    u_char     *p, *last, *amp, *v;
    ngx_int_t   rc;

    rc = -1;
    last = args->data + args->len;

    for (p = args->data; p < last; p = amp + 1) {
        amp = memchr(p, '&', last - p);
        amp = amp ? amp : last;

        if (!fz_is(p, amp, name)) {
            continue;
        }

        v = p + ngx_strlen(name);
        v = (v < amp) ? v + 1 : amp;

        rc = (fz_form_decode(v, amp, out, len, 1) == 0) ? 0 : -2;
    }

    return rc;
}


static void
fz_same_param(ngx_str_t *args, const char *name, ngx_str_t *got,
    u_char *tmp)
{
    size_t     len;
    ngx_int_t  rc;

    rc = fz_param(args, name, tmp, &len);

    if (rc == -1) {
        fz_assert(got->len == 0, "%s read from nowhere", name);

    } else if (rc == 0) {
        fz_assert(got->len == len && ngx_memcmp(got->data, tmp, len) == 0,
                  "%s reads \"%s\"", name, fz_show(got->data, got->len));
    }
}


/* ^[0-9]{1,15}(\.[0-9]{1,4})?$ as units and 1/10000s, or -1 */

static ngx_int_t
fz_amount(ngx_str_t *s, uint64_t *units, uint64_t *frac)
{
    size_t  i, digits, nfrac;

    *units = 0;
    *frac = 0;
    digits = 0;
    nfrac = 0;

    for (i = 0; i < s->len && isdigit(s->data[i]); i++, digits++) {
        if (digits < 15) {
            *units = *units * 10 + s->data[i] - '0';
        }
    }

    if (i < s->len && s->data[i] == '.') {
        for (i++; i < s->len && isdigit(s->data[i]); i++, nfrac++) {
            if (nfrac < 4) {
                *frac = *frac * 10 + s->data[i] - '0';
            }
        }

        if (nfrac == 0) {
            return -1;
        }
    }

    if (i != s->len || digits == 0 || digits > 15 || nfrac > 4) {
        return -1;
    }

    for ( /* void */ ; nfrac < 4; nfrac++) {
        *frac *= 10;
    }

    return 0;
}


static ngx_int_t
fz_auth(ngx_pool_t *pool, ngx_str_t *args)
{
    ngx_http_request_t              r;
    ngx_http_affiliate_conv_args_t  a;

    fz_request(&r, pool, fz_main_conf, NULL);

    fz_assert(ngx_http_affiliate_conversion_parse(&r, args, &a) == NGX_OK,
              "parse failed");

    return ngx_http_affiliate_postback_auth(&r, &a);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char                            *err;
    u_char                          *copy, *tmp, *tmp2, mac[32], *p, *ps, *pe;
    u_char                           hex[64];
    size_t                           len, len2, i;
    uint64_t                         units, frac;
    ngx_int_t                        amount_ok;
    uint32_t                         code;
    ngx_str_t                        args, s;
    ngx_uint_t                       ctl, n;
    ngx_pool_t                      *pool;
    unsigned int                     maclen;
    ngx_http_request_t               r;
    ngx_http_affiliate_revenue_t    *rv, *rvs;
    ngx_http_affiliate_conv_args_t   a;

    if (size < 1 || size > 4096) {
        return -1;
    }

    ctl = data[0];
    pool = fz_pool();

    if (ctl & 2) {
        ctl &= ~1;      /* a key wins over a signature */
    }

    /* the arguments, with a right key or signature appended */

    args.len = size - 1;
    args.data = ngx_pnalloc(pool, args.len + 6 + 64 + 5 + fz_key.len);
    ngx_memcpy(args.data, data + 1, args.len);

    tmp = ngx_pnalloc(pool, args.len + 128 + fz_key.len);
    tmp2 = ngx_pnalloc(pool, args.len + 128 + fz_key.len);

    if (ctl & 2) {
        args.data[args.len++] = '&';
        args.len = ngx_cpymem(args.data + args.len, "key=", 4) - args.data;
        args.len = ngx_cpymem(args.data + args.len, fz_key.data, fz_key.len)
                   - args.data;
    }

    if (ctl & 1) {
        fz_signed_part(&args, tmp, &len);
        HMAC(EVP_sha256(), fz_key.data, fz_key.len, tmp, len, mac, &maclen);
        ngx_hex_dump(hex, mac, 32);

        for (i = 0; i < 64; i++) {
            if (((ctl >> 2) & (1 << (i % 6))) && hex[i] >= 'a') {
                hex[i] = ngx_toupper(hex[i]);
            }
        }

        args.data[args.len++] = '&';
        args.len = ngx_cpymem(args.data + args.len, "sig=", 4) - args.data;
        args.len = ngx_cpymem(args.data + args.len, hex, 64) - args.data;
    }

    /* exactly as long as the arguments: ASan sees a read past them */

    s = args;
    (void) fz_dup(pool, &s);
    args = s;

    copy = ngx_pnalloc(pool, args.len + 1);
    ngx_memcpy(copy, args.data, args.len);

    fz_request(&r, pool, fz_main_conf, NULL);

    fz_assert(ngx_http_affiliate_conversion_parse(&r, &args, &a) == NGX_OK,
              "parse failed");

    /* the signed part: every parameter but sig, in order */

    fz_signed_part(&args, tmp, &len);

    ngx_memcpy(tmp2, a.signed_part.data, a.signed_part.len);
    len2 = a.signed_part.len;

    fz_assert(len == len2 && ngx_memcmp(tmp, tmp2, len) == 0,
              "signed part \"%s\"",
              fz_show(a.signed_part.data, a.signed_part.len));

    fz_same_param(&args, "click_id", &a.click_id, tmp);
    fz_same_param(&args, "order_id", &a.order_id, tmp);
    fz_same_param(&args, "amount", &a.amount, tmp);
    fz_same_param(&args, "currency", &a.currency, tmp);
    fz_same_param(&args, "key", &a.key, tmp);

    err = ngx_http_affiliate_conversion_check(&a);

    if (ngx_http_affiliate_postback_auth(&r, &a) == NGX_OK) {
        fz_assert(a.key.len || (ctl & 1) || a.sig.len == 64,
                  "accepted without a key or signature");
    }

    fz_assert(ngx_memcmp(copy, args.data, args.len) == 0,
              "the request's bytes changed: %s",
              fz_show(args.data, args.len));

    amount_ok = (fz_amount(&a.amount, &units, &frac) == 0);

    if (err) {
        if (ngx_strncmp(err, "invalid amount", 14) == 0) {
            fz_assert(!amount_ok, "amount \"%s\" refused",
                      fz_show(a.amount.data, a.amount.len));
        }

        goto auth;
    }

    /* accepted: what the record and the revenue sums are given */

    if (a.click_id.len) {
        fz_assert(a.click_id.len == NGX_HTTP_AFFILIATE_ULID_LEN,
                  "click_id length");

        for (i = 0; i < a.click_id.len; i++) {
            fz_assert(memchr("0123456789ABCDEFGHJKMNPQRSTVWXYZ",
                             a.click_id.data[i], 32),
                      "click_id byte 0x%02x", a.click_id.data[i]);
        }
    }

    fz_assert(a.order_id.len >= 1 && a.order_id.len <= 64, "order_id");

    for (i = 0; i < a.order_id.len; i++) {
        fz_assert(a.order_id.data[i] >= 0x20 && a.order_id.data[i] < 0x7f,
                  "order_id byte 0x%02x", a.order_id.data[i]);
    }

    fz_assert(amount_ok, "amount \"%s\" accepted",
              fz_show(a.amount.data, a.amount.len));

    fz_assert(a.currency.len == 3 && isupper(a.currency.data[0])
              && isupper(a.currency.data[1]) && isupper(a.currency.data[2]),
              "currency \"%s\"", fz_show(a.currency.data, a.currency.len));

    /* the amount round-trips exactly, once and summed */

    rvs = calloc(NGX_HTTP_AFFILIATE_CURRENCIES,
                 sizeof(ngx_http_affiliate_revenue_t));

    fz_assert(ngx_http_affiliate_revenue_add(rvs, NGX_HTTP_AFFILIATE_CURRENCIES,
                                             &a.amount, &a.currency)
              == NGX_OK, "revenue_add refused");

    code = (uint32_t) a.currency.data[0] << 16
           | (uint32_t) a.currency.data[1] << 8 | a.currency.data[2];

    rv = NULL;

    for (n = 0; n < NGX_HTTP_AFFILIATE_CURRENCIES; n++) {
        if (rvs[n].code == code) {
            rv = &rvs[n];
            break;
        }
    }

    fz_assert(rv && rv->count == 1 && rv->units == units && rv->frac == frac,
              "revenue %llu + %llu/10000 for \"%s\"",
              rv ? (unsigned long long) rv->units : 0,
              rv ? (unsigned long long) rv->frac : 0,
              fz_show(a.amount.data, a.amount.len));

    (void) ngx_http_affiliate_revenue_add(rvs, NGX_HTTP_AFFILIATE_CURRENCIES,
                                          &a.amount, &a.currency);

    fz_assert(rv->count == 2 && rv->units == 2 * units
              && rv->frac == 2 * frac,
              "revenue of two conversions");

    free(rvs);

auth:

    /* the right key or signature passes; one changed byte does not */

    if (!(ctl & 3) || (a.key.len && !(ctl & 2))) {
        goto done;
    }

    fz_assert(fz_auth(pool, &args) == NGX_OK, "the right %s is refused: %s",
              (ctl & 2) ? "key" : "signature", fz_show(args.data, args.len));

    /* a byte of the key or signature: the last 64 or key-length bytes */

    n = (ctl & 1) ? 64 : fz_key.len;
    p = args.data + args.len - 1 - (data[size - 1] % n);

    ngx_memcpy(copy, args.data, args.len);
    *p = (*p == '0') ? '1' : '0';

    fz_assert(fz_auth(pool, &args) == NGX_DECLINED,
              "a changed %s byte is accepted: %s",
              (ctl & 1) ? "signature" : "key", fz_show(args.data, args.len));

    ngx_memcpy(args.data, copy, args.len);

    /* a signed byte: one of the input's own, not in a sig parameter */

    if ((ctl & 1) && !a.key.len && size > 1) {
        p = args.data + (data[size / 2] * 257 + data[1]) % (size - 1);

        for (ps = p; ps > args.data && ps[-1] != '&'; ps--) { /* void */ }

        pe = memchr(p, '&', args.data + args.len - p);
        pe = pe ? pe : args.data + args.len;

        if (!fz_is(ps, pe, "sig")) {
            *p ^= 0x01;

            fz_assert(fz_auth(pool, &args) == NGX_DECLINED,
                      "a changed signed byte is accepted: %s",
                      fz_show(args.data, args.len));
        }
    }

done:

    ngx_destroy_pool(pool);

    return 0;
}
