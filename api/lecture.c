/* lecture.c -- the typed call of the lecture's Block (/block) and
 * GPTLanguageModel (/gpt and each --models model): their fields, shapes,
 * limits and cost, one allocation, the engine (engine/gpt.h), the native
 * answer.  model.c dispatches here for the API_BLOCK and API_GPT
 * families; the codecs are the same as every model's. */
#include "model.h"
#include "gpt_model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Most tokens one request may generate: each is a forward pass over up to
 * block_size tokens (no KV cache), so this bounds a request's time. */
#define MAX_NEW_TOKENS 1024

/* The weights a call runs: views into the call's block (a seeded model,
 * explicit Block weights) or a --models model's own. */
typedef struct lecture_aux {
    engine_gpt_weights w;
    engine_block_weights bw;        /* /block */
    engine_block_weights blocks[];  /* a seeded GPT's n_layer */
} lecture_aux;

/* ==== small readers ==== */

static int fail_missing(const char *name, const char *why, api_error *e)
{
    api_fail(e, 422, "missing_field", name, "missing required field \"%s\"%s",
             name, why);
    return 0;
}

static const char *const size_names[5] = {"vocab_size", "block_size",
                                          "n_embd", "n_head", "n_layer"};

static int64_t *size_field(engine_gpt_config *g, int i)
{
    int64_t *f[5] = {&g->vocab_size, &g->block_size, &g->n_embd, &g->n_head,
                     &g->n_layer};
    return f[i];
}

/* n_head within n_embd (head_size = n_embd // n_head must be >= 1). */
static int check_heads(int64_t C, int64_t H, const char *path, api_error *e)
{
    if (H <= C)
        return api_check_heads(H, path, e);
    api_fail(e, 422, "invalid_value", path, "n_head = %lld is more than "
             "n_embd = %lld: each head's size, n_embd // n_head, would be 0",
             (long long)H, (long long)C);
    return 0;
}

/* "return" (unless the codec set the order), with the model's defaults;
 * extra defaults appended when absent (generate's tokens and text). */
static int read_order(api_call *c, const json_t *o, const char *const *extra,
                      api_error *e)
{
    const api_model *m = c->m;
    if (c->src->preset_order)
        return 1;
    const char *names[API_MAX_OUT];
    api_outputs outs = {names, m->noutputs, m->return_list, {0}, 0};
    for (int i = 0; i < m->noutputs; i++)
        names[i] = m->outputs[i].name;
    for (int i = 0; i < 2 && m->return_default[i]; i++)
        outs.defaults[outs.ndefaults++] =
            api_model_output(m, m->return_default[i]);
    for (int i = 0; extra && extra[i]; i++)
        outs.defaults[outs.ndefaults++] = api_model_output(m, extra[i]);
    return api_read_return(o, &outs, c->order, &c->norder, e);
}

static int wants(const api_call *c, int role)
{
    for (int i = 0; i < c->norder; i++)
        if (c->m->outputs[c->order[i]].role == role)
            return 1;
    return 0;
}

/* ==== reading: /block ==== */

static int read_block(api_call *c, const json_t *o, api_error *e)
{
    const json_t *jc = json_object_get(o, "n_embd");
    const json_t *jh = json_object_get(o, "n_head");
    if (!c->sent[IN_X])
        return fail_missing("x", " (B x T x n_embd)", e);
    if (!c->seed.present) {
        for (int i = 0; i < c->m->ninputs; i++)
            if (!c->sent[c->m->inputs[i].role])
                return fail_missing(c->m->inputs[i].name, "; without a seed "
                                    "every weight of the Block is sent", e);
        if (jc || jh) {
            const char *f = jc ? "n_embd" : "n_head";
            api_fail(e, 422, "invalid_value", f, "%s only applies with a seed "
                     "(the weights' shapes give it); add \"seed\" or drop "
                     "\"%s\"", f, f);
            return 0;
        }
    } else if (!jh && !c->sent[IN_WQ] && !c->sent[IN_WK] && !c->sent[IN_WV]) {
        return fail_missing("n_head", " with a seed (Block(n_embd, n_head))",
                            e);
    }
    c->g.n_head = 0;
    c->g.n_embd = 0;
    if ((jc && !api_read_count(jc, "n_embd", &c->g.n_embd, e)) ||
        (jh && !api_read_count(jh, "n_head", &c->g.n_head, e)) ||
        !read_order(c, o, NULL, e) || !api_read_format(o, &c->format, e))
        return 0;
    return api_call_read_tensors(c, e);
}

/* ==== reading: /gpt ==== */

/* The model: the URL's (a --models model's v2 routes), "model", or a
 * seeded one of the five sizes. */
static int read_gpt_model(api_call *c, const json_t *o, api_error *e)
{
    const json_t *jm = json_object_get(o, "model");
    c->gm = c->m->gpt;
    if (jm) {
        if (!json_is_string(jm)) {
            api_fail(e, 422, "wrong_type", "model", "model must be the name "
                     "of a --models model (GET /models), not %s",
                     codec_type_name(jm));
            return 0;
        }
        const api_model *m = api_model_find(json_string_value(jm));
        if (!m || !m->gpt) {
            char list[256] = "";
            size_t k = 0;
            for (int i = api_nbuiltin; i < api_nmodels && k < sizeof list; i++)
                k += (size_t)snprintf(list + k, sizeof list - k, "%s%s",
                                      k ? ", " : "", api_models[i].name);
            api_fail(e, 404, "unknown_model", "model", "no model \"%.60s\" "
                     "is loaded; models: %s", json_string_value(jm),
                     k ? list : "none (start attnd with --models DIR)");
            return 0;
        }
        c->gm = m->gpt;
    }
    if (c->gm) {
        const char *f = c->seed.present ? "seed" : NULL;
        for (int i = 0; !f && i < 5; i++)
            if (json_object_get(o, size_names[i]))
                f = size_names[i];
        if (f) {
            api_fail(e, 422, "invalid_value", f, "%s does not apply to model "
                     "%s: its weights and sizes are its own (drop \"%s\", or "
                     "drop \"model\" for a seeded model)", f, c->gm->name, f);
            return 0;
        }
        c->g = c->gm->w.cfg;
        return 1;
    }
    if (!c->seed.present)
        return fail_missing("model", ": name a --models model (GET /models), "
                            "or send \"seed\" with vocab_size, block_size, "
                            "n_embd, n_head and n_layer for a seeded one", e);
    for (int i = 0; i < 5; i++) {
        const json_t *v = json_object_get(o, size_names[i]);
        if (!v)
            return fail_missing(size_names[i], " with a seed "
                                "(GPTLanguageModel's sizes)", e);
        if (!api_read_count(v, size_names[i], size_field(&c->g, i), e))
            return 0;
    }
    if (c->g.vocab_size > API_GPT_MAX_VOCAB) {
        api_fail(e, 413, "dimension_too_large", "vocab_size", "vocab_size = "
                 "%lld is over attnd's limit of %d", (long long)c->g.vocab_size,
                 API_GPT_MAX_VOCAB);
        return 0;
    }
    if (c->g.n_layer > API_GPT_MAX_LAYERS) {
        api_fail(e, 413, "dimension_too_large", "n_layer", "n_layer = %lld is "
                 "over attnd's limit of %d layers", (long long)c->g.n_layer,
                 API_GPT_MAX_LAYERS);
        return 0;
    }
    return check_heads(c->g.n_embd, c->g.n_head, "n_head", e);
}

/* One text: its length in tokens, every character checked against the
 * vocabulary. */
static int text_tokens(const api_call *c, const json_t *s, const char *path,
                       int64_t *n, api_error *e)
{
    if (!json_is_string(s)) {
        api_fail(e, 422, "wrong_type", path, "%s must be a string, not %s",
                 path, codec_type_name(s));
        return 0;
    }
    const char *t = json_string_value(s);
    const size_t len = json_string_length(s);
    *n = api_gpt_encode(c->gm, t, len, NULL, 0);
    if (*n < 0) {
        const size_t at = (size_t)(-1 - *n);
        const int k = api_utf8_seq((const unsigned char *)t + at,
                                   (const unsigned char *)t + len);
        api_fail(e, 422, "unknown_character", path, "%s has \"%.*s\" at "
                 "byte %zu, not in model %s's vocabulary (GET /models lists "
                 "it)", path, k ? k : 1, t + at, at, c->gm->name);
        return 0;
    }
    if (*n == 0) {
        api_fail(e, 422, "empty_dimension", path, "%s is empty: send at "
                 "least one character", path);
        return 0;
    }
    return 1;
}

/* "text": a string (B = 1) or B strings of as many characters. */
static int read_text(api_call *c, const json_t *v, api_error *e)
{
    if (!c->gm) {
        api_fail(e, 422, "invalid_value", "text", "text needs a model with a "
                 "vocabulary (\"model\"); a seeded model takes idx");
        return 0;
    }
    int64_t T = 0;
    c->in[IN_IDX] = (engine_tensor){NULL, 2, {1, 0}};
    if (!json_is_array(v)) {
        if (!text_tokens(c, v, "text", &T, e))
            return 0;
    } else {
        if (json_array_size(v) == 0) {
            api_fail(e, 422, "empty_dimension", "text", "text is an empty "
                     "array: send a string or strings");
            return 0;
        }
        for (size_t i = 0; i < json_array_size(v); i++) {
            char path[32];
            int64_t n;
            snprintf(path, sizeof path, "text[%zu]", i);
            if (!text_tokens(c, json_array_get(v, i), path, &n, e))
                return 0;
            if (i && n != T) {
                api_fail(e, 422, "ragged_array", path, "%s has %lld "
                         "characters but text[0] has %lld; every text of a "
                         "batch has the same length", path, (long long)n,
                         (long long)T);
                return 0;
            }
            T = n;
        }
        c->in[IN_IDX].dim[0] = (int64_t)json_array_size(v);
    }
    c->in[IN_IDX].dim[1] = T;
    c->text = v;
    return 1;
}

static int read_gpt(api_call *c, const json_t *o, api_error *e)
{
    static const char *const gen_default[] = {"tokens", NULL};
    static const char *const gen_text[] = {"tokens", "text", NULL};
    const json_t *jt = json_object_get(o, "text");
    const json_t *jn = json_object_get(o, "max_new_tokens");
    const json_t *js = json_object_get(o, "sample_seed");
    if (!read_gpt_model(c, o, e))
        return 0;
    if (jt && c->sent[IN_IDX]) {
        api_fail(e, 422, "invalid_value", "text", "send idx or text, not "
                 "both");
        return 0;
    }
    if (!jt && !c->sent[IN_IDX])
        return fail_missing("idx", " (token ids, T or B x T), or send "
                            "\"text\"", e);
    if (jn) {
        if (!codec_need_integer(jn, "max_new_tokens", e))
            return 0;
        const json_int_t n = json_integer_value(jn);
        if (n < 0) {
            api_fail(e, 422, "out_of_range", "max_new_tokens", "max_new_tokens"
                     " = %lld; it must be at least 0", (long long)n);
            return 0;
        }
        if (n > MAX_NEW_TOKENS) {
            api_fail(e, 413, "dimension_too_large", "max_new_tokens",
                     "max_new_tokens = %lld is over attnd's limit of %d "
                     "tokens a request", (long long)n, MAX_NEW_TOKENS);
            return 0;
        }
        c->max_new = n;
    }
    if (js) {
        if (!codec_need_integer(js, "sample_seed", e))
            return 0;
        if (json_integer_value(js) < 0) {
            api_fail(e, 422, "out_of_range", "sample_seed", "sample_seed = "
                     "%lld; it must be from 0 to 2^63-1",
                     (long long)json_integer_value(js));
            return 0;
        }
        c->sample_seed = (uint64_t)json_integer_value(js);
    } else if (jn) {
        c->sample_seed = 0;
    }
    if (!read_order(c, o, !jn ? NULL : c->gm ? gen_text : gen_default, e) ||
        !api_read_format(o, &c->format, e))
        return 0;
    for (int i = 0; i < c->norder; i++)
        if (c->m->outputs[c->order[i]].role == OUT_TEXT && !c->gm) {
            api_fail(e, 422, "invalid_value", "return", "text needs a model "
                     "with a vocabulary (\"model\"); a seeded model returns "
                     "tokens");
            return 0;
        }
    if (jt)
        return read_text(c, jt, e);
    return api_call_read_tensors(c, e);
}

int api_lecture_read(api_call *c, const json_t *o, api_error *e)
{
    return c->m->family == API_BLOCK ? read_block(c, o, e) : read_gpt(c, o, e);
}

/* ==== token ids (idx) ==== */

int api_idx_check(const api_call *c, double v, const char *path,
                  api_error *e)
{
    const int64_t V = c->g.vocab_size;
    if (v >= 0 && v < (double)V)
        return 1;
    api_fail(e, 422, "out_of_range", path, "%s = %.0f is not a token id: "
             "%s%s's ids are 0 to %lld", path, v, c->gm ? "model " : "",
             c->gm ? c->gm->name : "this model", (long long)V - 1);
    return 0;
}

/* One id of a nested idx at path. */
static int idx_leaf(const api_call *c, const json_t *v, const char *path,
                    api_error *e)
{
    if (json_is_array(v)) {
        api_fail(e, 422, "wrong_rank", "idx", "idx must be 1-D (T) or 2-D "
                 "(B x T) but is nested deeper");
        return 0;
    }
    return codec_need_integer(v, path, e) &&
           api_idx_check(c, (double)json_integer_value(v), path, e);
}

int api_idx_shape(const api_call *c, const json_t *v, engine_tensor *t,
                  api_error *e)
{
    char path[64];
    if (!json_is_array(v)) {
        api_fail(e, 422, "wrong_type", "idx", "idx must be an array of token "
                 "ids (T) or of such arrays (B x T), not %s",
                 codec_type_name(v));
        return 0;
    }
    const size_t n = json_array_size(v);
    if (n == 0) {
        api_fail(e, 422, "empty_dimension", "idx", "idx is empty: send at "
                 "least one token id");
        return 0;
    }
    const json_t *first = json_array_get(v, 0);
    if (!json_is_array(first)) {
        *t = (engine_tensor){NULL, 1, {(int64_t)n}};
        for (size_t i = 0; i < n; i++) {
            snprintf(path, sizeof path, "idx[%zu]", i);
            if (!idx_leaf(c, json_array_get(v, i), path, e))
                return 0;
        }
        return api_check_tensor_size(t, "idx", e);
    }
    const size_t T = json_array_size(first);
    if (T == 0) {
        api_fail(e, 422, "empty_dimension", "idx[0]", "idx[0] is empty: "
                 "every row of idx holds at least one token id");
        return 0;
    }
    *t = (engine_tensor){NULL, 2, {(int64_t)n, (int64_t)T}};
    if (!api_check_tensor_size(t, "idx", e))
        return 0;
    for (size_t b = 0; b < n; b++) {
        const json_t *row = json_array_get(v, b);
        snprintf(path, sizeof path, "idx[%zu]", b);
        if (!json_is_array(row) || json_array_size(row) != T) {
            api_fail(e, 422, "ragged_array", path, "%s is %s but idx[0] has "
                     "%zu ids: idx is B x T, every row as long", path,
                     json_is_array(row) ? "of another length"
                                        : codec_type_name(row), T);
            return 0;
        }
        for (size_t i = 0; i < T; i++) {
            snprintf(path, sizeof path, "idx[%zu][%zu]", b, i);
            if (!idx_leaf(c, json_array_get(row, i), path, e))
                return 0;
        }
    }
    return 1;
}

void api_idx_fill(const json_t *v, engine_tensor *t)
{
    int64_t k = 0;
    for (size_t i = 0; i < json_array_size(v); i++) {
        const json_t *x = json_array_get(v, i);
        if (!json_is_array(x)) {
            t->data[k++] = (float)json_integer_value(x);
            continue;
        }
        for (size_t j = 0; j < json_array_size(x); j++)
            t->data[k++] = (float)json_integer_value(json_array_get(x, j));
    }
}

/* ==== plan: shapes, limits, cost ==== */

/* Every output asked for under the element cap (sizes by role). */
static int wanted_sizes(const api_call *c, int64_t (*size)(const api_call *,
                                                           int),
                        api_error *e)
{
    for (int i = 0; i < c->norder; i++) {
        const api_output_spec *o = &c->m->outputs[c->order[i]];
        char what[64];
        snprintf(what, sizeof what, "the %s output's size", o->name);
        if (!api_check_size(size(c, o->role), what, "return", e))
            return 0;
    }
    return 1;
}

static int64_t block_out_size(const api_call *c, int role);
static int64_t gpt_out_size(const api_call *c, int role);

/* An explicit Block weight against the shape (H, hs, C) gives it. */
static int block_weight(api_call *c, int role, const char *name,
                        const int64_t *want, int rank, const char *layout,
                        api_error *e)
{
    if (!c->sent[role])
        return 1;
    const engine_tensor *t = &c->in[role];
    int ok = t->rank == rank;
    for (int d = 0; ok && d < rank; d++)
        ok = t->dim[d] == want[d];
    if (ok)
        return 1;
    char got[64] = "", exp[64] = "";
    size_t a = 0, b = 0;
    for (int d = 0; d < t->rank; d++)
        a += (size_t)snprintf(got + a, sizeof got - a, "%s%lld",
                              d ? " x " : "", (long long)t->dim[d]);
    for (int d = 0; d < rank; d++)
        b += (size_t)snprintf(exp + b, sizeof exp - b, "%s%lld",
                              d ? " x " : "", (long long)want[d]);
    api_fail(e, 422, "shape_mismatch", name, "%s is %s but must be %s (%s) "
             "with n_embd = %lld (x's last dimension) and n_head = %lld",
             name, got, exp, layout, (long long)c->C, (long long)c->H);
    return 0;
}

static int plan_block(api_call *c, api_error *e)
{
    const engine_tensor *x = &c->in[IN_X];
    c->B = x->dim[0];
    c->T = c->S = x->dim[1];
    c->C = x->dim[2];
    if (c->g.n_embd && c->g.n_embd != c->C) {
        api_fail(e, 422, "shape_mismatch", "n_embd", "n_embd is %lld but x "
                 "is %lld x %lld x %lld", (long long)c->g.n_embd,
                 (long long)c->B, (long long)c->T, (long long)c->C);
        return 0;
    }
    const char *hpath = "n_head";
    c->H = c->g.n_head;
    for (int r = IN_WQ; !c->H && r <= IN_WV; r++)
        if (c->sent[r]) {
            c->H = c->in[r].dim[0];
            hpath = r == IN_WQ ? "wq" : r == IN_WK ? "wk" : "wv";
        }
    if (!check_heads(c->C, c->H, hpath, e))
        return 0;
    const int64_t C = c->C, H = c->H, hs = C / H, D = H * hs;
    c->hs = hs;
    c->g.n_embd = C;
    c->g.n_head = H;
    if (!api_check_dims(c->B, c->T, hs, "x", "x", hpath, e))
        return 0;
    static const char *const qkv[3] = {"wq", "wk", "wv"};
    const int64_t wqkv[3] = {H, hs, C}, wo[2] = {C, D}, c1[1] = {C};
    const int64_t f1[2] = {4 * C, C}, b1[1] = {4 * C}, f2[2] = {C, 4 * C};
    for (int i = 0; i < 3; i++)
        if (!block_weight(c, IN_WQ + i, qkv[i], wqkv, 3, "n_head x head_size "
                          "x n_embd, head_size = n_embd // n_head", e))
            return 0;
    if (!block_weight(c, IN_WO, "wo", wo, 2, "n_embd x n_head*head_size: "
                      "sa.proj.weight", e) ||
        !block_weight(c, IN_BO, "bo", c1, 1, "sa.proj.bias", e) ||
        !block_weight(c, IN_FC1_W, "fc1_w", f1, 2, "ffwd.net.0.weight", e) ||
        !block_weight(c, IN_FC1_B, "fc1_b", b1, 1, "ffwd.net.0.bias", e) ||
        !block_weight(c, IN_FC2_W, "fc2_w", f2, 2, "ffwd.net.2.weight", e) ||
        !block_weight(c, IN_FC2_B, "fc2_b", c1, 1, "ffwd.net.2.bias", e) ||
        !block_weight(c, IN_LN1_W, "ln1_w", c1, 1, "ln1.weight", e) ||
        !block_weight(c, IN_LN1_B, "ln1_b", c1, 1, "ln1.bias", e) ||
        !block_weight(c, IN_LN2_W, "ln2_w", c1, 1, "ln2.weight", e) ||
        !block_weight(c, IN_LN2_B, "ln2_b", c1, 1, "ln2.bias", e))
        return 0;
    const int64_t B = c->B, T = c->T;
    (void)B, (void)T;
    return api_check_size(4 * C * C, "ffwd.net.0.weight (4 n_embd x n_embd)",
                          "x", e) &&
           wanted_sizes(c, block_out_size, e);
}

static int plan_gpt(api_call *c, api_error *e)
{
    const engine_gpt_config *g = &c->g;
    engine_tensor *idx = &c->in[IN_IDX];
    const char *ipath = c->text ? "text" : "idx";
    if (idx->rank == 1)             /* T ids: one sequence */
        *idx = (engine_tensor){NULL, 2, {1, idx->dim[0]}};
    c->B = idx->dim[0];
    c->T = c->S = idx->dim[1];
    c->C = g->n_embd;
    c->H = g->n_head;
    c->hs = g->n_embd / g->n_head;
    if (!api_check_dims(c->B, c->T, 0, ipath, ipath, NULL, e))
        return 0;
    if (c->T > g->block_size) {
        api_fail(e, 413, "dimension_too_large", ipath, "%s has %lld tokens "
                 "but %s%s's block_size is %lld: the position embedding has "
                 "no more rows (send the last %lld)", ipath, (long long)c->T,
                 c->gm ? "model " : "this model",
                 c->gm ? c->gm->name : "", (long long)g->block_size,
                 (long long)g->block_size);
        return 0;
    }
    const int64_t B = c->B, T = c->T, V = g->vocab_size, C = g->n_embd;
    const int64_t L = g->n_layer, H = g->n_head;
    if (!c->gm) {
        if (!api_check_size(V * C, "token_embedding_table (vocab_size x "
                            "n_embd)", "vocab_size", e) ||
            !api_check_size(g->block_size * C, "position_embedding_table "
                            "(block_size x n_embd)", "block_size", e) ||
            !api_check_size(4 * C * C, "ffwd.net.0.weight (4 n_embd x "
                            "n_embd)", "n_embd", e))
            return 0;
    }
    (void)L, (void)H;
    return wanted_sizes(c, gpt_out_size, e) &&
           api_check_size(B * (T + c->max_new), "the tokens (B x (T + "
                          "max_new_tokens))", "max_new_tokens", e);
}

int api_lecture_plan(api_call *c, api_error *e)
{
    return c->m->family == API_BLOCK ? plan_block(c, e) : plan_gpt(c, e);
}

/* Multiply-adds of one Block on (B,T). */
static double block_madds(double B, double T, double C, double H, double hs)
{
    const double D = H * hs;
    return B * T * (4 * C * D + 8 * C * C + 2 * T * D);
}

/* The sizes of a Block's outputs (B,T,...). */
static int64_t block_out_size(const api_call *c, int role)
{
    const int64_t B = c->B, T = c->T, C = c->C, H = c->H, hs = c->hs;
    switch (role) {
    case OUT_Q: case OUT_K: case OUT_V: return B * H * T * hs;
    case OUT_SCORES: case OUT_WEIGHTS: return B * H * T * T;
    case OUT_HEADS: return B * T * H * hs;
    case OUT_HIDDEN: return B * T * 4 * C;
    default: return B * T * C;
    }
}

static int64_t gpt_out_size(const api_call *c, int role)
{
    const engine_gpt_config *g = &c->g;
    const int64_t B = c->B, T = c->T;
    switch (role) {
    case OUT_LOGITS: return B * T * g->vocab_size;
    case OUT_LAST_LOGITS: case OUT_PROBS: return B * g->vocab_size;
    case OUT_WEIGHTS: return B * g->n_layer * g->n_head * T * T;
    case OUT_HIDDEN: return B * (g->n_layer + 1) * T * g->n_embd;
    case OUT_TOKENS: return B * (T + c->max_new);
    default: return B;      /* text: B strings */
    }
}

static double gpt_madds(const api_call *c, double B, double Tc)
{
    const engine_gpt_config *g = &c->g;
    return g->n_layer * block_madds(B, Tc, g->n_embd, g->n_head, c->hs) +
           B * Tc * g->n_embd * g->vocab_size;
}

api_cost api_lecture_cost(const api_call *c)
{
    api_cost k = {0};
    const int nthreads = api_max_threads();
    if (c->m->family == API_BLOCK) {
        k.inputs = c->B * c->T * c->C + engine_block_numel(c->C, c->H);
        k.outputs = c->B * c->T * c->C;             /* out, always */
        for (int role = 0; role < API_OUT_ROLES; role++)
            if (role != OUT_OUT && wants(c, role))
                k.outputs += block_out_size(c, role);
        k.scratch = engine_block_scratch(c->B, c->T, c->C, c->H, nthreads);
        k.madds = block_madds(c->B, c->T, c->C, c->H, c->hs);
        return k;
    }
    const engine_gpt_config *g = &c->g;
    const int64_t B = c->B, T = c->T;
    /* the ids are held as int64 beside the block; a seeded model's
     * parameters are in it */
    k.inputs = 2 * B * T + (c->gm ? 0 : engine_gpt_numel(g));
    for (int role = OUT_WEIGHTS; role < OUT_TOKENS; role++)
        if (wants(c, role))
            k.outputs += gpt_out_size(c, role);
    if (c->max_new || wants(c, OUT_TOKENS) || wants(c, OUT_TEXT))
        k.outputs += 2 * B * (T + c->max_new);      /* int64 tokens */
    k.scratch = engine_gpt_scratch(g, B, T, nthreads);
    if (c->max_new)
        k.scratch += engine_gpt_generate_scratch(g, B, nthreads);
    /* a forward on Tc tokens: the Blocks, then lm_head (B*Tc*C*V); each
     * generated token is one forward on up to block_size tokens */
    double ctx = (double)T;
    k.madds = gpt_madds(c, B, ctx);
    for (int64_t s = 0; s < c->max_new; s++) {
        ctx = fmin(ctx + 1, (double)g->block_size);
        k.madds += gpt_madds(c, B, ctx);
    }
    return k;
}

/* ==== one allocation, the inputs filled ==== */

static void set_out(api_result *r, const api_model *m, int role,
                    engine_tensor t)
{
    const int i = api_model_output_role(m, role);
    if (i >= 0) {
        r->t[i] = t;
        r->produced[i] = 1;
    }
}

/* Block's parameters at p (state_dict order), drawn from the seed, then
 * the explicit ones over them (every draw still happens, so the drawn
 * ones keep PyTorch's values). */
static float *fill_block(api_call *c, api_result *r, lecture_aux *a,
                         float *p)
{
    const int64_t B = c->B, T = c->T, C = c->C, H = c->H, hs = c->hs;
    engine_block_weights *w = &a->bw;
    c->in[IN_X].data = p;
    p += B * T * C;
    engine_block_layout(w, p, C, H);
    p += engine_block_numel(C, H);
    if (c->seed.present) {
        engine_rng g;
        engine_rng_seed(&g, c->seed.value);
        engine_block_init(&g, w, C, H);
    }
    float *const dst[API_MAX_IN] = {
        [IN_WQ] = w->wq, [IN_WK] = w->wk, [IN_WV] = w->wv,
        [IN_WO] = w->proj_w, [IN_BO] = w->proj_b, [IN_FC1_W] = w->fc1_w,
        [IN_FC1_B] = w->fc1_b, [IN_FC2_W] = w->fc2_w, [IN_FC2_B] = w->fc2_b,
        [IN_LN1_W] = w->ln1_w, [IN_LN1_B] = w->ln1_b, [IN_LN2_W] = w->ln2_w,
        [IN_LN2_B] = w->ln2_b};
    for (int r2 = IN_WQ; r2 < API_MAX_IN; r2++)
        if (dst[r2] && c->sent[r2])
            c->in[r2].data = dst[r2];
    /* outputs: out always, the others asked for */
    const engine_tensor shape[API_OUT_ROLES] = {
        [OUT_Q] = {NULL, 4, {B, H, T, hs}}, [OUT_K] = {NULL, 4, {B, H, T, hs}},
        [OUT_V] = {NULL, 4, {B, H, T, hs}},
        [OUT_SCORES] = {NULL, 4, {B, H, T, T}},
        [OUT_WEIGHTS] = {NULL, 4, {B, H, T, T}},
        [OUT_HEADS] = {NULL, 3, {B, T, H * hs}},
        [OUT_OUT] = {NULL, 3, {B, T, C}}, [OUT_LN1] = {NULL, 3, {B, T, C}},
        [OUT_ATTN] = {NULL, 3, {B, T, C}}, [OUT_RESID] = {NULL, 3, {B, T, C}},
        [OUT_LN2] = {NULL, 3, {B, T, C}},
        [OUT_HIDDEN] = {NULL, 3, {B, T, 4 * C}}};
    for (int role = 0; role < API_OUT_ROLES; role++) {
        if (!shape[role].rank || (role != OUT_OUT && !wants(c, role)))
            continue;
        engine_tensor t = shape[role];
        t.data = p;
        p += engine_numel(&t);
        set_out(r, c->m, role, t);
    }
    return p;
}

/* The ids: the source's values (exact integers, held as floats) or the
 * text through the vocabulary. */
static void fill_ids(api_call *c, api_result *r, float *tmp)
{
    const int64_t B = c->B, T = c->T;
    if (c->text) {
        for (int64_t b = 0; b < B; b++) {
            const json_t *s = json_is_array(c->text)
                                  ? json_array_get(c->text, (size_t)b)
                                  : c->text;
            api_gpt_encode(c->gm, json_string_value(s), json_string_length(s),
                           r->ids + b * T, T);
        }
        c->text = NULL;
        return;
    }
    engine_tensor t = c->in[IN_IDX];
    t.data = tmp;
    c->src->fill(c->src->ctx, c, IN_IDX, &t);
    for (int64_t i = 0; i < B * T; i++)
        r->ids[i] = (int64_t)tmp[i];
}

static float *fill_gpt(api_call *c, api_result *r, lecture_aux *a, float *p)
{
    const engine_gpt_config *g = &c->g;
    const int64_t B = c->B, T = c->T, L = g->n_layer, H = g->n_head;
    if (c->gm) {
        a->w = c->gm->w;
    } else {
        engine_gpt_layout(&a->w, a->blocks, p, g);
        p += engine_gpt_numel(g);
        engine_rng gen;
        engine_rng_seed(&gen, c->seed.value);
        engine_gpt_init(&gen, &a->w);
    }
    fill_ids(c, r, p);              /* p: scratch not yet in use */
    const engine_tensor shape[API_OUT_ROLES] = {
        [OUT_LOGITS] = {NULL, 3, {B, T, g->vocab_size}},
        [OUT_LAST_LOGITS] = {NULL, 2, {B, g->vocab_size}},
        [OUT_PROBS] = {NULL, 2, {B, g->vocab_size}},
        [OUT_WEIGHTS] = {NULL, 5, {B, L, H, T, T}},
        [OUT_HIDDEN] = {NULL, 4, {B, L + 1, T, g->n_embd}},
        [OUT_TOKENS] = {NULL, 2, {B, T + c->max_new}},
        [OUT_TEXT] = {NULL, 1, {B}}};
    for (int role = 0; role < API_OUT_ROLES; role++) {
        if (!shape[role].rank || !wants(c, role))
            continue;
        engine_tensor t = shape[role];
        if (role != OUT_TOKENS && role != OUT_TEXT) {
            t.data = p;
            p += engine_numel(&t);
        }
        set_out(r, c->m, role, t);
    }
    return p;
}

int api_lecture_fill(api_call *c, api_result *r, float *p)
{
    const int64_t L = c->m->family == API_GPT ? c->g.n_layer : 0;
    r->aux = calloc(1, sizeof(lecture_aux) +
                           (size_t)L * sizeof(engine_block_weights));
    if (!r->aux)
        return 0;
    if (c->m->family == API_BLOCK) {
        fill_block(c, r, r->aux, p);
        for (int i = 0; i < c->m->ninputs; i++) {
            const int role = c->m->inputs[i].role;
            if (c->sent[role])
                c->src->fill(c->src->ctx, c, role, &c->in[role]);
        }
        return 1;
    }
    const int64_t n = c->B * (c->T + c->max_new);
    r->ids = malloc((size_t)(c->B * c->T) * sizeof *r->ids);
    r->tokens = malloc((size_t)n * sizeof *r->tokens);
    if (!r->ids || !r->tokens)
        return 0;
    fill_gpt(c, r, r->aux, p);
    return 1;
}

/* ==== computing ==== */

static engine_tensor *wanted(api_result *r, const api_call *c, int role)
{
    const int i = api_model_output_role(c->m, role);
    return i >= 0 && r->produced[i] && r->t[i].data ? &r->t[i] : NULL;
}

static float *data_of(api_result *r, const api_call *c, int role)
{
    engine_tensor *t = wanted(r, c, role);
    return t ? t->data : NULL;
}

/* The first returned float output holding inf/NaN (a Block's scores are
 * -inf above the diagonal by design), or -1. */
static int first_non_finite(const api_call *c, const api_result *r)
{
    for (int o = 0; o < c->norder; o++) {
        const int i = c->order[o];
        const engine_tensor *t = &r->t[i];
        if (c->m->outputs[i].dtype != API_FP32 || !t->data)
            continue;
        const int scores = c->m->outputs[i].role == OUT_SCORES;
        const int64_t n = engine_numel(t), T = c->T;
        for (int64_t k = 0; k < n; k++)
            if (!isfinite(t->data[k]) &&
                !(scores && t->data[k] == -INFINITY && k % T > k / T % T))
                return i;
    }
    return -1;
}

static void compute_block(api_call *c, api_result *r, float *scratch,
                          int nthreads)
{
    const engine_block_trace tr = {
        data_of(r, c, OUT_LN1), data_of(r, c, OUT_Q), data_of(r, c, OUT_K),
        data_of(r, c, OUT_V), data_of(r, c, OUT_SCORES),
        data_of(r, c, OUT_WEIGHTS), data_of(r, c, OUT_HEADS),
        data_of(r, c, OUT_ATTN), data_of(r, c, OUT_RESID),
        data_of(r, c, OUT_LN2), data_of(r, c, OUT_HIDDEN)};
    const lecture_aux *a = r->aux;
    engine_block(r->t[api_model_output_role(c->m, OUT_OUT)].data, &tr,
                 c->in[IN_X].data, &a->bw, c->B, c->T, c->C, c->H, scratch,
                 nthreads);
}

/* B NUL-terminated texts of the generated tokens. */
static int decode_text(const api_call *c, api_result *r)
{
    const int64_t B = c->B, n = c->T + c->max_new;
    size_t total = 0;
    for (int64_t b = 0; b < B; b++)
        total += api_gpt_decode(c->gm, r->tokens + b * n, n, NULL, 0) + 1;
    r->text = malloc(total);
    if (!r->text)
        return 0;
    char *p = r->text;
    for (int64_t b = 0; b < B; b++)
        p += api_gpt_decode(c->gm, r->tokens + b * n, n, p,
                            total - (size_t)(p - r->text)) + 1;
    return 1;
}

static int compute_gpt(api_call *c, api_result *r, float *scratch,
                       int nthreads)
{
    const lecture_aux *a = r->aux;
    const int64_t B = c->B, T = c->T, n = T + c->max_new;
    engine_gpt_out o = {data_of(r, c, OUT_LOGITS), data_of(r, c, OUT_PROBS),
                        data_of(r, c, OUT_WEIGHTS), data_of(r, c, OUT_HIDDEN),
                        0};
    float *last = data_of(r, c, OUT_LAST_LOGITS);
    if (last && !o.logits) {
        o.logits = last;
        o.last_only = 1;
    }
    if (o.logits || o.probs || o.weights || o.hidden)
        engine_gpt_forward(&o, r->ids, T, B, T, &a->w, scratch, nthreads);
    if (last && !o.last_only) {
        const int64_t V = c->g.vocab_size;
        for (int64_t b = 0; b < B; b++)
            memcpy(last + b * V, o.logits + (b * T + T - 1) * V,
                   (size_t)V * sizeof *last);
    }
    if (c->max_new) {
        engine_rng g;
        engine_rng_seed(&g, c->sample_seed);
        if (engine_gpt_generate(r->tokens, r->ids, B, T, c->max_new, &a->w,
                                &g, scratch, nthreads, api_cancel_flag()))
            return -1;
    } else {
        memcpy(r->tokens, r->ids, (size_t)(B * n) * sizeof *r->tokens);
    }
    return !wants(c, OUT_TEXT) || decode_text(c, r) ? 1 : 0;
}

int api_lecture_compute(api_call *c, api_result *r, api_error *e)
{
    float *scratch = r->block + api_cost_floats(&c->cost) - c->cost.scratch;
    api_compute_begin();
    const int nthreads = api_threads_for(c->cost.madds);
    int ok = 1;
    if (c->m->family == API_BLOCK)
        compute_block(c, r, scratch, nthreads);
    else
        ok = compute_gpt(c, r, scratch, nthreads);
    api_compute_end();
    if (ok < 0) {
        api_fail(e, 503, "cancelled", NULL, "the request was cancelled "
                 "before its result was computed");
        return 0;
    }
    if (!ok) {
        api_fail(e, 503, "out_of_memory", NULL, "the server could not "
                 "allocate memory for this request; retry later or send a "
                 "smaller request");
        return 0;
    }
    const int bad = first_non_finite(c, r);
    if (bad >= 0) {
        const char *name = c->m->outputs[bad].name;
        api_fail(e, 422, "non_finite_result", name, "%s overflowed float32 "
                 "(inf or NaN); the inputs or weights are too large in "
                 "magnitude", name);
        return 0;
    }
    return 1;
}

/* ==== the native answer ==== */

static void write_tokens(jsonw *w, const api_call *c, const api_result *r)
{
    const int64_t B = c->B, n = c->T + c->max_new;
    char buf[24];
    jw_lit(w, "[");
    for (int64_t b = 0; b < B; b++) {
        jw_lit(w, b ? ",[" : "[");
        for (int64_t t = 0; t < n; t++)
            jw_raw(w, buf, (size_t)snprintf(buf, sizeof buf, "%s%lld",
                                            t ? "," : "",
                                            (long long)r->tokens[b * n + t]));
        jw_lit(w, "]");
    }
    jw_lit(w, "]");
}

/* A JSON string of UTF-8 text (the vocabulary's characters). */
void api_jw_string(jsonw *w, const char *s)
{
    char buf[8];
    jw_lit(w, "\"");
    for (; *s; s++) {
        const unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            buf[0] = '\\';
            buf[1] = (char)ch;
            jw_raw(w, buf, 2);
        } else if (ch == '\n' || ch == '\t' || ch == '\r') {
            buf[0] = '\\';
            buf[1] = ch == '\n' ? 'n' : ch == '\t' ? 't' : 'r';
            jw_raw(w, buf, 2);
        } else if (ch < 0x20) {
            jw_raw(w, buf, (size_t)snprintf(buf, sizeof buf, "\\u%04x", ch));
        } else {
            jw_raw(w, s, 1);
        }
    }
    jw_lit(w, "\"");
}

static void write_texts(jsonw *w, const api_call *c, const api_result *r)
{
    const char *s = r->text;
    jw_lit(w, "[");
    for (int64_t b = 0; b < c->B; b++) {
        if (b)
            jw_lit(w, ",");
        api_jw_string(w, s);
        s += strlen(s) + 1;
    }
    jw_lit(w, "]");
}

void api_lecture_respond(api_response *res, const api_call *c,
                         const api_result *r)
{
    const int masked = api_model_output_role(c->m, OUT_SCORES);
    jsonw w;
    jw_init(&w);
    jw_lit(&w, "{");
    api_compute_begin();
    for (int i = 0; i < c->norder; i++) {
        const int o = c->order[i];
        const int role = c->m->outputs[o].role;
        if (i)
            jw_lit(&w, ",");
        jw_key(&w, c->m->outputs[o].name);
        if (role == OUT_TOKENS)
            write_tokens(&w, c, r);
        else if (role == OUT_TEXT)
            write_texts(&w, c, r);
        else
            jw_tensor_as(&w, &r->t[o], o == masked, c->format,
                         api_threads_for_text(engine_numel(&r->t[o])));
    }
    api_compute_end();
    jw_lit(&w, "}");
    api_respond_json(res, &w);
}
