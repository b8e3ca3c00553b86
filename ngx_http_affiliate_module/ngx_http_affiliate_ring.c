
/*
 * Copyright (C) ngx_http_affiliate_module authors
 *
 * The record ring in shared memory, its flusher and the zone's log file.
 * The design, states, owners and faults are described in
 * docs/internals.md; read it before changing this file.
 */


#include "ngx_http_affiliate_module.h"

#include <openssl/rand.h>


#define NGX_HTTP_AFFILIATE_BUF_SIZE      (512 * 1024)
#define NGX_HTTP_AFFILIATE_ALERT_EVERY   60

/* a claimed slot not published for this long (ms) is given up */
#define NGX_HTTP_AFFILIATE_LOST_AFTER    1000

/* a flusher lease not refreshed for this long (ms) is taken over */
#define NGX_HTTP_AFFILIATE_LEASE_STALE   3000

/*
 * The exit drain's bound (ms).  On TERM the master re-sends TERM at
 * 150, 350, 750 and 1550 ms; from then on its next wake-up (any worker
 * exiting, or the 3150 ms alarm) sends SIGKILL.  On QUIT it waits
 * without a limit, but Debian's nginx.service stops with QUIT and
 * SIGKILLs everything 5 s later; the bound still outlasts a stale lease.
 */
#define NGX_HTTP_AFFILIATE_EXIT_TERM     1000
#define NGX_HTTP_AFFILIATE_EXIT_QUIT     4000

/* the lease word: the beat in wall-clock ms << 22 | the holder's pid */
#define NGX_HTTP_AFFILIATE_PID_BITS      22
#define NGX_HTTP_AFFILIATE_PID_MASK                                          \
    ((1ULL << NGX_HTTP_AFFILIATE_PID_BITS) - 1)

/*
 * A first slot's writer word while its producer copies (a reservation):
 * this bit | start time (36 bits) | pid (22 bits) | the record's slots
 */
#define NGX_HTTP_AFFILIATE_WRITING       (1ULL << 63)
#define NGX_HTTP_AFFILIATE_START_SHIFT   27
#define NGX_HTTP_AFFILIATE_START_MASK    ((1ULL << 36) - 1)
#define NGX_HTTP_AFFILIATE_PID_SHIFT     5
#define NGX_HTTP_AFFILIATE_K_MASK        31ULL

/* the most slots a record takes */
#define NGX_HTTP_AFFILIATE_KMAX                                              \
    ((NGX_HTTP_AFFILIATE_RECORD_MAX + sizeof(ngx_http_affiliate_rec_head_t) \
      + NGX_HTTP_AFFILIATE_SLOT_SIZE - 1) / NGX_HTTP_AFFILIATE_SLOT_SIZE)

/* bytes a producer reserves for "seq" and "}\n" before it knows seq */
#define NGX_HTTP_AFFILIATE_SEQ_ROOM      (NGX_INT64_LEN + 2)

/* "capacity" counts records of the average size, this before any */
#define NGX_HTTP_AFFILIATE_TYPICAL       600

/*
 * The head word: the next record's number (low 32 bits) << 32 | the next
 * slot position (low 32 bits); both are made whole again from the tail
 * (see ngx_http_affiliate_head()), so the ring holds fewer than 2^30.
 */
#define NGX_HTTP_AFFILIATE_MAX_SLOTS     (1ULL << 30)

/* seq of a slot given up while its live writer still copies into it */
#define NGX_HTTP_AFFILIATE_QUARANTINE    2

#define NGX_HTTP_AFFILIATE_MIN_SLOTS     64


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
static uint64_t ngx_http_affiliate_proc_start(ngx_pid_t pid,
    ngx_uint_t *zombie);
static ngx_uint_t ngx_http_affiliate_writer_gone(uint64_t writer);
static void ngx_http_affiliate_head(ngx_http_affiliate_sh_t *sh, uint64_t h,
    uint64_t *pos, uint64_t *rec);
static ngx_uint_t ngx_http_affiliate_ring_free(ngx_http_affiliate_sh_t *sh,
    uint64_t pos, uint64_t nslots, uint64_t writer, uint64_t seq);
static ngx_int_t ngx_http_affiliate_flush(ngx_http_affiliate_zone_t *zone,
    ngx_log_t *log, ngx_uint_t exiting);
static ngx_int_t ngx_http_affiliate_flush_batch(
    ngx_http_affiliate_zone_t *zone, ngx_log_t *log);
static ngx_int_t ngx_http_affiliate_stalled(ngx_http_affiliate_zone_t *zone,
    uint64_t pos, ngx_log_t *log);
static void ngx_http_affiliate_quarantine_check(
    ngx_http_affiliate_zone_t *zone, ngx_log_t *log);
static ngx_int_t ngx_http_affiliate_write_failed(
    ngx_http_affiliate_zone_t *zone, ngx_log_t *log, ngx_err_t err);
static void ngx_http_affiliate_consume(ngx_http_affiliate_sh_t *sh,
    uint64_t pos, size_t n);
static ngx_inline ngx_http_affiliate_rec_head_t *ngx_http_affiliate_rec(
    ngx_http_affiliate_sh_t *sh, uint64_t pos);
static ngx_uint_t ngx_http_affiliate_lease_take(
    ngx_http_affiliate_zone_t *zone, ngx_log_t *log);
static ngx_uint_t ngx_http_affiliate_lease_refresh(
    ngx_http_affiliate_zone_t *zone);
static void ngx_http_affiliate_lease_release(ngx_http_affiliate_zone_t *zone);
static void ngx_http_affiliate_flush_handler(ngx_event_t *ev);
static void ngx_http_affiliate_file_flush(ngx_open_file_t *file,
    ngx_log_t *log);
static uint64_t ngx_http_affiliate_wall_msec(void);


/* this process as a slot's writer: WRITING | start time | pid | 0 */
static uint64_t  ngx_http_affiliate_self;


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

static void
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


static ngx_inline ngx_http_affiliate_rec_head_t *
ngx_http_affiliate_rec(ngx_http_affiliate_sh_t *sh, uint64_t pos)
{
    return (ngx_http_affiliate_rec_head_t *)
               (sh->data + pos % sh->nslots * NGX_HTTP_AFFILIATE_SLOT_SIZE);
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

static ngx_uint_t
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
    p = ngx_sprintf(p, "%uL}\n", rec + 1);

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


ngx_int_t
ngx_http_affiliate_ring_init_process(ngx_cycle_t *cycle,
    ngx_http_affiliate_zone_t *zone)
{
    ngx_uint_t  zombie;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    ngx_http_affiliate_self = NGX_HTTP_AFFILIATE_WRITING
        | (ngx_http_affiliate_proc_start(ngx_pid, &zombie)
           & NGX_HTTP_AFFILIATE_START_MASK) << NGX_HTTP_AFFILIATE_START_SHIFT
        | ((uint64_t) ngx_pid & NGX_HTTP_AFFILIATE_PID_MASK)
          << NGX_HTTP_AFFILIATE_PID_SHIFT;

    zone->buf_size = NGX_HTTP_AFFILIATE_BUF_SIZE;

    zone->buf = ngx_palloc(cycle->pool, zone->buf_size);
    if (zone->buf == NULL) {
        return NGX_ERROR;
    }

    zone->scratch = ngx_palloc(cycle->pool, NGX_HTTP_AFFILIATE_RECORD_MAX);
    if (zone->scratch == NULL) {
        return NGX_ERROR;
    }

    zone->flush_event.handler = ngx_http_affiliate_flush_handler;
    zone->flush_event.data = zone;
    zone->flush_event.log = cycle->log;
    zone->flush_event.cancelable = 1;

    zone->file->flush = ngx_http_affiliate_file_flush;
    zone->file->data = zone;

    ngx_add_timer(&zone->flush_event, zone->flush);

    return NGX_OK;
}


/*
 * On a graceful exit (quit, reload, TERM) drain every record that was
 * published before now, one buffer at a time, for a bounded time.
 * nginx has already flushed its own buffers, the fd is still open.
 * Another worker may hold the flusher lease: wait for it a little, this
 * is not a request path.
 */

void
ngx_http_affiliate_ring_exit_process(ngx_cycle_t *cycle,
    ngx_http_affiliate_zone_t *zone)
{
    uint64_t                  target, tail, before;
    ngx_msec_t                start, bound;
    ngx_http_affiliate_sh_t  *sh;

    if (zone->buf == NULL) {
        return;
    }

    sh = zone->sh;
    bound = ngx_terminate ? NGX_HTTP_AFFILIATE_EXIT_TERM
                          : NGX_HTTP_AFFILIATE_EXIT_QUIT;

    ngx_time_update();

    ngx_http_affiliate_head(sh, __atomic_load_n(&sh->head, __ATOMIC_ACQUIRE),
                            &target, NULL);
    start = ngx_current_msec;

    for ( ;; ) {
        before = __atomic_load_n(&sh->tail, __ATOMIC_ACQUIRE);

        (void) ngx_http_affiliate_flush(zone, cycle->log, 1);

        tail = __atomic_load_n(&sh->tail, __ATOMIC_ACQUIRE);

        if (tail >= target) {
            return;
        }

        ngx_time_update();

        if ((ngx_msec_int_t) (ngx_current_msec - start)
            >= (ngx_msec_int_t) bound)
        {
            ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                          "affiliate zone \"%V\": %uL slots of records "
                          "left unflushed at exit", &zone->name,
                          target - tail);
            return;
        }

        if (tail == before) {
            ngx_msleep(5);
        }
    }
}


/*
 * One buffer per event.  More waiting: run again in the next turn of
 * the event loop, after epoll has been polled; an event posted to
 * ngx_posted_events would run again before any I/O, as one long loop.
 */

static void
ngx_http_affiliate_flush_handler(ngx_event_t *ev)
{
    ngx_http_affiliate_zone_t  *zone = ev->data;

    if (ngx_http_affiliate_flush(zone, ev->log, 0) == NGX_AGAIN
        && !ev->posted)
    {
        ngx_post_event(ev, &ngx_posted_next_events);
    }

    if (!ev->timer_set && !ngx_exiting && !ngx_quit && !ngx_terminate) {
        ngx_add_timer(ev, zone->flush);
    }
}


/* called by nginx before it reopens the file on USR1 */

static void
ngx_http_affiliate_file_flush(ngx_open_file_t *file, ngx_log_t *log)
{
    ngx_http_affiliate_zone_t  *zone = file->data;

    if (ngx_http_affiliate_flush(zone, log, 0) == NGX_AGAIN
        && !zone->flush_event.posted)
    {
        ngx_post_event(&zone->flush_event, &ngx_posted_next_events);
    }
}


/* one flush: NGX_AGAIN when more is waiting, NGX_DECLINED: no lease */

static ngx_int_t
ngx_http_affiliate_flush(ngx_http_affiliate_zone_t *zone, ngx_log_t *log,
    ngx_uint_t exiting)
{
    ngx_int_t                 rc;
    ngx_http_affiliate_sh_t  *sh;

    sh = zone->sh;

    if (!ngx_http_affiliate_lease_take(zone, log)) {
        return NGX_DECLINED;
    }

    ngx_http_affiliate_quarantine_check(zone, log);

    rc = NGX_OK;

    if (exiting
        || __atomic_load_n(&sh->retry_at, __ATOMIC_RELAXED) <= ngx_time())
    {
        rc = ngx_http_affiliate_flush_batch(zone, log);
    }

    ngx_http_affiliate_lease_release(zone);

    return rc;
}


/*
 * Copies published records from the tail into the worker's buffer and
 * writes them with one write(); slots are released only once written.
 * Returns NGX_AGAIN when there is more to write.
 */

static ngx_int_t
ngx_http_affiliate_flush_batch(ngx_http_affiliate_zone_t *zone,
    ngx_log_t *log)
{
    u_char                         *p, *end;
    size_t                          len, off;
    ssize_t                         n;
    uint64_t                        tail, pos, head, seq;
    ngx_http_affiliate_sh_t        *sh;
    ngx_http_affiliate_rec_head_t  *rh;

    sh = zone->sh;

    tail = __atomic_load_n(&sh->tail, __ATOMIC_ACQUIRE);
    off = __atomic_load_n(&sh->tail_off, __ATOMIC_RELAXED);
    ngx_http_affiliate_head(sh, __atomic_load_n(&sh->head, __ATOMIC_ACQUIRE),
                            &head, NULL);

    pos = tail;
    p = zone->buf;
    end = zone->buf + zone->buf_size;

    while (pos < head) {
        seq = __atomic_load_n(&sh->slots[pos % sh->nslots].seq,
                              __ATOMIC_ACQUIRE);

        if (seq == pos + 1) {
            rh = ngx_http_affiliate_rec(sh, pos);
            len = rh->len - off;

            if ((size_t) (end - p) < len
                || rh->nslots == 0 || rh->nslots > NGX_HTTP_AFFILIATE_KMAX)
            {
                break;
            }

            p = ngx_cpymem(p, (u_char *) (rh + 1) + off, len);
            off = 0;
            pos += rh->nslots;
            continue;
        }

        /* claimed and not yet published: write what comes before it */

        if (p != zone->buf
            || ngx_http_affiliate_stalled(zone, pos, log) != NGX_OK)
        {
            break;
        }

        /* given up (tail moved past it) or published on its behalf */

        tail = __atomic_load_n(&sh->tail, __ATOMIC_ACQUIRE);
        pos = tail;
        off = 0;
    }

    len = p - zone->buf;

    if (len == 0) {
        return NGX_OK;
    }

    n = write(zone->file->fd, zone->buf, len);

    if (n == -1) {
        return ngx_http_affiliate_write_failed(zone, log, ngx_errno);
    }

    /* a holder that lost its lease meanwhile must not touch the ring */

    if (!ngx_http_affiliate_lease_refresh(zone)) {
        return NGX_OK;
    }

    ngx_http_affiliate_consume(sh, tail, n);

    __atomic_fetch_add(&sh->bytes, (uint64_t) n, __ATOMIC_RELAXED);
    __atomic_store_n(&sh->last_flush, ngx_http_affiliate_wall_msec(),
                     __ATOMIC_RELAXED);

    if ((size_t) n != len) {
        /* a partial write: the rest of the record is written next time */
        __atomic_store_n(&sh->retry_at, (int64_t) ngx_time() + 1,
                         __ATOMIC_RELAXED);
        return NGX_OK;
    }

    ngx_http_affiliate_head(sh, __atomic_load_n(&sh->head, __ATOMIC_ACQUIRE),
                            &head, NULL);

    return pos < head ? NGX_AGAIN : NGX_OK;
}


/*
 * The record at the tail (position pos) is claimed but not published.
 * NGX_OK: it was given up or published on its writer's behalf, the
 * caller goes on from the tail; NGX_AGAIN: wait for it.  The stall is
 * timed with ngx_current_msec of whichever worker holds the lease, a
 * cached value: two workers' clocks are compared with a signed
 * difference, so an older clock only waits longer.
 */

static ngx_int_t
ngx_http_affiliate_stalled(ngx_http_affiliate_zone_t *zone, uint64_t pos,
    ngx_log_t *log)
{
    char                       *what;
    uint64_t                    n, k, writer, expected, since;
    ngx_msec_t                  now;
    ngx_http_affiliate_sh_t    *sh;
    ngx_http_affiliate_slot_t  *slot;

    sh = zone->sh;
    n = sh->nslots;
    slot = &sh->slots[pos % n];
    now = ngx_current_msec;

    if (__atomic_load_n(&sh->stall_pos, __ATOMIC_RELAXED) != pos + 1) {
        __atomic_store_n(&sh->stall_since, (uint64_t) now, __ATOMIC_RELAXED);
        __atomic_store_n(&sh->stall_pos, pos + 1, __ATOMIC_RELAXED);
        return NGX_AGAIN;
    }

    since = __atomic_load_n(&sh->stall_since, __ATOMIC_RELAXED);

    if ((ngx_msec_int_t) (now - (ngx_msec_t) since)
        < NGX_HTTP_AFFILIATE_LOST_AFTER)
    {
        return NGX_AGAIN;
    }

    writer = __atomic_load_n(&slot->writer, __ATOMIC_ACQUIRE);

    if (writer == pos + n) {

        /* written, the producer stopped just before publishing */

        expected = pos;

        if (__atomic_compare_exchange_n(&slot->seq, &expected, pos + 1, 0,
                                        __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        {
            ngx_log_error(NGX_LOG_NOTICE, log, 0,
                          "affiliate zone \"%V\": record %uL published on "
                          "behalf of its stalled writer", &zone->name,
                          ngx_http_affiliate_rec(sh, pos)->rec + 1);
        }

        return NGX_OK;
    }

    /* the head passes a slot only once it is reserved */

    if (!(writer & NGX_HTTP_AFFILIATE_WRITING)) {
        return NGX_AGAIN;
    }

    k = writer & NGX_HTTP_AFFILIATE_K_MASK;

    if (ngx_http_affiliate_writer_gone(writer)) {

        /* its writer died while copying: nobody can write it any more */

        expected = __atomic_load_n(&slot->seq, __ATOMIC_ACQUIRE);

        if (expected != pos) {
            return NGX_OK;
        }

        if (!ngx_http_affiliate_ring_free(sh, pos, k, writer, pos)) {
            return NGX_OK;
        }

        what = "its writer died";

    } else {

        /*
         * a live writer stalled while copying (stopped, swapped out):
         * skip the record, but keep its slots out of the next lap until
         * the writer hands them back or is known to be gone
         */

        expected = pos;

        if (!__atomic_compare_exchange_n(&slot->seq, &expected,
                                         pos + NGX_HTTP_AFFILIATE_QUARANTINE,
                                         0, __ATOMIC_ACQ_REL,
                                         __ATOMIC_ACQUIRE))
        {
            return NGX_OK;
        }

        what = "its writer is stalled, the slot is quarantined";
    }

    __atomic_fetch_add(&sh->lost, 1, __ATOMIC_RELAXED);
    __atomic_store_n(&sh->tail_off, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&sh->tail, pos + k, __ATOMIC_RELEASE);

    ngx_log_error(NGX_LOG_ALERT, log, 0,
                  "affiliate zone \"%V\": a record at position %uL was never "
                  "published, counted as lost (%s)", &zone->name, pos, what);

    return NGX_OK;
}


/*
 * A quarantined record blocks its next lap: the producers see the ring
 * full at or just after the head.  Hand it back once its writer is gone.
 */

static void
ngx_http_affiliate_quarantine_check(ngx_http_affiliate_zone_t *zone,
    ngx_log_t *log)
{
    uint64_t                    n, i, head, pos, seq, writer;
    ngx_http_affiliate_sh_t    *sh;
    ngx_http_affiliate_slot_t  *slot;

    sh = zone->sh;
    n = sh->nslots;
    ngx_http_affiliate_head(sh, __atomic_load_n(&sh->head, __ATOMIC_ACQUIRE),
                            &head, NULL);

    /* the first slot from the head on that is not free */

    for (i = 0; /* void */ ; i++) {
        if (i == NGX_HTTP_AFFILIATE_KMAX) {
            return;
        }

        slot = &sh->slots[(head + i) % n];
        seq = __atomic_load_n(&slot->seq, __ATOMIC_ACQUIRE);

        if (seq != head + i) {
            break;
        }
    }

    /* a quarantined first slot of the previous lap */

    if (head + i < n || seq != head + i - n + NGX_HTTP_AFFILIATE_QUARANTINE) {
        return;
    }

    pos = head + i - n;
    writer = __atomic_load_n(&slot->writer, __ATOMIC_ACQUIRE);

    if (!(writer & NGX_HTTP_AFFILIATE_WRITING)
        || !ngx_http_affiliate_writer_gone(writer))
    {
        return;
    }

    if (ngx_http_affiliate_ring_free(sh, pos,
                                     writer & NGX_HTTP_AFFILIATE_K_MASK,
                                     writer,
                                     pos + NGX_HTTP_AFFILIATE_QUARANTINE))
    {
        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "affiliate zone \"%V\": the writer of the record at "
                      "position %uL is gone, its slots are free again",
                      &zone->name, pos);
    }
}


/*
 * A writer is gone when no process has its pid, when the process is a
 * zombie, or (Linux) when the process with its pid started at another
 * time: the pid was reused.
 */

static ngx_uint_t
ngx_http_affiliate_writer_gone(uint64_t writer)
{
    uint64_t    start;
    ngx_pid_t   pid;
    ngx_uint_t  zombie;

    if ((writer & ~NGX_HTTP_AFFILIATE_K_MASK) == ngx_http_affiliate_self) {
        return 0;
    }

    pid = (ngx_pid_t) ((writer >> NGX_HTTP_AFFILIATE_PID_SHIFT)
                       & NGX_HTTP_AFFILIATE_PID_MASK);

    if (kill(pid, 0) == -1 && ngx_errno == NGX_ESRCH) {
        return 1;
    }

    start = ngx_http_affiliate_proc_start(pid, &zombie);

    if (zombie) {
        return 1;
    }

    return start
           && start != ((writer >> NGX_HTTP_AFFILIATE_START_SHIFT)
                        & NGX_HTTP_AFFILIATE_START_MASK);
}


/* the start time of a process (Linux: /proc/PID/stat field 22); 0: unknown */

#if (NGX_LINUX)

static uint64_t
ngx_http_affiliate_proc_start(ngx_pid_t pid, ngx_uint_t *zombie)
{
    u_char      *p, *last, buf[1024], name[64];
    ssize_t      n;
    ngx_fd_t     fd;
    uint64_t     start;
    ngx_uint_t   field;

    *zombie = 0;

    ngx_sprintf(name, "/proc/%P/stat%Z", pid);

    fd = ngx_open_file(name, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        return 0;
    }

    n = read(fd, buf, sizeof(buf));
    (void) ngx_close_file(fd);

    if (n <= 0) {
        return 0;
    }

    last = buf + n;
    p = last;

    /* the command may contain anything, it ends at the last ')' */

    while (p > buf && p[-1] != ')') {
        p--;
    }

    if (p == buf || last - p < 3) {
        return 0;
    }

    /* " S ppid ...": the state is field 3, the start time field 22 */

    p++;
    *zombie = (*p == 'Z');

    for (field = 3; field < 22; field++) {
        while (p < last && *p != ' ') {
            p++;
        }

        if (p++ == last) {
            return 0;
        }
    }

    start = 0;

    while (p < last && *p >= '0' && *p <= '9') {
        start = start * 10 + (*p++ - '0');
    }

    return start & NGX_HTTP_AFFILIATE_START_MASK;
}

#else

static uint64_t
ngx_http_affiliate_proc_start(ngx_pid_t pid, ngx_uint_t *zombie)
{
    *zombie = 0;

    return 0;
}

#endif


/* keep the records; retry in a second, alert once a minute */

static ngx_int_t
ngx_http_affiliate_write_failed(ngx_http_affiliate_zone_t *zone,
    ngx_log_t *log, ngx_err_t err)
{
    int64_t                   now;
    ngx_http_affiliate_sh_t  *sh;

    if (err == NGX_EINTR || err == NGX_EAGAIN) {
        return NGX_AGAIN;
    }

    sh = zone->sh;
    now = ngx_time();

    __atomic_store_n(&sh->retry_at, now + 1, __ATOMIC_RELAXED);

    if (__atomic_load_n(&sh->write_alert, __ATOMIC_RELAXED)
        + NGX_HTTP_AFFILIATE_ALERT_EVERY <= now)
    {
        __atomic_store_n(&sh->write_alert, now, __ATOMIC_RELAXED);

        ngx_log_error(NGX_LOG_ALERT, log, err,
                      "affiliate zone \"%V\": write() to \"%s\" failed, "
                      "records stay in the ring and new ones are "
                      "dropped while it is full", &zone->name,
                      zone->file->name.data);
    }

    return NGX_OK;
}


/*
 * Releases the slots whose bytes were written, n bytes from position
 * pos (the tail this batch started from).  Compare-and-swaps only: a
 * flusher that lost its lease cannot release another lap's slot or move
 * the tail back.
 */

static void
ngx_http_affiliate_consume(ngx_http_affiliate_sh_t *sh, uint64_t pos,
    size_t n)
{
    size_t                          len, off;
    uint64_t                        tail, k;
    ngx_http_affiliate_slot_t      *slot;
    ngx_http_affiliate_rec_head_t  *rh;

    tail = pos;
    off = __atomic_load_n(&sh->tail_off, __ATOMIC_RELAXED);

    while (n) {
        slot = &sh->slots[pos % sh->nslots];

        if (__atomic_load_n(&slot->seq, __ATOMIC_ACQUIRE) != pos + 1) {
            return;
        }

        rh = ngx_http_affiliate_rec(sh, pos);
        len = rh->len - off;
        k = rh->nslots;

        if (n < len) {
            off += n;
            break;
        }

        n -= len;
        off = 0;

        __atomic_store_n(&sh->tail_rec, rh->rec + 1, __ATOMIC_RELAXED);

        if (!ngx_http_affiliate_ring_free(sh, pos, k, pos + sh->nslots,
                                          pos + 1))
        {
            return;
        }

        __atomic_fetch_add(&sh->written, 1, __ATOMIC_RELAXED);
        pos += k;
    }

    __atomic_store_n(&sh->tail_off, (uint64_t) off, __ATOMIC_RELAXED);
    (void) __atomic_compare_exchange_n(&sh->tail, &tail, pos, 0,
                                       __ATOMIC_RELEASE, __ATOMIC_RELAXED);
}


/*
 * The flusher lease: one word, the holder's last beat in wall-clock ms
 * and its pid.  Free (0), ours, stale (no beat for LEASE_STALE ms) or
 * held by a pid that no longer exists: taken with a compare-and-swap.
 * Whose pid it is matters only for that shortcut, so a reused pid
 * cannot keep the lease.  No request ever waits for it.
 */

static ngx_uint_t
ngx_http_affiliate_lease_take(ngx_http_affiliate_zone_t *zone,
    ngx_log_t *log)
{
    uint64_t                  old, want, now, beat;
    ngx_pid_t                 pid;
    ngx_http_affiliate_sh_t  *sh;

    sh = zone->sh;
    now = ngx_http_affiliate_wall_msec();
    want = now << NGX_HTTP_AFFILIATE_PID_BITS
           | ((uint64_t) ngx_pid & NGX_HTTP_AFFILIATE_PID_MASK);

    old = __atomic_load_n(&sh->lease, __ATOMIC_ACQUIRE);
    pid = (ngx_pid_t) (old & NGX_HTTP_AFFILIATE_PID_MASK);
    beat = old >> NGX_HTTP_AFFILIATE_PID_BITS;

    if (old != 0 && pid != ngx_pid
        && (int64_t) (now - beat) < NGX_HTTP_AFFILIATE_LEASE_STALE
        && !(kill(pid, 0) == -1 && ngx_errno == NGX_ESRCH))
    {
        return 0;
    }

    if (!__atomic_compare_exchange_n(&sh->lease, &old, want, 0,
                                     __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
    {
        return 0;
    }

    zone->lease = want;

    if (old != 0 && pid != ngx_pid) {
        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "affiliate zone \"%V\": flusher lease taken over "
                      "from pid %P, last beat %L ms ago", &zone->name, pid,
                      (int64_t) (now - beat));
    }

    return 1;
}


static ngx_uint_t
ngx_http_affiliate_lease_refresh(ngx_http_affiliate_zone_t *zone)
{
    uint64_t  want, expected;

    want = ngx_http_affiliate_wall_msec() << NGX_HTTP_AFFILIATE_PID_BITS
           | ((uint64_t) ngx_pid & NGX_HTTP_AFFILIATE_PID_MASK);

    expected = zone->lease;

    if (__atomic_compare_exchange_n(&zone->sh->lease, &expected, want, 0,
                                    __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
    {
        zone->lease = want;
        return 1;
    }

    return 0;
}


static void
ngx_http_affiliate_lease_release(ngx_http_affiliate_zone_t *zone)
{
    uint64_t  expected;

    expected = zone->lease;

    (void) __atomic_compare_exchange_n(&zone->sh->lease, &expected, 0, 0,
                                       __ATOMIC_RELEASE, __ATOMIC_RELAXED);
}


static uint64_t
ngx_http_affiliate_wall_msec(void)
{
    ngx_time_t  *tp;

    tp = ngx_timeofday();

    return (uint64_t) tp->sec * 1000 + tp->msec;
}
