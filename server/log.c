/* log.c -- the access log: one line per request on stderr, batched under
 * load.
 *
 * Why batched: bench/ measured an unbuffered write(2) per line at ~18% of
 * small-request throughput.  A line is written at once when nothing has
 * been written for the last millisecond (as the coarse monotonic clock
 * tells, whose tick is 1-4 ms), so a quiet server's log is as prompt as an
 * unbuffered one.  Under load, lines collect in a 32 KiB
 * buffer and a flusher thread writes them out 1 ms after the first one
 * was held back: at most ~1000 writes a second, each line late by about a
 * millisecond.  The buffer is also written when full and at exit.  (The
 * rule before, "batch while another request is in flight", still wrote
 * about one line in two under load: with one request per pool thread at
 * a time, a second one is rarely in flight.)
 *
 * --log-format json writes each access-log line as one JSON object (http.c
 * builds it) and the server's own messages as {"ts":...,"msg":...}. */
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "server.h"

/* How long a batched line may wait for others to share its write. */
#define LOG_HOLD_US 1000

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;  /* the fields below */
static pthread_mutex_t wmu = PTHREAD_MUTEX_INITIALIZER; /* one write at a time */
static pthread_cond_t held = PTHREAD_COND_INITIALIZER;
static char bufs[2][32768];
static char *cur = bufs[0];     /* lines being collected */
static char *spare = bufs[1];   /* lines being written (under wmu) */
static size_t len;              /* bytes held in cur */
static int64_t last_write_us;   /* monotonic time of the last write */
static pthread_t flusher;
static int flusher_on;          /* lines may be held: the flusher runs */
static int flush_due;           /* a line is held; the flusher will write */
static int flusher_quit;

/* The coarse clock (one tick, 4 ms here; 5.6 against 25.6 ns a call)
 * is enough to tell a quiet server from a busy one. */
static int64_t mono_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &t);
    return (int64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

/* Writes every held line.  The two buffers swap under mu and the write(2)
 * happens outside it, so a request adding its line never waits for a
 * write: with the write under mu, both pool threads queued behind the
 * flusher's write ~1000 times a second (futex waits, context switches).
 * wmu keeps the writes in the order the lines were added. */
static void flush_out(void)
{
    pthread_mutex_lock(&wmu);
    pthread_mutex_lock(&mu);
    char *out = cur;
    const size_t n = len;
    cur = spare;
    spare = out;
    len = 0;
    flush_due = 0;              /* nothing is held now */
    if (n)
        last_write_us = mono_us();
    pthread_mutex_unlock(&mu);
    size_t off = 0;
    while (off < n) {
        ssize_t w = write(STDERR_FILENO, out + off, n - off);
        if (w <= 0)
            break;              /* stderr gone: drop, never block serving */
        off += (size_t)w;
    }
    pthread_mutex_unlock(&wmu);
}

void server_log_line(int batch, const char *line, size_t n)
{
    const int64_t now = mono_us();
    pthread_mutex_lock(&mu);
    while (len + n > sizeof bufs[0]) {
        pthread_mutex_unlock(&mu);
        flush_out();
        pthread_mutex_lock(&mu);
    }
    memcpy(cur + len, line, n);
    len += n;
    const int write_now = !batch || !flusher_on ||
                          now - last_write_us >= LOG_HOLD_US;
    if (write_now) {
        last_write_us = now;    /* lines from here on wait for the next */
    } else if (!flush_due) {
        flush_due = 1;
        pthread_cond_signal(&held);
    }
    pthread_mutex_unlock(&mu);
    if (write_now)
        flush_out();
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

/* Writes held lines LOG_HOLD_US after the first of them; sleeps while
 * nothing is held. */
static void *flush_loop(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    while (!flusher_quit) {
        if (!flush_due) {
            pthread_cond_wait(&held, &mu);
            continue;
        }
        pthread_mutex_unlock(&mu);
        const struct timespec hold = {0, LOG_HOLD_US * 1000};
        nanosleep(&hold, NULL);
        flush_out();
        pthread_mutex_lock(&mu);
    }
    pthread_mutex_unlock(&mu);
    return NULL;
}

void server_log_start(void)
{
    pthread_mutex_lock(&mu);
    flusher_quit = 0;
    flusher_on = pthread_create(&flusher, NULL, flush_loop, NULL) == 0;
    pthread_mutex_unlock(&mu);
}

void server_log_stop(void)
{
    pthread_mutex_lock(&mu);
    const int on = flusher_on;
    flusher_on = 0;             /* from now on every line is written at once */
    flusher_quit = 1;
    pthread_cond_signal(&held);
    pthread_mutex_unlock(&mu);
    if (on)
        pthread_join(flusher, NULL);
    server_log_flush();
}

void server_log_flush(void)
{
    flush_out();
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
