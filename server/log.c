/* log.c -- the access log: one line per request on stderr, batched under
 * load.
 *
 * Why batched: bench/ measured an unbuffered write(2) per line at ~18% of
 * small-request throughput.  A line is written at once when it is the
 * only request in flight (so a quiet server's log is as prompt as
 * before); under load, lines collect in a 32 KiB buffer written when
 * full, every 100 ms by the main thread (server_log_tick), and at exit.
 *
 * --log-format json writes each access-log line as one JSON object (http.c
 * builds it) and the server's own messages as {"ts":...,"msg":...}. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "server.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static char buf[32768];
static size_t len;

static void flush_locked(void)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(STDERR_FILENO, buf + off, len - off);
        if (n <= 0)
            break;              /* stderr gone: drop, never block serving */
        off += (size_t)n;
    }
    len = 0;
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
    pthread_mutex_lock(&mu);
    if (len + (size_t)n > sizeof buf)
        flush_locked();
    memcpy(buf + len, line, (size_t)n);
    len += (size_t)n;
    if (!batch)
        flush_locked();
    pthread_mutex_unlock(&mu);
}

void server_log_flush(void)
{
    pthread_mutex_lock(&mu);
    flush_locked();
    pthread_mutex_unlock(&mu);
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
