/* attention.c -- POST /attention: single-head attention, self or cross
 * (context), causal or masked. */
#include "internal.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The tensors a request may ask for: the computed ones, then the inputs
 * (useful when a seed generated them). */
enum { R_Q, R_K, R_V, R_SCORES, R_WEIGHTS, R_OUT, R_X, R_WQ, R_WK, R_WV,
       R_COUNT };
#define R_COMPUTED R_X
static const char *const return_names[R_COUNT] = {
    "q", "k", "v", "scores", "weights", "out", "x", "wq", "wk", "wv"};
#define RETURN_LIST "q, k, v, scores, weights, out, x, wq, wk, wv"

typedef struct attn_request {
    int causal;
    const api_cross *cross;
    float scale;
    int order[R_COUNT];     /* requested outputs, in request order */
    int norder;
} attn_request;

static const api_outputs outputs = {return_names, R_COUNT, RETURN_LIST,
                                     {R_WEIGHTS, R_OUT}, 2};

/* The explicit ones of wq, wk, wv (given[i]) must each be (hs, C): the
 * first one given sets hs unless head_size did, the others must match. */
static int check_weight_shapes(const engine_tensor *w, const int *given,
                               int64_t C, int64_t *hs, int hs_given,
                               api_error *e)
{
    static const char *const names[3] = {"wq", "wk", "wv"};
    int first = -1;
    for (int i = 0; i < 3; i++) {
        if (!given[i])
            continue;
        if (w[i].dim[1] != C) {
            api_fail(e, 422, "shape_mismatch", names[i],
                     "%s is %lld x %lld but must be head_size x C with C = "
                     "%lld (the last dimension of x): nn.Linear.weight "
                     "layout, out_features x in_features", names[i],
                     (long long)w[i].dim[0], (long long)w[i].dim[1],
                     (long long)C);
            return 0;
        }
        if (first < 0 && !hs_given) {
            first = i;
            *hs = w[i].dim[0];
        } else if (w[i].dim[0] != *hs) {
            if (first >= 0)
                api_fail(e, 422, "shape_mismatch", names[i],
                         "%s is %lld x %lld but %s is %lld x %lld; wq, wk "
                         "and wv must have the same shape (head_size x C)",
                         names[i], (long long)w[i].dim[0],
                         (long long)w[i].dim[1], names[first],
                         (long long)w[first].dim[0], (long long)C);
            else
                api_fail(e, 422, "shape_mismatch", names[i],
                         "%s has %lld row%s but head_size is %lld", names[i],
                         (long long)w[i].dim[0], w[i].dim[0] == 1 ? "" : "s",
                         (long long)*hs);
            return 0;
        }
    }
    return 1;
}

/* The first requested output holding inf/NaN where a number belongs, or
 * -1.  Masked scores (causal or mask) are -inf by design and skipped.
 * Only what is returned is checked: an overflow in scores shows in weights
 * if those are asked for, and need not fail a request for q alone. */
static int first_non_finite(const engine_tensor *outs, const attn_request *rq)
{
    for (int o = 0; o < rq->norder; o++) {
        const int r = rq->order[o];
        if (r >= R_COMPUTED)
            continue;           /* inputs were checked on the way in */
        const engine_tensor *t = &outs[r];
        const int64_t n = engine_numel(t);
        const int64_t T = t->dim[1], S = t->dim[2];
        for (int64_t i = 0; i < n; i++) {
            if (isfinite(t->data[i]))
                continue;
            if (r == R_SCORES && t->data[i] == -INFINITY &&
                api_cross_hidden(rq->cross, rq->causal, i / (T * S),
                                 i / S % T, i % S))
                continue;
            return r;
        }
    }
    return -1;
}

void api_attention(const char *body, size_t len, api_response *res)
{
    static const char *const fields[] = {"x", "wq", "wk", "wv", "context",
                                         "mask", "causal", "scale", "return",
                                         "seed", "shape", "head_size",
                                         "format", NULL};
    static const char *const wnames[3] = {"wq", "wk", "wv"};
    jw_format format;
    api_error e = {0};
    attn_request r;
    api_seed seed;
    api_cross cross = {0};
    engine_tensor x = {0}, w[3] = {{0}}, t[R_COUNT];
    const json_t *jx, *jw[3], *jshape, *jhs;
    int given[3];
    int64_t sdim[3], hs = 0, S;
    int srank;
    float *block = NULL;

    static const char *const tensors[] = {"x", "wq", "wk", "wv", "context",
                                          NULL};
    api_body b;
    if (!api_body_parse(&b, body, len, tensors, &e))
        goto fail;
    const json_t *root = b.root;
    if (!codec_known_fields(root, fields, &e) ||
        !api_read_seed(root, &seed, &e))
        goto fail;
    jx = json_object_get(root, "x");
    jshape = json_object_get(root, "shape");
    jhs = json_object_get(root, "head_size");
    for (int i = 0; i < 3; i++) {
        jw[i] = json_object_get(root, wnames[i]);
        given[i] = jw[i] != NULL;
    }
    /* Without a seed every tensor is explicit; with one, whatever is not
     * given is generated, so its size must be given instead. */
    if (!seed.present) {
        if (!codec_required(root, "x", &e) || !codec_required(root, "wq", &e) ||
            !codec_required(root, "wk", &e) || !codec_required(root, "wv", &e))
            goto fail;
        if (jshape || jhs) {
            const char *f = jshape ? "shape" : "head_size";
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
        if (!jhs && !given[0] && !given[1] && !given[2]) {
            api_fail(&e, 422, "missing_field", "head_size",
                     "with a seed and no wq, wk or wv, head_size is required");
            goto fail;
        }
    }
    if (!api_read_causal(root, &r.causal, &e) ||
        !api_read_scale(root, &r.scale, &e) ||
        !api_read_return(root, &outputs, r.order, &r.norder, &e) ||
        !api_read_format(root, &format, &e))
        goto fail;
    if (jshape && !api_read_shape(jshape, "shape", 3, 3, 1, sdim, &srank, &e))
        goto fail;
    if (jhs && !api_read_count(jhs, "head_size", &hs, &e))
        goto fail;
    if (jx && !api_body_tensor(&b, "x", 3, &x, &e))
        goto fail;
    for (int i = 0; i < 3; i++)
        if (given[i] && !api_body_tensor(&b, wnames[i], 2, &w[i], &e))
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
    if (!check_weight_shapes(w, given, C, &hs, jhs != NULL, &e) ||
        !api_cross_check(&cross, B, T, C, &S, &e))
        goto fail;
    const char *hpath = jhs ? "head_size"
                      : given[0] ? "wq" : given[1] ? "wk" : "wv";
    if (!api_check_dims(B, T, hs, jx ? "x" : "shape[0]", jx ? "x" : "shape[1]",
                        hpath, &e) ||
        !api_check_size(hs * C, "wq, wk and wv (head_size x C)", hpath, &e) ||
        !api_check_size(B * T * hs, cross.has_ctx ?
                        "q and out (B x T x head_size)" :
                        "q, k, v and out (B x T x head_size)", hpath, &e) ||
        !api_check_size(B * S * hs, "k and v (B x S x head_size)", hpath,
                        &e) ||
        !api_check_size(B * T * S, cross.has_ctx ?
                        "scores and weights (B x T x S)" :
                        "scores and weights (B x T x T)",
                        cross.has_ctx ? "context" : jx ? "x" : "shape", &e))
        goto fail;

    if (isnan(r.scale))         /* scale: true -> head_size**-0.5 */
        r.scale = (float)pow((double)hs, -0.5);

    /* One allocation for every tensor of the request.  Each count is under
     * max_elements, so the sum cannot overflow. */
    const int64_t nx = B * T * C, nw = hs * C, nh = B * T * hs,
                  nk = B * S * hs, ns = B * T * S;
    const int64_t ncross = api_cross_floats(&cross);
    const int64_t nscratch =
        engine_attention_scratch(&x, cross.has_ctx ? &cross.ctx : NULL, hs);
    const int64_t total = nx + ncross + 3 * nw + 2 * nh + 2 * nk + 2 * ns +
                          nscratch;
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
        w[i] = (engine_tensor){p, 2, {hs, C}};
        p += nw;
    }
    api_cross_fill(&b, &cross, p);
    p += ncross;
    if (seed.present) {
        /* torch.manual_seed(seed); x = torch.randn(B, T, C); then
         * key, query, value = nn.Linear(C, hs, bias=False), in that order.
         * Every draw happens even for tensors given explicitly, so the
         * generated ones keep PyTorch's values.  context is never
         * generated: it is sent or absent, and draws nothing. */
        engine_rng g;
        engine_rng_seed(&g, seed.value);
        engine_randn(&g, x.data, nx);
        engine_linear_init(&g, w[1].data, NULL, hs, C);    /* key */
        engine_linear_init(&g, w[0].data, NULL, hs, C);    /* query */
        engine_linear_init(&g, w[2].data, NULL, hs, C);    /* value */
    }
    if (jx)
        api_body_fill(&b, "x", &x);
    for (int i = 0; i < 3; i++)
        if (given[i])
            api_body_fill(&b, wnames[i], &w[i]);
    api_body_free(&b);          /* the tree can be far bigger than the floats */
    for (int i = 0; i < R_COMPUTED; i++) {
        const int64_t rows = i == R_K || i == R_V ? S : T;
        const int64_t last = i == R_SCORES || i == R_WEIGHTS ? S : hs;
        t[i] = (engine_tensor){p, 3, {B, rows, last}};
        p += B * rows * last;
    }
    t[R_X] = x;
    t[R_WQ] = w[0];
    t[R_WK] = w[1];
    t[R_WV] = w[2];

    engine_attention_args args = {r.causal, r.scale,
                                  cross.has_mask ? &cross.mask : NULL};
    api_compute_begin();
    const int nthreads = api_threads_for(
        (double)B * (C * hs * (T + 2.0 * S) + 2.0 * T * S * hs));
    engine_attention(&t[R_Q], &t[R_K], &t[R_V], &t[R_SCORES], &t[R_WEIGHTS],
                     &t[R_OUT], &x, cross.has_ctx ? &cross.ctx : NULL, &w[0],
                     &w[1], &w[2], &args, p, nthreads);
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
