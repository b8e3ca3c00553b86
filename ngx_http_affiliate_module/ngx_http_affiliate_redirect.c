
/*
 * Copyright (C) ngx_http_affiliate_module authors
 *
 * The affiliate_redirect content handler: slug -> link -> Location.
 */


#include "ngx_http_affiliate_module.h"


static ngx_int_t ngx_http_affiliate_redirect_opts(ngx_http_request_t *r,
    ngx_http_affiliate_zone_t *zone, ngx_http_affiliate_ctx_t *ctx,
    ngx_http_affiliate_link_t *link);
static ngx_int_t ngx_http_affiliate_redirect_to(ngx_http_request_t *r,
    ngx_http_affiliate_zone_t *zone, ngx_http_affiliate_ctx_t *ctx,
    ngx_http_affiliate_dest_t *dest, ngx_uint_t status, ngx_str_t *extra);
static ngx_int_t ngx_http_affiliate_send_redirect(ngx_http_request_t *r,
    ngx_http_affiliate_ctx_t *ctx);
static ngx_int_t ngx_http_affiliate_send_status(ngx_http_request_t *r,
    ngx_uint_t status);


ngx_str_t  ngx_http_affiliate_no_store = ngx_string("private, no-store");


static ngx_uint_t  ngx_http_affiliate_redirect_statuses[] = {
    NGX_HTTP_MOVED_PERMANENTLY,
    NGX_HTTP_MOVED_TEMPORARILY,
    NGX_HTTP_SEE_OTHER,
    NGX_HTTP_TEMPORARY_REDIRECT,
    NGX_HTTP_PERMANENT_REDIRECT,
    0
};


ngx_int_t
ngx_http_affiliate_redirect_handler(ngx_http_request_t *r)
{
    u_char                         *p, *last;
    ngx_int_t                       rc;
    ngx_str_t                       slug, extra;
    ngx_uint_t                      status;
    ngx_http_affiliate_rule_t      *rule;
    ngx_http_affiliate_dest_t       rule_dest;
    ngx_http_affiliate_ctx_t       *ctx;
    ngx_http_affiliate_link_t      *link;
    ngx_http_affiliate_zone_t      *zone;
    ngx_http_affiliate_dest_t      *dest;
    ngx_http_core_loc_conf_t       *clcf;
    ngx_http_affiliate_srv_conf_t  *ascf;
    ngx_http_affiliate_loc_conf_t  *alcf;

    if (r != r->main) {
        /* SSI, mirror, auth_request: not a person following a link */
        return NGX_HTTP_NOT_FOUND;
    }

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_affiliate_module);
    ascf = ngx_http_get_module_srv_conf(r, ngx_http_affiliate_module);
    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    zone = alcf->redirect_zone;

    ctx = ngx_http_affiliate_get_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ctx->done & NGX_HTTP_AFFILIATE_DONE(NGX_HTTP_AFFILIATE_CLICK)) {
        /* an internal redirect back here after the click: the same answer */
        return ctx->location.len ? ngx_http_affiliate_send_redirect(r, ctx)
                                 : ngx_http_affiliate_send_empty(r,
                                                                 ctx->status);
    }

    /* the slug: the URI after a prefix location, else its last segment */

    last = r->uri.data + r->uri.len;

    if (!clcf->exact_match
#if (NGX_PCRE)
        && clcf->regex == NULL
#endif
        && clcf->name.len <= r->uri.len)
    {
        p = r->uri.data + clcf->name.len;

    } else {
        for (p = last; p > r->uri.data && p[-1] != '/'; p--) {
            /* void */
        }
    }

    slug.data = p;
    slug.len = last - p;

    ctx->link = slug;

    link = ngx_http_affiliate_links_find(ascf->links, &slug);

    if (link) {
        /* cache misses into the table, fetched while the geo lookup runs */
        __builtin_prefetch(link->dest.data);
        __builtin_prefetch(link->creator.data);
    }

    ngx_http_affiliate_geo(r, zone, ctx);

    if (link == NULL) {
        rc = ngx_http_affiliate_rules_find(r, alcf, ctx, &rule_dest, &status);

        if (rc == NGX_OK) {
            ctx->link = r->uri;
            rule = alcf->rules->elts;
            ngx_str_null(&extra);

            /* query=forward: parameters after the checked destination's */

            if (rule[ctx->rule - 1].forward_query
                && ngx_http_affiliate_forward_query(r, &rule_dest, &extra)
                   != NGX_OK)
            {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            return ngx_http_affiliate_redirect_to(r, zone, ctx, &rule_dest,
                                                  status, &extra);
        }

        if (rc == NGX_HTTP_BAD_REQUEST) {
            ngx_http_affiliate_count(zone->sh, NGX_HTTP_AFFILIATE_REJECTED);
            return NGX_HTTP_BAD_REQUEST;
        }

        if (rc != NGX_DECLINED) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (ctx->done & NGX_HTTP_AFFILIATE_DONE(NGX_HTTP_AFFILIATE_MISS)) {
            /* error_page 404 led back to a miss: recorded once */
            return NGX_HTTP_NOT_FOUND;
        }

        ctx->status = NGX_HTTP_NOT_FOUND;
        ctx->done |= NGX_HTTP_AFFILIATE_DONE(NGX_HTTP_AFFILIATE_MISS);

        ngx_http_affiliate_count(zone->sh, NGX_HTTP_AFFILIATE_MISSES);
        ngx_http_affiliate_record(r, zone, ctx, NGX_HTTP_AFFILIATE_MISS);

        return NGX_HTTP_NOT_FOUND;
    }

    ctx->creator = link->creator;
    ctx->campaign = link->campaign;
    ctx->stat_key = link->stat_key;
    ctx->stat_keyed = 1;
    ctx->plain_names = (link->flags & NGX_HTTP_AFFILIATE_LINK_JSON) ? 1 : 0;
    ctx->plain_args = (link->flags & NGX_HTTP_AFFILIATE_LINK_ARGS) ? 1 : 0;

    if (link->opts) {
        return ngx_http_affiliate_redirect_opts(r, zone, ctx, link);
    }

    dest = ngx_http_affiliate_geo_dest(link, ctx);

    return ngx_http_affiliate_redirect_to(r, zone, ctx,
                                          dest ? dest : &link->dest, 0,
                                          NULL);
}


/* a link with options: who asks decides where it goes (options.c) */

static ngx_int_t
ngx_http_affiliate_redirect_opts(ngx_http_request_t *r,
    ngx_http_affiliate_zone_t *zone, ngx_http_affiliate_ctx_t *ctx,
    ngx_http_affiliate_link_t *link)
{
    ngx_str_t                        extra;
    ngx_http_affiliate_dest_t       *dest;
    ngx_http_affiliate_main_conf_t  *amcf;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_affiliate_module);

    /* a bot or a prefetch never uses up a cap: known before the choice */

    ctx->bot_reason = ngx_http_affiliate_bot(r, amcf);
    ctx->bot_done = 1;

    if (ngx_http_affiliate_link_dest(r, zone, ctx, link, &dest)
        == NGX_DECLINED)
    {
        ctx->done |= NGX_HTTP_AFFILIATE_DONE(NGX_HTTP_AFFILIATE_CLICK);
        ctx->status = NGX_HTTP_AFFILIATE_GONE;

        ngx_http_affiliate_click(r, zone, ctx, NGX_HTTP_AFFILIATE_CLICK);

        return ngx_http_affiliate_send_empty(r, NGX_HTTP_AFFILIATE_GONE);
    }

    if (link->opts->forward_query) {
        if (ngx_http_affiliate_forward_query(r, dest, &extra) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

    } else {
        ngx_str_null(&extra);
    }

    return ngx_http_affiliate_redirect_to(r, zone, ctx, dest,
                                          link->opts->status, &extra);
}


static ngx_int_t
ngx_http_affiliate_redirect_to(ngx_http_request_t *r,
    ngx_http_affiliate_zone_t *zone, ngx_http_affiliate_ctx_t *ctx,
    ngx_http_affiliate_dest_t *dest, ngx_uint_t status, ngx_str_t *extra)
{
    ngx_http_affiliate_loc_conf_t  *alcf;

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_affiliate_module);

    ctx->done |= NGX_HTTP_AFFILIATE_DONE(NGX_HTTP_AFFILIATE_CLICK);

    if (alcf->speculative && ngx_http_affiliate_speculative(r)) {
        /*
         * A speculative navigation: the browser would keep this answer
         * and the person's click would never reach us.  A no-store
         * error makes it fetch again on the real navigation.
         */

        ctx->status = alcf->speculative;
        ngx_http_affiliate_click(r, zone, ctx, NGX_HTTP_AFFILIATE_CLICK);

        return ngx_http_affiliate_send_empty(r, ctx->status);
    }

    /* the expired= fallback of a link that is not live has no click id */

    if (ctx->reason == NULL) {
        ngx_http_affiliate_click_prefetch(r, zone, ctx);

        ngx_http_affiliate_ulid(ctx->click_id);
        ctx->has_click_id = 1;

        if (zone->sh->clicks.n) {
            ctx->click_key = ngx_http_affiliate_click_key(zone->sh,
                                                          ctx->click_id);
            ctx->click_keyed = 1;

            /* the lines click_index_add() will write, not the whole entry */

            ngx_http_affiliate_table_prefetch(&zone->sh->clicks,
                          ctx->click_key,
                          offsetof(ngx_http_affiliate_click_entry_t, campaign)
                          + ctx->campaign.len);
        }
    }

    if (ngx_http_affiliate_location_extra(r, dest, extra, &ctx->creator,
                                          &ctx->campaign,
                                          ctx->reason ? NULL : ctx->click_id,
                                          ctx->plain_args, &ctx->location)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* what was known plain stays so: escapes are "%XX", the id base32 */

    ctx->plain_location = ctx->plain_names
                          && (dest->flags & NGX_HTTP_AFFILIATE_JSON_PLAIN)
                          && (extra == NULL || extra->len == 0);

    ctx->status = status ? status : alcf->redirect_status;

    ngx_http_affiliate_click(r, zone, ctx, NGX_HTTP_AFFILIATE_CLICK);

    return ngx_http_affiliate_send_redirect(r, ctx);
}


/*
 * dest?query&click_id=ID&utm_source=C&utm_medium=affiliate&utm_campaign=K#f
 * where the destination's query does not set a parameter already; extra
 * (query=forward), if not NULL, after the link's own parameters; no
 * click_id when click_id is NULL (a link that is not live).  plain:
 * creator and campaign are known to need no escaping (a link's LINK_ARGS).
 */

ngx_int_t
ngx_http_affiliate_location_extra(ngx_http_request_t *r,
    ngx_http_affiliate_dest_t *dest, ngx_str_t *extra, ngx_str_t *creator,
    ngx_str_t *campaign, u_char *click_id, ngx_uint_t plain,
    ngx_str_t *location)
{
    u_char     *p, sep;
    size_t      len;
    uintptr_t   ecreator, ecampaign;

    if (plain) {
        ecreator = 0;
        ecampaign = 0;

    } else {
        ecreator = ngx_escape_uri(NULL, creator->data, creator->len,
                                  NGX_ESCAPE_ARGS);
        ecampaign = ngx_escape_uri(NULL, campaign->data, campaign->len,
                                   NGX_ESCAPE_ARGS);
    }

    len = dest->len
          + sizeof("?click_id=") - 1 + NGX_HTTP_AFFILIATE_ULID_LEN
          + sizeof("&utm_source=") - 1 + creator->len + 2 * ecreator
          + sizeof("&utm_medium=affiliate") - 1
          + sizeof("&utm_campaign=") - 1 + campaign->len + 2 * ecampaign
          + (extra ? 1 + extra->len : 0);

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    location->data = p;

    p = ngx_cpymem(p, dest->data, dest->frag);

    /* "?q=why?": only the query's own "?" makes an empty query */

    if (!(dest->flags & NGX_HTTP_AFFILIATE_HAS_QUERY)) {
        sep = '?';

    } else if (p[-1] == '&'
               || (p[-1] == '?'
                   && ngx_strlchr(dest->data, dest->data + dest->frag, '?')
                      == dest->data + dest->frag - 1))
    {
        sep = 0;

    } else {
        sep = '&';
    }

    if (extra && extra->len) {
        if (sep) {
            *p++ = sep;
        }

        p = ngx_cpymem(p, extra->data, extra->len);
        sep = '&';
    }

    if (click_id && !(dest->flags & NGX_HTTP_AFFILIATE_HAS_CLICK_ID)) {
        if (sep) {
            *p++ = sep;
        }

        p = ngx_cpymem(p, "click_id=", sizeof("click_id=") - 1);
        p = ngx_cpymem(p, click_id, NGX_HTTP_AFFILIATE_ULID_LEN);
        sep = '&';
    }

    if (!(dest->flags & NGX_HTTP_AFFILIATE_HAS_UTM_SOURCE) && creator->len) {
        if (sep) {
            *p++ = sep;
        }

        p = ngx_cpymem(p, "utm_source=", sizeof("utm_source=") - 1);
        p = ecreator ? (u_char *) ngx_escape_uri(p, creator->data,
                                                 creator->len,
                                                 NGX_ESCAPE_ARGS)
                     : ngx_cpymem(p, creator->data, creator->len);
        sep = '&';
    }

    if (!(dest->flags & NGX_HTTP_AFFILIATE_HAS_UTM_MEDIUM)) {
        if (sep) {
            *p++ = sep;
        }

        p = ngx_cpymem(p, "utm_medium=affiliate",
                       sizeof("utm_medium=affiliate") - 1);
        sep = '&';
    }

    if (!(dest->flags & NGX_HTTP_AFFILIATE_HAS_UTM_CAMPAIGN)
        && campaign->len)
    {
        if (sep) {
            *p++ = sep;
        }

        p = ngx_cpymem(p, "utm_campaign=", sizeof("utm_campaign=") - 1);
        p = ecampaign ? (u_char *) ngx_escape_uri(p, campaign->data,
                                                  campaign->len,
                                                  NGX_ESCAPE_ARGS)
                      : ngx_cpymem(p, campaign->data, campaign->len);
    }

    p = ngx_cpymem(p, dest->data + dest->frag, dest->len - dest->frag);

    location->len = p - location->data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_affiliate_send_redirect(ngx_http_request_t *r,
    ngx_http_affiliate_ctx_t *ctx)
{
    if (ngx_http_affiliate_set_location(r, &ctx->location) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_affiliate_send_status(r, ctx->status);
}


/* "status=N" of affiliate_redirect and affiliate_rule; logs a bad one */

ngx_int_t
ngx_http_affiliate_redirect_status(ngx_conf_t *cf, ngx_str_t *value)
{
    ngx_int_t  n;

    n = ngx_atoi(value->data + sizeof("status=") - 1,
                 value->len - (sizeof("status=") - 1));

    if (ngx_http_affiliate_redirect_status_valid(n)) {
        return n;
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid redirect status \"%V\", "
                       NGX_HTTP_AFFILIATE_STATUS_EXPECTED, value);

    return NGX_ERROR;
}


ngx_uint_t
ngx_http_affiliate_redirect_status_valid(ngx_int_t n)
{
    ngx_uint_t  k;

    for (k = 0; n > 0 && ngx_http_affiliate_redirect_statuses[k]; k++) {
        if ((ngx_uint_t) n == ngx_http_affiliate_redirect_statuses[k]) {
            return 1;
        }
    }

    return 0;
}


/* a speculative navigation declined: an empty, uncacheable answer */

ngx_int_t
ngx_http_affiliate_send_empty(ngx_http_request_t *r, ngx_uint_t status)
{
    if (ngx_http_affiliate_add_header(r, "Cache-Control",
                                      &ngx_http_affiliate_no_store)
        == NULL)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_affiliate_send_status(r, status);
}


/* the status line and the headers set so far, no body */

static ngx_int_t
ngx_http_affiliate_send_status(ngx_http_request_t *r, ngx_uint_t status)
{
    ngx_int_t  rc;

    r->headers_out.status = status;
    r->headers_out.content_length_n = 0;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    return ngx_http_send_special(r, NGX_HTTP_LAST);
}


/* an answer of one buffer, with the content type and headers set so far */

ngx_int_t
ngx_http_affiliate_send_body(ngx_http_request_t *r, ngx_uint_t status,
    ngx_buf_t *b)
{
    ngx_int_t    rc;
    ngx_chain_t  out;

    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.status = status;
    r->headers_out.content_length_n = b->last - b->pos;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


/* a redirect's headers: Location, and no-store so that clicks reach us */

ngx_int_t
ngx_http_affiliate_set_location(ngx_http_request_t *r, ngx_str_t *location)
{
    ngx_table_elt_t  *h;

    ngx_http_clear_location(r);

    h = ngx_http_affiliate_add_header(r, "Location", location);
    if (h == NULL) {
        return NGX_ERROR;
    }

    r->headers_out.location = h;

    if (ngx_http_affiliate_add_header(r, "Cache-Control",
                                      &ngx_http_affiliate_no_store)
        == NULL)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * A plain response header.  Cache-Control goes here too, not into
 * r->headers_out.cache_control: nginx's "expires" would then replace
 * our no-store with max-age; as it is, it adds a second header and
 * browsers honour no-store (t/41-chromium.t).
 */

ngx_table_elt_t *
ngx_http_affiliate_header_push(ngx_http_request_t *r, u_char *key,
    size_t key_len, ngx_str_t *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NULL;
    }

    h->hash = 1;
#if (nginx_version >= 1023000)
    h->next = NULL;
#endif
    h->key.data = key;
    h->key.len = key_len;

    if (value) {
        h->value = *value;

    } else {
        ngx_str_null(&h->value);
    }

    return h;
}
