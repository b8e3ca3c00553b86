
/*
 * Copyright (C) ngx_http_affiliate_module authors
 *
 * affiliate_capture: a landing page reached with the creator parameter.
 * See docs/attribution.md.
 */


#include "ngx_http_affiliate_module.h"


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

ngx_int_t
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
