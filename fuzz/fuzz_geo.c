
/*
 * Copyright (C) ngx_http_affiliate_module authors
 *
 * The geo= field of a link (ngx_http_affiliate_geo_parse): the input is
 * what follows "geo=".
 *
 * Property: the spec is refused with a message, or it parses into
 * entries of an upper-case country code and a checked destination that,
 * joined as CC:URL with commas, spell the input back exactly.
 */


#include "fuzz_common.h"

#include "../ngx_http_affiliate_module/ngx_http_affiliate_links.c"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char                       *err;
    u_char                     *p, *last;
    ngx_str_t                   geo, url;
    ngx_uint_t                  i;
    ngx_conf_t                  cf;
    ngx_pool_t                 *pool;
    ngx_http_affiliate_link_t   link;

    if (size > 16384) {
        return -1;
    }

    pool = fz_pool();
    fz_conf(&cf, pool);

    /* exactly as long as the field: ASan sees a read past its end */

    geo.len = 4 + size;
    geo.data = ngx_pnalloc(pool, geo.len);
    if (geo.data == NULL) {
        abort();
    }

    ngx_memcpy(geo.data, "geo=", 4);
    ngx_memcpy(geo.data + 4, data, size);

    ngx_memzero(&link, sizeof(ngx_http_affiliate_link_t));

    err = ngx_http_affiliate_geo_parse(&cf, &geo, &link);

    if (err) {
        fz_assert(err != NGX_CONF_ERROR && ngx_strlen(err) > 0,
                  "refused without a message");
        goto done;
    }

    fz_assert(link.ngeo >= 1 && link.geo != NULL, "no entries");

    p = geo.data + 4;
    last = geo.data + geo.len;

    for (i = 0; i < link.ngeo; i++) {
        fz_assert(link.geo[i].country[0] >= 'A'
                  && link.geo[i].country[0] <= 'Z'
                  && link.geo[i].country[1] >= 'A'
                  && link.geo[i].country[1] <= 'Z', "country code");

        fz_assert(last - p >= 3 && p[0] == link.geo[i].country[0]
                  && p[1] == link.geo[i].country[1] && p[2] == ':',
                  "entry %u does not spell the input back", (unsigned) i);

        url.data = p + 3;
        url.len = link.geo[i].dest.len;

        fz_check_dest(&url, &link.geo[i].dest);

        p = url.data + url.len;

        if (i + 1 < link.ngeo) {
            fz_assert(p < last && *p == ',', "entries not ','-joined");
            p++;
        }
    }

    fz_assert(p == last, "bytes after the last entry: %s",
              fz_show(p, last - p));

done:

    ngx_destroy_pool(pool);

    return 0;
}
