
/*
 * Copyright (C) ngx_http_affiliate_module authors
 *
 * The NDJSON record (ngx_http_affiliate_record_format) and its string
 * writer (ngx_http_affiliate_json_str).
 *
 * Input: four control bytes (record type, three-state flags, bot reason,
 * cookie and source, status, rule, asn, seq), then the string fields cut
 * at '\n': click_id link creator campaign dest ip ua referer host country
 * region city order_id amount currency client-address.  An input whose
 * first byte is 0xff tests json_str alone: the second byte is the room
 * it gets, the rest (newlines included) the string.
 *
 * Properties: the record fits its buffer (an exact malloc(): ASan sees a
 * byte past it), is one strict JSON object in valid UTF-8 ending in
 * exactly one '\n', with no raw newline before it, no duplicate key,
 * the keys every record has, each field that has a value (absent means
 * null), "seq" last and equal to the given one; each
 * string field decodes to its input with invalid UTF-8 replaced by
 * U+FFFD, or to a prefix of that, and "truncated" is true exactly when
 * some field was cut.  json_str never writes past its room and writes
 * one JSON string that decodes to a prefix of its input.
 */


#define FZ_OWN_INIT  1

#include "fuzz_common.h"

#include "../ngx_http_affiliate_module/ngx_http_affiliate_record.c"


#define FZ_NFIELDS  16


static char  *fz_fields[] = {
    "click_id", "link", "creator", "campaign", "dest", "ip", "ua", "referer",
    "host", "country", "region", "city", "order_id", "amount", "currency",
    NULL
};

/* docs/log-format.md; an absent field means null (9462573) */

static char  *fz_keys[] = {
    "ts", "type", "id", "node", "click_id", "link", "creator", "campaign",
    "dest", "status", "ip", "ua", "referer", "host", "country", "region",
    "city", "asn", "rule", "variant", "device", "reason", "bot",
    "bot_reason", "unique", "cookie", "source", "order_id", "amount",
    "currency", "attributed", "duplicate", "truncated", "seq", NULL
};

static char  *fz_required[] = {
    "ts", "type", "id", "node", "ip", "bot", "truncated", "seq", NULL
};

static char  *fz_bots[] = { NULL, "head", "prefetch", "no_ua", "ua" };
static char  *fz_cookies[] = { NULL, "no_consent", "kept", "set" };
static char  *fz_sources[] = { NULL, "pixel", "postback" };


typedef struct {
    ngx_str_t    want[FZ_NFIELDS];      /* expected decoded value */
    ngx_uint_t   null[FZ_NFIELDS];      /* expected null */
    ngx_uint_t   seen[64];
    ngx_uint_t   cut;                   /* a field is a strict prefix */
    ngx_uint_t   truncated;
    ngx_str_t    last_key;
    u_char       last_raw[32];
    size_t       last_raw_len;
    uint64_t     seq;
} fz_record_t;


/* what json_str should make of src: invalid UTF-8 bytes become U+FFFD */

static void
fz_expected(ngx_pool_t *pool, ngx_str_t *src, ngx_str_t *out)
{
    u_char  *p, *last, *d;
    size_t   n;

    d = ngx_pnalloc(pool, src->len * 3 + 1);
    out->data = d;

    p = src->data;
    last = p + src->len;

    while (p < last) {
        n = fz_utf8_len(p, last);

        if (n == 0) {
            d = ngx_cpymem(d, "\xef\xbf\xbd", 3);
            p++;
            continue;
        }

        d = ngx_cpymem(d, p, n);
        p += n;
    }

    out->len = d - out->data;
}


static ngx_uint_t
fz_key_index(const char *name)
{
    ngx_uint_t  i;

    for (i = 0; fz_keys[i]; i++) {
        if (ngx_strcmp(fz_keys[i], name) == 0) {
            return i;
        }
    }

    abort();
}


static void
fz_member(void *data, ngx_str_t *key, ngx_str_t *str, ngx_str_t *raw)
{
    fz_record_t  *rec = data;

    ngx_uint_t   i;

    for (i = 0; fz_keys[i]; i++) {
        if (key->len == ngx_strlen(fz_keys[i])
            && ngx_strncmp(key->data, fz_keys[i], key->len) == 0)
        {
            break;
        }
    }

    if (fz_keys[i]) {
        fz_assert(rec->seen[i] == 0, "duplicate key \"%s\"", fz_keys[i]);
        rec->seen[i] = 1;
    }

    fz_assert(rec->last_key.len == 0
              || !(rec->last_key.len == 3
                   && ngx_strncmp(rec->last_key.data, "seq", 3) == 0),
              "a key after \"seq\"");

    rec->last_key.data = (u_char *) (fz_keys[i] ? fz_keys[i] : "?");
    rec->last_key.len = fz_keys[i] ? ngx_strlen(fz_keys[i]) : 1;
    rec->last_raw_len = ngx_min(raw->len, sizeof(rec->last_raw));
    ngx_memcpy(rec->last_raw, raw->data, rec->last_raw_len);

    if (key->len == 9 && ngx_strncmp(key->data, "truncated", 9) == 0) {
        rec->truncated = (raw->len == 4);
        return;
    }

    for (i = 0; fz_fields[i]; i++) {
        if (key->len == ngx_strlen(fz_fields[i])
            && ngx_strncmp(key->data, fz_fields[i], key->len) == 0)
        {
            break;
        }
    }

    if (fz_fields[i] == NULL) {
        return;
    }

    if (rec->null[i]) {
        fz_assert(str == NULL && raw->len == 4
                  && ngx_strncmp(raw->data, "null", 4) == 0,
                  "\"%s\" should be null", fz_fields[i]);
        return;
    }

    fz_assert(str != NULL, "\"%s\" is not a string", fz_fields[i]);

    fz_assert(str->len <= rec->want[i].len
              && ngx_memcmp(str->data, rec->want[i].data, str->len) == 0,
              "\"%s\" is not (a prefix of) its input: %s", fz_fields[i],
              fz_show(str->data, str->len));

    if (str->len < rec->want[i].len) {
        rec->cut = 1;
    }
}


static void
fz_json_str_only(const uint8_t *data, size_t size)
{
    u_char      *buf, *p;
    size_t       room;
    ngx_str_t    src, want, got;
    ngx_pool_t  *pool;
    ngx_uint_t   truncated;
    const char  *err;

    room = 2 + data[1];

    pool = fz_pool();

    src.data = (u_char *) data + 2;
    src.len = size - 2;
    (void) fz_dup(pool, &src);

    buf = malloc(room);
    truncated = 0;

    p = ngx_http_affiliate_json_str(buf, buf + room, src.data, src.len,
                                    &truncated);

    fz_assert(p > buf && p <= buf + room, "json_str wrote %zd of %zu",
              p - buf, room);

    err = fz_json_check(buf, p - buf, NULL, NULL);
    fz_assert(err == NULL, "json_str output is not a JSON string: %s: %s",
              err, fz_show(buf, p - buf));

    /* decode it through the validator's string reader */

    fz_expected(pool, &src, &want);

    got.data = ngx_pnalloc(pool, p - buf + 1);

    {
        fz_json_t  j;

        ngx_memzero(&j, sizeof(fz_json_t));
        j.p = buf;
        j.last = p;
        fz_assert(fz_json_string(&j, got.data, &got.len) == 0, "decode");
    }

    fz_assert(got.len <= want.len
              && ngx_memcmp(got.data, want.data, got.len) == 0,
              "json_str output is not (a prefix of) its input: %s",
              fz_show(got.data, got.len));

    fz_assert(truncated == (got.len < want.len),
              "truncated %u for %zu of %zu bytes", (unsigned) truncated,
              got.len, want.len);

    free(buf);
    ngx_destroy_pool(pool);
}


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fz_init();
    fz_module_index();

    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char                          *buf, *nl;
    size_t                           len, room;
    ngx_str_t                        f[FZ_NFIELDS], *s;
    ngx_uint_t                       i, type;
    ngx_pool_t                      *pool;
    fz_record_t                      rec;
    const char                      *err;
    ngx_table_elt_t                  ua, referer, host;
    ngx_connection_t                 c;
    ngx_http_request_t               r;
    ngx_http_affiliate_ctx_t         ctx;
    ngx_http_affiliate_main_conf_t   amcf;
    void                            *main_conf[1];

    if (size < 2 || size > 16384) {
        return -1;
    }

    if (data[0] == 0xff) {
        fz_json_str_only(data, size);
        return 0;
    }

    if (size < 6) {
        return -1;
    }

    pool = fz_pool();

    ngx_memzero(&amcf, sizeof(amcf));
    ngx_str_set(&amcf.node_json, ",\"node\":\"fuzz-1\"");

    ngx_memzero(main_conf, sizeof(main_conf));
    main_conf[ngx_http_affiliate_module.ctx_index] = &amcf;

    fz_request(&r, pool, main_conf, NULL);

    ngx_memzero(&c, sizeof(ngx_connection_t));
    r.connection = &c;

    (void) fz_split(data + 6, size - 6, '\n', f, FZ_NFIELDS);

    for (i = 0; i < FZ_NFIELDS; i++) {
        (void) fz_dup(pool, &f[i]);
    }

    /* the context as the handlers leave it */

    ngx_memzero(&ctx, sizeof(ngx_http_affiliate_ctx_t));

    type = data[0] & 3;
    ctx.has_click_id = (data[0] >> 2) & 1;
    ctx.unique = ((data[0] >> 3) & 3) % 3;
    ctx.attributed = ((data[0] >> 5) & 3) % 3;
    ctx.duplicate = (data[1] & 3) % 3;
    ctx.bot_reason = fz_bots[((data[1] >> 2) & 7) % 5];
    ctx.cookie = fz_cookies[(data[1] >> 5) & 3];
    ctx.source = fz_sources[data[2] % 3];
    ctx.status = (data[2] & 0x80) ? 0 : 300 + (data[2] & 0x7f);
    ctx.rule = data[3] & 0x0f;
    ctx.geo.asn = (data[3] & 0x10) ? (uint32_t) data[4] << 24 | data[5] : 0;

    /* a click id is always a ULID: made here, or checked base32 */

    ngx_memset(ctx.click_id, '0', NGX_HTTP_AFFILIATE_ULID_LEN);

    for (i = 0; i < ngx_min(f[0].len, NGX_HTTP_AFFILIATE_ULID_LEN); i++) {
        ctx.click_id[i] = ngx_http_affiliate_base32[f[0].data[i] & 0x1f];
    }

    ctx.link = f[1];
    ctx.creator = f[2];
    ctx.campaign = f[3];
    ctx.location = f[4];
    ctx.ip = f[5];
    ctx.geo.country = f[9];
    ctx.geo.region = f[10];
    ctx.geo.city = f[11];
    ctx.order_id = f[12];
    ctx.amount = f[13];
    ctx.currency = f[14];
    c.addr_text = f[15];

    /* the fast copies, where the link table's load would allow them */

    ctx.plain_names = (ngx_http_affiliate_link_flags(&f[1], &f[2], &f[3])
                       & NGX_HTTP_AFFILIATE_LINK_JSON)
                      != 0;
    ctx.plain_location = ctx.plain_names
                         && ngx_http_affiliate_json_plain(f[4].data,
                                                          f[4].len);

    ngx_memzero(&ua, sizeof(ngx_table_elt_t));
    ngx_memzero(&referer, sizeof(ngx_table_elt_t));
    ngx_memzero(&host, sizeof(ngx_table_elt_t));
    ua.value = f[6];
    referer.value = f[7];
    host.value = f[8];

    r.headers_in.user_agent = f[6].len ? &ua : NULL;
    r.headers_in.referer = f[7].len ? &referer : NULL;
    r.headers_in.host = f[8].len ? &host : NULL;

    /* what each field should read */

    ngx_memzero(&rec, sizeof(fz_record_t));
    rec.seq = ((uint64_t) data[4] << 40) | ((uint64_t) data[5] << 8) | 7;

    for (i = 0; i < FZ_NFIELDS - 1; i++) {
        s = &f[i];

        if (i == 0) {
            s->data = ctx.click_id;
            s->len = NGX_HTTP_AFFILIATE_ULID_LEN;
            rec.null[i] = !ctx.has_click_id;

        } else if (i == 1) {
            rec.null[i] = (ctx.link.data == NULL);

        } else if (i == 5) {
            if (s->len == 0) {
                s = &c.addr_text;
            }

            rec.null[i] = (s->data == NULL);

        } else {
            rec.null[i] = (s->len == 0);
        }

        fz_expected(pool, s, &rec.want[i]);
    }

    /* the room the ring gives it, allocated exactly */

    room = NGX_HTTP_AFFILIATE_RECORD_MAX - NGX_INT64_LEN;
    buf = malloc(room);

    len = ngx_http_affiliate_record_format(&r, &ctx, type, rec.seq, buf, room);

    fz_assert(len > 2 && len <= room, "record length %zu of %zu", len, room);

    nl = memchr(buf, '\n', len);
    fz_assert(nl == buf + len - 1 && buf[len - 2] != '\r',
              "record does not end in exactly one newline: %s",
              fz_show(buf, len));

    fz_assert(fz_utf8_valid(buf, len), "record is not UTF-8: %s",
              fz_show(buf, len));

    err = fz_json_check(buf, len - 1, fz_member, &rec);
    fz_assert(err == NULL, "record is not JSON (%s): %s", err,
              fz_show(buf, len));

    fz_assert(buf[0] == '{', "record is not an object");

    for (i = 0; fz_required[i]; i++) {
        fz_assert(rec.seen[fz_key_index(fz_required[i])],
                  "record without \"%s\": %s", fz_required[i],
                  fz_show(buf, len));
    }

    /* a field with a value is there; one without is absent or null */

    for (i = 0; fz_fields[i]; i++) {
        fz_assert(rec.null[i] || rec.seen[fz_key_index(fz_fields[i])],
                  "record without \"%s\": %s", fz_fields[i],
                  fz_show(buf, len));
    }

    {
        u_char  seq[NGX_INT64_LEN + 1];

        fz_assert(rec.last_key.len == 3
                  && ngx_strncmp(rec.last_key.data, "seq", 3) == 0
                  && rec.last_raw_len
                     == (size_t) (ngx_sprintf(seq, "%uL", rec.seq) - seq)
                  && ngx_memcmp(rec.last_raw, seq, rec.last_raw_len) == 0,
                  "\"seq\" is not last or not %llu",
                  (unsigned long long) rec.seq);
    }

    fz_assert(rec.truncated == rec.cut,
              "\"truncated\":%s but %s field was cut: %s",
              rec.truncated ? "true" : "false", rec.cut ? "a" : "no",
              fz_show(buf, len));

    free(buf);
    ngx_destroy_pool(pool);

    return 0;
}
