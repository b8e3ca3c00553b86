
/*
 * Copyright (C) ngx_http_affiliate_module authors
 *
 * The NDJSON record and click ids as shops send them (ULID; they are
 * made in ngx_http_affiliate_attr.c).  See docs/log-format.md.
 */


#include "ngx_http_affiliate_module.h"

#if (defined __SSE2__)
#include <emmintrin.h>
#define NGX_HTTP_AFFILIATE_SSE2  1
#else
#define NGX_HTTP_AFFILIATE_SSE2  0
#endif


/* field limits, in bytes of escaped JSON output, quotes excluded */
#define NGX_HTTP_AFFILIATE_LINK_OUT      128
#define NGX_HTTP_AFFILIATE_NAME_OUT      320
#define NGX_HTTP_AFFILIATE_DEST_OUT      1024
#define NGX_HTTP_AFFILIATE_UA_OUT        512
#define NGX_HTTP_AFFILIATE_REFERER_OUT   512
#define NGX_HTTP_AFFILIATE_HOST_OUT      128
#define NGX_HTTP_AFFILIATE_GEO_OUT       160
#define NGX_HTTP_AFFILIATE_ORDER_OUT     160

/* c in every byte of a 64-bit word */
#define NGX_HTTP_AFFILIATE_BYTES(c)  ((uint64_t) (c) * 0x0101010101010101ULL)

/*
 * Not 0 when a byte of w may need escaping in JSON: a control, '"', '\',
 * DEL or >= 0x80 (a borrow may flag a harmless byte, never the reverse)
 */
#define ngx_http_affiliate_json_bad(w)                                       \
    ((((w) - NGX_HTTP_AFFILIATE_BYTES(0x20)) | (w)                           \
      | (((w) ^ NGX_HTTP_AFFILIATE_BYTES('"'))                               \
         - NGX_HTTP_AFFILIATE_BYTES(0x01))                                   \
      | (((w) ^ NGX_HTTP_AFFILIATE_BYTES('\\'))                              \
         - NGX_HTTP_AFFILIATE_BYTES(0x01))                                   \
      | (((w) ^ NGX_HTTP_AFFILIATE_BYTES(0x7f))                              \
         - NGX_HTTP_AFFILIATE_BYTES(0x01)))                                  \
     & NGX_HTTP_AFFILIATE_BYTES(0x80))

/* room kept for the fields after the variable ones and "seq" */
#define NGX_HTTP_AFFILIATE_TAIL_OUT      512


static size_t ngx_http_affiliate_utf8_len(u_char *p, u_char *end);
static ngx_inline u_char *ngx_http_affiliate_json_name(u_char *p,
    const char *key, size_t key_len, char *name);
static ngx_inline u_char *ngx_http_affiliate_json_bool(u_char *p,
    const char *key, size_t key_len, char *value);
static ngx_inline u_char *ngx_http_affiliate_json_uint(u_char *p,
    const char *key, size_t key_len, uint64_t n);
static ngx_inline u_char *ngx_http_affiliate_json_field(u_char *p,
    u_char *end, const char *key, size_t key_len, ngx_str_t *value,
    size_t max, ngx_uint_t plain, ngx_uint_t *truncated);


/* Crockford's base32: click ids (ngx_http_affiliate_ulid, attr.c) */
u_char  ngx_http_affiliate_base32[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

static u_char  ngx_http_affiliate_hex[] = "0123456789abcdef";


/* printable ASCII but the quote and the backslash */
static u_char  ngx_http_affiliate_plain[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0
};

static ngx_str_t  ngx_http_affiliate_types[] = {
    ngx_string("click"), ngx_string("miss"), ngx_string("landing"),
    ngx_string("conversion")
};

/* a three-state boolean: NULL (absent), false, true */
static char   *ngx_http_affiliate_bools[] = { NULL, "false", "true" };


/* a click id as sent by a shop: any case, upper-cased in place */

ngx_int_t
ngx_http_affiliate_ulid_parse(ngx_str_t *id)
{
    size_t  i;

    if (id->len != NGX_HTTP_AFFILIATE_ULID_LEN) {
        return NGX_DECLINED;
    }

    for (i = 0; i < id->len; i++) {
        id->data[i] = ngx_toupper(id->data[i]);

        if (ngx_strlchr(ngx_http_affiliate_base32,
                        ngx_http_affiliate_base32
                        + sizeof(ngx_http_affiliate_base32) - 1,
                        id->data[i])
            == NULL)
        {
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


u_char *
ngx_http_affiliate_time_iso(u_char *p, time_t sec, ngx_uint_t msec)
{
    ngx_tm_t  tm;

    ngx_gmtime(sec, &tm);

    return ngx_sprintf(p, "%4d-%02d-%02dT%02d:%02d:%02d.%03uiZ",
                       tm.ngx_tm_year, tm.ngx_tm_mon, tm.ngx_tm_mday,
                       tm.ngx_tm_hour, tm.ngx_tm_min, tm.ngx_tm_sec, msec);
}


/*
 * The length of the well-formed UTF-8 character at p (RFC 3629: no
 * overlong forms, no surrogates, nothing above U+10FFFF), or 0.
 * ngx_utf8_decode() is laxer: it takes any byte >= 0x80 as a
 * continuation and leads up to 0xFF.
 */

static size_t
ngx_http_affiliate_utf8_len(u_char *p, u_char *end)
{
    u_char  c, lo, hi;
    size_t  n, i;

    c = p[0];

    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;

    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;

    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;

    } else {
        return 0;
    }

    if ((size_t) (end - p) < n) {
        return 0;
    }

    /* the second byte's range depends on the lead */

    lo = 0x80;
    hi = 0xbf;

    switch (c) {
    case 0xe0: lo = 0xa0; break;
    case 0xed: hi = 0x9f; break;
    case 0xf0: lo = 0x90; break;
    case 0xf4: hi = 0x8f; break;
    }

    if (p[1] < lo || p[1] > hi) {
        return 0;
    }

    for (i = 2; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }
    }

    return n;
}


/*
 * Writes src as a JSON string, quotes included, never past last.
 * Control bytes are escaped, invalid UTF-8 becomes U+FFFD; a string
 * that does not fit is cut at a character boundary and *truncated set.
 */

u_char *
ngx_http_affiliate_json_str(u_char *p, u_char *last, u_char *src, size_t len,
    ngx_uint_t *truncated)
{
    u_char    *end, *start, c;
    size_t     need, n;
    uint32_t   h, h2;
    uint64_t   w, w2;
#if (NGX_HTTP_AFFILIATE_SSE2)
    int        mask;
    __m128i    v, ctl, del, quote, bslash;

    ctl = _mm_set1_epi8(0x20);
    del = _mm_set1_epi8(0x7f);
    quote = _mm_set1_epi8('"');
    bslash = _mm_set1_epi8('\\');
#endif

    end = src + len;
    last--;                 /* the closing quote */

    *p++ = '"';

    /*
     * 4 to 15 bytes that need no escaping: two overlapping words, tested
     * and copied as they are (a short name costs a few instructions)
     */

    if (len >= 4 && len < 16 && (size_t) (last - p) >= len) {

        if (len >= 8) {
            ngx_memcpy(&w, src, 8);
            ngx_memcpy(&w2, end - 8, 8);

            if (!ngx_http_affiliate_json_bad(w)
                && !ngx_http_affiliate_json_bad(w2))
            {
                ngx_memcpy(p, &w, 8);
                ngx_memcpy(p + len - 8, &w2, 8);
                p += len;
                *p++ = '"';
                return p;
            }

        } else {
            ngx_memcpy(&h, src, 4);
            ngx_memcpy(&h2, end - 4, 4);

            /* both halves in one word: the test is per byte */

            w = (uint64_t) h << 32 | h2;

            if (!ngx_http_affiliate_json_bad(w)) {
                ngx_memcpy(p, &h, 4);
                ngx_memcpy(p + len - 4, &h2, 4);
                p += len;
                *p++ = '"';
                return p;
            }
        }
    }

    while (src < end) {

        /* a run of bytes that need no escaping is copied at once */

#if (NGX_HTTP_AFFILIATE_SSE2)

        /*
         * 16 bytes a step, copied as they are tested: a byte to escape
         * stops the run there (what was stored past it is overwritten)
         */

        start = src;

        for ( ;; ) {

            if (end - src < 16) {

                /*
                 * the last bytes of a run of 16 or more: the 16 that end
                 * the string, over bytes already copied as they are
                 */

                if (src == end || src - start < 16 - (end - src)
                    || (size_t) (last - p) < (size_t) (end - src))
                {
                    break;
                }

                n = 16 - (end - src);
                src -= n;
                p -= n;
            }

            if (last - p < 16) {
                break;
            }

            v = _mm_loadu_si128((const __m128i *) src);

            /* signed: below 0x20 is a control or a byte >= 0x80 */

            mask = _mm_movemask_epi8(
                       _mm_or_si128(
                           _mm_or_si128(_mm_cmplt_epi8(v, ctl),
                                        _mm_cmpeq_epi8(v, del)),
                           _mm_or_si128(_mm_cmpeq_epi8(v, quote),
                                        _mm_cmpeq_epi8(v, bslash))));

            _mm_storeu_si128((__m128i *) p, v);

            if (mask) {
                n = __builtin_ctz(mask);
                src += n;
                p += n;
                break;
            }

            src += 16;
            p += 16;
        }

        if (src == end) {
            break;
        }

#endif

        start = src;

        /* 8 bytes a step while none is a control, '"', '\', DEL or >= 0x80 */

        while (end - src >= 8) {
            ngx_memcpy(&w, src, 8);

            if (ngx_http_affiliate_json_bad(w)) {
                break;
            }

            src += 8;
        }

        for ( /* void */ ; src < end && ngx_http_affiliate_plain[*src]; src++) {
            /* void */
        }

        if (src > start) {
            if ((size_t) (src - start) > (size_t) (last - p)) {
                src = start + (last - p);
                p = ngx_cpymem(p, start, src - start);
                goto cut;
            }

            p = ngx_cpymem(p, start, src - start);
            continue;
        }

        c = *src;

        if (c < 0x80) {
            need = (c == '"' || c == '\\' || c == '\n' || c == '\r'
                    || c == '\t') ? 2 : 6;

            if ((size_t) (last - p) < need) {
                goto cut;
            }

            *p++ = '\\';

            switch (c) {
            case '"':  *p++ = '"'; break;
            case '\\': *p++ = '\\'; break;
            case '\n': *p++ = 'n'; break;
            case '\r': *p++ = 'r'; break;
            case '\t': *p++ = 't'; break;
            default:
                *p++ = 'u'; *p++ = '0'; *p++ = '0';
                *p++ = ngx_http_affiliate_hex[c >> 4];
                *p++ = ngx_http_affiliate_hex[c & 0xf];
            }

            src++;
            continue;
        }

        n = ngx_http_affiliate_utf8_len(src, end);

        if (n == 0) {

            if ((size_t) (last - p) < 6) {
                goto cut;
            }

            p = ngx_cpymem(p, "\\ufffd", 6);
            src++;
            continue;
        }

        if ((size_t) (last - p) < n) {
            goto cut;
        }

        p = ngx_cpymem(p, src, n);
        src += n;
    }

    *p++ = '"';

    return p;

cut:

    *truncated = 1;
    *p++ = '"';

    return p;
}


/* printable ASCII but the quote and the backslash: nothing to escape */

ngx_uint_t
ngx_http_affiliate_json_plain(u_char *p, size_t len)
{
    size_t  i;

    for (i = 0; i < len; i++) {
        if (!ngx_http_affiliate_plain[p[i]]) {
            return 0;
        }
    }

    return 1;
}


/*
 * A key and a string value, cut to max; nothing when value is absent.
 * plain: the value is known to need no escaping (ngx_http_affiliate_
 * json_plain() said so when the link table was loaded) and is copied
 * as it is when it fits.
 */

static ngx_inline u_char *
ngx_http_affiliate_json_field(u_char *p, u_char *end, const char *key,
    size_t key_len, ngx_str_t *value, size_t max, ngx_uint_t plain,
    ngx_uint_t *truncated)
{
    u_char  *last;

    /* the caller keeps key_len + 2 (the shortest string) */

    if (value == NULL || value->data == NULL) {
        return p;
    }

    p = ngx_cpymem(p, key, key_len);

    if (plain && value->len <= max
        && (size_t) (end - p) >= value->len + 2)
    {
        *p++ = '"';
        p = ngx_cpymem(p, value->data, value->len);
        *p++ = '"';

        return p;
    }

    last = p + max + 2;

    if (last > end) {
        /* the record is full: at worst an empty string, in the tail room */
        last = ngx_max(end, p + 2);
    }

    return ngx_http_affiliate_json_str(p, last, value->data, value->len,
                                       truncated);
}


/* a key and a constant name of the module's own; nothing without one */

static ngx_inline u_char *
ngx_http_affiliate_json_name(u_char *p, const char *key, size_t key_len,
    char *name)
{
    if (name == NULL) {
        return p;
    }

    p = ngx_cpymem(p, key, key_len);
    *p++ = '"';

    while (*name) {
        *p++ = *name++;
    }

    *p++ = '"';

    return p;
}


/* a key and true or false; nothing for NULL */

static ngx_inline u_char *
ngx_http_affiliate_json_bool(u_char *p, const char *key, size_t key_len,
    char *value)
{
    if (value == NULL) {
        return p;
    }

    p = ngx_cpymem(p, key, key_len);

    while (*value) {
        *p++ = *value++;
    }

    return p;
}


/* a key and the decimal digits of n */

static ngx_inline u_char *
ngx_http_affiliate_json_uint(u_char *p, const char *key, size_t key_len,
    uint64_t n)
{
    p = ngx_cpymem(p, key, key_len);

    return ngx_http_affiliate_uint_str(p, n);
}


/* decimal digits of n, as ngx_sprintf("%uL") without parsing a format */

u_char *
ngx_http_affiliate_uint_str(u_char *p, uint64_t n)
{
    u_char      *q;
    size_t       len;
    ngx_uint_t   d;

    static const char  digits[] =
        "0001020304050607080910111213141516171819"
        "2021222324252627282930313233343536373839"
        "4041424344454647484950515253545556575859"
        "6061626364656667686970717273747576777879"
        "8081828384858687888990919293949596979899";

    static const uint64_t  pow10[] = {
        10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL,
        10000000ULL, 100000000ULL, 1000000000ULL, 10000000000ULL,
        100000000000ULL, 1000000000000ULL, 10000000000000ULL,
        100000000000000ULL, 1000000000000000ULL, 10000000000000000ULL,
        100000000000000000ULL, 1000000000000000000ULL,
        10000000000000000000ULL
    };

    /*
     * the number of digits first, then the digits in place from the last,
     * two a division (through a buffer, then copied, cost a store
     * forwarding stall and a call to memcpy())
     */

    for (len = 1;
         len <= sizeof(pow10) / sizeof(pow10[0]) && n >= pow10[len - 1];
         len++)
    {
        /* void */
    }

    q = p + len;

    while (n >= 100) {
        d = (ngx_uint_t) (n % 100) * 2;
        n /= 100;
        *--q = digits[d + 1];
        *--q = digits[d];
    }

    if (n >= 10) {
        *--q = digits[n * 2 + 1];
        *--q = digits[n * 2];

    } else {
        *--q = (u_char) ('0' + n);
    }

    return p + len;
}


#define ngx_http_affiliate_field(p, end, key, value, max, truncated)         \
    ngx_http_affiliate_json_field(p, end, key, sizeof(key) - 1, value, max,  \
                                  0, truncated)

#define ngx_http_affiliate_plain_field(p, end, key, value, max, plain,       \
                                       truncated)                            \
    ngx_http_affiliate_json_field(p, end, key, sizeof(key) - 1, value, max,  \
                                  plain, truncated)

#define ngx_http_affiliate_name(p, key, name)                                \
    ngx_http_affiliate_json_name(p, key, sizeof(key) - 1, name)

#define ngx_http_affiliate_bool(p, key, value)                               \
    ngx_http_affiliate_json_bool(p, key, sizeof(key) - 1, value)

#define ngx_http_affiliate_uint(p, key, n)                                   \
    ngx_http_affiliate_json_uint(p, key, sizeof(key) - 1, n)


/*
 * One NDJSON line.  A field that does not apply is not written at all
 * ("absent means null", docs/log-format.md): ts, type, id, node, ip, bot,
 * truncated and seq are always there, in this order at the start and the
 * end; seq is last and the ring relies on it.
 */

size_t
ngx_http_affiliate_record_format(ngx_http_request_t *r,
    ngx_http_affiliate_ctx_t *ctx, ngx_http_affiliate_type_e type,
    uint64_t seq, u_char *buf, size_t size)
{
    u_char      *p, *end;
    ngx_str_t   *ua, *referer, *host, s;
    ngx_uint_t   truncated, ms;
    ngx_time_t  *tp;

    ngx_http_affiliate_main_conf_t  *amcf;

    static time_t  cached_sec = -1;
    static u_char  cached_ts[sizeof("1970-09-28T12:00:00.000Z")];

    end = buf + size - NGX_HTTP_AFFILIATE_TAIL_OUT;
    truncated = 0;

    tp = ngx_timeofday();

    if (tp->sec != cached_sec) {
        (void) ngx_http_affiliate_time_iso(cached_ts, tp->sec, 0);
        cached_sec = tp->sec;
    }

    /* the date and time to the second, then the milliseconds */

    p = ngx_cpymem(buf, "{\"ts\":\"", sizeof("{\"ts\":\"") - 1);
    p = ngx_cpymem(p, cached_ts, sizeof("1970-09-28T12:00:00.") - 1);

    ms = tp->msec % 1000;
    *p++ = (u_char) ('0' + ms / 100);
    *p++ = (u_char) ('0' + ms / 10 % 10);
    *p++ = (u_char) ('0' + ms % 10);

    p = ngx_cpymem(p, "Z\",\"type\":", sizeof("Z\",\"type\":") - 1);
    *p++ = '"';
    p = ngx_cpymem(p, ngx_http_affiliate_types[type].data,
                   ngx_http_affiliate_types[type].len);

    /* a click or landing is identified by its click id */

    p = ngx_cpymem(p, "\",\"id\":\"", sizeof("\",\"id\":\"") - 1);

    if (ctx->has_click_id
        && (type == NGX_HTTP_AFFILIATE_CLICK
            || type == NGX_HTTP_AFFILIATE_LANDING))
    {
        p = ngx_cpymem(p, ctx->click_id, NGX_HTTP_AFFILIATE_ULID_LEN);

    } else {
        ngx_http_affiliate_ulid(p);
        p += NGX_HTTP_AFFILIATE_ULID_LEN;
    }

    *p++ = '"';

    amcf = ngx_http_get_module_main_conf(r, ngx_http_affiliate_module);
    p = ngx_cpymem(p, amcf->node_json.data, amcf->node_json.len);

    ua = r->headers_in.user_agent ? &r->headers_in.user_agent->value : NULL;
    referer = r->headers_in.referer ? &r->headers_in.referer->value : NULL;
    host = r->headers_in.host ? &r->headers_in.host->value : NULL;

    /* our own base32 (or a shop's, checked by ulid_parse): no escaping */

    if (ctx->has_click_id) {
        p = ngx_cpymem(p, ",\"click_id\":\"", sizeof(",\"click_id\":\"") - 1);
        p = ngx_cpymem(p, ctx->click_id, NGX_HTTP_AFFILIATE_ULID_LEN);
        *p++ = '"';
    }
    p = ngx_http_affiliate_plain_field(p, end, ",\"link\":", &ctx->link,
                                       NGX_HTTP_AFFILIATE_LINK_OUT,
                                       ctx->plain_names, &truncated);
    p = ngx_http_affiliate_plain_field(p, end, ",\"creator\":",
                                       ctx->creator.len ? &ctx->creator
                                                        : NULL,
                                       NGX_HTTP_AFFILIATE_NAME_OUT,
                                       ctx->plain_names, &truncated);
    p = ngx_http_affiliate_plain_field(p, end, ",\"campaign\":",
                                       ctx->campaign.len ? &ctx->campaign
                                                         : NULL,
                                       NGX_HTTP_AFFILIATE_NAME_OUT,
                                       ctx->plain_names, &truncated);
    p = ngx_http_affiliate_plain_field(p, end, ",\"dest\":",
                                       ctx->location.len ? &ctx->location
                                                         : NULL,
                                       NGX_HTTP_AFFILIATE_DEST_OUT,
                                       ctx->plain_location, &truncated);

    if (ctx->status) {
        p = ngx_http_affiliate_uint(p, ",\"status\":", ctx->status);
    }

    p = ngx_http_affiliate_field(p, end, ",\"ip\":",
                                 ctx->ip.len ? &ctx->ip
                                             : &r->connection->addr_text,
                                 NGX_HTTP_AFFILIATE_HOST_OUT, &truncated);

    p = ngx_http_affiliate_field(p, end, ",\"ua\":", ua,
                                 NGX_HTTP_AFFILIATE_UA_OUT, &truncated);
    p = ngx_http_affiliate_field(p, end, ",\"referer\":", referer,
                                 NGX_HTTP_AFFILIATE_REFERER_OUT, &truncated);
    p = ngx_http_affiliate_field(p, end, ",\"host\":", host,
                                 NGX_HTTP_AFFILIATE_HOST_OUT, &truncated);

    p = ngx_http_affiliate_field(p, end, ",\"country\":",
                                 ctx->geo.country.len ? &ctx->geo.country
                                                      : NULL,
                                 NGX_HTTP_AFFILIATE_GEO_OUT, &truncated);
    p = ngx_http_affiliate_field(p, end, ",\"region\":",
                                 ctx->geo.region.len ? &ctx->geo.region
                                                     : NULL,
                                 NGX_HTTP_AFFILIATE_GEO_OUT, &truncated);
    p = ngx_http_affiliate_field(p, end, ",\"city\":",
                                 ctx->geo.city.len ? &ctx->geo.city : NULL,
                                 NGX_HTTP_AFFILIATE_GEO_OUT, &truncated);

    if (ctx->geo.asn) {
        p = ngx_http_affiliate_uint(p, ",\"asn\":", ctx->geo.asn);
    }

    if (ctx->rule) {
        p = ngx_http_affiliate_uint(p, ",\"rule\":", ctx->rule);
    }

    /* link options: which variant, which device, why not live */

    if (ctx->variant > 0) {
        p = ngx_http_affiliate_uint(p, ",\"variant\":", ctx->variant);
    }

    p = ngx_http_affiliate_name(p, ",\"device\":", ctx->device);
    p = ngx_http_affiliate_name(p, ",\"reason\":", ctx->reason);

    if (ctx->bot_reason) {
        p = ngx_cpymem(p, ",\"bot\":true", sizeof(",\"bot\":true") - 1);
        p = ngx_http_affiliate_name(p, ",\"bot_reason\":", ctx->bot_reason);

    } else {
        p = ngx_cpymem(p, ",\"bot\":false", sizeof(",\"bot\":false") - 1);
    }

    p = ngx_http_affiliate_bool(p, ",\"unique\":",
                                ngx_http_affiliate_bools[ctx->unique]);
    p = ngx_http_affiliate_name(p, ",\"cookie\":", ctx->cookie);
    p = ngx_http_affiliate_name(p, ",\"source\":", ctx->source);

    p = ngx_http_affiliate_field(p, end + NGX_HTTP_AFFILIATE_ORDER_OUT,
                                 ",\"order_id\":",
                                 ctx->order_id.len ? &ctx->order_id : NULL,
                                 NGX_HTTP_AFFILIATE_ORDER_OUT, &truncated);

    s = ctx->amount;
    p = ngx_http_affiliate_field(p, end + NGX_HTTP_AFFILIATE_ORDER_OUT,
                                 ",\"amount\":", s.len ? &s : NULL,
                                 32, &truncated);

    s = ctx->currency;
    p = ngx_http_affiliate_field(p, end + NGX_HTTP_AFFILIATE_ORDER_OUT,
                                 ",\"currency\":", s.len ? &s : NULL,
                                 8, &truncated);

    p = ngx_http_affiliate_bool(p, ",\"attributed\":",
                                ngx_http_affiliate_bools[ctx->attributed]);
    p = ngx_http_affiliate_bool(p, ",\"duplicate\":",
                                ngx_http_affiliate_bools[ctx->duplicate]);

    if (truncated) {
        p = ngx_cpymem(p, ",\"truncated\":true",
                       sizeof(",\"truncated\":true") - 1);

    } else {
        p = ngx_cpymem(p, ",\"truncated\":false",
                       sizeof(",\"truncated\":false") - 1);
    }

    p = ngx_http_affiliate_uint(p, ",\"seq\":", seq);
    *p++ = '}';
    *p++ = '\n';

    return p - buf;
}
