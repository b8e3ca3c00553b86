
/*
 * Copyright (C) ngx_http_affiliate_module authors
 *
 * affiliate_conversion: postbacks and pixels that tie revenue to clicks.
 */


#include "ngx_http_affiliate_module.h"

#include <openssl/crypto.h>


#define NGX_HTTP_AFFILIATE_BODY_MAX  4096


typedef struct {
    ngx_str_t                          click_id;
    ngx_str_t                          order_id;
    ngx_str_t                          amount;
    ngx_str_t                          currency;
    ngx_str_t                          key;
    ngx_str_t                          sig;
    ngx_str_t                          signed_part;
} ngx_http_affiliate_conv_args_t;


static void ngx_http_affiliate_conversion_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_affiliate_conversion_process(ngx_http_request_t *r,
    ngx_str_t *args);
static ngx_int_t ngx_http_affiliate_conversion_parse(ngx_http_request_t *r,
    ngx_str_t *args, ngx_http_affiliate_conv_args_t *a);
static ngx_str_t *ngx_http_affiliate_conversion_arg(
    ngx_http_affiliate_conv_args_t *a, ngx_str_t *name);
static char *ngx_http_affiliate_conversion_check(
    ngx_http_affiliate_conv_args_t *a);
static ngx_int_t ngx_http_affiliate_postback_auth(ngx_http_request_t *r,
    ngx_http_affiliate_conv_args_t *a);
static ngx_int_t ngx_http_affiliate_conversion_send(ngx_http_request_t *r,
    ngx_uint_t status, ngx_http_affiliate_ctx_t *ctx, char *error);
static ngx_int_t ngx_http_affiliate_conversion_handler(ngx_http_request_t *r);


/* ISO 4217 alphabetic codes in use */
static char  ngx_http_affiliate_currencies[] =
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND "
    "BOB BOV BRL BSD BTN BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU "
    "CRC CUC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS "
    "GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY "
    "KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA "
    "MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD "
    "OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK "
    "SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD "
    "TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VES VND VUV WST XAF XAG XAU "
    "XBA XBB XBC XBD XCD XCG XDR XOF XPD XPF XPT XSU XTS XUA XXX YER ZAR ZMW "
    "ZWG ZWL ";


/* a transparent 1x1 GIF, 43 bytes */
static u_char  ngx_http_affiliate_gif[] = {
    'G', 'I', 'F', '8', '9', 'a', 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00,
    0x00, 0x00, 0x00, 0xff, 0xff, 0xff, '!', 0xf9, 0x04, 0x01, 0x00, 0x00,
    0x00, 0x00, ',', 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00,
    0x02, 0x02, 'D', 0x01, 0x00, ';'
};


char *
ngx_http_affiliate_conversion(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_affiliate_loc_conf_t *alcf = conf;

    ngx_str_t                 *value;
    ngx_uint_t                 i;
    ngx_http_core_loc_conf_t  *clcf;

    if (alcf->conversion_zone) {
        return "is duplicate";
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "zone=", 5) == 0) {
            alcf->conversion_zone = ngx_http_affiliate_zone_param(cf,
                                                                  &value[i]);
            if (alcf->conversion_zone == NULL) {
                goto invalid;
            }

            continue;
        }

        if (ngx_strcmp(value[i].data, "format=json") == 0) {
            alcf->conversion_gif = 0;
            continue;
        }

        if (ngx_strcmp(value[i].data, "format=gif") == 0) {
            alcf->conversion_gif = 1;
            continue;
        }

        goto invalid;
    }

    if (alcf->conversion_zone == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"affiliate_conversion\" needs \"zone=NAME\"");
        return NGX_CONF_ERROR;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_affiliate_conversion_handler;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\"", &value[i]);
    return NGX_CONF_ERROR;
}


static ngx_int_t
ngx_http_affiliate_conversion_handler(ngx_http_request_t *r)
{
    ngx_int_t  rc;

    if (r != r->main) {
        /* SSI, mirror, auth_request: an order is reported only directly */
        return NGX_HTTP_NOT_FOUND;
    }

    /* a HEAD must not change anything: no order, no revenue */

    if (r->method == NGX_HTTP_GET) {
        rc = ngx_http_discard_request_body(r);

        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_affiliate_conversion_process(r, &r->args);
    }

    if (!(r->method & NGX_HTTP_POST)) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    if (r->headers_in.content_length_n > NGX_HTTP_AFFILIATE_BODY_MAX) {
        return NGX_HTTP_REQUEST_ENTITY_TOO_LARGE;
    }

    rc = ngx_http_read_client_request_body(r,
                                           ngx_http_affiliate_conversion_body);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static void
ngx_http_affiliate_conversion_body(ngx_http_request_t *r)
{
    u_char       *p;
    size_t        len;
    ngx_str_t     body;
    ngx_chain_t  *cl;

    len = 0;

    if (r->request_body == NULL || r->request_body->temp_file) {
        ngx_http_finalize_request(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE);
        return;
    }

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        if (cl->buf->last > cl->buf->pos) {
            len += cl->buf->last - cl->buf->pos;
        }
    }

    if (len > NGX_HTTP_AFFILIATE_BODY_MAX) {
        ngx_http_finalize_request(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE);
        return;
    }

    body.data = ngx_pnalloc(r->pool, len + 1);
    if (body.data == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    p = body.data;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        if (cl->buf->last > cl->buf->pos) {
            p = ngx_cpymem(p, cl->buf->pos, cl->buf->last - cl->buf->pos);
        }
    }

    body.len = p - body.data;

    ngx_http_finalize_request(r,
                              ngx_http_affiliate_conversion_process(r, &body));
}


static ngx_int_t
ngx_http_affiliate_conversion_process(ngx_http_request_t *r, ngx_str_t *args)
{
    char                               *err;
    ngx_http_affiliate_sh_t            *sh;
    ngx_http_affiliate_ctx_t           *ctx;
    ngx_http_affiliate_zone_t          *zone;
    ngx_http_affiliate_loc_conf_t      *alcf;
    ngx_http_affiliate_main_conf_t     *amcf;
    ngx_http_affiliate_conv_args_t      a;
    ngx_http_affiliate_cookie_value_t   cv;

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_affiliate_module);
    amcf = ngx_http_get_module_main_conf(r, ngx_http_affiliate_module);
    zone = alcf->conversion_zone;
    sh = zone->sh;

    ctx = ngx_http_affiliate_get_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ctx->done & NGX_HTTP_AFFILIATE_DONE(NGX_HTTP_AFFILIATE_CONVERSION)) {
        /* an internal redirect back here: the order is counted already */
        return ngx_http_affiliate_conversion_send(r, NGX_HTTP_OK, ctx, NULL);
    }

    if (ngx_http_affiliate_conversion_parse(r, args, &a) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (alcf->conversion_gif
        && ((a.key.len == 0 && a.sig.len == 0)
            || ngx_http_affiliate_postback_auth(r, &a) == NGX_OK))
    {
        /* a pixel needs no key, but one it carries must be right */
        ctx->source = "pixel";

    } else {
        if (ngx_http_affiliate_postback_auth(r, &a) != NGX_OK) {
            ngx_http_affiliate_count(sh, NGX_HTTP_AFFILIATE_UNAUTHENTICATED);
            return ngx_http_affiliate_conversion_send(r, NGX_HTTP_FORBIDDEN,
                                                      NULL,
                                                      "unauthenticated");
        }

        ctx->source = "postback";
    }

    err = ngx_http_affiliate_conversion_check(&a);

    if (err) {
        ngx_http_affiliate_count(sh, NGX_HTTP_AFFILIATE_INVALID_CONVERSIONS);
        return ngx_http_affiliate_conversion_send(r, NGX_HTTP_BAD_REQUEST,
                                                  NULL, err);
    }

    ctx->order_id = a.order_id;
    ctx->amount = a.amount;
    ctx->currency = a.currency;
    ctx->link.len = 0;
    ctx->attributed = NGX_HTTP_AFFILIATE_FALSE;

    if (ngx_http_affiliate_cookie_get(r, zone, &cv) == NGX_OK) {
        ngx_memcpy(ctx->click_id, cv.click_id.data,
                   NGX_HTTP_AFFILIATE_ULID_LEN);
        ctx->has_click_id = 1;
        ctx->creator = cv.creator;
        ctx->campaign = cv.campaign;
        ctx->attributed = NGX_HTTP_AFFILIATE_TRUE;

    } else if (!alcf->conversion_gif && a.click_id.len) {
        ngx_memcpy(ctx->click_id, a.click_id.data,
                   NGX_HTTP_AFFILIATE_ULID_LEN);
        ctx->has_click_id = 1;

        if (ngx_http_affiliate_click_index_find(sh, &a.click_id, amcf->window,
                                                r->pool, &ctx->creator,
                                                &ctx->campaign)
            == NGX_OK)
        {
            ctx->attributed = NGX_HTTP_AFFILIATE_TRUE;
        }
    }

    if (ngx_http_affiliate_table_seen(&sh->orders,
            ngx_http_affiliate_hash(sh->salt, a.order_id.data,
                                    a.order_id.len),
            ngx_time(), amcf->window))
    {
        ctx->duplicate = NGX_HTTP_AFFILIATE_TRUE;
        ngx_http_affiliate_count(sh, NGX_HTTP_AFFILIATE_DUPLICATE_ORDERS);

    } else {
        ctx->duplicate = NGX_HTTP_AFFILIATE_FALSE;
        ngx_http_affiliate_count(sh, NGX_HTTP_AFFILIATE_CONVERSIONS);
        (void) ngx_http_affiliate_revenue_add(sh->revenue,
                                              NGX_HTTP_AFFILIATE_CURRENCIES,
                                              &a.amount, &a.currency);
    }

    ctx->status = NGX_HTTP_OK;

    if (alcf->anonymize_ip) {
        ngx_http_affiliate_anonymize(r, ctx);
    }

    if (ctx->duplicate == NGX_HTTP_AFFILIATE_FALSE
        && ctx->attributed == NGX_HTTP_AFFILIATE_TRUE)
    {
        ngx_http_affiliate_stat_conversion(sh, ctx);
    }

    ctx->done |= NGX_HTTP_AFFILIATE_DONE(NGX_HTTP_AFFILIATE_CONVERSION);

    ngx_http_affiliate_record(r, zone, ctx, NGX_HTTP_AFFILIATE_CONVERSION);

    return ngx_http_affiliate_conversion_send(r, NGX_HTTP_OK, ctx, NULL);
}


static ngx_int_t
ngx_http_affiliate_conversion_parse(ngx_http_request_t *r, ngx_str_t *args,
    ngx_http_affiliate_conv_args_t *a)
{
    u_char      *p, *last, *amp, *sp;
    ngx_str_t   *v, raw, name;
    ngx_uint_t   first;

    ngx_memzero(a, sizeof(ngx_http_affiliate_conv_args_t));

    /*
     * The parameters but sig, as sent and in order, for the HMAC: every
     * parameter between two "&" counts, empty ones at either end too.
     */

    sp = ngx_pnalloc(r->pool, args->len + 1);
    if (sp == NULL) {
        return NGX_ERROR;
    }

    a->signed_part.data = sp;

    if (args->len == 0) {
        return NGX_OK;
    }

    last = args->data + args->len;
    first = 1;

    for (p = args->data; /* void */ ; p = amp + 1) {

        amp = ngx_http_affiliate_arg_split(p, last, &name, &raw);

        if (name.len == 3 && ngx_strncmp(name.data, "sig", 3) == 0) {
            a->sig = raw;

        } else {
            if (!first) {
                *sp++ = '&';
            }

            first = 0;
            sp = ngx_cpymem(sp, p, amp - p);

            v = ngx_http_affiliate_conversion_arg(a, &name);

            if (v
                && ngx_http_affiliate_unescape_arg(r->pool, &raw, v)
                   != NGX_OK)
            {
                return NGX_ERROR;
            }
        }

        if (amp == last) {
            break;
        }
    }

    a->signed_part.len = sp - a->signed_part.data;

    return NGX_OK;
}


/* where a parameter the endpoint reads goes; NULL: not one of them */

static ngx_str_t *
ngx_http_affiliate_conversion_arg(ngx_http_affiliate_conv_args_t *a,
    ngx_str_t *name)
{
    ngx_uint_t  i;

    static struct {
        ngx_str_t  name;
        size_t     offset;
    }  params[] = {
        { ngx_string("click_id"),
          offsetof(ngx_http_affiliate_conv_args_t, click_id) },
        { ngx_string("order_id"),
          offsetof(ngx_http_affiliate_conv_args_t, order_id) },
        { ngx_string("amount"),
          offsetof(ngx_http_affiliate_conv_args_t, amount) },
        { ngx_string("currency"),
          offsetof(ngx_http_affiliate_conv_args_t, currency) },
        { ngx_string("key"),
          offsetof(ngx_http_affiliate_conv_args_t, key) },
        { ngx_null_string, 0 }
    };

    for (i = 0; params[i].name.len; i++) {
        if (name->len == params[i].name.len
            && ngx_strncmp(name->data, params[i].name.data, name->len) == 0)
        {
            return (ngx_str_t *) ((u_char *) a + params[i].offset);
        }
    }

    return NULL;
}


static char *
ngx_http_affiliate_conversion_check(ngx_http_affiliate_conv_args_t *a)
{
    u_char      *p, *last, code[5];
    ngx_uint_t   i, digits, frac;

    if (a->click_id.len && ngx_http_affiliate_ulid_parse(&a->click_id)
                           != NGX_OK)
    {
        return "invalid click_id";
    }

    if (a->order_id.len == 0 || a->order_id.len > 64) {
        return "order_id must be 1 to 64 bytes";
    }

    for (i = 0; i < a->order_id.len; i++) {
        if (a->order_id.data[i] < 0x20 || a->order_id.data[i] > 0x7e) {
            return "order_id must be printable ASCII";
        }
    }

    /* a plain decimal: no sign, exponent, NaN or infinity */

    if (a->amount.len == 0) {
        return "invalid amount: a decimal with at most 15 integer and "
               "4 fraction digits";
    }

    p = a->amount.data;
    last = p + a->amount.len;
    digits = 0;
    frac = 0;

    while (p < last && *p >= '0' && *p <= '9') {
        p++;
        digits++;
    }

    if (p < last && *p == '.') {
        for (p++; p < last && *p >= '0' && *p <= '9'; p++) {
            frac++;
        }

        if (frac == 0) {
            return "invalid amount";
        }
    }

    if (p != last || digits == 0 || digits > 15 || frac > 4) {
        return "invalid amount: a decimal with at most 15 integer and "
               "4 fraction digits";
    }

    if (a->currency.len != 3) {
        return "invalid currency: an ISO 4217 code such as EUR";
    }

    for (i = 0; i < 3; i++) {
        if (a->currency.data[i] < 'A' || a->currency.data[i] > 'Z') {
            return "invalid currency: an ISO 4217 code such as EUR";
        }

        code[i] = a->currency.data[i];
    }

    code[3] = ' ';
    code[4] = '\0';

    if (ngx_strnstr((u_char *) ngx_http_affiliate_currencies, (char *) code,
                    sizeof(ngx_http_affiliate_currencies) - 1)
        == NULL)
    {
        return "unknown currency";
    }

    return NULL;
}


static ngx_int_t
ngx_http_affiliate_postback_auth(ngx_http_request_t *r,
    ngx_http_affiliate_conv_args_t *a)
{
    ngx_uint_t                       i;
    ngx_http_affiliate_main_conf_t  *amcf;
    u_char                           mac[32], hex[64], sig[64];

    amcf = ngx_http_get_module_main_conf(r, ngx_http_affiliate_module);

    if (amcf->postback_key.len == 0) {
        return NGX_DECLINED;
    }

    if (a->key.len) {
        if (a->key.len == amcf->postback_key.len
            && CRYPTO_memcmp(a->key.data, amcf->postback_key.data,
                             a->key.len) == 0)
        {
            return NGX_OK;
        }

        return NGX_DECLINED;
    }

    if (a->sig.len != 64
        || ngx_http_affiliate_hmac(amcf->postback_mac, a->signed_part.data,
                                   a->signed_part.len, mac)
           != NGX_OK)
    {
        return NGX_DECLINED;
    }

    ngx_hex_dump(hex, mac, sizeof(mac));

    /* hex in either case; the request's own bytes stay as sent */

    for (i = 0; i < 64; i++) {
        sig[i] = ngx_tolower(a->sig.data[i]);
    }

    return CRYPTO_memcmp(hex, sig, 64) == 0 ? NGX_OK : NGX_DECLINED;
}


static ngx_int_t
ngx_http_affiliate_conversion_send(ngx_http_request_t *r, ngx_uint_t status,
    ngx_http_affiliate_ctx_t *ctx, char *error)
{
    u_char                         *p;
    size_t                          len;
    ngx_buf_t                      *b;
    ngx_http_affiliate_loc_conf_t  *alcf;

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_affiliate_module);

    if (ngx_http_affiliate_add_header(r, "Cache-Control",
                                      &ngx_http_affiliate_no_store)
        == NULL)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (alcf->conversion_gif && status == NGX_HTTP_OK) {
        b = ngx_calloc_buf(r->pool);
        if (b == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        b->pos = ngx_http_affiliate_gif;
        b->last = b->pos + sizeof(ngx_http_affiliate_gif);
        b->memory = 1;

        ngx_str_set(&r->headers_out.content_type, "image/gif");

    } else {
        len = sizeof("{\"ok\":false,\"error\":\"\"}\n") + 128
              + NGX_HTTP_AFFILIATE_ULID_LEN
              + sizeof(",\"attributed\":false,\"duplicate\":false");

        b = ngx_create_temp_buf(r->pool, len);
        if (b == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        p = b->last;

        if (error) {
            p = ngx_snprintf(p, len, "{\"ok\":false,\"error\":\"%s\"}\n",
                             error);

        } else {
            p = ngx_cpymem(p, "{\"ok\":true,\"click_id\":",
                           sizeof("{\"ok\":true,\"click_id\":") - 1);

            if (ctx->has_click_id) {
                p = ngx_sprintf(p, "\"%*s\"", (size_t)
                                NGX_HTTP_AFFILIATE_ULID_LEN, ctx->click_id);

            } else {
                p = ngx_cpymem(p, "null", 4);
            }

            p = ngx_sprintf(p, ",\"attributed\":%s,\"duplicate\":%s}\n",
                            ctx->attributed == NGX_HTTP_AFFILIATE_TRUE
                            ? "true" : "false",
                            ctx->duplicate == NGX_HTTP_AFFILIATE_TRUE
                            ? "true" : "false");
        }

        b->last = p;

        ngx_str_set(&r->headers_out.content_type, "application/json");
    }

    return ngx_http_affiliate_send_body(r, status, b);
}
