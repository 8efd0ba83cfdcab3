/* headers.c -- the CORS allow-list (--cors-origin) and the page's
 * Content-Security-Policy.  Pure: no sockets, so unit tests drive them. */
#include "server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

/* ==== CORS ==== */

static const char *const *origins;  /* NULL: any origin ("*") */
static int norigins;

int server_cors_valid_origin(const char *o)
{
    if (strcmp(o, "*") == 0)
        return 1;
    const char *host;
    if (strncasecmp(o, "https://", 8) == 0)
        host = o + 8;
    else if (strncasecmp(o, "http://", 7) == 0)
        host = o + 7;
    else
        return 0;
    /* scheme://host[:port], as a browser sends it: no path, no slash. */
    if (!*host)
        return 0;
    for (const char *p = host; *p; p++)
        if (*p <= ' ' || *p >= 127 || strchr("/?#@,\\\"", *p))
            return 0;
    return 1;
}

void server_cors_init(const char *const *list, int n)
{
    origins = NULL;
    norigins = 0;
    for (int i = 0; i < n; i++)
        if (strcmp(list[i], "*") == 0)
            return;             /* "*" anywhere: any origin */
    if (n > 0) {
        origins = list;
        norigins = n;
    }
}

int server_cors_any(void)
{
    return origins == NULL;
}

const char *server_cors_allow(const char *origin)
{
    if (!origins)
        return "*";
    if (!origin)
        return NULL;
    /* Scheme and host are case-insensitive; browsers send them lowercase,
     * and the echo is the request's own bytes, which is what they compare. */
    for (int i = 0; i < norigins; i++)
        if (strcasecmp(origin, origins[i]) == 0)
            return origin;
    return NULL;
}

/* ==== the page's Content-Security-Policy ==== */

static char *csp;

/* Case-insensitive search for needle in [s, end). */
static const char *find_ci(const char *s, const char *end, const char *needle)
{
    const size_t n = strlen(needle);
    for (; s + n <= end; s++)
        if (strncasecmp(s, needle, n) == 0)
            return s;
    return NULL;
}

/* Appends " 'sha256-<base64>'" of [a, b) to out (a strdup'd string). */
static int add_hash(char **out, const char *a, const char *b)
{
    static const char digits[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    unsigned char h[33] = {0};      /* SHA-256, and a zero to pad */
    char b64[45];                   /* 32 bytes: 43 digits and one '=' */
    if (gnutls_hash_fast(GNUTLS_DIG_SHA256, a, (size_t)(b - a), h) < 0)
        return 0;
    for (int i = 0, o = 0; i < 33; i += 3) {
        const unsigned v = (unsigned)h[i] << 16 | (unsigned)h[i + 1] << 8 |
                           (i + 2 < 33 ? h[i + 2] : 0);
        b64[o++] = digits[v >> 18 & 63];
        b64[o++] = digits[v >> 12 & 63];
        b64[o++] = digits[v >> 6 & 63];
        b64[o++] = digits[v & 63];
    }
    b64[43] = '=';                  /* standard base64 of 32 bytes */
    b64[44] = '\0';
    const size_t old = strlen(*out), add = strlen(b64) + 11;
    char *s = realloc(*out, old + add + 1);
    if (!s)
        return 0;
    snprintf(s + old, add + 1, " 'sha256-%s'", b64);
    *out = s;
    return 1;
}

/* The hashes of every inline <tag>...</tag> element of the page (an
 * element with a src attribute is not inline and is covered by 'self'). */
static int hash_elements(char **out, const char *page, const char *end,
                         const char *tag)
{
    char open[16], close[16];
    snprintf(open, sizeof open, "<%s", tag);
    snprintf(close, sizeof close, "</%s", tag);
    const size_t on = strlen(open);
    const char *p = page;
    while ((p = find_ci(p, end, open)) != NULL) {
        const char c = p[on];
        if (c != '>' && c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            p += on;            /* <scripts..., <styled...: another tag */
            continue;
        }
        const char *gt = memchr(p, '>', (size_t)(end - p));
        if (!gt)
            break;
        const char *src = find_ci(p, gt, " src=");
        const char *body = gt + 1;
        const char *stop = find_ci(body, end, close);
        if (!stop)
            break;
        if (!src && !add_hash(out, body, stop))
            return 0;
        p = stop;
    }
    return 1;
}

int server_csp_init(const char *page, size_t len)
{
    free(csp);
    char *script = strdup("script-src 'self'");
    char *style = strdup("style-src 'self'");
    int ok = script && style &&
             hash_elements(&script, page, page + len, "script") &&
             hash_elements(&style, page, page + len, "style");
    if (ok) {
        /* img-src data: for the page's inline favicon; blob: for the PNG
         * downloads it makes; connect-src 'self' for its API calls. */
        const char *fmt = "default-src 'none'; %s; %s; img-src 'self' data: "
                          "blob:; connect-src 'self'; base-uri 'none'; "
                          "form-action 'none'; frame-ancestors 'none'";
        size_t n = strlen(fmt) + strlen(script) + strlen(style);
        csp = malloc(n);
        ok = csp != NULL;
        if (ok)
            snprintf(csp, n, fmt, script, style);
    }
    free(script);
    free(style);
    return ok;
}

const char *server_csp(void)
{
    return csp;
}
