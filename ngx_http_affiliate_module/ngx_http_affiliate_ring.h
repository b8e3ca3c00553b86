
/*
 * Copyright (C) ngx_http_affiliate_module authors
 *
 * What the ring (ngx_http_affiliate_ring.c) and its flusher
 * (ngx_http_affiliate_flush.c) share; see docs/internals.md.
 */


#ifndef _NGX_HTTP_AFFILIATE_RING_H_INCLUDED_
#define _NGX_HTTP_AFFILIATE_RING_H_INCLUDED_


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


/* this process as a slot's writer: WRITING | start time | pid | 0 */
extern uint64_t  ngx_http_affiliate_self;


void ngx_http_affiliate_head(ngx_http_affiliate_sh_t *sh, uint64_t h,
    uint64_t *pos, uint64_t *rec);
ngx_uint_t ngx_http_affiliate_ring_free(ngx_http_affiliate_sh_t *sh,
    uint64_t pos, uint64_t nslots, uint64_t writer, uint64_t seq);


static ngx_inline ngx_http_affiliate_rec_head_t *
ngx_http_affiliate_rec(ngx_http_affiliate_sh_t *sh, uint64_t pos)
{
    return (ngx_http_affiliate_rec_head_t *)
               (sh->data + pos % sh->nslots * NGX_HTTP_AFFILIATE_SLOT_SIZE);
}


#endif /* _NGX_HTTP_AFFILIATE_RING_H_INCLUDED_ */
