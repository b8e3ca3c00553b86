
/*
 * Copyright (C) ngx_http_affiliate_module authors
 *
 * The signed attribution cookie, HMAC keys and their key files.
 * See docs/attribution.md.
 */


/*
 * SHA256_Init/Update/Final and SHA256_CTX are deprecated in OpenSSL 3,
 * not removed: they let an HMAC start from a state copied by assignment
 * (ngx_http_affiliate_hmac).  Defined as nginx's ngx_event_openssl.h
 * defines it (the same empty definition twice is allowed), before any
 * include, for builds without it (the fuzzers').
 */
#define OPENSSL_SUPPRESS_DEPRECATED

#include "ngx_http_affiliate_module.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>


#define NGX_HTTP_AFFILIATE_HMAC_LEN     32
#define NGX_HTTP_AFFILIATE_SIG_LEN      43      /* base64url of 32 bytes */
#define NGX_HTTP_AFFILIATE_VISITOR_LEN  16      /* 64 bits in hex */
#define NGX_HTTP_AFFILIATE_HMAC_BLOCK   64      /* SHA-256's block */


/* HMAC-SHA256 with a key: the states after its inner and outer pads */
typedef struct {
    SHA256_CTX                       inner;
    SHA256_CTX                       outer;
} ngx_http_affiliate_mac_t;


static ngx_int_t ngx_http_affiliate_cookie_sign(
    ngx_http_affiliate_main_conf_t *amcf, u_char *data, size_t len,
    u_char *sig);
static void ngx_http_affiliate_mac_free(void *data);
static u_char *ngx_http_affiliate_time_str(u_char *p, time_t t);


static u_char  ngx_http_affiliate_hex_digits[] = "0123456789abcdef";


/*
 * CLICK_ID.TIME.b64url(CREATOR).b64url(CAMPAIGN).VISITOR.b64url(HMAC);
 * cookies set before VISITOR existed (no such field) still verify.
 */

ngx_int_t
ngx_http_affiliate_set_cookie(ngx_http_request_t *r,
    ngx_http_affiliate_zone_t *zone, ngx_http_affiliate_main_conf_t *amcf,
    ngx_http_affiliate_cookie_t *c, ngx_http_affiliate_ctx_t *ctx)
{
    u_char           *p, *start;
    size_t            len;
    time_t            max_age;
    ngx_int_t         i;
    ngx_str_t         src, dst;
    ngx_table_elt_t  *h;

    max_age = c->max_age == NGX_CONF_UNSET ? amcf->window : c->max_age;

    len = c->name.len + 1 + NGX_HTTP_AFFILIATE_ULID_LEN + 1 + NGX_TIME_T_LEN
          + 1 + ngx_base64_encoded_length(ctx->creator.len)
          + 1 + ngx_base64_encoded_length(ctx->campaign.len)
          + 1 + NGX_HTTP_AFFILIATE_VISITOR_LEN
          + 1 + NGX_HTTP_AFFILIATE_SIG_LEN
          + sizeof("; Max-Age=") - 1 + NGX_TIME_T_LEN
          + sizeof("; Domain=") - 1 + c->domain.len
          + sizeof("; Path=") - 1 + c->path.len
          + sizeof("; SameSite=Strict") - 1
          + sizeof("; Secure; HttpOnly") - 1;

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    h = ngx_http_affiliate_add_header(r, "Set-Cookie", NULL);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->value.data = p;

    p = ngx_cpymem(p, c->name.data, c->name.len);
    *p++ = '=';

    start = p;

    p = ngx_cpymem(p, ctx->click_id, NGX_HTTP_AFFILIATE_ULID_LEN);
    *p++ = '.';
    p = ngx_http_affiliate_time_str(p, ngx_time());
    *p++ = '.';

    src = ctx->creator;
    dst.data = p;
    ngx_encode_base64url(&dst, &src);
    p += dst.len;
    *p++ = '.';

    src = ctx->campaign;
    dst.data = p;
    ngx_encode_base64url(&dst, &src);
    p += dst.len;

    if (ctx->visitor == 0) {
        ngx_http_affiliate_visitor(r, zone, ctx);
    }

    *p++ = '.';

    for (i = 60; i >= 0; i -= 4) {
        *p++ = ngx_http_affiliate_hex_digits[(ctx->visitor >> i) & 0xf];
    }

    if (ngx_http_affiliate_cookie_sign(amcf, start, p - start, p + 1)
        != NGX_OK)
    {
        h->hash = 0;
        return NGX_ERROR;
    }

    *p = '.';
    p += 1 + NGX_HTTP_AFFILIATE_SIG_LEN;

    /* written directly: ngx_sprintf() parses its format on every call */

    p = ngx_cpymem(p, "; Max-Age=", sizeof("; Max-Age=") - 1);
    p = ngx_http_affiliate_time_str(p, max_age);
    p = ngx_cpymem(p, "; Path=", sizeof("; Path=") - 1);
    p = ngx_cpymem(p, c->path.data, c->path.len);
    p = ngx_cpymem(p, "; SameSite=", sizeof("; SameSite=") - 1);
    p = ngx_cpymem(p, c->samesite.data, c->samesite.len);

    if (c->domain.len) {
        p = ngx_cpymem(p, "; Domain=", sizeof("; Domain=") - 1);
        p = ngx_cpymem(p, c->domain.data, c->domain.len);
    }

    if (c->secure) {
        p = ngx_cpymem(p, "; Secure", sizeof("; Secure") - 1);
    }

    if (c->httponly) {
        p = ngx_cpymem(p, "; HttpOnly", sizeof("; HttpOnly") - 1);
    }

    h->value.len = p - h->value.data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_affiliate_cookie_sign(ngx_http_affiliate_main_conf_t *amcf,
    u_char *data, size_t len, u_char *sig)
{
    u_char     mac[NGX_HTTP_AFFILIATE_HMAC_LEN];
    ngx_str_t  src, dst;

    if (ngx_http_affiliate_hmac(amcf->secret_mac, data, len, mac) != NGX_OK) {
        return NGX_ERROR;
    }

    src.data = mac;
    src.len = sizeof(mac);
    dst.data = sig;

    ngx_encode_base64url(&dst, &src);

    return NGX_OK;
}


/* a time_t in decimal, as "%T" */

static u_char *
ngx_http_affiliate_time_str(u_char *p, time_t t)
{
    if (t < 0) {
        *p++ = '-';
        return ngx_http_affiliate_uint_str(p, (uint64_t) 0 - (uint64_t) t);
    }

    return ngx_http_affiliate_uint_str(p, (uint64_t) t);
}


/*
 * NGX_OK: a valid, live cookie; NGX_DECLINED: none; NGX_ABORT: one that
 * is tampered, expired or foreign (counted).
 */

ngx_int_t
ngx_http_affiliate_cookie_get(ngx_http_request_t *r,
    ngx_http_affiliate_zone_t *zone, ngx_http_affiliate_cookie_value_t *cv)
{
    u_char                          *p, *last, *sp, *dot[4];
    time_t                           t;
    ngx_str_t                        value, src;
    ngx_uint_t                       n;
    ngx_http_affiliate_cookie_t     *c;
    ngx_http_affiliate_loc_conf_t   *alcf;
    ngx_http_affiliate_main_conf_t  *amcf;
    u_char                           sig[NGX_HTTP_AFFILIATE_SIG_LEN];

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_affiliate_module);
    amcf = ngx_http_get_module_main_conf(r, ngx_http_affiliate_module);
    c = alcf->cookie;

    if (c == NULL) {
        return NGX_DECLINED;
    }

#if (nginx_version >= 1023000)
    if (ngx_http_parse_multi_header_lines(r, r->headers_in.cookie, &c->name,
                                          &value)
        == NULL)
    {
        return NGX_DECLINED;
    }
#else
    if (ngx_http_parse_multi_header_lines(&r->headers_in.cookies, &c->name,
                                          &value)
        == NGX_DECLINED)
    {
        return NGX_DECLINED;
    }
#endif

    last = value.data + value.len;
    n = 0;

    for (p = value.data; p < last && n < 4; p++) {
        if (*p == '.') {
            dot[n++] = p;
        }
    }

    /* the signature follows the last dot: after campaign or visitor */

    for (sp = last; sp > value.data && sp[-1] != '.'; sp--) {
        /* void */
    }

    if (n != 4
        || dot[0] - value.data != NGX_HTTP_AFFILIATE_ULID_LEN
        || last - sp != NGX_HTTP_AFFILIATE_SIG_LEN
        || (sp - 1 != dot[3]
            && sp - 1 - (dot[3] + 1) != NGX_HTTP_AFFILIATE_VISITOR_LEN)
        || ngx_http_affiliate_cookie_sign(amcf, value.data,
                                          sp - 1 - value.data, sig)
           != NGX_OK
        || CRYPTO_memcmp(sig, sp, NGX_HTTP_AFFILIATE_SIG_LEN) != 0)
    {
        goto invalid;
    }

    /* ours are ULIDs; a cookie signed with our secret but holding
       anything else is refused too (a click id is echoed in answers) */

    for (p = value.data; p < dot[0]; p++) {
        if (!((*p >= '0' && *p <= '9')
              || (*p >= 'A' && *p <= 'Z' && *p != 'I' && *p != 'L'
                  && *p != 'O' && *p != 'U')))
        {
            goto invalid;
        }
    }

    t = ngx_atotm(dot[0] + 1, dot[1] - dot[0] - 1);

    if (t == NGX_ERROR || t + amcf->window <= ngx_time()
        || t > ngx_time() + 300)
    {
        goto invalid;
    }

    cv->click_id.data = value.data;
    cv->click_id.len = NGX_HTTP_AFFILIATE_ULID_LEN;
    cv->time = t;

    src.data = dot[1] + 1;
    src.len = dot[2] - src.data;

    cv->creator.data = ngx_pnalloc(r->pool, ngx_base64_decoded_length(src.len)
                                   + ngx_base64_decoded_length(
                                         dot[3] - dot[2] - 1));
    if (cv->creator.data == NULL) {
        return NGX_DECLINED;
    }

    if (ngx_decode_base64url(&cv->creator, &src) != NGX_OK) {
        goto invalid;
    }

    src.data = dot[2] + 1;
    src.len = dot[3] - src.data;
    cv->campaign.data = cv->creator.data + cv->creator.len;

    if (ngx_decode_base64url(&cv->campaign, &src) != NGX_OK) {
        goto invalid;
    }

    return NGX_OK;

invalid:

    ngx_http_affiliate_count(zone->sh, NGX_HTTP_AFFILIATE_INVALID_COOKIES);

    return NGX_ABORT;
}


/*
 * HMAC-SHA256 (RFC 2104) from precomputed states: the states after the
 * key's inner and outer pads are made once at configuration time; a
 * request copies them (a struct assignment) and hashes its data and the
 * inner digest: 3 SHA-256 blocks for a cookie, nothing allocated.
 * EVP_MD_CTX_copy_ex() allocates and frees a provider context per copy
 * in OpenSSL 3.0 (about 1,200 instructions an HMAC); EVP_MAC_init()
 * redoes even more.  The low-level functions run the same block code
 * (SHA extensions where the CPU has them), outside the provider layer.
 */

ngx_int_t
ngx_http_affiliate_hmac(void *mac, u_char *data, size_t len, u_char *out)
{
    ngx_http_affiliate_mac_t *m = mac;

    u_char      ih[NGX_HTTP_AFFILIATE_HMAC_LEN];
    SHA256_CTX  c;

    c = m->inner;

    if (SHA256_Update(&c, data, len) != 1 || SHA256_Final(ih, &c) != 1) {
        return NGX_ERROR;
    }

    c = m->outer;

    if (SHA256_Update(&c, ih, sizeof(ih)) != 1 || SHA256_Final(out, &c) != 1)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


void *
ngx_http_affiliate_mac_new(ngx_conf_t *cf, ngx_str_t *key)
{
    ngx_uint_t                 i;
    ngx_pool_cleanup_t        *cln;
    ngx_http_affiliate_mac_t  *m;
    u_char                     k[NGX_HTTP_AFFILIATE_HMAC_BLOCK];
    u_char                     pad[NGX_HTTP_AFFILIATE_HMAC_BLOCK];

    m = ngx_pcalloc(cf->pool, sizeof(ngx_http_affiliate_mac_t));
    if (m == NULL) {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    cln->handler = ngx_http_affiliate_mac_free;
    cln->data = m;

    /* a key longer than a block is replaced by its digest (RFC 2104) */

    ngx_memzero(k, sizeof(k));

    if (key->len > sizeof(k)) {
        if (SHA256(key->data, key->len, k) == NULL) {
            return NULL;
        }

    } else {
        ngx_memcpy(k, key->data, key->len);
    }

    for (i = 0; i < sizeof(pad); i++) {
        pad[i] = k[i] ^ 0x36;
    }

    if (SHA256_Init(&m->inner) != 1
        || SHA256_Update(&m->inner, pad, sizeof(pad)) != 1)
    {
        goto failed;
    }

    for (i = 0; i < sizeof(pad); i++) {
        pad[i] = k[i] ^ 0x5c;
    }

    if (SHA256_Init(&m->outer) != 1
        || SHA256_Update(&m->outer, pad, sizeof(pad)) != 1)
    {
        goto failed;
    }

    OPENSSL_cleanse(k, sizeof(k));
    OPENSSL_cleanse(pad, sizeof(pad));

    return m;

failed:

    OPENSSL_cleanse(k, sizeof(k));
    OPENSSL_cleanse(pad, sizeof(pad));

    return NULL;
}


/* the key's states are gone with the configuration */

static void
ngx_http_affiliate_mac_free(void *data)
{
    ngx_http_affiliate_mac_t *m = data;

    OPENSSL_cleanse(m, sizeof(ngx_http_affiliate_mac_t));
}


/*
 * affiliate_secret and affiliate_postback_key: a key file, refused when
 * others may read it or when it is short.  cmd->post: the minimum.
 */

char *
ngx_http_affiliate_key_file(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char  *p = conf;

    u_char           *buf;
    size_t            min;
    ssize_t           n;
    ngx_fd_t          fd;
    ngx_str_t        *key, *value, name;
    ngx_file_info_t   fi;

    key = (ngx_str_t *) (p + cmd->offset);
    min = (size_t) (uintptr_t) cmd->post;

    if (key->data) {
        return "is duplicate";
    }

    value = cf->args->elts;
    name = value[1];

    if (ngx_conf_full_name(cf->cycle, &name, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    fd = ngx_open_file(name.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_open_file_n " \"%s\" failed", name.data);
        return NGX_CONF_ERROR;
    }

    buf = ngx_pnalloc(cf->pool, 4096);

    if (buf == NULL || ngx_fd_info(fd, &fi) == NGX_FILE_ERROR) {
        ngx_close_file(fd);
        return NGX_CONF_ERROR;
    }

    if (ngx_file_access(&fi) & 077) {
        ngx_close_file(fd);
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "key file \"%s\" is readable or writable by "
                           "group or others (mode %04uo): chmod 600 it",
                           name.data, (ngx_uint_t) ngx_file_access(&fi));
        return NGX_CONF_ERROR;
    }

    n = ngx_read_fd(fd, buf, 4096);
    ngx_close_file(fd);

    if (n == -1) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_read_fd_n " \"%s\" failed", name.data);
        return NGX_CONF_ERROR;
    }

    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) {
        n--;
    }

    if ((size_t) n < min) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "key file \"%s\" holds %z bytes, at least %uz "
                           "are needed", name.data, n, min);
        return NGX_CONF_ERROR;
    }

    key->data = buf;
    key->len = n;

    return NGX_CONF_OK;
}


char *
ngx_http_affiliate_cookie(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_affiliate_loc_conf_t *alcf = conf;

    ngx_str_t                          *value, s;
    ngx_uint_t                          i;
    ngx_http_affiliate_cookie_t        *c;
    ngx_http_compile_complex_value_t    ccv;

    if (alcf->cookie != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        alcf->cookie = NULL;
        return NGX_CONF_OK;
    }

    for (i = 0; i < value[1].len; i++) {
        if (value[1].data[i] <= ' ' || value[1].data[i] >= 0x7f
            || ngx_strchr("()<>@,;:\\\"/[]?={}", value[1].data[i]))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid cookie name \"%V\"", &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    c = ngx_pcalloc(cf->pool, sizeof(ngx_http_affiliate_cookie_t));
    if (c == NULL) {
        return NGX_CONF_ERROR;
    }

    c->name = value[1];
    c->max_age = NGX_CONF_UNSET;
    ngx_str_set(&c->path, "/");
    ngx_str_set(&c->samesite, "Lax");

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "max_age=", 8) == 0) {
            s.data = value[i].data + 8;
            s.len = value[i].len - 8;

            c->max_age = ngx_parse_time(&s, 1);
            if (c->max_age == (time_t) NGX_ERROR || c->max_age == 0) {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "domain=", 7) == 0
            && value[i].len > 7)
        {
            c->domain.data = value[i].data + 7;
            c->domain.len = value[i].len - 7;
            continue;
        }

        if (ngx_strncmp(value[i].data, "path=/", 6) == 0) {
            c->path.data = value[i].data + 5;
            c->path.len = value[i].len - 5;
            continue;
        }

        if (ngx_strcmp(value[i].data, "secure") == 0) {
            c->secure = 1;
            continue;
        }

        if (ngx_strcmp(value[i].data, "httponly") == 0) {
            c->httponly = 1;
            continue;
        }

        if (ngx_strcmp(value[i].data, "samesite=lax") == 0) {
            ngx_str_set(&c->samesite, "Lax");
            continue;
        }

        if (ngx_strcmp(value[i].data, "samesite=strict") == 0) {
            ngx_str_set(&c->samesite, "Strict");
            continue;
        }

        if (ngx_strcmp(value[i].data, "samesite=none") == 0) {
            ngx_str_set(&c->samesite, "None");
            continue;
        }

        if (ngx_strncmp(value[i].data, "if=", 3) == 0) {
            s.data = value[i].data + 3;
            s.len = value[i].len - 3;

            c->consent = ngx_palloc(cf->pool,
                                    sizeof(ngx_http_complex_value_t));
            if (c->consent == NULL) {
                return NGX_CONF_ERROR;
            }

            ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

            ccv.cf = cf;
            ccv.value = &s;
            ccv.complex_value = c->consent;

            if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        goto invalid;
    }

    for (i = 0; i < c->domain.len; i++) {
        if (c->domain.data[i] <= ' ' || c->domain.data[i] == ';') {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid cookie domain \"%V\"", &c->domain);
            return NGX_CONF_ERROR;
        }
    }

    if (c->samesite.len == 4 && !c->secure) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"samesite=none\" needs \"secure\": browsers "
                           "reject such a cookie otherwise");
        return NGX_CONF_ERROR;
    }

    alcf->cookie = c;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\"", &value[i]);
    return NGX_CONF_ERROR;
}


/*
 * The visitor's key for A/B stickiness: the VISITOR field of the cookie
 * when it has one (read without checking the signature: it only picks
 * a variant), else a salted hash of the address and the User-Agent.
 * The cookie then carries it on, so the variant survives a new address.
 */

void
ngx_http_affiliate_visitor(ngx_http_request_t *r,
    ngx_http_affiliate_zone_t *zone, ngx_http_affiliate_ctx_t *ctx)
{
    u_char                         *p, *last;
    ngx_int_t                       v;
    ngx_str_t                       value, *ua;
    ngx_uint_t                      n;
    ngx_http_affiliate_loc_conf_t  *alcf;

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_affiliate_module);

    if (alcf->cookie
#if (nginx_version >= 1023000)
        && ngx_http_parse_multi_header_lines(r, r->headers_in.cookie,
                                             &alcf->cookie->name, &value)
           != NULL
#else
        && ngx_http_parse_multi_header_lines(&r->headers_in.cookies,
                                             &alcf->cookie->name, &value)
           != NGX_DECLINED
#endif
        )
    {
        last = value.data + value.len;

        for (n = 0, p = value.data; p < last; p++) {
            if (*p == '.' && ++n == 4) {
                break;
            }
        }

        /* p is the fourth dot: 16 hex digits and a dot must follow */

        if (n == 4 && last - p >= 1 + NGX_HTTP_AFFILIATE_VISITOR_LEN + 1
            && p[1 + NGX_HTTP_AFFILIATE_VISITOR_LEN] == '.')
        {
            v = ngx_hextoi(p + 1, NGX_HTTP_AFFILIATE_VISITOR_LEN / 2);
            n = ngx_hextoi(p + 1 + NGX_HTTP_AFFILIATE_VISITOR_LEN / 2,
                           NGX_HTTP_AFFILIATE_VISITOR_LEN / 2);

            if (v != NGX_ERROR && (ngx_int_t) n != NGX_ERROR) {
                ctx->visitor = (uint64_t) v << 32 | n;
            }
        }
    }

    if (ctx->visitor == 0) {
        ua = r->headers_in.user_agent ? &r->headers_in.user_agent->value
                                      : NULL;

        ctx->visitor = ngx_http_affiliate_hash(zone->sh->salt,
                                               r->connection->addr_text.data,
                                               r->connection->addr_text.len);
        ctx->visitor = ngx_http_affiliate_hash(ctx->visitor,
                                               ua ? ua->data : NULL,
                                               ua ? ua->len : 0);
    }

    ctx->visitor |= 1;
}
