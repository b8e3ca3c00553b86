
/*
 * Copyright (C) ngx_http_affiliate_module authors
 *
 * Bots, link-preview fetchers, HEAD and prefetch requests: who is not a
 * person clicking.  See docs/attribution.md.
 */


#include "ngx_http_affiliate_module.h"


#define NGX_HTTP_AFFILIATE_BOT_UA_SCAN  512

/* the prefetch and preview headers (ngx_http_affiliate_purpose) */
#define NGX_HTTP_AFFILIATE_PREFETCH      1      /* any of them */
#define NGX_HTTP_AFFILIATE_SEC_PREFETCH  2      /* Sec-Purpose: prefetch */

/* a worker's verdicts on the User-Agents it saw last */
#define NGX_HTTP_AFFILIATE_BOT_CACHE     256
#define NGX_HTTP_AFFILIATE_BOT_CACHE_UA  252


typedef struct {
    uint16_t                         len;      /* 0: empty */
    u_char                           bot;
    u_char                           ua[NGX_HTTP_AFFILIATE_BOT_CACHE_UA + 1];
} ngx_http_affiliate_bot_seen_t;


typedef struct {
    ngx_str_t                        name;
    ngx_str_t                        value;     /* lower case */
    ngx_uint_t                       bits;
} ngx_http_affiliate_purpose_name_t;


static ngx_uint_t ngx_http_affiliate_purpose_get(ngx_http_request_t *r);
static ngx_uint_t ngx_http_affiliate_purpose(ngx_http_request_t *r,
    ngx_uint_t enough);
static ngx_uint_t ngx_http_affiliate_bot_scan(u_char *p, u_char *last);


/*
 * Link-preview fetchers and crawlers, matched case-insensitively as
 * substrings of the User-Agent.  A bare "bot" is not enough ("Cubot"
 * phones): the "...bot" names below are.  One pass over the header finds
 * them all: names are indexed by their first letter and checked only
 * where that letter and the next one occur, which costs less than a
 * memmem() per name or an interpreted PCRE2 alternation.
 * affiliate_bot_ua adds regexes.
 */

static ngx_str_t  ngx_http_affiliate_bot_names[] = {
    ngx_string("facebookexternalhit"),
    ngx_string("whatsapp"),
    ngx_string("slack-imgproxy"),
    ngx_string("pinterest"),
    ngx_string("skypeuripreview"),
    ngx_string("embedly"),
    ngx_string("iframely"),
    ngx_string("google-pagerenderer"),
    ngx_string("ia_archiver"),
    ngx_string("crawler"),
    ngx_string("spider"),
    ngx_string("facebot"),
    ngx_string("twitterbot"),
    ngx_string("slackbot"),
    ngx_string("discordbot"),
    ngx_string("telegrambot"),
    ngx_string("linkedinbot"),
    ngx_string("googlebot"),
    ngx_string("bingbot"),
    ngx_string("applebot"),
    ngx_string("redditbot"),
    ngx_string("yandexbot"),
    ngx_string("duckduckbot"),
    ngx_string("petalbot"),
    ngx_string("bot/"),
    ngx_string("bot;"),
    ngx_null_string
};


static ngx_http_affiliate_purpose_name_t  ngx_http_affiliate_purposes[] = {
    { ngx_string("Sec-Purpose"), ngx_string("prefetch"),
      NGX_HTTP_AFFILIATE_PREFETCH|NGX_HTTP_AFFILIATE_SEC_PREFETCH },
    { ngx_string("Purpose"), ngx_string("prefetch"),
      NGX_HTTP_AFFILIATE_PREFETCH },
    { ngx_string("X-Moz"), ngx_string("prefetch"),
      NGX_HTTP_AFFILIATE_PREFETCH },
    { ngx_string("X-Purpose"), ngx_string("preview"),
      NGX_HTTP_AFFILIATE_PREFETCH },
    { ngx_null_string, ngx_null_string, 0 }
};


/* the names above by their length (each has a length of its own) */
#define NGX_HTTP_AFFILIATE_PURPOSE_LEN  (sizeof("Sec-Purpose") - 1)

static ngx_http_affiliate_purpose_name_t  *ngx_http_affiliate_purpose_by_len[
    NGX_HTTP_AFFILIATE_PURPOSE_LEN + 1];


/* per first letter, the names above (lower case), NULL-terminated */
#define NGX_HTTP_AFFILIATE_BOT_BUCKET  8

static ngx_str_t  *ngx_http_affiliate_bot_index[26]
                                                [NGX_HTTP_AFFILIATE_BOT_BUCKET];
/* per first letter, a bit for each second letter that some name has */
static uint32_t    ngx_http_affiliate_bot_pairs[26];
static ngx_uint_t  ngx_http_affiliate_bot_indexed;


static void
ngx_http_affiliate_bot_index_build(void)
{
    ngx_str_t                          *name;
    ngx_uint_t                          c, k;
    ngx_http_affiliate_purpose_name_t  *pt;

    for (pt = ngx_http_affiliate_purposes; pt->name.len; pt++) {
        ngx_http_affiliate_purpose_by_len[pt->name.len] = pt;
    }

    for (name = ngx_http_affiliate_bot_names; name->len; name++) {
        c = name->data[0] - 'a';

        for (k = 0; ngx_http_affiliate_bot_index[c][k]; k++) {
            /* void */
        }

        /* the table above fills a bucket with 4 names at most */
        ngx_http_affiliate_bot_index[c][k] = name;
        ngx_http_affiliate_bot_pairs[c] |= 1u << (name->data[1] - 'a');
    }

    ngx_http_affiliate_bot_indexed = 1;
}


/*
 * The User-Agent's hash, unsalted, made once a request: the bot cache
 * and the unique-click key (attr.c, with the salt) both use it.
 */

uint64_t
ngx_http_affiliate_ua_hash(ngx_http_request_t *r)
{
    uint64_t                   h;
    ngx_str_t                 *ua;
    ngx_http_affiliate_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_affiliate_module);

    if (ctx && ctx->ua_hashed) {
        return ctx->ua_hash;
    }

    ua = r->headers_in.user_agent ? &r->headers_in.user_agent->value : NULL;

    h = ngx_http_affiliate_hash(0, ua ? ua->data : NULL, ua ? ua->len : 0);

    if (ctx) {
        ctx->ua_hash = h;
        ctx->ua_hashed = 1;
    }

    return h;
}


/*
 * A bot, a prefetch or a HEAD: why this is not a person's click, or
 * NULL.  The verdict on a User-Agent depends only on its bytes when no
 * affiliate_bot_ua is set: each worker keeps the last verdicts (exact
 * copies of the headers, direct-mapped by a hash), so a browser seen
 * before costs a hash and a compare instead of the scan.
 */

char *
ngx_http_affiliate_bot(ngx_http_request_t *r,
    ngx_http_affiliate_main_conf_t *amcf)
{
    ngx_str_t                       ua;
    ngx_uint_t                      bot;
    ngx_http_affiliate_bot_seen_t  *seen;

    static ngx_http_affiliate_bot_seen_t
                          cache[NGX_HTTP_AFFILIATE_BOT_CACHE];

    if (r->method == NGX_HTTP_HEAD) {
        return "head";
    }

    if (ngx_http_affiliate_purpose_get(r) & NGX_HTTP_AFFILIATE_PREFETCH) {
        return "prefetch";
    }

    if (r->headers_in.user_agent == NULL) {
        return "no_ua";
    }

    if (!ngx_http_affiliate_bot_indexed) {
        ngx_http_affiliate_bot_index_build();
    }

    /* bots name themselves early; a long header costs no more than this */

    ua = r->headers_in.user_agent->value;
    ua.len = ngx_min(ua.len, NGX_HTTP_AFFILIATE_BOT_UA_SCAN);

    seen = NULL;

    if (amcf->bot_ua == NULL
        && ua.len && ua.len <= NGX_HTTP_AFFILIATE_BOT_CACHE_UA)
    {
        /* not cut: the whole header's hash */

        seen = &cache[ngx_http_affiliate_ua_hash(r)
                      % NGX_HTTP_AFFILIATE_BOT_CACHE];

        if (seen->len == ua.len && ngx_memcmp(seen->ua, ua.data, ua.len) == 0)
        {
            return seen->bot ? "ua" : NULL;
        }
    }

    bot = ngx_http_affiliate_bot_scan(ua.data, ua.data + ua.len);

    if (seen) {
        seen->len = (uint16_t) ua.len;
        seen->bot = (u_char) bot;
        ngx_memcpy(seen->ua, ua.data, ua.len);
    }

    if (bot) {
        return "ua";
    }

    if (amcf->bot_ua
        && ngx_regex_exec_array(amcf->bot_ua, &ua, r->connection->log)
           == NGX_OK)
    {
        return "ua";
    }

    return NULL;
}


/*
 * Whether a built-in name occurs in [p, last).  The first two bytes of
 * every name are letters: "| 0x20" lowers them, and a pair no name
 * starts with is passed over at once.
 */

static ngx_uint_t
ngx_http_affiliate_bot_scan(u_char *p, u_char *last)
{
    u_char      c, d;
    ngx_str_t  **name;

    for ( /* void */ ; p + 1 < last; p++) {
        c = (u_char) ((*p | 0x20) - 'a');
        d = (u_char) ((p[1] | 0x20) - 'a');

        if (c >= 26 || d >= 26
            || !(ngx_http_affiliate_bot_pairs[c] & (1u << d)))
        {
            continue;
        }

        for (name = ngx_http_affiliate_bot_index[c]; *name; name++) {
            if ((u_char) (p[1] | 0x20) == (*name)->data[1]
                && (size_t) (last - p) >= (*name)->len
                && ngx_strncasecmp(p + 2, (*name)->data + 2,
                                   (*name)->len - 2)
                   == 0)
            {
                return 1;
            }
        }
    }

    return 0;
}


/* the prefetch headers' bits, found once a request (speculative, bot) */

static ngx_uint_t
ngx_http_affiliate_purpose_get(ngx_http_request_t *r)
{
    ngx_uint_t                 found;
    ngx_http_affiliate_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_affiliate_module);

    if (ctx && ctx->purpose_done) {
        return ctx->purpose;
    }

    found = ngx_http_affiliate_purpose(r, NGX_HTTP_AFFILIATE_PREFETCH
                                          |NGX_HTTP_AFFILIATE_SEC_PREFETCH);

    if (ctx) {
        ctx->purpose = found;
        ctx->purpose_done = 1;
    }

    return found;
}


/*
 * The prefetch and preview headers, in one pass over the request's
 * headers: PREFETCH when any of Sec-Purpose, Purpose or X-Moz has
 * "prefetch" or X-Purpose has "preview", SEC_PREFETCH when Sec-Purpose
 * has "prefetch".  Stops once the bits in "enough" are found.
 */

static ngx_uint_t
ngx_http_affiliate_purpose(ngx_http_request_t *r, ngx_uint_t enough)
{
    ngx_uint_t                          i, found;
    ngx_list_part_t                    *part;
    ngx_table_elt_t                    *h;
    ngx_http_affiliate_purpose_name_t  *pt;

    if (!ngx_http_affiliate_bot_indexed) {
        ngx_http_affiliate_bot_index_build();
    }

    found = 0;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return found;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len > NGX_HTTP_AFFILIATE_PURPOSE_LEN) {
            continue;
        }

        pt = ngx_http_affiliate_purpose_by_len[h[i].key.len];

        if (pt != NULL
            && (found & pt->bits) != pt->bits
            && ngx_strncasecmp(h[i].key.data, pt->name.data, pt->name.len)
               == 0
            && ngx_strlcasestrn(h[i].value.data,
                                h[i].value.data + h[i].value.len,
                                pt->value.data, pt->value.len - 1)
               != NULL)
        {
            found |= pt->bits;

            if ((found & enough) == enough) {
                return found;
            }
        }
    }
}



char *
ngx_http_affiliate_bot_ua(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_affiliate_main_conf_t *amcf = conf;

    ngx_str_t            *value;
    ngx_regex_elt_t      *re;
    ngx_regex_compile_t   rc;
    u_char                errstr[NGX_MAX_CONF_ERRSTR];

    value = cf->args->elts;

    if (amcf->bot_ua == NULL) {
        amcf->bot_ua = ngx_array_create(cf->pool, 4, sizeof(ngx_regex_elt_t));
        if (amcf->bot_ua == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    ngx_memzero(&rc, sizeof(ngx_regex_compile_t));

    rc.pattern = value[1];
    rc.pool = cf->pool;
    rc.options = NGX_REGEX_CASELESS;
    rc.err.len = NGX_MAX_CONF_ERRSTR;
    rc.err.data = errstr;

    if (ngx_regex_compile(&rc) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%V", &rc.err);
        return NGX_CONF_ERROR;
    }

    re = ngx_array_push(amcf->bot_ua);
    if (re == NULL) {
        return NGX_CONF_ERROR;
    }

    re->regex = rc.regex;
    re->name = value[1].data;

    return NGX_CONF_OK;
}


/*
 * A speculative request: "Sec-Purpose: prefetch" (or prefetch;prerender).
 * Speculation Rules send it with "Sec-Fetch-Mode: navigate": the browser
 * would keep our redirect and the person's click would never reach us.
 * <link rel=prefetch> sends it with no-cors: its redirect is no-store and
 * never reused, but it makes the browser fetch the shop's page with a bot
 * click id.  Both are declined.
 */

ngx_uint_t
ngx_http_affiliate_speculative(ngx_http_request_t *r)
{
    return (ngx_http_affiliate_purpose_get(r)
            & NGX_HTTP_AFFILIATE_SEC_PREFETCH) ? 1 : 0;
}


/* affiliate_speculative off | 4xx or 5xx status */

char *
ngx_http_affiliate_speculation(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    char  *p = conf;

    ngx_int_t    n;
    ngx_str_t   *value;
    ngx_uint_t  *status;

    status = (ngx_uint_t *) (p + cmd->offset);

    if (*status != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        *status = 0;
        return NGX_CONF_OK;
    }

    n = ngx_atoi(value[1].data, value[1].len);

    if (n < NGX_HTTP_BAD_REQUEST || n > 599) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid status \"%V\", expected \"off\" or a "
                           "4xx or 5xx status such as 503", &value[1]);
        return NGX_CONF_ERROR;
    }

    *status = n;

    return NGX_CONF_OK;
}
