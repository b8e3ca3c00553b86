
/*
 * Copyright (C) ngx_http_affiliate_module authors
 *
 * Referral patterns: affiliate_rule (PCRE2 through ngx_http_regex) and
 * the open-redirect guard, affiliate_allow_hosts.
 */


#include "ngx_http_affiliate_module.h"


static ngx_int_t ngx_http_affiliate_host_allowed(ngx_array_t *hosts,
    ngx_str_t *url);


char *
ngx_http_affiliate_rule(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_affiliate_loc_conf_t *alcf = conf;

    u_char                            *p, *host, *last;
    ngx_int_t                          n;
    ngx_str_t                         *value, s;
    ngx_uint_t                         i;
    ngx_regex_compile_t                rc;
    ngx_http_affiliate_rule_t         *rule;
    ngx_http_affiliate_dest_t          dest;
    ngx_http_complex_value_t         **cvp;
    ngx_http_compile_complex_value_t   ccv;
    u_char                             errstr[NGX_MAX_CONF_ERRSTR];

    value = cf->args->elts;

    if (alcf->rules == NULL) {
        alcf->rules = ngx_array_create(cf->pool, 4,
                                       sizeof(ngx_http_affiliate_rule_t));
        if (alcf->rules == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    rule = ngx_array_push(alcf->rules);
    if (rule == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(rule, sizeof(ngx_http_affiliate_rule_t));

    rule->file = cf->conf_file->file.name.data;
    rule->line = cf->conf_file->line;

    ngx_memzero(&rc, sizeof(ngx_regex_compile_t));

    rc.pattern = value[1];
    rc.pool = cf->pool;
    rc.err.len = NGX_MAX_CONF_ERRSTR;
    rc.err.data = errstr;

    rule->regex = ngx_http_regex_compile(cf, &rc);
    if (rule->regex == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

    ccv.cf = cf;
    ccv.value = &value[2];
    ccv.complex_value = &rule->dest;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (rule->dest.lengths == NULL) {
        p = (u_char *) ngx_http_affiliate_dest_parse(&value[2], &dest);
        if (p) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%s", p);
            return NGX_CONF_ERROR;
        }

    } else {
        /*
         * The host is the rule's own only when the value starts with a
         * literal "http://" or "https://" and has no variable before the
         * path: in "https:/$1" a capture that starts with "/" names it.
         */

        last = value[2].data + value[2].len;
        host = value[2].data + ngx_http_affiliate_scheme_len(&value[2]);

        if (host == value[2].data) {
            rule->variable_host = 1;

        } else {
            for (p = host; p < last; p++) {
                if (*p == '/' || *p == '?' || *p == '#') {
                    break;
                }
            }

            if (ngx_strlchr(host, p, '$')) {
                rule->variable_host = 1;
            }
        }
    }

    for (i = 3; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "creator=", 8) == 0) {
            cvp = &rule->creator;
            s.data = value[i].data + 8;
            s.len = value[i].len - 8;

        } else if (ngx_strncmp(value[i].data, "campaign=", 9) == 0) {
            cvp = &rule->campaign;
            s.data = value[i].data + 9;
            s.len = value[i].len - 9;

        } else if (ngx_strncmp(value[i].data, "status=", 7) == 0) {
            n = ngx_http_affiliate_redirect_status(cf, &value[i]);
            if (n == NGX_ERROR) {
                return NGX_CONF_ERROR;
            }

            rule->status = n;
            continue;

        } else if (ngx_strcmp(value[i].data, "query=forward") == 0
                   || ngx_strcmp(value[i].data, "query=drop") == 0)
        {
            rule->forward_query = (value[i].data[6] == 'f');
            continue;

        } else if (ngx_strcmp(value[i].data, "utm=set") == 0
                   || ngx_strcmp(value[i].data, "utm=keep") == 0)
        {
            rule->utm_set = (value[i].data[4] == 's');
            continue;

        } else {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\"", &value[i]);
            return NGX_CONF_ERROR;
        }

        *cvp = ngx_palloc(cf->pool, sizeof(ngx_http_complex_value_t));
        if (*cvp == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

        ccv.cf = cf;
        ccv.value = &s;
        ccv.complex_value = *cvp;

        if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


char *
ngx_http_affiliate_allow_hosts(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_affiliate_loc_conf_t *alcf = conf;

    ngx_str_t   *value, *h;
    ngx_uint_t   i;

    if (alcf->allow_hosts != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    alcf->allow_hosts = ngx_array_create(cf->pool, cf->args->nelts - 1,
                                         sizeof(ngx_str_t));
    if (alcf->allow_hosts == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        if (value[i].len == 0 || (value[i].len == 1 && value[i].data[0] == '.')
            || ngx_strlchr(value[i].data, value[i].data + value[i].len, '/')
            || ngx_strlchr(value[i].data, value[i].data + value[i].len, '*'))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid host \"%V\", expected a name or "
                               "\".suffix\"", &value[i]);
            return NGX_CONF_ERROR;
        }

        h = ngx_array_push(alcf->allow_hosts);
        if (h == NULL) {
            return NGX_CONF_ERROR;
        }

        *h = value[i];
        ngx_strlow(h->data, h->data, h->len);
    }

    return NGX_CONF_OK;
}


/* called when locations are merged: every rule knows its hosts by now */

char *
ngx_http_affiliate_rules_check(ngx_conf_t *cf,
    ngx_http_affiliate_loc_conf_t *alcf)
{
    ngx_uint_t                  i;
    ngx_http_affiliate_rule_t  *rule;

    if (alcf->rules == NULL || alcf->allow_hosts) {
        return NGX_CONF_OK;
    }

    rule = alcf->rules->elts;

    for (i = 0; i < alcf->rules->nelts; i++) {
        if (rule[i].variable_host) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "affiliate_rule in %s:%ui: the destination's host "
                          "comes from a variable, which a request could set; "
                          "list the hosts it may name with "
                          "\"affiliate_allow_hosts\"",
                          rule[i].file, rule[i].line);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/*
 * NGX_OK: a rule matched and *dest is a checked destination;
 * NGX_DECLINED: no rule matched; NGX_HTTP_BAD_REQUEST: the destination,
 * creator or campaign a rule produced is unsafe; NGX_ERROR.
 */

ngx_int_t
ngx_http_affiliate_rules_find(ngx_http_request_t *r,
    ngx_http_affiliate_loc_conf_t *alcf, ngx_http_affiliate_ctx_t *ctx,
    ngx_http_affiliate_dest_t *dest, ngx_uint_t *status)
{
    ngx_int_t                   rc;
    ngx_str_t                   url, creator, campaign;
    ngx_uint_t                  i;
    ngx_http_affiliate_rule_t  *rule;

    if (alcf->rules == NULL) {
        return NGX_DECLINED;
    }

    rule = alcf->rules->elts;

    for (i = 0; i < alcf->rules->nelts; i++) {

        rc = ngx_http_regex_exec(r, rule[i].regex, &r->uri);

        if (rc == NGX_DECLINED) {
            continue;
        }

        if (rc != NGX_OK) {
            return NGX_ERROR;
        }

        /* captures are read at once: a later map could change them */

        if (ngx_http_complex_value(r, &rule[i].dest, &url) != NGX_OK) {
            return NGX_ERROR;
        }

        ngx_str_null(&creator);
        ngx_str_null(&campaign);

        if (rule[i].creator
            && ngx_http_complex_value(r, rule[i].creator, &creator) != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (rule[i].campaign
            && ngx_http_complex_value(r, rule[i].campaign, &campaign)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        ctx->rule = i + 1;

        if ((creator.len
             && !ngx_http_affiliate_text_valid(&creator,
                                               NGX_HTTP_AFFILIATE_CREATOR_MAX))
            || (campaign.len
                && !ngx_http_affiliate_text_valid(&campaign,
                                            NGX_HTTP_AFFILIATE_CAMPAIGN_MAX)))
        {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "affiliate_rule %ui: unsafe creator or campaign",
                          i + 1);
            return NGX_HTTP_BAD_REQUEST;
        }

        if (ngx_http_affiliate_dest_parse(&url, dest) != NULL
            || (rule[i].variable_host
                && !ngx_http_affiliate_host_allowed(alcf->allow_hosts, &url)))
        {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "affiliate_rule %ui: refused destination \"%V\"",
                          i + 1, &url);
            return NGX_HTTP_BAD_REQUEST;
        }

        /* utm=set: only query parameters go, the checked host stays */

        if (rule[i].utm_set
            && ngx_http_affiliate_utm_strip(r->pool, dest) != NULL)
        {
            return NGX_ERROR;
        }

        ctx->creator = creator;
        ctx->campaign = campaign;
        *status = rule[i].status;

        return NGX_OK;
    }

    return NGX_DECLINED;
}


/* url is a checked destination: http(s)://host[:port]... */

static ngx_int_t
ngx_http_affiliate_host_allowed(ngx_array_t *hosts, ngx_str_t *url)
{
    u_char      *p, *last;
    ngx_str_t    host, *h;
    ngx_uint_t   i;

    if (hosts == NULL) {
        return 0;
    }

    host.data = url->data + (url->data[4] == ':' ? 7 : 8);
    last = url->data + url->len;

    for (p = host.data; p < last; p++) {
        if (*p == ':' || *p == '/' || *p == '?' || *p == '#') {
            break;
        }
    }

    host.len = p - host.data;

    h = hosts->elts;

    for (i = 0; i < hosts->nelts; i++) {

        if (h[i].data[0] != '.') {
            if (h[i].len == host.len
                && ngx_strncasecmp(h[i].data, host.data, host.len) == 0)
            {
                return 1;
            }

            continue;
        }

        /* ".brand.example": brand.example and its subdomains */

        if (host.len == h[i].len - 1
            && ngx_strncasecmp(h[i].data + 1, host.data, host.len) == 0)
        {
            return 1;
        }

        if (host.len > h[i].len
            && ngx_strncasecmp(h[i].data, host.data + host.len - h[i].len,
                               h[i].len) == 0)
        {
            return 1;
        }
    }

    return 0;
}
