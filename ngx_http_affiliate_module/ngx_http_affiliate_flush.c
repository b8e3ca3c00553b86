
/*
 * Copyright (C) ngx_http_affiliate_module authors
 *
 * The record ring's flusher: the per-worker flush event, one write() a
 * turn of the event loop, the release of written records, the records
 * whose producer stalled or died, the flusher lease and the exit drain.
 * The design, states, owners and faults are described in
 * docs/internals.md; read it before changing this file.
 */


#include "ngx_http_affiliate_module.h"
#include "ngx_http_affiliate_ring.h"


static uint64_t ngx_http_affiliate_proc_start(ngx_pid_t pid,
    ngx_uint_t *zombie);
static ngx_uint_t ngx_http_affiliate_writer_gone(uint64_t writer);
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
static ngx_uint_t ngx_http_affiliate_lease_take(
    ngx_http_affiliate_zone_t *zone, ngx_log_t *log);
static ngx_uint_t ngx_http_affiliate_lease_refresh(
    ngx_http_affiliate_zone_t *zone);
static void ngx_http_affiliate_lease_release(ngx_http_affiliate_zone_t *zone);
static void ngx_http_affiliate_flush_handler(ngx_event_t *ev);
static void ngx_http_affiliate_file_flush(ngx_open_file_t *file,
    ngx_log_t *log);
static uint64_t ngx_http_affiliate_wall_msec(void);


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
