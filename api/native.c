/* native.c -- the native JSON codec: a request body (nested arrays, or
 * tensor objects {"shape", "data"} / {"shape", "dtype", "b64"}) into the
 * typed call, the result out in the request's "format".  One handler for
 * every model of the table. */
#include "model.h"

#include <string.h>

/* ==== the body as the call's source ==== */

static const char *input_name(const api_model *m, int role)
{
    for (int i = 0; i < m->ninputs; i++)
        if (m->inputs[i].role == role)
            return m->inputs[i].name;
    return "";
}

static int body_shape(void *ctx, const api_call *c, int role,
                      engine_tensor *t, int *is_bool, api_error *e)
{
    const api_body *b = ctx;
    const char *name = input_name(c->m, role);
    if (role == IN_MASK)
        return api_body_mask_shape(b, name, t, is_bool, e);
    if (role == IN_IDX)
        return api_idx_shape(c, json_object_get(b->root, name), t, e);
    const int i = api_model_input(c->m, name);
    return api_body_tensor(b, name, c->m->inputs[i].min_rank, t, e);
}

static void body_fill(void *ctx, const api_call *c, int role,
                      engine_tensor *t)
{
    const api_body *b = ctx;
    const char *name = input_name(c->m, role);
    if (role == IN_MASK)
        api_body_mask_fill(b, name, c->mask_bool, t);
    else if (role == IN_IDX)
        api_idx_fill(json_object_get(b->root, name), t);
    else
        api_body_fill(b, name, t);
}

/* ==== answers ==== */

/* {"method", ["x",] "weights", "out"[, "max_abs_diff", "allclose"]} */
static void respond_bow(api_response *res, const api_call *c,
                        const api_result *r)
{
    static const char *const methods[] = {"loop", "matmul", "softmax", "all"};
    static const char *const pairs[3] = {"loop_matmul", "loop_softmax",
                                         "matmul_softmax"};
    const api_model *m = c->m;
    const engine_tensor *out = &r->t[api_model_output_role(m, OUT_OUT)];
    const int xi = api_model_output_role(m, OUT_X);
    const int di = api_model_output_role(m, OUT_MAX_ABS_DIFF);
    jsonw w;
    jw_init(&w);
    jw_lit(&w, "{\"method\":\"");
    jw_lit(&w, methods[c->method]);
    jw_lit(&w, "\",");
    if (r->produced[xi]) {          /* show what the seed generated */
        jw_key(&w, "x");
        jw_tensor_as(&w, &r->t[xi], 0, c->format, 1);
        jw_lit(&w, ",");
    }
    jw_key(&w, "weights");
    jw_tensor_as(&w, &r->t[api_model_output_role(m, OUT_WEIGHTS)], 0,
                 c->format, 1);
    jw_lit(&w, ",");
    jw_key(&w, "out");
    api_compute_begin();
    jw_tensor_as(&w, out, 0, c->format,
                 api_threads_for_text(engine_numel(out)));
    api_compute_end();
    if (r->produced[di]) {
        jw_lit(&w, ",\"max_abs_diff\":{");
        for (int i = 0; i < 3; i++) {
            jw_lit(&w, i ? ",\"" : "\"");
            jw_lit(&w, pairs[i]);
            jw_lit(&w, "\":");
            jw_float(&w, r->t[di].data[i]);
        }
        jw_lit(&w, "},\"allclose\":");
        jw_bool(&w, r->allclose);
    }
    jw_lit(&w, "}");
    api_respond_json(res, &w);
}

void api_native_handle(const api_model *m, const char *body, size_t len,
                       api_response *res)
{
    const char *tensors[API_MAX_IN + 1], *defer[API_MAX_IN + 1];
    const char *names[API_MAX_OUT];
    int nt = 0, nd = 0;
    for (int i = 0; i < m->ninputs; i++) {
        const int mask = m->inputs[i].may_bool;
        /* a mask and idx go through Jansson */
        if (!mask && m->inputs[i].dtype == API_FP32)
            tensors[nt++] = m->inputs[i].name;
        /* ... or, tensors and masks of a large body, are read from the
         * text (parse.c); idx is read from the tree */
        if (mask || m->inputs[i].dtype == API_FP32)
            defer[nd++] = m->inputs[i].name;
    }
    tensors[nt] = NULL;
    defer[nd] = NULL;
    api_error e = {0};
    api_call c = {0};
    api_result r = {0};
    api_body b;
    if (!api_body_parse_known(&b, body, len, tensors, defer, m->fields, &e))
        goto fail;
    for (int i = 0; i < m->ninputs; i++)
        c.sent[m->inputs[i].role] =
            json_object_get(b.root, m->inputs[i].name) != NULL;
    const api_source src = {&b, b.root, 0, body_shape, body_fill};
    if (!api_call_read(&c, m, &src, &e) || !api_call_plan(&c, &e))
        goto fail;
    if (api_should_defer(&c.cost)) {   /* too big for this thread: run elsewhere */
        api_body_free(&b);
        memset(res, 0, sizeof *res);
        res->deferred = 1;
        return;
    }
    if (!api_call_fill(&c, &r)) {
        api_body_free(&b);
        api_oom(res);
        return;
    }
    api_body_free(&b);          /* the tree can be far bigger than the floats */
    if (!api_call_compute(&c, &r, &e))
        goto fail;
    if (m->family == API_BOW) {
        respond_bow(res, &c, &r);
    } else if (m->family == API_BLOCK || m->family == API_GPT) {
        api_lecture_respond(res, &c, &r);
    } else {
        for (int i = 0; i < m->noutputs; i++)
            names[i] = m->outputs[i].name;
        api_respond_tensors(res, r.t, names, c.order, c.norder,
                            api_model_output_role(m, OUT_SCORES), c.format);
    }
    api_result_free(&r);
    return;

fail:
    api_body_free(&b);
    api_result_free(&r);
    api_error_response(res, &e);
}

int api_model_count(void)
{
    return api_nmodels;
}

const char *api_model_name(int i)
{
    return api_models[i].name;
}

const char *api_model_summary(int i)
{
    return api_models[i].summary;
}

/* The server's entry: counted in the model's statistics. */
void api_model_post(int i, const char *body, size_t len, api_response *res)
{
    api_stats_begin();
    api_native_handle(&api_models[i], body, len, res);
    api_stats_end(&api_models[i], res->status);
}

void api_bow(const char *body, size_t len, api_response *res)
{
    api_native_handle(api_model_find("bow"), body, len, res);
}

void api_attention(const char *body, size_t len, api_response *res)
{
    api_native_handle(api_model_find("attention"), body, len, res);
}

void api_multihead(const char *body, size_t len, api_response *res)
{
    api_native_handle(api_model_find("multihead"), body, len, res);
}
