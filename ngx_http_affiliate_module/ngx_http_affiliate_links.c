
/*
 * Copyright (C) ngx_http_affiliate_module authors
 *
 * The link table: a TSV file and inline links, checked at load and kept
 * in an ngx_hash keyed by the lowercased slug.
 */


#include "ngx_http_affiliate_module.h"


static char *ngx_http_affiliate_link_make(ngx_conf_t *cf,
    ngx_http_affiliate_links_t **lp, ngx_str_t *slug, ngx_str_t *dest,
    ngx_str_t *creator, ngx_str_t *campaign, ngx_str_t *opts,
    ngx_uint_t nopts, u_char *file, ngx_uint_t line);
static char *ngx_http_affiliate_geo_parse(ngx_conf_t *cf, ngx_str_t *geo,
    ngx_http_affiliate_link_t *link);
static ngx_int_t ngx_http_affiliate_links_reserve(ngx_conf_t *cf,
    ngx_http_affiliate_links_t **lp, ngx_uint_t n);
static ngx_int_t ngx_http_affiliate_array_reserve(ngx_conf_t *cf,
    ngx_array_t **a, ngx_uint_t n, size_t size);


static ngx_str_t  ngx_http_affiliate_params[] = {
    ngx_string("click_id"),
    ngx_string("utm_source"),
    ngx_string("utm_medium"),
    ngx_string("utm_campaign"),
    ngx_null_string
};


char *
ngx_http_affiliate_links_file(ngx_conf_t *cf, ngx_http_affiliate_links_t **lp,
    ngx_str_t *path)
{
    char             *rv, *err;
    u_char           *buf, *p, *last, *eol, *tab;
    size_t            size;
    ssize_t           rd;
    ngx_fd_t          fd;
    ngx_str_t         name, f[NGX_HTTP_AFFILIATE_FIELDS_MAX + 1];
    ngx_uint_t        line, nf, n;
    ngx_file_info_t   fi;

    name = *path;

    if (ngx_conf_full_name(cf->cycle, &name, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    fd = ngx_open_file(name.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_open_file_n " \"%s\" failed", name.data);
        return NGX_CONF_ERROR;
    }

    buf = NULL;
    rv = NGX_CONF_ERROR;

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_fd_info_n " \"%s\" failed", name.data);
        goto done;
    }

    size = (size_t) ngx_file_size(&fi);

    /* the links point into the file's text: it lives with the cycle */

    buf = ngx_pnalloc(cf->pool, size + 1);
    if (buf == NULL) {
        goto done;
    }

    rd = ngx_read_fd(fd, buf, size);

    if (rd == -1 || (size_t) rd != size) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_read_fd_n " \"%s\" failed", name.data);
        goto done;
    }

    last = buf + size;
    line = 0;

    /* size the arrays once: a million links must not be copied around */

    for (p = buf, n = 1; p < last; p++) {
        if (*p == '\n') {
            n++;
        }
    }

    if (ngx_http_affiliate_links_reserve(cf, lp, n) != NGX_OK) {
        goto done;
    }

    for (p = buf; p < last; p = eol + 1) {

        line++;

        eol = ngx_strlchr(p, last, '\n');
        if (eol == NULL) {
            eol = last;
        }

        f[0].data = p;
        f[0].len = eol - p;

        if (f[0].len && p[f[0].len - 1] == '\r') {
            f[0].len--;
        }

        if (f[0].len == 0 || p[0] == '#') {
            continue;
        }

        /* split on tabs */

        for (nf = 0; nf < NGX_HTTP_AFFILIATE_FIELDS_MAX; nf++) {
            tab = ngx_strlchr(f[nf].data, f[nf].data + f[nf].len, '\t');
            if (tab == NULL) {
                break;
            }

            f[nf + 1].data = tab + 1;
            f[nf + 1].len = f[nf].data + f[nf].len - (tab + 1);
            f[nf].len = tab - f[nf].data;
        }

        nf++;

        if (nf < 4) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "%s:%ui: %ui fields, expected "
                               "slug<TAB>destination<TAB>creator<TAB>"
                               "campaign", name.data, line, nf);
            goto done;
        }

        if (nf > NGX_HTTP_AFFILIATE_FIELDS_MAX) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "%s:%ui: more than %d fields",
                               name.data, line, NGX_HTTP_AFFILIATE_FIELDS_MAX);
            goto done;
        }

        err = ngx_http_affiliate_link_make(cf, lp, &f[0], &f[1], &f[2],
                                           &f[3], &f[4], nf - 4,
                                           name.data, line);

        if (err == NGX_CONF_ERROR) {
            goto done;
        }

        if (err) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%s:%ui: %s",
                               name.data, line, err);
            goto done;
        }
    }

    rv = NGX_CONF_OK;

done:

    if (ngx_close_file(fd) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_ALERT, cf->log, ngx_errno,
                      ngx_close_file_n " \"%s\" failed", name.data);
    }

    return rv;
}


char *
ngx_http_affiliate_link_add(ngx_conf_t *cf, ngx_http_affiliate_links_t **lp,
    ngx_str_t *slug, ngx_str_t *dest, ngx_str_t *creator,
    ngx_str_t *campaign, ngx_str_t *opts, ngx_uint_t nopts)
{
    char  *err;

    err = ngx_http_affiliate_link_make(cf, lp, slug, dest, creator, campaign,
                                       opts, nopts,
                                       cf->conf_file->file.name.data,
                                       cf->conf_file->line);

    if (err == NGX_CONF_ERROR || err == NULL) {
        return err;
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "affiliate_link: %s", err);

    return NGX_CONF_ERROR;
}


/*
 * Returns NULL when the link was added, NGX_CONF_ERROR on a system
 * failure (already logged), or a static description of what is wrong.
 */

static char *
ngx_http_affiliate_link_make(ngx_conf_t *cf, ngx_http_affiliate_links_t **lp,
    ngx_str_t *slug, ngx_str_t *dest, ngx_str_t *creator,
    ngx_str_t *campaign, ngx_str_t *opts, ngx_uint_t nopts, u_char *file,
    ngx_uint_t line)
{
    char                         *err;
    ngx_uint_t                    i;
    ngx_hash_key_t               *key;
    ngx_http_affiliate_link_t    *link;
    ngx_http_affiliate_links_t   *links;
    ngx_http_affiliate_origin_t  *origin, where;

    if (ngx_http_affiliate_links_reserve(cf, lp, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    links = *lp;

    if (links->built) {
        return "links must be given before the server blocks that use them";
    }

    if (slug->len == 0) {
        return "empty slug";
    }

    if (slug->len > NGX_HTTP_AFFILIATE_SLUG_MAX) {
        return "slug longer than 128 bytes";
    }

    for (i = 0; i < slug->len; i++) {
        if (slug->data[i] <= ' ' || slug->data[i] == 0x7f) {
            return "slug contains a control character or whitespace";
        }
    }

    err = ngx_http_affiliate_check_text(cf, creator,
                                        NGX_HTTP_AFFILIATE_CREATOR_MAX,
                                        "creator");
    if (err) {
        return err;
    }

    err = ngx_http_affiliate_check_text(cf, campaign,
                                        NGX_HTTP_AFFILIATE_CAMPAIGN_MAX,
                                        "campaign");
    if (err) {
        return err;
    }

    link = ngx_palloc(cf->pool, sizeof(ngx_http_affiliate_link_t));
    if (link == NULL) {
        return NGX_CONF_ERROR;
    }

    err = ngx_http_affiliate_dest_parse(dest, &link->dest);
    if (err) {
        return err;
    }

    link->creator = *creator;
    link->campaign = *campaign;
    link->geo = NULL;
    link->ngeo = 0;
    link->opts = NULL;
    link->flags = ngx_http_affiliate_link_flags(slug, creator, campaign);
    link->stat_key = ngx_http_affiliate_stat_key(creator, campaign);

    where.file = file;
    where.line = line;

    for (i = 0; i < nopts; i++) {

        if (ngx_strncmp(opts[i].data, "geo=", 4) == 0) {
            err = link->geo ? "duplicate \"geo=\""
                            : ngx_http_affiliate_geo_parse(cf, &opts[i], link);

        } else {
            err = ngx_http_affiliate_link_option(cf, link, &opts[i], &where);
        }

        if (err) {
            return err;
        }
    }

    err = ngx_http_affiliate_link_options_check(cf, link, slug);
    if (err) {
        return err;
    }

    /* duplicates are found once the hash is built */

    key = ngx_array_push(links->keys);
    origin = ngx_array_push(links->origins);
    if (key == NULL || origin == NULL) {
        return NGX_CONF_ERROR;
    }

    key->key = *slug;
    key->key_hash = ngx_hash_key_lc(slug->data, slug->len);
    key->value = link;

    origin->file = file;
    origin->line = line;

    return NULL;
}


/* what the request path may copy as it is (LINK_* flags) */

uint32_t
ngx_http_affiliate_link_flags(ngx_str_t *slug, ngx_str_t *creator,
    ngx_str_t *campaign)
{
    uint32_t  flags;

    flags = 0;

    if (ngx_http_affiliate_json_plain(slug->data, slug->len)
        && ngx_http_affiliate_json_plain(creator->data, creator->len)
        && ngx_http_affiliate_json_plain(campaign->data, campaign->len))
    {
        flags |= NGX_HTTP_AFFILIATE_LINK_JSON;
    }

    if (ngx_escape_uri(NULL, creator->data, creator->len, NGX_ESCAPE_ARGS)
        == 0
        && ngx_escape_uri(NULL, campaign->data, campaign->len,
                          NGX_ESCAPE_ARGS)
           == 0)
    {
        flags |= NGX_HTTP_AFFILIATE_LINK_ARGS;
    }

    return flags;
}


static ngx_int_t
ngx_http_affiliate_links_reserve(ngx_conf_t *cf,
    ngx_http_affiliate_links_t **lp, ngx_uint_t n)
{
    ngx_http_affiliate_links_t  *links;

    links = *lp;

    if (links == NULL) {
        links = ngx_pcalloc(cf->pool, sizeof(ngx_http_affiliate_links_t));
        if (links == NULL) {
            return NGX_ERROR;
        }

        *lp = links;
    }

    if (links->built) {
        return NGX_OK;
    }

    if (ngx_http_affiliate_array_reserve(cf, &links->keys, n,
                                         sizeof(ngx_hash_key_t))
        != NGX_OK
        || ngx_http_affiliate_array_reserve(cf, &links->origins, n,
                                         sizeof(ngx_http_affiliate_origin_t))
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_affiliate_array_reserve(ngx_conf_t *cf, ngx_array_t **a,
    ngx_uint_t n, size_t size)
{
    ngx_array_t  *old, *new;

    old = *a;

    if (old && old->nalloc - old->nelts >= n) {
        return NGX_OK;
    }

    new = ngx_array_create(cf->temp_pool,
                           ngx_max((old ? old->nelts : 0) + n, 64), size);
    if (new == NULL) {
        return NGX_ERROR;
    }

    if (old) {
        ngx_memcpy(new->elts, old->elts, old->nelts * size);
        new->nelts = old->nelts;
    }

    *a = new;

    return NGX_OK;
}


/* geo=US:https://us.example/x,DE:https://brand.de/x */

static char *
ngx_http_affiliate_geo_parse(ngx_conf_t *cf, ngx_str_t *geo,
    ngx_http_affiliate_link_t *link)
{
    char                           *err;
    u_char                         *p, *last, *next;
    ngx_str_t                       url;
    ngx_uint_t                      n, i;
    ngx_http_affiliate_geo_dest_t  *gd;

    p = geo->data + 4;
    last = geo->data + geo->len;

    /* an entry ends where ",CC:" starts the next one */

    n = 0;

    for (next = p; next < last; next++) {
        if (*next == ':' && next - 2 >= p
            && next[-2] >= 'A' && next[-2] <= 'Z'
            && next[-1] >= 'A' && next[-1] <= 'Z'
            && (next - 2 == p || next[-3] == ','))
        {
            n++;
        }
    }

    if (n == 0) {
        return "invalid geo destinations, expected \"geo=CC:URL,...\"";
    }

    gd = ngx_pcalloc(cf->pool, n * sizeof(ngx_http_affiliate_geo_dest_t));
    if (gd == NULL) {
        return NGX_CONF_ERROR;
    }

    link->geo = gd;
    link->ngeo = n;

    for (i = 0; i < n; i++) {

        if (last - p < 4 || p[2] != ':'
            || p[0] < 'A' || p[0] > 'Z' || p[1] < 'A' || p[1] > 'Z')
        {
            return "invalid geo destination, expected an upper-case "
                   "ISO 3166-1 country code, a colon and a URL";
        }

        gd[i].country[0] = p[0];
        gd[i].country[1] = p[1];

        url.data = p + 3;

        for (next = url.data; next < last; next++) {
            if (next[0] == ',' && last - next > 3 && next[3] == ':'
                && next[1] >= 'A' && next[1] <= 'Z'
                && next[2] >= 'A' && next[2] <= 'Z')
            {
                break;
            }
        }

        url.len = next - url.data;

        err = ngx_http_affiliate_dest_parse(&url, &gd[i].dest);
        if (err) {
            return err;
        }

        p = next + 1;
    }

    return NULL;
}


/*
 * The length of a literal "http://" or "https://" (any case) that starts
 * s and is followed by more, else 0
 */

size_t
ngx_http_affiliate_scheme_len(ngx_str_t *s)
{
    if (s->len > 7 && ngx_strncasecmp(s->data, (u_char *) "http://", 7) == 0)
    {
        return 7;
    }

    if (s->len > 8 && ngx_strncasecmp(s->data, (u_char *) "https://", 8) == 0)
    {
        return 8;
    }

    return 0;
}


/* the scheme is http or https, whatever follows */

ngx_uint_t
ngx_http_affiliate_web_scheme(ngx_str_t *s)
{
    return (s->len >= sizeof("http:") - 1
            && ngx_strncasecmp(s->data, (u_char *) "http:",
                               sizeof("http:") - 1)
               == 0)
           || (s->len >= sizeof("https:") - 1
               && ngx_strncasecmp(s->data, (u_char *) "https:",
                                  sizeof("https:") - 1)
                  == 0);
}


char *
ngx_http_affiliate_dest_parse(ngx_str_t *url, ngx_http_affiliate_dest_t *dest)
{
    u_char      *p, *last, *q;
    size_t       n;
    ngx_uint_t   i, quote;

    if (url->len == 0) {
        return "missing destination";
    }

    if (url->len > NGX_HTTP_AFFILIATE_DEST_MAX) {
        return "destination longer than 1024 bytes";
    }

    quote = 0;

    for (i = 0; i < url->len; i++) {
        if (url->data[i] <= ' ' || url->data[i] >= 0x7f) {
            return "destination contains a control character, whitespace "
                   "or a non-ASCII byte (percent-encode it)";
        }

        quote |= (url->data[i] == '"');
    }

    n = ngx_http_affiliate_scheme_len(url);

    if (n == 0) {
        return "destination is not an absolute http(s) URL";
    }

    /* the authority: a host name or [IPv6], an optional port, no user */

    p = url->data + n;
    last = url->data + url->len;

    if (p < last && *p == '[') {
        for (p++; p < last && *p != ']'; p++) {
            if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')
                  || (*p >= 'A' && *p <= 'F') || *p == ':' || *p == '.'))
            {
                return "destination has an invalid host";
            }
        }

        if (p == last || p == url->data + n + 1) {
            return "destination has an invalid host";
        }

        p++;

    } else {
        for (q = p; p < last; p++) {
            if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
                  || (*p >= '0' && *p <= '9') || *p == '.' || *p == '-'
                  || *p == '_'))
            {
                break;
            }
        }

        if (p == q) {
            return "destination has no host";
        }
    }

    if (p < last && *p == ':') {
        for (q = ++p; p < last && *p >= '0' && *p <= '9'; p++) {
            /* void */
        }

        if (p == q || p - q > 5) {
            return "destination has an invalid port";
        }
    }

    if (p < last && *p != '/' && *p != '?' && *p != '#') {
        return "destination has an invalid host (user info, backslash or "
               "an unexpected character)";
    }

    if (ngx_strlchr(url->data, last, '\\')) {
        return "destination contains a backslash";
    }

    dest->data = url->data;
    dest->len = (uint16_t) url->len;

    ngx_http_affiliate_dest_flags(dest);

    /* no control, DEL, non-ASCII or backslash: JSON needs only the quote */

    if (!quote) {
        dest->flags |= NGX_HTTP_AFFILIATE_JSON_PLAIN;
    }

    return NULL;
}


/* where the fragment starts, and which parameters the query sets */

void
ngx_http_affiliate_dest_flags(ngx_http_affiliate_dest_t *dest)
{
    u_char      *p, *q, *last, *amp;
    ngx_str_t    name, value;
    ngx_uint_t   i;

    dest->flags = 0;

    last = dest->data + dest->len;

    p = ngx_strlchr(dest->data, last, '#');
    if (p) {
        last = p;
    }

    dest->frag = (uint16_t) (last - dest->data);

    q = ngx_strlchr(dest->data, last, '?');
    if (q == NULL) {
        return;
    }

    dest->flags |= NGX_HTTP_AFFILIATE_HAS_QUERY;

    for (p = q + 1; p < last; p = amp + 1) {

        amp = ngx_http_affiliate_arg_split(p, last, &name, &value);

        for (i = 0; ngx_http_affiliate_params[i].len; i++) {
            if (name.len == ngx_http_affiliate_params[i].len
                && ngx_strncmp(name.data, ngx_http_affiliate_params[i].data,
                               name.len)
                   == 0)
            {
                dest->flags |= NGX_HTTP_AFFILIATE_HAS_CLICK_ID << i;
            }
        }
    }
}


char *
ngx_http_affiliate_links_build(ngx_conf_t *cf,
    ngx_http_affiliate_links_t *links)
{
    u_char                       *lc;
    ngx_uint_t                    i, j, n;
    ngx_hash_key_t               *keys;
    ngx_hash_init_t               hash;
    ngx_http_affiliate_link_t    *link;
    ngx_http_affiliate_origin_t  *origins;

    keys = links->keys->elts;
    n = links->keys->nelts;

    hash.hash = &links->hash;
    hash.key = ngx_hash_key_lc;
    hash.max_size = ngx_max(n + n / 2, 1024);
    hash.bucket_size = ngx_align(256, ngx_cacheline_size);
    hash.name = "affiliate_links_hash";
    hash.pool = cf->pool;
    hash.temp_pool = NULL;

    if (ngx_hash_init(&hash, keys, n) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    /*
     * A slug given twice sits twice in its bucket; the lookup finds
     * the first one, so a key that does not find itself is a duplicate.
     */

    lc = ngx_pnalloc(cf->temp_pool, NGX_HTTP_AFFILIATE_SLUG_MAX);
    if (lc == NULL) {
        return NGX_CONF_ERROR;
    }

    origins = links->origins->elts;

    for (i = 0; i < n; i++) {
        ngx_strlow(lc, keys[i].key.data, keys[i].key.len);

        link = ngx_hash_find(&links->hash, keys[i].key_hash, lc,
                             keys[i].key.len);

        if (link == keys[i].value) {
            continue;
        }

        for (j = 0; j < i && keys[j].value != link; j++) {
            /* void */
        }

        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "%s:%ui: duplicate slug \"%V\", first given in "
                      "%s:%ui (slugs are compared case-insensitively)",
                      origins[i].file, origins[i].line, &keys[i].key,
                      origins[j].file, origins[j].line);

        return NGX_CONF_ERROR;
    }

    links->built = 1;
    links->keys = NULL;
    links->origins = NULL;

    return NGX_CONF_OK;
}


ngx_http_affiliate_link_t *
ngx_http_affiliate_links_find(ngx_http_affiliate_links_t *links,
    ngx_str_t *slug)
{
    u_char      buf[NGX_HTTP_AFFILIATE_SLUG_MAX];
    ngx_uint_t  key;

    if (links == NULL || slug->len == 0
        || slug->len > NGX_HTTP_AFFILIATE_SLUG_MAX)
    {
        return NULL;
    }

    key = ngx_hash_strlow(buf, slug->data, slug->len);

    return ngx_hash_find(&links->hash, key, buf, slug->len);
}


/* a creator or campaign: 1 to max bytes, no control byte */

ngx_uint_t
ngx_http_affiliate_text_valid(ngx_str_t *s, size_t max)
{
    size_t  i;

    if (s->data == NULL || s->len == 0 || s->len > max) {
        return 0;
    }

    for (i = 0; i < s->len; i++) {
        if (s->data[i] < ' ' || s->data[i] == 0x7f) {
            return 0;
        }
    }

    return 1;
}


/* the same check at configuration time, with the reason */

char *
ngx_http_affiliate_check_text(ngx_conf_t *cf, ngx_str_t *s, size_t max,
    const char *what)
{
    u_char  *err, *p;

    if (ngx_http_affiliate_text_valid(s, max)) {
        return NULL;
    }

    err = ngx_pnalloc(cf->pool, NGX_MAX_CONF_ERRSTR);
    if (err == NULL) {
        return NGX_CONF_ERROR;
    }

    if (s->data == NULL || s->len == 0) {
        p = ngx_snprintf(err, NGX_MAX_CONF_ERRSTR - 1, "missing %s", what);

    } else if (s->len > max) {
        p = ngx_snprintf(err, NGX_MAX_CONF_ERRSTR - 1,
                         "%s longer than %uz bytes", what, max);

    } else {
        p = ngx_snprintf(err, NGX_MAX_CONF_ERRSTR - 1,
                         "%s contains a control character", what);
    }

    *p = '\0';

    return (char *) err;
}


/* the link's destination for the client's country, NULL: none */

ngx_http_affiliate_dest_t *
ngx_http_affiliate_geo_dest(ngx_http_affiliate_link_t *link,
    ngx_http_affiliate_ctx_t *ctx)
{
    ngx_uint_t  i;

    if (link->ngeo == 0 || ctx->geo.country.len != 2) {
        return NULL;
    }

    for (i = 0; i < link->ngeo; i++) {
        if (link->geo[i].country[0] == ctx->geo.country.data[0]
            && link->geo[i].country[1] == ctx->geo.country.data[1])
        {
            return &link->geo[i].dest;
        }
    }

    return NULL;
}


/*
 * The query parameter that starts at p: its name (up to "=") and value.
 * Returns where it ends: the next "&", or last.
 */

u_char *
ngx_http_affiliate_arg_split(u_char *p, u_char *last, ngx_str_t *name,
    ngx_str_t *value)
{
    u_char  *amp, *eq;

    amp = ngx_strlchr(p, last, '&');
    if (amp == NULL) {
        amp = last;
    }

    eq = ngx_strlchr(p, amp, '=');
    if (eq == NULL) {
        eq = amp;
    }

    name->data = p;
    name->len = eq - p;

    value->data = (eq < amp) ? eq + 1 : amp;
    value->len = amp - value->data;

    return amp;
}
