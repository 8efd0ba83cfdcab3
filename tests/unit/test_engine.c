/* test_engine.c -- the engine's kernels against each other and against
 * the plain reference written here. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../../engine/engine.h"
#include "unit.h"

static const int64_t shapes[][3] = {{1, 1, 1}, {4, 8, 2}, {3, 5, 7},
                                    {2, 17, 3}, {2, 64, 16}};
#define NSHAPES (int)(sizeof shapes / sizeof shapes[0])

/* ==== bag of words: three methods, one answer ==== */

START_TEST(bow_three_methods_agree)
{
    const int64_t B = shapes[_i][0], T = shapes[_i][1], C = shapes[_i][2];
    const int64_t n = B * T * C;
    float *x = malloc(n * sizeof *x), *o1 = malloc(n * sizeof *o1),
          *o2 = malloc(n * sizeof *o2), *o3 = malloc(n * sizeof *o3),
          *w2 = malloc(T * T * sizeof *w2), *w3 = malloc(T * T * sizeof *w3);
    unit_fill_random(x, n, 7 + _i);
    engine_tensor tx = {x, 3, {B, T, C}}, t1 = {o1, 3, {B, T, C}},
                  t2 = {o2, 3, {B, T, C}}, t3 = {o3, 3, {B, T, C}},
                  tw2 = {w2, 2, {T, T}}, tw3 = {w3, 2, {T, T}};

    engine_bow_loop(&t1, &tx, 1);
    engine_bow_tril_weights(&tw2);
    engine_matmul_tt(&t2, &tw2, &tx, 1);
    engine_bow_softmax_weights(&tw3);
    engine_matmul_tt(&t3, &tw3, &tx, 1);

    ck_assert(engine_allclose(o2, o1, n, 1e-5, 1e-6));
    ck_assert(engine_allclose(o3, o1, n, 1e-5, 1e-6));
    ck_assert(engine_allclose(o3, o2, n, 1e-5, 1e-6));
    ck_assert(engine_max_abs_diff(o1, o2, n) < 1e-5f);

    /* The loop is really a running mean: out[b,t] = mean(x[b,0..t]). */
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++)
            for (int64_t c = 0; c < C; c++) {
                double s = 0;
                for (int64_t u = 0; u <= t; u++)
                    s += x[(b * T + u) * C + c];
                ck_assert_double_eq_tol(o1[(b * T + t) * C + c], s / (t + 1),
                                        1e-5);
            }
    free(x), free(o1), free(o2), free(o3), free(w2), free(w3);
}
END_TEST

START_TEST(bow_weights_are_row_means)
{
    const int64_t T = 9;
    float w2[81], w3[81];
    engine_tensor t2 = {w2, 2, {T, T}}, t3 = {w3, 2, {T, T}};
    engine_bow_tril_weights(&t2);
    engine_bow_softmax_weights(&t3);
    for (int64_t t = 0; t < T; t++)
        for (int64_t s = 0; s < T; s++) {
            const float want = s <= t ? 1.0f / (float)(t + 1) : 0.0f;
            ck_assert_float_eq(w2[t * T + s], want);
            ck_assert_float_eq_tol(w3[t * T + s], want, 1e-7f);
        }
}
END_TEST

/* wei @ x bit for bit against the plain sum in order, s = 0, 1, ...: on
 * one thread (narrow C goes through the gathered-columns path when small)
 * and two, for narrow and wide C, small and past the gathered path's
 * 2048 numbers. */
START_TEST(matmul_tt_sums_in_order)
{
    static const int64_t cases[][3] = {{4, 8, 2}, {3, 5, 7}, {2, 17, 3},
                                       {1, 1, 1}, {2, 64, 16}, {8, 64, 7},
                                       {1, 300, 7}};
    const int64_t B = cases[_i][0], T = cases[_i][1], C = cases[_i][2];
    const int64_t n = B * T * C;
    float *x = malloc(n * sizeof *x), *w = malloc(T * T * sizeof *w),
          *o = malloc(n * sizeof *o), *want = malloc(n * sizeof *want);
    unit_fill_random(x, n, 11 + _i);
    unit_fill_random(w, T * T, 29 + _i);
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++)
            for (int64_t c = 0; c < C; c++) {
                float acc = 0.0f;
                for (int64_t s = 0; s < T; s++) {
                    const float p = w[t * T + s] * x[(b * T + s) * C + c];
                    acc += p;
                }
                want[(b * T + t) * C + c] = acc;
            }
    engine_tensor tx = {x, 3, {B, T, C}}, tw = {w, 2, {T, T}},
                  to = {o, 3, {B, T, C}};
    for (int threads = 1; threads <= 2; threads++) {
        memset(o, 0xff, n * sizeof *o);
        engine_matmul_tt(&to, &tw, &tx, threads);
        ck_assert_msg(memcmp(o, want, n * sizeof *o) == 0,
                      "B=%lld T=%lld C=%lld threads=%d", (long long)B,
                      (long long)T, (long long)C, threads);
    }
    free(x), free(w), free(o), free(want);
}
END_TEST

START_TEST(bow_loop_parallel_is_identical)
{
    const int64_t B = 6, T = 11, C = 5, n = B * T * C;
    float x[330], a[330], b[330];
    unit_fill_random(x, n, 3);
    engine_tensor tx = {x, 3, {B, T, C}}, ta = {a, 3, {B, T, C}},
                  tb = {b, 3, {B, T, C}};
    engine_bow_loop(&ta, &tx, 1);
    engine_bow_loop(&tb, &tx, 2);
    ck_assert_mem_eq(a, b, sizeof a);
}
END_TEST

/* ==== softmax ==== */

START_TEST(softmax_rows_properties)
{
    float m[3][4] = {{0, 1, 2, 3},
                     {1000, 1001, 1002, 1003},  /* shift invariance */
                     {-INFINITY, -INFINITY, -INFINITY, -INFINITY}};
    engine_softmax_rows(&m[0][0], 3, 4);
    float sum = 0;
    for (int i = 0; i < 4; i++) {
        sum += m[0][i];
        ck_assert_float_eq_tol(m[0][i], m[1][i], 1e-7f);
        ck_assert_float_eq(m[2][i], 0.0f);      /* zeros, not NaN */
    }
    ck_assert_float_eq_tol(sum, 1.0f, 1e-6f);
    ck_assert(m[0][0] < m[0][1] && m[0][1] < m[0][2]);
}
END_TEST

/* ==== attention against a plain reference ==== */

/* The reference: the lecture's cell, literally -- full q @ k^T, then
 * scale, then masked_fill, then softmax, then @ v. */
static void ref_attention(float *wei, float *out, const float *x,
                          const float *wq, const float *wk, const float *wv,
                          int64_t B, int64_t T, int64_t C, int64_t hs,
                          int causal, float scale)
{
    float *q = malloc(T * hs * sizeof *q), *k = malloc(T * hs * sizeof *k),
          *v = malloc(T * hs * sizeof *v);
    for (int64_t b = 0; b < B; b++) {
        const float *xb = x + b * T * C;
        for (int64_t t = 0; t < T; t++)
            for (int64_t o = 0; o < hs; o++) {
                double sq = 0, sk = 0, sv = 0;
                for (int64_t c = 0; c < C; c++) {
                    sq += (double)xb[t * C + c] * wq[o * C + c];
                    sk += (double)xb[t * C + c] * wk[o * C + c];
                    sv += (double)xb[t * C + c] * wv[o * C + c];
                }
                q[t * hs + o] = (float)sq;
                k[t * hs + o] = (float)sk;
                v[t * hs + o] = (float)sv;
            }
        float *w = wei + b * T * T;
        for (int64_t t = 0; t < T; t++)
            for (int64_t s = 0; s < T; s++) {
                double d = 0;
                for (int64_t i = 0; i < hs; i++)
                    d += (double)q[t * hs + i] * k[s * hs + i];
                w[t * T + s] = (float)d * scale;
                if (causal && s > t)
                    w[t * T + s] = -INFINITY;
            }
        engine_softmax_rows(w, T, T);
        for (int64_t t = 0; t < T; t++)
            for (int64_t i = 0; i < hs; i++) {
                double d = 0;
                for (int64_t s = 0; s < T; s++)
                    d += (double)w[t * T + s] * v[s * hs + i];
                out[(b * T + t) * hs + i] = (float)d;
            }
    }
    free(q), free(k), free(v);
}

static const int64_t attn_shapes[][4] = {
    {1, 1, 1, 1}, {4, 8, 32, 16}, {3, 7, 5, 3}, {2, 6, 3, 8}, {2, 33, 12, 4}};

START_TEST(attention_matches_reference)
{
    const int64_t B = attn_shapes[_i / 4][0], T = attn_shapes[_i / 4][1],
                  C = attn_shapes[_i / 4][2], hs = attn_shapes[_i / 4][3];
    const int causal = _i % 2;
    const int baseline = (_i / 2) % 2;   /* both builds of the loops */
    engine_attention_force_baseline(baseline);
    const float scale = (float)pow((double)hs, -0.5);
    const int64_t nx = B * T * C, nw = hs * C, nh = B * T * hs, ns = B * T * T;
    float *x = malloc(nx * 4), *wq = malloc(nw * 4), *wk = malloc(nw * 4),
          *wv = malloc(nw * 4), *q = malloc(nh * 4), *k = malloc(nh * 4),
          *v = malloc(nh * 4), *sc = malloc(ns * 4), *wei = malloc(ns * 4),
          *out = malloc(nh * 4), *rwei = malloc(ns * 4), *rout = malloc(nh * 4);
    unit_fill_random(x, nx, 11 + _i);
    unit_fill_random(wq, nw, 12 + _i);
    unit_fill_random(wk, nw, 13 + _i);
    unit_fill_random(wv, nw, 14 + _i);
    engine_tensor tx = {x, 3, {B, T, C}}, twq = {wq, 2, {hs, C}},
                  twk = {wk, 2, {hs, C}}, twv = {wv, 2, {hs, C}},
                  tq = {q, 3, {B, T, hs}}, tk = {k, 3, {B, T, hs}},
                  tv = {v, 3, {B, T, hs}}, ts = {sc, 3, {B, T, T}},
                  tw = {wei, 3, {B, T, T}}, to = {out, 3, {B, T, hs}};
    engine_attention_args args = {causal, scale, NULL, NULL};

    float *scratch = malloc(engine_attention_scratch(&tx, NULL, hs) * 4);
    engine_attention(&tq, &tk, &tv, &ts, &tw, &to, &tx, NULL, &twq, &twk,
                     &twv, &args, scratch, 2);
    ref_attention(rwei, rout, x, wq, wk, wv, B, T, C, hs, causal, scale);

    /* against float64: float32 sums over C terms (with or without FMA)
     * are good to the contract's tolerance, not better */
    ck_assert(engine_allclose(wei, rwei, ns, 1e-5, 1e-5));
    ck_assert(engine_allclose(out, rout, nh, 1e-5, 1e-5));

    /* the optimised kernel against the engine's own plain one */
    float *q2 = malloc(nh * 4), *k2 = malloc(nh * 4), *v2 = malloc(nh * 4),
          *s2 = malloc(ns * 4), *w2 = malloc(ns * 4), *o2 = malloc(nh * 4);
    engine_tensor tq2 = {q2, 3, {B, T, hs}}, tk2 = {k2, 3, {B, T, hs}},
                  tv2 = {v2, 3, {B, T, hs}}, ts2 = {s2, 3, {B, T, T}},
                  tw2 = {w2, 3, {B, T, T}}, to2 = {o2, 3, {B, T, hs}};
    engine_attention_ref(&tq2, &tk2, &tv2, &ts2, &tw2, &to2, &tx, NULL, &twq,
                         &twk, &twv, &args);
    ck_assert(engine_allclose(q, q2, nh, 1e-5, 1e-6));
    ck_assert(engine_allclose(k, k2, nh, 1e-5, 1e-6));
    ck_assert(engine_allclose(v, v2, nh, 1e-5, 1e-6));
    ck_assert(engine_allclose(wei, w2, ns, 1e-5, 1e-6));
    ck_assert(engine_allclose(out, o2, nh, 1e-5, 1e-6));
    for (int64_t i = 0; i < ns; i++)    /* the same mask, exactly */
        ck_assert((sc[i] == -INFINITY) == (s2[i] == -INFINITY));
    free(q2), free(k2), free(v2), free(s2), free(w2), free(o2), free(scratch);
    engine_attention_force_baseline(0);
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++) {
            float rowsum = 0;
            for (int64_t s = 0; s < T; s++) {
                const int64_t i = (b * T + t) * T + s;
                rowsum += wei[i];
                if (causal && s > t) {
                    ck_assert(sc[i] == -INFINITY);
                    ck_assert_float_eq(wei[i], 0.0f);
                } else {
                    ck_assert(isfinite(sc[i]));
                }
            }
            ck_assert_float_eq_tol(rowsum, 1.0f, 1e-5f);
        }
    free(x), free(wq), free(wk), free(wv), free(q), free(k), free(v);
    free(sc), free(wei), free(out), free(rwei), free(rout);
}
END_TEST

START_TEST(attention_scale_multiplies_scores)
{
    const int64_t B = 2, T = 5, C = 4, hs = 3;
    float x[40], w[12], q[30], k[30], v[30], s1[50], s2[50], wei[50], o[30];
    unit_fill_random(x, 40, 5);
    unit_fill_random(w, 12, 6);
    engine_tensor tx = {x, 3, {B, T, C}}, tw = {w, 2, {hs, C}},
                  tq = {q, 3, {B, T, hs}}, tk = {k, 3, {B, T, hs}},
                  tv = {v, 3, {B, T, hs}}, ts1 = {s1, 3, {B, T, T}},
                  ts2 = {s2, 3, {B, T, T}}, twei = {wei, 3, {B, T, T}},
                  to = {o, 3, {B, T, hs}};
    engine_attention_args a1 = {0, 1.0f, NULL, NULL}, a2 = {0, -0.5f, NULL, NULL};
    float scratch[3 * 12 + 30];
    ck_assert_int_eq(engine_attention_scratch(&tx, NULL, hs), 3 * 12 + 30);
    engine_attention(&tq, &tk, &tv, &ts1, &twei, &to, &tx, NULL, &tw, &tw,
                     &tw, &a1, scratch, 1);
    engine_attention(&tq, &tk, &tv, &ts2, &twei, &to, &tx, NULL, &tw, &tw,
                     &tw, &a2, scratch, 1);
    for (int i = 0; i < 50; i++)
        ck_assert_float_eq(s2[i], s1[i] * -0.5f);
}
END_TEST

/* ==== multi-head: the plain float64 loops of MultiHeadAttention ==== */

static void ref_multihead(float *wei, float *heads, float *out, const float *x,
                          const float *wq, const float *wk, const float *wv,
                          const float *wo, const float *bo, int64_t B,
                          int64_t T, int64_t C, int64_t H, int64_t hs,
                          int causal, float scale)
{
    const int64_t D = H * hs;
    double *q = malloc(T * hs * 8), *k = malloc(T * hs * 8),
           *v = malloc(T * hs * 8), *hd = malloc(T * D * 8);
    for (int64_t b = 0; b < B; b++) {
        const float *xb = x + b * T * C;
        for (int64_t h = 0; h < H; h++) {
            const float *q_w = wq + h * hs * C, *k_w = wk + h * hs * C,
                        *v_w = wv + h * hs * C;
            for (int64_t t = 0; t < T; t++)
                for (int64_t o = 0; o < hs; o++) {
                    double sq = 0, sk = 0, sv = 0;
                    for (int64_t c = 0; c < C; c++) {
                        sq += (double)xb[t * C + c] * q_w[o * C + c];
                        sk += (double)xb[t * C + c] * k_w[o * C + c];
                        sv += (double)xb[t * C + c] * v_w[o * C + c];
                    }
                    q[t * hs + o] = sq, k[t * hs + o] = sk, v[t * hs + o] = sv;
                }
            float *w = wei + (b * H + h) * T * T;
            for (int64_t t = 0; t < T; t++) {
                double m = -INFINITY, sum = 0, row[T];
                for (int64_t s = 0; s < T; s++) {
                    double d = 0;
                    for (int64_t i = 0; i < hs; i++)
                        d += q[t * hs + i] * k[s * hs + i];
                    row[s] = causal && s > t ? -INFINITY : d * scale;
                    if (row[s] > m)
                        m = row[s];
                }
                for (int64_t s = 0; s < T; s++)
                    sum += row[s] = exp(row[s] - m);
                for (int64_t s = 0; s < T; s++)
                    w[t * T + s] = (float)(row[s] / sum);
                for (int64_t i = 0; i < hs; i++) {
                    double d = 0;
                    for (int64_t s = 0; s < T; s++)
                        d += row[s] / sum * v[s * hs + i];
                    hd[t * D + h * hs + i] = d;
                    heads[(b * T + t) * D + h * hs + i] = (float)d;
                }
            }
        }
        for (int64_t t = 0; t < T; t++)
            for (int64_t c = 0; c < C; c++) {
                double d = bo[c];
                for (int64_t j = 0; j < D; j++)
                    d += hd[t * D + j] * wo[c * D + j];
                out[(b * T + t) * C + c] = (float)d;
            }
    }
    free(q), free(k), free(v), free(hd);
}

static const int64_t mh_shapes[][5] = {         /* B, T, C, H, hs */
    {1, 1, 1, 1, 1}, {4, 8, 32, 4, 8}, {3, 7, 5, 3, 2}, {2, 6, 3, 2, 8},
    {2, 33, 12, 5, 4}};

START_TEST(multihead_matches_reference)
{
    const int64_t *sh = mh_shapes[_i / 4];
    const int64_t B = sh[0], T = sh[1], C = sh[2], H = sh[3], hs = sh[4];
    const int64_t D = H * hs;
    const int causal = _i % 2;
    engine_attention_force_baseline((_i / 2) % 2);
    const float scale = (float)pow((double)hs, -0.5);
    const int64_t nx = B * T * C, nw = D * C, nq = B * H * T * hs,
                  ns = B * H * T * T, nh = B * T * D;
    float *x = malloc(nx * 4), *wq = malloc(nw * 4), *wk = malloc(nw * 4),
          *wv = malloc(nw * 4), *wo = malloc(nw * 4), *bo = malloc(C * 4);
    unit_fill_random(x, nx, 21 + _i);
    unit_fill_random(wq, nw, 22 + _i);
    unit_fill_random(wk, nw, 23 + _i);
    unit_fill_random(wv, nw, 24 + _i);
    unit_fill_random(wo, nw, 25 + _i);
    unit_fill_random(bo, C, 26 + _i);
    float *buf[2][7];
    const int64_t n[7] = {nq, nq, nq, ns, ns, nh, nx};
    for (int r = 0; r < 2; r++)
        for (int j = 0; j < 7; j++)
            buf[r][j] = malloc(n[j] * 4);
    engine_tensor tx = {x, 3, {B, T, C}}, twq = {wq, 3, {H, hs, C}},
                  twk = {wk, 3, {H, hs, C}}, twv = {wv, 3, {H, hs, C}},
                  two = {wo, 2, {C, D}}, tbo = {bo, 1, {C}};
    engine_tensor t[2][7];
    for (int r = 0; r < 2; r++) {
        for (int j = 0; j < 3; j++)
            t[r][j] = (engine_tensor){buf[r][j], 4, {B, H, T, hs}};
        for (int j = 3; j < 5; j++)
            t[r][j] = (engine_tensor){buf[r][j], 4, {B, H, T, T}};
        t[r][5] = (engine_tensor){buf[r][5], 3, {B, T, D}};
        t[r][6] = (engine_tensor){buf[r][6], 3, {B, T, C}};
    }
    engine_attention_args args = {causal, scale, NULL, NULL};
    float *scratch = malloc(engine_multihead_scratch(&tx, NULL, H, hs) * 4);
    engine_multihead(&t[0][0], &t[0][1], &t[0][2], &t[0][3], &t[0][4],
                     &t[0][5], &t[0][6], &tx, NULL, &twq, &twk, &twv, &two,
                     &tbo, &args, scratch, 3);
    engine_multihead_ref(&t[1][0], &t[1][1], &t[1][2], &t[1][3], &t[1][4],
                         &t[1][5], &t[1][6], &tx, NULL, &twq, &twk, &twv, &two,
                         &tbo, &args);
    for (int j = 0; j < 7; j++)     /* scores: -inf is not allclose */
        ck_assert(j == 3 ||
                  engine_allclose(buf[0][j], buf[1][j], n[j], 1e-5, 1e-6));
    for (int64_t i = 0; i < ns; i++) {  /* the same mask, exactly */
        const float a = buf[0][3][i], b = buf[1][3][i];
        ck_assert((a == -INFINITY) == (b == -INFINITY));
        ck_assert(a == -INFINITY || engine_allclose(&a, &b, 1, 1e-5, 1e-6));
    }

    float *rwei = malloc(ns * 4), *rheads = malloc(nh * 4),
          *rout = malloc(nx * 4);
    ref_multihead(rwei, rheads, rout, x, wq, wk, wv, wo, bo, B, T, C, H, hs,
                  causal, scale);
    ck_assert(engine_allclose(buf[0][4], rwei, ns, 1e-5, 1e-5));
    ck_assert(engine_allclose(buf[0][5], rheads, nh, 1e-5, 1e-5));
    ck_assert(engine_allclose(buf[0][6], rout, nx, 1e-5, 1e-5));

    /* head h is engine_attention with head h's weights, exactly */
    const int64_t h = H - 1;
    float *q1 = malloc(B * T * hs * 4), *k1 = malloc(B * T * hs * 4),
          *v1 = malloc(B * T * hs * 4), *s1 = malloc(B * T * T * 4),
          *w1 = malloc(B * T * T * 4), *o1 = malloc(B * T * hs * 4),
          *sc1 = malloc(engine_attention_scratch(&tx, NULL, hs) * 4);
    engine_tensor a[6] = {{q1, 3, {B, T, hs}}, {k1, 3, {B, T, hs}},
                          {v1, 3, {B, T, hs}}, {s1, 3, {B, T, T}},
                          {w1, 3, {B, T, T}},  {o1, 3, {B, T, hs}}};
    engine_tensor hq = {wq + h * hs * C, 2, {hs, C}},
                  hk = {wk + h * hs * C, 2, {hs, C}},
                  hv = {wv + h * hs * C, 2, {hs, C}};
    engine_attention(&a[0], &a[1], &a[2], &a[3], &a[4], &a[5], &tx, NULL, &hq,
                     &hk, &hv, &args, sc1, 1);
    for (int64_t b = 0; b < B; b++) {
        const int64_t bh = b * H + h;
        ck_assert(memcmp(buf[0][0] + bh * T * hs, q1 + b * T * hs,
                         T * hs * 4) == 0);
        ck_assert(memcmp(buf[0][4] + bh * T * T, w1 + b * T * T,
                         T * T * 4) == 0);
        for (int64_t tt = 0; tt < T; tt++)
            ck_assert(memcmp(buf[0][5] + (b * T + tt) * D + h * hs,
                             o1 + (b * T + tt) * hs, hs * 4) == 0);
    }
    engine_attention_force_baseline(0);
    free(q1), free(k1), free(v1), free(s1), free(w1), free(o1), free(sc1);
    free(rwei), free(rheads), free(rout), free(scratch);
    for (int r = 0; r < 2; r++)
        for (int j = 0; j < 7; j++)
            free(buf[r][j]);
    free(x), free(wq), free(wk), free(wv), free(wo), free(bo);
}
END_TEST

/* ==== cross-attention and masks ==== */

/* The float64 reference with keys and values from ctx (B,S,C) and an
 * additive mask m (T,S) or (B,T,S) or NULL; an all-masked row's weights
 * and out are zeros. */
static void ref_cross(float *wei, float *out, const float *x,
                      const float *ctx, const float *wq, const float *wk,
                      const float *wv, const float *m, int mrank, int64_t B,
                      int64_t T, int64_t S, int64_t C, int64_t hs,
                      int causal, float scale)
{
    double *q = malloc(T * hs * 8), *k = malloc(S * hs * 8),
           *v = malloc(S * hs * 8), *row = malloc(S * 8);
    for (int64_t b = 0; b < B; b++) {
        for (int64_t t = 0; t < T; t++)
            for (int64_t o = 0; o < hs; o++) {
                double d = 0;
                for (int64_t c = 0; c < C; c++)
                    d += (double)x[(b * T + t) * C + c] * wq[o * C + c];
                q[t * hs + o] = d;
            }
        for (int64_t s = 0; s < S; s++)
            for (int64_t o = 0; o < hs; o++) {
                double dk = 0, dv = 0;
                for (int64_t c = 0; c < C; c++) {
                    dk += (double)ctx[(b * S + s) * C + c] * wk[o * C + c];
                    dv += (double)ctx[(b * S + s) * C + c] * wv[o * C + c];
                }
                k[s * hs + o] = dk, v[s * hs + o] = dv;
            }
        const float *mb = m ? m + (mrank == 3 ? b * T * S : 0) : NULL;
        for (int64_t t = 0; t < T; t++) {
            double mx = -INFINITY, sum = 0;
            for (int64_t s = 0; s < S; s++) {
                double d = 0;
                for (int64_t i = 0; i < hs; i++)
                    d += q[t * hs + i] * k[s * hs + i];
                row[s] = d * scale + (mb ? mb[t * S + s] : 0.0);
                if (causal && s > t)
                    row[s] = -INFINITY;
                if (row[s] > mx)
                    mx = row[s];
            }
            for (int64_t s = 0; s < S; s++)
                sum += row[s] = mx == -INFINITY ? 0 : exp(row[s] - mx);
            for (int64_t s = 0; s < S; s++)
                wei[(b * T + t) * S + s] = sum ? (float)(row[s] / sum) : 0;
            for (int64_t i = 0; i < hs; i++) {
                double d = 0;
                for (int64_t s = 0; s < S; s++)
                    d += (sum ? row[s] / sum : 0) * v[s * hs + i];
                out[(b * T + t) * hs + i] = (float)d;
            }
        }
    }
    free(q), free(k), free(v), free(row);
}

static const int64_t cross_shapes[][5] = {      /* B, T, S, C, hs */
    {2, 5, 3, 4, 2}, {2, 3, 7, 5, 3}, {1, 1, 4, 2, 2}, {3, 9, 9, 6, 4},
    {2, 33, 17, 12, 4}};

/* A mask for variant 0..3: none; 0/-inf (T,S) with row 0 fully masked;
 * additive (B,T,S) with some -inf; additive (T,S), no -inf. */
static float *make_mask(int variant, int64_t B, int64_t T, int64_t S,
                        engine_tensor *tm, uint64_t seed)
{
    if (variant == 0)
        return NULL;
    const int64_t n = (variant == 2 ? B : 1) * T * S;
    float *m = malloc(n * 4);
    unit_fill_random(m, n, seed);
    for (int64_t i = 0; i < n; i++) {
        if (variant == 1)
            m[i] = m[i] > 0.2f || i < S ? -INFINITY : 0.0f;
        else if (variant == 2 && m[i] > 0.6f)
            m[i] = -INFINITY;
        else
            m[i] *= 3.0f;
    }
    *tm = variant == 2 ? (engine_tensor){m, 3, {B, T, S}}
                       : (engine_tensor){m, 2, {T, S}};
    return m;
}

START_TEST(cross_attention_matches_reference)
{
    const int64_t *sh = cross_shapes[_i / 8];
    const int64_t B = sh[0], T = sh[1], S = sh[2], C = sh[3], hs = sh[4];
    const int variant = _i % 4, causal = variant == 0 || variant == 3;
    engine_attention_force_baseline((_i / 4) % 2);
    const float scale = (float)pow((double)hs, -0.5);
    const int64_t nx = B * T * C, nc = B * S * C, nw = hs * C,
                  nq = B * T * hs, nk = B * S * hs, ns = B * T * S;
    float *x = malloc(nx * 4), *ctx = malloc(nc * 4), *w = malloc(3 * nw * 4);
    unit_fill_random(x, nx, 31 + _i);
    unit_fill_random(ctx, nc, 32 + _i);
    unit_fill_random(w, 3 * nw, 33 + _i);
    engine_tensor tm = {0};
    float *m = make_mask(variant, B, T, S, &tm, 34 + _i);
    engine_tensor tx = {x, 3, {B, T, C}}, tc = {ctx, 3, {B, S, C}},
                  twq = {w, 2, {hs, C}}, twk = {w + nw, 2, {hs, C}},
                  twv = {w + 2 * nw, 2, {hs, C}};
    const int64_t n[6] = {nq, nk, nk, ns, ns, nq};
    float *buf[2][6];
    engine_tensor t[2][6];
    for (int r = 0; r < 2; r++)
        for (int j = 0; j < 6; j++) {
            buf[r][j] = malloc(n[j] * 4);
            const int64_t last = j == 3 || j == 4 ? S : hs;
            t[r][j] = (engine_tensor){buf[r][j], 3,
                                      {B, j == 1 || j == 2 ? S : T, last}};
        }
    engine_attention_args args = {causal, scale, m ? &tm : NULL, NULL};
    float *scratch = malloc(engine_attention_scratch(&tx, &tc, hs) * 4);
    ck_assert_int_eq(engine_attention_scratch(&tx, &tc, hs),
                     3 * nw + B * hs * S);
    engine_attention(&t[0][0], &t[0][1], &t[0][2], &t[0][3], &t[0][4],
                     &t[0][5], &tx, &tc, &twq, &twk, &twv, &args, scratch, 2);
    engine_attention_ref(&t[1][0], &t[1][1], &t[1][2], &t[1][3], &t[1][4],
                         &t[1][5], &tx, &tc, &twq, &twk, &twv, &args);
    for (int j = 0; j < 6; j++)
        ck_assert(j == 3 ||
                  engine_allclose(buf[0][j], buf[1][j], n[j], 1e-5, 1e-6));
    float *rwei = malloc(ns * 4), *rout = malloc(nq * 4);
    ref_cross(rwei, rout, x, ctx, w, w + nw, w + 2 * nw, m, tm.rank, B, T, S,
              C, hs, causal, scale);
    ck_assert(engine_allclose(buf[0][4], rwei, ns, 1e-5, 1e-5));
    ck_assert(engine_allclose(buf[0][5], rout, nq, 1e-5, 1e-5));
    int full = 0;
    for (int64_t b = 0; b < B; b++)
        for (int64_t tt = 0; tt < T; tt++) {
            int open = 0;
            for (int64_t s = 0; s < S; s++) {
                const int64_t i = (b * T + tt) * S + s;
                const float mv = m ? m[(tm.rank == 3 ? b * T * S : 0) +
                                       tt * S + s] : 0.0f;
                const int hidden = (causal && s > tt) || mv == -INFINITY;
                /* exactly the hidden scores are -inf, in both kernels */
                ck_assert_int_eq(buf[0][3][i] == -INFINITY, hidden);
                ck_assert_int_eq(buf[1][3][i] == -INFINITY, hidden);
                if (!hidden)
                    ck_assert(engine_allclose(&buf[0][3][i], &buf[1][3][i],
                                              1, 1e-5, 1e-6));
                else
                    ck_assert(buf[0][4][i] == 0.0f);
                open += !hidden;
            }
            if (!open) {    /* nothing to attend to: zeros, not NaN */
                full++;
                for (int64_t i = 0; i < hs; i++)
                    ck_assert(buf[0][5][(b * T + tt) * hs + i] == 0.0f);
            }
        }
    if (variant == 1)
        ck_assert_int_ge(full, (int)B);   /* row 0 is fully masked */
    engine_attention_force_baseline(0);
    for (int r = 0; r < 2; r++)
        for (int j = 0; j < 6; j++)
            free(buf[r][j]);
    free(x), free(ctx), free(w), free(m), free(scratch), free(rwei),
        free(rout);
}
END_TEST

START_TEST(cross_multihead_matches_reference)
{
    const int64_t *sh = cross_shapes[_i / 8];
    const int64_t B = sh[0], T = sh[1], S = sh[2], C = sh[3], hs = sh[4];
    const int64_t H = 3, D = H * hs;
    const int variant = _i % 4, causal = variant == 0 || variant == 3;
    engine_attention_force_baseline((_i / 4) % 2);
    const float scale = (float)pow((double)hs, -0.5);
    const int64_t nx = B * T * C, nc = B * S * C, nw = D * C,
                  nq = B * H * T * hs, nk = B * H * S * hs, ns = B * H * T * S,
                  nh = B * T * D;
    float *x = malloc(nx * 4), *ctx = malloc(nc * 4), *w = malloc(4 * nw * 4),
          *bo = malloc(C * 4);
    unit_fill_random(x, nx, 41 + _i);
    unit_fill_random(ctx, nc, 42 + _i);
    unit_fill_random(w, 4 * nw, 43 + _i);
    unit_fill_random(bo, C, 44 + _i);
    engine_tensor tm = {0};
    float *m = make_mask(variant, B, T, S, &tm, 45 + _i);
    engine_tensor tx = {x, 3, {B, T, C}}, tc = {ctx, 3, {B, S, C}},
                  twq = {w, 3, {H, hs, C}}, twk = {w + nw, 3, {H, hs, C}},
                  twv = {w + 2 * nw, 3, {H, hs, C}},
                  two = {w + 3 * nw, 2, {C, D}}, tbo = {bo, 1, {C}};
    const int64_t n[7] = {nq, nk, nk, ns, ns, nh, nx};
    float *buf[2][7];
    engine_tensor t[2][7];
    for (int r = 0; r < 2; r++) {
        for (int j = 0; j < 7; j++)
            buf[r][j] = malloc(n[j] * 4);
        t[r][0] = (engine_tensor){buf[r][0], 4, {B, H, T, hs}};
        t[r][1] = (engine_tensor){buf[r][1], 4, {B, H, S, hs}};
        t[r][2] = (engine_tensor){buf[r][2], 4, {B, H, S, hs}};
        t[r][3] = (engine_tensor){buf[r][3], 4, {B, H, T, S}};
        t[r][4] = (engine_tensor){buf[r][4], 4, {B, H, T, S}};
        t[r][5] = (engine_tensor){buf[r][5], 3, {B, T, D}};
        t[r][6] = (engine_tensor){buf[r][6], 3, {B, T, C}};
    }
    engine_attention_args args = {causal, scale, m ? &tm : NULL, NULL};
    float *scratch = malloc(engine_multihead_scratch(&tx, &tc, H, hs) * 4);
    engine_multihead(&t[0][0], &t[0][1], &t[0][2], &t[0][3], &t[0][4],
                     &t[0][5], &t[0][6], &tx, &tc, &twq, &twk, &twv, &two,
                     &tbo, &args, scratch, 3);
    engine_multihead_ref(&t[1][0], &t[1][1], &t[1][2], &t[1][3], &t[1][4],
                         &t[1][5], &t[1][6], &tx, &tc, &twq, &twk, &twv, &two,
                         &tbo, &args);
    for (int j = 0; j < 7; j++)
        ck_assert(j == 3 ||
                  engine_allclose(buf[0][j], buf[1][j], n[j], 1e-5, 1e-6));
    for (int64_t i = 0; i < ns; i++) {
        const float a = buf[0][3][i], b = buf[1][3][i];
        ck_assert((a == -INFINITY) == (b == -INFINITY));
        ck_assert(a == -INFINITY || engine_allclose(&a, &b, 1, 1e-5, 1e-6));
    }
    /* head h is engine_attention on the same context and mask, exactly */
    const int64_t h = H - 1;
    float *a[6], *sc1 = malloc(engine_attention_scratch(&tx, &tc, hs) * 4);
    const int64_t an[6] = {B * T * hs, B * S * hs, B * S * hs, B * T * S,
                           B * T * S, B * T * hs};
    engine_tensor at[6];
    for (int j = 0; j < 6; j++) {
        a[j] = malloc(an[j] * 4);
        at[j] = (engine_tensor){a[j], 3, {B, j == 1 || j == 2 ? S : T,
                                          j == 3 || j == 4 ? S : hs}};
    }
    engine_tensor hq = {w + h * hs * C, 2, {hs, C}},
                  hk = {w + nw + h * hs * C, 2, {hs, C}},
                  hv = {w + 2 * nw + h * hs * C, 2, {hs, C}};
    engine_attention(&at[0], &at[1], &at[2], &at[3], &at[4], &at[5], &tx, &tc,
                     &hq, &hk, &hv, &args, sc1, 1);
    for (int64_t b = 0; b < B; b++) {
        const int64_t bh = b * H + h;
        ck_assert(memcmp(buf[0][1] + bh * S * hs, a[1] + b * S * hs,
                         S * hs * 4) == 0);
        ck_assert(memcmp(buf[0][4] + bh * T * S, a[4] + b * T * S,
                         T * S * 4) == 0);
        for (int64_t tt = 0; tt < T; tt++)
            ck_assert(memcmp(buf[0][5] + (b * T + tt) * D + h * hs,
                             a[5] + (b * T + tt) * hs, hs * 4) == 0);
    }
    engine_attention_force_baseline(0);
    for (int j = 0; j < 6; j++)
        free(a[j]);
    for (int r = 0; r < 2; r++)
        for (int j = 0; j < 7; j++)
            free(buf[r][j]);
    free(x), free(ctx), free(w), free(bo), free(m), free(scratch), free(sc1);
}
END_TEST

/* ==== engine_attend: the one entry ==== */

/* B, T, S (0: self-attention), C, H, hs */
static const int64_t attend_shapes[][6] = {
    {1, 1, 0, 1, 1, 1},    {2, 3, 0, 5, 1, 3},     {1, 7, 0, 8, 2, 7},
    {2, 33, 0, 12, 3, 4},  {1, 65, 0, 16, 1, 16},  {2, 5, 9, 6, 2, 3},
    {1, 33, 7, 10, 1, 8},  {2, 17, 33, 8, 3, 5},   {1, 65, 65, 24, 2, 33},
    {1, 100, 0, 64, 1, 64},  {1, 1000, 0, 16, 1, 7},  {1, 1025, 0, 32, 2, 64},
    {1, 200, 1100, 20, 1, 17}, {3, 1, 0, 4, 1, 2}};
#define NATTEND (int)(sizeof attend_shapes / sizeof attend_shapes[0])

/* The tensors of one engine_attend call: inputs, every output (buf[0..6]
 * = q, k, v, scores, wei, heads, out) and a mask. */
typedef struct attend_case {
    int64_t B, T, S, C, H, hs, D;
    int self, proj, causal, variant;
    float *x, *ctx, *w, *bo, *m, *buf[7];
    engine_tensor tx, tc, twq, twk, twv, two, tbo, tm, t[7];
    engine_attention_args args;
} attend_case;

static void attend_case_new(attend_case *c, int shape, int variant,
                            int proj, uint64_t seed)
{
    const int64_t *sh = attend_shapes[shape];
    memset(c, 0, sizeof *c);
    c->B = sh[0], c->T = sh[1], c->S = sh[2] ? sh[2] : sh[1], c->C = sh[3];
    c->H = sh[4], c->hs = sh[5], c->D = c->H * c->hs;
    c->self = sh[2] == 0, c->proj = proj, c->variant = variant;
    c->causal = variant == 0 || variant == 3;
    const int64_t B = c->B, T = c->T, S = c->S, C = c->C, H = c->H,
                  hs = c->hs, D = c->D, nw = D * C;
    c->x = malloc(B * T * C * 4);
    c->ctx = malloc(B * S * C * 4);
    c->w = malloc(4 * nw * 4);
    c->bo = malloc(C * 4);
    unit_fill_random(c->x, B * T * C, seed);
    unit_fill_random(c->ctx, B * S * C, seed + 1);
    unit_fill_random(c->w, 4 * nw, seed + 2);
    unit_fill_random(c->bo, C, seed + 3);
    c->m = make_mask(variant, B, T, S, &c->tm, seed + 4);
    c->tx = (engine_tensor){c->x, 3, {B, T, C}};
    c->tc = (engine_tensor){c->ctx, 3, {B, S, C}};
    c->twq = (engine_tensor){c->w, 3, {H, hs, C}};
    c->twk = (engine_tensor){c->w + nw, 3, {H, hs, C}};
    c->twv = (engine_tensor){c->w + 2 * nw, 3, {H, hs, C}};
    c->two = (engine_tensor){c->w + 3 * nw, 2, {C, D}};
    c->tbo = (engine_tensor){c->bo, 1, {C}};
    const int64_t dims[7][4] = {{B, H, T, hs}, {B, H, S, hs}, {B, H, S, hs},
                                {B, H, T, S},  {B, H, T, S},  {B, T, D, 0},
                                {B, T, proj ? C : D, 0}};
    for (int j = 0; j < 7; j++) {
        const int rank = j >= 5 ? 3 : 4;
        c->t[j] = (engine_tensor){NULL, rank, {dims[j][0], dims[j][1],
                                               dims[j][2], dims[j][3]}};
        c->buf[j] = malloc(engine_numel(&c->t[j]) * 4);
        for (int64_t i = 0; i < engine_numel(&c->t[j]); i++)
            c->buf[j][i] = NAN;     /* whatever is not written shows */
        c->t[j].data = c->buf[j];
    }
    c->args = (engine_attention_args){c->causal,
                                      (float)pow((double)hs, -0.5),
                                      c->m ? &c->tm : NULL, NULL};
}

static void attend_case_free(attend_case *c)
{
    for (int j = 0; j < 7; j++)
        free(c->buf[j]);
    free(c->x), free(c->ctx), free(c->w), free(c->bo), free(c->m);
}

/* engine_attend on c with the outputs whose bit is set in `want` (bit j =
 * c->t[j]; out is always given); returns engine_attend's answer. */
static int attend_call(attend_case *c, unsigned want, int nthreads,
                       const volatile int *cancel)
{
    engine_tensor *o[7];
    for (int j = 0; j < 7; j++)
        o[j] = j == 6 || (want >> j & 1) ? &c->t[j] : NULL;
    if (!c->proj)
        o[5] = NULL;
    const int64_t n = engine_attend_scratch(c->B, c->T, c->S, c->C, c->H,
                                            c->hs, o[3] || o[4], nthreads);
    float *scratch = malloc(n * 4);
    engine_attention_args args = c->args;
    args.cancel = cancel;
    const int r = engine_attend(o[0], o[1], o[2], o[3], o[4], o[5], o[6],
                                &c->tx, c->self ? NULL : &c->tc, &c->twq,
                                &c->twk, &c->twv, c->proj ? &c->two : NULL,
                                c->proj ? &c->tbo : NULL, &args, scratch,
                                nthreads);
    free(scratch);
    return r;
}

/* engine_attend against its plain reference within the contract's
 * tolerance, on every shape, mask and output choice; the reference
 * itself against engine_multihead_ref's loops, exactly. */
START_TEST(attend_matches_reference)
{
    const int shape = _i / 8, variant = _i % 4, proj = (_i / 4) % 2;
    engine_attention_force_baseline(shape % 2);    /* both builds */
    attend_case c, r;
    attend_case_new(&c, shape, variant, proj, 200 + _i);
    attend_case_new(&r, shape, variant, proj, 200 + _i);
    ck_assert_int_eq(engine_attend_ref(&r.t[0], &r.t[1], &r.t[2], &r.t[3],
                                       &r.t[4], proj ? &r.t[5] : NULL,
                                       &r.t[6], &r.tx, r.self ? NULL : &r.tc,
                                       &r.twq, &r.twk, &r.twv,
                                       proj ? &r.two : NULL,
                                       proj ? &r.tbo : NULL, &r.args), 0);
    /* every output subset on small shapes; none and all on long ones */
    const unsigned step = c.T * c.S > 100000 ? 127 : 9;
    for (unsigned want = 0; want < 128; want += step) {
        ck_assert_int_eq(attend_call(&c, want, 2, NULL), 0);
        for (int j = 0; j < 7; j++) {
            if (j < 6 && !(want >> j & 1))
                continue;
            if (j == 5 && !proj)
                continue;
            const int64_t n = engine_numel(&c.t[j]);
            for (int64_t i = 0; i < n; i++) {
                const float a = c.buf[j][i], b = r.buf[j][i];
                /* The projection's sum over D terms cancels: the two
                 * float32 orders may differ by a few ulp of the terms'
                 * absolute sum, far more than of the result. */
                double terms = 0.0;
                if (j == 6 && proj)
                    for (int64_t d = 0; d < c.D; d++)
                        terms += fabs((double)r.buf[5][i / c.C * c.D + d] *
                                      c.w[3 * c.D * c.C + i % c.C * c.D + d]);
                /* hidden scores: -inf in both, exactly */
                const int ok = j == 3 && (a == -INFINITY || b == -INFINITY)
                                   ? a == b
                                   : engine_allclose(&a, &b, 1, 1e-5,
                                                     1e-5 + 1e-6 * terms);
                if (!ok)    /* one assertion per tensor: Check's cost */
                    ck_abort_msg("shape %d out %d [%lld]: %.9g vs %.9g",
                                 shape, j, (long long)i, a, b);
            }
        }
    }
    if (step == 127)    /* the checks of the reference: small shapes */
        goto done;
    /* the reference with NULL outputs gives the same out */
    float *o2 = malloc(engine_numel(&r.t[6]) * 4);
    engine_tensor to2 = r.t[6];
    to2.data = o2;
    ck_assert_int_eq(engine_attend_ref(NULL, NULL, NULL, NULL, NULL, NULL,
                                       &to2, &r.tx, r.self ? NULL : &r.tc,
                                       &r.twq, &r.twk, &r.twv,
                                       proj ? &r.two : NULL,
                                       proj ? &r.tbo : NULL, &r.args), 0);
    ck_assert(memcmp(o2, r.buf[6], engine_numel(&to2) * 4) == 0);
    if (proj) {     /* and engine_multihead_ref's loops, exactly */
        attend_case m;
        attend_case_new(&m, shape, variant, 1, 200 + _i);
        engine_multihead_ref(&m.t[0], &m.t[1], &m.t[2], &m.t[3], &m.t[4],
                             &m.t[5], &m.t[6], &m.tx, m.self ? NULL : &m.tc,
                             &m.twq, &m.twk, &m.twv, &m.two, &m.tbo, &m.args);
        for (int j = 0; j < 7; j++)
            ck_assert(memcmp(m.buf[j], r.buf[j],
                             engine_numel(&m.t[j]) * 4) == 0);
        attend_case_free(&m);
    }
    free(o2);
done:
    engine_attention_force_baseline(0);
    attend_case_free(&c);
    attend_case_free(&r);
}
END_TEST

START_TEST(attend_cancel_stops)
{
    attend_case c;
    attend_case_new(&c, 3, 0, 1, 300);
    volatile int stop = 0;
    ck_assert_int_eq(attend_call(&c, 0, 2, &stop), 0);
    stop = 1;
    ck_assert_int_eq(attend_call(&c, 0, 2, &stop), 1);
    ck_assert_int_eq(attend_call(&c, 0, 1, &stop), 1);
    ck_assert_int_eq(attend_call(&c, 24, 1, &stop), 1);
    attend_case_free(&c);
}
END_TEST

START_TEST(mean_heads_is_sum_over_h)
{
    const int64_t B = 2, H = 3, T = 5, S = 7, n = B * H * T * S;
    float *w = malloc(n * 4), *a = malloc(B * T * S * 4);
    unit_fill_random(w, n, 400);
    engine_tensor tw = {w, 4, {B, H, T, S}}, ta = {a, 3, {B, T, S}};
    engine_mean_heads(&ta, &tw, _i + 1);
    for (int64_t b = 0; b < B; b++)
        for (int64_t i = 0; i < T * S; i++) {
            float sum = 0.0f;
            for (int64_t h = 0; h < H; h++)
                sum += w[(b * H + h) * T * S + i];
            ck_assert(a[b * T * S + i] == sum / (float)H);
        }
    free(w), free(a);
}
END_TEST

START_TEST(allclose_is_torch_semantics)
{
    const float a[2] = {1.0f, 0.0f}, b[2] = {1.0f + 5e-6f, 1e-9f};
    ck_assert(engine_allclose(a, b, 2, 1e-5, 1e-8));
    const float c[1] = {1e-7f}, d[1] = {0.0f};
    ck_assert(!engine_allclose(c, d, 1, 1e-5, 1e-8));   /* atol only at 0 */
    const float e[1] = {NAN};
    ck_assert(!engine_allclose(e, e, 1, 1e-5, 1e-8));
}
END_TEST

Suite *engine_suite(void)
{
    Suite *s = suite_create("engine");
    TCase *tc = tcase_create("bow");
    tcase_add_loop_test(tc, bow_three_methods_agree, 0, NSHAPES);
    tcase_add_test(tc, bow_weights_are_row_means);
    tcase_add_test(tc, bow_loop_parallel_is_identical);
    tcase_add_loop_test(tc, matmul_tt_sums_in_order, 0, 7);
    suite_add_tcase(s, tc);
    tc = tcase_create("attention");
    tcase_add_test(tc, softmax_rows_properties);
    tcase_add_loop_test(tc, attention_matches_reference, 0,
                        4 * (int)(sizeof attn_shapes / sizeof attn_shapes[0]));
    tcase_add_test(tc, attention_scale_multiplies_scores);
    tcase_add_test(tc, allclose_is_torch_semantics);
    suite_add_tcase(s, tc);
    tc = tcase_create("multihead");
    tcase_add_loop_test(tc, multihead_matches_reference, 0,
                        4 * (int)(sizeof mh_shapes / sizeof mh_shapes[0]));
    suite_add_tcase(s, tc);
    tc = tcase_create("cross and masks");
    const int ncross = (int)(sizeof cross_shapes / sizeof cross_shapes[0]);
    tcase_add_loop_test(tc, cross_attention_matches_reference, 0, 8 * ncross);
    tcase_add_loop_test(tc, cross_multihead_matches_reference, 0, 8 * ncross);
    suite_add_tcase(s, tc);
    tc = tcase_create("attend");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, attend_matches_reference, 0, 8 * NATTEND);
    tcase_add_test(tc, attend_cancel_stops);
    tcase_add_loop_test(tc, mean_heads_is_sum_over_h, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}
