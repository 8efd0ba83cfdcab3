/* jsonw.c -- see jsonw.h */
#include "jsonw.h"
#include "b64.h"
#include "f2s.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void jw_init(jsonw *w)
{
    memset(w, 0, sizeof *w);
}

void jw_free(jsonw *w)
{
    free(w->buf);
    memset(w, 0, sizeof *w);
}

char *jw_take(jsonw *w, size_t *len)
{
    if (w->failed) {
        jw_free(w);
        return NULL;
    }
    char *b = w->buf;
    *len = w->len;
    w->buf = NULL;
    w->len = w->cap = 0;
    return b;
}

static int reserve(jsonw *w, size_t extra)
{
    if (w->failed)
        return 0;
    if (w->len + extra <= w->cap)
        return 1;
    size_t cap = w->cap ? w->cap : 4096;
    while (cap < w->len + extra)
        cap *= 2;
    char *b = realloc(w->buf, cap);
    if (!b) {
        w->failed = 1;
        return 0;
    }
    w->buf = b;
    w->cap = cap;
    return 1;
}

void jw_raw(jsonw *w, const char *s, size_t n)
{
    if (n == 0)                 /* s may be NULL: an empty part */
        return;
    if (!reserve(w, n))
        return;
    memcpy(w->buf + w->len, s, n);
    w->len += n;
}

void jw_lit(jsonw *w, const char *s)
{
    jw_raw(w, s, strlen(s));
}

void jw_key(jsonw *w, const char *key)
{
    jw_raw(w, "\"", 1);
    jw_lit(w, key);
    jw_raw(w, "\":", 2);
}

void jw_bool(jsonw *w, int b)
{
    jw_lit(w, b ? "true" : "false");
}

int jw_format_float(char *s, float f)
{
    return f2s_format(s, f);
}

void jw_float(jsonw *w, float f)
{
    if (!reserve(w, F2S_BUFFER))
        return;
    if (f == 0.0f && !signbit(f))      /* the masked half of every causal
                                         * weight matrix */
        w->buf[w->len++] = '0';
    else
        w->len += (size_t)f2s_format(w->buf + w->len, f);
}

/* The longest float text ("-1.17549435e-38") and a comma. */
#define MAX_FLOAT_TEXT 16

/* v[i0..i1) as text at o, a comma before each number but the very first
 * (i == 0); returns the end.  The caller has reserved (i1 - i0) *
 * MAX_FLOAT_TEXT + F2S_BUFFER bytes (f2s_format may write past its
 * text).  +0 is "0" (the masked half of causal weights), -inf "null" when
 * asked.  A number with the bits of the one before it
 * copies that one's text: rows of one value, like /bow's weights, are
 * common, and formatting costs far more than the copy (bench/README.md,
 * "Instruction counts in api/"). */
static char *numbers(char *o, const float *v, int64_t i0, int64_t i1,
                     int null_neg_inf)
{
    const char *prev = NULL;
    size_t plen = 0;
    uint32_t pbits = 0;
    for (int64_t i = i0; i < i1; i++) {
        if (i)
            *o++ = ',';
        const float f = v[i];
        uint32_t bits;
        memcpy(&bits, &f, sizeof bits);
        if (f == 0.0f && !signbit(f)) {
            *o++ = '0';
        } else if (null_neg_inf && f == -INFINITY) {
            memcpy(o, "null", 4);
            o += 4;
        } else if (prev && bits == pbits) {
            memcpy(o, prev, plen);
            o += plen;
        } else {
            prev = o;
            o += f2s_format(o, f);
            plen = (size_t)(o - prev);
            pbits = bits;
        }
    }
    return o;
}

/* The sub-tensor at depth d as text at o, room reserved; returns the end. */
static char *nested(char *o, const engine_tensor *t, int d, const float **p,
                    int null_neg_inf)
{
    const int64_t n = t->dim[d];
    *o++ = '[';
    if (d + 1 < t->rank) {
        for (int64_t i = 0; i < n; i++) {
            if (i)
                *o++ = ',';
            o = nested(o, t, d + 1, p, null_neg_inf);
        }
    } else {
        o = numbers(o, *p, 0, n, null_neg_inf);
        *p += n;
    }
    *o++ = ']';
    return o;
}

/* Sub-tensors of up to NESTED_BLOCK numbers (or one innermost row) get
 * room at once and are written with plain stores: a reserve and a call
 * for every bracket and comma cost too much (bench/README.md).
 * numel[d], arrays[d]: numbers and arrays in a sub-tensor at depth d. */
#define NESTED_BLOCK 4096
static void tensor_rec(jsonw *w, const engine_tensor *t, int d,
                       const int64_t *numel, const int64_t *arrays,
                       const float **p, int null_neg_inf)
{
    if (d + 1 == t->rank || numel[d] <= NESTED_BLOCK) {
        /* two brackets an array, a comma between arrays */
        if (!reserve(w, (size_t)numel[d] * MAX_FLOAT_TEXT +
                            3 * (size_t)arrays[d] + F2S_BUFFER))
            return;
        char *o = nested(w->buf + w->len, t, d, p, null_neg_inf);
        w->len = (size_t)(o - w->buf);
        return;
    }
    jw_raw(w, "[", 1);
    for (int64_t i = 0; i < t->dim[d]; i++) {
        if (i)
            jw_raw(w, ",", 1);
        tensor_rec(w, t, d + 1, numel, arrays, p, null_neg_inf);
    }
    jw_raw(w, "]", 1);
}

/* ==== many threads ==== */

/* The brackets and comma between sub-tensor k-1 and k when a tensor is
 * cut into sub-tensors at depth `level` (k = 0: the opening brackets). */
static void between(jsonw *w, const engine_tensor *t, int level, int64_t k)
{
    int m = 0;                      /* levels whose index wrapped to 0 */
    if (k == 0) {
        m = level + 1;
    } else {
        for (int l = level; l >= 0 && k % t->dim[l] == 0; l--) {
            k /= t->dim[l];
            m++;
        }
    }
    for (int i = 0; k != 0 && i < m; i++)
        jw_raw(w, "]", 1);
    if (k != 0)
        jw_raw(w, ",", 1);
    for (int i = 0; i < m; i++)
        jw_raw(w, "[", 1);
}

void jw_tensor_mt(jsonw *w, const engine_tensor *t, int null_neg_inf,
                  int nthreads)
{
    /* Cut at the shallowest depth giving a few pieces per thread. */
    int level = 0;
    int64_t pieces = t->rank ? t->dim[0] : 1;
    while (level + 2 < t->rank && pieces < 4 * nthreads)
        pieces *= t->dim[++level];
    if (nthreads <= 1 || t->rank < 2 || pieces < 2 || w->failed) {
        jw_tensor(w, t, null_neg_inf);
        return;
    }
    engine_tensor sub = {NULL, t->rank - level - 1, {0}};
    for (int i = 0; i < sub.rank; i++)
        sub.dim[i] = t->dim[level + 1 + i];
    const int64_t piece = engine_numel(&sub);

    jsonw parts[64];
    if (nthreads > 64)
        nthreads = 64;
    #pragma omp parallel for num_threads(nthreads) schedule(static, 1)
    for (int p = 0; p < nthreads; p++) {
        jw_init(&parts[p]);
        const int64_t k0 = pieces * p / nthreads;
        const int64_t k1 = pieces * (p + 1) / nthreads;
        /* one allocation instead of a doubling series of copies */
        reserve(&parts[p], (size_t)((k1 - k0) * piece) * JW_BYTES_PER_FLOAT);
        for (int64_t k = k0; k < k1; k++) {
            engine_tensor one = sub;
            one.data = t->data + k * piece;
            between(&parts[p], t, level, k);
            jw_tensor(&parts[p], &one, null_neg_inf);
        }
    }
    size_t total = 0;
    for (int p = 0; p < nthreads; p++)
        total += parts[p].len;
    reserve(w, total + (size_t)level + 1);
    for (int p = 0; p < nthreads; p++) {
        if (parts[p].failed)
            w->failed = 1;
        jw_raw(w, parts[p].buf, parts[p].len);
        jw_free(&parts[p]);
    }
    for (int i = 0; i <= level; i++)
        jw_raw(w, "]", 1);
}

void jw_tensor(jsonw *w, const engine_tensor *t, int null_neg_inf)
{
    const float *p = t->data;
    if (t->rank == 0) {
        jw_float(w, *p);
        return;
    }
    int64_t numel[ENGINE_MAX_RANK], arrays[ENGINE_MAX_RANK];
    for (int d = t->rank - 1; d >= 0; d--) {
        const int inner = d + 1 == t->rank;
        numel[d] = t->dim[d] * (inner ? 1 : numel[d + 1]);
        arrays[d] = 1 + (inner ? 0 : t->dim[d] * arrays[d + 1]);
    }
    tensor_rec(w, t, 0, numel, arrays, &p, null_neg_inf);
}

/* ==== tensor formats ==== */

/* "[2,3]" */
static void shape_json(jsonw *w, const engine_tensor *t)
{
    jw_raw(w, "[", 1);
    for (int i = 0; i < t->rank; i++) {
        char num[24];
        const int n = snprintf(num, sizeof num, "%s%lld", i ? "," : "",
                               (long long)t->dim[i]);
        jw_raw(w, num, (size_t)n);
    }
    jw_raw(w, "]", 1);
}

/* n floats separated by commas, no brackets, as tensor_rec writes a row. */
static void flat_run(jsonw *w, const float *v, int64_t n, int null_neg_inf)
{
    for (int64_t i0 = 0; i0 < n; i0 += 4096) {
        const int64_t i1 = n - i0 < 4096 ? n : i0 + 4096;
        if (!reserve(w, (size_t)(i1 - i0) * MAX_FLOAT_TEXT + F2S_BUFFER))
            return;
        char *o = numbers(w->buf + w->len, v, i0, i1, null_neg_inf);
        w->len = (size_t)(o - w->buf);
    }
}

static void flat_mt(jsonw *w, const engine_tensor *t, int null_neg_inf,
                    int nthreads)
{
    const int64_t n = engine_numel(t);
    if (nthreads > 64)
        nthreads = 64;
    if (nthreads <= 1 || n < 2 * nthreads || w->failed) {
        flat_run(w, t->data, n, null_neg_inf);
        return;
    }
    jsonw parts[64];
    #pragma omp parallel for num_threads(nthreads) schedule(static, 1)
    for (int p = 0; p < nthreads; p++) {
        jw_init(&parts[p]);
        const int64_t k0 = n * p / nthreads, k1 = n * (p + 1) / nthreads;
        reserve(&parts[p], (size_t)(k1 - k0) * JW_BYTES_PER_FLOAT + 1);
        if (p)
            jw_raw(&parts[p], ",", 1);
        /* flat_run's "no comma before the first" is for i == 0 only */
        flat_run(&parts[p], t->data + k0, k1 - k0, null_neg_inf);
    }
    size_t total = 0;
    for (int p = 0; p < nthreads; p++)
        total += parts[p].len;
    reserve(w, total);
    for (int p = 0; p < nthreads; p++) {
        if (parts[p].failed)
            w->failed = 1;
        jw_raw(w, parts[p].buf, parts[p].len);
        jw_free(&parts[p]);
    }
}

void jw_numbers(jsonw *w, const engine_tensor *t, int null_neg_inf,
                int nthreads)
{
    flat_mt(w, t, null_neg_inf, nthreads);
}

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "b64 output writes the host's float bytes: little-endian hosts only"
#endif

/* Base64 of bin[0..n) into out (room for the text and a NUL), in pieces
 * of 3072 bytes (4096 characters: base64 of whole 3-byte groups
 * concatenates), on nthreads threads (b64.c). */
static void b64_mt(char *out, const unsigned char *bin, size_t n,
                   int nthreads)
{
    enum { PIECE = 3072 };
    const size_t pieces = (n + PIECE - 1) / PIECE;
    if (nthreads > 64)
        nthreads = 64;
    if ((size_t)nthreads > pieces)
        nthreads = pieces ? (int)pieces : 1;
    #pragma omp parallel for num_threads(nthreads) schedule(static)
    for (size_t k = 0; k < pieces; k++) {
        const size_t from = k * PIECE;
        const size_t len = n - from < PIECE ? n - from : PIECE;
        /* every piece but the last is whole groups: no padding */
        b64_encode(out + from / 3 * 4, bin + from, len);
    }
    out[(n + 2) / 3 * 4] = '\0';
}

void jw_tensor_as(jsonw *w, const engine_tensor *t, int null_neg_inf,
                  jw_format format, int nthreads)
{
    if (format == JW_NESTED) {
        jw_tensor_mt(w, t, null_neg_inf, nthreads);
        return;
    }
    jw_raw(w, "{\"shape\":", 9);
    shape_json(w, t);
    if (format == JW_FLAT) {
        jw_raw(w, ",\"data\":[", 9);
        flat_mt(w, t, null_neg_inf, nthreads);
        jw_raw(w, "]}", 2);
        return;
    }
    /* b64: the float32 bytes as they are, -inf included (masked scores). */
    jw_lit(w, ",\"dtype\":\"float32\",\"b64\":\"");
    const size_t bytes = (size_t)engine_numel(t) * sizeof(float);
    const size_t cap = B64_ENCODED_LEN(bytes);
    if (reserve(w, cap)) {
        b64_mt(w->buf + w->len, (const unsigned char *)t->data, bytes,
               nthreads);
        w->len += cap - 1;          /* the NUL is not part of the text */
    }
    jw_raw(w, "\"}", 2);
}
