
/*
 * Copyright (C) ngx_http_affiliate_module authors
 *
 * The flusher's microbenchmark (issue 11: at least 1,000,000 records/s
 * into a file).  Not a test: bench/flusher.sh builds and runs it and
 * prints the figure.
 *
 * It compiles the module's ring (ngx_http_affiliate_ring.c and
 * ngx_http_affiliate_flush.c, included below) against nginx's headers,
 * with the few core functions the ring calls stubbed out, carves a ring
 * of the size a 16m zone leaves for it, and repeats: fill the ring with
 * typical records through the producers' own reserve/publish, then time
 * the flusher's loop (the batches the flush event runs, one write() of
 * up to 512 KiB each, the lease beat, the release of every record) until
 * the ring is empty.  Only the flush is timed.  The file is truncated
 * between rounds so the disk never fills.
 *
 *     bench/flusher.sh [FILE] [ROUNDS]
 *
 * With "stress" as FILE's argument before it (bench/flusher.sh stress
 * [FILE] [SECONDS] [PRODUCERS]) it checks the ring instead: producer
 * threads of records of random sizes (1 to 16 slots) against a flusher
 * thread on a small ring, then every line of the file is read back: each
 * record whole, seq 1..N each once, written + dropped == tried.
 */


#include "../ngx_http_affiliate_module/ngx_http_affiliate_ring.c"
#include "../ngx_http_affiliate_module/ngx_http_affiliate_flush.c"

#include <time.h>
#include <pthread.h>


/* what the ring needs from nginx's core, reduced to what a bench needs */

volatile ngx_msec_t      ngx_current_msec;
volatile ngx_time_t     *ngx_cached_time;
ngx_pid_t                ngx_pid;
ngx_uint_t               ngx_process = NGX_PROCESS_WORKER;
sig_atomic_t             ngx_quit, ngx_terminate;
ngx_uint_t               ngx_exiting;
ngx_uint_t               ngx_pagesize = 4096;
ngx_queue_t              ngx_posted_events, ngx_posted_next_events;
ngx_rbtree_t             ngx_event_timer_rbtree;
ngx_uint_t               ngx_log_level_bench;

static ngx_time_t        bench_time;


void
ngx_log_error_core(ngx_uint_t level, ngx_log_t *log, ngx_err_t err,
    const char *fmt, ...)
{
    fprintf(stderr, "flusher bench: log level %u: %s\n", (unsigned) level,
            fmt);
}


void *
ngx_slab_alloc(ngx_slab_pool_t *pool, size_t size)
{
    return NULL;
}


void *
ngx_slab_calloc(ngx_slab_pool_t *pool, size_t size)
{
    return NULL;
}


void *
ngx_list_push(ngx_list_t *l)
{
    return NULL;
}


ngx_int_t
ngx_conf_full_name(ngx_cycle_t *cycle, ngx_str_t *name, ngx_uint_t conf)
{
    return NGX_ERROR;
}


void *
ngx_palloc(ngx_pool_t *pool, size_t size)
{
    return malloc(size);
}


void
ngx_rbtree_insert(ngx_rbtree_t *tree, ngx_rbtree_node_t *node)
{
}


void
ngx_rbtree_delete(ngx_rbtree_t *tree, ngx_rbtree_node_t *node)
{
}


void
ngx_time_update(void)
{
}


void
ngx_http_affiliate_table_init(ngx_http_affiliate_table_t *t, u_char *mem,
    size_t size, size_t entry)
{
}


size_t
ngx_http_affiliate_record_format(ngx_http_request_t *r,
    ngx_http_affiliate_ctx_t *ctx, ngx_http_affiliate_type_e type,
    uint64_t seq, u_char *buf, size_t size)
{
    return 0;
}


/* the seq of a record: ngx_http_affiliate_record.c's, in decimal */

u_char *
ngx_http_affiliate_uint_str(u_char *buf, uint64_t v)
{
    u_char  tmp[NGX_INT64_LEN], *p;

    p = tmp + sizeof(tmp);

    do {
        *--p = (u_char) ('0' + v % 10);
        v /= 10;
    } while (v);

    return ngx_cpymem(buf, p, tmp + sizeof(tmp) - p);
}


/*
 * ngx_sprintf: the zone's log context and a stalled writer's /proc path,
 * neither on the paths measured; the first argument's digits, a C string
 */

u_char *
ngx_sprintf(u_char *buf, const char *fmt, ...)
{
    va_list   args;
    uint64_t  v;

    va_start(args, fmt);
    v = va_arg(args, uint64_t);
    va_end(args);

    buf = ngx_http_affiliate_uint_str(buf, v);
    *buf = '\0';

    return buf;
}


/* a click as the module writes it with a phone's User-Agent, 640 bytes */

static const char  bench_record[] =
    "{\"ts\":\"2026-11-26T02:10:00.123Z\",\"type\":\"click\","
    "\"id\":\"01JDQ6X3K4M5N6P7Q8R9S0T1V2\",\"node\":\"web-1\","
    "\"click_id\":\"01JDQ6X3K4M5N6P7Q8R9S0T1V2\",\"link\":\"a\","
    "\"creator\":\"anna\",\"campaign\":\"summer-2026\","
    "\"dest\":\"https://shop.example/products/linen-summer-dress-blue?"
    "utm_source=tiktok&utm_medium=creator&utm_campaign=summer\","
    "\"status\":302,\"ip\":\"203.0.113.7\","
    "\"ua\":\"Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/131.0.6778.39 Mobile Safari/537.36\","
    "\"referer\":\"https://www.tiktok.com/@anna.styles/video/"
    "7431234567890123456?is_from_webapp=1\",\"host\":\"go.example\","
    "\"country\":\"DE\",\"bot\":false,\"unique\":true,\"cookie\":\"set\","
    "\"seq\":";


static int bench_stress(int argc, char **argv);


/* a ring of n slots in ordinary memory, its zone and file */

static ngx_int_t
bench_ring(ngx_http_affiliate_zone_t *zone, ngx_open_file_t *file,
    const char *path, uint64_t n, size_t buf_size)
{
    uint64_t                  i;
    ngx_http_affiliate_sh_t  *sh;

    ngx_pid = getpid();
    ngx_cached_time = &bench_time;
    bench_time.sec = time(NULL);

    ngx_memzero(zone, sizeof(ngx_http_affiliate_zone_t));
    ngx_memzero(file, sizeof(ngx_open_file_t));

    file->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
    if (file->fd == -1) {
        perror(path);
        return NGX_ERROR;
    }

    sh = calloc(1, sizeof(ngx_http_affiliate_sh_t));
    sh->nslots = n;
    sh->slots = calloc(1, n * sizeof(ngx_http_affiliate_slot_t)
                          + (n + NGX_HTTP_AFFILIATE_KMAX - 1)
                            * NGX_HTTP_AFFILIATE_SLOT_SIZE);
    sh->data = (u_char *) &sh->slots[n];

    for (i = 0; i < n; i++) {
        sh->slots[i].seq = i;
        sh->slots[i].writer = i;
    }

    ngx_http_affiliate_self = NGX_HTTP_AFFILIATE_WRITING
        | ((uint64_t) ngx_pid & NGX_HTTP_AFFILIATE_PID_MASK)
          << NGX_HTTP_AFFILIATE_PID_SHIFT;

    ngx_str_set(&zone->name, "bench");
    zone->sh = sh;
    zone->file = file;
    zone->buf_size = buf_size;
    zone->buf = malloc(buf_size);

    return NGX_OK;
}


static double
bench_now(clockid_t clock)
{
    struct timespec  ts;

    clock_gettime(clock, &ts);

    return ts.tv_sec + ts.tv_nsec / 1e9;
}


int
main(int argc, char **argv)
{
    u_char                     *start, *p;
    size_t                      len, buf_size;
    double                      t0, c0, secs, total_secs, cpu_secs;
    uint64_t                    n, k, pos, rec, filled, total, round;
    uint64_t                    rounds;
    ngx_int_t                   rc;
    ngx_log_t                   log;
    ngx_open_file_t             file;
    ngx_http_affiliate_sh_t    *sh;
    ngx_http_affiliate_zone_t   zone;

    const char  *path;

    if (argc > 1 && strcmp(argv[1], "stress") == 0) {
        return bench_stress(argc - 1, argv + 1);
    }

    path = argc > 1 ? argv[1] : "/tmp/affiliate-flusher.log";

    /* what a 16m zone leaves for the ring (t/19-ring-capacity.t) */

    n = 12398848 / NGX_HTTP_AFFILIATE_SLOT_BYTES;
    buf_size = NGX_HTTP_AFFILIATE_BUF_SIZE;

    rounds = argc > 2 ? (uint64_t) atoi(argv[2]) : 20;

    ngx_memzero(&log, sizeof(ngx_log_t));

    if (bench_ring(&zone, &file, path, n, buf_size) != NGX_OK) {
        return 1;
    }

    sh = zone.sh;

    len = sizeof(bench_record) - 1;
    k = (sizeof(ngx_http_affiliate_rec_head_t) + len
         + NGX_HTTP_AFFILIATE_SEQ_ROOM + NGX_HTTP_AFFILIATE_SLOT_SIZE - 1)
        / NGX_HTTP_AFFILIATE_SLOT_SIZE;

    total = 0;
    total_secs = 0;
    cpu_secs = 0;

    for (round = 0; round < rounds; round++) {

        /* fill: the producers' path, untimed */

        for (filled = 0; ; filled++) {
            pos = ngx_http_affiliate_ring_reserve(sh, k, &rec);
            if (pos == (uint64_t) -1) {
                break;
            }

            start = (u_char *) (ngx_http_affiliate_rec(sh, pos) + 1);
            p = ngx_cpymem(start, bench_record, len);
            p = ngx_http_affiliate_uint_str(p, rec + 1);
            *p++ = '}';
            *p++ = '\n';
            ngx_http_affiliate_ring_publish(sh, pos, rec, p - start, k);
        }

        if (ftruncate(file.fd, 0) == -1) {
            perror("ftruncate");
            return 1;
        }

        /* flush: what the flush event does, until the ring is empty */

        t0 = bench_now(CLOCK_MONOTONIC);
        c0 = bench_now(CLOCK_PROCESS_CPUTIME_ID);

        do {
            if (!ngx_http_affiliate_lease_take(&zone, &log)) {
                fprintf(stderr, "no lease\n");
                return 1;
            }

            rc = ngx_http_affiliate_flush_batch(&zone, &log);
            ngx_http_affiliate_lease_release(&zone);

        } while (rc == NGX_AGAIN);

        secs = bench_now(CLOCK_MONOTONIC) - t0;
        cpu_secs += bench_now(CLOCK_PROCESS_CPUTIME_ID) - c0;

        if (sh->written != total + filled) {
            fprintf(stderr, "written %lu, expected %lu\n",
                    (unsigned long) sh->written,
                    (unsigned long) (total + filled));
            return 1;
        }

        total += filled;
        total_secs += secs;
    }

    printf("flusher: %lu records of %lu bytes (%lu slots each, %lu a "
           "ring) into %s\n"
           "  wall time %.3f s: %.0f records/s, %.0f MB/s\n"
           "  CPU time  %.3f s: %.0f records/s (what a quiet core does)\n",
           (unsigned long) total, (unsigned long) (len + 8),
           (unsigned long) k, (unsigned long) (total / rounds), path,
           total_secs, total / total_secs, sh->bytes / total_secs / 1e6,
           cpu_secs, total / cpu_secs);

    (void) unlink(path);

    return 0;
}


/* the stress check */

static ngx_http_affiliate_sh_t  *stress_sh;
static int                       stress_stop;
static uint64_t                  stress_tried, stress_dropped;


static void *
stress_producer(void *arg)
{
    u_char     *start, *p, line[NGX_HTTP_AFFILIATE_RECORD_MAX];
    size_t      len;
    uint64_t    pos, rec, k, tried, dropped;
    unsigned    seed;
    ngx_uint_t  i;

    seed = (unsigned) (uintptr_t) arg;
    tried = 0;
    dropped = 0;

    while (!__atomic_load_n(&stress_stop, __ATOMIC_RELAXED)) {

        /* {"pad":"xxx...","len":L,"seq": with a length of 40 to 4040 */

        len = 40 + rand_r(&seed) % 4000;
        p = ngx_cpymem(line, "{\"pad\":\"", 8);

        for (i = 0; i < len - 28; i++) {
            *p++ = (u_char) ('a' + (len + i) % 26);
        }

        p = ngx_cpymem(p, "\",\"len\":", 8);
        p += snprintf((char *) p, 16, "%5u", (unsigned) len);
        p = ngx_cpymem(p, ",\"seq\":", 7);
        len = p - line;

        k = (sizeof(ngx_http_affiliate_rec_head_t) + len
             + NGX_HTTP_AFFILIATE_SEQ_ROOM + NGX_HTTP_AFFILIATE_SLOT_SIZE - 1)
            / NGX_HTTP_AFFILIATE_SLOT_SIZE;

        tried++;

        pos = ngx_http_affiliate_ring_reserve(stress_sh, k, &rec);
        if (pos == (uint64_t) -1) {
            dropped++;
            sched_yield();
            continue;
        }

        start = (u_char *) (ngx_http_affiliate_rec(stress_sh, pos) + 1);
        p = ngx_cpymem(start, line, len);
        p = ngx_http_affiliate_uint_str(p, rec + 1);
        *p++ = '}';
        *p++ = '\n';
        ngx_http_affiliate_ring_publish(stress_sh, pos, rec, p - start, k);
    }

    __atomic_fetch_add(&stress_tried, tried, __ATOMIC_RELAXED);
    __atomic_fetch_add(&stress_dropped, dropped, __ATOMIC_RELAXED);

    return NULL;
}


static int
bench_stress(int argc, char **argv)
{
    char                       *buf, *p, *q, *end;
    FILE                       *f;
    size_t                      n, size, buf_size;
    double                      t0;
    pthread_t                   tid[16];
    uint64_t                    i, seq, lines, bad, *seen;
    ngx_int_t                   rc;
    ngx_log_t                   log;
    ngx_uint_t                  nprod, t;
    ngx_open_file_t             file;
    ngx_http_affiliate_sh_t    *sh;
    ngx_http_affiliate_zone_t   zone;

    const char  *path = argc > 1 ? argv[1] : "/tmp/affiliate-stress.log";
    double       secs = argc > 2 ? atof(argv[2]) : 5;

    nprod = argc > 3 ? (ngx_uint_t) atoi(argv[3]) : 3;
    nprod = ngx_max(1, ngx_min(nprod, 16));

    /* a small ring that wraps and fills all the time; a small buffer */

    n = 200;
    buf_size = 16384;

    ngx_memzero(&log, sizeof(ngx_log_t));

    if (bench_ring(&zone, &file, path, n, buf_size) != NGX_OK) {
        return 1;
    }

    sh = zone.sh;

    stress_sh = sh;

    for (t = 0; t < nprod; t++) {
        pthread_create(&tid[t], NULL, stress_producer,
                       (void *) (uintptr_t) (t + 1));
    }

    t0 = bench_now(CLOCK_MONOTONIC);

    while (bench_now(CLOCK_MONOTONIC) - t0 < secs) {
        if (ngx_http_affiliate_lease_take(&zone, &log)) {
            (void) ngx_http_affiliate_flush_batch(&zone, &log);
            ngx_http_affiliate_lease_release(&zone);
        }
    }

    __atomic_store_n(&stress_stop, 1, __ATOMIC_RELAXED);

    for (t = 0; t < nprod; t++) {
        pthread_join(tid[t], NULL);
    }

    do {
        if (!ngx_http_affiliate_lease_take(&zone, &log)) {
            return 1;
        }

        rc = ngx_http_affiliate_flush_batch(&zone, &log);
        ngx_http_affiliate_lease_release(&zone);

    } while (rc == NGX_AGAIN);

    /* read it back */

    f = fopen(path, "r");
    if (f == NULL) {
        perror(path);
        return 1;
    }

    size = (size_t) lseek(file.fd, 0, SEEK_END);
    buf = malloc(size + 1);
    n = fread(buf, 1, size, f);
    fclose(f);
    end = buf + n;

    seq = stress_tried - stress_dropped;
    seen = calloc(seq + 2, sizeof(uint64_t));
    lines = 0;
    bad = 0;

    for (p = buf; p < end; p = q + 1) {
        q = memchr(p, '\n', end - p);
        if (q == NULL) {
            bad++;
            break;
        }

        lines++;
        *q = '\0';

        {
            unsigned long  l, s;
            char          *v;

            v = memmem(p, q - p, "\",\"len\":", 8);

            if (ngx_strncmp(p, "{\"pad\":\"", 8) != 0 || v == NULL
                || sscanf(v + 8, "%5lu,\"seq\":%lu}", &l, &s) != 2
                || (size_t) (v + 8 + 5 + 7 - p) != l
                || s == 0 || s > seq || seen[s]++)
            {
                bad++;
            }
        }
    }

    for (i = 1; i <= seq; i++) {
        if (seen[i] != 1) {
            bad++;
        }
    }

    printf("ring stress: %lu producers, %.1f s, a ring of %lu slots: "
           "%lu tried, %lu dropped, %lu written, %lu lines, %lu bad\n",
           (unsigned long) nprod, secs, (unsigned long) sh->nslots,
           (unsigned long) stress_tried, (unsigned long) stress_dropped,
           (unsigned long) sh->written, (unsigned long) lines,
           (unsigned long) bad);

    (void) unlink(path);

    return (bad == 0 && lines == seq && sh->written == seq && sh->lost == 0)
           ? 0 : 1;
}
