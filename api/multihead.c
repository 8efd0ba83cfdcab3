/* multihead.c -- POST /multihead: the lecture's MultiHeadAttention, H heads
 * of head_size side by side, concatenated, then proj = nn.Linear(H*hs, C);
 * self- or cross-attention (context), causal or masked. */
#include "internal.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The tensors a request may ask for: the computed ones, then the inputs
 * (useful when a seed generated them). */
enum { R_OUT, R_WEIGHTS, R_HEADS, R_Q, R_K, R_V, R_SCORES, R_X, R_WQ, R_WK,
       R_WV, R_WO, R_BO, R_COUNT };
#define R_COMPUTED R_X
static const char *const return_names[R_COUNT] = {
    "out", "weights", "heads", "q", "k", "v", "scores", "x", "wq", "wk", "wv",
    "wo", "bo"};
#define RETURN_LIST "out, weights, heads, q, k, v, scores, x, wq, wk, wv, wo, bo"

typedef struct mh_request {
    int causal;
    const api_cross *cross;
    int average;            /* average_weights */
    float scale;
    int order[R_COUNT];     /* requested outputs, in request order */
    int norder;
} mh_request;

static const api_outputs outputs = {return_names, R_COUNT, RETURN_LIST,
                                     {R_OUT, R_WEIGHTS}, 2};

/* The explicit ones of wq, wk, wv (given[i]) must each be (H, hs, C): the
 * first one given sets H and hs unless num_heads / head_size did. */
static int check_weight_shapes(const engine_tensor *w, const int *given,
                               int64_t C, int64_t *H, int64_t *hs,
                               int h_given, int hs_given, api_error *e)
{
    static const char *const names[3] = {"wq", "wk", "wv"};
    for (int i = 0; i < 3; i++) {
        if (!given[i])
            continue;
        if (w[i].dim[2] != C) {
            api_fail(e, 422, "shape_mismatch", names[i],
                     "%s is %lld x %lld x %lld but must be num_heads x "
                     "head_size x C with C = %lld (the last dimension of x): "
                     "head h's nn.Linear.weight at [h]", names[i],
                     (long long)w[i].dim[0], (long long)w[i].dim[1],
                     (long long)w[i].dim[2], (long long)C);
            return 0;
        }
        if (!h_given) {
            *H = w[i].dim[0];
            h_given = 1;
        }
        if (!hs_given) {
            *hs = w[i].dim[1];
            hs_given = 1;
        }
        if (w[i].dim[0] != *H || w[i].dim[1] != *hs) {
            api_fail(e, 422, "shape_mismatch", names[i],
                     "%s is %lld x %lld x %lld but must be num_heads x "
                     "head_size x C = %lld x %lld x %lld (wq, wk and wv "
                     "have the same shape)", names[i],
                     (long long)w[i].dim[0], (long long)w[i].dim[1],
                     (long long)w[i].dim[2], (long long)*H, (long long)*hs,
                     (long long)C);
            return 0;
        }
    }
    return 1;
}

/* The first requested output holding inf/NaN where a number belongs, or
 * -1.  Masked scores (causal or mask) are -inf by design and skipped. */
static int first_non_finite(const engine_tensor *outs, const mh_request *rq)
{
    for (int o = 0; o < rq->norder; o++) {
        const int r = rq->order[o];
        if (r >= R_COMPUTED)
            continue;           /* inputs were checked on the way in */
        const engine_tensor *t = &outs[r];
        const int64_t n = engine_numel(t);
        for (int64_t i = 0; i < n; i++) {
            if (isfinite(t->data[i]))
                continue;
            if (r == R_SCORES && t->data[i] == -INFINITY) {
                /* scores: (B,H,T,S) */
                const int64_t H = t->dim[1], T = t->dim[2], S = t->dim[3];
                if (api_cross_hidden(rq->cross, rq->causal, i / (H * T * S),
                                     i / S % T, i % S))
                    continue;
            }
            return r;
        }
    }
    return -1;
}

void api_multihead(const char *body, size_t len, api_response *res)
{
    static const char *const fields[] = {
        "x", "wq", "wk", "wv", "wo", "bo", "context", "mask", "causal",
        "scale", "return", "average_weights", "seed", "shape", "num_heads",
        "head_size", "format", NULL};
    static const char *const wnames[3] = {"wq", "wk", "wv"};
    jw_format format;
    api_error e = {0};
    mh_request r;
    api_seed seed;
    api_cross cross = {0};
    engine_tensor x = {0}, w[3] = {{0}}, wo = {0}, bo = {0}, t[R_COUNT];
    const json_t *jx, *jw[3], *jwo, *jbo, *jshape, *jnh, *jhs;
    int given[3];
    int64_t sdim[3], H = 0, hs = 0, S;
    int srank;
    float *block = NULL;

    static const char *const tensors[] = {"x", "wq", "wk", "wv", "wo", "bo",
                                          "context", NULL};
    api_body b;
    if (!api_body_parse(&b, body, len, tensors, &e))
        goto fail;
    const json_t *root = b.root;
    if (!codec_known_fields(root, fields, &e) ||
        !api_read_seed(root, &seed, &e))
        goto fail;
    jx = json_object_get(root, "x");
    jwo = json_object_get(root, "wo");
    jbo = json_object_get(root, "bo");
    jshape = json_object_get(root, "shape");
    jnh = json_object_get(root, "num_heads");
    jhs = json_object_get(root, "head_size");
    for (int i = 0; i < 3; i++) {
        jw[i] = json_object_get(root, wnames[i]);
        given[i] = jw[i] != NULL;
    }
    const int any_w = given[0] || given[1] || given[2];
    if (!seed.present) {
        if (!codec_required(root, "x", &e) || !codec_required(root, "wq", &e) ||
            !codec_required(root, "wk", &e) || !codec_required(root, "wv", &e) ||
            !codec_required(root, "wo", &e) || !codec_required(root, "bo", &e))
            goto fail;
        if (jshape || jnh || jhs) {
            const char *f = jshape ? "shape" : jnh ? "num_heads" : "head_size";
            api_fail(&e, 422, "invalid_value", f,
                     "%s only applies with a seed (it sizes generated "
                     "tensors); add \"seed\" or drop \"%s\"", f, f);
            goto fail;
        }
    } else {
        if (!jx && !jshape) {
            api_fail(&e, 422, "missing_field", "shape",
                     "with a seed and no x, shape [B, T, C] is required");
            goto fail;
        }
        if (!jnh && !any_w) {
            api_fail(&e, 422, "missing_field", "num_heads",
                     "with a seed and no wq, wk or wv, num_heads is required");
            goto fail;
        }
        if (!jhs && !any_w) {
            api_fail(&e, 422, "missing_field", "head_size",
                     "with a seed and no wq, wk or wv, head_size is required");
            goto fail;
        }
    }
    if (!api_read_causal(root, &r.causal, &e) ||
        !api_read_bool(root, "average_weights", 0, &r.average, &e) ||
        !api_read_scale(root, &r.scale, &e) ||
        !api_read_return(root, &outputs, r.order, &r.norder, &e) ||
        !api_read_format(root, &format, &e))
        goto fail;
    if (jshape && !api_read_shape(jshape, "shape", 3, 3, 1, sdim, &srank, &e))
        goto fail;
    if (jnh && !api_read_count(jnh, "num_heads", &H, &e))
        goto fail;
    if (jhs && !api_read_count(jhs, "head_size", &hs, &e))
        goto fail;
    if (jnh && !api_check_heads(H, "num_heads", &e))
        goto fail;
    if (jx && !api_body_tensor(&b, "x", 3, &x, &e))
        goto fail;
    for (int i = 0; i < 3; i++)
        if (given[i] && !api_body_tensor(&b, wnames[i], 3, &w[i], &e))
            goto fail;
    if (jwo && !api_body_tensor(&b, "wo", 2, &wo, &e))
        goto fail;
    if (jbo && !api_body_tensor(&b, "bo", 1, &bo, &e))
        goto fail;
    if (!api_cross_read(&b, &cross, &e))
        goto fail;
    r.cross = &cross;
    if (jx && jshape &&
        (x.dim[0] != sdim[0] || x.dim[1] != sdim[1] || x.dim[2] != sdim[2])) {
        api_fail(&e, 422, "shape_mismatch", "shape",
                 "shape is [%lld, %lld, %lld] but x is %lld x %lld x %lld",
                 (long long)sdim[0], (long long)sdim[1], (long long)sdim[2],
                 (long long)x.dim[0], (long long)x.dim[1], (long long)x.dim[2]);
        goto fail;
    }
    if (!jx)
        x = (engine_tensor){NULL, 3, {sdim[0], sdim[1], sdim[2]}};
    const int64_t B = x.dim[0], T = x.dim[1], C = x.dim[2];
    if (!check_weight_shapes(w, given, C, &H, &hs, jnh != NULL, jhs != NULL,
                             &e))
        goto fail;
    const char *wpath = given[0] ? "wq" : given[1] ? "wk" : "wv";
    const char *npath = jnh ? "num_heads" : wpath;
    const char *hpath = jhs ? "head_size" : wpath;
    if (!jnh && !api_check_heads(H, npath, &e))
        goto fail;
    const int64_t D = H * hs;
    if (jwo && (wo.dim[0] != C || wo.dim[1] != D)) {
        api_fail(&e, 422, "shape_mismatch", "wo",
                 "wo is %lld x %lld but must be C x (num_heads*head_size) = "
                 "%lld x %lld: proj's nn.Linear.weight", (long long)wo.dim[0],
                 (long long)wo.dim[1], (long long)C, (long long)D);
        goto fail;
    }
    if (jbo && bo.dim[0] != C) {
        api_fail(&e, 422, "shape_mismatch", "bo",
                 "bo has %lld element%s but must have C = %lld: proj's "
                 "nn.Linear.bias", (long long)bo.dim[0],
                 bo.dim[0] == 1 ? "" : "s", (long long)C);
        goto fail;
    }
    if (!api_cross_check(&cross, B, T, C, &S, &e))
        goto fail;
    if (!api_check_dims(B, T, hs, jx ? "x" : "shape[0]", jx ? "x" : "shape[1]",
                        hpath, &e) ||
        !api_check_size(D * C,
                        "wq, wk and wv (num_heads x head_size x C) and wo",
                        hpath, &e) ||
        !api_check_size(B * T * D, cross.has_ctx ?
                        "q and heads (B x T x num_heads x head_size)" :
                        "q, k, v and heads (B x T x num_heads x head_size)",
                        hpath, &e) ||
        !api_check_size(B * S * D, "k and v (B x S x num_heads x "
                        "head_size)", hpath, &e) ||
        !api_check_size(B * T * S, cross.has_ctx ?
                        "scores and weights (B x T x S)" :
                        "scores and weights (B x T x T)",
                        cross.has_ctx ? "context" : jx ? "x" : "shape", &e) ||
        !api_check_size(B * H * T * S, cross.has_ctx ?
                        "scores and weights (B x num_heads x T x S)" :
                        "scores and weights (B x num_heads x T x T)", npath,
                        &e))
        goto fail;

    if (isnan(r.scale))         /* scale: true -> head_size**-0.5 */
        r.scale = (float)pow((double)hs, -0.5);

    /* One allocation for every tensor of the request.  Each count is under
     * max_elements, so the sum cannot overflow. */
    const int64_t nx = B * T * C, nw = D * C, nh = B * T * D,
                  nk = B * S * D, ns = B * H * T * S,
                  navg = r.average ? B * T * S : 0;
    const int64_t ncross = api_cross_floats(&cross);
    const int64_t nscratch = engine_multihead_scratch(
        &x, cross.has_ctx ? &cross.ctx : NULL, H, hs);
    const int64_t total = 2 * nx + ncross + 4 * nw + C + 2 * nh + 2 * nk +
                          2 * ns + navg + nscratch;
    if (!api_check_total(total, &e))
        goto fail;
    block = malloc((size_t)total * sizeof *block);
    if (!block) {
        api_body_free(&b);
        api_oom(res);
        return;
    }
    float *p = block;
    x.data = p;
    p += nx;
    for (int i = 0; i < 3; i++) {
        w[i] = (engine_tensor){p, 3, {H, hs, C}};
        p += nw;
    }
    wo = (engine_tensor){p, 2, {C, D}};
    p += nw;
    bo = (engine_tensor){p, 1, {C}};
    p += C;
    api_cross_fill(&b, &cross, p);
    p += ncross;
    if (seed.present) {
        /* torch.manual_seed(seed); x = torch.randn(B, T, C); then
         * MultiHeadAttention(H, hs): each Head's key, query, value =
         * nn.Linear(C, hs, bias=False), head by head; then proj =
         * nn.Linear(H*hs, C), weight then bias.  Every draw happens even
         * for tensors given explicitly.  context is never generated. */
        engine_rng g;
        engine_rng_seed(&g, seed.value);
        engine_randn(&g, x.data, nx);
        for (int64_t h = 0; h < H; h++) {
            engine_linear_init(&g, w[1].data + h * hs * C, NULL, hs, C);
            engine_linear_init(&g, w[0].data + h * hs * C, NULL, hs, C);
            engine_linear_init(&g, w[2].data + h * hs * C, NULL, hs, C);
        }
        engine_linear_init(&g, wo.data, bo.data, C, D);
    }
    if (jx)
        api_body_fill(&b, "x", &x);
    for (int i = 0; i < 3; i++)
        if (given[i])
            api_body_fill(&b, wnames[i], &w[i]);
    if (jwo)
        api_body_fill(&b, "wo", &wo);
    if (jbo)
        api_body_fill(&b, "bo", &bo);
    api_body_free(&b);          /* the tree can be far bigger than the floats */
    for (int i = R_Q; i <= R_V; i++) {
        const int64_t rows = i == R_Q ? T : S;
        t[i] = (engine_tensor){p, 4, {B, H, rows, hs}};
        p += B * H * rows * hs;
    }
    t[R_SCORES] = (engine_tensor){p, 4, {B, H, T, S}};
    p += ns;
    engine_tensor wei = {p, 4, {B, H, T, S}};
    p += ns;
    t[R_HEADS] = (engine_tensor){p, 3, {B, T, D}};
    p += nh;
    t[R_OUT] = (engine_tensor){p, 3, {B, T, C}};
    p += nx;
    t[R_WEIGHTS] = wei;
    if (r.average) {
        t[R_WEIGHTS] = (engine_tensor){p, 3, {B, T, S}};
        p += navg;
    }
    t[R_X] = x;
    t[R_WQ] = w[0];
    t[R_WK] = w[1];
    t[R_WV] = w[2];
    t[R_WO] = wo;
    t[R_BO] = bo;

    engine_attention_args args = {r.causal, r.scale,
                                  cross.has_mask ? &cross.mask : NULL};
    api_compute_begin();
    const int nthreads = api_threads_for(
        (double)B * (C * D * (2.0 * T + 2.0 * S) + 2.0 * T * S * D));
    engine_multihead(&t[R_Q], &t[R_K], &t[R_V], &t[R_SCORES], &wei,
                     &t[R_HEADS], &t[R_OUT], &x,
                     cross.has_ctx ? &cross.ctx : NULL, &w[0], &w[1], &w[2],
                     &wo, &bo, &args, p, nthreads);
    if (r.average) {
        /* nn.MultiheadAttention's average_attn_weights: mean over heads */
        float *avg = t[R_WEIGHTS].data;
        for (int64_t bb = 0; bb < B; bb++)
            for (int64_t i = 0; i < T * S; i++) {
                float sum = 0.0f;
                for (int64_t h = 0; h < H; h++)
                    sum += wei.data[(bb * H + h) * T * S + i];
                avg[bb * T * S + i] = sum / (float)H;
            }
    }
    api_compute_end();

    int bad = first_non_finite(t, &r);
    if (bad >= 0) {
        api_fail(&e, 422, "non_finite_result", return_names[bad],
                 "%s overflowed float32 (inf or NaN); the inputs or the "
                 "scale are too large in magnitude", return_names[bad]);
        goto fail;
    }

    api_respond_tensors(res, t, return_names, r.order, r.norder, R_SCORES,
                        format);
    free(block);
    return;

fail:
    api_body_free(&b);
    free(block);
    api_error_response(res, &e);
}
