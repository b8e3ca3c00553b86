
/*
 * Copyright (C) ngx_http_affiliate_module authors
 *
 * The link table file (affiliate_links): the input is the whole file.
 *
 * Property: ngx_http_affiliate_links_file() and _links_build() either
 * refuse the file with a logged message, or every link they keep is a
 * line of the file, field for field, within the documented limits
 * (slug 1-128 bytes without whitespace or control bytes, creator 1-64
 * and campaign 1-128 bytes without control bytes, a checked destination,
 * options name=value with at most one geo= whose entries spell it back,
 * checked variant and expired destinations, printable app links, a
 * redirect status), one link per content line, each found again by its
 * slug in any letter case.
 */


#define FZ_OWN_INIT  1

#include "fuzz_common.h"

#include <sys/mman.h>

#include "../ngx_http_affiliate_module/ngx_http_affiliate_links.c"


#define FZ_MAX_LINES  4096


typedef struct {
    ngx_str_t   f[NGX_HTTP_AFFILIATE_FIELDS_MAX];
    ngx_uint_t  nf;
} fz_line_t;


static int         fz_fd = -1;
static char        fz_path[64];


static void
fz_same(ngx_str_t *got, ngx_str_t *want, const char *what)
{
    fz_assert(got->len == want->len
              && ngx_memcmp(got->data, want->data, got->len) == 0,
              "%s differs from the file: got \"%s\"", what,
              fz_show(got->data, got->len));
}


static void
fz_check_text(ngx_str_t *s, size_t max, ngx_uint_t space_ok,
    const char *what)
{
    ngx_uint_t  i;

    fz_assert(s->len >= 1 && s->len <= max, "%s length %zu", what, s->len);

    for (i = 0; i < s->len; i++) {
        fz_assert(s->data[i] != 0x7f
                  && (space_ok ? s->data[i] >= 0x20 : s->data[i] > 0x20),
                  "%s byte 0x%02x", what, s->data[i]);
    }
}


/* the fifth field spelled back from the parsed entries */

static void
fz_check_geo(ngx_http_affiliate_link_t *link, ngx_str_t *geo)
{
    u_char      *p, *last;
    ngx_str_t    url;
    ngx_uint_t   i;

    fz_assert(link->ngeo >= 1, "geo field without entries");

    p = geo->data + 4;
    last = geo->data + geo->len;

    for (i = 0; i < link->ngeo; i++) {
        fz_assert(link->geo[i].country[0] >= 'A'
                  && link->geo[i].country[0] <= 'Z'
                  && link->geo[i].country[1] >= 'A'
                  && link->geo[i].country[1] <= 'Z', "geo country");

        fz_assert(last - p >= 3 && p[0] == link->geo[i].country[0]
                  && p[1] == link->geo[i].country[1] && p[2] == ':',
                  "geo entry %u does not spell the field back",
                  (unsigned) i);

        url.data = p + 3;
        url.len = link->geo[i].dest.len;

        fz_check_dest(&url, &link->geo[i].dest);

        p = url.data + url.len;

        if (i + 1 < link->ngeo) {
            fz_assert(p < last && *p == ',', "geo entries not ','-joined");
            p++;
        }
    }

    fz_assert(p == last, "geo field has bytes after the last entry");
}


/* a destination of an option: checked as the main one */

static void
fz_check_opt_dest(ngx_http_affiliate_dest_t *d, ngx_uint_t app)
{
    ngx_str_t   url;
    ngx_uint_t  i;

    url.data = d->data;
    url.len = d->len;

    if (app && !(d->len > 7
                 && (ngx_strncasecmp(d->data, (u_char *) "http://", 7) == 0
                     || ngx_strncasecmp(d->data, (u_char *) "https://", 8)
                        == 0)))
    {
        /* an app link: printable, no backslash, no space */

        for (i = 0; i < d->len; i++) {
            fz_assert(d->data[i] > 0x20 && d->data[i] < 0x7f
                      && d->data[i] != '\\',
                      "app link byte 0x%02x", d->data[i]);
        }

        return;
    }

    fz_check_dest(&url, d);
}


static void
fz_check_link(ngx_http_affiliate_link_t *link, fz_line_t *ln)
{
    ngx_uint_t                       i, geo;
    ngx_http_affiliate_link_opts_t  *o;

    fz_same(&link->creator, &ln->f[2], "creator");
    fz_same(&link->campaign, &ln->f[3], "campaign");

    fz_check_text(&link->creator, NGX_HTTP_AFFILIATE_CREATOR_MAX, 1,
                  "creator");
    fz_check_text(&link->campaign, NGX_HTTP_AFFILIATE_CAMPAIGN_MAX, 1,
                  "campaign");

    fz_check_dest(&ln->f[1], &link->dest);

    /* options: name=value, geo= at most once */

    geo = 0;

    for (i = 4; i < ln->nf; i++) {
        fz_assert(memchr(ln->f[i].data, '=', ln->f[i].len) != NULL,
                  "an option without '=' was accepted: %s",
                  fz_show(ln->f[i].data, ln->f[i].len));

        if (ln->f[i].len >= 4 && ngx_strncmp(ln->f[i].data, "geo=", 4) == 0)
        {
            fz_assert(geo == 0, "two geo= accepted");
            geo = i;
        }
    }

    if (geo) {
        fz_check_geo(link, &ln->f[geo]);

    } else {
        fz_assert(link->ngeo == 0 && link->geo == NULL, "geo without field");
    }

    o = link->opts;

    if (o == NULL) {
        return;
    }

    for (i = 0; i < o->nvariants; i++) {
        fz_check_opt_dest(&o->variants[i].dest, 0);
        fz_assert(i == 0 || o->variants[i].upto > o->variants[i - 1].upto,
                  "variant weights do not add up");
    }

    fz_assert(o->nvariants == 0
              || o->variants[o->nvariants - 1].upto == o->total,
              "variant weights end at %u, total %u",
              (unsigned) o->variants[o->nvariants - 1].upto,
              (unsigned) o->total);

    if (o->expired) {
        fz_check_opt_dest(o->expired, 0);
    }

    for (i = 0; i < NGX_HTTP_AFFILIATE_NDEVICES; i++) {
        if (o->device[i]) {
            fz_check_opt_dest(o->device[i], 1);
        }
    }

    fz_assert(o->status == 0 || o->status == 301 || o->status == 302
              || o->status == 303 || o->status == 307 || o->status == 308,
              "status %u", (unsigned) o->status);
}


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fz_init();
    fz_module_index();

    fz_fd = memfd_create("links", 0);
    if (fz_fd == -1) {
        perror("memfd_create");
        abort();
    }

    snprintf(fz_path, sizeof(fz_path), "/proc/self/fd/%d", fz_fd);

    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char                        *rv;
    u_char                      *p, *last, *eol, *tab, upper[200];
    size_t                       len;
    ngx_str_t                    path, slug;
    ngx_uint_t                   n, i, nlines;
    ngx_conf_t                   cf;
    ngx_pool_t                  *pool;
    fz_line_t                   *lines, *ln;
    ngx_hash_key_t              *keys;
    ngx_http_affiliate_link_t   *link;
    ngx_http_affiliate_links_t  *links;
    ngx_http_conf_ctx_t          http_ctx;
    ngx_http_affiliate_main_conf_t  amcf;
    void                        *main_conf[1];

    if (size > 65536) {
        return -1;
    }

    if (ftruncate(fz_fd, 0) != 0 || pwrite(fz_fd, data, size, 0)
                                    != (ssize_t) size)
    {
        abort();
    }

    /* the lines as the format defines them (docs/directives.md) */

    lines = calloc(FZ_MAX_LINES, sizeof(fz_line_t));
    nlines = 0;

    p = (u_char *) data;
    last = p + size;

    for ( /* void */ ; p < last; p = eol + 1) {
        eol = memchr(p, '\n', last - p);
        eol = eol ? eol : last;

        len = eol - p;

        if (len && p[len - 1] == '\r') {
            len--;
        }

        if (len == 0 || p[0] == '#') {
            continue;
        }

        if (nlines == FZ_MAX_LINES) {
            free(lines);
            return -1;
        }

        ln = &lines[nlines++];
        ln->nf = 0;

        for ( ;; ) {
            tab = memchr(p, '\t', len);

            if (ln->nf < NGX_HTTP_AFFILIATE_FIELDS_MAX) {
                ln->f[ln->nf].data = p;
                ln->f[ln->nf].len = tab ? (size_t) (tab - p) : len;
            }

            ln->nf++;

            if (tab == NULL) {
                break;
            }

            len -= tab + 1 - p;
            p = tab + 1;
        }
    }

    pool = fz_pool();
    fz_conf(&cf, pool);

    /* app links are listed in the main conf, to be checked later */

    ngx_memzero(&amcf, sizeof(ngx_http_affiliate_main_conf_t));
    main_conf[0] = &amcf;
    http_ctx.main_conf = main_conf;
    cf.ctx = &http_ctx;

    path.data = (u_char *) fz_path;
    path.len = ngx_strlen(fz_path);

    links = NULL;
    fz_logged_len = 0;

    rv = ngx_http_affiliate_links_file(&cf, &links, &path);

    if (rv != NGX_CONF_OK) {
        fz_assert(fz_logged_len > 0, "refused without a message");
        goto done;
    }

    fz_assert(links != NULL && links->keys->nelts == nlines,
              "%u links from %u content lines",
              links ? (unsigned) links->keys->nelts : 0, (unsigned) nlines);

    keys = links->keys->elts;

    for (i = 0; i < nlines; i++) {
        ln = &lines[i];

        fz_assert(ln->nf >= 4 && ln->nf <= NGX_HTTP_AFFILIATE_FIELDS_MAX,
                  "line %u with %u fields kept",
                  (unsigned) i, (unsigned) ln->nf);

        fz_same(&keys[i].key, &ln->f[0], "slug");
        fz_check_text(&keys[i].key, NGX_HTTP_AFFILIATE_SLUG_MAX, 0, "slug");
        fz_check_link(keys[i].value, ln);
    }

    rv = ngx_http_affiliate_links_build(&cf, links);

    if (rv != NGX_CONF_OK) {
        fz_assert(fz_logged_len > 0, "build refused without a message");
        goto done;
    }

    /* every slug finds its own line's link, in any case */

    for (i = 0; i < nlines; i++) {
        slug = lines[i].f[0];

        for (n = 0; n < slug.len; n++) {
            upper[n] = ngx_toupper(slug.data[n]);
        }

        link = ngx_http_affiliate_links_find(links, &slug);
        fz_assert(link != NULL, "slug %s not found",
                  fz_show(slug.data, slug.len));
        fz_check_link(link, &lines[i]);

        slug.data = upper;
        fz_assert(ngx_http_affiliate_links_find(links, &slug) == link,
                  "upper-case slug finds another link");
    }

done:

    ngx_destroy_pool(pool);
    free(lines);

    return 0;
}
