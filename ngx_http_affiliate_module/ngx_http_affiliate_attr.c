
/*
 * Copyright (C) ngx_http_affiliate_module authors
 *
 * Attribution of a click: bots and prefetch, unique clicks, the signed
 * cookie, anonymized addresses, and affiliate_capture landings.
 * See docs/attribution.md.
 */


#include "ngx_http_affiliate_module.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>


#define NGX_HTTP_AFFILIATE_BOT_UA_SCAN  512
#define NGX_HTTP_AFFILIATE_HMAC_LEN     32
#define NGX_HTTP_AFFILIATE_SIG_LEN      43      /* base64url of 32 bytes */


static char *ngx_http_affiliate_bot(ngx_http_request_t *r,
    ngx_http_affiliate_main_conf_t *amcf);
static ngx_int_t ngx_http_affiliate_header_has(ngx_http_request_t *r,
    const char *name, size_t name_len, const char *value);
static ngx_int_t ngx_http_affiliate_set_cookie(ngx_http_request_t *r,
    ngx_http_affiliate_main_conf_t *amcf, ngx_http_affiliate_cookie_t *c,
    ngx_http_affiliate_ctx_t *ctx);
static ngx_int_t ngx_http_affiliate_cookie_sign(
    ngx_http_affiliate_main_conf_t *amcf, u_char *data, size_t len,
    u_char *sig);
static void *ngx_http_affiliate_mac_new(ngx_conf_t *cf, ngx_str_t *key);
static void ngx_http_affiliate_mac_free(void *data);
static ngx_int_t ngx_http_affiliate_arg(ngx_http_request_t *r,
    ngx_str_t *name, ngx_str_t *value);


/*
 * Link-preview fetchers and crawlers, matched case-insensitively as
 * substrings of the User-Agent: a few memmem() calls cost less than an
 * interpreted PCRE2 alternation.  affiliate_bot_ua adds regexes.
 */

static ngx_str_t  ngx_http_affiliate_bot_names[] = {
    ngx_string("bot"),                  /* the names below hold "bot" */
    ngx_string("facebookexternalhit"),
    ngx_string("whatsapp"),
    ngx_string("slack-imgproxy"),
    ngx_string("pinterest"),
    ngx_string("skypeuripreview"),
    ngx_string("embedly"),
    ngx_string("iframely"),
    ngx_string("google-pagerenderer"),
    ngx_string("ia_archiver"),
    ngx_string("crawler"),
    ngx_string("spider"),
    ngx_null_string
};

static ngx_str_t  ngx_http_affiliate_bot_bots[] = {
    ngx_string("facebot"),
    ngx_string("twitterbot"),
    ngx_string("slackbot"),
    ngx_string("discordbot"),
    ngx_string("telegrambot"),
    ngx_string("linkedinbot"),
    ngx_string("googlebot"),
    ngx_string("bingbot"),
    ngx_string("applebot"),
    ngx_string("redditbot"),
    ngx_string("yandexbot"),
    ngx_string("duckduckbot"),
    ngx_string("petalbot"),
    ngx_string("bot/"),
    ngx_string("bot;"),
    ngx_null_string
};


void
ngx_http_affiliate_click(ngx_http_request_t *r,
    ngx_http_affiliate_zone_t *zone, ngx_http_affiliate_ctx_t *ctx,
    ngx_http_affiliate_type_e type)
{
    uint64_t                            key;
    ngx_str_t                           v, *ua;
    ngx_http_affiliate_sh_t            *sh;
    ngx_http_affiliate_cookie_t        *c;
    ngx_http_affiliate_loc_conf_t      *alcf;
    ngx_http_affiliate_main_conf_t     *amcf;
    ngx_http_affiliate_cookie_value_t   cv;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_affiliate_module);
    alcf = ngx_http_get_module_loc_conf(r, ngx_http_affiliate_module);
    sh = zone->sh;

    ctx->bot_reason = ngx_http_affiliate_bot(r, amcf);

    if (ctx->bot_reason) {
        ngx_http_affiliate_count(sh, NGX_HTTP_AFFILIATE_BOT_CLICKS);
        goto record;
    }

    ngx_http_affiliate_count(sh, type == NGX_HTTP_AFFILIATE_CLICK
                                 ? NGX_HTTP_AFFILIATE_CLICKS
                                 : NGX_HTTP_AFFILIATE_LANDINGS);

    if (amcf->unique) {
        ua = r->headers_in.user_agent ? &r->headers_in.user_agent->value
                                      : NULL;

        key = ngx_http_affiliate_hash(sh->salt, r->connection->addr_text.data,
                                      r->connection->addr_text.len);
        key = ngx_http_affiliate_hash(key, ua ? ua->data : NULL,
                                      ua ? ua->len : 0);
        key = ngx_http_affiliate_hash(key, ctx->link.data, ctx->link.len);

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

    if (ngx_http_affiliate_set_cookie(r, amcf, c, ctx) == NGX_OK) {
        ctx->cookie = "set";
    }

record:

    if (alcf->anonymize_ip) {
        ngx_http_affiliate_anonymize(r, ctx);
    }

    ngx_http_affiliate_record(r, zone, ctx, type);
}


static char *
ngx_http_affiliate_bot(ngx_http_request_t *r,
    ngx_http_affiliate_main_conf_t *amcf)
{
    ngx_str_t   ua, *name, *bot;
    u_char      lc[NGX_HTTP_AFFILIATE_BOT_UA_SCAN];

    if (r->method == NGX_HTTP_HEAD) {
        return "head";
    }

    if (ngx_http_affiliate_header_has(r, "Sec-Purpose",
                                      sizeof("Sec-Purpose") - 1, "prefetch")
        || ngx_http_affiliate_header_has(r, "Purpose",
                                         sizeof("Purpose") - 1, "prefetch")
        || ngx_http_affiliate_header_has(r, "X-Moz",
                                         sizeof("X-Moz") - 1, "prefetch")
        || ngx_http_affiliate_header_has(r, "X-Purpose",
                                         sizeof("X-Purpose") - 1, "preview"))
    {
        return "prefetch";
    }

    if (r->headers_in.user_agent == NULL) {
        return "no_ua";
    }

    /* bots name themselves early; a long header costs no more than this */

    ua = r->headers_in.user_agent->value;
    ua.len = ngx_min(ua.len, NGX_HTTP_AFFILIATE_BOT_UA_SCAN);

    ngx_strlow(lc, ua.data, ua.len);

    for (name = ngx_http_affiliate_bot_names; name->len; name++) {
        if (memmem(lc, ua.len, name->data, name->len) == NULL) {
            continue;
        }

        if (name != ngx_http_affiliate_bot_names) {
            return "ua";
        }

        for (bot = ngx_http_affiliate_bot_bots; bot->len; bot++) {
            if (memmem(lc, ua.len, bot->data, bot->len)) {
                return "ua";
            }
        }
    }

    if (amcf->bot_ua
        && ngx_regex_exec_array(amcf->bot_ua, &ua, r->connection->log)
           == NGX_OK)
    {
        return "ua";
    }

    return NULL;
}


static ngx_int_t
ngx_http_affiliate_header_has(ngx_http_request_t *r, const char *name,
    size_t name_len, const char *value)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return 0;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == name_len
            && ngx_strncasecmp(h[i].key.data, (u_char *) name, name_len) == 0
            && ngx_strlcasestrn(h[i].value.data,
                                h[i].value.data + h[i].value.len,
                                (u_char *) value, ngx_strlen(value) - 1)
               != NULL)
        {
            return 1;
        }
    }
}


/* CLICK_ID.TIME.b64url(CREATOR).b64url(CAMPAIGN).b64url(HMAC) */

static ngx_int_t
ngx_http_affiliate_set_cookie(ngx_http_request_t *r,
    ngx_http_affiliate_main_conf_t *amcf, ngx_http_affiliate_cookie_t *c,
    ngx_http_affiliate_ctx_t *ctx)
{
    u_char           *p, *start;
    size_t            len;
    time_t            max_age;
    ngx_str_t         src, dst;
    ngx_table_elt_t  *h;

    max_age = c->max_age == NGX_CONF_UNSET ? amcf->window : c->max_age;

    len = c->name.len + 1 + NGX_HTTP_AFFILIATE_ULID_LEN + 1 + NGX_TIME_T_LEN
          + 1 + ngx_base64_encoded_length(ctx->creator.len)
          + 1 + ngx_base64_encoded_length(ctx->campaign.len)
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
    p = ngx_sprintf(p, ".%T.", ngx_time());

    src = ctx->creator;
    dst.data = p;
    ngx_encode_base64url(&dst, &src);
    p += dst.len;
    *p++ = '.';

    src = ctx->campaign;
    dst.data = p;
    ngx_encode_base64url(&dst, &src);
    p += dst.len;

    if (ngx_http_affiliate_cookie_sign(amcf, start, p - start, p + 1)
        != NGX_OK)
    {
        h->hash = 0;
        return NGX_ERROR;
    }

    *p = '.';
    p += 1 + NGX_HTTP_AFFILIATE_SIG_LEN;

    p = ngx_sprintf(p, "; Max-Age=%T; Path=%V; SameSite=%V", max_age,
                    &c->path, &c->samesite);

    if (c->domain.len) {
        p = ngx_sprintf(p, "; Domain=%V", &c->domain);
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


/*
 * NGX_OK: a valid, live cookie; NGX_DECLINED: none; NGX_ABORT: one that
 * is tampered, expired or foreign (counted).
 */

ngx_int_t
ngx_http_affiliate_cookie_get(ngx_http_request_t *r,
    ngx_http_affiliate_zone_t *zone, ngx_http_affiliate_cookie_value_t *cv)
{
    u_char                          *p, *last, *dot[4];
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

    if (n != 4
        || dot[0] - value.data != NGX_HTTP_AFFILIATE_ULID_LEN
        || last - (dot[3] + 1) != NGX_HTTP_AFFILIATE_SIG_LEN
        || ngx_http_affiliate_cookie_sign(amcf, value.data,
                                          dot[3] - value.data, sig)
           != NGX_OK
        || CRYPTO_memcmp(sig, dot[3] + 1, NGX_HTTP_AFFILIATE_SIG_LEN) != 0)
    {
        goto invalid;
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


/* affiliate_capture: a landing page reached with ?ref=creator */

ngx_int_t
ngx_http_affiliate_capture_handler(ngx_http_request_t *r)
{
    u_char                         *p, *q, *amp, *last, *eq;
    size_t                          len;
    ngx_str_t                       creator, campaign, uri, *skip;
    ngx_http_affiliate_ctx_t       *ctx;
    ngx_http_affiliate_loc_conf_t  *alcf;

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_affiliate_module);

    if (alcf->capture_zone == NULL || r != r->main) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_affiliate_get_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ctx->has_click_id) {
        return NGX_DECLINED;
    }

    if (ngx_http_affiliate_arg(r, &alcf->capture_creator, &creator) != NGX_OK
        || ngx_http_affiliate_check_text(&creator,
                                         NGX_HTTP_AFFILIATE_CREATOR_MAX,
                                         "creator")
           != NULL)
    {
        return NGX_DECLINED;
    }

    ngx_str_null(&campaign);

    if (alcf->capture_campaign.len
        && ngx_http_affiliate_arg(r, &alcf->capture_campaign, &campaign)
           == NGX_OK
        && ngx_http_affiliate_check_text(&campaign,
                                         NGX_HTTP_AFFILIATE_CAMPAIGN_MAX,
                                         "campaign")
           != NULL)
    {
        ngx_str_null(&campaign);
    }

    ngx_http_affiliate_ulid(ctx->click_id);
    ctx->has_click_id = 1;
    ctx->link = r->uri;
    ctx->creator = creator;
    ctx->campaign = campaign;

    ngx_http_affiliate_geo(r, alcf->capture_zone, ctx);

    if (!alcf->capture_strip) {
        ngx_http_affiliate_click(r, alcf->capture_zone, ctx,
                                 NGX_HTTP_AFFILIATE_LANDING);
        return NGX_DECLINED;
    }

    /* the same URL without the attribution parameters */

    uri.len = r->unparsed_uri.len;
    q = ngx_strlchr(r->unparsed_uri.data,
                    r->unparsed_uri.data + r->unparsed_uri.len, '?');
    if (q) {
        uri.len = q - r->unparsed_uri.data;
    }

    len = uri.len + 1 + r->args.len;

    uri.data = ngx_pnalloc(r->pool, len);
    if (uri.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_cpymem(uri.data, r->unparsed_uri.data, uri.len);
    q = p;
    last = r->args.data + r->args.len;

    for (amp = r->args.data; amp < last; /* void */) {
        u_char  *start = amp;

        amp = ngx_strlchr(start, last, '&');
        if (amp == NULL) {
            amp = last;
        }

        eq = ngx_strlchr(start, amp, '=');
        if (eq == NULL) {
            eq = amp;
        }

        skip = NULL;

        if ((size_t) (eq - start) == alcf->capture_creator.len
            && ngx_strncasecmp(start, alcf->capture_creator.data, eq - start)
               == 0)
        {
            skip = &alcf->capture_creator;
        }

        if (alcf->capture_campaign.len
            && (size_t) (eq - start) == alcf->capture_campaign.len
            && ngx_strncasecmp(start, alcf->capture_campaign.data,
                               eq - start)
               == 0)
        {
            skip = &alcf->capture_campaign;
        }

        if (skip == NULL && amp > start) {
            if (p == q) {
                *p++ = '?';

            } else {
                *p++ = '&';
            }

            p = ngx_cpymem(p, start, amp - start);
        }

        if (amp < last) {
            amp++;
        }
    }

    uri.len = p - uri.data;

    ctx->location = uri;
    ctx->status = NGX_HTTP_MOVED_TEMPORARILY;

    ngx_http_affiliate_click(r, alcf->capture_zone, ctx,
                             NGX_HTTP_AFFILIATE_LANDING);

    if (ngx_http_affiliate_set_location(r, &uri) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return NGX_HTTP_MOVED_TEMPORARILY;
}


/* an unescaped query argument; NGX_DECLINED when absent or empty */

static ngx_int_t
ngx_http_affiliate_arg(ngx_http_request_t *r, ngx_str_t *name,
    ngx_str_t *value)
{
    u_char     *dst, *src;
    ngx_str_t   raw;

    if (ngx_http_arg(r, name->data, name->len, &raw) != NGX_OK
        || raw.len == 0)
    {
        return NGX_DECLINED;
    }

    dst = ngx_pnalloc(r->pool, raw.len);
    if (dst == NULL) {
        return NGX_ERROR;
    }

    value->data = dst;
    src = raw.data;

    ngx_unescape_uri(&dst, &src, raw.len, NGX_UNESCAPE_URI);

    value->len = dst - value->data;

    return value->len ? NGX_OK : NGX_DECLINED;
}


ngx_int_t
ngx_http_affiliate_hmac(void *mac, u_char *data, size_t len, u_char *out)
{
    size_t  outl;

    if (EVP_MAC_init(mac, NULL, 0, NULL) != 1
        || EVP_MAC_update(mac, data, len) != 1
        || EVP_MAC_final(mac, out, &outl, NGX_HTTP_AFFILIATE_HMAC_LEN) != 1)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void *
ngx_http_affiliate_mac_new(ngx_conf_t *cf, ngx_str_t *key)
{
    EVP_MAC             *mac;
    OSSL_PARAM           params[2];
    EVP_MAC_CTX         *ctx;
    ngx_pool_cleanup_t  *cln;

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (mac == NULL) {
        return NULL;
    }

    ctx = EVP_MAC_CTX_new(mac);
    EVP_MAC_free(mac);

    if (ctx == NULL) {
        return NULL;
    }

    cln->handler = ngx_http_affiliate_mac_free;
    cln->data = ctx;

    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                                 (char *) "SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();

    if (EVP_MAC_init(ctx, key->data, key->len, params) != 1) {
        return NULL;
    }

    return ctx;
}


static void
ngx_http_affiliate_mac_free(void *data)
{
    EVP_MAC_CTX_free(data);
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


char *
ngx_http_affiliate_bot_ua(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_affiliate_main_conf_t *amcf = conf;

    ngx_str_t            *value;
    ngx_regex_elt_t      *re;
    ngx_regex_compile_t   rc;
    u_char                errstr[NGX_MAX_CONF_ERRSTR];

    value = cf->args->elts;

    if (amcf->bot_ua == NULL) {
        amcf->bot_ua = ngx_array_create(cf->pool, 4, sizeof(ngx_regex_elt_t));
        if (amcf->bot_ua == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    ngx_memzero(&rc, sizeof(ngx_regex_compile_t));

    rc.pattern = value[1];
    rc.pool = cf->pool;
    rc.options = NGX_REGEX_CASELESS;
    rc.err.len = NGX_MAX_CONF_ERRSTR;
    rc.err.data = errstr;

    if (ngx_regex_compile(&rc) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%V", &rc.err);
        return NGX_CONF_ERROR;
    }

    re = ngx_array_push(amcf->bot_ua);
    if (re == NULL) {
        return NGX_CONF_ERROR;
    }

    re->regex = rc.regex;
    re->name = value[1].data;

    return NGX_CONF_OK;
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


char *
ngx_http_affiliate_capture(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_affiliate_loc_conf_t *alcf = conf;

    ngx_str_t   *value;
    ngx_uint_t   i;

    if (alcf->capture_zone) {
        return "is duplicate";
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "zone=", 5) == 0) {
            alcf->capture_zone = ngx_http_affiliate_zone_param(cf, &value[i]);
            if (alcf->capture_zone == NULL) {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "creator=", 8) == 0
            && value[i].len > 8)
        {
            alcf->capture_creator.data = value[i].data + 8;
            alcf->capture_creator.len = value[i].len - 8;
            continue;
        }

        if (ngx_strncmp(value[i].data, "campaign=", 9) == 0
            && value[i].len > 9)
        {
            alcf->capture_campaign.data = value[i].data + 9;
            alcf->capture_campaign.len = value[i].len - 9;
            continue;
        }

        if (ngx_strcmp(value[i].data, "strip=on") == 0) {
            alcf->capture_strip = 1;
            continue;
        }

        if (ngx_strcmp(value[i].data, "strip=off") == 0) {
            alcf->capture_strip = 0;
            continue;
        }

        goto invalid;
    }

    if (alcf->capture_zone == NULL || alcf->capture_creator.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"affiliate_capture\" needs \"zone=NAME\" and "
                           "\"creator=PARAM\"");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\"", &value[i]);
    return NGX_CONF_ERROR;
}
