
/*
 * Copyright (C) ngx_http_affiliate_module authors
 *
 * What every fuzzer shares: a quiet log, a fake cycle, per-input pools,
 * the few request and configuration fields the functions under test
 * read, input splitting, and a strict UTF-8 / JSON validator.
 *
 * A harness includes this file first and then the module's .c file under
 * test, so that the file's static functions are reachable; everything
 * else comes from build/fuzz/libngx.a.
 */


#ifndef _FUZZ_COMMON_H_INCLUDED_
#define _FUZZ_COMMON_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_affiliate_module.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ctype.h>


#define fz_assert(cond, ...)                                                 \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "\nPROPERTY FAILED %s:%d: %s\n  ", __FILE__,     \
                    __LINE__, #cond);                                        \
            fprintf(stderr, __VA_ARGS__);                                    \
            fprintf(stderr, "\n");                                           \
            abort();                                                         \
        }                                                                    \
    } while (0)


static ngx_log_t        fz_log;
static ngx_open_file_t  fz_log_file;
static ngx_cycle_t      fz_cycle;

/* the last message logged, to check that a refusal says why */
static u_char           fz_logged[NGX_MAX_ERROR_STR];
static size_t           fz_logged_len;
static ngx_uint_t       fz_verbose;

/*
 * Known findings (fuzz/README.md) can be stepped around so that fuzzing
 * goes on while one is open: FUZZ_LENIENT=1.  All are fixed, so every
 * property is checked by default.
 */
static ngx_uint_t       fz_strict;


static void
fz_log_writer(ngx_log_t *log, ngx_uint_t level, u_char *buf, size_t len)
{
    len = ngx_min(len, sizeof(fz_logged));
    ngx_memcpy(fz_logged, buf, len);
    fz_logged_len = len;

    if (fz_verbose) {
        fprintf(stderr, "log: %.*s\n", (int) len, buf);
    }
}


/* bytes as a C string for messages */

static const char *
fz_show(const u_char *p, size_t len)
{
    size_t  i, n;

    static char  buf[4096];

    for (i = 0, n = 0; i < len && n < sizeof(buf) - 5; i++) {
        if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\') {
            buf[n++] = p[i];

        } else {
            n += snprintf(buf + n, 5, "\\x%02x", p[i]);
        }
    }

    buf[n] = '\0';

    return buf;
}


/* nginx's globals that the core functions read, as ngx_os_init sets them */

static void
fz_init(void)
{
    ngx_uint_t  n;

    static ngx_uint_t  done;

    if (done) {
        return;
    }

    done = 1;

    ngx_pagesize = getpagesize();
    ngx_cacheline_size = NGX_CPU_CACHE_LINE;

    for (n = ngx_pagesize; n >>= 1; ngx_pagesize_shift++) { /* void */ }

    (void) ngx_strerror_init();
    ngx_time_init();

    /* FUZZ_VERBOSE=1 shows what the module logs */

    fz_verbose = (getenv("FUZZ_VERBOSE") != NULL);
    fz_strict = (getenv("FUZZ_LENIENT") == NULL);
    ngx_use_stderr = 0;

    fz_log_file.fd = ngx_stderr;
    fz_log.file = &fz_log_file;
    fz_log.log_level = NGX_LOG_INFO;
    fz_log.writer = fz_log_writer;

    fz_cycle.log = &fz_log;
    fz_cycle.pool = ngx_create_pool(NGX_CYCLE_POOL_SIZE, &fz_log);
    ngx_str_set(&fz_cycle.prefix, "/");
    ngx_str_set(&fz_cycle.conf_prefix, "/");

    ngx_cycle = &fz_cycle;
}


static ngx_pool_t *
fz_pool(void)
{
    ngx_pool_t  *pool;

    pool = ngx_create_pool(4096, &fz_log);
    if (pool == NULL) {
        abort();
    }

    return pool;
}


/* an ngx_conf_t as a directive handler sees it, outside any file */

static void
fz_conf(ngx_conf_t *cf, ngx_pool_t *pool)
{
    ngx_memzero(cf, sizeof(ngx_conf_t));

    cf->pool = pool;
    cf->temp_pool = pool;
    cf->cycle = &fz_cycle;
    cf->log = &fz_log;
}


/* a request with a pool, empty header lists and the module's confs */

static void
fz_request(ngx_http_request_t *r, ngx_pool_t *pool, void **main_conf,
    void **loc_conf)
{
    ngx_memzero(r, sizeof(ngx_http_request_t));

    r->pool = pool;
    r->main = r;
    r->main_conf = main_conf;
    r->loc_conf = loc_conf;

    if (ngx_list_init(&r->headers_out.headers, pool, 4,
                      sizeof(ngx_table_elt_t))
        != NGX_OK
        || ngx_list_init(&r->headers_in.headers, pool, 4,
                         sizeof(ngx_table_elt_t))
           != NGX_OK)
    {
        abort();
    }
}


/*
 * The module's configuration slots in r->main_conf and r->loc_conf:
 * nginx numbers the modules at startup, here ours is the only one.
 */

static void
fz_module_index(void)
{
    ngx_http_affiliate_module.ctx_index = 0;
    ngx_http_affiliate_module.index = 0;
}


/* the fuzz input cut at a separator byte into n fields (missing: empty) */

static ngx_uint_t
fz_split(const uint8_t *data, size_t size, u_char sep, ngx_str_t *f,
    ngx_uint_t n)
{
    u_char      *p, *last, *q;
    ngx_uint_t   i;

    static u_char  empty[1];

    p = size ? (u_char *) data : empty;
    last = p + size;

    for (i = 0; i < n; i++) {
        f[i].data = empty;
        f[i].len = 0;
    }

    for (i = 0; i < n; i++) {
        q = (i == n - 1) ? NULL : memchr(p, sep, last - p);

        f[i].data = p;
        f[i].len = (q ? q : last) - p;

        if (q == NULL) {
            return i + 1;
        }

        p = q + 1;
    }

    return n;
}


/* a copy in a malloc()ed block of its own: ASan sees a read past it */

static u_char *
fz_dup(ngx_pool_t *pool, ngx_str_t *s)
{
    u_char  *p;

    p = ngx_pnalloc(pool, s->len ? s->len : 1);
    if (p == NULL) {
        abort();
    }

    if (s->len) {
        ngx_memcpy(p, s->data, s->len);
    }

    s->data = p;

    return p;
}


/*
 * Strict UTF-8 (RFC 3629): no overlong form, no surrogate, nothing past
 * U+10FFFF.  Returns the sequence length at p, or 0 when invalid.
 */

static size_t
fz_utf8_len(const u_char *p, const u_char *last)
{
    size_t    n, i;
    uint32_t  u, min;

    if (p[0] < 0x80) {
        return 1;
    }

    if (p[0] >= 0xc2 && p[0] <= 0xdf) {
        n = 2; u = p[0] & 0x1f; min = 0x80;

    } else if (p[0] >= 0xe0 && p[0] <= 0xef) {
        n = 3; u = p[0] & 0x0f; min = 0x800;

    } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        n = 4; u = p[0] & 0x07; min = 0x10000;

    } else {
        return 0;
    }

    if ((size_t) (last - p) < n) {
        return 0;
    }

    for (i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }

        u = (u << 6) | (p[i] & 0x3f);
    }

    if (u < min || u > 0x10ffff || (u >= 0xd800 && u <= 0xdfff)) {
        return 0;
    }

    return n;
}


static ngx_uint_t
fz_utf8_valid(const u_char *p, size_t len)
{
    size_t         n;
    const u_char  *last;

    for (last = p + len; p < last; p += n) {
        n = fz_utf8_len(p, last);
        if (n == 0) {
            return 0;
        }
    }

    return 1;
}


/*
 * A strict JSON validator (RFC 8259) for one value.  Strings are decoded;
 * the members of the top-level object are handed to a callback with the
 * key and, for a string, its decoded value (else NULL and the raw text).
 */

typedef struct {
    const u_char  *p;
    const u_char  *last;
    ngx_uint_t     depth;
    void         (*member)(void *data, ngx_str_t *key, ngx_str_t *str,
                           ngx_str_t *raw);
    void          *data;
    u_char        *key;         /* decode buffers, as long as the input */
    u_char        *str;
    const char    *err;
} fz_json_t;


static void
fz_json_ws(fz_json_t *j)
{
    while (j->p < j->last && (*j->p == ' ' || *j->p == '\t'
                              || *j->p == '\n' || *j->p == '\r'))
    {
        j->p++;
    }
}


static int
fz_json_hex4(fz_json_t *j, uint32_t *u)
{
    ngx_uint_t  i;
    u_char      c;

    if (j->last - j->p < 4) {
        return -1;
    }

    *u = 0;

    for (i = 0; i < 4; i++) {
        c = *j->p++;

        if (c >= '0' && c <= '9') {
            *u = *u * 16 + c - '0';

        } else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') {
            *u = *u * 16 + (c | 0x20) - 'a' + 10;

        } else {
            return -1;
        }
    }

    return 0;
}


static u_char *
fz_utf8_put(u_char *d, uint32_t u)
{
    if (u < 0x80) {
        *d++ = (u_char) u;

    } else if (u < 0x800) {
        *d++ = (u_char) (0xc0 | (u >> 6));
        *d++ = (u_char) (0x80 | (u & 0x3f));

    } else if (u < 0x10000) {
        *d++ = (u_char) (0xe0 | (u >> 12));
        *d++ = (u_char) (0x80 | ((u >> 6) & 0x3f));
        *d++ = (u_char) (0x80 | (u & 0x3f));

    } else {
        *d++ = (u_char) (0xf0 | (u >> 18));
        *d++ = (u_char) (0x80 | ((u >> 12) & 0x3f));
        *d++ = (u_char) (0x80 | ((u >> 6) & 0x3f));
        *d++ = (u_char) (0x80 | (u & 0x3f));
    }

    return d;
}


/* a string at j->p ('"'), decoded into dst (NULL: not kept) */

static int
fz_json_string(fz_json_t *j, u_char *dst, size_t *len)
{
    u_char    *d, c;
    size_t     n;
    uint32_t   u, lo;

    d = dst;
    j->p++;

    for ( ;; ) {
        if (j->p >= j->last) {
            j->err = "unterminated string";
            return -1;
        }

        c = *j->p;

        if (c == '"') {
            j->p++;
            break;
        }

        if (c < 0x20) {
            j->err = "raw control character in a string";
            return -1;
        }

        if (c != '\\') {
            n = fz_utf8_len(j->p, j->last);
            if (n == 0) {
                j->err = "invalid UTF-8";
                return -1;
            }

            if (d) {
                d = ngx_cpymem(d, j->p, n);
            }

            j->p += n;
            continue;
        }

        if (j->last - j->p < 2) {
            j->err = "truncated escape";
            return -1;
        }

        c = j->p[1];
        j->p += 2;

        switch (c) {
        case '"': case '\\': case '/': u = c; break;
        case 'b': u = '\b'; break;
        case 'f': u = '\f'; break;
        case 'n': u = '\n'; break;
        case 'r': u = '\r'; break;
        case 't': u = '\t'; break;
        case 'u':
            if (fz_json_hex4(j, &u) != 0) {
                j->err = "invalid \\u escape";
                return -1;
            }

            if (u >= 0xdc00 && u <= 0xdfff) {
                j->err = "lone low surrogate";
                return -1;
            }

            if (u >= 0xd800 && u <= 0xdbff) {
                if (j->last - j->p < 6 || j->p[0] != '\\' || j->p[1] != 'u') {
                    j->err = "lone high surrogate";
                    return -1;
                }

                j->p += 2;

                if (fz_json_hex4(j, &lo) != 0 || lo < 0xdc00 || lo > 0xdfff) {
                    j->err = "invalid surrogate pair";
                    return -1;
                }

                u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
            }

            break;
        default:
            j->err = "invalid escape";
            return -1;
        }

        if (d) {
            d = fz_utf8_put(d, u);
        }
    }

    if (len) {
        *len = d - dst;
    }

    return 0;
}


static int
fz_json_number(fz_json_t *j)
{
    const u_char  *p;

    p = j->p;

    if (p < j->last && *p == '-') {
        p++;
    }

    if (p < j->last && *p == '0') {
        p++;

    } else if (p < j->last && *p >= '1' && *p <= '9') {
        while (p < j->last && *p >= '0' && *p <= '9') { p++; }

    } else {
        j->err = "invalid number";
        return -1;
    }

    if (p < j->last && *p == '.') {
        p++;

        if (p == j->last || *p < '0' || *p > '9') {
            j->err = "invalid fraction";
            return -1;
        }

        while (p < j->last && *p >= '0' && *p <= '9') { p++; }
    }

    if (p < j->last && (*p == 'e' || *p == 'E')) {
        p++;

        if (p < j->last && (*p == '+' || *p == '-')) {
            p++;
        }

        if (p == j->last || *p < '0' || *p > '9') {
            j->err = "invalid exponent";
            return -1;
        }

        while (p < j->last && *p >= '0' && *p <= '9') { p++; }
    }

    j->p = p;

    return 0;
}


static int fz_json_value(fz_json_t *j, ngx_str_t *key);


static int
fz_json_container(fz_json_t *j, u_char close)
{
    size_t     n;
    ngx_str_t  key, *kp;

    j->p++;
    fz_json_ws(j);

    if (j->p < j->last && *j->p == close) {
        j->p++;
        return 0;
    }

    for ( ;; ) {
        kp = NULL;

        if (close == '}') {
            if (j->p >= j->last || *j->p != '"') {
                j->err = "expected a key";
                return -1;
            }

            if (fz_json_string(j, j->depth == 1 ? j->key : NULL, &n) != 0) {
                return -1;
            }

            key.data = j->key;
            key.len = n;
            kp = (j->depth == 1) ? &key : NULL;

            fz_json_ws(j);

            if (j->p >= j->last || *j->p != ':') {
                j->err = "expected ':'";
                return -1;
            }

            j->p++;
        }

        if (fz_json_value(j, kp) != 0) {
            return -1;
        }

        fz_json_ws(j);

        if (j->p < j->last && *j->p == ',') {
            j->p++;
            fz_json_ws(j);
            continue;
        }

        if (j->p < j->last && *j->p == close) {
            j->p++;
            return 0;
        }

        j->err = "expected ',' or the closing bracket";
        return -1;
    }
}


static int
fz_json_value(fz_json_t *j, ngx_str_t *key)
{
    int             rc;
    size_t          n;
    ngx_str_t       str, raw;
    const u_char   *start;

    fz_json_ws(j);

    if (j->p >= j->last) {
        j->err = "expected a value";
        return -1;
    }

    start = j->p;

    if (*j->p == '"') {
        if (fz_json_string(j, key ? j->str : NULL, &n) != 0) {
            return -1;
        }

        if (key && j->member) {
            str.data = j->str;
            str.len = n;
            raw.data = (u_char *) start;
            raw.len = j->p - start;
            j->member(j->data, key, &str, &raw);
        }

        return 0;
    }

    if (*j->p == '{' || *j->p == '[') {
        if (++j->depth > 64) {
            j->err = "too deep";
            return -1;
        }

        rc = fz_json_container(j, *j->p == '{' ? '}' : ']');
        j->depth--;

        if (rc != 0) {
            return -1;
        }

    } else if (j->last - j->p >= 4 && ngx_strncmp(j->p, "true", 4) == 0) {
        j->p += 4;

    } else if (j->last - j->p >= 5 && ngx_strncmp(j->p, "false", 5) == 0) {
        j->p += 5;

    } else if (j->last - j->p >= 4 && ngx_strncmp(j->p, "null", 4) == 0) {
        j->p += 4;

    } else if (fz_json_number(j) != 0) {
        return -1;
    }

    if (key && j->member) {
        raw.data = (u_char *) start;
        raw.len = j->p - start;
        j->member(j->data, key, NULL, &raw);
    }

    return 0;
}


/* NULL: text is exactly one valid JSON value, else what is wrong */

static const char *
fz_json_check(const u_char *text, size_t len,
    void (*member)(void *data, ngx_str_t *key, ngx_str_t *str,
                   ngx_str_t *raw), void *data)
{
    fz_json_t  j;

    ngx_memzero(&j, sizeof(fz_json_t));

    j.p = text;
    j.last = text + len;
    j.member = member;
    j.data = data;
    j.str = malloc(len + 1);
    j.key = malloc(len + 1);

    if (j.str == NULL || j.key == NULL) {
        abort();
    }

    if (fz_json_value(&j, NULL) == 0) {
        fz_json_ws(&j);

        if (j.p != j.last) {
            j.err = "text after the value";
        }
    }

    free(j.str);
    free(j.key);

    return j.err;
}


/*
 * Form decoding (application/x-www-form-urlencoded, as a shop reads a
 * query): '+' is a space, %XX a byte.  Returns -1 at a malformed '%'
 * when strict, else keeps it as it is.
 */

static ngx_int_t
fz_form_decode(u_char *p, u_char *last, u_char *out, size_t *len,
    ngx_uint_t strict)
{
    u_char  *d;

    for (d = out; p < last; p++) {
        if (*p == '+') {
            *d++ = ' ';

        } else if (*p == '%' && last - p >= 3 && isxdigit(p[1])
                   && isxdigit(p[2]))
        {
            *d++ = (u_char) ((ngx_hextoi(p + 1, 1) << 4)
                             | ngx_hextoi(p + 2, 1));
            p += 2;

        } else if (*p == '%' && strict) {
            *len = d - out;
            return -1;

        } else {
            *d++ = *p;
        }
    }

    *len = d - out;

    return 0;
}


/* a creator and campaign as the handlers pass them: valid text or empty */

static ngx_uint_t
fz_names_valid(ngx_str_t *creator, ngx_str_t *campaign)
{
    return (creator->len == 0
            || ngx_http_affiliate_text_valid(creator,
                                             NGX_HTTP_AFFILIATE_CREATOR_MAX))
           && (campaign->len == 0
               || ngx_http_affiliate_text_valid(campaign,
                                             NGX_HTTP_AFFILIATE_CAMPAIGN_MAX));
}


/*
 * The host a browser goes to for an http(s) URL (the WHATWG URL parser's
 * special-scheme rules): slashes and backslashes after the scheme are
 * skipped, the authority ends at / \\ ? #, user info ends at the last @.
 * Returns -1 when there is no scheme; *userinfo tells whether an @ was
 * in the authority.
 */

static ngx_int_t
fz_url_host(u_char *url, size_t len, ngx_str_t *host, ngx_uint_t *userinfo)
{
    u_char  *p, *last, *auth, *at;

    last = url + len;
    p = memchr(url, ':', len);

    if (p == NULL) {
        return -1;
    }

    for (p++; p < last && (*p == '/' || *p == '\\'); p++) { /* void */ }

    auth = p;
    at = NULL;

    for ( /* void */ ; p < last; p++) {
        if (*p == '/' || *p == '\\' || *p == '?' || *p == '#') {
            break;
        }

        if (*p == '@') {
            at = p;
        }
    }

    *userinfo = (at != NULL);
    host->data = at ? at + 1 : auth;
    last = p;

    if (host->data < last && host->data[0] == '[') {
        p = memchr(host->data, ']', last - host->data);
        p = p ? p + 1 : last;

    } else {
        p = memchr(host->data, ':', last - host->data);
        p = p ? p : last;
    }

    host->len = p - host->data;

    return 0;
}


/*
 * What ngx_http_affiliate_dest_parse() promises about an accepted
 * destination (docs/directives.md): at most 1024 printable ASCII bytes
 * without a space or a backslash, an absolute http(s) URL whose authority
 * is a host name or [IPv6] and an optional port, no user info; frag is
 * the first '#', the flags tell which of our parameters the query sets.
 */

static void
fz_check_dest(ngx_str_t *url, ngx_http_affiliate_dest_t *d)
{
    u_char      *p, *last, *hash, *q;
    size_t       n;
    ngx_str_t    host;
    ngx_uint_t   i, userinfo;

    fz_assert(d->len == url->len
              && ngx_memcmp(d->data, url->data, url->len) == 0,
              "dest is not the given URL: %s", fz_show(url->data, url->len));
    fz_assert(d->len >= 1 && d->len <= NGX_HTTP_AFFILIATE_DEST_MAX,
              "dest length %u", (unsigned) d->len);

    for (i = 0; i < d->len; i++) {
        fz_assert(d->data[i] > 0x20 && d->data[i] < 0x7f
                  && d->data[i] != '\\',
                  "dest byte 0x%02x: %s", d->data[i],
                  fz_show(d->data, d->len));
    }

    if (ngx_strncasecmp(d->data, (u_char *) "https://", 8) == 0) {
        n = 8;

    } else {
        fz_assert(ngx_strncasecmp(d->data, (u_char *) "http://", 7) == 0,
                  "dest not http(s): %s", fz_show(d->data, d->len));
        n = 7;
    }

    fz_assert(d->len > n && d->data[n] != '/',
              "dest without a host: %s", fz_show(d->data, d->len));

    fz_assert(fz_url_host(d->data, d->len, &host, &userinfo) == 0
              && !userinfo && host.len > 0
              && host.data == d->data + n,
              "dest authority has user info or no host: %s",
              fz_show(d->data, d->len));

    for (i = 0; i < host.len; i++) {
        p = &host.data[i];

        if (host.data[0] == '[') {
            fz_assert(host.len > 2 && host.data[host.len - 1] == ']'
                      && (i == 0 || i == host.len - 1
                          || ngx_strchr("0123456789abcdefABCDEF:.", *p)),
                      "dest IPv6 host: %s", fz_show(d->data, d->len));

        } else {
            fz_assert(isalnum(*p) || *p == '.' || *p == '-' || *p == '_',
                      "dest host byte 0x%02x: %s", *p,
                      fz_show(d->data, d->len));
        }
    }

    /* an optional port, then the path, query or fragment */

    p = host.data + host.len;
    last = d->data + d->len;

    if (p < last && *p == ':') {
        for (q = ++p; p < last && isdigit(*p); p++) { /* void */ }
        fz_assert(p > q && p - q <= 5, "dest port: %s",
                  fz_show(d->data, d->len));
    }

    fz_assert(p == last || *p == '/' || *p == '?' || *p == '#',
              "dest authority end: %s", fz_show(d->data, d->len));

    hash = memchr(d->data, '#', d->len);
    fz_assert(d->frag == (hash ? hash - d->data : d->len),
              "dest frag %u: %s", (unsigned) d->frag,
              fz_show(d->data, d->len));

    q = memchr(d->data, '?', d->frag);
    fz_assert(!!(d->flags & NGX_HTTP_AFFILIATE_HAS_QUERY) == (q != NULL),
              "dest HAS_QUERY: %s", fz_show(d->data, d->len));
}


/* UBSan: every report is fatal but those fuzz/ubsan.supp names */

const char *
__ubsan_default_options(void)
{
    return "halt_on_error=1:print_stacktrace=1:suppressions=" FZ_UBSAN_SUPP;
}


/* a harness that needs more at startup defines FZ_OWN_INIT and its own */

#ifndef FZ_OWN_INIT

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fz_init();

    return 0;
}

#endif


#endif /* _FUZZ_COMMON_H_INCLUDED_ */
