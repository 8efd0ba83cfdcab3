/* gpt.h -- the rest of the lecture: LayerNorm, Linear with bias, the
 * FeedFoward, embeddings, the residual stream, the lecture's Block and
 * GPTLanguageModel (forward, seeded construction, generate).
 *
 * Same rules as engine.h: float32, no JSON, no HTTP, no allocation, caller-
 * owned buffers (outputs first), shapes in the first comment, OpenMP over
 * the batch (rows) with the caller's `nthreads`.  The attention inside a
 * Block is engine_attend with a projection (the lecture's
 * MultiHeadAttention with proj), on its streaming path whenever neither
 * scores nor weights are asked for.  Scratch sizes depend on nthreads
 * (engine_attend's per-thread tiles): call with the same value.
 *
 * Names in comments are the lecture's (models/lecture_gpt.py, verbatim from
 * ng-video-lecture's gpt.py): C = n_embd, H = n_head, hs = C / H (integer
 * division, so H*hs may be less than C), L = n_layer, V = vocab_size.
 * Dropout is the identity (the module in eval()).
 */
#ifndef ATTND_ENGINE_GPT_H
#define ATTND_ENGINE_GPT_H

#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "rng.h"

/* ==== primitives ==== */

/* nn.LayerNorm(C) (eps 1e-5, elementwise affine) over the last dim.
 *   out, x: (..., C), any leading shape, same numel; w, b: (C,)
 * Mean and biased variance of each row in double, then
 * (x - mean) * rstd * w + b rounded to float.  out may be x. */
void engine_layernorm(engine_tensor *out, const engine_tensor *x,
                      const float *w, const float *b, float eps, int nthreads);

/* nn.Linear(I, O): out = x @ w^T (+ b).
 *   x: (..., I); out: (..., O), same leading shape; w: (O,I) as
 *   nn.Linear.weight; b: (O,) or NULL
 *   scratch: I*O floats (w transposed, so that each output row is built
 *            along contiguous memory and vectorises)
 * Each output is 0 + x[0]*w[o][0] + x[1]*w[o][1] + ... in index order,
 * then + b[o]: exactly engine_linear_ref's sums.  out must not alias x. */
void engine_linear(engine_tensor *out, const engine_tensor *x, const float *w,
                   const float *b, float *scratch, int nthreads);

/* The plain reference: a dot product per output, one thread. */
void engine_linear_ref(engine_tensor *out, const engine_tensor *x,
                       const float *w, const float *b);

/* nn.ReLU in place: x = max(x, 0) (NaN stays NaN, -0 becomes 0). */
void engine_relu(float *x, int64_t n);

/* The residual stream: x += y, n elements. */
void engine_add(float *x, const float *y, int64_t n);

/* tok_emb + pos_emb:
 *   out: (B,T,C); idx: (B,T) token ids, row b at idx + b*ld (ld >= T);
 *   tok: (V,C) token_embedding_table.weight;
 *   pos: (>=T,C) position_embedding_table.weight
 * out[b,t,:] = tok[idx[b,t],:] + pos[t,:].  Precondition: every id in
 * [0, V) and T <= block_size (the caller validates). */
void engine_embed(engine_tensor *out, const int64_t *idx, int64_t ld,
                  const float *tok, const float *pos, int nthreads);

/* ==== Block(n_embd, n_head) ==== */

/* One Block's parameters.  wk, wq, wv hold the H heads' (hs,C) weights one
 * after another (H,hs,C): sa.heads.h.key.weight is wk + h*hs*C. */
typedef struct engine_block_weights {
    float *wk, *wq, *wv;        /* (H,hs,C) sa.heads.*.{key,query,value} */
    float *proj_w, *proj_b;     /* (C,H*hs), (C,)  sa.proj */
    float *fc1_w, *fc1_b;       /* (4C,C), (4C,)   ffwd.net.0 */
    float *fc2_w, *fc2_b;       /* (C,4C), (C,)    ffwd.net.2 */
    float *ln1_w, *ln1_b;       /* (C,) */
    float *ln2_w, *ln2_b;       /* (C,) */
} engine_block_weights;

/* Every intermediate of Block.forward; each NULL when not wanted.
 *   ln1, attn, resid, ln2: (B,T,C)   ln1(x), sa(ln1(x)), x + attn, ln2(resid)
 *   q, k, v: (B,H,T,hs)              per head, as engine_multihead's
 *   scores, weights: (B,H,T,T)       scaled by hs**-0.5, causal (-inf above
 *                                    the diagonal), and their softmax
 *   heads: (B,T,H*hs)                the heads concatenated, before proj
 *   hidden: (B,T,4C)                 relu(ln2 @ fc1^T + fc1_b)
 * out = resid + hidden @ fc2^T + fc2_b is the call's own output. */
typedef struct engine_block_trace {
    float *ln1, *q, *k, *v, *scores, *weights, *heads, *attn, *resid, *ln2,
        *hidden;
} engine_block_trace;

/* Floats of parameters of one Block. */
int64_t engine_block_numel(int64_t C, int64_t H);

/* Points w's fields at consecutive slices of buf (engine_block_numel
 * floats), in state_dict order. */
void engine_block_layout(engine_block_weights *w, float *buf, int64_t C,
                         int64_t H);

/* torch.manual_seed(...); Block(C, H) on g: every parameter bit for bit,
 * drawn in construction order (per head key, query, value: kaiming
 * uniform; proj, ffwd.net.0, ffwd.net.2: weight then bias; LayerNorms ones
 * and zeros, no draws).  w laid out by engine_block_layout. */
void engine_block_init(engine_rng *g, const engine_block_weights *w,
                       int64_t C, int64_t H);

/* Floats of scratch engine_block needs for these sizes and threads. */
int64_t engine_block_scratch(int64_t B, int64_t T, int64_t C, int64_t H,
                             int nthreads);

/* Block.forward in eval():
 *   out: (B,T,C); x: (B,T,C); tr: NULL or the intermediates wanted
 *   scratch: engine_block_scratch(B, T, C, H, nthreads) floats
 * out must not alias x. */
void engine_block(float *out, const engine_block_trace *tr, const float *x,
                  const engine_block_weights *w, int64_t B, int64_t T,
                  int64_t C, int64_t H, float *scratch, int nthreads);

/* ==== GPTLanguageModel ==== */

typedef struct engine_gpt_config {
    int64_t vocab_size, block_size, n_embd, n_head, n_layer;
} engine_gpt_config;

typedef struct engine_gpt_weights {
    engine_gpt_config cfg;
    float *tok;                     /* (V,C) token_embedding_table */
    float *pos;                     /* (block_size,C) position_embedding_table */
    engine_block_weights *blocks;   /* n_layer, caller-owned array */
    float *lnf_w, *lnf_b;           /* (C,) ln_f */
    float *head_w, *head_b;         /* (V,C), (V,) lm_head */
} engine_gpt_weights;

/* Floats of parameters of the whole model (0 if the sizes overflow). */
int64_t engine_gpt_numel(const engine_gpt_config *cfg);

/* Points w (and w->blocks[0..L), an array the caller provides) at
 * consecutive slices of buf, engine_gpt_numel floats, state_dict order. */
void engine_gpt_layout(engine_gpt_weights *w, engine_block_weights *blocks,
                       float *buf, const engine_gpt_config *cfg);

/* torch.manual_seed(...); GPTLanguageModel() on g, bit for bit: the
 * construction's own draws (Embedding: normal(0,1); each Block as
 * engine_block_init; lm_head: kaiming uniform weight and bias), then the
 * lecture's self.apply(_init_weights) in module order (children first):
 * normal(0, 0.02) for both embeddings and every Linear weight, Linear
 * biases zero. */
void engine_gpt_init(engine_rng *g, const engine_gpt_weights *w);

/* What engine_gpt_forward writes; NULL fields are not computed/copied.
 *   logits: (B,T,V), or (B,V) for the last position only when last_only
 *   probs:  (B,V)          softmax of the last position's logits
 *   weights: (B,L,H,T,T)   every layer's, every head's attention weights
 *   hidden:  (B,L+1,T,C)   the embeddings, then each Block's output
 *                          (before ln_f) */
typedef struct engine_gpt_out {
    float *logits, *probs, *weights, *hidden;
    int last_only;
} engine_gpt_out;

/* Floats of scratch engine_gpt_forward needs for a (B,T) input. */
int64_t engine_gpt_scratch(const engine_gpt_config *cfg, int64_t B,
                           int64_t T, int nthreads);

/* GPTLanguageModel.forward(idx) in eval():
 *   idx: (B,T) token ids, row b at idx + b*ld; T <= block_size, ids in
 *   [0, V) (preconditions: the caller validates)
 *   scratch: engine_gpt_scratch(cfg, B, T, nthreads) floats */
void engine_gpt_forward(const engine_gpt_out *o, const int64_t *idx,
                        int64_t ld, int64_t B, int64_t T,
                        const engine_gpt_weights *w, float *scratch,
                        int nthreads);

/* ==== sampling ==== */

/* torch.multinomial(probs, num_samples=1) on g, Debian's PyTorch 1.13 CPU
 * algorithm (the "one sample" fast path of multinomial_out):
 *   q = torch.empty_like(probs).exponential_(1)   (B*V draws, row-major)
 *   out[b] = argmax(probs[b] / q[b])              (first maximum; NaN wins)
 * probs: (B,V); q: (B,V) scratch; out: (B,), out[b*ld]. */
void engine_multinomial1(int64_t *out, int64_t ld, const float *probs,
                         float *q, int64_t B, int64_t V, engine_rng *g);

/* Floats of scratch engine_gpt_generate needs. */
int64_t engine_gpt_generate_scratch(const engine_gpt_config *cfg, int64_t B,
                                    int nthreads);

/* GPTLanguageModel.generate(idx, max_new_tokens) with the generator g:
 *   out: (B, T0+N); its first T0 columns are copied from idx (B,T0)
 * Each step runs the model on the last min(T, block_size) tokens, takes
 * the softmax of the last logits and samples with engine_multinomial1.
 *   scratch: engine_gpt_generate_scratch(cfg, B, nthreads) floats
 *   cancel: NULL, or a flag checked before each step (nonzero: stop)
 * Preconditions: T0 >= 1, ids in [0, V).  Returns 0, or 1 if cancel
 * stopped it (out then holds the tokens made so far). */
int engine_gpt_generate(int64_t *out, const int64_t *idx, int64_t B,
                        int64_t T0, int64_t N, const engine_gpt_weights *w,
                        engine_rng *g, float *scratch, int nthreads,
                        const volatile int *cancel);

/* ==== parameters by state_dict name ==== */

/* One tensor of the lecture's state_dict ("tril" buffers excluded): its
 * name, where it lives in the layout, its shape. */
typedef struct engine_param {
    char name[80];
    float *data;
    int rank;           /* 1 or 2 */
    int64_t dim[2];
} engine_param;

/* The tensors of Block(C, H)'s state_dict, in its order, named with
 * `prefix` in front ("" for a lone Block, "blocks.3." inside a GPT).
 * Writes up to `max` entries to out (NULL: none) and returns the count. */
int64_t engine_block_params(engine_param *out, int64_t max, const char *prefix,
                            const engine_block_weights *w, int64_t C,
                            int64_t H);

/* The same for GPTLanguageModel's state_dict. */
int64_t engine_gpt_params(engine_param *out, int64_t max,
                          const engine_gpt_weights *w);

#endif
