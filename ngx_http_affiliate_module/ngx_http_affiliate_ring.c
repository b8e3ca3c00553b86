
/*
 * Copyright (C) ngx_http_affiliate_module authors
 *
 * The record ring in shared memory and its flusher.  The design, states
 * and faults are described in docs/internals.md.
 */


#include "ngx_http_affiliate_module.h"

#include <openssl/rand.h>


#define NGX_HTTP_AFFILIATE_BUF_SIZE     (512 * 1024)
#define NGX_HTTP_AFFILIATE_ALERT_EVERY  60
#define NGX_HTTP_AFFILIATE_EXIT_WAIT    2000


static ngx_int_t ngx_http_affiliate_zone_table(ngx_slab_pool_t *shpool,
    ngx_http_affiliate_table_t *t, size_t size, size_t entry_size);
static ngx_uint_t ngx_http_affiliate_lock(ngx_http_affiliate_sh_t *sh);
static void ngx_http_affiliate_unlock(ngx_http_affiliate_sh_t *sh);
static void ngx_http_affiliate_flush(ngx_http_affiliate_zone_t *zone,
    ngx_log_t *log, ngx_uint_t exiting);
static ngx_int_t ngx_http_affiliate_flush_batch(
    ngx_http_affiliate_zone_t *zone, ngx_log_t *log, ngx_uint_t exiting);
static void ngx_http_affiliate_consume(ngx_http_affiliate_sh_t *sh,
    size_t n);
static void ngx_http_affiliate_flush_handler(ngx_event_t *ev);
static void ngx_http_affiliate_file_flush(ngx_open_file_t *file,
    ngx_log_t *log);
static ngx_msec_t ngx_http_affiliate_wall_msec(void);


ngx_int_t
ngx_http_affiliate_zone_init(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_affiliate_zone_t *ozone = data;

    size_t                      len;
    uint64_t                    i;
    ngx_slab_pool_t            *shpool;
    ngx_http_affiliate_sh_t    *sh;
    ngx_http_affiliate_zone_t  *zone;

    zone = shm_zone->data;

    if (ozone) {
        /* a reload: adopt the ring, old workers may still be writing */
        zone->sh = ozone->sh;

        if (zone->sh->clicks.n != zone->clicks_size / zone->sh->clicks.size
            || zone->sh->unique.n != zone->unique_size / zone->sh->unique.size
            || zone->sh->orders.n != zone->orders_size / zone->sh->orders.size)
        {
            ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                          "affiliate zone \"%V\" cannot change its clicks=, "
                          "unique= or orders= sizes on reload; restart "
                          "nginx or give the zone a new name", &zone->name);
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        zone->sh = shpool->data;
        return NGX_OK;
    }

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
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* carve every page left into slots, once */

    sh->nslots = shpool->pfree * ngx_pagesize
                 / sizeof(ngx_http_affiliate_slot_t);

    sh->slots = ngx_slab_alloc(shpool,
                               sh->nslots * sizeof(ngx_http_affiliate_slot_t));
    if (sh->slots == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < sh->nslots; i++) {
        sh->slots[i].seq = i;
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
 * Claims the next slot (Vyukov's bounded queue): a slot is free for
 * position pos when its seq equals pos.  No lock; NULL when full.
 */

ngx_http_affiliate_slot_t *
ngx_http_affiliate_ring_reserve(ngx_http_affiliate_sh_t *sh, uint64_t *ppos)
{
    int64_t                     dif;
    uint64_t                    pos, seq;
    ngx_http_affiliate_slot_t  *slot;

    pos = __atomic_load_n(&sh->head, __ATOMIC_RELAXED);

    for ( ;; ) {
        slot = &sh->slots[pos % sh->nslots];
        seq = __atomic_load_n(&slot->seq, __ATOMIC_ACQUIRE);
        dif = (int64_t) (seq - pos);

        if (dif == 0) {
            if (__atomic_compare_exchange_n(&sh->head, &pos, pos + 1, 1,
                                            __ATOMIC_RELAXED,
                                            __ATOMIC_RELAXED))
            {
                *ppos = pos;
                return slot;
            }

            continue;
        }

        if (dif < 0) {
            return NULL;
        }

        pos = __atomic_load_n(&sh->head, __ATOMIC_RELAXED);
    }
}


/*
 * Publishes a filled slot.  The compare-and-swap fails only if the
 * flusher gave the slot up as lost, which it counted already.
 */

void
ngx_http_affiliate_ring_publish(ngx_http_affiliate_slot_t *slot, uint64_t pos,
    size_t len)
{
    slot->len = (uint32_t) len;

    (void) __atomic_compare_exchange_n(&slot->seq, &pos, pos + 1, 0,
                                       __ATOMIC_RELEASE, __ATOMIC_RELAXED);
}


ngx_int_t
ngx_http_affiliate_record(ngx_http_request_t *r,
    ngx_http_affiliate_zone_t *zone, ngx_http_affiliate_ctx_t *ctx,
    ngx_http_affiliate_type_e type)
{
    size_t                      len;
    uint64_t                    pos, tail;
    ngx_atomic_uint_t           last;
    ngx_http_affiliate_sh_t    *sh;
    ngx_http_affiliate_slot_t  *slot;

    sh = zone->sh;

    slot = ngx_http_affiliate_ring_reserve(sh, &pos);

    if (slot == NULL) {
        ngx_http_affiliate_count(sh, NGX_HTTP_AFFILIATE_DROPPED);

        last = sh->drop_alert;

        if ((time_t) last + NGX_HTTP_AFFILIATE_ALERT_EVERY <= ngx_time()
            && ngx_atomic_cmp_set(&sh->drop_alert, last, ngx_time()))
        {
            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "affiliate zone \"%V\" is full, records dropped "
                          "(warned at most once a minute)", &zone->name);
        }

        return NGX_DECLINED;
    }

    len = ngx_http_affiliate_record_format(r, ctx, type, pos + 1, slot->data,
                                           NGX_HTTP_AFFILIATE_RECORD_MAX);

    ngx_http_affiliate_ring_publish(slot, pos, len);

    /* past the high-water mark this worker flushes once the event ends */

    tail = __atomic_load_n(&sh->tail, __ATOMIC_RELAXED);

    if (pos - tail >= sh->nslots / 2 && !zone->flush_event.posted
        && zone->flush_event.handler)
    {
        ngx_post_event(&zone->flush_event, &ngx_posted_events);
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_affiliate_ring_init_process(ngx_cycle_t *cycle,
    ngx_http_affiliate_zone_t *zone)
{
    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    zone->buf_size = NGX_HTTP_AFFILIATE_BUF_SIZE;

    zone->buf = ngx_palloc(cycle->pool, zone->buf_size);
    if (zone->buf == NULL) {
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
 * published before now.  nginx has already flushed its own buffers,
 * the fd is still open.  Another worker may hold the flusher lease:
 * wait for it a little, this is not a request path.
 */

void
ngx_http_affiliate_ring_exit_process(ngx_cycle_t *cycle,
    ngx_http_affiliate_zone_t *zone)
{
    uint64_t                  target;
    ngx_msec_t                start;
    ngx_http_affiliate_sh_t  *sh;

    if (zone->buf == NULL) {
        return;
    }

    sh = zone->sh;
    target = __atomic_load_n(&sh->head, __ATOMIC_ACQUIRE);
    start = ngx_current_msec;

    for ( ;; ) {
        ngx_http_affiliate_flush(zone, cycle->log, 1);

        if (__atomic_load_n(&sh->tail, __ATOMIC_ACQUIRE) >= target) {
            return;
        }

        if (ngx_current_msec - start > NGX_HTTP_AFFILIATE_EXIT_WAIT) {
            ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                          "affiliate zone \"%V\": %uL records left "
                          "unflushed at exit",
                          &zone->name,
                          target - __atomic_load_n(&sh->tail,
                                                   __ATOMIC_ACQUIRE));
            return;
        }

        ngx_msleep(5);
        ngx_time_update();
    }
}


static void
ngx_http_affiliate_flush_handler(ngx_event_t *ev)
{
    ngx_http_affiliate_zone_t  *zone = ev->data;

    ngx_http_affiliate_flush(zone, ev->log, 0);

    if (!ngx_exiting && !ngx_quit && !ngx_terminate) {
        ngx_add_timer(ev, zone->flush);
    }
}


/* called by nginx before it reopens the file on USR1 */

static void
ngx_http_affiliate_file_flush(ngx_open_file_t *file, ngx_log_t *log)
{
    ngx_http_affiliate_flush(file->data, log, 0);
}


static void
ngx_http_affiliate_flush(ngx_http_affiliate_zone_t *zone, ngx_log_t *log,
    ngx_uint_t exiting)
{
    ngx_http_affiliate_sh_t  *sh;

    sh = zone->sh;

    if (!ngx_http_affiliate_lock(sh)) {
        return;
    }

    if (exiting || sh->retry_at <= ngx_time()) {
        while (ngx_http_affiliate_flush_batch(zone, log, exiting) == NGX_AGAIN)
        {
            /* void */
        }
    }

    ngx_http_affiliate_unlock(sh);
}


/*
 * Copies published records from the tail into the worker's buffer and
 * writes them with one write(); slots are released only once written.
 * Returns NGX_AGAIN when there may be more to write.
 */

static ngx_int_t
ngx_http_affiliate_flush_batch(ngx_http_affiliate_zone_t *zone,
    ngx_log_t *log, ngx_uint_t exiting)
{
    u_char                     *p, *end;
    size_t                      len, off;
    ssize_t                     n;
    uint64_t                    pos, head, seq, expected;
    ngx_err_t                   err;
    ngx_msec_t                  now;
    ngx_http_affiliate_sh_t    *sh;
    ngx_http_affiliate_slot_t  *slot;

    sh = zone->sh;

    pos = sh->tail;
    off = sh->tail_off;
    head = __atomic_load_n(&sh->head, __ATOMIC_ACQUIRE);

    p = zone->buf;
    end = zone->buf + zone->buf_size;

    while (pos < head) {
        slot = &sh->slots[pos % sh->nslots];
        seq = __atomic_load_n(&slot->seq, __ATOMIC_ACQUIRE);

        if (seq == pos + 1) {
            len = slot->len - off;

            if ((size_t) (end - p) < len) {
                break;
            }

            p = ngx_cpymem(p, slot->data + off, len);
            off = 0;
            pos++;
            continue;
        }

        /* claimed and not yet published */

        if (p != zone->buf) {
            break;
        }

        now = ngx_current_msec;

        if (sh->stall_pos != pos + 1) {
            sh->stall_pos = pos + 1;
            sh->stall_since = now;
            return NGX_OK;
        }

        if (now - sh->stall_since < NGX_HTTP_AFFILIATE_LOST_AFTER) {
            return NGX_OK;
        }

        /* its worker died mid-append: give the slot up */

        expected = pos;

        if (__atomic_compare_exchange_n(&slot->seq, &expected,
                                        pos + sh->nslots, 0,
                                        __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        {
            sh->lost++;
            sh->tail_off = 0;
            off = 0;
            pos++;
            __atomic_store_n(&sh->tail, pos, __ATOMIC_RELEASE);

            ngx_log_error(NGX_LOG_ALERT, log, 0,
                          "affiliate zone \"%V\": record %uL was never "
                          "published, counted as lost", &zone->name, pos);
        }
    }

    len = p - zone->buf;

    if (len == 0) {
        return NGX_OK;
    }

    n = write(zone->file->fd, zone->buf, len);

    if (n == -1) {
        err = ngx_errno;

        if (err == NGX_EINTR || err == NGX_EAGAIN) {
            return exiting ? NGX_AGAIN : NGX_OK;
        }

        /* keep the records; retry in a second, alert once a minute */

        sh->retry_at = ngx_time() + 1;

        if (sh->write_alert + NGX_HTTP_AFFILIATE_ALERT_EVERY <= ngx_time()) {
            sh->write_alert = ngx_time();
            ngx_log_error(NGX_LOG_ALERT, log, err,
                          "affiliate zone \"%V\": write() to \"%V\" failed, "
                          "records stay in the ring and new ones are "
                          "dropped while it is full", &zone->name,
                          &zone->file->name);
        }

        return NGX_OK;
    }

    ngx_http_affiliate_consume(sh, n);

    sh->bytes += n;
    sh->last_flush = ngx_http_affiliate_wall_msec();

    if ((size_t) n != len) {
        /* a partial write: the rest of the record is written next time */
        sh->retry_at = ngx_time() + 1;
        return NGX_OK;
    }

    return pos < head ? NGX_AGAIN : NGX_OK;
}


/* releases the slots whose bytes were written, n bytes from the tail */

static void
ngx_http_affiliate_consume(ngx_http_affiliate_sh_t *sh, size_t n)
{
    size_t                      len;
    uint64_t                    pos;
    ngx_http_affiliate_slot_t  *slot;

    pos = sh->tail;

    while (n) {
        slot = &sh->slots[pos % sh->nslots];
        len = slot->len - sh->tail_off;

        if (n < len) {
            sh->tail_off += n;
            break;
        }

        n -= len;
        sh->tail_off = 0;
        sh->written++;

        __atomic_store_n(&slot->seq, pos + sh->nslots, __ATOMIC_RELEASE);
        pos++;
    }

    __atomic_store_n(&sh->tail, pos, __ATOMIC_RELEASE);
}


/*
 * The flusher lease: the holder's pid.  A holder that died (SIGKILL,
 * crash) leaves its pid behind; the lease is then taken over.  No
 * request ever waits for it.
 */

static ngx_uint_t
ngx_http_affiliate_lock(ngx_http_affiliate_sh_t *sh)
{
    ngx_atomic_uint_t  pid;

    pid = sh->lock;

    if (pid == 0) {
        return ngx_atomic_cmp_set(&sh->lock, 0, ngx_pid);
    }

    if (pid == (ngx_atomic_uint_t) ngx_pid
        || (kill((ngx_pid_t) pid, 0) == -1 && ngx_errno == NGX_ESRCH))
    {
        return ngx_atomic_cmp_set(&sh->lock, pid, ngx_pid);
    }

    return 0;
}


static void
ngx_http_affiliate_unlock(ngx_http_affiliate_sh_t *sh)
{
    (void) ngx_atomic_cmp_set(&sh->lock, ngx_pid, 0);
}


static ngx_msec_t
ngx_http_affiliate_wall_msec(void)
{
    ngx_time_t  *tp;

    tp = ngx_timeofday();

    return (ngx_msec_t) tp->sec * 1000 + tp->msec;
}
