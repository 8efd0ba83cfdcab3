/* v2.c -- the KServe / Triton v2 inference protocol ("Open Inference
 * Protocol", REST) as a codec of the typed call (model.h), next to the
 * native JSON one.
 *
 * An infer request is checked in v2 terms (v2_request.c), then its inputs
 * become the call's tensors: JSON data as the float32 each number rounds
 * to, binary tensor data copied as it is -- straight into the call's one
 * allocation, never through text.  Request parameters are the call's
 * options (the native scalar fields), the "outputs" list its requested
 * outputs.  The model's checks are the call's, so a v2 request is refused
 * exactly where and why the same native request is, its error path told
 * as the place in the v2 request.  Outputs are written from the result's
 * tensors: JSON data as the shortest text of each float32 (the native
 * answer's text), binary data as the float32 bytes themselves. */
#include "v2_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "binary tensor data is little-endian float32: read it as is");

int api_v2_model_index(const char *name)
{
    const api_model *m = api_model_find(name);
    return m ? (int)(m - api_models) : -1;
}

/* ==== errors ==== */

static const char oom_body[] =
    "{\"error\":\"out_of_memory: the server could not allocate memory for "
    "this request; retry later or send a smaller request\"}";

void v2_oom(api_response *res)
{
    memset(res, 0, sizeof *res);
    res->status = 503;
    res->code = "out_of_memory";
    res->content_type = "application/json";
    res->body = (char *)oom_body;
    res->len = sizeof oom_body - 1;
    res->is_static = 1;
}

/* s as the inside of a JSON string.  Bytes that are not part of a valid
 * UTF-8 sequence (a message that cut a client's name mid-character)
 * become '?': Jansson would refuse to read the body otherwise. */
static void jw_escaped_n(jsonw *w, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        const unsigned char c = *p;
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            jw_raw(w, esc, 2);
            p++;
        } else if (c < 0x20) {
            char esc[8];
            snprintf(esc, sizeof esc, "\\u%04x", c);
            jw_lit(w, esc);
            p++;
        } else if (c < 0x80) {
            jw_raw(w, (const char *)p, 1);
            p++;
        } else {
            const int n = api_utf8_seq(p, end);
            jw_raw(w, n ? (const char *)p : "?", n ? (size_t)n : 1);
            p += n ? n : 1;
        }
    }
}

static void jw_escaped(jsonw *w, const char *s)
{
    jw_escaped_n(w, s, strlen(s));
}

/* {"error": "<code>[ at <path>]: <message>"} */
void v2_fail(api_response *res, int status, const char *code,
                    const char *path, const char *message)
{
    jsonw w;
    jw_init(&w);
    jw_lit(&w, "{\"error\":\"");
    jw_escaped(&w, code);
    if (path && *path) {
        jw_lit(&w, " at ");
        jw_escaped(&w, path);
    }
    jw_lit(&w, ": ");
    jw_escaped(&w, message);
    jw_lit(&w, "\"}");
    size_t len = 0;
    char *body = jw_take(&w, &len);
    memset(res, 0, sizeof *res);
    if (!body) {
        v2_oom(res);
        return;
    }
    res->status = status;
    res->code = code;
    res->content_type = "application/json";
    res->body = body;
    res->len = len;
}

void api_v2_error(api_response *res, int status, const char *code,
                  const char *message)
{
    if (status == 503 && strcmp(code, "out_of_memory") == 0) {
        v2_oom(res);
        return;
    }
    v2_fail(res, status, code, NULL, message);
}

/* Native statuses in v2 terms: the protocol signals a bad request with 400
 * ("typically 400"), so 422 becomes 400; 404, 413 and 503 say more than
 * 400 would (a missing model, a limit, a retry) and stay. */
int v2_status(int status)
{
    return status == 422 ? 400 : status;
}

/* ==== metadata and configuration, from the table ==== */

/* "[-1,-1,-1]" */
static void dims_json(jsonw *w, int rank)
{
    jw_raw(w, "[", 1);
    for (int i = 0; i < rank; i++)
        jw_lit(w, i ? ",-1" : "-1");
    jw_raw(w, "]", 1);
}

void v2_respond(api_response *res, int status, jsonw *w, const char *type,
                size_t json_len)
{
    size_t len = 0;
    char *body = jw_take(w, &len);
    memset(res, 0, sizeof *res);
    if (!body) {
        v2_oom(res);
        return;
    }
    res->status = status;
    res->content_type = type;
    res->json_len = json_len;
    res->body = body;
    res->len = len;
}

/* A metadata tensor has one datatype and one shape.  Where a tensor takes
 * more, datatype and shape say the first datatype and the largest rank,
 * and "parameters" (as MLServer's metadata tensors have) lists them all,
 * as comma-separated text (the protocol's parameter values are scalars):
 * a mask is BOOL (true = may attend) or FP32 (added to the scores), B x T
 * x S or T x S (every batch); /multihead's weights B x H x T x S, or B x T
 * x S with average_weights. */
/* The protocol's datatype of a tensor of the table. */
static const char *datatype(int is_bool, int dtype)
{
    return is_bool ? "BOOL" : dtype == API_INT64 ? "INT64"
           : dtype == API_BYTES ? "BYTES" : "FP32";
}

static void metadata_tensor(jsonw *w, const char *name, const char *dt,
                            int rank, const char *fixed, int may_bool,
                            const char *ranks)
{
    jw_lit(w, "{\"name\":\"");
    jw_lit(w, name);
    jw_lit(w, "\",\"datatype\":\"");
    jw_lit(w, dt);
    jw_lit(w, "\",\"shape\":");
    if (fixed)
        jw_lit(w, fixed);
    else
        dims_json(w, rank);
    if (may_bool || ranks) {
        jw_lit(w, ",\"parameters\":{");
        if (may_bool)
            jw_lit(w, "\"datatypes\":\"BOOL,FP32\",");
        jw_lit(w, "\"ranks\":\"");
        jw_lit(w, ranks);
        jw_lit(w, "\"}");
    }
    jw_lit(w, "}");
}

void api_v2_model_metadata(const char *model, api_response *res)
{
    const api_model *m = api_model_find(model);
    if (!m) {
        char msg[160];
        snprintf(msg, sizeof msg, "unknown model \"%.60s\"; models: %s",
                 model, api_v2_models());
        api_v2_error(res, 404, "not_found", msg);
        return;
    }
    jsonw w;
    jw_init(&w);
    jw_lit(&w, "{\"name\":\"");
    jw_lit(&w, m->name);
    jw_lit(&w, "\",\"versions\":[\"" API_V2_VERSION "\"],\"platform\":"
               "\"attnd\",\"inputs\":[");
    for (int i = 0; i < m->ninputs; i++) {
        const api_input_spec *in = &m->inputs[i];
        char ranks[8];
        snprintf(ranks, sizeof ranks, "%d,%d", in->min_rank, in->max_rank);
        if (i)
            jw_lit(&w, ",");
        metadata_tensor(&w, in->name, datatype(in->may_bool, in->dtype),
                        in->max_rank, NULL, in->may_bool,
                        in->may_bool || in->min_rank != in->max_rank ? ranks
                                                                     : NULL);
    }
    jw_lit(&w, "],\"outputs\":[");
    for (int i = 0; i < m->noutputs; i++) {
        const api_output_spec *o = &m->outputs[i];
        if (i)
            jw_lit(&w, ",");
        metadata_tensor(&w, o->name, datatype(o->is_bool, o->dtype), o->rank,
                        o->fixed_shape, 0, o->ranks);
    }
    jw_lit(&w, "]}");
    v2_respond(res, 200, &w, "application/json", 0);
}

/* Triton's model configuration (GET /v2/models/<name>/config), the JSON
 * form of its model_config.proto as Triton's own server writes it: no
 * batching of its own (max_batch_size 0: dims are the whole shape, -1
 * for a free dimension), one version, the fields perf_analyzer and
 * model_analyzer read.  An input is "optional" when the model runs
 * without it (context, mask); x and the weights are not, unless a seed
 * parameter generates them, which a configuration cannot say.  A tensor
 * of two datatypes (a mask) is told by its first, as in the metadata. */
static void config_tensor(jsonw *w, int first, const char *name,
                          const char *type, int rank, const char *fixed)
{
    jw_lit(w, first ? "{\"name\":\"" : ",{\"name\":\"");
    jw_lit(w, name);
    jw_lit(w, "\",\"data_type\":\"TYPE_");
    jw_lit(w, type);
    jw_lit(w, "\",\"dims\":");
    if (fixed)
        jw_lit(w, fixed);
    else
        dims_json(w, rank);
}

void api_v2_model_config(const char *model, api_response *res)
{
    const api_model *m = api_model_find(model);
    if (!m) {
        api_v2_model_metadata(model, res);      /* its 404 */
        return;
    }
    jsonw w;
    jw_init(&w);
    jw_lit(&w, "{\"name\":\"");
    jw_lit(&w, m->name);
    jw_lit(&w, "\",\"platform\":\"attnd\",\"backend\":\"attnd\","
               "\"version_policy\":{\"latest\":{\"num_versions\":1}},"
               "\"max_batch_size\":0,\"input\":[");
    for (int i = 0; i < m->ninputs; i++) {
        const api_input_spec *in = &m->inputs[i];
        config_tensor(&w, i == 0, in->name, datatype(in->may_bool, in->dtype),
                      in->max_rank, NULL);
        jw_lit(&w, ",\"format\":\"FORMAT_NONE\",\"is_shape_tensor\":false,"
                   "\"allow_ragged_batch\":false,\"optional\":");
        jw_lit(&w, in->required ? "false}" : "true}");
    }
    jw_lit(&w, "],\"output\":[");
    for (int i = 0; i < m->noutputs; i++) {
        const api_output_spec *o = &m->outputs[i];
        /* Triton's config says TYPE_STRING for the protocol's BYTES */
        config_tensor(&w, i == 0, o->name,
                      o->dtype == API_BYTES ? "STRING"
                                            : datatype(o->is_bool, o->dtype),
                      o->rank, o->fixed_shape);
        jw_lit(&w, ",\"label_filename\":\"\",\"is_shape_tensor\":false}");
    }
    jw_lit(&w, "],\"instance_group\":[{\"name\":\"");
    jw_lit(&w, m->name);
    jw_lit(&w, "\",\"kind\":\"KIND_CPU\",\"count\":1}],"
               "\"model_transaction_policy\":{\"decoupled\":false}}");
    v2_respond(res, 200, &w, "application/json", 0);
}

/* ==== the v2 inputs as the call's source ==== */

static const v2_input *input_of(const v2_request *rq, int role)
{
    for (int i = 0; i < rq->ninputs; i++)
        if (rq->m->inputs[rq->in[i].name].role == role)
            return &rq->in[i];
    return NULL;
}

/* Element k of an input: its value as the native reader takes it (-inf
 * for null or a BOOL false), and the JSON type it would have as native
 * text ("integer" for a float whose shortest text is one). */
static double leaf(const v2_input *t, int64_t k, const char **type)
{
    if (t->leaves) {
        const json_t *v = t->leaves[k];
        *type = codec_type_name(v);
        if (json_is_boolean(v))
            return json_is_true(v) ? 0.0 : -INFINITY;
        return json_is_null(v) ? -INFINITY : json_number_value(v);
    }
    if (t->is_bool) {
        *type = t->raw[k] ? "true" : "false";
        return t->raw[k] ? 0.0 : -INFINITY;
    }
    if (t->int_bytes) {             /* little-endian INT64 / INT32 */
        int64_t v = 0;
        const unsigned char *p = t->raw + (size_t)t->int_bytes * k;
        for (int i = t->int_bytes - 1; i >= 0; i--)
            v = (int64_t)((uint64_t)v << 8 | p[i]);
        if (t->int_bytes == 4)
            v = (int32_t)v;
        *type = "integer";
        return (double)v;
    }
    float f;
    char s[40];
    memcpy(&f, t->raw + 4 * k, sizeof f);
    s[jw_format_float(s, f)] = '\0';
    *type = f == -INFINITY ? "null" : strpbrk(s, ".e") ? "number" : "integer";
    return f;
}

/* The native reader's checks of a nested array of this shape and these
 * elements, with its words: rank, empty dimensions, float32 range. */
static int v2_shape(void *ctx, const api_call *c, int role, engine_tensor *t,
                    int *is_bool, api_error *e)
{
    const v2_input *in = input_of(ctx, role);
    const api_input_spec *spec = &c->m->inputs[in->name];
    const char *name = spec->name, *type;
    const int mask = spec->may_bool, R = spec->max_rank;
    char path[160];
    if (in->rank == 0) {
        leaf(in, 0, &type);
        if (mask)
            api_fail(e, 422, "wrong_type", name, "mask must be a T x S or B x "
                     "T x S array of booleans or numbers, or a tensor object "
                     "({\"shape\", \"data\"} or {\"shape\", \"dtype\", "
                     "\"b64\"}), not %s", type);
        else
            api_fail(e, 422, "wrong_type", name, "%s must be a %d-D array of "
                     "numbers (%s) or a tensor object {\"shape\", \"data\"} / "
                     "{\"shape\", \"dtype\", \"b64\"}, not %s", name, R,
                     codec_rank_shape(name, R), type);
        return 0;
    }
    int n = snprintf(path, sizeof path, "%s", name);
    for (int d = 0; d < in->rank && d <= R; d++) {
        if (in->dim[d] == 0) {
            api_fail(e, 422, "empty_dimension", path, "%s is empty: every "
                     "dimension of %s must be at least 1", path, name);
            return 0;
        }
        n += snprintf(path + n, sizeof path - (size_t)n, "[0]");
    }
    if (in->rank > R || in->rank < spec->min_rank) {
        if (mask)
            api_fail(e, 422, "wrong_rank", name, "mask must be 2-D (T x S) or "
                     "3-D (B x T x S) but is %s", in->rank > R
                     ? "nested deeper" : "1-D");
        else if (in->rank > R)
            api_fail(e, 422, "wrong_rank", name, "%s must be %d-D (%s) but is "
                     "nested deeper", name, R, codec_rank_shape(name, R));
        else
            api_fail(e, 422, "wrong_rank", name, "%s must be %d-D (%s) but is "
                     "%d-D", name, R, codec_rank_shape(name, R), in->rank);
        return 0;
    }
    for (int64_t k = 0; (in->leaves || in->int_bytes) && k < in->n; k++) {
        const double d = leaf(in, k, &type);
        if (!in->int_bytes && (fabs(d) < FLOAT32_LIMIT || d == -INFINITY))
            continue;
        n = snprintf(path, sizeof path, "%s", name);
        for (int i = 0; i < in->rank; i++) {
            int64_t stride = 1;
            for (int j = i + 1; j < in->rank; j++)
                stride *= in->dim[j];
            n += snprintf(path + n, sizeof path - (size_t)n, "[%lld]",
                          (long long)(k / stride % in->dim[i]));
        }
        if (in->int_bytes) {            /* token ids */
            if (api_idx_check(c, d, path, e))
                continue;
            return 0;
        }
        api_fail(e, 422, "out_of_range", path, "%s = %g does not fit in "
                 "float32 (largest magnitude 3.4028235e38%s)", path, d,
                 mask ? "; send null for -inf" : "");
        return 0;
    }
    *t = (engine_tensor){NULL, in->rank, {0}};
    memcpy(t->dim, in->dim, sizeof t->dim);
    *is_bool = in->is_bool;
    return api_check_tensor_size(t, name, e);
}

static void v2_fill(void *ctx, const api_call *c, int role, engine_tensor *t)
{
    const v2_input *in = input_of(ctx, role);
    const char *type;
    if (!in->leaves && !in->is_bool && !in->int_bytes) {
        memcpy(t->data, in->raw, (size_t)in->n * sizeof *t->data);
        return;
    }
    for (int64_t k = 0; k < in->n; k++)
        t->data[k] = (float)leaf(in, k, &type);
}

/* ==== the answer ==== */

/* The outputs a model's answer holds, in the native answer's order: bow's
 * x (with a seed), weights, out, max_abs_diff and allclose (method
 * "all"); the requested ones of the others. */
static int answer_order(const api_call *c, const api_result *r, int *idx)
{
    static const int bow[5] = {OUT_X, OUT_WEIGHTS, OUT_OUT, OUT_MAX_ABS_DIFF,
                               OUT_ALLCLOSE};
    int n = 0;
    if (c->m->family != API_BOW) {
        memcpy(idx, c->order, (size_t)c->norder * sizeof *idx);
        return c->norder;
    }
    for (int i = 0; i < 5; i++) {
        const int k = api_model_output_role(c->m, bow[i]);
        if (r->produced[k])
            idx[n++] = k;
    }
    return n;
}

/* 400 not_produced for a requested output this request does not make
 * (bow's x without a seed, max_abs_diff without method "all"). */
static int check_produced(const v2_request *rq, const api_call *c,
                          const api_result *r, api_response *res)
{
    const api_model *m = c->m;
    int idx[API_MAX_OUT];
    const int n = answer_order(c, r, idx);
    for (int i = 0; i < rq->noutputs; i++) {
        const char *name = m->outputs[rq->out[i]].name;
        if (r->produced[rq->out[i]])
            continue;
        char msg[320], path[32];
        size_t k = (size_t)snprintf(msg, sizeof msg, "model %s produced no "
                                    "%s for this request; it produced:",
                                    m->name, name);
        for (int j = 0; j < n && k < sizeof msg; j++)
            k += (size_t)snprintf(msg + k, sizeof msg - k, "%s %s",
                                  j ? "," : "", m->outputs[idx[j]].name);
        if (k < sizeof msg)
            snprintf(msg + k, sizeof msg - k, "%s",
                     strcmp(name, "x") == 0
                         ? " (x is returned when parameters.seed generates it)"
                     : m->family == API_BOW
                         ? " (max_abs_diff and allclose come with "
                           "parameters.method \"all\")"
                         : "");
        snprintf(path, sizeof path, "outputs[%d].name", i);
        v2_fail(res, 400, "not_produced", path, msg);
        return 0;
    }
    return 1;
}

/* Bytes of an output as binary tensor data: Triton's BYTES are each
 * element's 4-byte little-endian length, then its bytes. */
static int64_t binary_size(const api_output_spec *o, const engine_tensor *t,
                           const api_result *r)
{
    if (o->dtype == API_BYTES) {
        int64_t n = 0;
        const char *s = r->text;
        for (int64_t k = 0; k < t->dim[0]; k++, s += strlen(s) + 1)
            n += 4 + (int64_t)strlen(s);
        return n;
    }
    return engine_numel(t) * (o->is_bool ? 1 : o->dtype == API_INT64 ? 8 : 4);
}

static void write_binary(jsonw *w, const api_output_spec *o,
                         const engine_tensor *t, const api_result *r)
{
    if (o->is_bool) {
        jw_raw(w, r->allclose ? "\1" : "\0", 1);
    } else if (o->dtype == API_INT64) {
        for (int64_t k = 0; k < engine_numel(t); k++) {
            unsigned char b[8];
            for (int i = 0; i < 8; i++)
                b[i] = (unsigned char)((uint64_t)r->tokens[k] >> (8 * i));
            jw_raw(w, (const char *)b, 8);
        }
    } else if (o->dtype == API_BYTES) {
        const char *s = r->text;
        for (int64_t k = 0; k < t->dim[0]; k++, s += strlen(s) + 1) {
            const uint32_t n = (uint32_t)strlen(s);
            const unsigned char b[4] = {n & 255, n >> 8 & 255, n >> 16 & 255,
                                        n >> 24};
            jw_raw(w, (const char *)b, 4);
            jw_raw(w, s, n);
        }
    } else {
        jw_raw(w, (const char *)t->data,
               (size_t)engine_numel(t) * sizeof *t->data);
    }
}

/* {"name", "shape", "datatype", "data"}, or with binary tensor data
 * "parameters": {"binary_data_size"} in place of "data". */
static void write_output(jsonw *w, const api_output_spec *o,
                         const engine_tensor *t, const api_result *r,
                         int bin)
{
    char buf[80];
    jw_lit(w, "{\"name\":\"");
    jw_lit(w, o->name);
    jw_lit(w, "\",\"shape\":[");
    for (int d = 0; d < t->rank; d++)
        jw_raw(w, buf, (size_t)snprintf(buf, sizeof buf, "%s%lld",
                                        d ? "," : "", (long long)t->dim[d]));
    jw_lit(w, "],\"datatype\":\"");
    jw_lit(w, datatype(o->is_bool, o->dtype));
    jw_lit(w, "\"");
    if (bin) {
        jw_raw(w, buf, (size_t)snprintf(buf, sizeof buf, ",\"parameters\":"
                                        "{\"binary_data_size\":%lld}}",
                                        (long long)binary_size(o, t, r)));
        return;
    }
    jw_lit(w, ",\"data\":[");
    if (o->dtype == API_INT64) {
        for (int64_t k = 0; k < engine_numel(t); k++)
            jw_raw(w, buf, (size_t)snprintf(buf, sizeof buf, "%s%lld",
                                            k ? "," : "",
                                            (long long)r->tokens[k]));
    } else if (o->dtype == API_BYTES) {
        const char *s = r->text;
        for (int64_t k = 0; k < t->dim[0]; k++, s += strlen(s) + 1) {
            if (k)
                jw_raw(w, ",", 1);
            api_jw_string(w, s);
        }
    } else if (o->is_bool) {
        jw_bool(w, r->allclose);
    } else {
        api_compute_begin();
        jw_numbers(w, t, 1, api_threads_for_text(engine_numel(t)));
        api_compute_end();
    }
    jw_lit(w, "]}");
}

/* The outputs asked for, in request order, each once, or those of the
 * native answer; each binary as its binary_data says, or else as the
 * request's binary_data_output.  Binary tensor data follows the JSON in
 * the order of its outputs, the result's bytes as they are. */
static void answer(const v2_request *rq, const api_call *c,
                   const api_result *r, const char *id, size_t idlen,
                   api_response *res)
{
    const api_model *m = c->m;
    int idx[API_MAX_OUT], bin[API_MAX_OUT], seen[API_MAX_OUT] = {0};
    int n = 0, any_bin = 0;
    if (!check_produced(rq, c, r, res))
        return;
    if (rq->noutputs) {
        for (int i = 0; i < rq->noutputs; i++)
            if (!seen[rq->out[i]]++) {
                idx[n] = rq->out[i];
                bin[n++] = rq->out_bin[i] >= 0 ? rq->out_bin[i]
                                               : rq->bin_default;
            }
    } else {
        n = answer_order(c, r, idx);
        for (int i = 0; i < n; i++)
            bin[i] = rq->bin_default;
    }
    jsonw w;
    jw_init(&w);
    jw_lit(&w, "{\"model_name\":\"");
    jw_lit(&w, m->name);
    jw_lit(&w, "\",\"model_version\":\"" API_V2_VERSION "\"");
    if (id) {
        jw_lit(&w, ",\"id\":\"");
        jw_escaped_n(&w, id, idlen);
        jw_lit(&w, "\"");
    }
    jw_lit(&w, ",\"outputs\":[");
    for (int i = 0; i < n; i++) {
        if (i)
            jw_raw(&w, ",", 1);
        write_output(&w, &m->outputs[idx[i]], &r->t[idx[i]], r, bin[i]);
        any_bin |= bin[i];
    }
    jw_lit(&w, "]}");
    const size_t json_len = w.len;
    for (int i = 0; i < n; i++) {
        if (bin[i])
            write_binary(&w, &m->outputs[idx[i]], &r->t[idx[i]], r);
    }
    /* as Triton: the whole body is octet-stream once any part is binary */
    v2_respond(res, 200, &w, any_bin ? "application/octet-stream"
                             : "application/json", any_bin ? json_len : 0);
}

/* ==== the handler ==== */

/* A call's error in v2 form: 422 as 400, the path where the v2 request
 * holds the value. */
static void call_error(const v2_request *rq, const api_error *e,
                       api_response *res)
{
    char where[160] = "";
    if (e->status == 503) {
        v2_oom(res);
        return;
    }
    if (e->has_path)
        v2_map_path(rq, e->path, where, sizeof where);
    v2_fail(res, v2_status(e->status), e->code, where, e->message);
}

/* An error answer with the request's id after the message, {"error":
 * "...", "id": "..."}, so a client can match a failure as it matches a
 * success (the protocol's error object has only "error"; a reader of it
 * ignores the rest).  The static 503 stays as it is. */
static void error_with_id(api_response *res, const char *id, size_t idlen)
{
    if (!id || res->is_static || res->status == 200 || res->len < 2)
        return;
    jsonw w;
    jw_init(&w);
    jw_raw(&w, res->body, res->len - 1);
    jw_lit(&w, ",\"id\":\"");
    jw_escaped_n(&w, id, idlen);
    jw_lit(&w, "\"}");
    size_t len = 0;
    char *body = jw_take(&w, &len);
    if (!body)
        return;                 /* the error without its id */
    free(res->body);
    res->body = body;
    res->len = len;
}

/* The parameters as the call's options: all of them but the codec's own
 * binary_data_output. */
static json_t *options_of(const json_t *params)
{
    json_t *o = json_object();
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)params, key, v)
        if (o && strcmp(key, "binary_data_output") != 0 &&
            json_object_set(o, key, v) != 0) {
            json_decref(o);
            o = NULL;
        }
    return o;
}

void api_v2_infer(const char *model, const char *body, size_t len,
                  const char *json_length, api_response *res)
{
    const api_model *m = api_model_find(model);
    if (!m) {
        api_v2_model_metadata(model, res);      /* its 404 */
        return;
    }
    api_stats_begin();
    v2_request rq;
    memset(&rq, 0, sizeof rq);
    rq.m = m;
    json_t *root = NULL, *opts = NULL;
    char *id = NULL;
    size_t idlen = 0;
    api_call c = {0};
    api_result r = {0};
    api_error e = {0};
    memset(res, 0, sizeof *res);
    if (!v2_read_body(&rq, body, len, json_length, &root, res))
        goto done;
    opts = rq.params ? options_of(rq.params) : json_object();
    const json_t *jid = json_object_get(root, "id");
    idlen = jid ? json_string_length(jid) : 0;
    id = jid ? malloc(idlen + 1) : NULL;
    if (!opts || (jid && !id)) {
        v2_oom(res);
        goto done;
    }
    if (id)
        memcpy(id, json_string_value(jid), idlen + 1);
    for (int i = 0; i < rq.ninputs; i++)
        c.sent[m->inputs[rq.in[i].name].role] = 1;
    /* the outputs asked for are what a native "return" would name */
    const int preset = m->family != API_BOW && rq.noutputs > 0;
    for (int i = 0, seen[API_MAX_OUT] = {0}; preset && i < rq.noutputs; i++)
        if (!seen[rq.out[i]]++)
            c.order[c.norder++] = rq.out[i];
    const api_source src = {&rq, opts, preset, v2_shape, v2_fill};
    if (!api_call_read(&c, m, &src, &e) || !api_call_plan(&c, &e)) {
        call_error(&rq, &e, res);
        goto done;
    }
    if (!api_call_fill(&c, &r)) {
        v2_oom(res);
        goto done;
    }
    /* the tree can be far bigger than the floats */
    v2_request_free(&rq);
    json_decref(root);
    root = NULL;
    if (!api_call_compute(&c, &r, &e))
        call_error(&rq, &e, res);
    else
        answer(&rq, &c, &r, id, idlen, res);
done:
    if (!id && root && json_is_string(json_object_get(root, "id"))) {
        /* refused before the id was kept: take it from the tree */
        const json_t *tid = json_object_get(root, "id");
        error_with_id(res, json_string_value(tid), json_string_length(tid));
    } else {
        error_with_id(res, id, idlen);
    }
    v2_request_free(&rq);
    api_result_free(&r);
    json_decref(opts);
    json_decref(root);
    free(id);
    api_stats_end(m, res->status);
}
