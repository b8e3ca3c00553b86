
/*
 * Copyright (C) ngx_http_affiliate_module authors
 *
 * The redirect's Location (ngx_http_affiliate_location_extra, and the
 * visitor's parameters of query=forward, ngx_http_affiliate_forward_query).
 * Input: DEST \n CREATOR \n CAMPAIGN \n VISITOR-QUERY.  DEST goes
 * through ngx_http_affiliate_dest_parse() first, as every link and rule
 * does; the creator and campaign are taken when ngx_http_affiliate_text_valid()
 * accepts them (or empty, as a rule may leave them), as the callers do.
 *
 * Properties: every byte of the Location is in 0x21-0x7e; a browser
 * resolves it to the destination's host, with no user info; it is the
 * destination with our parameters inserted before its fragment; each of
 * click_id, utm_source, utm_medium, utm_campaign appears once, and only
 * when the destination's query does not set it already; utm_source and
 * utm_campaign decode (form decoding, '+' is a space) to the creator and
 * campaign exactly; no empty parameter is introduced.  Forwarded
 * parameters are printable without '#', named, and, with their names
 * decoded as the destination does, neither ours (click_id, utm_*) nor
 * one the destination sets.
 */


#include "fuzz_common.h"

#include "../ngx_http_affiliate_module/ngx_http_affiliate_redirect.c"


static char  *fz_names[] = {
    "click_id", "utm_source", "utm_medium", "utm_campaign"
};


typedef struct {
    ngx_uint_t   count[4];
    ngx_str_t    value[4];
    ngx_uint_t   empty;
} fz_query_t;


static void
fz_query(u_char *p, u_char *last, fz_query_t *q)
{
    u_char      *amp, *eq;
    ngx_uint_t   i;

    ngx_memzero(q, sizeof(fz_query_t));

    for ( /* void */ ; p <= last; p = amp + 1) {
        amp = memchr(p, '&', last - p);
        amp = amp ? amp : last;

        if (amp == p) {
            q->empty++;
        }

        eq = memchr(p, '=', amp - p);
        eq = eq ? eq : amp;

        for (i = 0; i < 4; i++) {
            if ((size_t) (eq - p) == ngx_strlen(fz_names[i])
                && ngx_strncmp(p, fz_names[i], eq - p) == 0)
            {
                q->count[i]++;
                q->value[i].data = (eq < amp) ? eq + 1 : amp;
                q->value[i].len = amp - q->value[i].data;
            }
        }

        if (amp == last) {
            break;
        }
    }
}


/*
 * query=forward (ngx_http_affiliate_forward_query): printable, no '#',
 * no empty or nameless parameter, and, as the destination decodes the
 * names, none the destination sets and none of ours (click_id, utm_*).
 */

static void
fz_check_forwarded(ngx_http_affiliate_dest_t *dest, ngx_str_t *args,
    ngx_str_t *extra)
{
    u_char      *p, *last, *amp, *eq, *qs, *dp, *damp, *deq, *dlast;
    u_char       name[4096], dname[4096];
    size_t       len, dlen;
    ngx_uint_t   i;

    for (i = 0; i < extra->len; i++) {
        fz_assert(extra->data[i] > 0x20 && extra->data[i] < 0x7f
                  && extra->data[i] != '#',
                  "forwarded byte 0x%02x", extra->data[i]);
    }

    qs = memchr(dest->data, '?', dest->frag);
    dlast = dest->data + dest->frag;
    last = extra->data + extra->len;

    for (p = extra->data; p < last; p = amp + 1) {
        amp = memchr(p, '&', last - p);
        amp = amp ? amp : last;

        eq = memchr(p, '=', amp - p);
        eq = eq ? eq : amp;

        fz_assert(eq > p, "a nameless parameter forwarded: %s",
                  fz_show(extra->data, extra->len));

        (void) fz_form_decode(p, eq, name, &len, 0);

        fz_assert(!((len == 8 && ngx_strncmp(name, "click_id", 8) == 0)
                    || (len >= 4 && ngx_strncmp(name, "utm_", 4) == 0)),
                  "one of our parameters forwarded: %s",
                  fz_show(extra->data, extra->len));

        for (dp = qs ? qs + 1 : dlast; dp < dlast; dp = damp + 1) {
            damp = memchr(dp, '&', dlast - dp);
            damp = damp ? damp : dlast;

            deq = memchr(dp, '=', damp - dp);
            deq = deq ? deq : damp;

            (void) fz_form_decode(dp, deq, dname, &dlen, 0);

            fz_assert(!(dlen == len && ngx_memcmp(dname, name, len) == 0),
                      "a parameter the destination sets forwarded: %s",
                      fz_show(extra->data, extra->len));
        }
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char                     *qs, *qe, click_id[NGX_HTTP_AFFILIATE_ULID_LEN];
    size_t                      added;
    ngx_str_t                   f[4], loc, h1, h2, v, *want, extra;
    ngx_uint_t                  i, u1, u2, has, plain;
    ngx_pool_t                 *pool;
    fz_query_t                  dq, lq;
    ngx_http_request_t          r;
    ngx_http_affiliate_dest_t   dest;

    if (size > 4096) {
        return -1;
    }

    (void) fz_split(data, size, '\n', f, 4);

    if (!fz_names_valid(&f[1], &f[2])) {
        return -1;
    }

    pool = fz_pool();
    fz_request(&r, pool, NULL, NULL);

    for (i = 0; i < 4; i++) {
        (void) fz_dup(pool, &f[i]);
    }

    if (ngx_http_affiliate_dest_parse(&f[0], &dest) != NULL) {
        goto done;
    }

    fz_check_dest(&f[0], &dest);

    ngx_http_affiliate_ulid(click_id);

    /* query=forward: the visitor's own parameters go along */

    extra.len = 0;

    if (f[3].len) {
        r.args = f[3];

        fz_assert(ngx_http_affiliate_forward_query(&r, &dest, &extra)
                  == NGX_OK, "forward_query failed");

        fz_check_forwarded(&dest, &r.args, &extra);
    }

    /* as the link table's load flags it (the slug plays no part here) */

    plain = (ngx_http_affiliate_link_flags(&f[1], &f[1], &f[2])
             & NGX_HTTP_AFFILIATE_LINK_ARGS)
            != 0;

    fz_assert(ngx_http_affiliate_location_extra(&r, &dest,
                                                f[3].len ? &extra : NULL,
                                                &f[1], &f[2], click_id,
                                                plain, &loc)
              == NGX_OK, "location failed");

    for (i = 0; i < loc.len; i++) {
        fz_assert(loc.data[i] > 0x20 && loc.data[i] < 0x7f,
                  "Location byte 0x%02x: %s", loc.data[i],
                  fz_show(loc.data, loc.len));
    }

    fz_assert(fz_url_host(dest.data, dest.len, &h1, &u1) == 0
              && fz_url_host(loc.data, loc.len, &h2, &u2) == 0
              && !u2 && h1.len == h2.len
              && ngx_strncasecmp(h1.data, h2.data, h1.len) == 0,
              "Location goes to another host: %s",
              fz_show(loc.data, loc.len));

    /* dest before '#', our parameters, dest's fragment */

    added = loc.len - dest.len;

    fz_assert(loc.len >= dest.len
              && ngx_memcmp(loc.data, dest.data, dest.frag) == 0
              && ngx_memcmp(loc.data + dest.frag + added,
                            dest.data + dest.frag, dest.len - dest.frag)
                 == 0
              && memchr(loc.data + dest.frag, '#', added) == NULL,
              "Location is not dest with parameters before the fragment: %s",
              fz_show(loc.data, loc.len));

    /* the queries, parameter by parameter */

    qs = memchr(dest.data, '?', dest.frag);

    if (qs) {
        fz_query(qs + 1, dest.data + dest.frag, &dq);

    } else {
        ngx_memzero(&dq, sizeof(fz_query_t));
    }

    qe = loc.data + dest.frag + added;
    qs = memchr(loc.data, '?', qe - loc.data);

    fz_assert(qs != NULL, "Location without a query: %s",
              fz_show(loc.data, loc.len));

    fz_query(qs + 1, qe, &lq);

    /* a trailing empty one ("?", "a&") is where ours start */

    fz_assert(lq.empty == dq.empty || lq.empty + 1 == dq.empty,
              "empty parameters %u -> %u: %s", (unsigned) dq.empty,
              (unsigned) lq.empty, fz_show(loc.data, loc.len));

    for (i = 0; i < 4; i++) {
        has = (dest.flags & (NGX_HTTP_AFFILIATE_HAS_CLICK_ID << i)) != 0;

        fz_assert(has == (dq.count[i] > 0), "dest flag for %s", fz_names[i]);

        if (has) {
            fz_assert(lq.count[i] == dq.count[i], "%s added again: %s",
                      fz_names[i], fz_show(loc.data, loc.len));
            continue;
        }

        want = (i == 1) ? &f[1] : (i == 3) ? &f[2] : NULL;

        if (want && want->len == 0) {
            fz_assert(lq.count[i] == 0, "%s added for an empty value",
                      fz_names[i]);
            continue;
        }

        fz_assert(lq.count[i] == 1, "%s appears %u times: %s", fz_names[i],
                  (unsigned) lq.count[i], fz_show(loc.data, loc.len));

        if (i == 0) {
            fz_assert(lq.value[0].len == NGX_HTTP_AFFILIATE_ULID_LEN
                      && ngx_memcmp(lq.value[0].data, click_id,
                                    NGX_HTTP_AFFILIATE_ULID_LEN) == 0,
                      "click_id value");

        } else if (i == 2) {
            fz_assert(lq.value[2].len == 9
                      && ngx_memcmp(lq.value[2].data, "affiliate", 9) == 0,
                      "utm_medium value");

        } else {
            v.data = ngx_pnalloc(pool, lq.value[i].len + 1);

            fz_assert(fz_form_decode(lq.value[i].data,
                                     lq.value[i].data + lq.value[i].len,
                                     v.data, &v.len, 1)
                      == 0, "%s is not well-formed", fz_names[i]);

            fz_assert(v.len == want->len
                      && ngx_memcmp(v.data, want->data, v.len) == 0,
                      "%s decodes to \"%s\"", fz_names[i],
                      fz_show(v.data, v.len));
        }
    }

done:

    ngx_destroy_pool(pool);

    return 0;
}
