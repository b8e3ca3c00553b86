
/*
 * Copyright (C) ngx_http_affiliate_module authors
 *
 * Referral rules (ngx_http_affiliate_rules.c): a rule and an allow list
 * compiled by the directive handlers themselves (affiliate_rule,
 * affiliate_allow_hosts, the merge-time check), then a request URI run
 * through ngx_http_affiliate_rules_find(): PCRE2 captures expanded into
 * the destination, creator and campaign.
 *
 * Input, cut at '\n': PATTERN DEST CREATOR CAMPAIGN HOSTS URI, where
 * HOSTS is a space-separated affiliate_allow_hosts list (empty: none).
 * Only numbered captures ($1-$9) are used, as variables and named
 * captures would need a whole http{} configuration.
 *
 * Properties: a matched rule yields a checked destination; when its host
 * comes from the request, the host a browser goes to is one that
 * affiliate_allow_hosts lists (a name exactly, ".suffix" the name or a
 * subdomain), else it is the rule's own host; the creator and campaign
 * are empty or valid text within their limits.
 */


#define FZ_OWN_INIT  1

#include "fuzz_common.h"

#include "../ngx_http_affiliate_module/ngx_http_affiliate_rules.c"


static u_char  fz_conf_name[] = "fuzz.conf";


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fz_init();
    fz_module_index();
    ngx_http_core_module.ctx_index = 1;

    return 0;
}


/* only $1..$9: no variable, no named capture */

static ngx_uint_t
fz_captures_only(ngx_str_t *s, ngx_uint_t pattern)
{
    size_t  i;

    for (i = 0; i < s->len; i++) {
        if (pattern) {
            if (s->data[i] == '(' && s->len - i >= 3 && s->data[i + 1] == '?'
                && (s->data[i + 2] == '<' || s->data[i + 2] == '\''
                    || s->data[i + 2] == 'P'))
            {
                if (s->data[i + 2] == '<' && s->len - i >= 4
                    && (s->data[i + 3] == '=' || s->data[i + 3] == '!'))
                {
                    continue;
                }

                return 0;
            }

            continue;
        }

        if (s->data[i] == '$'
            && (i + 1 == s->len || s->data[i + 1] < '1'
                || s->data[i + 1] > '9'))
        {
            return 0;
        }
    }

    return 1;
}


static ngx_array_t *
fz_args(ngx_pool_t *pool, const char *name, ngx_str_t *v, ngx_uint_t n)
{
    ngx_str_t    *a;
    ngx_uint_t    i;
    ngx_array_t  *args;

    args = ngx_array_create(pool, n + 1, sizeof(ngx_str_t));
    a = ngx_array_push_n(args, n + 1);

    a[0].data = (u_char *) name;
    a[0].len = ngx_strlen(name);

    for (i = 0; i < n; i++) {
        /* nginx's arguments are NUL-terminated copies */
        a[i + 1].len = v[i].len;
        a[i + 1].data = ngx_pnalloc(pool, v[i].len + 1);
        ngx_memcpy(a[i + 1].data, v[i].data, v[i].len);
        a[i + 1].data[v[i].len] = '\0';
    }

    return args;
}


static ngx_uint_t
fz_allowed(ngx_array_t *hosts, ngx_str_t *host)
{
    ngx_str_t   *h;
    ngx_uint_t   i;

    if (hosts == NULL) {
        return 0;
    }

    h = hosts->elts;

    for (i = 0; i < hosts->nelts; i++) {
        if (h[i].data[0] != '.') {
            if (h[i].len == host->len
                && ngx_strncasecmp(h[i].data, host->data, host->len) == 0)
            {
                return 1;
            }

            continue;
        }

        if ((host->len == h[i].len - 1
             && ngx_strncasecmp(h[i].data + 1, host->data, host->len) == 0)
            || (host->len > h[i].len
                && ngx_strncasecmp(h[i].data,
                                   host->data + host->len - h[i].len,
                                   h[i].len) == 0))
        {
            return 1;
        }
    }

    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char                         *p, *q, *last;
    ngx_int_t                       rc;
    ngx_str_t                       f[6], v[4], hosts[8], url, host, thost;
    ngx_uint_t                      i, n, ui, status;
    ngx_conf_t                      cf;
    ngx_pool_t                     *pool;
    ngx_command_t                   cmd;
    ngx_conf_file_t                 conf_file;
    ngx_connection_t                c;
    ngx_http_request_t              r;
    ngx_http_conf_ctx_t             http_ctx;
    ngx_http_affiliate_ctx_t        ctx;
    ngx_http_affiliate_dest_t       dest;
    ngx_http_affiliate_rule_t      *rule;
    ngx_http_core_main_conf_t       cmcf;
    ngx_http_affiliate_loc_conf_t   alcf;
    void                           *main_conf[2];

    if (size > 2048) {
        return -1;
    }

    (void) fz_split(data, size, '\n', f, 6);

    if (f[0].len == 0 || f[0].len > 128 || f[1].len == 0 || f[5].len > 512
        || !fz_captures_only(&f[0], 1) || !fz_captures_only(&f[1], 0)
        || !fz_captures_only(&f[2], 0) || !fz_captures_only(&f[3], 0))
    {
        return -1;
    }

    pool = fz_pool();

    /* the configuration, through the directive handlers */

    fz_conf(&cf, pool);

    ngx_memzero(&cmcf, sizeof(ngx_http_core_main_conf_t));
    main_conf[0] = NULL;
    main_conf[1] = &cmcf;
    http_ctx.main_conf = main_conf;
    cf.ctx = &http_ctx;

    ngx_memzero(&conf_file, sizeof(ngx_conf_file_t));
    conf_file.file.name.data = fz_conf_name;
    conf_file.file.name.len = sizeof(fz_conf_name) - 1;
    conf_file.line = 1;
    cf.conf_file = &conf_file;

    ngx_memzero(&cmd, sizeof(ngx_command_t));
    ngx_memzero(&alcf, sizeof(ngx_http_affiliate_loc_conf_t));
    alcf.allow_hosts = NGX_CONF_UNSET_PTR;

    n = 0;
    v[n++] = f[0];
    v[n++] = f[1];

    if (f[2].len) {
        v[n].len = 8 + f[2].len;
        v[n].data = ngx_pnalloc(pool, v[n].len);
        ngx_memcpy(ngx_cpymem(v[n].data, "creator=", 8), f[2].data, f[2].len);
        n++;
    }

    if (f[3].len) {
        v[n].len = 9 + f[3].len;
        v[n].data = ngx_pnalloc(pool, v[n].len);
        ngx_memcpy(ngx_cpymem(v[n].data, "campaign=", 9), f[3].data,
                   f[3].len);
        n++;
    }

    cf.args = fz_args(pool, "affiliate_rule", v, n);

    if (ngx_http_affiliate_rule(&cf, &cmd, &alcf) != NGX_CONF_OK) {
        goto done;
    }

    /* the allow list: space-separated names */

    n = 0;
    last = f[4].data + f[4].len;

    for (p = f[4].data; p < last && n < 8; p = q + 1) {
        q = memchr(p, ' ', last - p);
        q = q ? q : last;

        if (q > p) {
            hosts[n].data = p;
            hosts[n].len = q - p;
            n++;
        }
    }

    if (n) {
        cf.args = fz_args(pool, "affiliate_allow_hosts", hosts, n);

        if (ngx_http_affiliate_allow_hosts(&cf, &cmd, &alcf) != NGX_CONF_OK) {
            goto done;
        }

    } else {
        alcf.allow_hosts = NULL;
    }

    if (ngx_http_affiliate_rules_check(&cf, &alcf) != NGX_CONF_OK) {
        goto done;
    }

    /* as ngx_http_core_init_main_conf() sizes the captures */

    if (cmcf.ncaptures) {
        cmcf.ncaptures = (cmcf.ncaptures + 1) * 3;
    }

    /* the request */

    fz_request(&r, pool, main_conf, NULL);

    ngx_memzero(&c, sizeof(ngx_connection_t));
    c.log = &fz_log;
    r.connection = &c;

    r.uri = f[5];
    (void) fz_dup(pool, &r.uri);

    ngx_memzero(&ctx, sizeof(ngx_http_affiliate_ctx_t));

    rc = ngx_http_affiliate_rules_find(&r, &alcf, &ctx, &dest, &status);

    if (rc != NGX_OK) {
        fz_assert(rc == NGX_DECLINED || rc == NGX_HTTP_BAD_REQUEST
                  || rc == NGX_ERROR, "rules_find returned %ld", (long) rc);
        goto done;
    }

    rule = alcf.rules->elts;

    url.data = dest.data;
    url.len = dest.len;

    fz_check_dest(&url, &dest);

    fz_assert(fz_url_host(url.data, url.len, &host, &ui) == 0 && !ui,
              "no host in %s", fz_show(url.data, url.len));

    if (rule[0].variable_host) {
        fz_assert(fz_allowed(alcf.allow_hosts, &host),
                  "host \"%s\" is not allowed",
                  fz_show(host.data, host.len));

    } else {
        fz_assert(fz_url_host(f[1].data, f[1].len, &thost, &ui) == 0
                  && thost.len == host.len
                  && ngx_strncasecmp(thost.data, host.data, host.len) == 0,
                  "host \"%s\" is not the rule's own",
                  fz_show(host.data, host.len));
    }

    for (i = 0; i < 2; i++) {
        ngx_str_t  *s = i ? &ctx.campaign : &ctx.creator;

        fz_assert(s->len == 0
                  || ngx_http_affiliate_text_valid(s,
                         i ? NGX_HTTP_AFFILIATE_CAMPAIGN_MAX
                           : NGX_HTTP_AFFILIATE_CREATOR_MAX),
                  "%s \"%s\"", i ? "campaign" : "creator",
                  fz_show(s->data, s->len));
    }

done:

    ngx_destroy_pool(pool);

    return 0;
}
