/* bow.c -- POST /bow: the lecture's bag-of-words average, three ways. */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { M_LOOP, M_MATMUL, M_SOFTMAX, M_ALL };
static const char *const method_names[] = {"loop", "matmul", "softmax",
                                           "all"};

static int read_method(const json_t *root, int *method, api_error *e)
{
    const json_t *m = json_object_get(root, "method");
    *method = M_SOFTMAX;
    if (!m)
        return 1;
    if (!json_is_string(m)) {
        api_fail(e, 422, "wrong_type", "method",
                 "method must be a string: \"loop\", \"matmul\", "
                 "\"softmax\" or \"all\", not %s", codec_type_name(m));
        return 0;
    }
    for (int i = 0; i <= M_ALL; i++)
        if (strcmp(json_string_value(m), method_names[i]) == 0) {
            *method = i;
            return 1;
        }
    api_fail(e, 422, "unknown_method", "method",
             "unknown method \"%.60s\"; use \"loop\", \"matmul\", "
             "\"softmax\" or \"all\"", json_string_value(m));
    return 0;
}

/* Runs one method: wei (T,T) is the matrix it applies, out (B,T,C) the
 * result.  scratch holds T*T floats for the loop method's identity input. */
static void run_method(int method, engine_tensor *wei, engine_tensor *out,
                       const engine_tensor *x, float *scratch, int nthreads)
{
    const int64_t T = x->dim[1];
    switch (method) {
    case M_LOOP: {
        /* The loop has no matrix of its own: the one it applies is what it
         * does to the identity, I (1,T,T) -> wei viewed as (1,T,T). */
        engine_tensor eye = {scratch, 3, {1, T, T}};
        engine_tensor w3 = {wei->data, 3, {1, T, T}};
        memset(scratch, 0, (size_t)(T * T) * sizeof *scratch);
        for (int64_t t = 0; t < T; t++)
            scratch[t * T + t] = 1.0f;
        engine_bow_loop(&w3, &eye, 1);
        engine_bow_loop(out, x, nthreads);
        break;
    }
    case M_MATMUL:
        engine_bow_tril_weights(wei);
        engine_matmul_tt(out, wei, x, nthreads);
        break;
    default:
        engine_bow_softmax_weights(wei);
        engine_matmul_tt(out, wei, x, nthreads);
        break;
    }
}

static int all_finite(const engine_tensor *t)
{
    const int64_t n = engine_numel(t);
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(t->data[i]))
            return 0;
    return 1;
}

void api_bow(const char *body, size_t len, api_response *res)
{
    static const char *const fields[] = {"x", "method", "seed", "shape",
                                         "format", NULL};
    api_error e = {0};
    engine_tensor x = {0}, wei[3], out[3];
    float *block = NULL;
    int method = M_SOFTMAX, srank;
    api_seed seed;
    jw_format format;

    static const char *const tensors[] = {"x", NULL};
    api_body b;
    if (!api_body_parse(&b, body, len, tensors, &e))
        goto fail;
    const json_t *root = b.root;
    const json_t *jx, *jshape;
    if (!codec_known_fields(root, fields, &e) ||
        !api_read_seed(root, &seed, &e))
        goto fail;
    jx = json_object_get(root, "x");
    jshape = json_object_get(root, "shape");
    /* Without a seed x is required; with one, x = torch.randn(*shape)
     * unless x is given. */
    if (!seed.present && !codec_required(root, "x", &e))
        goto fail;
    if (!seed.present && jshape) {
        api_fail(&e, 422, "invalid_value", "shape",
                 "shape only applies with a seed (it sizes the generated x); "
                 "add \"seed\" or drop \"shape\"");
        goto fail;
    }
    if (seed.present && !jx && !jshape) {
        api_fail(&e, 422, "missing_field", "shape",
                 "with a seed and no x, shape [B, T, C] is required");
        goto fail;
    }
    if (!read_method(root, &method, &e) || !api_read_format(root, &format, &e))
        goto fail;
    if (jx && !api_body_tensor(&b, "x", 3, &x, &e))
        goto fail;
    if (jshape) {
        int64_t d[3];
        if (!api_read_shape(jshape, "shape", 3, 3, 1, d, &srank, &e))
            goto fail;
        if (jx && (d[0] != x.dim[0] || d[1] != x.dim[1] || d[2] != x.dim[2])) {
            api_fail(&e, 422, "shape_mismatch", "shape",
                     "shape is [%lld, %lld, %lld] but x is %lld x %lld x %lld",
                     (long long)d[0], (long long)d[1], (long long)d[2],
                     (long long)x.dim[0], (long long)x.dim[1],
                     (long long)x.dim[2]);
            goto fail;
        }
        if (!jx)
            x = (engine_tensor){NULL, 3, {d[0], d[1], d[2]}};
    }

    const int64_t B = x.dim[0], T = x.dim[1], C = x.dim[2];
    const int64_t n = B * T * C;
    const char *sp = jx ? "x" : "shape";
    if (!api_check_dims(B, T, 0, jx ? "x" : "shape[0]", jx ? "x" : "shape[1]",
                        NULL, &e) ||
        !api_check_size(T * T, "weights (T x T)", sp, &e))
        goto fail;

    /* One allocation: x, then per method run weights and out, then the
     * loop's identity scratch. */
    const int first = method == M_ALL ? M_LOOP : method;
    const int last = method == M_ALL ? M_SOFTMAX : method;
    const int runs = last - first + 1;
    if (!api_check_total(n + runs * (T * T + n) + T * T, &e))
        goto fail;
    block = malloc((size_t)(n + runs * (T * T + n) + T * T) * sizeof *block);
    if (!block) {
        api_body_free(&b);
        api_oom(res);
        return;
    }
    x.data = block;
    if (seed.present) {
        /* torch.manual_seed(seed); x = torch.randn(B, T, C) */
        engine_rng g;
        engine_rng_seed(&g, seed.value);
        engine_randn(&g, x.data, n);
    }
    if (jx)
        api_body_fill(&b, "x", &x);
    api_body_free(&b);

    float *p = block + n;
    for (int m = first; m <= last; m++) {
        wei[m] = (engine_tensor){p, 2, {T, T}};
        p += T * T;
        out[m] = (engine_tensor){p, 3, {B, T, C}};
        p += n;
    }

    api_compute_begin();
    const int nthreads = api_threads_for((double)B * T * T * C);
    for (int m = first; m <= last; m++)
        run_method(m, &wei[m], &out[m], &x, p, nthreads);
    api_compute_end();

    for (int m = first; m <= last; m++)
        if (!all_finite(&out[m])) {
            api_fail(&e, 422, "non_finite_result", "out",
                     "the %s average overflowed float32 (inf or NaN); the "
                     "inputs are too large in magnitude", method_names[m]);
            goto fail;
        }

    jsonw w;
    jw_init(&w);
    jw_lit(&w, "{\"method\":\"");
    jw_lit(&w, method_names[method]);
    jw_lit(&w, "\",");
    if (seed.present) {         /* show what the seed generated */
        jw_key(&w, "x");
        jw_tensor_as(&w, &x, 0, format, 1);
        jw_lit(&w, ",");
    }
    jw_key(&w, "weights");
    jw_tensor_as(&w, &wei[last], 0, format, 1);
    jw_lit(&w, ",");
    jw_key(&w, "out");
    api_compute_begin();
    jw_tensor_as(&w, &out[last], 0, format, api_threads_for_text(n));
    api_compute_end();
    if (method == M_ALL) {
        static const int pairs[3][2] = {{M_LOOP, M_MATMUL},
                                        {M_LOOP, M_SOFTMAX},
                                        {M_MATMUL, M_SOFTMAX}};
        int close = 1;
        jw_lit(&w, ",\"max_abs_diff\":{");
        for (int i = 0; i < 3; i++) {
            const float *pa = out[pairs[i][0]].data;
            const float *pb = out[pairs[i][1]].data;
            jw_lit(&w, i ? ",\"" : "\"");
            jw_lit(&w, method_names[pairs[i][0]]);
            jw_lit(&w, "_");
            jw_lit(&w, method_names[pairs[i][1]]);
            jw_lit(&w, "\":");
            jw_float(&w, engine_max_abs_diff(pa, pb, n));
            close &= engine_allclose(pa, pb, n, 1e-5, 1e-8);
        }
        jw_lit(&w, "},\"allclose\":");
        jw_bool(&w, close);
    }
    jw_lit(&w, "}");
    free(block);
    api_respond_json(res, &w);
    return;

fail:
    api_body_free(&b);
    free(block);
    api_error_response(res, &e);
}
