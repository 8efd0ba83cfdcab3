/* encoding.c -- gzip and deflate both ways, with zlib (encoding.h). */
#include "encoding.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <zlib.h>

#include "../api/v2.h"

/* ==== what the client sent and accepts ==== */

/* The path's error form, as route.c answers. */
static void fail(const char *path, api_response *res, int status,
                 const char *code, const char *msg)
{
    memset(res, 0, sizeof *res);
    if (server_is_v2_path(path))
        api_v2_error(res, status, code, msg);
    else
        api_simple_error(res, status, code, msg);
}

/* The token at *s (a coding name), blanks around it skipped: its start
 * and length, *s moved past it and its parameters to the next ','. */
static size_t token(const char **s, const char **start, const char **params)
{
    const char *p = *s;
    while (*p == ' ' || *p == '\t' || *p == ',')
        p++;
    *start = p;
    size_t n = strcspn(p, ",; \t");
    const char *q = p + n;
    while (*q == ' ' || *q == '\t')
        q++;
    *params = *q == ';' ? q + 1 : NULL;
    *s = q + strcspn(q, ",");
    return n;
}

static int is(const char *t, size_t n, const char *name)
{
    return n == strlen(name) && strncasecmp(t, name, n) == 0;
}

int server_request_coding(const char *path, const char *content_encoding,
                          int *coding, api_response *early)
{
    *coding = CODING_IDENTITY;
    const char *s = content_encoding, *t, *params;
    int n_codings = 0;
    while (s && *s) {
        const size_t n = token(&s, &t, &params);
        if (n == 0 || is(t, n, "identity"))
            continue;
        n_codings++;
        if (is(t, n, "gzip") || is(t, n, "x-gzip"))
            *coding = CODING_GZIP;
        else if (is(t, n, "deflate"))
            *coding = CODING_DEFLATE;
        else
            n_codings = 99;
    }
    if (n_codings <= 1)
        return 1;
    char msg[200];
    snprintf(msg, sizeof msg, "Content-Encoding %.80s is not supported; "
             "send the body as it is, or compressed once with gzip or "
             "deflate", content_encoding);
    fail(path, early, 415, "unsupported_encoding", msg);
    return 0;
}

/* q of a coding's parameters (1 without one). */
static double quality(const char *params)
{
    while (params && *params) {
        while (*params == ' ' || *params == '\t' || *params == ';')
            params++;
        if ((params[0] == 'q' || params[0] == 'Q') && params[1] == '=')
            return strtod(params + 2, NULL);
        params += strcspn(params, ";,");
        if (*params == ',')
            break;
    }
    return 1;
}

int server_accept_coding(const char *accept_encoding)
{
    double q_gzip = -1, q_deflate = -1, q_any = -1;
    const char *s = accept_encoding, *t, *params;
    while (s && *s) {
        const size_t n = token(&s, &t, &params);
        const double q = quality(params);
        if (is(t, n, "gzip") || is(t, n, "x-gzip"))
            q_gzip = q;
        else if (is(t, n, "deflate"))
            q_deflate = q;
        else if (is(t, n, "*"))
            q_any = q;
    }
    if (q_gzip < 0)
        q_gzip = q_any;
    if (q_deflate < 0)
        q_deflate = q_any;
    if (q_gzip > 0 && q_gzip >= q_deflate)
        return CODING_GZIP;
    return q_deflate > 0 ? CODING_DEFLATE : CODING_IDENTITY;
}

/* ==== request bodies ==== */

/* zlib's window bits: gzip (16 + 15); deflate as HTTP means it, zlib's
 * format (15), or raw deflate (-15), which some clients send instead. */
static int inflate_all(int wbits, const char *in, size_t n, uint64_t max,
                       char **out, size_t *outn, int *over)
{
    if (n > UINT32_MAX || max >= SIZE_MAX / 2)
        return Z_MEM_ERROR;
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, wbits) != Z_OK)
        return Z_MEM_ERROR;
    /* room for one byte past the limit: writing it means "too large",
     * and a body of exactly max bytes still fits */
    const size_t limit = (size_t)max + 1;
    size_t cap = n < 16384 ? 65536 : n * 4, len = 0;
    if (cap > limit)
        cap = limit;
    char *buf = malloc(cap);
    int rc = buf ? Z_OK : Z_MEM_ERROR;
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)n;
    while (rc == Z_OK) {
        if (len == cap) {
            if (cap == limit) {
                *over = 1;
                rc = Z_BUF_ERROR;
                break;
            }
            const size_t ncap = cap > limit / 2 ? limit : cap * 2;
            char *b = realloc(buf, ncap);
            if (!b) {
                rc = Z_MEM_ERROR;
                break;
            }
            buf = b;
            cap = ncap;
        }
        const size_t room = cap - len;
        z.next_out = (Bytef *)buf + len;
        z.avail_out = (uInt)(room > UINT32_MAX ? UINT32_MAX : room);
        const uInt before = z.avail_out;
        rc = inflate(&z, Z_NO_FLUSH);
        len += before - z.avail_out;
        if (rc == Z_STREAM_END && z.avail_in > 0)
            /* gzip: another member may follow; otherwise bytes after the
             * data */
            rc = wbits > 16 ? inflateReset(&z) : Z_DATA_ERROR;
        else if (rc == Z_BUF_ERROR)
            /* full output: grow it; no progress with room: cut short */
            rc = z.avail_out == 0 ? Z_OK : Z_DATA_ERROR;
    }
    inflateEnd(&z);
    if (rc == Z_STREAM_END && len == limit) {
        *over = 1;
        rc = Z_BUF_ERROR;
    }
    if (rc != Z_STREAM_END) {
        free(buf);
        return rc;
    }
    *out = buf;
    *outn = len;
    return Z_OK;
}

int server_decode_body(const char *path, int coding, const char *in,
                       size_t n, uint64_t max, char **out, size_t *outn,
                       api_response *res)
{
    int over = 0;
    int rc = inflate_all(coding == CODING_GZIP ? 16 + 15 : 15, in, n, max,
                         out, outn, &over);
    if (rc == Z_DATA_ERROR && coding == CODING_DEFLATE && !over)
        rc = inflate_all(-15, in, n, max, out, outn, &over);
    if (rc == Z_OK)
        return 0;
    char msg[200];
    if (over) {
        snprintf(msg, sizeof msg, "the request body decodes to more than "
                 "this server's limit of %llu bytes (--max-body applies to "
                 "the decoded body)", (unsigned long long)max);
        fail(path, res, 413, "body_too_large", msg);
    } else if (rc == Z_MEM_ERROR) {
        fail(path, res, 503, "out_of_memory", "the server could not "
             "allocate memory to decode the body; retry later");
    } else {
        snprintf(msg, sizeof msg, "the request body is not valid %s data "
                 "(Content-Encoding says it is)",
                 coding == CODING_GZIP ? "gzip" : "deflate");
        fail(path, res, 400, "invalid_encoding", msg);
    }
    return -1;
}

/* ==== responses ==== */

int server_may_compress(const server_route *rt)
{
    if (!rt)
        return 0;
    if (rt->model >= 0)
        return rt->kind == ROUTE_PLAIN && (rt->post || rt->infer);
    return rt->post && strcmp(rt->path, "/randn") == 0;
}

const char *server_compress_response(api_response *res, int coding)
{
    if (coding == CODING_IDENTITY || res->is_static || !res->body ||
        res->len < SERVER_COMPRESS_MIN_BYTES || res->len > UINT32_MAX)
        return NULL;
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, SERVER_COMPRESS_LEVEL, Z_DEFLATED,
                     coding == CODING_GZIP ? 16 + 15 : 15, 8,
                     Z_DEFAULT_STRATEGY) != Z_OK)
        return NULL;
    const uLong bound = deflateBound(&z, (uLong)res->len);
    char *out = malloc(bound);
    int rc = Z_STREAM_ERROR;
    if (out) {
        z.next_in = (Bytef *)res->body;
        z.avail_in = (uInt)res->len;
        z.next_out = (Bytef *)out;
        z.avail_out = (uInt)bound;
        rc = deflate(&z, Z_FINISH);
    }
    const size_t len = z.total_out;
    deflateEnd(&z);
    if (rc != Z_STREAM_END || len >= res->len) {
        free(out);              /* no memory, or no gain: as it is */
        return NULL;
    }
    free(res->body);
    res->body = out;
    res->len = len;
    return coding == CODING_GZIP ? "gzip" : "deflate";
}
