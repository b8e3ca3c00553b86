
/*
 * Copyright (C) ngx_http_affiliate_module authors
 *
 * affiliate_capture: a landing page reached with the creator parameter.
 * See docs/attribution.md.
 */


#include "ngx_http_affiliate_module.h"


static ngx_int_t ngx_http_affiliate_capture_params(ngx_http_request_t *r,
    ngx_http_affiliate_loc_conf_t *alcf, ngx_http_affiliate_ctx_t *ctx);
static ngx_int_t ngx_http_affiliate_capture_target(ngx_http_request_t *r,
    ngx_http_affiliate_loc_conf_t *alcf, ngx_str_t *target);
static ngx_uint_t ngx_http_affiliate_capture_param(ngx_str_t *param,
    ngx_str_t *name);


/*
 * A REWRITE phase handler.  It runs again after every internal redirect
 * (index, try_files, error_page) with the same request: the landing is
 * recorded once, the context survives the redirect (see get_ctx).
 */

ngx_int_t
ngx_http_affiliate_capture_handler(ngx_http_request_t *r)
{
    ngx_str_t                       target;
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

    if (ctx->done & NGX_HTTP_AFFILIATE_DONE(NGX_HTTP_AFFILIATE_LANDING)) {
        return NGX_DECLINED;
    }

    if (ngx_http_affiliate_capture_params(r, alcf, ctx) != NGX_OK) {
        return NGX_DECLINED;
    }

    ctx->link = r->uri;
    ctx->done |= NGX_HTTP_AFFILIATE_DONE(NGX_HTTP_AFFILIATE_LANDING);

    ngx_http_affiliate_geo(r, alcf->capture_zone, ctx);

    if (alcf->speculative && ngx_http_affiliate_speculative(r)) {
        /* declined, so that the real navigation lands here (redirect.c) */
        ctx->status = alcf->speculative;
        ngx_http_affiliate_click(r, alcf->capture_zone, ctx,
                                 NGX_HTTP_AFFILIATE_LANDING);

        return ngx_http_affiliate_send_empty(r, ctx->status);
    }

    ngx_http_affiliate_ulid(ctx->click_id);
    ctx->has_click_id = 1;

    if (!alcf->capture_strip) {
        ngx_http_affiliate_click(r, alcf->capture_zone, ctx,
                                 NGX_HTTP_AFFILIATE_LANDING);
        return NGX_DECLINED;
    }

    if (ngx_http_affiliate_capture_target(r, alcf, &target) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->location = target;
    ctx->status = NGX_HTTP_MOVED_TEMPORARILY;

    ngx_http_affiliate_click(r, alcf->capture_zone, ctx,
                             NGX_HTTP_AFFILIATE_LANDING);

    if (ngx_http_affiliate_set_location(r, &target) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return NGX_HTTP_MOVED_TEMPORARILY;
}


/* the creator and campaign parameters; NGX_DECLINED: not a landing */

static ngx_int_t
ngx_http_affiliate_capture_params(ngx_http_request_t *r,
    ngx_http_affiliate_loc_conf_t *alcf, ngx_http_affiliate_ctx_t *ctx)
{
    ngx_str_t  creator, campaign;

    if (ngx_http_affiliate_arg(r, &alcf->capture_creator, &creator) != NGX_OK
        || !ngx_http_affiliate_text_valid(&creator,
                                          NGX_HTTP_AFFILIATE_CREATOR_MAX))
    {
        return NGX_DECLINED;
    }

    if (alcf->capture_campaign.len == 0
        || ngx_http_affiliate_arg(r, &alcf->capture_campaign, &campaign)
           != NGX_OK
        || !ngx_http_affiliate_text_valid(&campaign,
                                          NGX_HTTP_AFFILIATE_CAMPAIGN_MAX))
    {
        ngx_str_null(&campaign);
    }

    ctx->creator = creator;
    ctx->campaign = campaign;

    return NGX_OK;
}


/*
 * strip=on: the same page without the capture parameters, as a path on
 * this host.  It is built from the normalised URI, never from the
 * request line: "//host/..." or "/\\host/..." would leave the site.  A
 * run of leading slashes and backslashes becomes one slash, the rest
 * is escaped; the other arguments are kept in order.
 */

static ngx_int_t
ngx_http_affiliate_capture_target(ngx_http_request_t *r,
    ngx_http_affiliate_loc_conf_t *alcf, ngx_str_t *target)
{
    u_char     *p, *path, *start, *amp, *last;
    size_t      len;
    ngx_str_t   name, value;

    path = r->uri.data;
    last = r->uri.data + r->uri.len;

    while (path < last && (*path == '/' || *path == '\\')) {
        path++;
    }

    len = 1 + (last - path)
          + 2 * ngx_escape_uri(NULL, path, last - path, NGX_ESCAPE_URI)
          + 1 + 3 * r->args.len;

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    target->data = p;

    *p++ = '/';
    p = (u_char *) ngx_escape_uri(p, path, last - path, NGX_ESCAPE_URI);

    len = p - target->data;
    last = r->args.data + r->args.len;

    for (start = r->args.data; start < last; start = amp + 1) {

        amp = ngx_http_affiliate_arg_split(start, last, &name, &value);

        if (amp == start
            || ngx_http_affiliate_capture_param(&alcf->capture_creator, &name)
            || ngx_http_affiliate_capture_param(&alcf->capture_campaign,
                                                &name))
        {
            continue;
        }

        *p = (p == target->data + len) ? '?' : '&';
        p = ngx_http_affiliate_escape_args(p + 1, start, amp - start);
    }

    target->len = p - target->data;

    return NGX_OK;
}


/*
 * The raw query may hold bytes a header must not carry (space, DEL,
 * 8-bit) and "#", which would start a fragment: all are escaped.
 */

u_char *
ngx_http_affiliate_escape_args(u_char *dst, u_char *src, size_t len)
{
    static u_char  hex[] = "0123456789ABCDEF";

    while (len--) {
        if (*src > ' ' && *src < 0x7f && *src != '#') {
            *dst++ = *src++;
            continue;
        }

        *dst++ = '%';
        *dst++ = hex[*src >> 4];
        *dst++ = hex[*src++ & 0xf];
    }

    return dst;
}


static ngx_uint_t
ngx_http_affiliate_capture_param(ngx_str_t *param, ngx_str_t *name)
{
    return param->len
           && name->len == param->len
           && ngx_strncasecmp(name->data, param->data, param->len) == 0;
}


/* a query argument, decoded as a form does; NGX_DECLINED: absent, empty */

ngx_int_t
ngx_http_affiliate_arg(ngx_http_request_t *r, ngx_str_t *name,
    ngx_str_t *value)
{
    ngx_str_t  raw;

    if (ngx_http_arg(r, name->data, name->len, &raw) != NGX_OK
        || raw.len == 0)
    {
        return NGX_DECLINED;
    }

    if (ngx_http_affiliate_unescape_arg(r->pool, &raw, value) != NGX_OK) {
        return NGX_ERROR;
    }

    return value->len ? NGX_OK : NGX_DECLINED;
}


/*
 * application/x-www-form-urlencoded: "+" is a space, then %XX; the same
 * for every parameter the module reads (capture, conversions).
 */

ngx_int_t
ngx_http_affiliate_unescape_arg(ngx_pool_t *pool, ngx_str_t *raw,
    ngx_str_t *value)
{
    u_char  *dst, *src, *p;

    dst = ngx_pnalloc(pool, raw->len + 1);
    if (dst == NULL) {
        return NGX_ERROR;
    }

    for (p = dst, src = raw->data; src < raw->data + raw->len; src++) {
        *p++ = (*src == '+') ? ' ' : *src;
    }

    value->data = dst;
    src = dst;

    ngx_unescape_uri(&dst, &src, raw->len, 0);

    value->len = dst - value->data;

    return NGX_OK;
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
