
/*
 * Copyright (C) ngx_http_affiliate_module authors
 *
 * The request's context (kept across internal redirects), the client's
 * geo data for a record, and the $affiliate_click_id, $affiliate_link,
 * $affiliate_creator and $affiliate_campaign variables.
 */


#include "ngx_http_affiliate_module.h"


static void ngx_http_affiliate_ctx_cleanup(void *data);
static ngx_int_t ngx_http_affiliate_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_affiliate_click_id_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


static ngx_http_variable_t  ngx_http_affiliate_vars[] = {

    { ngx_string("affiliate_click_id"), NULL,
      ngx_http_affiliate_click_id_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("affiliate_link"), NULL, ngx_http_affiliate_variable,
      offsetof(ngx_http_affiliate_ctx_t, link),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("affiliate_creator"), NULL, ngx_http_affiliate_variable,
      offsetof(ngx_http_affiliate_ctx_t, creator),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("affiliate_campaign"), NULL, ngx_http_affiliate_variable,
      offsetof(ngx_http_affiliate_ctx_t, campaign),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


/*
 * The request's context.  An internal redirect (index, try_files,
 * error_page, rewrite ... last) wipes module contexts and runs the
 * handlers again: the context is kept as a pool cleanup so it can be
 * found again (as the realip module does), and a record already written
 * is not written twice.  Subrequests share the pool: the owner decides.
 */

ngx_http_affiliate_ctx_t *
ngx_http_affiliate_get_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t        *cln;
    ngx_http_affiliate_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_affiliate_module);

    if (ctx) {
        return ctx;
    }

    if (r->internal || r->filter_finalize) {
        for (cln = r->pool->cleanup; cln; cln = cln->next) {
            if (cln->handler == ngx_http_affiliate_ctx_cleanup) {
                ctx = cln->data;

                if (ctx->request == r) {
                    /*
                     * another handler may set other names: what was
                     * known of the redirect handler's own (plain, the
                     * pair's key) is made again for them
                     */
                    ctx->plain_names = 0;
                    ctx->plain_args = 0;
                    ctx->plain_location = 0;
                    ctx->stat_keyed = 0;

                    ngx_http_set_ctx(r, ctx, ngx_http_affiliate_module);
                    return ctx;
                }
            }
        }
    }

    cln = ngx_pool_cleanup_add(r->pool, sizeof(ngx_http_affiliate_ctx_t));
    if (cln == NULL) {
        return NULL;
    }

    ctx = cln->data;
    ngx_memzero(ctx, sizeof(ngx_http_affiliate_ctx_t));
    ctx->request = r;

    cln->handler = ngx_http_affiliate_ctx_cleanup;

    ngx_http_set_ctx(r, ctx, ngx_http_affiliate_module);

    return ctx;
}


/* only marks the context in the pool's cleanups */

static void
ngx_http_affiliate_ctx_cleanup(void *data)
{
}


/* the client's geo data for a record; a miss is counted once */

void
ngx_http_affiliate_geo(ngx_http_request_t *r, ngx_http_affiliate_zone_t *zone,
    ngx_http_affiliate_ctx_t *ctx)
{
    if (!ctx->geo_done) {
        ctx->geo_miss = (ngx_http_affiliate_geo_lookup(r, &ctx->geo)
                         == NGX_ABORT);
        ctx->geo_done = 1;
    }

    if (ctx->geo_miss) {
        ngx_http_affiliate_count(zone->sh, NGX_HTTP_AFFILIATE_GEO_MISSES);
        ctx->geo_miss = 0;
    }
}


static ngx_int_t
ngx_http_affiliate_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t                 *s;
    ngx_http_affiliate_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_affiliate_module);

    if (ctx == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    s = (ngx_str_t *) ((u_char *) ctx + data);

    return ngx_http_affiliate_variable_set(v, s->data, s->len);
}


static ngx_int_t
ngx_http_affiliate_click_id_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_affiliate_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_affiliate_module);

    if (ctx == NULL || !ctx->has_click_id) {
        v->not_found = 1;
        return NGX_OK;
    }

    return ngx_http_affiliate_variable_set(v, ctx->click_id,
                                           NGX_HTTP_AFFILIATE_ULID_LEN);
}


/* a variable's value: len bytes at data, or not found when len is 0 */

ngx_int_t
ngx_http_affiliate_variable_set(ngx_http_variable_value_t *v, u_char *data,
    size_t len)
{
    if (len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->len = len;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    v->data = data;

    return NGX_OK;
}


ngx_int_t
ngx_http_affiliate_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_affiliate_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}
