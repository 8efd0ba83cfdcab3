/* log.c -- the access log: one line per request on stderr, batched under
 * load.
 *
 * Why batched: bench/ measured an unbuffered write(2) per line at ~18% of
 * small-request throughput.  A line is written at once when it is the
 * only request in flight (so a quiet server's log is as prompt as
 * before); under load, lines collect in a 32 KiB buffer written when
 * full, every 100 ms by the main thread (server_log_tick), and at exit. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
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
