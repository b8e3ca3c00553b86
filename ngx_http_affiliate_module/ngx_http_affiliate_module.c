
/*
 * Copyright (C) ngx_http_affiliate_module authors
 *
 * The module: configuration structures, directives, the phases it joins
 * and the workers' start and exit.  The request's context and the
 * variables are in ngx_http_affiliate_ctx.c.
 */


#include "ngx_http_affiliate_module.h"


static ngx_int_t ngx_http_affiliate_init(ngx_conf_t *cf);
static void *ngx_http_affiliate_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_affiliate_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_affiliate_create_srv_conf(ngx_conf_t *cf);
static char *ngx_http_affiliate_merge_srv_conf(ngx_conf_t *cf, void *parent,
    void *child);
static void *ngx_http_affiliate_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_affiliate_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);

static char *ngx_http_affiliate_links(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_affiliate_link(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_affiliate_redirect(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_affiliate_status(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_affiliate_node(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_affiliate_node_json(ngx_conf_t *cf,
    ngx_http_affiliate_main_conf_t *amcf);
static char *ngx_http_affiliate_unique(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

static ngx_int_t ngx_http_affiliate_init_process(ngx_cycle_t *cycle);
static void ngx_http_affiliate_exit_process(ngx_cycle_t *cycle);


static ngx_conf_enum_t  ngx_http_affiliate_attributions[] = {
    { ngx_string("last_click"), NGX_HTTP_AFFILIATE_LAST_CLICK },
    { ngx_string("first_click"), NGX_HTTP_AFFILIATE_FIRST_CLICK },
    { ngx_null_string, 0 }
};


static ngx_command_t  ngx_http_affiliate_commands[] = {

    { ngx_string("affiliate_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1234,
      ngx_http_affiliate_zone,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("affiliate_log"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE23,
      ngx_http_affiliate_log,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("affiliate_links"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_http_affiliate_links,
      NGX_HTTP_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("affiliate_link"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_2MORE,
      ngx_http_affiliate_link,
      NGX_HTTP_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("affiliate_redirect"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_affiliate_redirect,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("affiliate_status"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_affiliate_status,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("affiliate_rule"),
      NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_2MORE,
      ngx_http_affiliate_rule,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("affiliate_allow_hosts"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_affiliate_allow_hosts,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("affiliate_capture"),
      NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_2MORE,
      ngx_http_affiliate_capture,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("affiliate_cookie"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_affiliate_cookie,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("affiliate_secret"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_affiliate_key_file,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_affiliate_main_conf_t, secret),
      (void *) 32 },

    { ngx_string("affiliate_postback_key"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_affiliate_key_file,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_affiliate_main_conf_t, postback_key),
      (void *) 16 },

    { ngx_string("affiliate_attribution"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_affiliate_loc_conf_t, attribution),
      &ngx_http_affiliate_attributions },

    { ngx_string("affiliate_window"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_affiliate_main_conf_t, window),
      NULL },

    { ngx_string("affiliate_node"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_affiliate_node,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("affiliate_unique"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_affiliate_unique,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("affiliate_bot_ua"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_affiliate_bot_ua,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("affiliate_anonymize_ip"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_affiliate_loc_conf_t, anonymize_ip),
      NULL },

    { ngx_string("affiliate_app_schemes"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_affiliate_app_schemes,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("affiliate_speculative"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_affiliate_speculation,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_affiliate_loc_conf_t, speculative),
      NULL },

    { ngx_string("affiliate_conversion"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_affiliate_conversion,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_affiliate_module_ctx = {
    ngx_http_affiliate_add_variables,      /* preconfiguration */
    ngx_http_affiliate_init,               /* postconfiguration */

    ngx_http_affiliate_create_main_conf,   /* create main configuration */
    ngx_http_affiliate_init_main_conf,     /* init main configuration */

    ngx_http_affiliate_create_srv_conf,    /* create server configuration */
    ngx_http_affiliate_merge_srv_conf,     /* merge server configuration */

    ngx_http_affiliate_create_loc_conf,    /* create location configuration */
    ngx_http_affiliate_merge_loc_conf      /* merge location configuration */
};


ngx_module_t  ngx_http_affiliate_module = {
    NGX_MODULE_V1,
    &ngx_http_affiliate_module_ctx,        /* module context */
    ngx_http_affiliate_commands,           /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_affiliate_init_process,       /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_affiliate_exit_process,       /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static void *
ngx_http_affiliate_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_affiliate_main_conf_t  *amcf;

    amcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_affiliate_main_conf_t));
    if (amcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&amcf->zones, cf->pool, 2,
                       sizeof(ngx_http_affiliate_zone_t *))
        != NGX_OK)
    {
        return NULL;
    }

    amcf->window = NGX_CONF_UNSET;
    amcf->unique = NGX_CONF_UNSET;

    return amcf;
}


static char *
ngx_http_affiliate_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_affiliate_main_conf_t *amcf = conf;

    char                        *rv;
    ngx_uint_t                   i;
    ngx_http_affiliate_zone_t  **zones;

    rv = ngx_http_affiliate_attr_init(cf, amcf);
    if (rv != NGX_CONF_OK) {
        if (rv != NGX_CONF_ERROR) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0, "%s", rv);
        }

        return NGX_CONF_ERROR;
    }

    if (ngx_http_affiliate_node_json(cf, amcf) != NGX_CONF_OK
        || ngx_http_affiliate_app_dests_check(cf, amcf) != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    zones = amcf->zones.elts;

    for (i = 0; i < amcf->zones.nelts; i++) {

        if (zones[i]->shm_zone == NULL) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "affiliate zone \"%V\" is used in %s:%ui "
                          "but not declared with \"affiliate_zone\"",
                          &zones[i]->name, zones[i]->conf_file,
                          zones[i]->conf_line);
            return NGX_CONF_ERROR;
        }

        if (zones[i]->file == NULL) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "affiliate zone \"%V\" declared in %s:%ui "
                          "has no \"affiliate_log\"",
                          &zones[i]->name, zones[i]->conf_file,
                          zones[i]->conf_line);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


static void *
ngx_http_affiliate_create_srv_conf(ngx_conf_t *cf)
{
    ngx_http_affiliate_srv_conf_t  *ascf;

    ascf = ngx_pcalloc(cf->pool, sizeof(ngx_http_affiliate_srv_conf_t));
    if (ascf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     ascf->links = NULL;
     */

    return ascf;
}


static char *
ngx_http_affiliate_merge_srv_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_affiliate_srv_conf_t *prev = parent;
    ngx_http_affiliate_srv_conf_t *conf = child;

    /* as add_header: a server with links of its own inherits none */

    if (conf->links == NULL) {
        conf->links = prev->links;
    }

    if (conf->links && !conf->links->built) {
        return ngx_http_affiliate_links_build(cf, conf->links);
    }

    return NGX_CONF_OK;
}


static void *
ngx_http_affiliate_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_affiliate_loc_conf_t  *alcf;

    alcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_affiliate_loc_conf_t));
    if (alcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     alcf->redirect_zone = NULL;
     *     alcf->status_zone = NULL;
     */

    alcf->redirect_status = NGX_CONF_UNSET_UINT;
    alcf->allow_hosts = NGX_CONF_UNSET_PTR;
    alcf->cookie = NGX_CONF_UNSET_PTR;
    alcf->attribution = NGX_CONF_UNSET_UINT;
    alcf->anonymize_ip = NGX_CONF_UNSET;
    alcf->speculative = NGX_CONF_UNSET_UINT;

    return alcf;
}


static char *
ngx_http_affiliate_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_affiliate_loc_conf_t *prev = parent;
    ngx_http_affiliate_loc_conf_t *conf = child;

    ngx_http_affiliate_main_conf_t  *amcf;

    ngx_conf_merge_uint_value(conf->redirect_status, prev->redirect_status,
                              NGX_HTTP_MOVED_TEMPORARILY);

    if (conf->rules == NULL) {
        conf->rules = prev->rules;
    }

    ngx_conf_merge_ptr_value(conf->allow_hosts, prev->allow_hosts, NULL);
    ngx_conf_merge_ptr_value(conf->cookie, prev->cookie, NULL);
    ngx_conf_merge_uint_value(conf->attribution, prev->attribution,
                              NGX_HTTP_AFFILIATE_LAST_CLICK);
    ngx_conf_merge_value(conf->anonymize_ip, prev->anonymize_ip, 0);
    ngx_conf_merge_uint_value(conf->speculative, prev->speculative,
                              NGX_HTTP_SERVICE_UNAVAILABLE);

    if (conf->capture_zone == NULL) {
        conf->capture_zone = prev->capture_zone;
        conf->capture_creator = prev->capture_creator;
        conf->capture_campaign = prev->capture_campaign;
        conf->capture_strip = prev->capture_strip;
    }

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_affiliate_module);

    if (conf->cookie && amcf->secret.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"affiliate_cookie\" needs \"affiliate_secret\" "
                           "to sign the cookie");
        return NGX_CONF_ERROR;
    }

    if (conf->conversion_zone && !conf->conversion_gif
        && amcf->postback_key.len == 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"affiliate_conversion\" for postbacks needs "
                           "\"affiliate_postback_key\"");
        return NGX_CONF_ERROR;
    }

    return ngx_http_affiliate_rules_check(cf, conf);
}


static char *
ngx_http_affiliate_links(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_affiliate_srv_conf_t *ascf = conf;

    ngx_str_t  *value;

    value = cf->args->elts;

    return ngx_http_affiliate_links_file(cf, &ascf->links, &value[1]);
}


static char *
ngx_http_affiliate_link(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_affiliate_srv_conf_t *ascf = conf;

    ngx_str_t   *value, creator, campaign;
    ngx_str_t    opts[NGX_HTTP_AFFILIATE_FIELDS_MAX];
    ngx_uint_t   i, n;

    value = cf->args->elts;

    ngx_str_null(&creator);
    ngx_str_null(&campaign);
    n = 0;

    for (i = 3; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "creator=", 8) == 0) {
            creator.len = value[i].len - 8;
            creator.data = value[i].data + 8;
            continue;
        }

        if (ngx_strncmp(value[i].data, "campaign=", 9) == 0) {
            campaign.len = value[i].len - 9;
            campaign.data = value[i].data + 9;
            continue;
        }

        /* options, as in the link table: checked there */

        if (n == NGX_HTTP_AFFILIATE_FIELDS_MAX - 4) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "too many options in \"affiliate_link\"");
            return NGX_CONF_ERROR;
        }

        opts[n++] = value[i];
    }

    return ngx_http_affiliate_link_add(cf, &ascf->links, &value[1],
                                       &value[2], &creator, &campaign,
                                       opts, n);
}


static char *
ngx_http_affiliate_redirect(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_affiliate_loc_conf_t *alcf = conf;

    ngx_int_t                  n;
    ngx_str_t                 *value;
    ngx_uint_t                 i;
    ngx_http_core_loc_conf_t  *clcf;

    if (alcf->redirect_zone) {
        return "is duplicate";
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "zone=", 5) == 0) {
            alcf->redirect_zone = ngx_http_affiliate_zone_param(cf,
                                                                &value[i]);
            if (alcf->redirect_zone == NULL) {
                goto invalid;
            }
            continue;
        }

        if (ngx_strncmp(value[i].data, "status=", 7) == 0) {
            n = ngx_http_affiliate_redirect_status(cf, &value[i]);
            if (n == NGX_ERROR) {
                return NGX_CONF_ERROR;
            }

            alcf->redirect_status = n;
            continue;
        }

        goto invalid;
    }

    if (alcf->redirect_zone == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"affiliate_redirect\" needs \"zone=NAME\"");
        return NGX_CONF_ERROR;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_affiliate_redirect_handler;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\"", &value[i]);
    return NGX_CONF_ERROR;
}


static char *
ngx_http_affiliate_status(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_affiliate_loc_conf_t *alcf = conf;

    ngx_str_t                 *value;
    ngx_http_core_loc_conf_t  *clcf;

    if (alcf->status_zone) {
        return "is duplicate";
    }

    value = cf->args->elts;

    alcf->status_zone = ngx_http_affiliate_zone_param(cf, &value[1]);
    if (alcf->status_zone == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\", expected zone=NAME",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_affiliate_status_handler;

    return NGX_CONF_OK;
}


/* a node name is a hostname-like token: it names the machine in records */

static char *
ngx_http_affiliate_node(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_affiliate_main_conf_t *amcf = conf;

    u_char     *p, c;
    ngx_str_t  *value;

    if (amcf->node.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 0 || value[1].len > NGX_HTTP_AFFILIATE_NODE_MAX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "affiliate_node \"%V\" must be 1 to %d bytes",
                           &value[1], NGX_HTTP_AFFILIATE_NODE_MAX);
        return NGX_CONF_ERROR;
    }

    for (p = value[1].data; p < value[1].data + value[1].len; p++) {
        c = *p;

        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
            || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_')
        {
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "affiliate_node \"%V\" may contain only letters, "
                           "digits, \".\", \"-\" and \"_\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    amcf->node = value[1];

    return NGX_CONF_OK;
}


/* the node's JSON field, rendered once: ,"node":"name" */

static char *
ngx_http_affiliate_node_json(ngx_conf_t *cf,
    ngx_http_affiliate_main_conf_t *amcf)
{
    u_char      *p, *last;
    size_t       len;
    ngx_uint_t   truncated;

    if (amcf->node.data == NULL) {
        amcf->node = cf->cycle->hostname;
    }

    len = sizeof(",\"node\":") - 1 + 2 + NGX_HTTP_AFFILIATE_NODE_MAX;

    p = ngx_pnalloc(cf->pool, len);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    amcf->node_json.data = p;
    last = p + len;
    truncated = 0;

    p = ngx_cpymem(p, ",\"node\":", sizeof(",\"node\":") - 1);
    p = ngx_http_affiliate_json_str(p, last, amcf->node.data,
                                    amcf->node.len, &truncated);

    amcf->node_json.len = p - amcf->node_json.data;

    return NGX_CONF_OK;
}


static char *
ngx_http_affiliate_unique(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_affiliate_main_conf_t *amcf = conf;

    ngx_str_t  *value;

    if (amcf->unique != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        amcf->unique = 0;
        return NGX_CONF_OK;
    }

    amcf->unique = ngx_parse_time(&value[1], 1);

    if (amcf->unique == (time_t) NGX_ERROR || amcf->unique == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_affiliate_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_REWRITE_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_affiliate_capture_handler;

    return NGX_OK;
}


static ngx_int_t
ngx_http_affiliate_init_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                       i;
    ngx_http_affiliate_zone_t      **zones;
    ngx_http_affiliate_main_conf_t  *amcf;

    amcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_affiliate_module);
    if (amcf == NULL) {
        return NGX_OK;
    }

    zones = amcf->zones.elts;

    for (i = 0; i < amcf->zones.nelts; i++) {
        if (ngx_http_affiliate_ring_init_process(cycle, zones[i]) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static void
ngx_http_affiliate_exit_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                       i;
    ngx_http_affiliate_zone_t      **zones;
    ngx_http_affiliate_main_conf_t  *amcf;

    amcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_affiliate_module);
    if (amcf == NULL) {
        return;
    }

    zones = amcf->zones.elts;

    for (i = 0; i < amcf->zones.nelts; i++) {
        ngx_http_affiliate_ring_exit_process(cycle, zones[i]);
    }
}
