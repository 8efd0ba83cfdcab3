/* ident.c -- X-Request-Id and traceparent (ident.h). */
#include "ident.h"

#include <stdint.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* ==== generated ids: 128 random bits as 32 hex digits ==== */

/* xoshiro128-style state per thread, seeded once from getrandom (or the
 * clock and the state's address if that fails): ids need to be unique,
 * not secret, and a request must not pay a system call for one. */
static _Thread_local uint64_t s0, s1;

static uint64_t next(void)
{
    /* xorshift128+ */
    uint64_t a = s0;
    const uint64_t b = s1;
    s0 = b;
    a ^= a << 23;
    s1 = a ^ b ^ (a >> 17) ^ (b >> 26);
    return s1 + b;
}

static void seed(void)
{
    uint64_t k[2] = {0, 0};
    if (getrandom(k, sizeof k, GRND_NONBLOCK) != (ssize_t)sizeof k) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        k[0] = (uint64_t)t.tv_nsec * 0x9e3779b97f4a7c15ull ^
               (uint64_t)(uintptr_t)&s0;
        k[1] = (uint64_t)t.tv_sec ^ 0xbf58476d1ce4e5b9ull;
    }
    s0 = k[0] | 1;          /* never both zero */
    s1 = k[1];
}

static void make_id(char out[33])
{
    static const char hex[] = "0123456789abcdef";
    if (!s0 && !s1)
        seed();
    for (int w = 0; w < 2; w++) {
        uint64_t v = next();
        for (int i = 0; i < 16; i++, v >>= 4)
            out[w * 16 + i] = hex[v & 15];
    }
    out[32] = '\0';
}

/* ==== headers ==== */

static int is_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

static int all_zero(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != '0')
            return 0;
    return 1;
}

/* W3C Trace Context, level 1: version "00" is exactly 55 bytes; a later
 * version (not "ff") may append "-..." after them, which is dropped. */
static int valid_traceparent(const char *t)
{
    const size_t n = strlen(t);
    if (n < 55 || t[2] != '-' || t[35] != '-' || t[52] != '-')
        return 0;
    if (!is_hex(t, 2) || !is_hex(t + 3, 32) || !is_hex(t + 36, 16) ||
        !is_hex(t + 53, 2))
        return 0;
    if (strncmp(t, "ff", 2) == 0 || all_zero(t + 3, 32) ||
        all_zero(t + 36, 16))
        return 0;
    if (strncmp(t, "00", 2) == 0)
        return n == 55;
    return n == 55 || t[55] == '-';
}

void server_ident_init(server_ident *ri, const char *request_id,
                       const char *traceparent)
{
    size_t n = 0;
    int ok = request_id != NULL;
    for (; ok && request_id[n]; n++)
        if (n == SERVER_REQUEST_ID_MAX || request_id[n] < 0x21 ||
            request_id[n] > 0x7e)
            ok = 0;
    if (ok && n > 0)
        memcpy(ri->id, request_id, n + 1);
    else
        make_id(ri->id);
    ri->trace[0] = '\0';
    if (traceparent && valid_traceparent(traceparent)) {
        memcpy(ri->trace, traceparent, 55);
        ri->trace[55] = '\0';
    }
}
