/* gpt.c -- see gpt.h.  The lecture's Block and GPTLanguageModel on top of
 * engine_multihead; plain C kernels, OpenMP over the rows of the batch. */
#include "gpt.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "parallel.h"

static engine_tensor tensor3(float *d, int64_t a, int64_t b, int64_t c)
{
    engine_tensor t = {d, 3, {a, b, c, 0}};
    return t;
}

static engine_tensor tensor4(float *d, int64_t a, int64_t b, int64_t c,
                             int64_t e)
{
    engine_tensor t = {d, 4, {a, b, c, e}};
    return t;
}

/* ==== primitives ==== */

void engine_layernorm(engine_tensor *out, const engine_tensor *x,
                      const float *w, const float *b, float eps, int nthreads)
{
    /* x, out: (rows, C) with C the last dim; w, b: (C,) */
    const int64_t C = x->dim[x->rank - 1];
    const int64_t rows = C > 0 ? engine_numel(x) / C : 0;
    const float *xd = x->data;
    float *od = out->data;
    PARALLEL_FOR(r, rows, {
        const float *xr = xd + r * C;
        float *orow = od + r * C;
        double mean = 0.0, var = 0.0;
        for (int64_t c = 0; c < C; c++)
            mean += xr[c];
        mean /= (double)C;
        for (int64_t c = 0; c < C; c++) {
            const double d = xr[c] - mean;
            var += d * d;
        }
        var /= (double)C;
        const double rstd = 1.0 / sqrt(var + (double)eps);
        for (int64_t c = 0; c < C; c++)
            orow[c] = (float)((xr[c] - mean) * rstd * w[c] + b[c]);
    });
}

/* Four rows of out = x @ wt (+ b): the rows share each load of wt's row
 * i; every output is still 0 + x[0]*w[0] + x[1]*w[1] + ... in index
 * order, then + b.  Cloned for AVX2 (8 lanes, no FMA: the sums stay
 * engine_linear_ref's bit for bit). */
__attribute__((target_clones("avx2", "default")))
static void linear_rows4(float *restrict o, const float *restrict x,
                         const float *restrict wt, const float *restrict b,
                         int64_t I, int64_t O)
{
    float *restrict o0 = o, *restrict o1 = o + O, *restrict o2 = o + 2 * O,
                    *restrict o3 = o + 3 * O;
    for (int64_t j = 0; j < O; j++)
        o0[j] = o1[j] = o2[j] = o3[j] = 0.0f;
    for (int64_t i = 0; i < I; i++) {
        const float a0 = x[i], a1 = x[I + i], a2 = x[2 * I + i],
                    a3 = x[3 * I + i];
        const float *wr = wt + i * O;
        for (int64_t j = 0; j < O; j++) {
            const float w = wr[j];
            o0[j] += a0 * w;
            o1[j] += a1 * w;
            o2[j] += a2 * w;
            o3[j] += a3 * w;
        }
    }
    if (b)
        for (int64_t j = 0; j < O; j++) {
            o0[j] += b[j];
            o1[j] += b[j];
            o2[j] += b[j];
            o3[j] += b[j];
        }
}

/* One row, the same sums. */
__attribute__((target_clones("avx2", "default")))
static void linear_row(float *restrict o, const float *restrict x,
                       const float *restrict wt, const float *restrict b,
                       int64_t I, int64_t O)
{
    for (int64_t j = 0; j < O; j++)
        o[j] = 0.0f;
    for (int64_t i = 0; i < I; i++) {
        const float a = x[i];
        const float *wr = wt + i * O;
        for (int64_t j = 0; j < O; j++)
            o[j] += a * wr[j];
    }
    if (b)
        for (int64_t j = 0; j < O; j++)
            o[j] += b[j];
}

void engine_linear(engine_tensor *out, const engine_tensor *x, const float *w,
                   const float *b, float *scratch, int nthreads)
{
    /* x: (N, I), out: (N, O) over the leading dims; w: (O,I); b: (O,);
     * scratch wt: (I,O) = w^T */
    const int64_t I = x->dim[x->rank - 1], O = out->dim[out->rank - 1];
    const int64_t N = O > 0 ? engine_numel(out) / O : 0;
    float *wt = scratch;
    for (int64_t o = 0; o < O; o++)
        for (int64_t i = 0; i < I; i++)
            wt[i * O + o] = w[o * I + i];
    const float *xd = x->data;
    float *od = out->data;
    PARALLEL_FOR(blk, (N + 3) / 4, {
        const int64_t n = blk * 4;
        if (N - n >= 4)
            linear_rows4(od + n * O, xd + n * I, wt, b, I, O);
        else
            for (int64_t r = n; r < N; r++)
                linear_row(od + r * O, xd + r * I, wt, b, I, O);
    });
}

void engine_linear_ref(engine_tensor *out, const engine_tensor *x,
                       const float *w, const float *b)
{
    /* x: (N, I), out: (N, O); w: (O,I); b: (O,) or NULL */
    const int64_t I = x->dim[x->rank - 1], O = out->dim[out->rank - 1];
    const int64_t N = O > 0 ? engine_numel(out) / O : 0;
    for (int64_t n = 0; n < N; n++)
        for (int64_t o = 0; o < O; o++) {
            float s = 0.0f;
            for (int64_t i = 0; i < I; i++)
                s += x->data[n * I + i] * w[o * I + i];
            out->data[n * O + o] = b ? s + b[o] : s;
        }
}

void engine_relu(float *x, int64_t n)
{
    /* x: (n,), in place; torch's relu is clamp_min(x, 0): NaN stays */
    for (int64_t i = 0; i < n; i++)
        x[i] = x[i] > 0.0f ? x[i] : (x[i] != x[i] ? x[i] : 0.0f);
}

void engine_add(float *x, const float *y, int64_t n)
{
    /* x, y: (n,) */
    for (int64_t i = 0; i < n; i++)
        x[i] += y[i];
}

void engine_embed(engine_tensor *out, const int64_t *idx, int64_t ld,
                  const float *tok, const float *pos, int nthreads)
{
    /* out: (B,T,C); idx: (B,T) with row stride ld; tok: (V,C);
     * pos: (>=T,C) */
    const int64_t B = out->dim[0], T = out->dim[1], C = out->dim[2];
    float *od = out->data;
    PARALLEL_FOR(b, B, {
        for (int64_t t = 0; t < T; t++) {
            const float *te = tok + idx[b * ld + t] * C, *pe = pos + t * C;
            float *o = od + (b * T + t) * C;
            for (int64_t c = 0; c < C; c++)
                o[c] = te[c] + pe[c];
        }
    });
}

/* ==== Block ==== */

int64_t engine_block_numel(int64_t C, int64_t H)
{
    const int64_t D = H * (C / H);
    return 3 * D * C + C * D + C + 4 * C * C + 4 * C + C * 4 * C + C + 4 * C;
}

void engine_block_layout(engine_block_weights *w, float *buf, int64_t C,
                         int64_t H)
{
    /* state_dict order: sa.heads (key, query, value each), sa.proj,
     * ffwd.net.0, ffwd.net.2, ln1, ln2.  The heads' weights are
     * interleaved per head in the state_dict (heads.0.key, heads.0.query,
     * ...) but kept here as three (H,hs,C) arrays; only the order of the
     * slices differs, never their contents. */
    const int64_t D = H * (C / H);
    float *p = buf;
    w->wk = p, p += D * C;
    w->wq = p, p += D * C;
    w->wv = p, p += D * C;
    w->proj_w = p, p += C * D;
    w->proj_b = p, p += C;
    w->fc1_w = p, p += 4 * C * C;
    w->fc1_b = p, p += 4 * C;
    w->fc2_w = p, p += C * 4 * C;
    w->fc2_b = p, p += C;
    w->ln1_w = p, p += C;
    w->ln1_b = p, p += C;
    w->ln2_w = p, p += C;
    w->ln2_b = p;
}

static void fill(float *p, int64_t n, float v)
{
    for (int64_t i = 0; i < n; i++)
        p[i] = v;
}

void engine_block_init(engine_rng *g, const engine_block_weights *w,
                       int64_t C, int64_t H)
{
    /* Block.__init__: MultiHeadAttention(H, hs) builds Head 0..H-1, each
     * Linear(C, hs, bias=False) key, query, value in that order, then
     * proj = Linear(H*hs, C); FeedFoward: Linear(C, 4C), Linear(4C, C);
     * then ln1, ln2 (no draws). */
    const int64_t hs = C / H, D = H * hs;
    for (int64_t h = 0; h < H; h++) {
        engine_linear_init(g, w->wk + h * hs * C, NULL, hs, C);
        engine_linear_init(g, w->wq + h * hs * C, NULL, hs, C);
        engine_linear_init(g, w->wv + h * hs * C, NULL, hs, C);
    }
    engine_linear_init(g, w->proj_w, w->proj_b, C, D);
    engine_linear_init(g, w->fc1_w, w->fc1_b, 4 * C, C);
    engine_linear_init(g, w->fc2_w, w->fc2_b, C, 4 * C);
    fill(w->ln1_w, C, 1.0f), fill(w->ln1_b, C, 0.0f);
    fill(w->ln2_w, C, 1.0f), fill(w->ln2_b, C, 0.0f);
}

/* Scratch of one Block: the intermediates the caller did not ask for
 * that the Block itself needs (ln1, attn, resid, ln2, hidden),
 * engine_attend's scratch (either path) and one transposed weight. */
int64_t engine_block_scratch(int64_t B, int64_t T, int64_t C, int64_t H,
                             int nthreads)
{
    const int64_t hs = C / H, D = H * hs;
    const int64_t acts = 4 * B * T * C + B * T * 4 * C;
    const int64_t wt = 4 * C * C > C * D ? 4 * C * C : C * D;
    const int64_t a1 = engine_attend_scratch(B, T, T, C, H, hs, 1, nthreads);
    const int64_t a0 = engine_attend_scratch(B, T, T, C, H, hs, 0, nthreads);
    return acts + (a1 > a0 ? a1 : a0) + wt;
}

void engine_block(float *out, const engine_block_trace *tr, const float *x,
                  const engine_block_weights *w, int64_t B, int64_t T,
                  int64_t C, int64_t H, float *scratch, int nthreads)
{
    /* x, out: (B,T,C); intermediates as engine_block_trace says */
    static const engine_block_trace none;
    if (!tr)
        tr = &none;
    const int64_t hs = C / H, D = H * hs, BTC = B * T * C;
    float *p = scratch;
#define TAKE(field, n) (tr->field ? tr->field : (p += (n)) - (n))
    float *ln1 = TAKE(ln1, BTC), *attn = TAKE(attn, BTC);
    float *resid = TAKE(resid, BTC), *ln2 = TAKE(ln2, BTC);
    float *hidden = TAKE(hidden, 4 * BTC);
#undef TAKE
    const int64_t a1 = engine_attend_scratch(B, T, T, C, H, hs, 1, nthreads);
    const int64_t a0 = engine_attend_scratch(B, T, T, C, H, hs, 0, nthreads);
    float *att_scratch = p, *wt = p + (a1 > a0 ? a1 : a0);

    /* x + sa(ln1(x)): the lecture's MultiHeadAttention with proj is
     * engine_attend with wo/bo; what the caller did not ask for is NULL,
     * so without scores and weights no T x T matrix is ever held (the
     * streaming path). */
    engine_tensor xt = tensor3((float *)x, B, T, C);
    engine_tensor ln1t = tensor3(ln1, B, T, C);
    engine_layernorm(&ln1t, &xt, w->ln1_w, w->ln1_b, 1e-5f, nthreads);
    engine_tensor qt = tensor4(tr->q, B, H, T, hs);
    engine_tensor kt = tensor4(tr->k, B, H, T, hs);
    engine_tensor vt = tensor4(tr->v, B, H, T, hs);
    engine_tensor st = tensor4(tr->scores, B, H, T, T);
    engine_tensor wet = tensor4(tr->weights, B, H, T, T);
    engine_tensor ht = tensor3(tr->heads, B, T, D), at = tensor3(attn, B, T, C);
    engine_tensor wq = tensor3(w->wq, H, hs, C), wk = tensor3(w->wk, H, hs, C);
    engine_tensor wv = tensor3(w->wv, H, hs, C);
    engine_tensor wo = {w->proj_w, 2, {C, D, 0, 0}};
    engine_tensor bo = {w->proj_b, 1, {C, 0, 0, 0}};
    /* Head.forward: q @ k^T * k.shape[-1]**-0.5 -- a Python double that
     * torch multiplies a float32 tensor by as a float. */
    const engine_attention_args args = {1, (float)pow((double)hs, -0.5),
                                        NULL, NULL};
    engine_attend(tr->q ? &qt : NULL, tr->k ? &kt : NULL, tr->v ? &vt : NULL,
                  tr->scores ? &st : NULL, tr->weights ? &wet : NULL,
                  tr->heads ? &ht : NULL, &at, &ln1t, NULL, &wq, &wk, &wv, &wo,
                  &bo, &args, att_scratch, nthreads);
    memcpy(resid, x, (size_t)BTC * sizeof *resid);
    engine_add(resid, attn, BTC);

    /* resid + ffwd(ln2(resid)) */
    engine_tensor rt = tensor3(resid, B, T, C), ln2t = tensor3(ln2, B, T, C);
    engine_layernorm(&ln2t, &rt, w->ln2_w, w->ln2_b, 1e-5f, nthreads);
    engine_tensor hid = tensor3(hidden, B, T, 4 * C);
    engine_linear(&hid, &ln2t, w->fc1_w, w->fc1_b, wt, nthreads);
    engine_relu(hidden, 4 * BTC);
    engine_tensor ot = tensor3(out, B, T, C);
    engine_linear(&ot, &hid, w->fc2_w, w->fc2_b, wt, nthreads);
    engine_add(out, resid, BTC);
}

/* ==== GPTLanguageModel ==== */

int64_t engine_gpt_numel(const engine_gpt_config *c)
{
    const int64_t V = c->vocab_size, C = c->n_embd;
    return V * C + c->block_size * C + c->n_layer * engine_block_numel(C, c->n_head)
           + 2 * C + V * C + V;
}

void engine_gpt_layout(engine_gpt_weights *w, engine_block_weights *blocks,
                       float *buf, const engine_gpt_config *cfg)
{
    const int64_t V = cfg->vocab_size, C = cfg->n_embd, H = cfg->n_head;
    float *p = buf;
    w->cfg = *cfg;
    w->tok = p, p += V * C;
    w->pos = p, p += cfg->block_size * C;
    w->blocks = blocks;
    for (int64_t l = 0; l < cfg->n_layer; l++) {
        engine_block_layout(&blocks[l], p, C, H);
        p += engine_block_numel(C, H);
    }
    w->lnf_w = p, p += C;
    w->lnf_b = p, p += C;
    w->head_w = p, p += V * C;
    w->head_b = p;
}

/* _init_weights on a Linear: normal_(weight, 0, 0.02), zeros_(bias). */
static void init_linear(engine_rng *g, float *wgt, float *bias, int64_t n,
                        int64_t nb)
{
    engine_normal(g, wgt, n, 0.0, 0.02);
    if (bias)
        fill(bias, nb, 0.0f);
}

void engine_gpt_init(engine_rng *g, const engine_gpt_weights *w)
{
    const engine_gpt_config *c = &w->cfg;
    const int64_t V = c->vocab_size, C = c->n_embd, H = c->n_head;
    const int64_t hs = C / H, D = H * hs;

    /* __init__: nn.Embedding's reset_parameters is normal_(0, 1). */
    engine_normal(g, w->tok, V * C, 0.0, 1.0);
    engine_normal(g, w->pos, c->block_size * C, 0.0, 1.0);
    for (int64_t l = 0; l < c->n_layer; l++)
        engine_block_init(g, &w->blocks[l], C, H);
    fill(w->lnf_w, C, 1.0f), fill(w->lnf_b, C, 0.0f);
    engine_linear_init(g, w->head_w, w->head_b, V, C);

    /* self.apply(self._init_weights): Module.apply visits children (in
     * registration order, recursively) before the module itself, and only
     * Linear and Embedding draw.  Per Block: heads' key, query, value,
     * proj, ffwd.net.0, ffwd.net.2 (ln1, ln2 are LayerNorms). */
    engine_normal(g, w->tok, V * C, 0.0, 0.02);
    engine_normal(g, w->pos, c->block_size * C, 0.0, 0.02);
    for (int64_t l = 0; l < c->n_layer; l++) {
        const engine_block_weights *b = &w->blocks[l];
        for (int64_t h = 0; h < H; h++) {
            init_linear(g, b->wk + h * hs * C, NULL, hs * C, 0);
            init_linear(g, b->wq + h * hs * C, NULL, hs * C, 0);
            init_linear(g, b->wv + h * hs * C, NULL, hs * C, 0);
        }
        init_linear(g, b->proj_w, b->proj_b, C * D, C);
        init_linear(g, b->fc1_w, b->fc1_b, 4 * C * C, 4 * C);
        init_linear(g, b->fc2_w, b->fc2_b, 4 * C * C, C);
    }
    init_linear(g, w->head_w, w->head_b, V * C, V);
}

int64_t engine_gpt_scratch(const engine_gpt_config *cfg, int64_t B, int64_t T,
                           int nthreads)
{
    const int64_t V = cfg->vocab_size, C = cfg->n_embd, H = cfg->n_head;
    /* x and the next x (B,T,C), one layer's weights (B,H,T,T), ln_f's
     * output (B,T,C), lm_head's transposed weight (C,V), the Block's. */
    return 3 * B * T * C + B * H * T * T + C * V
           + engine_block_scratch(B, T, C, H, nthreads);
}

void engine_gpt_forward(const engine_gpt_out *o, const int64_t *idx,
                        int64_t ld, int64_t B, int64_t T,
                        const engine_gpt_weights *w, float *scratch,
                        int nthreads)
{
    /* idx: (B,T); outputs as engine_gpt_out says */
    const engine_gpt_config *c = &w->cfg;
    const int64_t V = c->vocab_size, C = c->n_embd, H = c->n_head;
    const int64_t NL = c->n_layer, TC = T * C;
    float *x = scratch, *y = x + B * TC, *we = y + B * TC;
    float *lnf = we + B * H * T * T, *wt = lnf + B * TC;
    float *bscratch = wt + C * V;

    engine_tensor xt = tensor3(x, B, T, C);
    engine_embed(&xt, idx, ld, w->tok, w->pos, nthreads);
    for (int64_t l = 0; l <= NL; l++) {
        if (o->hidden)
            for (int64_t b = 0; b < B; b++)
                memcpy(o->hidden + (b * (NL + 1) + l) * TC, x + b * TC,
                       (size_t)TC * sizeof *x);
        if (l == NL)
            break;
        engine_block_trace tr = {0};
        tr.weights = o->weights ? we : NULL;
        engine_block(y, &tr, x, &w->blocks[l], B, T, C, H, bscratch,
                     nthreads);
        if (o->weights)
            for (int64_t b = 0; b < B; b++)
                memcpy(o->weights + (b * NL + l) * H * T * T,
                       we + b * H * T * T, (size_t)(H * T * T) * sizeof *we);
        float *t = x;
        x = y, y = t;
    }

    /* ln_f and lm_head: every position, or the last one of each row. */
    if (!o->logits && !o->probs)
        return;
    float *lastlog;   /* (B,V) rows of the last position's logits */
    if (o->logits && !o->last_only) {
        engine_tensor in = tensor3(x, B, T, C), lt = tensor3(lnf, B, T, C);
        engine_layernorm(&lt, &in, w->lnf_w, w->lnf_b, 1e-5f, nthreads);
        engine_tensor lg = tensor3(o->logits, B, T, V);
        engine_linear(&lg, &lt, w->head_w, w->head_b, wt, nthreads);
        if (!o->probs)
            return;
        for (int64_t b = 0; b < B; b++)
            memcpy(o->probs + b * V, o->logits + (b * T + T - 1) * V,
                   (size_t)V * sizeof *o->probs);
        lastlog = o->probs;
    } else {
        for (int64_t b = 0; b < B; b++)
            memcpy(lnf + b * C, x + (b * T + T - 1) * C, (size_t)C * sizeof *x);
        engine_tensor in = tensor3(lnf, B, 1, C);
        engine_layernorm(&in, &in, w->lnf_w, w->lnf_b, 1e-5f, nthreads);
        lastlog = o->logits ? o->logits : o->probs;
        engine_tensor lg = tensor3(lastlog, B, 1, V);
        engine_linear(&lg, &in, w->head_w, w->head_b, wt, nthreads);
    }
    if (o->probs) {
        if (lastlog != o->probs)
            memcpy(o->probs, lastlog, (size_t)(B * V) * sizeof *o->probs);
        engine_softmax_rows(o->probs, B, V);
    }
}

/* ==== sampling ==== */

void engine_multinomial1(int64_t *out, int64_t ld, const float *probs,
                         float *q, int64_t B, int64_t V, engine_rng *g)
{
    /* probs, q: (B,V); out: (B,) at stride ld */
    engine_exponential(g, q, B * V, 1.0);
    for (int64_t b = 0; b < B; b++) {
        const float *p = probs + b * V, *qb = q + b * V;
        int64_t best = 0;
        float bv = p[0] / qb[0];
        /* argmax: the first maximum; a NaN is the maximum (torch's) */
        for (int64_t i = 1; i < V && bv == bv; i++) {
            const float r = p[i] / qb[i];
            if (r > bv || r != r)
                best = i, bv = r;
        }
        out[b * ld] = best;
    }
}

int64_t engine_gpt_generate_scratch(const engine_gpt_config *cfg, int64_t B,
                                    int nthreads)
{
    /* the forward on block_size tokens, probs and q (B,V) */
    return engine_gpt_scratch(cfg, B, cfg->block_size, nthreads)
           + 2 * B * cfg->vocab_size;
}

int engine_gpt_generate(int64_t *out, const int64_t *idx, int64_t B,
                        int64_t T0, int64_t N, const engine_gpt_weights *w,
                        engine_rng *g, float *scratch, int nthreads,
                        const volatile int *cancel)
{
    /* idx: (B,T0); out: (B,T0+N) */
    const int64_t V = w->cfg.vocab_size, bs = w->cfg.block_size;
    const int64_t TT = T0 + N;
    float *probs = scratch, *q = probs + B * V, *fs = q + B * V;
    for (int64_t b = 0; b < B; b++)
        memcpy(out + b * TT, idx + b * T0, (size_t)T0 * sizeof *idx);
    for (int64_t T = T0; T < TT; T++) {
        if (cancel && *cancel)
            return 1;
        /* idx_cond = idx[:, -block_size:] */
        const int64_t Tc = T < bs ? T : bs;
        const engine_gpt_out o = {NULL, probs, NULL, NULL, 1};
        engine_gpt_forward(&o, out + (T - Tc), TT, B, Tc, w, fs, nthreads);
        engine_multinomial1(out + T, TT, probs, q, B, V, g);
    }
    return 0;
}

/* ==== parameters by name ==== */

static int64_t put(engine_param *out, int64_t max, int64_t n, const char *pre,
                   const char *name, float *data, int64_t d0, int64_t d1)
{
    if (out && n < max) {
        engine_param *e = &out[n];
        snprintf(e->name, sizeof e->name, "%s%s", pre, name);
        e->data = data;
        e->rank = d1 ? 2 : 1;
        e->dim[0] = d0;
        e->dim[1] = d1;
    }
    return n + 1;
}

int64_t engine_block_params(engine_param *out, int64_t max, const char *prefix,
                            const engine_block_weights *w, int64_t C,
                            int64_t H)
{
    const int64_t hs = C / H, D = H * hs;
    int64_t n = 0;
    char nm[64];
    for (int64_t h = 0; h < H; h++) {
        snprintf(nm, sizeof nm, "sa.heads.%lld.key.weight", (long long)h);
        n = put(out, max, n, prefix, nm, w->wk + h * hs * C, hs, C);
        snprintf(nm, sizeof nm, "sa.heads.%lld.query.weight", (long long)h);
        n = put(out, max, n, prefix, nm, w->wq + h * hs * C, hs, C);
        snprintf(nm, sizeof nm, "sa.heads.%lld.value.weight", (long long)h);
        n = put(out, max, n, prefix, nm, w->wv + h * hs * C, hs, C);
    }
    n = put(out, max, n, prefix, "sa.proj.weight", w->proj_w, C, D);
    n = put(out, max, n, prefix, "sa.proj.bias", w->proj_b, C, 0);
    n = put(out, max, n, prefix, "ffwd.net.0.weight", w->fc1_w, 4 * C, C);
    n = put(out, max, n, prefix, "ffwd.net.0.bias", w->fc1_b, 4 * C, 0);
    n = put(out, max, n, prefix, "ffwd.net.2.weight", w->fc2_w, C, 4 * C);
    n = put(out, max, n, prefix, "ffwd.net.2.bias", w->fc2_b, C, 0);
    n = put(out, max, n, prefix, "ln1.weight", w->ln1_w, C, 0);
    n = put(out, max, n, prefix, "ln1.bias", w->ln1_b, C, 0);
    n = put(out, max, n, prefix, "ln2.weight", w->ln2_w, C, 0);
    n = put(out, max, n, prefix, "ln2.bias", w->ln2_b, C, 0);
    return n;
}

int64_t engine_gpt_params(engine_param *out, int64_t max,
                          const engine_gpt_weights *w)
{
    const engine_gpt_config *c = &w->cfg;
    const int64_t V = c->vocab_size, C = c->n_embd;
    int64_t n = 0;
    n = put(out, max, n, "", "token_embedding_table.weight", w->tok, V, C);
    n = put(out, max, n, "", "position_embedding_table.weight", w->pos,
            c->block_size, C);
    for (int64_t l = 0; l < c->n_layer; l++) {
        char pre[32];
        snprintf(pre, sizeof pre, "blocks.%lld.", (long long)l);
        n += engine_block_params(out && n < max ? out + n : NULL,
                                 max - n, pre, &w->blocks[l], C, c->n_head);
    }
    n = put(out, max, n, "", "ln_f.weight", w->lnf_w, C, 0);
    n = put(out, max, n, "", "ln_f.bias", w->lnf_b, C, 0);
    n = put(out, max, n, "", "lm_head.weight", w->head_w, V, C);
    n = put(out, max, n, "", "lm_head.bias", w->head_b, V, 0);
    return n;
}
