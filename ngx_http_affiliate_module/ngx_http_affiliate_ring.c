
/*
 * Copyright (C) ngx_http_affiliate_module authors
 *
 * The record ring in shared memory: the zone's carving, its log file,
 * the producers (reserve, copy, publish) and the status's figures.  The
 * flusher is in ngx_http_affiliate_flush.c.  The design, states, owners
 * and faults are described in docs/internals.md; read it before
 * changing this file.
 */


#include "ngx_http_affiliate_module.h"
#include "ngx_http_affiliate_ring.h"

#include <openssl/rand.h>


/* the layout the comments in ngx_http_affiliate_module.h promise */

_Static_assert(offsetof(ngx_http_affiliate_sh_t, tail)
               == NGX_HTTP_AFFILIATE_LINE,
               "the flusher's fields start a line of their own");
_Static_assert(offsetof(ngx_http_affiliate_sh_t, lease)
               == 2 * NGX_HTTP_AFFILIATE_LINE,
               "the flusher's fields fit in one line");
_Static_assert(offsetof(ngx_http_affiliate_sh_t, counters)
               == 3 * NGX_HTTP_AFFILIATE_LINE,
               "the lease fits in one line");
_Static_assert(sizeof(ngx_http_affiliate_counter_t)
               == NGX_HTTP_AFFILIATE_LINE,
               "a counter is one line");
_Static_assert(sizeof(ngx_http_affiliate_slot_t) == 16,
               "a slot's header is two words");
_Static_assert(sizeof(ngx_http_affiliate_rec_head_t) == 16,
               "a record's head keeps its text 8-byte aligned");
_Static_assert(NGX_HTTP_AFFILIATE_KMAX <= NGX_HTTP_AFFILIATE_K_MASK,
               "a record's slots fit in a writer word");
_Static_assert(NGX_HTTP_AFFILIATE_MIN_SLOTS
               > NGX_HTTP_AFFILIATE_QUARANTINE + NGX_HTTP_AFFILIATE_KMAX,
               "a quarantined seq is never another lap's");


static ngx_int_t ngx_http_affiliate_zone_adopt(ngx_shm_zone_t *shm_zone,
    ngx_http_affiliate_zone_t *ozone);
static ngx_int_t ngx_http_affiliate_zone_create(ngx_shm_zone_t *shm_zone);
static ngx_int_t ngx_http_affiliate_zone_table(ngx_slab_pool_t *shpool,
    ngx_http_affiliate_table_t *t, size_t size, size_t entry_size);
static ngx_int_t ngx_http_affiliate_log_check(ngx_http_affiliate_zone_t *zone,
    ngx_log_t *log);


/* this process as a slot's writer: WRITING | start time | pid | 0 */
uint64_t  ngx_http_affiliate_self;


ngx_int_t
ngx_http_affiliate_zone_init(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_affiliate_zone_t  *zone;
    ngx_slab_pool_t            *shpool;

    zone = shm_zone->data;

    /* every log file is open by now, under "nginx -t" too */

    if (ngx_http_affiliate_log_check(zone, shm_zone->shm.log) != NGX_OK) {
        return NGX_ERROR;
    }

    if (data) {
        return ngx_http_affiliate_zone_adopt(shm_zone, data);
    }

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        zone->sh = shpool->data;
        return NGX_OK;
    }

    return ngx_http_affiliate_zone_create(shm_zone);
}


/* a reload: adopt the ring as it is, old workers may still be writing */

static ngx_int_t
ngx_http_affiliate_zone_adopt(ngx_shm_zone_t *shm_zone,
    ngx_http_affiliate_zone_t *ozone)
{
    ngx_http_affiliate_sh_t    *sh;
    ngx_http_affiliate_zone_t  *zone;

    zone = shm_zone->data;
    sh = ozone->sh;

    if (sh->clicks.n != zone->clicks_size / sh->clicks.size
        || sh->unique.n != zone->unique_size / sh->unique.size
        || sh->orders.n != zone->orders_size / sh->orders.size
        || sh->caps.n != zone->caps_size / sh->caps.size
        || sh->stats.n != zone->stats_size / sh->stats.size)
    {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "affiliate zone \"%V\" cannot change its clicks=, "
                      "unique=, orders=, caps= or creators= sizes on "
                      "reload; restart nginx or give the zone a new name",
                      &zone->name);
        return NGX_ERROR;
    }

    zone->sh = sh;

    return NGX_OK;
}


static ngx_int_t
ngx_http_affiliate_zone_create(ngx_shm_zone_t *shm_zone)
{
    size_t                      len;
    uint64_t                    i;
    ngx_slab_pool_t            *shpool;
    ngx_http_affiliate_sh_t    *sh;
    ngx_http_affiliate_zone_t  *zone;

    zone = shm_zone->data;
    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    /* more than half a page: the slab gives whole, aligned pages */

    sh = ngx_slab_calloc(shpool, sizeof(ngx_http_affiliate_sh_t));
    if (sh == NULL) {
        return NGX_ERROR;
    }

    len = sizeof(" in affiliate zone \"\"") + shm_zone->shm.name.len;

    shpool->log_ctx = ngx_slab_alloc(shpool, len);
    if (shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(shpool->log_ctx, " in affiliate zone \"%V\"%Z",
                &shm_zone->shm.name);

    if (RAND_bytes((u_char *) &sh->salt, sizeof(sh->salt)) != 1) {
        sh->salt = (uint64_t) ngx_random() << 32 ^ ngx_random() ^ ngx_time();
    }

    if (ngx_http_affiliate_zone_table(shpool, &sh->clicks, zone->clicks_size,
                                      sizeof(ngx_http_affiliate_click_entry_t))
        != NGX_OK
        || ngx_http_affiliate_zone_table(shpool, &sh->unique,
                                         zone->unique_size,
                                         sizeof(ngx_http_affiliate_entry_t))
           != NGX_OK
        || ngx_http_affiliate_zone_table(shpool, &sh->orders,
                                         zone->orders_size,
                                         sizeof(ngx_http_affiliate_entry_t))
           != NGX_OK
        || ngx_http_affiliate_zone_table(shpool, &sh->caps, zone->caps_size,
                                         sizeof(ngx_http_affiliate_cap_entry_t))
           != NGX_OK
        || ngx_http_affiliate_zone_table(shpool, &sh->stats,
                                         zone->stats_size,
                                         sizeof(ngx_http_affiliate_stat_t))
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    /*
     * carve every page left into slot headers and data, once; the data
     * has KMAX - 1 slots more, so that a record starting near the end
     * is contiguous (its slots' headers wrap, its bytes do not)
     */

    len = shpool->pfree * ngx_pagesize
          - (NGX_HTTP_AFFILIATE_KMAX - 1) * NGX_HTTP_AFFILIATE_SLOT_SIZE
          - ngx_pagesize;

    sh->nslots = len / (sizeof(ngx_http_affiliate_slot_t)
                        + NGX_HTTP_AFFILIATE_SLOT_SIZE);

    if (sh->nslots < NGX_HTTP_AFFILIATE_MIN_SLOTS
        || sh->nslots > NGX_HTTP_AFFILIATE_MAX_SLOTS)
    {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "affiliate zone \"%V\" leaves room for %uL slots "
                      "of the ring, it must be %d to %uL", &zone->name,
                      sh->nslots, NGX_HTTP_AFFILIATE_MIN_SLOTS,
                      NGX_HTTP_AFFILIATE_MAX_SLOTS);
        return NGX_ERROR;
    }

    sh->slots = ngx_slab_alloc(shpool,
                               sh->nslots * sizeof(ngx_http_affiliate_slot_t)
                               + (sh->nslots + NGX_HTTP_AFFILIATE_KMAX - 1)
                                 * NGX_HTTP_AFFILIATE_SLOT_SIZE);
    if (sh->slots == NULL) {
        return NGX_ERROR;
    }

    sh->data = (u_char *) &sh->slots[sh->nslots];

    for (i = 0; i < sh->nslots; i++) {
        sh->slots[i].seq = i;
        sh->slots[i].writer = i;
    }

    shpool->data = sh;
    zone->sh = sh;

    return NGX_OK;
}


static ngx_int_t
ngx_http_affiliate_zone_table(ngx_slab_pool_t *shpool,
    ngx_http_affiliate_table_t *t, size_t size, size_t entry_size)
{
    u_char  *mem;

    size = size / entry_size * entry_size;

    mem = ngx_slab_calloc(shpool, size);
    if (mem == NULL) {
        return NGX_ERROR;
    }

    ngx_http_affiliate_table_init(t, mem, size, entry_size);

    return NGX_OK;
}


/*
 * The zone's log file: an element of cycle->open_files of its own, so
 * that nginx opens it (as the master, O_APPEND) and reopens it on USR1,
 * and calls our flush hook first.  Its name.len counts the terminating
 * zero: ngx_conf_open_file() compares name.len with the length of the
 * path it looks for, so it never hands this element to access_log,
 * error_log or any other module, which would take over its flush and
 * data.  nginx itself uses only name.data, as a C string, to open it.
 */

ngx_open_file_t *
ngx_http_affiliate_log_file(ngx_conf_t *cf, ngx_str_t *path)
{
    ngx_str_t         full;
    ngx_open_file_t  *file;

    full = *path;

    if (ngx_conf_full_name(cf->cycle, &full, 0) != NGX_OK) {
        return NULL;
    }

    file = ngx_list_push(&cf->cycle->open_files);
    if (file == NULL) {
        return NULL;
    }

    file->fd = NGX_INVALID_FILE;
    file->name.len = full.len + 1;
    file->name.data = full.data;
    file->flush = NULL;
    file->data = NULL;

    return file;
}


/*
 * Refuses a zone whose log is the same file (device and inode) as any
 * other open file of the new cycle: another zone's log under another
 * spelling, an access_log, an error_log, another module's file.  Runs
 * from init_zone, after nginx opened every file; a failure here fails
 * "nginx -t" and a reload keeps the running configuration.
 */

static ngx_int_t
ngx_http_affiliate_log_check(ngx_http_affiliate_zone_t *zone, ngx_log_t *log)
{
    ngx_uint_t        i;
    ngx_file_info_t   fi, ofi;
    ngx_list_part_t  *part;
    ngx_open_file_t  *file;

    if (ngx_fd_info(zone->file->fd, &fi) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_EMERG, log, ngx_errno,
                      ngx_fd_info_n " \"%s\" failed", zone->file->name.data);
        return NGX_ERROR;
    }

    /* /dev/null and terminals may be shared harmlessly */

    if (S_ISCHR(fi.st_mode)) {
        return NGX_OK;
    }

    part = &zone->cycle->open_files.part;
    file = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }
            part = part->next;
            file = part->elts;
            i = 0;
        }

        if (&file[i] == zone->file || file[i].fd == NGX_INVALID_FILE) {
            continue;
        }

        if (ngx_fd_info(file[i].fd, &ofi) == NGX_FILE_ERROR
            || ofi.st_dev != fi.st_dev || ofi.st_ino != fi.st_ino)
        {
            continue;
        }

        ngx_log_error(NGX_LOG_EMERG, log, 0,
                      "affiliate_log \"%s\" in %s:%ui is the same file as "
                      "%s \"%s\"; each affiliate_log needs a file of its "
                      "own", zone->file->name.data, zone->log_conf_file,
                      zone->log_conf_line,
                      (file[i].name.len
                       && file[i].name.data[file[i].name.len - 1] == '\0')
                      ? "another affiliate_log" : "the log",
                      file[i].name.len ? file[i].name.data
                                       : (u_char *) "stderr");
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * The head word made whole: its low halves are the next slot position
 * and the next record's number modulo 2^32; the tail (exact) and the
 * tail's record number (about: it misses the lost records since the
 * last release) are never more than 2^31 behind, nor ahead.
 */

void
ngx_http_affiliate_head(ngx_http_affiliate_sh_t *sh, uint64_t h,
    uint64_t *pos, uint64_t *rec)
{
    uint64_t  tail, tail_rec;

    tail = __atomic_load_n(&sh->tail, __ATOMIC_ACQUIRE);
    tail_rec = __atomic_load_n(&sh->tail_rec, __ATOMIC_RELAXED);

    *pos = tail + (int64_t) (int32_t) ((uint32_t) h - (uint32_t) tail);

    if (rec) {
        *rec = tail_rec + (int64_t) (int32_t) ((uint32_t) (h >> 32)
                                               - (uint32_t) tail_rec);
    }
}


/* the head word after a claim of n slots at h */

static ngx_inline uint64_t
ngx_http_affiliate_head_next(uint64_t h, uint64_t n)
{
    return ((h >> 32) + 1) << 32 | (uint32_t) (h + n);
}


/*
 * Claims nslots consecutive slots for one record, without a lock.  The
 * first slot is reserved with a CAS on its writer word (pos -> this
 * process | nslots), then the head moves past the record; a producer
 * that finds a reservation the head has not passed yet moves the head
 * for it (the reserver may have died in between).  A slot is free for
 * position pos when its seq equals pos (Vyukov's bounded queue).
 * Returns the first slot's position and the record's number, or
 * (uint64_t) -1 when the ring is full there.
 */

uint64_t
ngx_http_affiliate_ring_reserve(ngx_http_affiliate_sh_t *sh, uint64_t nslots,
    uint64_t *rec)
{
    int64_t                     dif;
    uint64_t                    h, pos, seq, w, i;
    ngx_http_affiliate_slot_t  *slot;

    for ( ;; ) {
        h = __atomic_load_n(&sh->head, __ATOMIC_ACQUIRE);
        ngx_http_affiliate_head(sh, h, &pos, rec);

        slot = &sh->slots[pos % sh->nslots];
        seq = __atomic_load_n(&slot->seq, __ATOMIC_ACQUIRE);
        dif = (int64_t) (seq - pos);

        if (dif < 0) {
            return (uint64_t) -1;
        }

        if (dif > 0) {
            continue;
        }

        w = __atomic_load_n(&slot->writer, __ATOMIC_ACQUIRE);

        if (w != pos) {
            if (w & NGX_HTTP_AFFILIATE_WRITING) {
                (void) __atomic_compare_exchange_n(&sh->head, &h,
                           ngx_http_affiliate_head_next(h,
                               w & NGX_HTTP_AFFILIATE_K_MASK),
                           0, __ATOMIC_RELEASE, __ATOMIC_RELAXED);
            }

            continue;
        }

        for (i = 1; i < nslots; i++) {
            seq = __atomic_load_n(&sh->slots[(pos + i) % sh->nslots].seq,
                                  __ATOMIC_ACQUIRE);
            if (seq != pos + i) {
                break;
            }
        }

        if (i < nslots) {
            if ((int64_t) (seq - (pos + i)) < 0
                && __atomic_load_n(&sh->head, __ATOMIC_ACQUIRE) == h)
            {
                return (uint64_t) -1;
            }

            continue;
        }

        if (__atomic_compare_exchange_n(&slot->writer, &w,
                                        ngx_http_affiliate_self | nslots, 0,
                                        __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
        {
            (void) __atomic_compare_exchange_n(&sh->head, &h,
                       ngx_http_affiliate_head_next(h, nslots),
                       0, __ATOMIC_RELEASE, __ATOMIC_RELAXED);
            return pos;
        }
    }
}


/*
 * Publishes a written record.  Its head (number, length, slots) and the
 * writer word "written, ready for the next lap" first; then seq says
 * "published".  If the flusher quarantined the record meanwhile (counted
 * lost), its slots are handed back for the next lap instead; if it
 * published it on our behalf, nothing is left to do.
 */

void
ngx_http_affiliate_ring_publish(ngx_http_affiliate_sh_t *sh, uint64_t pos,
    uint64_t rec, size_t len, uint64_t nslots)
{
    uint64_t                        expected;
    ngx_http_affiliate_slot_t      *slot;
    ngx_http_affiliate_rec_head_t  *rh;

    slot = &sh->slots[pos % sh->nslots];
    rh = ngx_http_affiliate_rec(sh, pos);

    rh->rec = rec;
    rh->len = (uint32_t) len;
    rh->nslots = (uint32_t) nslots;

    __atomic_store_n(&slot->writer, pos + sh->nslots, __ATOMIC_RELEASE);

    expected = pos;

    if (__atomic_compare_exchange_n(&slot->seq, &expected, pos + 1, 0,
                                    __ATOMIC_RELEASE, __ATOMIC_RELAXED))
    {
        return;
    }

    if (expected == pos + NGX_HTTP_AFFILIATE_QUARANTINE) {
        (void) ngx_http_affiliate_ring_free(sh, pos, nslots,
                                            pos + sh->nslots, expected);
    }
}


/*
 * Hands a record's slots to the next lap: the slots after the first
 * (their seq and writer are still pos + i), then the first one, whose
 * writer is "writer" and seq "seq".  Compare-and-swaps from those exact
 * states only: nothing of another lap can be freed.  Returns 1 when the
 * first slot was freed by this call.
 */

ngx_uint_t
ngx_http_affiliate_ring_free(ngx_http_affiliate_sh_t *sh, uint64_t pos,
    uint64_t nslots, uint64_t writer, uint64_t seq)
{
    uint64_t                    n, i, expected;
    ngx_http_affiliate_slot_t  *slot;

    n = sh->nslots;

    for (i = 1; i < nslots; i++) {
        slot = &sh->slots[(pos + i) % n];

        expected = pos + i;
        (void) __atomic_compare_exchange_n(&slot->writer, &expected,
                                           pos + i + n, 0, __ATOMIC_RELAXED,
                                           __ATOMIC_RELAXED);
        expected = pos + i;
        (void) __atomic_compare_exchange_n(&slot->seq, &expected,
                                           pos + i + n, 0, __ATOMIC_RELEASE,
                                           __ATOMIC_RELAXED);
    }

    slot = &sh->slots[pos % n];

    (void) __atomic_compare_exchange_n(&slot->writer, &writer, pos + n, 0,
                                       __ATOMIC_RELAXED, __ATOMIC_RELAXED);

    return __atomic_compare_exchange_n(&slot->seq, &seq, pos + n, 0,
                                       __ATOMIC_RELEASE, __ATOMIC_RELAXED);
}


/*
 * Formats the record into this worker's scratch buffer, then claims its
 * slots, copies and publishes: between claim and publish there is only
 * a bounded copy.  The record ends with "seq", known once claimed.
 */

ngx_int_t
ngx_http_affiliate_record(ngx_http_request_t *r,
    ngx_http_affiliate_zone_t *zone, ngx_http_affiliate_ctx_t *ctx,
    ngx_http_affiliate_type_e type)
{
    u_char                   *p, *start;
    size_t                    len;
    int64_t                   last;
    uint64_t                  pos, rec, tail, k;
    ngx_http_affiliate_sh_t  *sh;

    sh = zone->sh;

    if (zone->scratch == NULL) {
        return NGX_DECLINED;
    }

    len = ngx_http_affiliate_record_format(r, ctx, type, 0, zone->scratch,
                                           NGX_HTTP_AFFILIATE_RECORD_MAX
                                           - NGX_INT64_LEN);

    if (len < 3 || len > NGX_HTTP_AFFILIATE_RECORD_MAX
        || ngx_memcmp(zone->scratch + len - 3, "0}\n", 3) != 0)
    {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "affiliate record does not end with \"seq\"");
        return NGX_ERROR;
    }

    len -= 3;

    k = (sizeof(ngx_http_affiliate_rec_head_t) + len
         + NGX_HTTP_AFFILIATE_SEQ_ROOM + NGX_HTTP_AFFILIATE_SLOT_SIZE - 1)
        / NGX_HTTP_AFFILIATE_SLOT_SIZE;

    pos = ngx_http_affiliate_ring_reserve(sh, k, &rec);

    if (pos == (uint64_t) -1) {
        ngx_http_affiliate_count(sh, NGX_HTTP_AFFILIATE_DROPPED);

        last = __atomic_load_n(&sh->drop_alert, __ATOMIC_RELAXED);

        if (last + NGX_HTTP_AFFILIATE_ALERT_EVERY <= ngx_time()
            && __atomic_compare_exchange_n(&sh->drop_alert, &last,
                                           (int64_t) ngx_time(), 0,
                                           __ATOMIC_RELAXED,
                                           __ATOMIC_RELAXED))
        {
            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "affiliate zone \"%V\" is full, records dropped "
                          "(warned at most once a minute)", &zone->name);
        }

        return NGX_DECLINED;
    }

    start = (u_char *) (ngx_http_affiliate_rec(sh, pos) + 1);

    p = ngx_cpymem(start, zone->scratch, len);
    p = ngx_http_affiliate_uint_str(p, rec + 1);
    *p++ = '}';
    *p++ = '\n';

    ngx_http_affiliate_ring_publish(sh, pos, rec, p - start, k);

    /* past the high-water mark this worker flushes once the event ends */

    tail = __atomic_load_n(&sh->tail, __ATOMIC_RELAXED);

    if ((int64_t) (pos + k - tail) >= (int64_t) sh->nslots / 2
        && !zone->flush_event.posted
        && zone->flush_event.handler)
    {
        ngx_post_event(&zone->flush_event, &ngx_posted_events);
    }

    return NGX_OK;
}


/*
 * For the status: records accepted (got a seq), records waiting, slots
 * in use, and the records of the average size written so far (or of
 * NGX_HTTP_AFFILIATE_TYPICAL bytes) the ring holds.
 */

void
ngx_http_affiliate_ring_usage(ngx_http_affiliate_sh_t *sh,
    uint64_t *accepted, uint64_t *records, uint64_t *slots,
    uint64_t *capacity)
{
    uint64_t  h, pos, rec, tail, done, written, avg, digits, d;

    h = __atomic_load_n(&sh->head, __ATOMIC_ACQUIRE);
    ngx_http_affiliate_head(sh, h, &pos, &rec);

    tail = __atomic_load_n(&sh->tail, __ATOMIC_ACQUIRE);
    written = __atomic_load_n(&sh->written, __ATOMIC_RELAXED);
    done = written + __atomic_load_n(&sh->lost, __ATOMIC_RELAXED);

    *accepted = rec;
    *records = rec > done ? rec - done : 0;
    *slots = pos > tail ? ngx_min(pos - tail, sh->nslots) : 0;

    avg = written ? __atomic_load_n(&sh->bytes, __ATOMIC_RELAXED) / written
                  : NGX_HTTP_AFFILIATE_TYPICAL;

    /* a producer reserves room for 20 digits, the line has fewer */

    for (digits = 1, d = rec + 1; d >= 10; d /= 10) {
        digits++;
    }

    *capacity = sh->nslots
                / ((sizeof(ngx_http_affiliate_rec_head_t) + avg
                    + NGX_HTTP_AFFILIATE_SEQ_ROOM - 2 - digits
                    + NGX_HTTP_AFFILIATE_SLOT_SIZE - 1)
                   / NGX_HTTP_AFFILIATE_SLOT_SIZE);
}


