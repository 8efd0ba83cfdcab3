/* engine.c -- see engine.h.  Plain C kernels, OpenMP over the batch;
 * engine_attend's blocked kernels are in attend_fast.inc. */
#include "engine.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

int64_t engine_numel(const engine_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->rank; i++)
        n *= t->dim[i];
    return n;
}

#include "parallel.h"

/* ==== bag of words ==== */

void engine_bow_loop(engine_tensor *out, const engine_tensor *x, int nthreads)
{
    /* out: (B,T,C), x: (B,T,C).  xbow[b, t] = mean(x[b, :t+1], 0): the sum
     * of x[b, 0..t] in order from 0.0f, divided by t+1.  That sum is the
     * previous row's sum plus x[b, t], the very same additions, so the
     * rows are running sums (O(B*T*C), not O(B*T*T*C)); each row of out
     * holds its sum until the next row has read it, then is divided. */
    const int64_t B = x->dim[0], T = x->dim[1], C = x->dim[2];
    const float *xd = x->data;
    float *od = out->data;

    PARALLEL_FOR(b, B, {
        const float *xb = xd + b * T * C;
        float *ob = od + b * T * C;
        for (int64_t t = 0; t < T; t++) {
            float *row = ob + t * C;
            const float *prev = row - C;
            for (int64_t c = 0; c < C; c++)
                row[c] = (t ? prev[c] : 0.0f) + xb[t * C + c];
            if (t) {
                float *done = ob + (t - 1) * C;
                for (int64_t c = 0; c < C; c++)
                    done[c] = done[c] / (float)t;
            }
        }
        if (T) {
            float *last = ob + (T - 1) * C;
            for (int64_t c = 0; c < C; c++)
                last[c] = last[c] / (float)T;
        }
    });
}

void engine_bow_tril_weights(engine_tensor *wei)
{
    /* wei: (T,T) = tril(ones(T,T)); wei /= wei.sum(1, keepdim=True) */
    const int64_t T = wei->dim[0];
    for (int64_t t = 0; t < T; t++) {
        float *row = wei->data + t * T;
        float sum = 0.0f;
        for (int64_t s = 0; s < T; s++) {
            row[s] = s <= t ? 1.0f : 0.0f;
            sum += row[s];
        }
        for (int64_t s = 0; s < T; s++)
            row[s] = row[s] / sum;
    }
}

void engine_bow_softmax_weights(engine_tensor *wei)
{
    /* wei: (T,T) = softmax(zeros(T,T).masked_fill(tril == 0, -inf), -1) */
    const int64_t T = wei->dim[0];
    for (int64_t t = 0; t < T; t++)
        for (int64_t s = 0; s < T; s++)
            wei->data[t * T + s] = s <= t ? 0.0f : -INFINITY;
    engine_softmax_rows(wei->data, T, T);
}

/* o[0..n) = 0 + wrow[0] * x[0][.] + wrow[1] * x[1][.] + ... over the T
 * rows of x (n wide), added in that order, n lanes at a time. */
static void row_times(float *o, const float *wrow, const float *x, int64_t T,
                      int64_t n)
{
    for (int64_t j = 0; j < n; j++)
        o[j] = 0.0f;
    for (int64_t s = 0; s < T; s++) {
        const float a = wrow[s];
        const float *xs = x + s * n;
        for (int64_t j = 0; j < n; j++)
            o[j] += a * xs[j];
    }
}

void engine_matmul_tt(engine_tensor *out, const engine_tensor *wei,
                      const engine_tensor *x, int nthreads)
{
    /* out: (B,T,C) = wei (T,T) @ x (B,T,C) */
    const int64_t B = x->dim[0], T = x->dim[1], C = x->dim[2];
    const float *w = wei->data;

    /* Narrow C, one thread, small: x's columns side by side as one
     * T x (B*C) matrix, so that each output row is B*C sums computed as
     * vectors: out[t][n] = 0 + wei[t][0]*X[0][n] + wei[t][1]*X[1][n] + ...,
     * the same additions in the same order as the loops below.  The
     * lecture's B=4, C=2 gives 8 lanes; callgrind: ~4.7k -> ~1k
     * instructions for /bow's small request. */
    enum { NARROW_MAX = 2048 };
    const int64_t N = B * C;
    if (C < 8 && nthreads <= 1 && T * N <= NARROW_MAX) {
        float X[NARROW_MAX], O[NARROW_MAX];
        for (int64_t b = 0; b < B; b++)
            for (int64_t s = 0; s < T; s++)
                for (int64_t c = 0; c < C; c++)
                    X[s * N + b * C + c] = x->data[(b * T + s) * C + c];
        for (int64_t t = 0; t < T; t++)
            row_times(O + t * N, w + t * T, X, T, N);
        for (int64_t b = 0; b < B; b++)
            for (int64_t t = 0; t < T; t++)
                for (int64_t c = 0; c < C; c++)
                    out->data[(b * T + t) * C + c] = O[t * N + b * C + c];
        return;
    }

    PARALLEL_FOR(b, B, {
        const float *xb = x->data + b * T * C;
        float *ob = out->data + b * T * C;
        for (int64_t t = 0; t < T; t++) {
            float *o = ob + t * C;
            /* A full matmul: the zeros above the diagonal are multiplied
             * too, as `weights @ x` does; skipping them would be a
             * different method. */
            if (C < 8) {
                /* Too narrow for the vector loop below (whose set-up
                 * costs more than its 2 or 4 lanes save: callgrind, the
                 * lecture's C = 2): one sum per column, the same
                 * additions in the same order. */
                for (int64_t c = 0; c < C; c++) {
                    float acc = 0.0f;
                    for (int64_t s = 0; s < T; s++)
                        acc += w[t * T + s] * xb[s * C + c];
                    o[c] = acc;
                }
                continue;
            }
            row_times(o, w + t * T, xb, T, C);
        }
    });
}

/* ==== building blocks ==== */

void engine_softmax_rows(float *m, int64_t rows, int64_t n)
{
    /* m: (rows, n), softmax over the last dimension, in place */
    for (int64_t r = 0; r < rows; r++) {
        float *row = m + r * n;
        float max = -INFINITY;
        for (int64_t i = 0; i < n; i++)
            if (row[i] > max)
                max = row[i];
        if (max == -INFINITY) {
            /* Nothing to attend to: zeros, not exp(-inf - -inf) = NaN. */
            memset(row, 0, (size_t)n * sizeof *row);
            continue;
        }
        float sum = 0.0f;
        for (int64_t i = 0; i < n; i++) {
            /* a masked score: expf(-inf) is exactly 0, without the call
             * (half of a causal matrix) */
            row[i] = row[i] == -INFINITY ? 0.0f : expf(row[i] - max);
            sum += row[i];
        }
        const float inv = 1.0f / sum;
        for (int64_t i = 0; i < n; i++)
            row[i] *= inv;
    }
}

/* One batch element of x (T,C) @ w^T, w (N,C) -> out (T,N). */
static void linear_one(float *out, const float *x, const float *w,
                       int64_t T, int64_t C, int64_t N)
{
    for (int64_t t = 0; t < T; t++) {
        const float *xt = x + t * C;
        for (int64_t o = 0; o < N; o++) {
            const float *wo = w + o * C;
            float sum = 0.0f;
            for (int64_t c = 0; c < C; c++)
                sum += xt[c] * wo[c];
            out[t * N + o] = sum;
        }
    }
}

/* ==== single-head attention ==== */

/* ---- the optimised kernel ---- */

/* wt (C,N) = w (N,C) transposed. */
static void transpose(float *restrict wt, const float *restrict w, int64_t N,
                      int64_t C)
{
    for (int64_t o = 0; o < N; o++)
        for (int64_t c = 0; c < C; c++)
            wt[c * N + o] = w[o * C + c];
}

/* Keys row t may see: all S, or 0..t when causal (top-left aligned like
 * F.scaled_dot_product_attention(is_causal=True) when T != S). */
static inline int64_t causal_keys(int causal, int64_t t, int64_t S)
{
    return causal && t + 1 < S ? t + 1 : S;
}

/* The mask rows of batch element b: mask (T,S) is shared, (B,T,S) is
 * b's own; NULL when there is no mask. */
static const float *mask_of(const engine_tensor *mask, int64_t b,
                            int64_t T, int64_t S)
{
    if (!mask)
        return NULL;
    return mask->rank == 3 ? mask->data + b * T * S : mask->data;
}

/* The hot loops, stamped out twice (attend_kernels.inc) and chosen once
 * by the CPU.  Not target_clones: its ifunc resolver runs before libgcc
 * has read the CPU on this toolchain and always picked the baseline. */
#define KERNEL(name) name##_base
#include "attend_kernels.inc"
#undef KERNEL

#if defined(__x86_64__) && defined(__GNUC__)
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#define KERNEL(name) name##_avx2
#include "attend_kernels.inc"
#undef KERNEL
#pragma GCC pop_options
#define HAVE_AVX2_KERNELS 1
#endif

typedef void (*linear_fn)(float *restrict, const float *restrict,
                          const float *restrict, int64_t, int64_t, int64_t);
typedef void (*attend_fn)(float *restrict, float *restrict, float *restrict,
                          const float *restrict, const float *restrict,
                          const float *restrict, const float *restrict,
                          int64_t, int64_t, int64_t, int, float);

static int force_baseline;

void engine_attention_force_baseline(int on)
{
    force_baseline = on;
}

static int use_avx2(void)
{
#ifdef HAVE_AVX2_KERNELS
    static int cached = -1;     /* benign race: every thread computes 0/1 */
    if (force_baseline)
        return 0;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx2") &&
                 __builtin_cpu_supports("fma");
    }
    return cached;
#else
    return 0;
#endif
}

/* The build of the hot loops this CPU runs. */
typedef struct kernels {
    linear_fn linear;
    attend_fn attend;
} kernels;

static kernels pick_kernels(void)
{
#ifdef HAVE_AVX2_KERNELS
    if (use_avx2())
        return (kernels){linear_t_avx2, attend_one_avx2};
#endif
    return (kernels){linear_t_base, attend_one_base};
}

const char *engine_attention_kernel(void)
{
    return use_avx2() ? "avx2+fma" : "baseline";
}

int64_t engine_attention_scratch(const engine_tensor *x,
                                 const engine_tensor *ctx, int64_t hs)
{
    const int64_t S = ctx ? ctx->dim[1] : x->dim[1];
    return 3 * hs * x->dim[2] + x->dim[0] * hs * S;
}

void engine_attention(engine_tensor *q, engine_tensor *k, engine_tensor *v,
                      engine_tensor *scores, engine_tensor *wei,
                      engine_tensor *out, const engine_tensor *x,
                      const engine_tensor *ctx, const engine_tensor *wq,
                      const engine_tensor *wk, const engine_tensor *wv,
                      const engine_attention_args *args, float *scratch,
                      int nthreads)
{
    /* x: (B,T,C); ctx: (B,S,C) or NULL (then ctx = x, S = T);
     * wq, wk, wv: (hs,C); q, out: (B,T,hs); k, v: (B,S,hs);
     * scores, wei: (B,T,S); args->mask: NULL, (T,S) or (B,T,S);
     * scratch: wqt, wkt, wvt (C,hs), kt (B,hs,S) */
    if (!ctx)
        ctx = x;
    const int64_t B = x->dim[0], T = x->dim[1], C = x->dim[2];
    const int64_t S = ctx->dim[1], hs = wq->dim[0];
    float *wqt = scratch, *wkt = wqt + hs * C, *wvt = wkt + hs * C;
    float *kts = wvt + hs * C;

    const kernels kn = pick_kernels();
    const linear_fn linear_t = kn.linear;
    const attend_fn attend_one = kn.attend;
    transpose(wqt, wq->data, hs, C);
    transpose(wkt, wk->data, hs, C);
    transpose(wvt, wv->data, hs, C);

    PARALLEL_FOR(b, B, {
        const float *xb = x->data + b * T * C, *cb = ctx->data + b * S * C;
        float *qb = q->data + b * T * hs, *kb = k->data + b * S * hs;
        float *vb = v->data + b * S * hs, *kt = kts + b * hs * S;
        linear_t(qb, xb, wqt, T, C, hs);
        linear_t(kb, cb, wkt, S, C, hs);
        linear_t(vb, cb, wvt, S, C, hs);
        transpose(kt, kb, S, hs);
        attend_one(scores->data + b * T * S, wei->data + b * T * S,
                   out->data + b * T * hs, qb, kt, vb,
                   mask_of(args->mask, b, T, S), T, S, hs, args->causal,
                   args->scale);
    });
}

/* ---- the plain reference ---- */

/* One batch element, the obvious loops: scores sb, weights wb (T,S) and
 * out ob (T,hs) from q (T,hs), k, v (S,hs), mask mb (T,S) or NULL.
 * ostride: the distance between out's rows (hs, or H*hs when writing a
 * head's columns of the concatenation). */
static void attend_ref(float *sb, int64_t sstride, float *wb,
                       int64_t wstride, float *ob, int64_t ostride,
                       const float *qb, const float *kb, const float *vb,
                       const float *mb, int64_t T, int64_t S, int64_t hs,
                       const engine_attention_args *args)
{
    /* sstride, wstride: the distance between the rows of sb, wb (S, or 0
     * for a one-row buffer reused by every row) */
    for (int64_t t = 0; t < T; t++) {
        /* Row t attends to s < n: everything, or 0..t when causal. */
        const int64_t n = causal_keys(args->causal, t, S);
        const float *qt = qb + t * hs;
        float *st = sb + t * sstride;
        float *wt = wb + t * wstride;
        for (int64_t s = 0; s < n; s++) {
            const float *ks = kb + s * hs;
            float dot = 0.0f;
            for (int64_t i = 0; i < hs; i++)
                dot += qt[i] * ks[i];
            st[s] = dot * args->scale;
            if (mb)     /* -inf: masked_fill, as in engine_attention */
                st[s] = mb[t * S + s] == -INFINITY ? -INFINITY
                                                   : st[s] + mb[t * S + s];
        }
        for (int64_t s = n; s < S; s++)
            st[s] = -INFINITY;

        memcpy(wt, st, (size_t)n * sizeof *wt);
        engine_softmax_rows(wt, 1, n);
        for (int64_t s = n; s < S; s++)
            wt[s] = 0.0f;

        float *ot = ob + t * ostride;
        for (int64_t i = 0; i < hs; i++) {
            float sum = 0.0f;
            for (int64_t s = 0; s < n; s++)
                sum += wt[s] * vb[s * hs + i];
            ot[i] = sum;
        }
    }
}

void engine_attention_ref(engine_tensor *q, engine_tensor *k, engine_tensor *v,
                          engine_tensor *scores, engine_tensor *wei,
                          engine_tensor *out, const engine_tensor *x,
                          const engine_tensor *ctx, const engine_tensor *wq,
                          const engine_tensor *wk, const engine_tensor *wv,
                          const engine_attention_args *args)
{
    /* x: (B,T,C); ctx: (B,S,C) or NULL (= x); wq, wk, wv: (hs,C);
     * q, out: (B,T,hs); k, v: (B,S,hs); scores, wei: (B,T,S);
     * args->mask: NULL, (T,S) or (B,T,S) */
    if (!ctx)
        ctx = x;
    const int64_t B = x->dim[0], T = x->dim[1], C = x->dim[2];
    const int64_t S = ctx->dim[1], hs = wq->dim[0];

    for (int64_t b = 0; b < B; b++) {
        float *qb = q->data + b * T * hs;
        float *kb = k->data + b * S * hs;
        float *vb = v->data + b * S * hs;
        linear_one(qb, x->data + b * T * C, wq->data, T, C, hs);
        linear_one(kb, ctx->data + b * S * C, wk->data, S, C, hs);
        linear_one(vb, ctx->data + b * S * C, wv->data, S, C, hs);
        attend_ref(scores->data + b * T * S, S, wei->data + b * T * S, S,
                   out->data + b * T * hs, hs, qb, kb, vb,
                   mask_of(args->mask, b, T, S), T, S, hs, args);
    }
}

/* ==== multi-head attention ==== */

int64_t engine_multihead_scratch(const engine_tensor *x,
                                 const engine_tensor *ctx, int64_t H,
                                 int64_t hs)
{
    const int64_t S = ctx ? ctx->dim[1] : x->dim[1];
    return 4 * H * hs * x->dim[2] + x->dim[0] * H * hs * (S + x->dim[1]);
}

/* Nonzero once args->cancel asks to stop (polled between work items). */
static int cancelled(const engine_attention_args *args)
{
    return args->cancel && *args->cancel;
}

/* engine_multihead's loops with the projection optional: without wo, the
 * concatenation of the heads is written into heads and nothing else.
 * Returns 1 when args->cancel stopped it (outputs undefined), else 0. */
static int multihead_run(float *qd, float *kd, float *vd, float *sd,
                         float *wd, float *hd, float *od,
                         const engine_tensor *x, const engine_tensor *ctx,
                         const engine_tensor *wq, const engine_tensor *wk,
                         const engine_tensor *wv, const engine_tensor *wo,
                         const engine_tensor *bo,
                         const engine_attention_args *args, float *scratch,
                         int nthreads)
{
    /* x: (B,T,C); ctx: (B,S,C) or NULL (= x, S = T); wq, wk, wv: (H,hs,C);
     * wo: (C,H*hs) or NULL; bo: (C,); qd: (B,H,T,hs); kd, vd: (B,H,S,hs);
     * sd, wd: (B,H,T,S); hd: (B,T,H*hs); od: (B,T,C) (unused without wo);
     * args->mask: NULL, (T,S) or (B,T,S), the same for every head;
     * scratch: wqt, wkt, wvt (H,C,hs), wot (H*hs,C), kt (B,H,hs,S),
     * ho (B,H,T,hs) */
    if (!ctx)
        ctx = x;
    const int64_t B = x->dim[0], T = x->dim[1], C = x->dim[2];
    const int64_t S = ctx->dim[1];
    const int64_t H = wq->dim[0], hs = wq->dim[1], D = H * hs;
    float *wqt = scratch, *wkt = wqt + D * C, *wvt = wkt + D * C;
    float *wot = wvt + D * C, *kts = wot + D * C, *hos = kts + B * D * S;
    int stop = 0;

    const kernels kn = pick_kernels();
    const linear_fn linear_t = kn.linear;
    const attend_fn attend_one = kn.attend;
    for (int64_t h = 0; h < H; h++) {
        transpose(wqt + h * hs * C, wq->data + h * hs * C, hs, C);
        transpose(wkt + h * hs * C, wk->data + h * hs * C, hs, C);
        transpose(wvt + h * hs * C, wv->data + h * hs * C, hs, C);
    }
    if (wo)
        transpose(wot, wo->data, C, D);

    PARALLEL_FOR(bh, B * H, {
        if (__atomic_load_n(&stop, __ATOMIC_RELAXED) || cancelled(args)) {
            __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
            continue;
        }
        const int64_t b = bh / H, h = bh % H;
        const float *xb = x->data + b * T * C, *cb = ctx->data + b * S * C;
        float *qb = qd + bh * T * hs, *kb = kd + bh * S * hs;
        float *vb = vd + bh * S * hs, *kt = kts + bh * hs * S;
        linear_t(qb, xb, wqt + h * hs * C, T, C, hs);
        linear_t(kb, cb, wkt + h * hs * C, S, C, hs);
        linear_t(vb, cb, wvt + h * hs * C, S, C, hs);
        transpose(kt, kb, S, hs);
        attend_one(sd + bh * T * S, wd + bh * T * S, hos + bh * T * hs, qb,
                   kt, vb, mask_of(args->mask, b, T, S), T, S, hs,
                   args->causal, args->scale);
    });
    if (stop || cancelled(args))
        return 1;

    PARALLEL_FOR(b, B, {
        float *hb = hd + b * T * D, *ob = od + b * T * C;
        for (int64_t h = 0; h < H; h++)
            for (int64_t t = 0; t < T; t++)
                memcpy(hb + t * D + h * hs, hos + ((b * H + h) * T + t) * hs,
                       (size_t)hs * sizeof *hb);
        if (wo) {
            linear_t(ob, hb, wot, T, D, C);
            for (int64_t t = 0; t < T; t++)
                for (int64_t c = 0; c < C; c++)
                    ob[t * C + c] += bo->data[c];
        }
    });
    return 0;
}

void engine_multihead(engine_tensor *q, engine_tensor *k, engine_tensor *v,
                      engine_tensor *scores, engine_tensor *wei,
                      engine_tensor *heads, engine_tensor *out,
                      const engine_tensor *x, const engine_tensor *ctx,
                      const engine_tensor *wq, const engine_tensor *wk,
                      const engine_tensor *wv, const engine_tensor *wo,
                      const engine_tensor *bo,
                      const engine_attention_args *args, float *scratch,
                      int nthreads)
{
    /* shapes: multihead_run's, with every output given */
    multihead_run(q->data, k->data, v->data, scores->data, wei->data,
                  heads->data, out->data, x, ctx, wq, wk, wv, wo, bo, args,
                  scratch, nthreads);
}

void engine_multihead_ref(engine_tensor *q, engine_tensor *k, engine_tensor *v,
                          engine_tensor *scores, engine_tensor *wei,
                          engine_tensor *heads, engine_tensor *out,
                          const engine_tensor *x, const engine_tensor *ctx,
                          const engine_tensor *wq, const engine_tensor *wk,
                          const engine_tensor *wv, const engine_tensor *wo,
                          const engine_tensor *bo,
                          const engine_attention_args *args)
{
    /* shapes as engine_multihead's */
    if (!ctx)
        ctx = x;
    const int64_t B = x->dim[0], T = x->dim[1], C = x->dim[2];
    const int64_t S = ctx->dim[1];
    const int64_t H = wq->dim[0], hs = wq->dim[1], D = H * hs;

    for (int64_t b = 0; b < B; b++) {
        const float *xb = x->data + b * T * C, *cb = ctx->data + b * S * C;
        float *hb = heads->data + b * T * D;
        for (int64_t h = 0; h < H; h++) {
            const int64_t bh = b * H + h;
            float *qb = q->data + bh * T * hs, *kb = k->data + bh * S * hs;
            float *vb = v->data + bh * S * hs;
            linear_one(qb, xb, wq->data + h * hs * C, T, C, hs);
            linear_one(kb, cb, wk->data + h * hs * C, S, C, hs);
            linear_one(vb, cb, wv->data + h * hs * C, S, C, hs);
            /* head h's out straight into its columns of heads */
            attend_ref(scores->data + bh * T * S, S, wei->data + bh * T * S,
                       S, hb + h * hs, D, qb, kb, vb,
                       mask_of(args->mask, b, T, S), T, S, hs, args);
        }
        float *ob = out->data + b * T * C;
        for (int64_t t = 0; t < T; t++)
            for (int64_t c = 0; c < C; c++) {
                float sum = 0.0f;
                for (int64_t j = 0; j < D; j++)
                    sum += hb[t * D + j] * wo->data[c * D + j];
                ob[t * C + c] = sum + bo->data[c];
            }
    }
}

/* ==== engine_attend: any head count, optional projection ==== */

/* The next n floats of a scratch cursor. */
static float *take(float **p, int64_t n)
{
    float *r = *p;
    *p += n;
    return r;
}

/* The blocked kernels (attend_fast.inc): query and key blocks of BR rows,
 * key blocks of BC on the streaming path. */
enum { BR = 48, BC = 128 };

static inline int64_t round16(int64_t n)
{
    return (n + 15) / 16 * 16;
}

#ifdef _OPENMP
#include <omp.h>
static inline int thread_id(void)
{
    return omp_get_thread_num();
}
#else
static inline int thread_id(void)
{
    return 0;
}
#endif

/* PARALLEL_FOR with items handed out one at a time (uneven work). */
#define PARALLEL_FOR_DYNAMIC(i, n, ...)                                   \
    do {                                                                  \
        if (nthreads > 1) {                                               \
            _Pragma("omp parallel for schedule(dynamic, 1) num_threads(nthreads)") \
            for (int64_t i = 0; i < (n); i++) __VA_ARGS__                 \
        } else {                                                          \
            for (int64_t i = 0; i < (n); i++) __VA_ARGS__                 \
        }                                                                 \
    } while (0)

/* 8 floats (GCC vector extension), loaded and stored unaligned. */
typedef float vf __attribute__((vector_size(32), aligned(4), may_alias));
typedef int32_t vi __attribute__((vector_size(32), aligned(4), may_alias));
#define LDV(p) (*(const vf *)(p))
#define STV(p, v) (*(vf *)(p) = (v))
#define VSPLAT(c)                                                         \
    ({                                                                    \
        const float c_ = (c);                                             \
        (vf){c_, c_, c_, c_, c_, c_, c_, c_};                             \
    })

/* Where engine_attend's scratch keeps what (offsets in floats). */
typedef struct attend_layout {
    int64_t B, T, S, C, H, hs;
    int64_t wq, wk, wv, wo;     /* packed weights */
    int64_t kp, vp;             /* packed keys, values per (batch, head) */
    int64_t tiles, tile;        /* per-thread tiles, `tile` floats each */
    int64_t heads;              /* where a tile keeps its heads (BR,D) */
    int64_t total;
} attend_layout;

static attend_layout attend_layout_of(int64_t B, int64_t T, int64_t S,
                                      int64_t C, int64_t H, int64_t hs,
                                      int matrices, int nthreads)
{
    const int64_t hsp = round16(hs), Sp = round16(S), D = H * hs;
    attend_layout L = {.B = B, .T = T, .S = S, .C = C, .H = H, .hs = hs};
    L.wq = 0;
    L.wk = L.wq + H * hsp * C;
    L.wv = L.wk + H * hsp * C;
    L.wo = L.wv + H * hsp * C;
    L.kp = L.wo + round16(C) * D;
    L.vp = L.kp + B * H * Sp * hs;
    L.tiles = L.vp + B * H * hsp * S;
    /* Qt, O (BR,hsp); m, l (BR); P (BR,BC), or (BR,Sp) whole rows; then
     * at L.heads the block's heads (BR,D) */
    L.heads = round16(2 * BR * hsp + 2 * BR +
                      BR * (matrices && Sp > BC ? Sp : BC));
    L.tile = L.heads + round16(BR * D);
    L.total = L.tiles + (nthreads > 1 ? nthreads : 1) * L.tile;
    return L;
}

#define KERNEL(name) name##_base
#define VFMA(a, b, c) ((a) * (b) + (c))
#include "attend_fast.inc"
#undef VFMA
#undef KERNEL

#ifdef HAVE_AVX2_KERNELS
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#define KERNEL(name) name##_avx2
#define VFMA(a, b, c) ((vf)_mm256_fmadd_ps((__m256)(a), (__m256)(b), (__m256)(c)))
#include "attend_fast.inc"
#undef VFMA
#undef KERNEL
#pragma GCC pop_options
#endif

int64_t engine_attend_scratch(int64_t B, int64_t T, int64_t S, int64_t C,
                              int64_t H, int64_t hs, int matrices,
                              int nthreads)
{
    return attend_layout_of(B, T, S, C, H, hs, matrices, nthreads).total;
}

int engine_attend(engine_tensor *q, engine_tensor *k, engine_tensor *v,
                  engine_tensor *scores, engine_tensor *wei,
                  engine_tensor *heads, engine_tensor *out,
                  const engine_tensor *x, const engine_tensor *ctx,
                  const engine_tensor *wq, const engine_tensor *wk,
                  const engine_tensor *wv, const engine_tensor *wo,
                  const engine_tensor *bo, const engine_attention_args *args,
                  float *scratch, int nthreads)
{
    /* x: (B,T,C); ctx: (B,S,C) or NULL; wq, wk, wv: (H,hs,C) (or (hs,C),
     * H = 1); wo: (C,H*hs) and bo: (C,), or both NULL;
     * q: (B,H,T,hs); k, v: (B,H,S,hs); scores, wei: (B,H,T,S);
     * heads: (B,T,H*hs); out: (B,T,C), or (B,T,H*hs) without wo.
     * scratch: attend_layout_of's, for the same sizes and nthreads. */
    if (!ctx)
        ctx = x;
    const int64_t B = x->dim[0], T = x->dim[1], C = x->dim[2];
    const int64_t S = ctx->dim[1];
    const int64_t H = wq->rank == 3 ? wq->dim[0] : 1;
    const int64_t hs = wq->dim[wq->rank - 2];
    const int matrices = scores || wei;
    const attend_layout L = attend_layout_of(B, T, S, C, H, hs, matrices,
                                             nthreads);
    float *hd = wo && heads ? heads->data : NULL;
    float *qd = q ? q->data : NULL, *kd = k ? k->data : NULL,
          *vd = v ? v->data : NULL, *sd = scores ? scores->data : NULL,
          *wd = wei ? wei->data : NULL;
    if (B * T == 0)
        return 0;
#ifdef HAVE_AVX2_KERNELS
    if (use_avx2())
        return attend_run_avx2(qd, kd, vd, sd, wd, hd, out->data, x, ctx, wq,
                               wk, wv, wo, bo, args, &L, scratch, nthreads);
#endif
    return attend_run_base(qd, kd, vd, sd, wd, hd, out->data, x, ctx, wq, wk,
                           wv, wo, bo, args, &L, scratch, nthreads);
}

void engine_mean_heads(engine_tensor *out, const engine_tensor *wei,
                       int nthreads)
{
    /* out: (B,T,S) = wei (B,H,T,S) summed over h in order, divided by H
     * (nn.MultiheadAttention's average_attn_weights) */
    const int64_t B = wei->dim[0], H = wei->dim[1];
    const int64_t TS = wei->dim[2] * wei->dim[3];
    const float *wd = wei->data;
    float *avg = out->data;
    PARALLEL_FOR(bb, B, {
        for (int64_t i = 0; i < TS; i++) {
            float sum = 0.0f;
            for (int64_t h = 0; h < H; h++)
                sum += wd[(bb * H + h) * TS + i];
            avg[bb * TS + i] = sum / (float)H;
        }
    });
}

int engine_attend_ref(engine_tensor *q, engine_tensor *k, engine_tensor *v,
                      engine_tensor *scores, engine_tensor *wei,
                      engine_tensor *heads, engine_tensor *out,
                      const engine_tensor *x, const engine_tensor *ctx,
                      const engine_tensor *wq, const engine_tensor *wk,
                      const engine_tensor *wv, const engine_tensor *wo,
                      const engine_tensor *bo,
                      const engine_attention_args *args)
{
    /* shapes as engine_attend's.  A test tool, not a kernel: it allocates
     * what the caller leaves NULL (scores and wei then one row at a time,
     * so a long sequence needs O(S) more, not O(T*S)). */
    if (!ctx)
        ctx = x;
    const int64_t B = x->dim[0], T = x->dim[1], C = x->dim[2];
    const int64_t S = ctx->dim[1];
    const int64_t H = wq->rank == 3 ? wq->dim[0] : 1;
    const int64_t hs = wq->dim[wq->rank - 2], D = H * hs;
    const int64_t need = (q ? 0 : B * D * T) + (k ? 0 : B * D * S) +
                         (v ? 0 : B * D * S) + 2 * S +
                         (wo && !heads ? B * T * D : 0);
    float *tmp = malloc((size_t)need * sizeof *tmp), *p = tmp;
    if (!tmp)
        return -1;
    float *qd = q ? q->data : take(&p, B * D * T);
    float *kd = k ? k->data : take(&p, B * D * S);
    float *vd = v ? v->data : take(&p, B * D * S);
    float *srow = take(&p, S), *wrow = take(&p, S);
    float *hd = !wo ? out->data : heads ? heads->data : p;

    for (int64_t b = 0; b < B; b++) {
        const float *xb = x->data + b * T * C, *cb = ctx->data + b * S * C;
        float *hb = hd + b * T * D;
        for (int64_t h = 0; h < H; h++) {
            const int64_t bh = b * H + h;
            float *qb = qd + bh * T * hs, *kb = kd + bh * S * hs;
            float *vb = vd + bh * S * hs;
            linear_one(qb, xb, wq->data + h * hs * C, T, C, hs);
            linear_one(kb, cb, wk->data + h * hs * C, S, C, hs);
            linear_one(vb, cb, wv->data + h * hs * C, S, C, hs);
            attend_ref(scores ? scores->data + bh * T * S : srow,
                       scores ? S : 0, wei ? wei->data + bh * T * S : wrow,
                       wei ? S : 0, hb + h * hs, D, qb, kb, vb,
                       mask_of(args->mask, b, T, S), T, S, hs, args);
        }
        if (!wo)
            continue;
        float *ob = out->data + b * T * C;
        for (int64_t t = 0; t < T; t++)
            for (int64_t c = 0; c < C; c++) {
                float sum = 0.0f;
                for (int64_t j = 0; j < D; j++)
                    sum += hb[t * D + j] * wo->data[c * D + j];
                ob[t * C + c] = sum + bo->data[c];
            }
    }
    free(tmp);
    return 0;
}

/* ==== comparisons ==== */

float engine_max_abs_diff(const float *a, const float *b, int64_t n)
{
    float m = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        const float d = fabsf(a[i] - b[i]);
        if (d > m || isnan(d))
            m = d;
    }
    return m;
}

int engine_allclose(const float *a, const float *b, int64_t n,
                    double rtol, double atol)
{
    for (int64_t i = 0; i < n; i++) {
        const double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= atol + rtol * fabs((double)b[i])))
            return 0;
    }
    return 1;
}
