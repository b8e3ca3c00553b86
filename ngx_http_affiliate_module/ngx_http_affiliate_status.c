
/*
 * Copyright (C) ngx_http_affiliate_module authors
 *
 * affiliate_status: a zone's counters as JSON, or in Prometheus text
 * exposition format 0.0.4.  See docs/log-format.md.
 */


#include "ngx_http_affiliate_module.h"


#define ngx_http_affiliate_load(v)  __atomic_load_n(&(v), __ATOMIC_RELAXED)

/* the creator and campaign pairs listed by default, and at most */
#define NGX_HTTP_AFFILIATE_TOP_DEFAULT  10

/* a pair's bytes beside its names: JSON, and each Prometheus line */
#define NGX_HTTP_AFFILIATE_PAIR_JSON    512
#define NGX_HTTP_AFFILIATE_PAIR_LINE    160

/* the Prometheus lines of a pair: 5 counters and the currencies */
#define NGX_HTTP_AFFILIATE_PAIR_LINES   (5 + NGX_HTTP_AFFILIATE_STAT_CURRENCIES)


typedef struct {
    ngx_http_affiliate_zone_t     *zone;
    ngx_http_affiliate_sh_t       *sh;
    ngx_http_affiliate_stat_t    **top;
    ngx_uint_t                     ntop;
    unsigned                       prometheus:1;
} ngx_http_affiliate_status_t;


static ngx_int_t ngx_http_affiliate_status_prepare(ngx_http_request_t *r,
    ngx_http_affiliate_status_t *st);
static size_t ngx_http_affiliate_status_size(ngx_http_affiliate_status_t *st);
static u_char *ngx_http_affiliate_status_json(u_char *p,
    ngx_http_affiliate_status_t *st);
static u_char *ngx_http_affiliate_json_pair(u_char *p,
    ngx_http_affiliate_stat_t *s);
static u_char *ngx_http_affiliate_json_revenue(u_char *p,
    ngx_http_affiliate_revenue_t *rv, ngx_uint_t n);
static u_char *ngx_http_affiliate_status_prometheus(u_char *p,
    ngx_http_affiliate_status_t *st);
static u_char *ngx_http_affiliate_prom_pair(u_char *p, ngx_str_t *zone,
    ngx_http_affiliate_stat_t *s);
static u_char *ngx_http_affiliate_prom_label(u_char *p, u_char *v,
    size_t len);
static u_char *ngx_http_affiliate_amount(u_char *p,
    ngx_http_affiliate_revenue_t *rv);


/* the names of the counters from NGX_HTTP_AFFILIATE_GEO_MISSES on */
static char  *ngx_http_affiliate_counters[] = {
    "clicks", "misses", "dropped", "geo_misses", "unique_clicks",
    "bot_clicks", "landings", "conversions", "duplicate_orders", "rejected",
    "invalid_cookies", "unauthenticated", "invalid_conversions", "not_yet",
    "expired", "capped", "cap_table_full"
};

/* their HELP text in Prometheus, in the same order */
static char  *ngx_http_affiliate_counters_help[] = {
    "Click records by people (bots not included).",
    "Miss records: no link and no rule matched.",
    "Records not kept because the ring was full.",
    "Geo lookups that failed.",
    "Clicks and landings by people that were unique.",
    "Clicks and landings recognised as bots or prefetches.",
    "Landing records by people.",
    "Conversions that are not duplicates.",
    "Conversions with an order id seen before.",
    "Redirects refused by the open-redirect guard.",
    "Attribution cookies that were tampered with, expired or foreign.",
    "Postbacks refused as unauthenticated.",
    "Conversions refused as invalid.",
    "Clicks by people on links before their from= time.",
    "Clicks by people on links after their until= time.",
    "Clicks by people on links whose max_clicks= was used up.",
    "Clicks on capped links served uncapped: no room in caps=."
};

/* the per-pair counters: name, HELP, offset in the entry */
static struct {
    char    *name;
    char    *help;
    size_t   offset;
}  ngx_http_affiliate_pair_counters[] = {
    { "clicks", "Clicks by people, per creator and campaign.",
      offsetof(ngx_http_affiliate_stat_t, clicks) },
    { "landings", "Landings by people, per creator and campaign.",
      offsetof(ngx_http_affiliate_stat_t, landings) },
    { "unique_clicks", "Unique clicks and landings, per creator and campaign.",
      offsetof(ngx_http_affiliate_stat_t, unique) },
    { "bot_clicks", "Bot clicks and landings, per creator and campaign.",
      offsetof(ngx_http_affiliate_stat_t, bots) },
    { "conversions", "Attributed conversions, per creator and campaign.",
      offsetof(ngx_http_affiliate_stat_t, conversions) },
    { NULL, NULL, 0 }
};


ngx_int_t
ngx_http_affiliate_status_handler(ngx_http_request_t *r)
{
    size_t                        len;
    ngx_int_t                     rc;
    ngx_buf_t                    *b;
    ngx_http_affiliate_status_t   st;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    rc = ngx_http_affiliate_status_prepare(r, &st);
    if (rc != NGX_OK) {
        return rc;
    }

    len = ngx_http_affiliate_status_size(&st);

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (st.prometheus) {
        b->last = ngx_http_affiliate_status_prometheus(b->last, &st);
        ngx_str_set(&r->headers_out.content_type,
                    "text/plain; version=0.0.4; charset=utf-8");

    } else {
        b->last = ngx_http_affiliate_status_json(b->last, &st);
        ngx_str_set(&r->headers_out.content_type, "application/json");
    }

    if (ngx_http_affiliate_add_header(r, "Cache-Control",
                                      &ngx_http_affiliate_no_store)
        == NULL)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_affiliate_send_body(r, NGX_HTTP_OK, b);
}


/*
 * The format: Prometheus for ?format=prometheus, or for an Accept that
 * asks for text/plain (a Prometheus scrape) and not for JSON; else JSON.
 * ?top=N: how many creator and campaign pairs (JSON: 10 by default,
 * Prometheus: all of them).
 */

static ngx_int_t
ngx_http_affiliate_status_prepare(ngx_http_request_t *r,
    ngx_http_affiliate_status_t *st)
{
    ngx_int_t                       n;
    ngx_str_t                       v;
    ngx_table_elt_t                *accept;
    ngx_http_affiliate_loc_conf_t  *alcf;

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_affiliate_module);

    ngx_memzero(st, sizeof(ngx_http_affiliate_status_t));

    st->zone = alcf->status_zone;
    st->sh = st->zone->sh;

    if (ngx_http_arg(r, (u_char *) "format", 6, &v) == NGX_OK) {
        if (v.len == 10 && ngx_strncmp(v.data, "prometheus", 10) == 0) {
            st->prometheus = 1;

        } else if (!(v.len == 4 && ngx_strncmp(v.data, "json", 4) == 0)) {
            return NGX_HTTP_BAD_REQUEST;
        }

    } else {
        accept = r->headers_in.accept;

        if (accept
            && ngx_strlcasestrn(accept->value.data,
                                accept->value.data + accept->value.len,
                                (u_char *) "text/plain", 10 - 1)
            && !ngx_strlcasestrn(accept->value.data,
                                 accept->value.data + accept->value.len,
                                 (u_char *) "application/json", 16 - 1))
        {
            st->prometheus = 1;
        }
    }

    n = st->prometheus ? (ngx_int_t) st->sh->stats.n
                       : NGX_HTTP_AFFILIATE_TOP_DEFAULT;

    if (ngx_http_arg(r, (u_char *) "top", 3, &v) == NGX_OK) {
        n = ngx_atoi(v.data, v.len);

        if (n == NGX_ERROR) {
            return NGX_HTTP_BAD_REQUEST;
        }
    }

    st->ntop = ngx_http_affiliate_stats_top(st->sh, r->pool, (ngx_uint_t) n,
                                            &st->top);

    return NGX_OK;
}


/* the exact bound of the answer: names escaped at most 6 or 2 times */

static size_t
ngx_http_affiliate_status_size(ngx_http_affiliate_status_t *st)
{
    size_t                      len, names;
    ngx_uint_t                  i;
    ngx_http_affiliate_stat_t  *s;

    /* counters, records, ring and revenue, with HELP lines */

    len = 16384 + (NGX_HTTP_AFFILIATE_NCOUNTERS + 20) * st->zone->name.len
          + NGX_HTTP_AFFILIATE_CURRENCIES * (st->zone->name.len + 96);

    for (i = 0; i <= st->ntop; i++) {
        s = i < st->ntop ? st->top[i]
                         : (ngx_http_affiliate_stat_t *) st->sh->stats.entries;

        names = s->creator_len + s->campaign_len;

        len += st->prometheus
               ? NGX_HTTP_AFFILIATE_PAIR_LINES
                 * (2 * names + st->zone->name.len
                    + NGX_HTTP_AFFILIATE_PAIR_LINE)
               : 6 * names + NGX_HTTP_AFFILIATE_PAIR_JSON;
    }

    return len;
}


static u_char *
ngx_http_affiliate_status_json(u_char *p, ngx_http_affiliate_status_t *st)
{
    uint64_t                   head, used, slots, cap;
    ngx_uint_t                 i;
    ngx_msec_t                 last;
    ngx_http_affiliate_sh_t   *sh;

    sh = st->sh;

    ngx_http_affiliate_ring_usage(sh, &head, &used, &slots, &cap);
    last = ngx_http_affiliate_load(sh->last_flush);

    p = ngx_sprintf(p, "{\"zone\":\"%V\"", &st->zone->name);

    p = ngx_sprintf(p, ",\"clicks\":%uL,\"misses\":%uL",
                    ngx_http_affiliate_load(
                        sh->counters[NGX_HTTP_AFFILIATE_CLICKS].value),
                    ngx_http_affiliate_load(
                        sh->counters[NGX_HTTP_AFFILIATE_MISSES].value));

    p = ngx_sprintf(p, ",\"records\":{\"accepted\":%uL,\"written\":%uL"
                       ",\"dropped\":%uL,\"lost\":%uL}",
                    head, ngx_http_affiliate_load(sh->written),
                    ngx_http_affiliate_load(
                        sh->counters[NGX_HTTP_AFFILIATE_DROPPED].value),
                    ngx_http_affiliate_load(sh->lost));

    p = ngx_sprintf(p, ",\"ring\":{\"capacity\":%uL,\"used\":%uL"
                       ",\"size\":%uL,\"used_bytes\":%uL"
                       ",\"slots\":%uL,\"used_slots\":%uL"
                       ",\"slot_size\":%uz}",
                    cap, used,
                    sh->nslots * NGX_HTTP_AFFILIATE_SLOT_BYTES,
                    slots * NGX_HTTP_AFFILIATE_SLOT_BYTES,
                    sh->nslots, slots,
                    (size_t) NGX_HTTP_AFFILIATE_SLOT_SIZE);

    for (i = NGX_HTTP_AFFILIATE_GEO_MISSES; i < NGX_HTTP_AFFILIATE_NCOUNTERS;
         i++)
    {
        p = ngx_sprintf(p, ",\"%s\":%uL", ngx_http_affiliate_counters[i],
                        ngx_http_affiliate_load(sh->counters[i].value));
    }

    p = ngx_cpymem(p, ",\"revenue\":", sizeof(",\"revenue\":") - 1);
    p = ngx_http_affiliate_json_revenue(p, sh->revenue,
                                        NGX_HTTP_AFFILIATE_CURRENCIES);

    /* the top pairs, then the "other" bucket */

    p = ngx_sprintf(p, ",\"creators\":{\"capacity\":%uL,\"top\":[",
                    sh->stats.n ? sh->stats.n - 1 : 0);

    for (i = 0; i < st->ntop; i++) {
        if (i) {
            *p++ = ',';
        }

        p = ngx_http_affiliate_json_pair(p, st->top[i]);
    }

    p = ngx_cpymem(p, "],\"other\":", sizeof("],\"other\":") - 1);
    p = ngx_http_affiliate_json_pair(p,
                              (ngx_http_affiliate_stat_t *) sh->stats.entries);
    *p++ = '}';

    p = ngx_sprintf(p, ",\"bytes_written\":%uL",
                    ngx_http_affiliate_load(sh->bytes));

    if (last) {
        p = ngx_cpymem(p, ",\"last_flush\":\"",
                       sizeof(",\"last_flush\":\"") - 1);
        p = ngx_http_affiliate_time_iso(p, last / 1000, last % 1000);
        return ngx_cpymem(p, "\"}\n", 3);
    }

    return ngx_cpymem(p, ",\"last_flush\":null}\n",
                      sizeof(",\"last_flush\":null}\n") - 1);
}


static u_char *
ngx_http_affiliate_json_pair(u_char *p, ngx_http_affiliate_stat_t *s)
{
    ngx_uint_t  truncated;

    truncated = 0;

    if (s->creator_len) {
        p = ngx_cpymem(p, "{\"creator\":", sizeof("{\"creator\":") - 1);
        p = ngx_http_affiliate_json_str(p, p + 6 * s->creator_len + 2,
                                        s->creator, s->creator_len,
                                        &truncated);
        p = ngx_cpymem(p, ",\"campaign\":", sizeof(",\"campaign\":") - 1);
        p = ngx_http_affiliate_json_str(p, p + 6 * s->campaign_len + 2,
                                        s->campaign, s->campaign_len,
                                        &truncated);
        *p++ = ',';

    } else {
        *p++ = '{';
    }

    p = ngx_sprintf(p, "\"clicks\":%uL,\"landings\":%uL,\"unique_clicks\":%uL"
                       ",\"bot_clicks\":%uL,\"conversions\":%uL,\"revenue\":",
                    ngx_http_affiliate_load(s->clicks),
                    ngx_http_affiliate_load(s->landings),
                    ngx_http_affiliate_load(s->unique),
                    ngx_http_affiliate_load(s->bots),
                    ngx_http_affiliate_load(s->conversions));

    p = ngx_http_affiliate_json_revenue(p, s->revenue,
                                        NGX_HTTP_AFFILIATE_STAT_CURRENCIES);
    *p++ = '}';

    return p;
}


/* {"EUR":"18340.5000",...}: exact, 4 fraction digits */

static u_char *
ngx_http_affiliate_json_revenue(u_char *p, ngx_http_affiliate_revenue_t *rv,
    ngx_uint_t n)
{
    ngx_uint_t  i, k;
    uint32_t    code;

    *p++ = '{';

    for (i = 0, k = 0; i < n; i++) {
        code = ngx_http_affiliate_load(rv[i].code);

        if (code == 0) {
            continue;
        }

        p = ngx_sprintf(p, "%s\"%c%c%c\":\"", k++ ? "," : "",
                        (int) (code >> 16) & 0xff, (int) (code >> 8) & 0xff,
                        (int) code & 0xff);
        p = ngx_http_affiliate_amount(p, &rv[i]);
        *p++ = '"';
    }

    *p++ = '}';

    return p;
}


static u_char *
ngx_http_affiliate_amount(u_char *p, ngx_http_affiliate_revenue_t *rv)
{
    uint64_t  units, frac;

    units = ngx_http_affiliate_load(rv->units);
    frac = ngx_http_affiliate_load(rv->frac);

    return ngx_sprintf(p, "%uL.%04uL", units + frac / 10000, frac % 10000);
}


/*
 * Text exposition format 0.0.4: every counter as affiliate_NAME_total
 * with the zone as a label; ring figures as gauges; per creator and
 * campaign, affiliate_creator_NAME_total.  The "other" bucket has empty
 * creator and campaign labels.
 */

static u_char *
ngx_http_affiliate_status_prometheus(u_char *p,
    ngx_http_affiliate_status_t *st)
{
    uint32_t                    code;
    uint64_t                    head, used, slots, cap, *n;
    ngx_uint_t                  i, k;
    ngx_msec_t                  last;
    ngx_str_t                  *z;
    ngx_http_affiliate_sh_t    *sh;
    ngx_http_affiliate_stat_t  *other, *pair;

    sh = st->sh;
    z = &st->zone->name;

    ngx_http_affiliate_ring_usage(sh, &head, &used, &slots, &cap);
    last = ngx_http_affiliate_load(sh->last_flush);

    for (i = 0; i < NGX_HTTP_AFFILIATE_NCOUNTERS; i++) {
        p = ngx_sprintf(p, "# HELP affiliate_%s_total %s\n"
                           "# TYPE affiliate_%s_total counter\n"
                           "affiliate_%s_total{zone=\"%V\"} %uL\n",
                        ngx_http_affiliate_counters[i],
                        ngx_http_affiliate_counters_help[i],
                        ngx_http_affiliate_counters[i],
                        ngx_http_affiliate_counters[i], z,
                        ngx_http_affiliate_load(sh->counters[i].value));
    }

    p = ngx_sprintf(p,
        "# HELP affiliate_records_accepted_total Records that got a seq.\n"
        "# TYPE affiliate_records_accepted_total counter\n"
        "affiliate_records_accepted_total{zone=\"%V\"} %uL\n"
        "# HELP affiliate_records_written_total Records written to the log.\n"
        "# TYPE affiliate_records_written_total counter\n"
        "affiliate_records_written_total{zone=\"%V\"} %uL\n"
        "# HELP affiliate_records_lost_total Records given up after a "
        "worker died while writing one.\n"
        "# TYPE affiliate_records_lost_total counter\n"
        "affiliate_records_lost_total{zone=\"%V\"} %uL\n"
        "# HELP affiliate_bytes_written_total Bytes written to the log.\n"
        "# TYPE affiliate_bytes_written_total counter\n"
        "affiliate_bytes_written_total{zone=\"%V\"} %uL\n"
        "# HELP affiliate_ring_capacity Records of the average size "
        "written so far the ring can hold.\n"
        "# TYPE affiliate_ring_capacity gauge\n"
        "affiliate_ring_capacity{zone=\"%V\"} %uL\n"
        "# HELP affiliate_ring_used Records waiting to be written.\n"
        "# TYPE affiliate_ring_used gauge\n"
        "affiliate_ring_used{zone=\"%V\"} %uL\n"
        "# HELP affiliate_ring_size_bytes Bytes of the ring.\n"
        "# TYPE affiliate_ring_size_bytes gauge\n"
        "affiliate_ring_size_bytes{zone=\"%V\"} %uL\n"
        "# HELP affiliate_ring_used_bytes Bytes of the ring holding "
        "records waiting to be written.\n"
        "# TYPE affiliate_ring_used_bytes gauge\n"
        "affiliate_ring_used_bytes{zone=\"%V\"} %uL\n"
        "# HELP affiliate_last_flush_timestamp_seconds Time of the last "
        "successful write.\n"
        "# TYPE affiliate_last_flush_timestamp_seconds gauge\n"
        "affiliate_last_flush_timestamp_seconds{zone=\"%V\"} %uM.%03uM\n",
        z, head, z, ngx_http_affiliate_load(sh->written),
        z, ngx_http_affiliate_load(sh->lost),
        z, ngx_http_affiliate_load(sh->bytes),
        z, cap, z, used,
        z, sh->nslots * NGX_HTTP_AFFILIATE_SLOT_BYTES,
        z, slots * NGX_HTTP_AFFILIATE_SLOT_BYTES,
        z, last / 1000, last % 1000);

    p = ngx_cpymem(p,
        "# HELP affiliate_revenue_total Revenue of conversions that are not "
        "duplicates, per currency.\n"
        "# TYPE affiliate_revenue_total counter\n",
        sizeof("# HELP affiliate_revenue_total Revenue of conversions that "
               "are not duplicates, per currency.\n"
               "# TYPE affiliate_revenue_total counter\n") - 1);

    for (i = 0; i < NGX_HTTP_AFFILIATE_CURRENCIES; i++) {
        code = ngx_http_affiliate_load(sh->revenue[i].code);

        if (code) {
            p = ngx_sprintf(p, "affiliate_revenue_total{zone=\"%V\","
                               "currency=\"%c%c%c\"} ",
                            z, (int) (code >> 16) & 0xff,
                            (int) (code >> 8) & 0xff, (int) code & 0xff);
            p = ngx_http_affiliate_amount(p, &sh->revenue[i]);
            *p++ = '\n';
        }
    }

    /* per creator and campaign: one family at a time, as the format asks */

    other = (ngx_http_affiliate_stat_t *) sh->stats.entries;

    for (k = 0; ngx_http_affiliate_pair_counters[k].name; k++) {
        p = ngx_sprintf(p, "# HELP affiliate_creator_%s_total %s\n"
                           "# TYPE affiliate_creator_%s_total counter\n",
                        ngx_http_affiliate_pair_counters[k].name,
                        ngx_http_affiliate_pair_counters[k].help,
                        ngx_http_affiliate_pair_counters[k].name);

        for (i = 0; i <= st->ntop; i++) {
            pair = i < st->ntop ? st->top[i] : other;

            p = ngx_sprintf(p, "affiliate_creator_%s_total",
                            ngx_http_affiliate_pair_counters[k].name);
            p = ngx_http_affiliate_prom_pair(p, z, pair);
            n = (uint64_t *) ((u_char *) pair
                              + ngx_http_affiliate_pair_counters[k].offset);
            p = ngx_sprintf(p, "} %uL\n", ngx_http_affiliate_load(*n));
        }
    }

    p = ngx_cpymem(p,
        "# HELP affiliate_creator_revenue_total Attributed revenue, per "
        "creator, campaign and currency.\n"
        "# TYPE affiliate_creator_revenue_total counter\n",
        sizeof("# HELP affiliate_creator_revenue_total Attributed revenue, "
               "per creator, campaign and currency.\n"
               "# TYPE affiliate_creator_revenue_total counter\n") - 1);

    for (i = 0; i <= st->ntop; i++) {
        ngx_http_affiliate_stat_t  *s = i < st->ntop ? st->top[i] : other;

        for (k = 0; k < NGX_HTTP_AFFILIATE_STAT_CURRENCIES; k++) {
            code = ngx_http_affiliate_load(s->revenue[k].code);

            if (code == 0) {
                continue;
            }

            p = ngx_cpymem(p, "affiliate_creator_revenue_total",
                           sizeof("affiliate_creator_revenue_total") - 1);
            p = ngx_http_affiliate_prom_pair(p, z, s);
            p = ngx_sprintf(p, ",currency=\"%c%c%c\"} ",
                            (int) (code >> 16) & 0xff,
                            (int) (code >> 8) & 0xff, (int) code & 0xff);
            p = ngx_http_affiliate_amount(p, &s->revenue[k]);
            *p++ = '\n';
        }
    }

    return p;
}


/* {zone="aff",creator="anna",campaign="summer" (the brace left open) */

static u_char *
ngx_http_affiliate_prom_pair(u_char *p, ngx_str_t *zone,
    ngx_http_affiliate_stat_t *s)
{
    p = ngx_sprintf(p, "{zone=\"%V\",creator=\"", zone);
    p = ngx_http_affiliate_prom_label(p, s->creator, s->creator_len);
    p = ngx_cpymem(p, "\",campaign=\"", sizeof("\",campaign=\"") - 1);
    p = ngx_http_affiliate_prom_label(p, s->campaign, s->campaign_len);
    *p++ = '"';

    return p;
}


/* a label value: backslash, double quote and newline are escaped */

static u_char *
ngx_http_affiliate_prom_label(u_char *p, u_char *v, size_t len)
{
    while (len--) {
        switch (*v) {
        case '\\':
        case '"':
            *p++ = '\\';
            *p++ = *v;
            break;
        case '\n':
            *p++ = '\\';
            *p++ = 'n';
            break;
        default:
            *p++ = *v;
        }

        v++;
    }

    return p;
}
