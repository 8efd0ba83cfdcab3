/* attention.c -- POST /attention: single-head self-attention. */
#include "internal.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The outputs a request may ask for, in the order of the tensors below. */
enum { R_Q, R_K, R_V, R_SCORES, R_WEIGHTS, R_OUT, R_COUNT };
static const char *const return_names[R_COUNT] = {"q", "k", "v", "scores",
                                                  "weights", "out"};

typedef struct attn_request {
    int causal;
    float scale;
    int order[R_COUNT];     /* requested outputs, in request order */
    int norder;
} attn_request;

static int read_bool(const json_t *root, const char *key, int dflt, int *out,
                     api_error *e)
{
    const json_t *v = json_object_get(root, key);
    *out = dflt;
    if (!v)
        return 1;
    if (!json_is_boolean(v)) {
        api_fail(e, 422, "wrong_type", key, "%s must be true or false, not %s",
                 key, codec_type_name(v));
        return 0;
    }
    *out = json_is_true(v);
    return 1;
}

static int read_scale(const json_t *root, attn_request *r, api_error *e)
{
    const json_t *v = json_object_get(root, "scale");
    r->scale = 1.0f;
    if (!v || json_is_true(v)) {
        r->scale = NAN;         /* head_size**-0.5, once hs is known */
        return 1;
    }
    if (json_is_false(v))
        return 1;
    if (!json_is_number(v)) {
        api_fail(e, 422, "wrong_type", "scale",
                 "scale must be true (head_size**-0.5), false (no scaling) "
                 "or a number, not %s", codec_type_name(v));
        return 0;
    }
    double d = json_number_value(v);
    if (!(fabs(d) < FLOAT32_LIMIT)) {
        api_fail(e, 422, "out_of_range", "scale",
                 "scale = %g does not fit in float32", d);
        return 0;
    }
    r->scale = (float)d;
    return 1;
}

static int read_return(const json_t *root, attn_request *r, api_error *e)
{
    const json_t *v = json_object_get(root, "return");
    r->norder = 0;
    if (!v) {
        r->order[r->norder++] = R_WEIGHTS;
        r->order[r->norder++] = R_OUT;
        return 1;
    }
    if (!json_is_array(v)) {
        api_fail(e, 422, "wrong_type", "return",
                 "return must be an array of names from q, k, v, scores, "
                 "weights, out; not %s", codec_type_name(v));
        return 0;
    }
    if (json_array_size(v) == 0) {
        api_fail(e, 422, "invalid_value", "return",
                 "return is empty; name at least one of q, k, v, scores, "
                 "weights, out");
        return 0;
    }
    int seen[R_COUNT] = {0};
    size_t i;
    const json_t *item;
    json_array_foreach(v, i, item) {
        char path[32];
        snprintf(path, sizeof path, "return[%zu]", i);
        if (!json_is_string(item)) {
            api_fail(e, 422, "wrong_type", path,
                     "%s must be a string, not %s", path,
                     codec_type_name(item));
            return 0;
        }
        int found = -1;
        for (int j = 0; j < R_COUNT; j++)
            if (strcmp(json_string_value(item), return_names[j]) == 0)
                found = j;
        if (found < 0) {
            api_fail(e, 422, "unknown_return", path,
                     "%s = \"%.60s\" is not an output; choose from q, k, v, "
                     "scores, weights, out", path, json_string_value(item));
            return 0;
        }
        if (!seen[found]) {
            seen[found] = 1;
            r->order[r->norder++] = found;
        }
    }
    return 1;
}

/* wq, wk, wv: each (hs, C) with C = x's, all three the same shape. */
static int check_weight_shapes(const engine_tensor *x, const engine_tensor *w,
                               api_error *e)
{
    static const char *const names[3] = {"wq", "wk", "wv"};
    const int64_t C = x->dim[2];
    if (w[0].dim[1] != C) {
        api_fail(e, 422, "shape_mismatch", "wq",
                 "wq is %lld x %lld but must be head_size x C with C = %lld "
                 "(x's last dimension): nn.Linear.weight layout, "
                 "out_features x in_features", (long long)w[0].dim[0],
                 (long long)w[0].dim[1], (long long)C);
        return 0;
    }
    for (int i = 1; i < 3; i++)
        if (w[i].dim[0] != w[0].dim[0] || w[i].dim[1] != w[0].dim[1]) {
            api_fail(e, 422, "shape_mismatch", names[i],
                     "%s is %lld x %lld but wq is %lld x %lld; wq, wk and wv "
                     "must have the same shape (head_size x C)", names[i],
                     (long long)w[i].dim[0], (long long)w[i].dim[1],
                     (long long)w[0].dim[0], (long long)w[0].dim[1]);
            return 0;
        }
    return 1;
}

/* The first requested output holding inf/NaN where a number belongs, or
 * -1.  Masked scores are -inf by design and skipped.  Only what is returned
 * is checked: an overflow in scores shows in weights if those are asked
 * for, and need not fail a request for q alone. */
static int first_non_finite(const engine_tensor *outs, const attn_request *rq)
{
    for (int o = 0; o < rq->norder; o++) {
        const int r = rq->order[o];
        const int causal = rq->causal;
        const engine_tensor *t = &outs[r];
        const int64_t n = engine_numel(t);
        const int64_t T = t->dim[1], last = t->dim[2];
        for (int64_t i = 0; i < n; i++) {
            if (isfinite(t->data[i]))
                continue;
            if (r == R_SCORES && causal && i % last > (i / last) % T)
                continue;
            return r;
        }
    }
    return -1;
}

void api_attention(const char *body, size_t len, api_response *res)
{
    static const char *const fields[] = {"x", "wq", "wk", "wv", "causal",
                                         "scale", "return", NULL};
    static const char *const wnames[3] = {"wq", "wk", "wv"};
    api_error e = {0};
    attn_request r;
    engine_tensor x, w[3], outs[R_COUNT];
    const json_t *jx, *jw[3];
    float *block = NULL;

    json_t *root = api_parse_body(body, len, &e);
    if (!root)
        goto fail;
    if (!codec_known_fields(root, fields, &e) ||
        !(jx = codec_required(root, "x", &e)))
        goto fail;
    for (int i = 0; i < 3; i++)
        if (!(jw[i] = codec_required(root, wnames[i], &e)))
            goto fail;
    if (!read_bool(root, "causal", 1, &r.causal, &e) ||
        !read_scale(root, &r, &e) || !read_return(root, &r, &e))
        goto fail;
    if (!api_read_tensor(jx, "x", 3, &x, &e))
        goto fail;
    for (int i = 0; i < 3; i++)
        if (!api_read_tensor(jw[i], wnames[i], 2, &w[i], &e))
            goto fail;
    if (!check_weight_shapes(&x, w, &e))
        goto fail;

    const int64_t B = x.dim[0], T = x.dim[1], C = x.dim[2];
    const int64_t hs = w[0].dim[0];
    if (!api_check_size(B * T * hs, "q, k, v and out (B x T x head_size)",
                        "wq", &e) ||
        !api_check_size(B * T * T, "scores and weights (B x T x T)", "x",
                        &e))
        goto fail;

    if (isnan(r.scale))         /* scale: true -> head_size**-0.5 */
        r.scale = (float)pow((double)hs, -0.5);

    /* One allocation for every tensor of the request.  Each count is under
     * max_elements, so the sum cannot overflow. */
    const int64_t nx = B * T * C, nw = hs * C, nh = B * T * hs, ns = B * T * T;
    block = malloc((size_t)(nx + 3 * nw + 4 * nh + 2 * ns) * sizeof *block);
    if (!block) {
        json_decref(root);
        api_oom(res);
        return;
    }
    float *p = block;
    x.data = p;
    p += nx;
    codec_tensor_fill(&x, jx);
    for (int i = 0; i < 3; i++) {
        w[i].data = p;
        p += nw;
        codec_tensor_fill(&w[i], jw[i]);
    }
    json_decref(root);          /* the tree is far bigger than the floats */
    root = NULL;
    for (int i = 0; i < R_COUNT; i++) {
        const int64_t last = i == R_SCORES || i == R_WEIGHTS ? T : hs;
        outs[i] = (engine_tensor){p, 3, {B, T, last}};
        p += B * T * last;
    }

    engine_attention_args args = {r.causal, r.scale};
    api_compute_begin();
    const int nthreads =
        api_threads_for((double)B * T * (3.0 * C * hs + 2.0 * T * hs));
    engine_attention(&outs[R_Q], &outs[R_K], &outs[R_V], &outs[R_SCORES],
                     &outs[R_WEIGHTS], &outs[R_OUT], &x, &w[0], &w[1], &w[2],
                     &args, nthreads);
    api_compute_end();

    int bad = first_non_finite(outs, &r);
    if (bad >= 0) {
        api_fail(&e, 422, "non_finite_result", return_names[bad],
                 "%s overflowed float32 (inf or NaN); the inputs or the "
                 "scale are too large in magnitude", return_names[bad]);
        goto fail;
    }

    jsonw out;
    jw_init(&out);
    jw_lit(&out, "{");
    for (int i = 0; i < r.norder; i++) {
        const int o = r.order[i];
        if (i)
            jw_lit(&out, ",");
        jw_key(&out, return_names[o]);
        jw_tensor(&out, &outs[o], o == R_SCORES);
    }
    jw_lit(&out, "}");
    free(block);
    api_respond_json(res, &out);
    return;

fail:
    json_decref(root);
    free(block);
    api_error_response(res, &e);
}
