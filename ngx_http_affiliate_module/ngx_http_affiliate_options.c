
/*
 * Copyright (C) ngx_http_affiliate_module authors
 *
 * Link options: A/B variants, schedules and click caps, device and app
 * links, per-link redirect behaviour.  Parsed once at configuration
 * time (the choice on a request is in ngx_http_affiliate_choose.c).
 * See docs/links.md.
 */


#include "ngx_http_affiliate_module.h"


/* the cap counter's key: the slug's hash (a fixed seed: it survives) */
#define NGX_HTTP_AFFILIATE_CAP_SEED  0x9e3779b97f4a7c15ULL

/* ab=: at most this many variants (weights of up to 1000000 each) */
#define NGX_HTTP_AFFILIATE_VARIANTS_MAX  100

/* the bytes of a bad value an error message quotes */
#define NGX_HTTP_AFFILIATE_OPT_QUOTE     64

/* the arguments of "%*s%s": s cut to OPT_QUOTE bytes, "..." if longer */
#define ngx_http_affiliate_opt_quote(s)                                      \
    ngx_min((s)->len, NGX_HTTP_AFFILIATE_OPT_QUOTE), (s)->data,              \
    (s)->len > NGX_HTTP_AFFILIATE_OPT_QUOTE ? "..." : ""



typedef char *(*ngx_http_affiliate_option_pt)(ngx_conf_t *cf,
    ngx_http_affiliate_link_t *link, ngx_str_t *value);

typedef struct {
    ngx_str_t                       name;
    ngx_http_affiliate_option_pt    handler;
} ngx_http_affiliate_option_t;


static ngx_http_affiliate_link_opts_t *ngx_http_affiliate_opts(
    ngx_conf_t *cf, ngx_http_affiliate_link_t *link);
static char *ngx_http_affiliate_opt_ab(ngx_conf_t *cf,
    ngx_http_affiliate_link_t *link, ngx_str_t *value);
static char *ngx_http_affiliate_opt_from(ngx_conf_t *cf,
    ngx_http_affiliate_link_t *link, ngx_str_t *value);
static char *ngx_http_affiliate_opt_until(ngx_conf_t *cf,
    ngx_http_affiliate_link_t *link, ngx_str_t *value);
static char *ngx_http_affiliate_opt_max_clicks(ngx_conf_t *cf,
    ngx_http_affiliate_link_t *link, ngx_str_t *value);
static char *ngx_http_affiliate_opt_expired(ngx_conf_t *cf,
    ngx_http_affiliate_link_t *link, ngx_str_t *value);
static char *ngx_http_affiliate_opt_ios(ngx_conf_t *cf,
    ngx_http_affiliate_link_t *link, ngx_str_t *value);
static char *ngx_http_affiliate_opt_android(ngx_conf_t *cf,
    ngx_http_affiliate_link_t *link, ngx_str_t *value);
static char *ngx_http_affiliate_opt_desktop(ngx_conf_t *cf,
    ngx_http_affiliate_link_t *link, ngx_str_t *value);
static char *ngx_http_affiliate_opt_status(ngx_conf_t *cf,
    ngx_http_affiliate_link_t *link, ngx_str_t *value);
static char *ngx_http_affiliate_opt_permanent(ngx_conf_t *cf,
    ngx_http_affiliate_link_t *link, ngx_str_t *value);
static char *ngx_http_affiliate_opt_query(ngx_conf_t *cf,
    ngx_http_affiliate_link_t *link, ngx_str_t *value);
static char *ngx_http_affiliate_opt_utm(ngx_conf_t *cf,
    ngx_http_affiliate_link_t *link, ngx_str_t *value);
static char *ngx_http_affiliate_opt_device(ngx_conf_t *cf,
    ngx_http_affiliate_link_t *link, ngx_str_t *value, ngx_uint_t device,
    char *option);
static char *ngx_http_affiliate_opt_time(ngx_str_t *value, time_t *t);
static char *ngx_http_affiliate_option_error(ngx_conf_t *cf,
    const char *fmt, ...);
static char *ngx_http_affiliate_app_dest_parse(ngx_conf_t *cf,
    ngx_http_affiliate_link_t *link, ngx_str_t *url,
    ngx_http_affiliate_dest_t *dest, char *option);


static ngx_http_affiliate_option_t  ngx_http_affiliate_options[] = {
    { ngx_string("ab"), ngx_http_affiliate_opt_ab },
    { ngx_string("from"), ngx_http_affiliate_opt_from },
    { ngx_string("until"), ngx_http_affiliate_opt_until },
    { ngx_string("max_clicks"), ngx_http_affiliate_opt_max_clicks },
    { ngx_string("expired"), ngx_http_affiliate_opt_expired },
    { ngx_string("ios"), ngx_http_affiliate_opt_ios },
    { ngx_string("android"), ngx_http_affiliate_opt_android },
    { ngx_string("desktop"), ngx_http_affiliate_opt_desktop },
    { ngx_string("status"), ngx_http_affiliate_opt_status },
    { ngx_string("permanent"), ngx_http_affiliate_opt_permanent },
    { ngx_string("query"), ngx_http_affiliate_opt_query },
    { ngx_string("utm"), ngx_http_affiliate_opt_utm },
    { ngx_null_string, NULL }
};


/*
 * One "name=value" option of a link.  Returns NULL, NGX_CONF_ERROR, or
 * what is wrong, naming the option (the caller adds the file and line).
 */

char *
ngx_http_affiliate_link_option(ngx_conf_t *cf, ngx_http_affiliate_link_t *link,
    ngx_str_t *opt, ngx_http_affiliate_origin_t *origin)
{
    char                         *err;
    u_char                       *eq;
    ngx_str_t                     name, value;
    ngx_uint_t                    i;
    ngx_http_affiliate_option_t  *o;

    eq = ngx_strlchr(opt->data, opt->data + opt->len, '=');

    if (eq == NULL || eq == opt->data) {
        return ngx_http_affiliate_option_error(cf,
                   "invalid option \"%*s%s\": an option is \"name=value\"",
                   ngx_http_affiliate_opt_quote(opt));
    }

    name.data = opt->data;
    name.len = eq - opt->data;

    for (i = 0, o = ngx_http_affiliate_options; o->name.len; i++, o++) {
        if (name.len == o->name.len
            && ngx_strncmp(name.data, o->name.data, o->name.len) == 0)
        {
            break;
        }
    }

    if (o->handler == NULL) {
        return ngx_http_affiliate_option_error(cf,
                   "unknown option \"%*s%s=\" (ab=, from=, until=, "
                   "max_clicks=, expired=, ios=, android=, desktop=, "
                   "status=, permanent=, query=, utm= or geo=)",
                   ngx_http_affiliate_opt_quote(&name));
    }

    if (ngx_http_affiliate_opts(cf, link) == NULL) {
        return NGX_CONF_ERROR;
    }

    /* an option given twice is a mistake, not "the last one wins" */

    if (link->opts->given & (1 << i)) {
        return ngx_http_affiliate_option_error(cf, "duplicate \"%V=\"",
                                               &name);
    }

    link->opts->given |= 1 << i;
    link->opts->origin = *origin;

    value.data = eq + 1;
    value.len = opt->data + opt->len - value.data;

    if (value.len == 0) {
        return ngx_http_affiliate_option_error(cf, "\"%V=\" needs a value",
                                               &name);
    }

    err = o->handler(cf, link, &value);

    if (err == NULL || err == NGX_CONF_ERROR) {
        return err;
    }

    return ngx_http_affiliate_option_error(cf,
                   "invalid \"%V=\" value \"%*s%s\": %s", &name,
                   ngx_http_affiliate_opt_quote(&value), err);
}


/* an option's error message, made once; NGX_CONF_ERROR without memory */

static char *
ngx_http_affiliate_option_error(ngx_conf_t *cf, const char *fmt, ...)
{
    u_char   *err, *last;
    va_list   args;

    err = ngx_pnalloc(cf->pool, NGX_MAX_CONF_ERRSTR);
    if (err == NULL) {
        return NGX_CONF_ERROR;
    }

    va_start(args, fmt);
    last = ngx_vslprintf(err, err + NGX_MAX_CONF_ERRSTR - 1, fmt, args);
    va_end(args);

    *last = '\0';

    return (char *) err;
}


/* what only the whole set of options can tell */

char *
ngx_http_affiliate_link_options_check(ngx_conf_t *cf,
    ngx_http_affiliate_link_t *link, ngx_str_t *slug)
{
    char                            *err;
    ngx_uint_t                       i;
    ngx_http_affiliate_link_opts_t  *o;
    u_char                           lc[NGX_HTTP_AFFILIATE_SLUG_MAX];

    o = link->opts;

    if (o == NULL) {
        return NULL;
    }

    /*
     * The cap counter's key: the slug as it is looked up, lowercased
     * (links.c: at most NGX_HTTP_AFFILIATE_SLUG_MAX bytes), so that
     * "Drop" in one server and "drop" in another server of the same zone
     * share one cap.
     */

    if (o->max_clicks) {
        ngx_strlow(lc, slug->data, slug->len);
        o->cap_key = ngx_http_affiliate_hash(NGX_HTTP_AFFILIATE_CAP_SEED, lc,
                                             slug->len);
    }

    if (o->from && o->until && o->until <= o->from) {
        return "\"until=\" is not after \"from=\"";
    }

    if (o->status == NGX_HTTP_MOVED_PERMANENTLY && !o->permanent) {
        return "\"status=301\" needs \"permanent=on\": browsers keep a 301 "
               "and later clicks would never reach nginx";
    }

    if (o->expired && !o->from && !o->until && !o->max_clicks) {
        return "\"expired=\" needs \"from=\", \"until=\" or \"max_clicks=\"";
    }

    if (!o->utm_set) {
        return NULL;
    }

    /* utm=set: the destinations' own utm_* go, the module's come in */

    err = ngx_http_affiliate_utm_strip(cf->pool, &link->dest);

    for (i = 0; err == NULL && i < o->nvariants; i++) {
        err = ngx_http_affiliate_utm_strip(cf->pool, &o->variants[i].dest);
    }

    for (i = 0; err == NULL && i < NGX_HTTP_AFFILIATE_NDEVICES; i++) {
        if (o->device[i]) {
            err = ngx_http_affiliate_utm_strip(cf->pool, o->device[i]);
        }
    }

    for (i = 0; err == NULL && i < link->ngeo; i++) {
        err = ngx_http_affiliate_utm_strip(cf->pool, &link->geo[i].dest);
    }

    if (err == NULL && o->expired) {
        err = ngx_http_affiliate_utm_strip(cf->pool, o->expired);
    }

    return err;
}


static ngx_http_affiliate_link_opts_t *
ngx_http_affiliate_opts(ngx_conf_t *cf, ngx_http_affiliate_link_t *link)
{
    if (link->opts == NULL) {
        link->opts = ngx_pcalloc(cf->pool,
                                 sizeof(ngx_http_affiliate_link_opts_t));
    }

    return link->opts;
}


/* ab=URL*70,URL*30: weights; a comma inside a URL must be %2C */

static char *
ngx_http_affiliate_opt_ab(ngx_conf_t *cf, ngx_http_affiliate_link_t *link,
    ngx_str_t *value)
{
    char                            *err;
    u_char                          *p, *last, *comma, *star;
    uint64_t                         total;
    ngx_int_t                        w;
    ngx_str_t                        url;
    ngx_uint_t                       n, i;
    ngx_http_affiliate_link_opts_t  *o;

    o = link->opts;
    last = value->data + value->len;

    for (n = 1, p = value->data; p < last; p++) {
        if (*p == ',') {
            n++;
        }
    }

    if (n < 2) {
        return "at least two variants are needed: \"ab=URL*70,URL*30\"";
    }

    /* bounds the sum of the weights: 100 x 1000000 fits in 32 bits */

    if (n > NGX_HTTP_AFFILIATE_VARIANTS_MAX) {
        return "more than 100 variants";
    }

    o->variants = ngx_pcalloc(cf->pool,
                              n * sizeof(ngx_http_affiliate_variant_t));
    if (o->variants == NULL) {
        return NGX_CONF_ERROR;
    }

    total = 0;

    for (i = 0, p = value->data; i < n; i++, p = comma + 1) {

        comma = ngx_strlchr(p, last, ',');
        if (comma == NULL) {
            comma = last;
        }

        for (star = comma; star > p && star[-1] != '*'; star--) {
            /* void */
        }

        if (star == p) {
            return "a variant needs a weight: \"URL*70\"";
        }

        w = ngx_atoi(star, comma - star);

        if (w == NGX_ERROR || w > 1000000) {
            return "a weight must be a whole number from 0 to 1000000";
        }

        url.data = p;
        url.len = star - 1 - p;

        err = ngx_http_affiliate_dest_parse(&url, &o->variants[i].dest);
        if (err) {
            return "a variant is not an absolute http(s) URL "
                   "(percent-encode a comma as %2C)";
        }

        total += w;
        o->variants[i].upto = (uint32_t) total;
    }

    if (total == 0) {
        return "the weights add up to 0";
    }

    o->nvariants = n;
    o->total = (uint32_t) total;

    return NULL;
}


static char *
ngx_http_affiliate_opt_from(ngx_conf_t *cf, ngx_http_affiliate_link_t *link,
    ngx_str_t *value)
{
    return ngx_http_affiliate_opt_time(value, &link->opts->from);
}


static char *
ngx_http_affiliate_opt_until(ngx_conf_t *cf, ngx_http_affiliate_link_t *link,
    ngx_str_t *value)
{
    return ngx_http_affiliate_opt_time(value, &link->opts->until);
}


/*
 * RFC 3339: 2026-12-01T00:00:00Z or with an offset, +01:00.  A day that
 * the month does not have, second 60 (a leap second: time_t has none)
 * and offsets beyond 23:59 are refused, and so is any time up to the
 * epoch (0 means "none").
 */

static char *
ngx_http_affiliate_opt_time(ngx_str_t *value, time_t *t)
{
    u_char      *p, *last;
    time_t       time;
    ngx_int_t    v[6], off, oh, om, mdays;
    ngx_uint_t   i;

    static ngx_uint_t  width[] = { 4, 2, 2, 2, 2, 2 };
    static u_char      sep[] = "--T::";
    static ngx_int_t   max[] = { 9999, 12, 31, 23, 59, 59 };
    static ngx_int_t   days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31,
                                  30, 31 };

    p = value->data;
    last = value->data + value->len;

    if (value->len < sizeof("2026-12-01T00:00:00Z") - 1) {
        goto invalid;
    }

    for (i = 0; i < 6; i++) {
        v[i] = ngx_atoi(p, width[i]);
        p += width[i];

        if (v[i] == NGX_ERROR || v[i] > max[i]) {
            goto invalid;
        }

        if (i < 5) {
            if (*p != sep[i] && !(i == 2 && *p == 't')) {
                goto invalid;
            }

            p++;
        }
    }

    if (v[0] < 1970 || v[1] < 1 || v[2] < 1) {
        goto invalid;
    }

    mdays = days[v[1] - 1];

    if (v[1] == 2
        && v[0] % 4 == 0 && (v[0] % 100 != 0 || v[0] % 400 == 0))
    {
        mdays = 29;
    }

    if (v[2] > mdays) {
        return "no such day in that month";
    }

    if (p < last && *p == '.') {
        for (p++; p < last && *p >= '0' && *p <= '9'; p++) {
            /* fractions of a second are ignored */
        }
    }

    off = 0;

    if (last - p == 1 && (*p == 'Z' || *p == 'z')) {
        /* UTC */

    } else if (last - p == 6 && (*p == '+' || *p == '-') && p[3] == ':') {
        oh = ngx_atoi(p + 1, 2);
        om = ngx_atoi(p + 4, 2);

        if (oh == NGX_ERROR || om == NGX_ERROR || oh > 23 || om > 59) {
            goto invalid;
        }

        off = oh * 3600 + om * 60;

        if (*p == '-') {
            off = -off;
        }

    } else {
        goto invalid;
    }

    /* days since the epoch, the proleptic Gregorian calendar */

    v[1] -= 2;

    if (v[1] <= 0) {
        v[1] += 12;
        v[0]--;
    }

    time = (time_t) (365 * v[0] + v[0] / 4 - v[0] / 100 + v[0] / 400
                     + 367 * v[1] / 12 + v[2] - 719499) * 86400
           + v[3] * 3600 + v[4] * 60 + v[5] - off;

    if (time <= 0) {
        return "the time must be after 1970-01-01T00:00:00Z";
    }

    *t = time;

    return NULL;

invalid:

    return "a time must be RFC 3339, such as 2026-12-01T00:00:00Z or "
           "2026-12-01T09:00:00+01:00 (seconds 00 to 59, offsets up to "
           "23:59)";
}


static char *
ngx_http_affiliate_opt_max_clicks(ngx_conf_t *cf,
    ngx_http_affiliate_link_t *link, ngx_str_t *value)
{
    off_t  n;

    n = ngx_atoof(value->data, value->len);

    if (n <= 0) {
        return "a positive number is expected";
    }

    link->opts->max_clicks = (uint64_t) n;

    return NULL;
}


static char *
ngx_http_affiliate_opt_expired(ngx_conf_t *cf, ngx_http_affiliate_link_t *link,
    ngx_str_t *value)
{
    char                       *err;
    ngx_http_affiliate_dest_t  *dest;

    dest = ngx_palloc(cf->pool, sizeof(ngx_http_affiliate_dest_t));
    if (dest == NULL) {
        return NGX_CONF_ERROR;
    }

    err = ngx_http_affiliate_dest_parse(value, dest);
    if (err) {
        return err;
    }

    link->opts->expired = dest;

    return NULL;
}


static char *
ngx_http_affiliate_opt_ios(ngx_conf_t *cf, ngx_http_affiliate_link_t *link,
    ngx_str_t *value)
{
    return ngx_http_affiliate_opt_device(cf, link, value,
                                         NGX_HTTP_AFFILIATE_IOS, "ios=");
}


static char *
ngx_http_affiliate_opt_android(ngx_conf_t *cf, ngx_http_affiliate_link_t *link,
    ngx_str_t *value)
{
    return ngx_http_affiliate_opt_device(cf, link, value,
                                         NGX_HTTP_AFFILIATE_ANDROID, "android=");
}


static char *
ngx_http_affiliate_opt_desktop(ngx_conf_t *cf, ngx_http_affiliate_link_t *link,
    ngx_str_t *value)
{
    return ngx_http_affiliate_opt_device(cf, link, value,
                                         NGX_HTTP_AFFILIATE_DESKTOP, "desktop=");
}


/* a device's destination: http(s), or an app scheme that is allowed */

static char *
ngx_http_affiliate_opt_device(ngx_conf_t *cf, ngx_http_affiliate_link_t *link,
    ngx_str_t *value, ngx_uint_t device, char *option)
{
    char                       *err;
    ngx_http_affiliate_dest_t  *dest;

    dest = ngx_palloc(cf->pool, sizeof(ngx_http_affiliate_dest_t));
    if (dest == NULL) {
        return NGX_CONF_ERROR;
    }

    err = ngx_http_affiliate_dest_parse(value, dest);

    /* a bad http(s) URL is not an app link: its own error is the answer */

    if (err && !ngx_http_affiliate_web_scheme(value)) {
        err = ngx_http_affiliate_app_dest_parse(cf, link, value, dest,
                                                option);
    }

    if (err) {
        return err;
    }

    link->opts->device[device] = dest;

    return NULL;
}


static char *
ngx_http_affiliate_opt_status(ngx_conf_t *cf, ngx_http_affiliate_link_t *link,
    ngx_str_t *value)
{
    ngx_int_t  n;

    n = ngx_atoi(value->data, value->len);

    if (!ngx_http_affiliate_redirect_status_valid(n)) {
        return NGX_HTTP_AFFILIATE_STATUS_EXPECTED;
    }

    link->opts->status = n;

    return NULL;
}


static char *
ngx_http_affiliate_opt_permanent(ngx_conf_t *cf,
    ngx_http_affiliate_link_t *link, ngx_str_t *value)
{
    if (value->len == 2 && ngx_strncmp(value->data, "on", 2) == 0) {
        link->opts->permanent = 1;
        return NULL;
    }

    if (value->len == 3 && ngx_strncmp(value->data, "off", 3) == 0) {
        link->opts->permanent = 0;
        return NULL;
    }

    return "expected \"on\" or \"off\"";
}


static char *
ngx_http_affiliate_opt_query(ngx_conf_t *cf, ngx_http_affiliate_link_t *link,
    ngx_str_t *value)
{
    if (value->len == 7 && ngx_strncmp(value->data, "forward", 7) == 0) {
        link->opts->forward_query = 1;
        return NULL;
    }

    if (value->len == 4 && ngx_strncmp(value->data, "drop", 4) == 0) {
        link->opts->forward_query = 0;
        return NULL;
    }

    return "expected \"forward\" or \"drop\"";
}


static char *
ngx_http_affiliate_opt_utm(ngx_conf_t *cf, ngx_http_affiliate_link_t *link,
    ngx_str_t *value)
{
    if (value->len == 3 && ngx_strncmp(value->data, "set", 3) == 0) {
        link->opts->utm_set = 1;
        return NULL;
    }

    if (value->len == 4 && ngx_strncmp(value->data, "keep", 4) == 0) {
        link->opts->utm_set = 0;
        return NULL;
    }

    return "expected \"set\" or \"keep\"";
}


/*
 * myapp://product/42: an app link.  Its scheme is checked against
 * affiliate_app_schemes once the http block is read (wherever that
 * directive is), see ngx_http_affiliate_app_dests_check().
 */

static char *
ngx_http_affiliate_app_dest_parse(ngx_conf_t *cf,
    ngx_http_affiliate_link_t *link, ngx_str_t *url,
    ngx_http_affiliate_dest_t *dest, char *option)
{
    u_char                          *colon, *p;
    ngx_uint_t                       i;
    ngx_http_affiliate_app_dest_t   *ad;
    ngx_http_affiliate_main_conf_t  *amcf;

    if (url->len > NGX_HTTP_AFFILIATE_DEST_MAX) {
        return "destination longer than 1024 bytes";
    }

    for (i = 0; i < url->len; i++) {
        if (url->data[i] <= ' ' || url->data[i] >= 0x7f
            || url->data[i] == '\\')
        {
            return "destination contains a control character, whitespace, "
                   "a backslash or a non-ASCII byte (percent-encode it)";
        }
    }

    colon = ngx_strlchr(url->data, url->data + url->len, ':');

    if (colon == NULL || colon == url->data
        || url->data + url->len - colon < 2)
    {
        return "destination is neither an absolute http(s) URL nor an app "
               "link (scheme:...)";
    }

    for (p = url->data; p < colon; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
              || (p > url->data && ((*p >= '0' && *p <= '9') || *p == '+'
                                    || *p == '-' || *p == '.'))))
        {
            return "destination has an invalid scheme";
        }
    }

    dest->data = url->data;
    dest->len = (uint16_t) url->len;

    ngx_http_affiliate_dest_flags(dest);

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_affiliate_module);

    if (amcf->app_dests == NULL) {
        amcf->app_dests = ngx_array_create(cf->pool, 4,
                                       sizeof(ngx_http_affiliate_app_dest_t));
        if (amcf->app_dests == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    ad = ngx_array_push(amcf->app_dests);
    if (ad == NULL) {
        return NGX_CONF_ERROR;
    }

    ad->scheme.data = url->data;
    ad->scheme.len = colon - url->data;
    ad->option = option;
    ad->origin = link->opts->origin;

    return NULL;
}


/* every app link's scheme is listed in affiliate_app_schemes */

char *
ngx_http_affiliate_app_dests_check(ngx_conf_t *cf,
    ngx_http_affiliate_main_conf_t *amcf)
{
    ngx_str_t                      *s;
    ngx_uint_t                      i, k;
    ngx_http_affiliate_app_dest_t  *ad;

    if (amcf->app_dests == NULL) {
        return NGX_CONF_OK;
    }

    ad = amcf->app_dests->elts;
    s = amcf->app_schemes ? amcf->app_schemes->elts : NULL;

    for (i = 0; i < amcf->app_dests->nelts; i++) {

        for (k = 0; s && k < amcf->app_schemes->nelts; k++) {
            if (s[k].len == ad[i].scheme.len
                && ngx_strncasecmp(s[k].data, ad[i].scheme.data, s[k].len)
                   == 0)
            {
                break;
            }
        }

        if (s == NULL || k == amcf->app_schemes->nelts) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "%s:%ui: invalid \"%s\" value: app link scheme "
                          "\"%V\" is not listed in \"affiliate_app_schemes\"",
                          ad[i].origin.file, ad[i].origin.line,
                          ad[i].option, &ad[i].scheme);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/*
 * utm=set: drops utm_source, utm_medium and utm_campaign from a query;
 * a link's destinations once at load, a rule's on each request
 */

char *
ngx_http_affiliate_utm_strip(ngx_pool_t *pool, ngx_http_affiliate_dest_t *dest)
{
    u_char     *p, *q, *start, *last, *frag, *amp, *out;
    uint8_t     plain;
    ngx_str_t   name, value;

    frag = dest->data + dest->frag;
    q = ngx_strlchr(dest->data, frag, '?');

    if (q == NULL) {
        return NULL;
    }

    out = ngx_pnalloc(pool, dest->len);
    if (out == NULL) {
        return NGX_CONF_ERROR;
    }

    p = ngx_cpymem(out, dest->data, q - dest->data);
    start = p;
    last = frag;

    for (q++; q < last; q = amp + 1) {

        amp = ngx_http_affiliate_arg_split(q, last, &name, &value);

        if ((name.len == 10
             && (ngx_strncmp(name.data, "utm_source", 10) == 0
                 || ngx_strncmp(name.data, "utm_medium", 10) == 0))
            || (name.len == 12
                && ngx_strncmp(name.data, "utm_campaign", 12) == 0))
        {
            continue;
        }

        *p = (p == start) ? '?' : '&';
        p = ngx_cpymem(p + 1, q, amp - q);
    }

    p = ngx_cpymem(p, frag, dest->data + dest->len - frag);

    dest->data = out;
    dest->len = (uint16_t) (p - out);

    /* fewer bytes of the same URL: what needed no escaping still does not */

    plain = dest->flags & NGX_HTTP_AFFILIATE_JSON_PLAIN;

    ngx_http_affiliate_dest_flags(dest);

    dest->flags |= plain;

    return NULL;
}


char *
ngx_http_affiliate_app_schemes(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_affiliate_main_conf_t *amcf = conf;

    ngx_str_t   *value, *s;
    ngx_uint_t   i, k;

    static char  *forbidden[] = {
        "http", "https", "javascript", "data", "vbscript", "file", "blob",
        "about", NULL
    };

    value = cf->args->elts;

    if (amcf->app_schemes == NULL) {
        amcf->app_schemes = ngx_array_create(cf->pool, 4, sizeof(ngx_str_t));
        if (amcf->app_schemes == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    for (i = 1; i < cf->args->nelts; i++) {

        for (k = 0; k < value[i].len; k++) {
            if (!((value[i].data[k] >= 'a' && value[i].data[k] <= 'z')
                  || (k > 0 && ((value[i].data[k] >= '0'
                                 && value[i].data[k] <= '9')
                                || value[i].data[k] == '+'
                                || value[i].data[k] == '-'
                                || value[i].data[k] == '.'))))
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid app scheme \"%V\": lower-case "
                                   "letters, then letters, digits, \"+\", "
                                   "\"-\" or \".\", without \"://\"",
                                   &value[i]);
                return NGX_CONF_ERROR;
            }
        }

        for (k = 0; forbidden[k]; k++) {
            if (value[i].len == ngx_strlen(forbidden[k])
                && ngx_strncmp(value[i].data, forbidden[k], value[i].len)
                   == 0)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"%V\" is not an app scheme",
                                   &value[i]);
                return NGX_CONF_ERROR;
            }
        }

        s = ngx_array_push(amcf->app_schemes);
        if (s == NULL) {
            return NGX_CONF_ERROR;
        }

        *s = value[i];
    }

    return NGX_CONF_OK;
}
