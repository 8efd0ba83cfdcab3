/* engine.h -- attnd's numerics: float32 tensors, bag-of-words averaging,
 * softmax, causal and additive masks, single- and multi-head attention
 * (self or cross).
 *
 * Pure C: no JSON, no HTTP, no allocation in the kernels, no exit().  Every
 * kernel writes into buffers its caller owns (outputs first, then const
 * inputs, then sizes/options) and states its shapes in its first comment.
 * OpenMP parallelises over the batch (engine_attend: over batch x blocks
 * of queries, so one sequence uses every thread); the caller picks the
 * team size with the `nthreads` argument so that a loaded server does not
 * oversubscribe its cores (see api_threads_for() in api/).
 */
#ifndef ATTND_ENGINE_H
#define ATTND_ENGINE_H

#include <stddef.h>
#include <stdint.h>

/* 5: /gpt's attention weights are B x L x H x T x T.  Inputs stay at most
 * 4-D (api/'s API_MAX_IN_RANK). */
#define ENGINE_MAX_RANK 5

/* A dense row-major float32 tensor: data + shape.  The struct never owns
 * `data`; whoever allocated it frees it. */
typedef struct engine_tensor {
    float *data;
    int rank;
    int64_t dim[ENGINE_MAX_RANK];
} engine_tensor;

/* Number of elements, product of dims (1 for rank 0). */
int64_t engine_numel(const engine_tensor *t);

/* ==== bag of words: the lecture's "mathematical trick", three ways ==== */

/* Method 1, the reference: a real double loop of running means.
 * out: (B,T,C), x: (B,T,C).  out[b,t,:] = mean(x[b,0..t,:]).
 * Accumulates in float32 in index order, then divides by (t+1), as
 * torch.mean over x[b,:t+1] does for these sizes. */
void engine_bow_loop(engine_tensor *out, const engine_tensor *x, int nthreads);

/* Method 2's matrix: wei (T,T) = tril(ones) with each row divided by its
 * sum, i.e. wei[t,s] = 1/(t+1) for s<=t, 0 above the diagonal. */
void engine_bow_tril_weights(engine_tensor *wei);

/* Method 3's matrix: wei (T,T) = softmax(zeros.masked_fill(tril==0, -inf)),
 * computed through engine_softmax_rows on a real -inf mask. */
void engine_bow_softmax_weights(engine_tensor *wei);

/* out (B,T,C) = wei (T,T) @ x (B,T,C), wei broadcast over the batch. */
void engine_matmul_tt(engine_tensor *out, const engine_tensor *wei,
                      const engine_tensor *x, int nthreads);

/* ==== building blocks ==== */

/* In-place softmax over each row of a (rows, n) matrix, torch-style:
 * subtract the row max, exp, divide by the sum.  A row that is all -inf
 * (nothing to attend to) becomes all zeros instead of NaN. */
void engine_softmax_rows(float *m, int64_t rows, int64_t n);

/* ==== single-head attention: self or cross, causal or masked ==== */

typedef struct engine_attention_args {
    int causal;     /* nonzero: row t sees keys s <= t only (top-left
                     * aligned when T != S, like SDPA's is_causal) */
    float scale;    /* multiplies q @ k^T before the mask */
    /* NULL, or an additive mask (T,S) shared by the batch or (B,T,S),
     * added to the scaled scores; -inf where a query may not attend (that
     * score becomes -inf whatever the product, like masked_fill).
     * A row with nothing left to attend to gets zero weights and a zero
     * out row, not NaN. */
    const engine_tensor *mask;
    /* NULL, or polled between blocks of work (at least every ~10 ms):
     * nonzero = stop; engine_attend then returns 1 and its outputs are
     * undefined.  Zero-initialised fields keep the meanings above. */
    const volatile int *cancel;
} engine_attention_args;

/* Single-head attention, the lecture's Head.forward with explicit weights
 * in nn.Linear.weight layout (out_features x in_features); queries come
 * from x, keys and values from ctx (cross-attention), or from x when ctx
 * is NULL (self-attention, S = T).
 *   x: (B,T,C); ctx: (B,S,C) or NULL; wq, wk, wv: (hs,C)
 *   q: (B,T,hs)    q = x @ wq^T
 *   k, v: (B,S,hs) k = ctx @ wk^T, v = ctx @ wv^T
 *   scores:  (B,T,S)  (q @ k^T) * scale (+ mask), -inf where causal hides
 *   wei:     (B,T,S)  softmax(scores, -1), all-masked rows all zeros
 *   out:     (B,T,hs) wei @ v
 *   scratch: engine_attention_scratch(x, ctx, hs) floats (weights and
 *            keys transposed, so every inner loop runs along contiguous
 *            memory and vectorises without reassociating a sum)
 * All buffers are caller-owned and must have exactly those shapes.
 * With causal set, the hidden part of q @ k^T is never computed.  Sums run
 * in the same order as engine_attention_ref's; only FMA contraction in the
 * AVX2 build makes the two differ, in the last bits. */
void engine_attention(engine_tensor *q, engine_tensor *k, engine_tensor *v,
                      engine_tensor *scores, engine_tensor *wei,
                      engine_tensor *out, const engine_tensor *x,
                      const engine_tensor *ctx, const engine_tensor *wq,
                      const engine_tensor *wk, const engine_tensor *wv,
                      const engine_attention_args *args, float *scratch,
                      int nthreads);

/* Which build of engine_attention's and engine_attend's loops this CPU
 * runs: "avx2+fma" or "baseline". */
const char *engine_attention_kernel(void);

/* Tests: nonzero makes engine_attention use the baseline loops. */
void engine_attention_force_baseline(int on);

/* Floats of scratch engine_attention needs: 3*hs*C + B*hs*S (ctx NULL:
 * S = T). */
int64_t engine_attention_scratch(const engine_tensor *x,
                                 const engine_tensor *ctx, int64_t hs);

/* The plain reference engine_attention is tested against: the same
 * shapes, dot products in the obvious loops, no scratch, one thread. */
void engine_attention_ref(engine_tensor *q, engine_tensor *k, engine_tensor *v,
                          engine_tensor *scores, engine_tensor *wei,
                          engine_tensor *out, const engine_tensor *x,
                          const engine_tensor *ctx, const engine_tensor *wq,
                          const engine_tensor *wk, const engine_tensor *wv,
                          const engine_attention_args *args);

/* ==== multi-head attention ==== */

/* The lecture's MultiHeadAttention: H heads of head size hs run side by
 * side (queries from x, keys and values from ctx, or x when ctx is NULL),
 * concatenated, then proj = nn.Linear(H*hs, C).
 *   x: (B,T,C); ctx: (B,S,C) or NULL; wq, wk, wv: (H,hs,C), head h's
 *   nn.Linear.weight; wo: (C,H*hs), bo: (C,)  proj.weight and proj.bias
 *   q: (B,H,T,hs); k, v: (B,H,S,hs); scores, wei: (B,H,T,S)
 *                        as engine_attention's, per (batch, head); the
 *                        mask (args) is the same for every head
 *   heads:   (B,T,H*hs)  head h's out in columns h*hs .. h*hs+hs-1
 *   out:     (B,T,C)     heads @ wo^T + bo
 *   scratch: engine_multihead_scratch(x, ctx, H, hs) floats
 * Caller-owned buffers of exactly those shapes; OpenMP over batch x heads
 * (then over the batch for the projection) with nthreads. */
void engine_multihead(engine_tensor *q, engine_tensor *k, engine_tensor *v,
                      engine_tensor *scores, engine_tensor *wei,
                      engine_tensor *heads, engine_tensor *out,
                      const engine_tensor *x, const engine_tensor *ctx,
                      const engine_tensor *wq, const engine_tensor *wk,
                      const engine_tensor *wv, const engine_tensor *wo,
                      const engine_tensor *bo,
                      const engine_attention_args *args, float *scratch,
                      int nthreads);

/* Floats of scratch engine_multihead needs: 4*H*hs*C + B*H*hs*(S+T). */
int64_t engine_multihead_scratch(const engine_tensor *x,
                                 const engine_tensor *ctx, int64_t H,
                                 int64_t hs);

/* The plain reference: the obvious loops per (batch, head), then the
 * concatenation and projection.  One thread. */
void engine_multihead_ref(engine_tensor *q, engine_tensor *k, engine_tensor *v,
                          engine_tensor *scores, engine_tensor *wei,
                          engine_tensor *heads, engine_tensor *out,
                          const engine_tensor *x, const engine_tensor *ctx,
                          const engine_tensor *wq, const engine_tensor *wk,
                          const engine_tensor *wv, const engine_tensor *wo,
                          const engine_tensor *bo,
                          const engine_attention_args *args);

/* ==== the one attention entry ==== */

/* Attention with any head count: the lecture's MultiHeadAttention, and Head
 * as its H = 1 case without projection.
 *   x: (B,T,C); ctx: (B,S,C) or NULL (self-attention, S = T)
 *   wq, wk, wv: (H,hs,C)   head h's nn.Linear.weight at [h]  (a (hs,C)
 *                          weight is the same memory viewed as (1,hs,C))
 *   wo: (C,H*hs), bo: (C,)  proj; both NULL = no projection
 * Outputs, each NULL when not wanted (except out):
 *   q: (B,H,T,hs); k, v: (B,H,S,hs); scores, wei: (B,H,T,S)
 *   heads: (B,T,H*hs)  (only with a projection; without one out IS the
 *                      heads)
 *   out: (B,T,C) with projection, (B,T,H*hs) without
 * For H = 1, (B,1,T,hs) and (B,T,hs) are the same memory, so /attention's
 * q/k/v/scores/weights/out are views of these.  The mask (args) is the
 * same for every head.
 * When scores and wei are both NULL, out is computed without ever holding
 * a T x S matrix (streaming / online softmax, FlashAttention-2's
 * recurrence), memory O(S*hs) per head (keys and values packed) plus
 * per-thread tiles.
 * How: register-blocked 6x16 micro-kernels for every product (x @ w^T,
 * q @ k^T, weights @ v, heads @ wo^T) on operands packed into scratch,
 * causal blocks above the diagonal never touched; OpenMP over (batch,
 * query block of 48 rows) items, longest first, handed out one at a time
 * (balanced for the causal triangle; B = 1 uses every thread), each item
 * running every head then the projection of its rows.  Each product's sum
 * keeps the order of engine_attend_ref over its shared dimension, fused
 * multiply-adds in the AVX2 build; the softmax sums 8 lanes at a time
 * with a vector exp (Cephes expf, within 2 ulp, under FLT_MIN -> 0), and
 * the streaming path divides out by the sum at the end.  Within the
 * contract's 1e-5 + 1e-5*|b| of engine_attend_ref (tests/unit).
 * scratch: engine_attend_scratch(...) floats for the same sizes, the same
 * `matrices` (scores or wei given) and the same nthreads; caller-owned.
 * Returns 0, or 1 if args->cancel stopped it. */
int engine_attend(engine_tensor *q, engine_tensor *k, engine_tensor *v,
                  engine_tensor *scores, engine_tensor *wei,
                  engine_tensor *heads, engine_tensor *out,
                  const engine_tensor *x, const engine_tensor *ctx,
                  const engine_tensor *wq, const engine_tensor *wk,
                  const engine_tensor *wv, const engine_tensor *wo,
                  const engine_tensor *bo, const engine_attention_args *args,
                  float *scratch, int nthreads);

/* Floats of scratch engine_attend needs for these sizes; `matrices`
 * nonzero when scores or wei is requested (0: the streaming path).
 * 3*H*hsp*C + Cp*H*hs + B*H*(Sp*hs + S*hsp) (packed weights, wo, keys,
 * values; hsp, Sp, Cp: hs, S, C rounded up to 16) plus per thread about
 * 48*(2*hsp + H*hs + 128) floats, 48*Sp instead of 48*128 with
 * `matrices`: never O(T*S).  Independent of which outputs are given. */
int64_t engine_attend_scratch(int64_t B, int64_t T, int64_t S, int64_t C,
                              int64_t H, int64_t hs, int matrices,
                              int nthreads);

/* out (B,T,S) = mean over heads of wei (B,H,T,S), summed in head order
 * then divided by H (nn.MultiheadAttention's average_attn_weights). */
void engine_mean_heads(engine_tensor *out, const engine_tensor *wei,
                       int nthreads);

/* The plain reference engine_attend is tested against: the obvious loops,
 * one thread, no scratch.  A test tool, not a kernel: it allocates what
 * the caller leaves NULL (scores and wei one row at a time).  Returns 0,
 * or -1 when that allocation failed. */
int engine_attend_ref(engine_tensor *q, engine_tensor *k, engine_tensor *v,
                      engine_tensor *scores, engine_tensor *wei,
                      engine_tensor *heads, engine_tensor *out,
                      const engine_tensor *x, const engine_tensor *ctx,
                      const engine_tensor *wq, const engine_tensor *wk,
                      const engine_tensor *wv, const engine_tensor *wo,
                      const engine_tensor *bo,
                      const engine_attention_args *args);

/* ==== comparisons (the /bow "all" report, and tests) ==== */

/* max |a-b| over n elements. */
float engine_max_abs_diff(const float *a, const float *b, int64_t n);

/* torch.allclose(a, b, rtol, atol): every |a-b| <= atol + rtol*|b|. */
int engine_allclose(const float *a, const float *b, int64_t n,
                    double rtol, double atol);

#endif
