/* model.c -- the model table and the typed call: reading a request's
 * fields in the contract's order, the shape relations and limits, the
 * cost, one allocation, the engine.  Every codec goes through here. */
#include "model.h"
#include "gpt_model.h"
#include "v2.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ==== the table ==== */

static const api_input_spec bow_in[] = {
    {"x", IN_X, 3, 3, 0, 1, 0},
};
static const api_output_spec bow_out[] = {
    {"out", OUT_OUT, 3, NULL, NULL, 0, 0},
    {"weights", OUT_WEIGHTS, 2, NULL, NULL, 0, 0},
    {"x", OUT_X, 3, NULL, NULL, 0, 0},
    {"max_abs_diff", OUT_MAX_ABS_DIFF, 1, "[3]", NULL, 0, 0},
    {"allclose", OUT_ALLCLOSE, 1, "[1]", NULL, 1, 0},
};
static const char *const bow_fields[] = {"x", "method", "seed", "shape",
                                         "format", NULL};

static const api_input_spec attn_in[] = {
    {"x", IN_X, 3, 3, 0, 1, 0},
    {"wq", IN_WQ, 2, 2, 0, 1, 0},
    {"wk", IN_WK, 2, 2, 0, 1, 0},
    {"wv", IN_WV, 2, 2, 0, 1, 0},
    {"context", IN_CTX, 3, 3, 0, 0, 0},
    {"mask", IN_MASK, 2, 3, 1, 0, 0},
};
static const api_output_spec attn_out[] = {
    {"weights", OUT_WEIGHTS, 3, NULL, NULL, 0, 0},
    {"out", OUT_OUT, 3, NULL, NULL, 0, 0},
    {"q", OUT_Q, 3, NULL, NULL, 0, 0},
    {"k", OUT_K, 3, NULL, NULL, 0, 0},
    {"v", OUT_V, 3, NULL, NULL, 0, 0},
    {"scores", OUT_SCORES, 3, NULL, NULL, 0, 0},
    {"x", OUT_X, 3, NULL, NULL, 0, 0},
    {"wq", OUT_WQ, 2, NULL, NULL, 0, 0},
    {"wk", OUT_WK, 2, NULL, NULL, 0, 0},
    {"wv", OUT_WV, 2, NULL, NULL, 0, 0},
};
static const char *const attn_fields[] = {
    "x", "wq", "wk", "wv", "context", "mask", "causal", "scale", "return",
    "seed", "shape", "head_size", "format", NULL};

static const api_input_spec mh_in[] = {
    {"x", IN_X, 3, 3, 0, 1, 0},
    {"wq", IN_WQ, 3, 3, 0, 1, 0},
    {"wk", IN_WK, 3, 3, 0, 1, 0},
    {"wv", IN_WV, 3, 3, 0, 1, 0},
    {"wo", IN_WO, 2, 2, 0, 1, 0},
    {"bo", IN_BO, 1, 1, 0, 1, 0},
    {"context", IN_CTX, 3, 3, 0, 0, 0},
    {"mask", IN_MASK, 2, 3, 1, 0, 0},
};
static const api_output_spec mh_out[] = {
    {"out", OUT_OUT, 3, NULL, NULL, 0, 0},
    {"weights", OUT_WEIGHTS, 4, NULL, "3,4", 0, 0},
    {"heads", OUT_HEADS, 3, NULL, NULL, 0, 0},
    {"q", OUT_Q, 4, NULL, NULL, 0, 0},
    {"k", OUT_K, 4, NULL, NULL, 0, 0},
    {"v", OUT_V, 4, NULL, NULL, 0, 0},
    {"scores", OUT_SCORES, 4, NULL, NULL, 0, 0},
    {"x", OUT_X, 3, NULL, NULL, 0, 0},
    {"wq", OUT_WQ, 3, NULL, NULL, 0, 0},
    {"wk", OUT_WK, 3, NULL, NULL, 0, 0},
    {"wv", OUT_WV, 3, NULL, NULL, 0, 0},
    {"wo", OUT_WO, 2, NULL, NULL, 0, 0},
    {"bo", OUT_BO, 1, NULL, NULL, 0, 0},
};
static const char *const mh_fields[] = {
    "x", "wq", "wk", "wv", "wo", "bo", "context", "mask", "causal",
    "scale", "return", "average_weights", "seed", "shape", "num_heads",
    "head_size", "format", NULL};

/* The lecture's Block: multihead's names for the attention, then the
 * FeedForward's two Linears and the two LayerNorms. */
static const api_input_spec block_in[] = {
    {"x", IN_X, 3, 3, 0, 1, 0},
    {"wq", IN_WQ, 3, 3, 0, 1, 0},
    {"wk", IN_WK, 3, 3, 0, 1, 0},
    {"wv", IN_WV, 3, 3, 0, 1, 0},
    {"wo", IN_WO, 2, 2, 0, 1, 0},
    {"bo", IN_BO, 1, 1, 0, 1, 0},
    {"fc1_w", IN_FC1_W, 2, 2, 0, 1, 0},
    {"fc1_b", IN_FC1_B, 1, 1, 0, 1, 0},
    {"fc2_w", IN_FC2_W, 2, 2, 0, 1, 0},
    {"fc2_b", IN_FC2_B, 1, 1, 0, 1, 0},
    {"ln1_w", IN_LN1_W, 1, 1, 0, 1, 0},
    {"ln1_b", IN_LN1_B, 1, 1, 0, 1, 0},
    {"ln2_w", IN_LN2_W, 1, 1, 0, 1, 0},
    {"ln2_b", IN_LN2_B, 1, 1, 0, 1, 0},
};
static const api_output_spec block_out[] = {
    {"out", OUT_OUT, 3, NULL, NULL, 0, 0},
    {"ln1", OUT_LN1, 3, NULL, NULL, 0, 0},
    {"q", OUT_Q, 4, NULL, NULL, 0, 0},
    {"k", OUT_K, 4, NULL, NULL, 0, 0},
    {"v", OUT_V, 4, NULL, NULL, 0, 0},
    {"scores", OUT_SCORES, 4, NULL, NULL, 0, 0},
    {"weights", OUT_WEIGHTS, 4, NULL, NULL, 0, 0},
    {"heads", OUT_HEADS, 3, NULL, NULL, 0, 0},
    {"attn", OUT_ATTN, 3, NULL, NULL, 0, 0},
    {"resid", OUT_RESID, 3, NULL, NULL, 0, 0},
    {"ln2", OUT_LN2, 3, NULL, NULL, 0, 0},
    {"hidden", OUT_HIDDEN, 3, NULL, NULL, 0, 0},
};
static const char *const block_fields[] = {
    "x", "wq", "wk", "wv", "wo", "bo", "fc1_w", "fc1_b", "fc2_w", "fc2_b",
    "ln1_w", "ln1_b", "ln2_w", "ln2_b", "seed", "n_embd", "n_head",
    "return", "format", NULL};

/* GPTLanguageModel: token ids in (or text, an option: characters through
 * the model's vocabulary). */
static const api_input_spec gpt_in[] = {
    {"idx", IN_IDX, 1, 2, 0, 0, API_INT64},
};
static const api_output_spec gpt_out[] = {
    {"logits", OUT_LOGITS, 3, NULL, NULL, 0, 0},
    {"last_logits", OUT_LAST_LOGITS, 2, NULL, NULL, 0, 0},
    {"probs", OUT_PROBS, 2, NULL, NULL, 0, 0},
    {"weights", OUT_WEIGHTS, 5, NULL, NULL, 0, 0},
    {"hidden", OUT_HIDDEN, 4, NULL, NULL, 0, 0},
    {"tokens", OUT_TOKENS, 2, NULL, NULL, 0, API_INT64},
    {"text", OUT_TEXT, 1, NULL, NULL, 0, API_BYTES},
};
static const char *const gpt_fields[] = {
    "idx", "text", "model", "seed", "vocab_size", "block_size", "n_embd",
    "n_head", "n_layer", "return", "max_new_tokens", "sample_seed", "format",
    NULL};
/* a repository's model: the model is the URL's */
static const char *const loaded_fields[] = {
    "idx", "text", "return", "max_new_tokens", "sample_seed", NULL};

#define N(a) (int)(sizeof a / sizeof a[0])
api_model api_models[API_MAX_MODELS] = {
    {"bow", API_BOW, 0, bow_in, N(bow_in), bow_out, N(bow_out), bow_fields,
     NULL, {NULL, NULL},
     "the bag-of-words average, three ways", NULL},
    {"attention", API_ATTEND, 0, attn_in, N(attn_in), attn_out, N(attn_out),
     attn_fields, "q, k, v, scores, weights, out, x, wq, wk, wv",
     {"weights", "out"}, "one head: self or cross, causal or masked",
     NULL},
    {"multihead", API_ATTEND, 1, mh_in, N(mh_in), mh_out, N(mh_out),
     mh_fields, "out, weights, heads, q, k, v, scores, x, wq, wk, wv, wo, bo",
     {"out", "weights"}, "MultiHeadAttention: heads concatenated, then "
     "proj", NULL},
    {"block", API_BLOCK, 1, block_in, N(block_in), block_out, N(block_out),
     block_fields, "out, ln1, q, k, v, scores, weights, heads, attn, resid, "
     "ln2, hidden", {"out", NULL}, "the lecture's Block: LayerNorm, "
     "attention, FeedForward, residuals", NULL},
    {"gpt", API_GPT, 1, gpt_in, N(gpt_in), gpt_out, N(gpt_out), gpt_fields,
     "logits, last_logits, probs, weights, hidden, tokens, text",
     {"last_logits", "probs"}, "GPTLanguageModel: a --models model or a "
     "seeded one; generate", NULL},
};
const int api_nbuiltin = 5;
int api_nmodels = 5;

/* The names for messages: the built-in ones, then each model added. */
static char model_names[API_MAX_MODELS * (API_GPT_MAX_NAME + 2)] =
    "bow, attention, multihead, block, gpt";

const char *api_v2_models(void)
{
    return model_names;
}

void api_models_reset(void)
{
    api_nmodels = api_nbuiltin;
    model_names[strlen("bow, attention, multihead, block, gpt")] = '\0';
}

int api_models_add_gpt(const struct api_gpt_model *g, char *err, size_t cap)
{
    const char *name = g->name;
    for (int i = 0; i < api_nmodels; i++)
        if (strcmp(api_models[i].name, name) == 0) {
            snprintf(err, cap, "model %s: the name is taken by %s", name,
                     i < api_nbuiltin ? "a built-in model" : "another model");
            return -1;
        }
    if (api_nmodels == API_MAX_MODELS) {
        snprintf(err, cap, "model %s: attnd serves at most %d models", name,
                 API_MAX_MODELS - api_nbuiltin);
        return -1;
    }
    const size_t k = strlen(model_names);
    snprintf(model_names + k, sizeof model_names - k, ", %s", name);
    api_model *m = &api_models[api_nmodels++];
    *m = *api_model_find("gpt");
    m->name = name;
    m->fields = loaded_fields;
    m->summary = "a --models model (GPTLanguageModel)";
    m->gpt = g;
    return 0;
}

const api_model *api_model_find(const char *name)
{
    for (int i = 0; i < api_nmodels; i++)
        if (strcmp(name, api_models[i].name) == 0)
            return &api_models[i];
    return NULL;
}

int api_model_output(const api_model *m, const char *name)
{
    for (int i = 0; i < m->noutputs; i++)
        if (strcmp(m->outputs[i].name, name) == 0)
            return i;
    return -1;
}

int api_model_output_role(const api_model *m, int role)
{
    for (int i = 0; i < m->noutputs; i++)
        if (m->outputs[i].role == role)
            return i;
    return -1;
}

int api_model_input(const api_model *m, const char *name)
{
    for (int i = 0; i < m->ninputs; i++)
        if (strcmp(m->inputs[i].name, name) == 0)
            return i;
    return -1;
}

/* ==== reading a call ==== */

static const char *const method_names[] = {"loop", "matmul", "softmax",
                                           "all"};
enum { M_LOOP, M_MATMUL, M_SOFTMAX, M_ALL };

static int read_method(const json_t *o, int *method, api_error *e)
{
    const json_t *m = json_object_get(o, "method");
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

static int missing(const char *name, api_error *e)
{
    api_fail(e, 422, "missing_field", name, "missing required field \"%s\"",
             name);
    return 0;
}

int api_call_read_tensors(api_call *c, api_error *e)
{
    for (int i = 0; i < c->m->ninputs; i++) {
        const int r = c->m->inputs[i].role;
        int is_bool = 0;
        if (c->sent[r] &&
            !c->src->shape(c->src->ctx, c, r, &c->in[r], &is_bool, e))
            return 0;
        if (r == IN_MASK)
            c->mask_bool = is_bool;
    }
    return 1;
}

static int shape_matches(const api_call *c, api_error *e)
{
    const int64_t *d = c->shape, *x = c->in[IN_X].dim;
    if (!c->sent[IN_X] || !c->has_shape ||
        (d[0] == x[0] && d[1] == x[1] && d[2] == x[2]))
        return 1;
    api_fail(e, 422, "shape_mismatch", "shape",
             "shape is [%lld, %lld, %lld] but x is %lld x %lld x %lld",
             (long long)d[0], (long long)d[1], (long long)d[2],
             (long long)x[0], (long long)x[1], (long long)x[2]);
    return 0;
}

static int read_bow(api_call *c, const json_t *o, api_error *e)
{
    const json_t *jshape = json_object_get(o, "shape");
    int srank;
    /* Without a seed x is required; with one, x = torch.randn(*shape)
     * unless x is given. */
    if (!c->seed.present && !c->sent[IN_X])
        return missing("x", e);
    if (!c->seed.present && jshape) {
        api_fail(e, 422, "invalid_value", "shape",
                 "shape only applies with a seed (it sizes the generated x); "
                 "add \"seed\" or drop \"shape\"");
        return 0;
    }
    if (c->seed.present && !c->sent[IN_X] && !jshape) {
        api_fail(e, 422, "missing_field", "shape",
                 "with a seed and no x, shape [B, T, C] is required");
        return 0;
    }
    if (!read_method(o, &c->method, e) || !api_read_format(o, &c->format, e))
        return 0;
    if (!api_call_read_tensors(c, e))
        return 0;
    c->has_shape = jshape != NULL;
    if (jshape && (!api_read_shape(jshape, "shape", 3, 3, 1, c->shape,
                                   &srank, e) || !shape_matches(c, e)))
        return 0;
    return 1;
}

/* Which fields are required depends on the seed: without one every
 * tensor is explicit; with one, whatever is not given is generated, so its
 * size must be given instead. */
static int attend_presence(api_call *c, const json_t *jshape,
                           const json_t *jnh, const json_t *jhs,
                           api_error *e)
{
    const api_model *m = c->m;
    const int any_w = c->sent[IN_WQ] || c->sent[IN_WK] || c->sent[IN_WV];
    if (!c->seed.present) {
        for (int i = 0; i < m->ninputs; i++)
            if (m->inputs[i].required && !c->sent[m->inputs[i].role])
                return missing(m->inputs[i].name, e);
        if (jshape || jnh || jhs) {
            const char *f = jshape ? "shape" : jnh ? "num_heads" : "head_size";
            api_fail(e, 422, "invalid_value", f,
                     "%s only applies with a seed (it sizes generated "
                     "tensors); add \"seed\" or drop \"%s\"", f, f);
            return 0;
        }
        return 1;
    }
    if (!c->sent[IN_X] && !jshape) {
        api_fail(e, 422, "missing_field", "shape",
                 "with a seed and no x, shape [B, T, C] is required");
        return 0;
    }
    if (m->heads && !jnh && !any_w) {
        api_fail(e, 422, "missing_field", "num_heads",
                 "with a seed and no wq, wk or wv, num_heads is required");
        return 0;
    }
    if (!jhs && !any_w) {
        api_fail(e, 422, "missing_field", "head_size",
                 "with a seed and no wq, wk or wv, head_size is required");
        return 0;
    }
    return 1;
}

static int read_attend(api_call *c, const json_t *o, api_error *e)
{
    const api_model *m = c->m;
    const json_t *jshape = json_object_get(o, "shape");
    const json_t *jnh = m->heads ? json_object_get(o, "num_heads") : NULL;
    const json_t *jhs = json_object_get(o, "head_size");
    int srank;
    if (!attend_presence(c, jshape, jnh, jhs, e))
        return 0;
    if (!api_read_causal(o, c->sent[IN_CTX], c->sent[IN_MASK], &c->causal,
                         e) ||
        (m->heads && !api_read_bool(o, "average_weights", 0, &c->average,
                                    e)) ||
        !api_read_scale(o, &c->scale, e))
        return 0;
    if (!c->src->preset_order) {
        const char *names[API_MAX_OUT];
        api_outputs outs = {names, m->noutputs, m->return_list, {0}, 2};
        for (int i = 0; i < m->noutputs; i++)
            names[i] = m->outputs[i].name;
        for (int i = 0; i < 2; i++)
            outs.defaults[i] = api_model_output(m, m->return_default[i]);
        if (!api_read_return(o, &outs, c->order, &c->norder, e))
            return 0;
    }
    if (!api_read_format(o, &c->format, e))
        return 0;
    c->has_shape = jshape != NULL;
    c->has_h = jnh != NULL;
    c->has_hs = jhs != NULL;
    c->H = 1;
    if ((jshape && !api_read_shape(jshape, "shape", 3, 3, 1, c->shape,
                                   &srank, e)) ||
        (jnh && !api_read_count(jnh, "num_heads", &c->H, e)) ||
        (jhs && !api_read_count(jhs, "head_size", &c->hs, e)) ||
        (jnh && !api_check_heads(c->H, "num_heads", e)))
        return 0;
    return api_call_read_tensors(c, e);
}

int api_call_read(api_call *c, const api_model *m, const api_source *src,
                  api_error *e)
{
    int sent[API_MAX_IN];
    memcpy(sent, c->sent, sizeof sent);
    const int norder = c->norder;
    int order[API_MAX_OUT];
    memcpy(order, c->order, sizeof order);
    memset(c, 0, sizeof *c);
    memcpy(c->sent, sent, sizeof sent);
    if (src->preset_order) {
        c->norder = norder;
        memcpy(c->order, order, sizeof order);
    }
    c->m = m;
    c->src = src;
    if (!codec_known_fields(src->opts, m->fields, e) ||
        !api_read_seed(src->opts, &c->seed, e))
        return 0;
    if (m->family == API_BLOCK || m->family == API_GPT)
        return api_lecture_read(c, src->opts, e);
    return m->family == API_BOW ? read_bow(c, src->opts, e)
                                : read_attend(c, src->opts, e);
}

/* ==== shape relations and limits ==== */

static api_cross cross_of(const api_call *c)
{
    api_cross x = {c->sent[IN_CTX], c->sent[IN_MASK], c->in[IN_CTX],
                   c->in[IN_MASK], c->mask_bool};
    return x;
}

static const char *const wnames[3] = {"wq", "wk", "wv"};

/* /attention: the explicit ones of wq, wk, wv must each be (hs, C): the
 * first one given sets hs unless head_size did, the others must match. */
static int single_weights(api_call *c, api_error *e)
{
    const engine_tensor *w = &c->in[IN_WQ];
    const int64_t C = c->C;
    int first = -1;
    for (int i = 0; i < 3; i++) {
        if (!c->sent[IN_WQ + i])
            continue;
        if (w[i].dim[1] != C) {
            api_fail(e, 422, "shape_mismatch", wnames[i],
                     "%s is %lld x %lld but must be head_size x C with C = "
                     "%lld (the last dimension of x): nn.Linear.weight "
                     "layout, out_features x in_features", wnames[i],
                     (long long)w[i].dim[0], (long long)w[i].dim[1],
                     (long long)C);
            return 0;
        }
        if (first < 0 && !c->has_hs) {
            first = i;
            c->hs = w[i].dim[0];
        } else if (w[i].dim[0] != c->hs) {
            if (first >= 0)
                api_fail(e, 422, "shape_mismatch", wnames[i],
                         "%s is %lld x %lld but %s is %lld x %lld; wq, wk "
                         "and wv must have the same shape (head_size x C)",
                         wnames[i], (long long)w[i].dim[0],
                         (long long)w[i].dim[1], wnames[first],
                         (long long)w[first].dim[0], (long long)C);
            else
                api_fail(e, 422, "shape_mismatch", wnames[i],
                         "%s has %lld row%s but head_size is %lld", wnames[i],
                         (long long)w[i].dim[0], w[i].dim[0] == 1 ? "" : "s",
                         (long long)c->hs);
            return 0;
        }
    }
    return 1;
}

/* /multihead: the explicit ones of wq, wk, wv must each be (H, hs, C): the
 * first one given sets H and hs unless num_heads / head_size did. */
static int multi_weights(api_call *c, api_error *e)
{
    const engine_tensor *w = &c->in[IN_WQ];
    const int64_t C = c->C;
    int h_given = c->has_h, hs_given = c->has_hs;
    for (int i = 0; i < 3; i++) {
        if (!c->sent[IN_WQ + i])
            continue;
        if (w[i].dim[2] != C) {
            api_fail(e, 422, "shape_mismatch", wnames[i],
                     "%s is %lld x %lld x %lld but must be num_heads x "
                     "head_size x C with C = %lld (the last dimension of x): "
                     "head h's nn.Linear.weight at [h]", wnames[i],
                     (long long)w[i].dim[0], (long long)w[i].dim[1],
                     (long long)w[i].dim[2], (long long)C);
            return 0;
        }
        if (!h_given) {
            c->H = w[i].dim[0];
            h_given = 1;
        }
        if (!hs_given) {
            c->hs = w[i].dim[1];
            hs_given = 1;
        }
        if (w[i].dim[0] != c->H || w[i].dim[1] != c->hs) {
            api_fail(e, 422, "shape_mismatch", wnames[i],
                     "%s is %lld x %lld x %lld but must be num_heads x "
                     "head_size x C = %lld x %lld x %lld (wq, wk and wv "
                     "have the same shape)", wnames[i],
                     (long long)w[i].dim[0], (long long)w[i].dim[1],
                     (long long)w[i].dim[2], (long long)c->H,
                     (long long)c->hs, (long long)C);
            return 0;
        }
    }
    return 1;
}

static int projection(const api_call *c, api_error *e)
{
    const engine_tensor *wo = &c->in[IN_WO], *bo = &c->in[IN_BO];
    const int64_t C = c->C, D = c->H * c->hs;
    if (c->sent[IN_WO] && (wo->dim[0] != C || wo->dim[1] != D)) {
        api_fail(e, 422, "shape_mismatch", "wo",
                 "wo is %lld x %lld but must be C x (num_heads*head_size) = "
                 "%lld x %lld: proj's nn.Linear.weight", (long long)wo->dim[0],
                 (long long)wo->dim[1], (long long)C, (long long)D);
        return 0;
    }
    if (c->sent[IN_BO] && bo->dim[0] != C) {
        api_fail(e, 422, "shape_mismatch", "bo",
                 "bo has %lld element%s but must have C = %lld: proj's "
                 "nn.Linear.bias", (long long)bo->dim[0],
                 bo->dim[0] == 1 ? "" : "s", (long long)C);
        return 0;
    }
    return 1;
}

/* The per-tensor caps of /attention (H = 1) and /multihead, each naming
 * where the size that passed came from. */
static int attend_wants(const api_call *c, int role);

/* api_check_size for the B x T x S matrices, whose 413 says how to go on
 * without them. */
static int check_matrices(int64_t n, const char *what, const char *path,
                          api_error *e)
{
    if (api_check_size(n, what, path, e))
        return 1;
    size_t used = strlen(e->message);
    snprintf(e->message + used, sizeof e->message - used,
             ", or ask for \"return\": [\"out\"] (without scores or "
             "weights the sequence may be up to --max-seq)");
    return 0;
}

/* The per-tensor caps of an attend model's call.  The B x T x S scores and
 * weights are capped only when they are held: asked for (scores, weights,
 * average_weights); the engine streams over key blocks otherwise. */
static int attend_limits(const api_call *c, api_error *e)
{
    const int mats = attend_wants(c, OUT_SCORES) ||
                     attend_wants(c, OUT_WEIGHTS);
    const int64_t B = c->B, T = c->T, S = c->S, C = c->C, H = c->H;
    const int64_t D = H * c->hs;
    const int x = c->sent[IN_X], ctx = c->sent[IN_CTX];
    const char *wpath = c->sent[IN_WQ] ? "wq" : c->sent[IN_WK] ? "wk" : "wv";
    const char *hpath = c->has_hs ? "head_size" : wpath;
    const char *spath = ctx ? "context" : x ? "x" : "shape";
    const char *st = ctx ? "scores and weights (B x T x S)"
                         : "scores and weights (B x T x T)";
    if (!api_check_dims(B, T, c->hs, x ? "x" : "shape[0]",
                        x ? "x" : "shape[1]", hpath, e))
        return 0;
    if (!c->m->heads)
        return api_check_size(D * C, "wq, wk and wv (head_size x C)", hpath,
                              e) &&
               api_check_size(B * T * D, ctx ?
                              "q and out (B x T x head_size)" :
                              "q, k, v and out (B x T x head_size)", hpath,
                              e) &&
               api_check_size(B * S * D, "k and v (B x S x head_size)",
                              hpath, e) &&
               (!mats || check_matrices(B * T * S, st, spath, e));
    return api_check_size(D * C,
                          "wq, wk and wv (num_heads x head_size x C) and wo",
                          hpath, e) &&
           api_check_size(B * T * D, ctx ?
                          "q and heads (B x T x num_heads x head_size)" :
                          "q, k, v and heads (B x T x num_heads x head_size)",
                          hpath, e) &&
           api_check_size(B * S * D, "k and v (B x S x num_heads x "
                          "head_size)", hpath, e) &&
           (!mats || (check_matrices(B * T * S, st, spath, e) &&
           check_matrices(B * H * T * S, ctx ?
                          "scores and weights (B x num_heads x T x S)" :
                          "scores and weights (B x num_heads x T x T)",
                          c->has_h ? "num_heads" : wpath, e)));
}

static int plan_attend(api_call *c, api_error *e)
{
    if (!shape_matches(c, e))
        return 0;
    if (!c->sent[IN_X])
        c->in[IN_X] = (engine_tensor){NULL, 3,
                                      {c->shape[0], c->shape[1], c->shape[2]}};
    c->B = c->in[IN_X].dim[0];
    c->T = c->in[IN_X].dim[1];
    c->C = c->in[IN_X].dim[2];
    const api_cross x = cross_of(c);
    if (!c->m->heads) {
        if (!single_weights(c, e))
            return 0;
    } else {
        if (!multi_weights(c, e))
            return 0;
        const char *wpath = c->sent[IN_WQ] ? "wq" : c->sent[IN_WK] ? "wk"
                                                                   : "wv";
        if ((!c->has_h && !api_check_heads(c->H, wpath, e)) ||
            !projection(c, e))
            return 0;
    }
    if (!api_cross_check(&x, c->B, c->T, c->C, &c->S, e) ||
        !attend_limits(c, e))
        return 0;
    if (isnan(c->scale))        /* scale: true -> head_size**-0.5 */
        c->scale = (float)pow((double)c->hs, -0.5);
    return 1;
}

static int plan_bow(api_call *c, api_error *e)
{
    if (!c->sent[IN_X])
        c->in[IN_X] = (engine_tensor){NULL, 3,
                                      {c->shape[0], c->shape[1], c->shape[2]}};
    c->B = c->in[IN_X].dim[0];
    c->T = c->S = c->in[IN_X].dim[1];
    c->C = c->in[IN_X].dim[2];
    const char *x = c->sent[IN_X] ? "x" : NULL;
    return api_check_dims(c->B, c->T, 0, x ? x : "shape[0]",
                          x ? x : "shape[1]", NULL, e) &&
           api_check_size(c->T * c->T, "weights (T x T)", x ? x : "shape",
                          e);
}

/* Runs of /bow's methods: one, or three for "all". */
static int bow_runs(const api_call *c)
{
    return c->method == M_ALL ? 3 : 1;
}

/* Whether the result holds output `role` of an attend model: out always
 * (the engine writes it), the others when asked for. */
static int attend_wants(const api_call *c, int role)
{
    if (role == OUT_OUT)
        return 1;
    for (int i = 0; i < c->norder; i++)
        if (c->m->outputs[c->order[i]].role == role)
            return 1;
    return 0;
}

api_cost api_call_cost(const api_call *c)
{
    api_cost k = {0};
    if (c->m->family == API_BLOCK || c->m->family == API_GPT)
        return api_lecture_cost(c);
    const int64_t B = c->B, T = c->T, S = c->S, C = c->C, H = c->H;
    const int64_t nx = B * T * C;
    if (c->m->family == API_BOW) {
        const int runs = bow_runs(c);
        k.inputs = nx;
        k.outputs = runs * (T * T + nx);
        k.scratch = T * T;          /* the loop method's identity */
        /* per method: its T x T weights, then the loop's running sums
         * (B*T*C) or the (T,T) @ (B,T,C) product (B*T*T*C) */
        const double mm = (double)B * T * T * C, loop = (double)B * T * C;
        k.madds = (double)runs * T * T +
                  (c->method == M_LOOP ? loop :
                   c->method == M_ALL ? loop + 2 * mm : mm);
        return k;
    }
    const int64_t D = H * c->hs, nw = D * C;
    const api_cross x = cross_of(c);
    k.inputs = nx + (x.has_ctx ? engine_numel(&x.ctx) : 0) +
               (x.has_mask ? engine_numel(&x.mask) : 0) + 3 * nw +
               (c->m->heads ? nw + C : 0);              /* wo, bo */
    /* what the result holds: the outputs asked for, out always */
    const int64_t ns = B * H * T * S;
    const int64_t size[OUT_OUT + 1] = {
        [OUT_Q] = B * T * D, [OUT_K] = B * S * D, [OUT_V] = B * S * D,
        [OUT_SCORES] = ns, [OUT_WEIGHTS] = ns, [OUT_HEADS] = B * T * D,
        [OUT_OUT] = B * T * (c->m->heads ? C : D)};
    for (int role = OUT_Q; role <= OUT_OUT; role++)
        if (attend_wants(c, role))
            k.outputs += size[role];
    if (c->average && attend_wants(c, OUT_WEIGHTS))
        k.outputs += B * T * S;                         /* the mean */
    k.scratch = engine_attend_scratch(B, T, S, C, H, c->hs,
                                      attend_wants(c, OUT_SCORES) ||
                                      attend_wants(c, OUT_WEIGHTS),
                                      api_max_threads());
    k.madds = (double)B * (C * D * ((c->m->heads ? 2.0 : 1.0) * T + 2.0 * S) +
                           2.0 * T * S * D);
    return k;
}

int api_call_plan(api_call *c, api_error *e)
{
    const api_family f = c->m->family;
    if (!(f == API_BOW      ? plan_bow(c, e)
          : f == API_ATTEND ? plan_attend(c, e)
                            : api_lecture_plan(c, e)))
        return 0;
    /* Each count is under max_elements, so the sum cannot overflow. */
    c->cost = api_call_cost(c);
    return api_check_total(api_cost_floats(&c->cost), e) &&
           api_check_work(c->cost.madds, e);
}

/* ==== one allocation, the inputs filled ==== */

/* Sets result tensor of output `role` (if the model has it) to t. */
static void set_out(api_result *r, const api_model *m, int role,
                    engine_tensor t, int produced)
{
    const int i = api_model_output_role(m, role);
    if (i >= 0) {
        r->t[i] = t;
        r->produced[i] = produced;
    }
}

/* Lays the inputs out at p (shapes as planned); returns the end. */
static float *lay_inputs(api_call *c, float *p)
{
    const int64_t C = c->C, H = c->H, hs = c->hs;
    engine_tensor *in = c->in;
    in[IN_X].data = p;
    p += engine_numel(&in[IN_X]);
    for (int i = IN_WQ; c->m->family == API_ATTEND && i <= IN_WV; i++) {
        in[i] = c->m->heads ? (engine_tensor){p, 3, {H, hs, C}}
                            : (engine_tensor){p, 2, {hs, C}};
        p += H * hs * C;
    }
    if (c->m->heads) {
        in[IN_WO] = (engine_tensor){p, 2, {C, H * hs}};
        p += C * H * hs;
        in[IN_BO] = (engine_tensor){p, 1, {C}};
        p += C;
    }
    for (int i = IN_CTX; i <= IN_MASK; i++)
        if (c->sent[i]) {
            in[i].data = p;
            p += engine_numel(&in[i]);
        }
    return p;
}

/* torch.manual_seed(seed); x = torch.randn(B, T, C); then the weights in
 * the lecture's module order: Head's key, query, value =
 * nn.Linear(C, hs, bias=False), head by head; then proj = nn.Linear(H*hs,
 * C), weight then bias.  Every draw happens even for tensors given
 * explicitly, so the generated ones keep PyTorch's values.  context and
 * mask are never generated: they are sent or absent, and draw nothing. */
static void draw(api_call *c)
{
    engine_tensor *in = c->in;
    const int64_t C = c->C, hs = c->hs;
    engine_rng g;
    engine_rng_seed(&g, c->seed.value);
    engine_randn(&g, in[IN_X].data, engine_numel(&in[IN_X]));
    if (c->m->family != API_ATTEND)
        return;
    for (int64_t h = 0; h < c->H; h++) {
        engine_linear_init(&g, in[IN_WK].data + h * hs * C, NULL, hs, C);
        engine_linear_init(&g, in[IN_WQ].data + h * hs * C, NULL, hs, C);
        engine_linear_init(&g, in[IN_WV].data + h * hs * C, NULL, hs, C);
    }
    if (c->m->heads)
        engine_linear_init(&g, in[IN_WO].data, in[IN_BO].data, C,
                           c->H * hs);
}

/* The outputs asked for (and out) at p: /attention's (B,T,hs)-shaped
 * views of H = 1, or /multihead's per-head tensors; then /multihead's
 * mean over heads when its weights are asked for. */
static float *lay_attend_outputs(api_call *c, api_result *r, float *p)
{
    const api_model *m = c->m;
    const int64_t B = c->B, T = c->T, S = c->S, H = c->H, hs = c->hs;
    const int64_t C = m->heads ? c->C : hs;
    const engine_tensor shape[OUT_OUT + 1] = {
        [OUT_Q] = {NULL, 4, {B, H, T, hs}}, [OUT_K] = {NULL, 4, {B, H, S, hs}},
        [OUT_V] = {NULL, 4, {B, H, S, hs}},
        [OUT_SCORES] = {NULL, 4, {B, H, T, S}},
        [OUT_WEIGHTS] = {NULL, 4, {B, H, T, S}},
        [OUT_HEADS] = {NULL, 3, {B, T, H * hs}},
        [OUT_OUT] = {NULL, 3, {B, T, C}}};
    for (int role = OUT_Q; role <= OUT_OUT; role++) {
        engine_tensor t = shape[role];
        if (!attend_wants(c, role))
            continue;
        if (!m->heads && t.rank == 4)       /* (B,1,T,hs) is (B,T,hs) */
            t = (engine_tensor){NULL, 3, {B, t.dim[2], t.dim[3]}};
        t.data = p;
        p += engine_numel(&t);
        set_out(r, m, role, t, 1);
    }
    static const int in_roles[5] = {IN_X, IN_WQ, IN_WK, IN_WV, IN_WO};
    for (int i = 0; i < 5; i++)
        set_out(r, m, OUT_X + i, c->in[in_roles[i]], 1);
    set_out(r, m, OUT_BO, c->in[IN_BO], 1);
    return p;
}

int api_call_fill(api_call *c, api_result *r)
{
    memset(r, 0, sizeof *r);
    /* + 3: /bow's max_abs_diff */
    const int64_t total = api_cost_floats(&c->cost) + 3;
    r->block = malloc((size_t)total * sizeof *r->block);
    if (!r->block)
        return 0;
    if (c->m->family == API_BLOCK || c->m->family == API_GPT)
        return api_lecture_fill(c, r, r->block);
    float *p = lay_inputs(c, r->block);
    if (c->seed.present)
        draw(c);
    for (int i = 0; i < c->m->ninputs; i++) {
        const int role = c->m->inputs[i].role;
        if (c->sent[role])
            c->src->fill(c->src->ctx, c, role, &c->in[role]);
    }
    if (c->m->family == API_ATTEND)
        lay_attend_outputs(c, r, p);
    else
        set_out(r, c->m, OUT_X, c->in[IN_X], c->seed.present);
    return 1;
}

void api_result_free(api_result *r)
{
    free(r->block);
    free(r->ids);
    free(r->tokens);
    free(r->text);
    free(r->aux);
    memset(r, 0, sizeof *r);
}

/* ==== computing ==== */

/* Runs one /bow method: wei (T,T) is the matrix it applies, out (B,T,C)
 * the result.  scratch holds T*T floats for the loop's identity input. */
static void bow_method(int method, engine_tensor *wei, engine_tensor *out,
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

static int compute_bow(api_call *c, api_result *r, api_error *e)
{
    const api_model *m = c->m;
    const int64_t B = c->B, T = c->T, n = B * T * c->C;
    const int first = c->method == M_ALL ? M_LOOP : c->method;
    const int last = c->method == M_ALL ? M_SOFTMAX : c->method;
    engine_tensor wei[3], out[3];
    float *p = r->block + n;
    for (int k = first; k <= last; k++) {
        wei[k] = (engine_tensor){p, 2, {T, T}};
        p += T * T;
        out[k] = (engine_tensor){p, 3, {B, T, c->C}};
        p += n;
    }
    api_compute_begin();
    const int nthreads = api_threads_for((double)B * T * T * c->C);
    for (int k = first; k <= last; k++)
        bow_method(k, &wei[k], &out[k], &c->in[IN_X], p, nthreads);
    api_compute_end();
    for (int k = first; k <= last; k++)
        if (!all_finite(&out[k])) {
            api_fail(e, 422, "non_finite_result", "out",
                     "the %s average overflowed float32 (inf or NaN); the "
                     "inputs are too large in magnitude", method_names[k]);
            return 0;
        }
    set_out(r, m, OUT_WEIGHTS, wei[last], 1);
    set_out(r, m, OUT_OUT, out[last], 1);
    if (c->method != M_ALL)
        return 1;
    static const int pairs[3][2] = {{M_LOOP, M_MATMUL}, {M_LOOP, M_SOFTMAX},
                                    {M_MATMUL, M_SOFTMAX}};
    float *d = p + T * T;       /* after the identity scratch */
    r->allclose = 1;
    for (int i = 0; i < 3; i++) {
        const float *pa = out[pairs[i][0]].data, *pb = out[pairs[i][1]].data;
        d[i] = engine_max_abs_diff(pa, pb, n);
        r->allclose &= engine_allclose(pa, pb, n, 1e-5, 1e-8);
    }
    set_out(r, m, OUT_MAX_ABS_DIFF, (engine_tensor){d, 1, {3}}, 1);
    set_out(r, m, OUT_ALLCLOSE, (engine_tensor){NULL, 1, {1}}, 1);
    return 1;
}

/* The first requested output holding inf/NaN where a number belongs, or
 * -1.  Masked scores (causal or mask) are -inf by design and skipped.
 * Only what is returned is checked: an overflow in scores shows in weights
 * if those are asked for, and need not fail a request for q alone. */
static int first_non_finite(const api_call *c, const api_result *r)
{
    const api_cross x = cross_of(c);
    for (int o = 0; o < c->norder; o++) {
        const int i = c->order[o];
        const int role = c->m->outputs[i].role;
        if (role >= OUT_X)
            continue;           /* inputs were checked on the way in */
        const engine_tensor *t = &r->t[i];
        const int64_t n = engine_numel(t);
        /* scores: (B,T,S) or (B,H,T,S) */
        const int64_t T = t->dim[t->rank - 2], S = t->dim[t->rank - 1];
        const int64_t bstride = engine_numel(t) / t->dim[0];
        for (int64_t k = 0; k < n; k++) {
            if (isfinite(t->data[k]))
                continue;
            if (role == OUT_SCORES && t->data[k] == -INFINITY &&
                api_cross_hidden(&x, c->causal, k / bstride, k / S % T,
                                 k % S))
                continue;
            return i;
        }
    }
    return -1;
}

/* Output `role` of the result, or NULL when not asked for. */
static engine_tensor *wanted(api_result *r, const api_call *c, int role)
{
    const int i = api_model_output_role(c->m, role);
    return i >= 0 && r->t[i].data ? &r->t[i] : NULL;
}

static int compute_attend(api_call *c, api_result *r, api_error *e)
{
    const api_model *m = c->m;
    engine_tensor *in = c->in;
    engine_attention_args args = {c->causal, c->scale,
                                  c->sent[IN_MASK] ? &in[IN_MASK] : NULL,
                                  api_cancel_flag()};
    float *scratch = r->block + api_cost_floats(&c->cost) - c->cost.scratch;
    engine_tensor *wei = wanted(r, c, OUT_WEIGHTS);
    api_compute_begin();
    const int nthreads = api_threads_for(c->cost.madds);
    /* /attention is the H = 1 case without projection */
    const int stopped = engine_attend(
        wanted(r, c, OUT_Q), wanted(r, c, OUT_K), wanted(r, c, OUT_V),
        wanted(r, c, OUT_SCORES), wei, wanted(r, c, OUT_HEADS),
        wanted(r, c, OUT_OUT), &in[IN_X], c->sent[IN_CTX] ? &in[IN_CTX] : NULL,
        &in[IN_WQ], &in[IN_WK], &in[IN_WV], m->heads ? &in[IN_WO] : NULL,
        m->heads ? &in[IN_BO] : NULL, &args, scratch, nthreads);
    if (!stopped && c->average && wei) {
        /* nn.MultiheadAttention's average_attn_weights: the mean over
         * heads, laid out after the other outputs */
        engine_tensor avg = {scratch - c->B * c->T * c->S, 3,
                             {c->B, c->T, c->S}};
        engine_mean_heads(&avg, wei, nthreads);
        *wei = avg;
    }
    api_compute_end();
    if (stopped) {
        api_fail(e, 503, "cancelled", NULL, "the request was cancelled "
                 "before its result was computed");
        return 0;
    }
    const int bad = first_non_finite(c, r);
    if (bad >= 0) {
        const char *name = m->outputs[bad].name;
        api_fail(e, 422, "non_finite_result", name,
                 "%s overflowed float32 (inf or NaN); the inputs or the "
                 "scale are too large in magnitude", name);
        return 0;
    }
    return 1;
}

int api_call_compute(api_call *c, api_result *r, api_error *e)
{
    if (c->m->family == API_BLOCK || c->m->family == API_GPT)
        return api_lecture_compute(c, r, e);
    return c->m->family == API_BOW ? compute_bow(c, r, e)
                                   : compute_attend(c, r, e);
}
