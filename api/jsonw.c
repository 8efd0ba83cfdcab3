/* jsonw.c -- see jsonw.h */
#include "jsonw.h"
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

int jw_failed(const jsonw *w)
{
    return w->failed;
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
    if (!reserve(w, 32))
        return;
    if (f == 0.0f && !signbit(f))      /* the masked half of every causal
                                         * weight matrix */
        w->buf[w->len++] = '0';
    else
        w->len += (size_t)f2s_format(w->buf + w->len, f);
}

/* The longest float text ("-1.17549435e-38") and a comma. */
#define MAX_FLOAT_TEXT 16

static void tensor_rec(jsonw *w, const engine_tensor *t, int d,
                       const float **p, int null_neg_inf)
{
    const int64_t n = t->dim[d];
    if (d + 1 < t->rank) {
        jw_raw(w, "[", 1);
        for (int64_t i = 0; i < n; i++) {
            if (i)
                jw_raw(w, ",", 1);
            tensor_rec(w, t, d + 1, p, null_neg_inf);
        }
        jw_raw(w, "]", 1);
        return;
    }
    /* The innermost row: room for all of it at once, then plain stores. */
    if (!reserve(w, (size_t)n * MAX_FLOAT_TEXT + 2))
        return;
    char *o = w->buf + w->len;
    const float *v = *p;
    *o++ = '[';
    for (int64_t i = 0; i < n; i++) {
        if (i)
            *o++ = ',';
        const float f = v[i];
        if (f == 0.0f && !signbit(f))
            *o++ = '0';     /* the masked half of causal weights */
        else if (null_neg_inf && f == -INFINITY) {
            memcpy(o, "null", 4);
            o += 4;
        } else {
            o += f2s_format(o, f);
        }
    }
    *o++ = ']';
    w->len = (size_t)(o - w->buf);
    *p = v + n;
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
    tensor_rec(w, t, 0, &p, null_neg_inf);
}
