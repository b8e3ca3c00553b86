
/*
 * Copyright (C) ngx_http_affiliate_module authors
 */


#ifndef _NGX_HTTP_AFFILIATE_MODULE_H_INCLUDED_
#define _NGX_HTTP_AFFILIATE_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


/* the ring's unit: a record takes whole slots of this many data bytes */
#define NGX_HTTP_AFFILIATE_SLOT_SIZE     256
/* and a slot's header (ngx_http_affiliate_slot_t) */
#define NGX_HTTP_AFFILIATE_SLOT_BYTES    (NGX_HTTP_AFFILIATE_SLOT_SIZE + 16)
#define NGX_HTTP_AFFILIATE_MIN_SIZE      (512 * 1024)

/* fields written by different workers are kept this far apart */
#define NGX_HTTP_AFFILIATE_LINE          128

/* the fewest entries a clicks=, unique= or orders= table may have */
#define NGX_HTTP_AFFILIATE_TABLE_MIN     64
#define NGX_HTTP_AFFILIATE_ULID_LEN      26

/* link table limits, in bytes */
#define NGX_HTTP_AFFILIATE_SLUG_MAX      128
#define NGX_HTTP_AFFILIATE_CREATOR_MAX   64
#define NGX_HTTP_AFFILIATE_CAMPAIGN_MAX  128
#define NGX_HTTP_AFFILIATE_DEST_MAX      1024
#define NGX_HTTP_AFFILIATE_NODE_MAX      64

/* a link that is not live and has no "expired=" (nginx names no 410) */
#define NGX_HTTP_AFFILIATE_GONE          410

/* a link table line: four fields and at most this many options */
#define NGX_HTTP_AFFILIATE_FIELDS_MAX    16

/* the destination's query already sets these parameters */
#define NGX_HTTP_AFFILIATE_HAS_QUERY         0x01
#define NGX_HTTP_AFFILIATE_HAS_CLICK_ID      0x02
#define NGX_HTTP_AFFILIATE_HAS_UTM_SOURCE    0x04
#define NGX_HTTP_AFFILIATE_HAS_UTM_MEDIUM    0x08
#define NGX_HTTP_AFFILIATE_HAS_UTM_CAMPAIGN  0x10
/* and no byte of it needs escaping in a JSON string */
#define NGX_HTTP_AFFILIATE_JSON_PLAIN        0x20

/* a link's slug, creator and campaign need no JSON escaping */
#define NGX_HTTP_AFFILIATE_LINK_JSON         0x01
/* its creator and campaign need no escaping as query arguments */
#define NGX_HTTP_AFFILIATE_LINK_ARGS         0x02


#define NGX_HTTP_AFFILIATE_CURRENCIES    32


typedef enum {
    NGX_HTTP_AFFILIATE_CLICKS = 0,
    NGX_HTTP_AFFILIATE_MISSES,
    NGX_HTTP_AFFILIATE_DROPPED,
    NGX_HTTP_AFFILIATE_GEO_MISSES,
    NGX_HTTP_AFFILIATE_UNIQUE_CLICKS,
    NGX_HTTP_AFFILIATE_BOT_CLICKS,
    NGX_HTTP_AFFILIATE_LANDINGS,
    NGX_HTTP_AFFILIATE_CONVERSIONS,
    NGX_HTTP_AFFILIATE_DUPLICATE_ORDERS,
    NGX_HTTP_AFFILIATE_REJECTED,
    NGX_HTTP_AFFILIATE_INVALID_COOKIES,
    NGX_HTTP_AFFILIATE_UNAUTHENTICATED,
    NGX_HTTP_AFFILIATE_INVALID_CONVERSIONS,
    NGX_HTTP_AFFILIATE_NOT_YET,
    NGX_HTTP_AFFILIATE_EXPIRED,
    NGX_HTTP_AFFILIATE_CAPPED,
    NGX_HTTP_AFFILIATE_CAP_FULL,
    NGX_HTTP_AFFILIATE_NCOUNTERS
} ngx_http_affiliate_counter_e;


/*
 * A bounded table of recent keys in shared memory (unique clicks,
 * orders, click ids): direct-mapped, each entry guarded by a version
 * that is odd while a writer fills it.  Writers never wait: a busy
 * entry is skipped.  See docs/internals.md.
 */

typedef struct {
    uint64_t                         version;
    uint64_t                         key;
    int64_t                          time;
} ngx_http_affiliate_entry_t;


typedef struct {
    uint64_t                         n;
    size_t                           size;          /* entry size */
    u_char                          *entries;
} ngx_http_affiliate_table_t;


/* the click index entry's payload */
typedef struct {
    ngx_http_affiliate_entry_t       e;
    u_char                           click_id[NGX_HTTP_AFFILIATE_ULID_LEN];
    u_char                           creator_len;
    u_char                           campaign_len;
    u_char                           creator[64];
    u_char                           campaign[128];
} ngx_http_affiliate_click_entry_t;


/* a capped link's click counter: open addressing, never evicted */
typedef struct {
    uint64_t                         key;           /* 0: free */
    uint64_t                         count;
} ngx_http_affiliate_cap_entry_t;


typedef struct {
    uint32_t                         code;          /* "EUR" as bytes */
    uint32_t                         pad;
    uint64_t                         units;
    uint64_t                         frac;          /* 1/10000 */
    uint64_t                         count;
} ngx_http_affiliate_revenue_t;


/*
 * Every field below that more than one process touches is accessed with
 * the __atomic builtins only (64-bit even on 32-bit builds); see
 * "Shared memory: one vocabulary" in docs/internals.md.
 */

/* live counters of one creator and campaign (ngx_http_affiliate_stats.c) */
#define NGX_HTTP_AFFILIATE_STAT_CURRENCIES  4

typedef struct {
    uint64_t                         key;           /* 0: free */
    uint64_t                         ready;         /* names written */
    uint64_t                         clicks;
    uint64_t                         landings;
    uint64_t                         unique;
    uint64_t                         bots;
    uint64_t                         conversions;
    ngx_http_affiliate_revenue_t     revenue[NGX_HTTP_AFFILIATE_STAT_CURRENCIES];
    u_char                           creator_len;
    u_char                           campaign_len;
    u_char                           creator[NGX_HTTP_AFFILIATE_CREATOR_MAX];
    u_char                           campaign[NGX_HTTP_AFFILIATE_CAMPAIGN_MAX];
} ngx_http_affiliate_stat_t;


#define ngx_http_affiliate_stat_inc(v)                                       \
    (void) __atomic_fetch_add(&(v), 1, __ATOMIC_RELAXED)


/* one counter a cache line pair, as stub_status keeps them apart */
typedef union {
    uint64_t                         value;
    u_char                           line[NGX_HTTP_AFFILIATE_LINE];
} ngx_http_affiliate_counter_t;


/* a slot's two words; see docs/internals.md, "A record's life" */
typedef struct {
    uint64_t                         seq;           /* Vyukov's sequence */
    uint64_t                         writer;        /* pos, or who writes */
} ngx_http_affiliate_slot_t;


/* the start of a record's data, written by its producer before publish */
typedef struct {
    uint64_t                         rec;           /* seq - 1 */
    uint32_t                         len;           /* bytes after this */
    uint32_t                         nslots;
} ngx_http_affiliate_rec_head_t;


/* the longest record line, "seq" and its newline included */
#define NGX_HTTP_AFFILIATE_RECORD_MAX    4072


/*
 * The shared part of a zone; see docs/internals.md.  Each union is one
 * line of its own; ngx_http_affiliate_ring.c asserts the offsets.
 */
typedef struct {
    union {
        uint64_t                     head;          /* producers */
        u_char                       line0[NGX_HTTP_AFFILIATE_LINE];
    };

    union {
        struct {                                    /* the lease holder */
            uint64_t                 tail;
            uint64_t                 tail_off;
            uint64_t                 written;
            uint64_t                 lost;
            uint64_t                 bytes;
            uint64_t                 tail_rec;      /* about, see ring.c */
            uint64_t                 stall_pos;
            uint64_t                 stall_since;   /* ngx_current_msec */
            uint64_t                 last_flush;    /* wall clock, ms */
            int64_t                  retry_at;      /* seconds */
            int64_t                  write_alert;
        };
        u_char                       line1[NGX_HTTP_AFFILIATE_LINE];
    };

    union {
        struct {
            uint64_t                 lease;         /* beat << 22 | pid */
            int64_t                  drop_alert;    /* seconds */
        };
        u_char                       line2[NGX_HTTP_AFFILIATE_LINE];
    };

    ngx_http_affiliate_counter_t     counters[NGX_HTTP_AFFILIATE_NCOUNTERS];

    ngx_http_affiliate_revenue_t     revenue[NGX_HTTP_AFFILIATE_CURRENCIES];

    uint64_t                         salt;
    ngx_http_affiliate_table_t       clicks;
    ngx_http_affiliate_table_t       unique;
    ngx_http_affiliate_table_t       orders;
    ngx_http_affiliate_table_t       caps;
    ngx_http_affiliate_table_t       stats;

    uint64_t                         nslots;
    ngx_http_affiliate_slot_t       *slots;
    u_char                          *data;          /* nslots + overflow */
} ngx_http_affiliate_sh_t;


typedef struct {
    ngx_str_t                        name;
    ngx_shm_zone_t                  *shm_zone;
    ngx_http_affiliate_sh_t         *sh;

    size_t                           clicks_size;
    size_t                           unique_size;
    size_t                           orders_size;
    size_t                           caps_size;
    size_t                           stats_size;

    /* an element of cycle->open_files of its own, see internals.md */
    ngx_open_file_t                 *file;
    ngx_str_t                        log_path;
    ngx_msec_t                       flush;
    ngx_cycle_t                     *cycle;
    u_char                          *log_conf_file;
    ngx_uint_t                       log_conf_line;

    /* per worker, set up in init_process */
    ngx_event_t                      flush_event;
    u_char                          *buf;
    size_t                           buf_size;
    u_char                          *scratch;       /* one record */
    uint64_t                         lease;         /* the value we hold */

    u_char                          *conf_file;
    ngx_uint_t                       conf_line;
} ngx_http_affiliate_zone_t;


typedef struct {
    u_char                          *data;
    uint16_t                         len;
    uint16_t                         frag;          /* offset of '#' */
    uint8_t                          flags;         /* HAS_* */
} ngx_http_affiliate_dest_t;


typedef struct {
    u_char                           country[2];
    ngx_http_affiliate_dest_t        dest;
} ngx_http_affiliate_geo_dest_t;


/* where a link was given, to name it when it is a duplicate */
typedef struct {
    u_char                          *file;
    ngx_uint_t                       line;
} ngx_http_affiliate_origin_t;


/* an app link, checked against affiliate_app_schemes after the block */
typedef struct {
    ngx_str_t                        scheme;
    char                            *option;        /* "ios=", ... */
    ngx_http_affiliate_origin_t      origin;
} ngx_http_affiliate_app_dest_t;


/* an A/B variant: its destination and the running sum of weights */
typedef struct {
    ngx_http_affiliate_dest_t        dest;
    uint32_t                         upto;
} ngx_http_affiliate_variant_t;


#define NGX_HTTP_AFFILIATE_IOS          0
#define NGX_HTTP_AFFILIATE_ANDROID      1
#define NGX_HTTP_AFFILIATE_DESKTOP      2
#define NGX_HTTP_AFFILIATE_NDEVICES     3


/* a link's options (ngx_http_affiliate_options.c); plain links have none */
typedef struct {
    ngx_http_affiliate_variant_t    *variants;
    ngx_uint_t                       nvariants;
    uint32_t                         total;         /* sum of weights */

    time_t                           from;          /* 0: none */
    time_t                           until;         /* 0: none */
    uint64_t                         max_clicks;    /* 0: no cap */
    uint64_t                         cap_key;       /* the slug's hash */
    ngx_http_affiliate_dest_t       *expired;       /* NULL: 410 */

    ngx_http_affiliate_dest_t       *device[NGX_HTTP_AFFILIATE_NDEVICES];

    ngx_uint_t                       status;        /* 0: the location's */
    ngx_http_affiliate_origin_t      origin;
    uint32_t                         given;         /* options seen */
    unsigned                         permanent:1;
    unsigned                         forward_query:1;
    unsigned                         utm_set:1;
} ngx_http_affiliate_link_opts_t;


/* strings point into the loaded table file or the configuration */
typedef struct {
    ngx_http_affiliate_dest_t        dest;
    ngx_str_t                        creator;
    ngx_str_t                        campaign;
    ngx_http_affiliate_geo_dest_t   *geo;
    uint32_t                         ngeo;
    uint32_t                         flags;         /* LINK_* */
    ngx_http_affiliate_link_opts_t  *opts;
    uint64_t                         stat_key;      /* stats.c */
} ngx_http_affiliate_link_t;


typedef struct {
    ngx_hash_t                       hash;
    ngx_array_t                     *keys;          /* ngx_hash_key_t */
    ngx_array_t                     *origins;       /* while parsing */
    unsigned                         built:1;
} ngx_http_affiliate_links_t;


typedef struct {
    ngx_str_t                        country;       /* empty: unknown */
    ngx_str_t                        region;
    ngx_str_t                        city;
    uint32_t                         asn;           /* 0: unknown */
} ngx_http_affiliate_geo_t;


typedef struct {
    ngx_str_t                        name;
    ngx_str_t                        domain;
    ngx_str_t                        path;
    time_t                           max_age;
    ngx_str_t                        samesite;
    unsigned                         secure:1;
    unsigned                         httponly:1;
    ngx_http_complex_value_t        *consent;
} ngx_http_affiliate_cookie_t;


typedef struct {
    ngx_array_t                      zones;  /* ngx_http_affiliate_zone_t * */

    ngx_str_t                        secret;
    ngx_str_t                        postback_key;
    void                            *secret_mac;    /* see cookie.c */
    void                            *postback_mac;

    ngx_array_t                     *bot_ua;        /* ngx_regex_elt_t */
    time_t                           window;

    ngx_str_t                        node;
    ngx_str_t                        node_json;     /* ,"node":"..." */

    ngx_array_t                     *app_schemes;   /* ngx_str_t */
    ngx_array_t                     *app_dests;     /* app_dest_t */
    time_t                           unique;
} ngx_http_affiliate_main_conf_t;


typedef struct {
    ngx_http_affiliate_links_t      *links;
} ngx_http_affiliate_srv_conf_t;


typedef struct {
    ngx_http_affiliate_zone_t       *redirect_zone;
    ngx_uint_t                       redirect_status;
    ngx_http_affiliate_zone_t       *status_zone;

    ngx_array_t                     *rules;  /* ngx_http_affiliate_rule_t */
    ngx_array_t                     *allow_hosts;   /* ngx_str_t */

    ngx_http_affiliate_cookie_t     *cookie;
    ngx_uint_t                       attribution;
    ngx_flag_t                       anonymize_ip;

    ngx_http_affiliate_zone_t       *capture_zone;
    ngx_str_t                        capture_creator;
    ngx_str_t                        capture_campaign;
    ngx_flag_t                       capture_strip;

    ngx_http_affiliate_zone_t       *conversion_zone;
    ngx_flag_t                       conversion_gif;

    ngx_uint_t                       speculative;   /* status, 0: off */
} ngx_http_affiliate_loc_conf_t;


#define NGX_HTTP_AFFILIATE_LAST_CLICK   0
#define NGX_HTTP_AFFILIATE_FIRST_CLICK  1


typedef struct {
    ngx_http_regex_t                *regex;
    ngx_http_complex_value_t         dest;
    ngx_http_complex_value_t        *creator;
    ngx_http_complex_value_t        *campaign;
    ngx_uint_t                       status;
    u_char                          *file;
    ngx_uint_t                       line;
    unsigned                         variable_host:1;
    unsigned                         forward_query:1;   /* query=forward */
    unsigned                         utm_set:1;         /* utm=set */
} ngx_http_affiliate_rule_t;


/* a three-state JSON boolean */
#define NGX_HTTP_AFFILIATE_NULL   0
#define NGX_HTTP_AFFILIATE_FALSE  1
#define NGX_HTTP_AFFILIATE_TRUE   2


typedef struct {
    u_char                           click_id[NGX_HTTP_AFFILIATE_ULID_LEN];
    ngx_str_t                        link;
    ngx_str_t                        creator;
    ngx_str_t                        campaign;
    ngx_str_t                        location;
    ngx_str_t                        ip;            /* anonymized */
    ngx_http_affiliate_geo_t         geo;
    ngx_uint_t                       status;
    ngx_uint_t                       rule;          /* 1-based, 0: none */

    char                            *bot_reason;    /* NULL: a person */
    char                            *cookie;        /* set, kept, ... */
    char                            *source;        /* postback, pixel */
    ngx_str_t                        order_id;
    ngx_str_t                        amount;
    ngx_str_t                        currency;

    char                            *device;        /* ios, android, ... */
    char                            *reason;        /* not_yet, expired, ... */
    ngx_int_t                        variant;       /* A/B: 1-based, 0 */
    uint64_t                         visitor;       /* A/B stickiness */

    ngx_http_request_t              *request;       /* the owner */
    ngx_uint_t                       done;          /* DONE(type) bits */

    uint64_t                         unique_key;    /* when unique_keyed */
    uint64_t                         stat_key;      /* when stat_keyed */
    uint64_t                         click_key;     /* when click_keyed */
    uint64_t                         ua_hash;       /* when ua_hashed */

    unsigned                         unique:2;
    unsigned                         attributed:2;
    unsigned                         duplicate:2;
    unsigned                         has_click_id:1;
    unsigned                         geo_done:1;
    unsigned                         geo_miss:1;
    unsigned                         bot_done:1;
    unsigned                         unique_keyed:1;
    unsigned                         stat_keyed:1;
    unsigned                         click_keyed:1;
    unsigned                         ua_hashed:1;
    unsigned                         purpose:2;     /* bot.c, when done */
    unsigned                         purpose_done:1;

    /* known at load to need no escaping: link, creator, campaign... */
    unsigned                         plain_names:1;
    unsigned                         plain_args:1;  /* ...as arguments */
    unsigned                         plain_location:1;
} ngx_http_affiliate_ctx_t;


typedef enum {
    NGX_HTTP_AFFILIATE_CLICK = 0,
    NGX_HTTP_AFFILIATE_MISS,
    NGX_HTTP_AFFILIATE_LANDING,
    NGX_HTTP_AFFILIATE_CONVERSION
} ngx_http_affiliate_type_e;


/* ctx->done: a record of this type was written for the request */
#define NGX_HTTP_AFFILIATE_DONE(type)  (1 << (type))


/* a verified attribution cookie */
typedef struct {
    ngx_str_t                        click_id;
    ngx_str_t                        creator;
    ngx_str_t                        campaign;
    time_t                           time;
} ngx_http_affiliate_cookie_value_t;


/* ngx_http_affiliate_ctx.c */
ngx_http_affiliate_ctx_t *ngx_http_affiliate_get_ctx(ngx_http_request_t *r);
ngx_int_t ngx_http_affiliate_add_variables(ngx_conf_t *cf);
ngx_int_t ngx_http_affiliate_variable_set(ngx_http_variable_value_t *v,
    u_char *data, size_t len);
void ngx_http_affiliate_geo(ngx_http_request_t *r,
    ngx_http_affiliate_zone_t *zone, ngx_http_affiliate_ctx_t *ctx);

/* ngx_http_affiliate_zone.c */
ngx_http_affiliate_zone_t *ngx_http_affiliate_zone_find(ngx_conf_t *cf,
    ngx_str_t *name);
ngx_http_affiliate_zone_t *ngx_http_affiliate_zone_param(ngx_conf_t *cf,
    ngx_str_t *value);
char *ngx_http_affiliate_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_affiliate_log(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);

/* ngx_http_affiliate_links.c */
char *ngx_http_affiliate_links_file(ngx_conf_t *cf,
    ngx_http_affiliate_links_t **lp, ngx_str_t *path);
char *ngx_http_affiliate_link_add(ngx_conf_t *cf,
    ngx_http_affiliate_links_t **lp, ngx_str_t *slug, ngx_str_t *dest,
    ngx_str_t *creator, ngx_str_t *campaign, ngx_str_t *opts,
    ngx_uint_t nopts);
char *ngx_http_affiliate_check_text(ngx_conf_t *cf, ngx_str_t *s,
    size_t max, const char *what);
ngx_uint_t ngx_http_affiliate_text_valid(ngx_str_t *s, size_t max);
char *ngx_http_affiliate_links_build(ngx_conf_t *cf,
    ngx_http_affiliate_links_t *links);
ngx_http_affiliate_link_t *ngx_http_affiliate_links_find(
    ngx_http_affiliate_links_t *links, ngx_str_t *slug);
uint32_t ngx_http_affiliate_link_flags(ngx_str_t *slug, ngx_str_t *creator,
    ngx_str_t *campaign);
ngx_uint_t ngx_http_affiliate_web_scheme(ngx_str_t *s);
size_t ngx_http_affiliate_scheme_len(ngx_str_t *s);
char *ngx_http_affiliate_dest_parse(ngx_str_t *url,
    ngx_http_affiliate_dest_t *dest);
void ngx_http_affiliate_dest_flags(ngx_http_affiliate_dest_t *dest);
u_char *ngx_http_affiliate_arg_split(u_char *p, u_char *last,
    ngx_str_t *name, ngx_str_t *value);
ngx_http_affiliate_dest_t *ngx_http_affiliate_geo_dest(
    ngx_http_affiliate_link_t *link, ngx_http_affiliate_ctx_t *ctx);

/* ngx_http_affiliate_options.c */
char *ngx_http_affiliate_link_option(ngx_conf_t *cf,
    ngx_http_affiliate_link_t *link, ngx_str_t *opt,
    ngx_http_affiliate_origin_t *origin);
char *ngx_http_affiliate_app_dests_check(ngx_conf_t *cf,
    ngx_http_affiliate_main_conf_t *amcf);
char *ngx_http_affiliate_link_options_check(ngx_conf_t *cf,
    ngx_http_affiliate_link_t *link, ngx_str_t *slug);
char *ngx_http_affiliate_utm_strip(ngx_pool_t *pool,
    ngx_http_affiliate_dest_t *dest);
char *ngx_http_affiliate_app_schemes(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_affiliate_link_dest(ngx_http_request_t *r,
    ngx_http_affiliate_zone_t *zone, ngx_http_affiliate_ctx_t *ctx,
    ngx_http_affiliate_link_t *link, ngx_http_affiliate_dest_t **dest);
ngx_int_t ngx_http_affiliate_forward_query(ngx_http_request_t *r,
    ngx_http_affiliate_dest_t *dest, ngx_str_t *extra);
uint64_t *ngx_http_affiliate_cap_counter(ngx_http_affiliate_sh_t *sh,
    uint64_t key);

/* ngx_http_affiliate_redirect.c */
extern ngx_str_t  ngx_http_affiliate_no_store;
ngx_int_t ngx_http_affiliate_redirect_status(ngx_conf_t *cf,
    ngx_str_t *value);
ngx_uint_t ngx_http_affiliate_redirect_status_valid(ngx_int_t n);
/* what it accepts, for the messages of status= (links, rules, redirect) */
#define NGX_HTTP_AFFILIATE_STATUS_EXPECTED  "expected 301, 302, 303, 307 or 308"
ngx_int_t ngx_http_affiliate_send_empty(ngx_http_request_t *r,
    ngx_uint_t status);
ngx_int_t ngx_http_affiliate_send_body(ngx_http_request_t *r,
    ngx_uint_t status, ngx_buf_t *b);
ngx_int_t ngx_http_affiliate_redirect_handler(ngx_http_request_t *r);
ngx_table_elt_t *ngx_http_affiliate_header_push(ngx_http_request_t *r,
    u_char *key, size_t key_len, ngx_str_t *value);
/* key: a string literal */
#define ngx_http_affiliate_add_header(r, key, value)                         \
    ngx_http_affiliate_header_push(r, (u_char *) key, sizeof(key) - 1, value)
ngx_int_t ngx_http_affiliate_set_location(ngx_http_request_t *r,
    ngx_str_t *location);
ngx_int_t ngx_http_affiliate_location_extra(ngx_http_request_t *r,
    ngx_http_affiliate_dest_t *dest, ngx_str_t *extra, ngx_str_t *creator,
    ngx_str_t *campaign, u_char *click_id, ngx_uint_t plain,
    ngx_str_t *location);

/* ngx_http_affiliate_record.c */
ngx_uint_t ngx_http_affiliate_json_plain(u_char *p, size_t len);
extern u_char  ngx_http_affiliate_base32[];
ngx_int_t ngx_http_affiliate_ulid_parse(ngx_str_t *id);
size_t ngx_http_affiliate_record_format(ngx_http_request_t *r,
    ngx_http_affiliate_ctx_t *ctx, ngx_http_affiliate_type_e type,
    uint64_t seq, u_char *buf, size_t size);
u_char *ngx_http_affiliate_time_iso(u_char *p, time_t sec, ngx_uint_t msec);
u_char *ngx_http_affiliate_uint_str(u_char *p, uint64_t n);
u_char *ngx_http_affiliate_json_str(u_char *p, u_char *last, u_char *src,
    size_t len, ngx_uint_t *truncated);

/* ngx_http_affiliate_ring.c */
ngx_int_t ngx_http_affiliate_zone_init(ngx_shm_zone_t *shm_zone, void *data);
ngx_int_t ngx_http_affiliate_record(ngx_http_request_t *r,
    ngx_http_affiliate_zone_t *zone, ngx_http_affiliate_ctx_t *ctx,
    ngx_http_affiliate_type_e type);
uint64_t ngx_http_affiliate_ring_reserve(ngx_http_affiliate_sh_t *sh,
    uint64_t nslots, uint64_t *rec);
void ngx_http_affiliate_ring_publish(ngx_http_affiliate_sh_t *sh,
    uint64_t pos, uint64_t rec, size_t len, uint64_t nslots);
void ngx_http_affiliate_ring_usage(ngx_http_affiliate_sh_t *sh,
    uint64_t *accepted, uint64_t *records, uint64_t *slots,
    uint64_t *capacity);
ngx_open_file_t *ngx_http_affiliate_log_file(ngx_conf_t *cf,
    ngx_str_t *path);
ngx_int_t ngx_http_affiliate_ring_init_process(ngx_cycle_t *cycle,
    ngx_http_affiliate_zone_t *zone);
void ngx_http_affiliate_ring_exit_process(ngx_cycle_t *cycle,
    ngx_http_affiliate_zone_t *zone);

/* ngx_http_affiliate_rules.c */
char *ngx_http_affiliate_rule(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_affiliate_allow_hosts(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_affiliate_rules_check(ngx_conf_t *cf,
    ngx_http_affiliate_loc_conf_t *alcf);
ngx_int_t ngx_http_affiliate_rules_find(ngx_http_request_t *r,
    ngx_http_affiliate_loc_conf_t *alcf, ngx_http_affiliate_ctx_t *ctx,
    ngx_http_affiliate_dest_t *dest, ngx_uint_t *status);

/* ngx_http_affiliate_attr.c */
char *ngx_http_affiliate_attr_init(ngx_conf_t *cf,
    ngx_http_affiliate_main_conf_t *amcf);
void ngx_http_affiliate_click(ngx_http_request_t *r,
    ngx_http_affiliate_zone_t *zone, ngx_http_affiliate_ctx_t *ctx,
    ngx_http_affiliate_type_e type);
void ngx_http_affiliate_ulid(u_char *dst);
void ngx_http_affiliate_click_prefetch(ngx_http_request_t *r,
    ngx_http_affiliate_zone_t *zone, ngx_http_affiliate_ctx_t *ctx);
void ngx_http_affiliate_anonymize(ngx_http_request_t *r,
    ngx_http_affiliate_ctx_t *ctx);

/* ngx_http_affiliate_bot.c */
uint64_t ngx_http_affiliate_ua_hash(ngx_http_request_t *r);
char *ngx_http_affiliate_bot(ngx_http_request_t *r,
    ngx_http_affiliate_main_conf_t *amcf);
ngx_uint_t ngx_http_affiliate_speculative(ngx_http_request_t *r);
char *ngx_http_affiliate_bot_ua(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_affiliate_speculation(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* ngx_http_affiliate_cookie.c */
char *ngx_http_affiliate_cookie(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_affiliate_key_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
void *ngx_http_affiliate_mac_new(ngx_conf_t *cf, ngx_str_t *key);
ngx_int_t ngx_http_affiliate_set_cookie(ngx_http_request_t *r,
    ngx_http_affiliate_zone_t *zone, ngx_http_affiliate_main_conf_t *amcf,
    ngx_http_affiliate_cookie_t *c, ngx_http_affiliate_ctx_t *ctx);
void ngx_http_affiliate_visitor(ngx_http_request_t *r,
    ngx_http_affiliate_zone_t *zone, ngx_http_affiliate_ctx_t *ctx);
ngx_int_t ngx_http_affiliate_cookie_get(ngx_http_request_t *r,
    ngx_http_affiliate_zone_t *zone, ngx_http_affiliate_cookie_value_t *cv);
ngx_int_t ngx_http_affiliate_hmac(void *mac, u_char *data, size_t len,
    u_char *out);

/* ngx_http_affiliate_capture.c */
ngx_int_t ngx_http_affiliate_capture_handler(ngx_http_request_t *r);
char *ngx_http_affiliate_capture(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_affiliate_arg(ngx_http_request_t *r, ngx_str_t *name,
    ngx_str_t *value);
ngx_int_t ngx_http_affiliate_unescape_arg(ngx_pool_t *pool, ngx_str_t *raw,
    ngx_str_t *value);
u_char *ngx_http_affiliate_escape_args(u_char *dst, u_char *src, size_t len);

/* ngx_http_affiliate_table.c */
/*
 * A hashed key's index among n, from its high bits (the hash's finalizer
 * mixes them all): a multiplication instead of a 64-bit division.
 */
#if (defined __SIZEOF_INT128__)
#define ngx_http_affiliate_key_index(key, n)                                 \
    ((uint64_t) (((unsigned __int128) (key) * (n)) >> 64))
#else
#define ngx_http_affiliate_key_index(key, n)  ((key) % (n))
#endif

uint64_t ngx_http_affiliate_click_key(ngx_http_affiliate_sh_t *sh,
    u_char *id);
uint64_t ngx_http_affiliate_hash(uint64_t h, u_char *data, size_t len);
void ngx_http_affiliate_table_init(ngx_http_affiliate_table_t *t,
    u_char *mem, size_t size, size_t entry_size);
ngx_uint_t ngx_http_affiliate_table_seen(ngx_http_affiliate_table_t *t,
    uint64_t key, time_t now, time_t window);
void ngx_http_affiliate_table_prefetch(ngx_http_affiliate_table_t *t,
    uint64_t key, size_t len);
void ngx_http_affiliate_click_index_add(ngx_http_affiliate_sh_t *sh,
    ngx_http_affiliate_ctx_t *ctx);
ngx_int_t ngx_http_affiliate_click_index_find(ngx_http_affiliate_sh_t *sh,
    ngx_str_t *click_id, time_t window, ngx_pool_t *pool,
    ngx_str_t *creator, ngx_str_t *campaign);

/* ngx_http_affiliate_stats.c */
uint64_t ngx_http_affiliate_stat_key(ngx_str_t *creator, ngx_str_t *campaign);
void ngx_http_affiliate_stat_prefetch(ngx_http_affiliate_sh_t *sh,
    ngx_http_affiliate_ctx_t *ctx);
ngx_http_affiliate_stat_t *ngx_http_affiliate_stat(
    ngx_http_affiliate_sh_t *sh, ngx_http_affiliate_ctx_t *ctx);
void ngx_http_affiliate_stat_count(ngx_http_affiliate_sh_t *sh,
    ngx_http_affiliate_ctx_t *ctx, ngx_http_affiliate_type_e type);
void ngx_http_affiliate_stat_conversion(ngx_http_affiliate_sh_t *sh,
    ngx_http_affiliate_ctx_t *ctx);
ngx_int_t ngx_http_affiliate_revenue_add(ngx_http_affiliate_revenue_t *rv,
    ngx_uint_t n, ngx_str_t *amount, ngx_str_t *currency);
ngx_uint_t ngx_http_affiliate_stats_top(ngx_http_affiliate_sh_t *sh,
    ngx_pool_t *pool, ngx_uint_t top, ngx_http_affiliate_stat_t ***out);
ngx_int_t ngx_http_affiliate_stat_cmp(const void *one, const void *two);

/* ngx_http_affiliate_conversion.c */
char *ngx_http_affiliate_conversion(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* ngx_http_affiliate_status.c */
ngx_int_t ngx_http_affiliate_status_handler(ngx_http_request_t *r);

/* ngx_http_affiliate_geo.c */
ngx_int_t ngx_http_affiliate_geo_lookup(ngx_http_request_t *r,
    ngx_http_affiliate_geo_t *geo);


#define ngx_http_affiliate_count(sh, c)                                      \
    (void) __atomic_fetch_add(&(sh)->counters[c].value, 1, __ATOMIC_RELAXED)


extern ngx_module_t  ngx_http_affiliate_module;
extern ngx_module_t  ngx_http_affiliate_geo_module;


#endif /* _NGX_HTTP_AFFILIATE_MODULE_H_INCLUDED_ */
