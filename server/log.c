/* log.c -- the access log: one line per request on stderr, batched under
 * load.
 *
 * Why batched: bench/ measured an unbuffered write(2) per line at ~18% of
 * small-request throughput.  A line is written at once when nothing has
 * been written for the last millisecond (as the coarse monotonic clock
 * tells, whose tick is 1-4 ms), so a quiet server's log is as prompt as an
 * unbuffered one.  Under load, each thread collects its lines in its own
 * 16 KiB buffer and a flusher thread writes them all out about once a
 * millisecond: each line late by about a millisecond, lines of different
 * threads in the order of the flushes, one thread's in its own order.
 * Buffers are also written when full and at exit.
 *
 * Why per thread: with one buffer behind one mutex, the two pool threads
 * and the flusher met on that mutex ~0.04 times a request (futex waits and
 * wakes, each a context switch), plus a condition-variable signal to wake
 * the flusher for every batch.  Now a request takes only its own thread's
 * mutex, which the flusher holds for a memcpy; the flusher polls while
 * lines keep coming and parks after 100 quiet polls, so it is woken once
 * per busy period rather than once per batch.
 *
 * --log-format json writes each access-log line as one JSON object (http.c
 * builds it) and the server's own messages as {"ts":...,"msg":...}. */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "server.h"

/* How long a batched line may wait for others to share its write. */
#define LOG_HOLD_US 1000
/* Polls of the flusher that find nothing before it parks. */
#define IDLE_POLLS 100
#define SLOTS 64

typedef struct slot {
    pthread_mutex_t mu;         /* taken by its thread and by flushes */
    size_t len;
    char buf[16384];
} slot;

static slot *slots[SLOTS];
static atomic_int nslots;
static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static _Thread_local slot *mine;
static _Thread_local int no_slot;

static pthread_mutex_t wmu = PTHREAD_MUTEX_INITIALIZER; /* wbuf, writes */
static char wbuf[65536];
static size_t wbuf_len;
static atomic_llong last_write_us;  /* monotonic time of the last write */

static pthread_t flusher;
static atomic_int flusher_on;   /* lines may be held: the flusher runs */
static pthread_mutex_t park_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t park_cv = PTHREAD_COND_INITIALIZER;
static atomic_int parked;       /* the flusher waits on park_cv */
static atomic_int flusher_quit;

/* The coarse clock (one tick, 4 ms here; 5.6 against 25.6 ns a call)
 * is enough to tell a quiet server from a busy one. */
static int64_t mono_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &t);
    return (int64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

/* This thread's buffer, made on its first batched line; NULL when all
 * SLOTS are taken or memory ran out (its lines are then written at once). */
static slot *my_slot(void)
{
    if (mine || no_slot)
        return mine;
    slot *s = calloc(1, sizeof *s);
    pthread_mutex_lock(&reg_mu);
    const int i = atomic_load(&nslots);
    if (s && i < SLOTS) {
        pthread_mutex_init(&s->mu, NULL);
        slots[i] = s;
        atomic_store(&nslots, i + 1);  /* published after slots[i] */
        mine = s;
    } else {
        free(s);
        no_slot = 1;
    }
    pthread_mutex_unlock(&reg_mu);
    return mine;
}

/* Under wmu: wbuf to stderr. */
static void write_out(void)
{
    size_t off = 0;
    while (off < wbuf_len) {
        ssize_t w = write(STDERR_FILENO, wbuf + off, wbuf_len - off);
        if (w <= 0)
            break;              /* stderr gone: drop, never block serving */
        off += (size_t)w;
    }
    wbuf_len = 0;
}

/* Under wmu: bytes into wbuf, written first when they would not fit. */
static void wbuf_add(const char *b, size_t n)
{
    if (wbuf_len + n > sizeof wbuf)
        write_out();
    memcpy(wbuf + wbuf_len, b, n);
    wbuf_len += n;
}

/* Writes every held line, then `line` (n bytes; none when NULL).  Returns
 * whether anything was written. */
static int flush_all(const char *line, size_t n)
{
    pthread_mutex_lock(&wmu);
    const int k = atomic_load(&nslots);
    for (int i = 0; i < k; i++) {
        slot *s = slots[i];
        pthread_mutex_lock(&s->mu);
        wbuf_add(s->buf, s->len);
        s->len = 0;
        pthread_mutex_unlock(&s->mu);
    }
    if (line)
        wbuf_add(line, n);
    const int any = wbuf_len > 0;
    if (any) {
        write_out();
        atomic_store(&last_write_us, mono_us());
    }
    pthread_mutex_unlock(&wmu);
    return any;
}

static int any_held(void)
{
    const int k = atomic_load(&nslots);
    int any = 0;
    for (int i = 0; i < k && !any; i++) {
        pthread_mutex_lock(&slots[i]->mu);
        any = slots[i]->len > 0;
        pthread_mutex_unlock(&slots[i]->mu);
    }
    return any;
}

void server_log_line(int batch, const char *line, size_t n)
{
    slot *s = batch && atomic_load(&flusher_on) ? my_slot() : NULL;
    if (!s || n > sizeof s->buf) {
        flush_all(line, n);
        return;
    }
    pthread_mutex_lock(&s->mu);
    if (s->len + n > sizeof s->buf) {
        pthread_mutex_unlock(&s->mu);
        flush_all(NULL, 0);
        pthread_mutex_lock(&s->mu);
    }
    memcpy(s->buf + s->len, line, n);
    s->len += n;
    pthread_mutex_unlock(&s->mu);

    /* Nothing written for a while: a quiet server writes at once (one
     * thread claims it). */
    const int64_t now = mono_us();
    long long last = atomic_load(&last_write_us);
    if (now - last >= LOG_HOLD_US &&
        atomic_compare_exchange_strong(&last_write_us, &last, now))
        flush_all(NULL, 0);
    /* A parked flusher is woken (it re-checks after parking, so a line
     * added while it parks is not missed: see park()). */
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load(&parked)) {
        pthread_mutex_lock(&park_mu);
        atomic_store(&parked, 0);
        pthread_cond_signal(&park_cv);
        pthread_mutex_unlock(&park_mu);
    }
}

void server_log(int batch, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof line) {     /* keep the newline */
        n = sizeof line - 1;
        line[n - 1] = '\n';
    }
    server_log_line(batch, line, (size_t)n);
}

/* Waits until a line comes (or the server stops). */
static void park(void)
{
    pthread_mutex_lock(&park_mu);
    atomic_store(&parked, 1);
    atomic_thread_fence(memory_order_seq_cst);
    if (any_held() || atomic_load(&flusher_quit))
        atomic_store(&parked, 0);
    while (atomic_load(&parked))
        pthread_cond_wait(&park_cv, &park_mu);
    pthread_mutex_unlock(&park_mu);
}

/* Writes held lines about once a millisecond while they keep coming;
 * parks after IDLE_POLLS polls that found none. */
static void *flush_loop(void *arg)
{
    (void)arg;
    int idle = 0;
    while (!atomic_load(&flusher_quit)) {
        const struct timespec hold = {0, LOG_HOLD_US * 1000};
        nanosleep(&hold, NULL);
        if (flush_all(NULL, 0)) {
            idle = 0;
        } else if (++idle >= IDLE_POLLS) {
            park();
            idle = 0;
        }
    }
    return NULL;
}

void server_log_start(void)
{
    atomic_store(&flusher_quit, 0);
    atomic_store(&flusher_on,
                 pthread_create(&flusher, NULL, flush_loop, NULL) == 0);
}

void server_log_stop(void)
{
    const int on = atomic_exchange(&flusher_on, 0);
    /* from now on every line is written at once */
    pthread_mutex_lock(&park_mu);
    atomic_store(&flusher_quit, 1);
    atomic_store(&parked, 0);
    pthread_cond_signal(&park_cv);
    pthread_mutex_unlock(&park_mu);
    if (on)
        pthread_join(flusher, NULL);
    server_log_flush();
}

void server_log_flush(void)
{
    flush_all(NULL, 0);
}

static int json_mode;

void server_log_json(int on)
{
    json_mode = on;
}

void server_log_timestamp(char out[32])
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%06ldZ", ts.tv_nsec / 1000);
}

size_t server_json_escape(char *dst, size_t cap, size_t n, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    for (; s && *s && n + 7 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            dst[n++] = '\\';
            dst[n++] = (char)ch;
        } else if (ch < 0x20 || ch >= 0x7f) {
            /* bytes, not characters: the texts here are ASCII already */
            memcpy(dst + n, "\\u00", 4);
            dst[n + 4] = hex[ch >> 4];
            dst[n + 5] = hex[ch & 15];
            n += 6;
        } else {
            dst[n++] = (char)ch;
        }
    }
    dst[n] = '\0';
    return n;
}

void server_log_msg(const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    msg[strcspn(msg, "\n")] = '\0';
    if (!json_mode) {
        server_log(0, "%s\n", msg);
        return;
    }
    /* an escaped text that keeps the whole line within server_log's 512 */
    char ts[32], esc[440];
    server_log_timestamp(ts);
    server_json_escape(esc, sizeof esc, 0, msg);
    server_log(0, "{\"ts\":\"%s\",\"msg\":\"%s\"}\n", ts, esc);
}
