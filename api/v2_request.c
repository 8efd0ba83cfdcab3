/* v2_request.c -- a v2 infer request checked in v2 terms: id,
 * parameters (binary_data_output; tensors, "return" and "format" refused),
 * outputs (names of the model's outputs, binary_data), inputs (name,
 * datatype FP32 -- or BOOL for a mask --, shape under the element cap,
 * data flat or nested, or Triton's binary tensor data after the JSON).
 * What the model then says of the tensors and parameters is the typed
 * call's (model.c); the errors here are the protocol's own. */
#include "v2_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int name_index(const char *const *names, const char *name)
{
    for (int i = 0; names[i]; i++)
        if (strcmp(names[i], name) == 0)
            return i;
    return -1;
}

void v2_name_list(char *dst, size_t cap, const api_model *m, int outputs)
{
    size_t n = 0;
    const int count = outputs ? m->noutputs : m->ninputs;
    dst[0] = '\0';
    for (int i = 0; i < count && n < cap; i++)
        n += (size_t)snprintf(dst + n, cap - n, "%s%s", i ? ", " : "",
                              outputs ? m->outputs[i].name
                                      : m->inputs[i].name);
}

static int fail(v2_error *e, int status, const char *code, const char *fmt,
                ...) __attribute__((format(printf, 4, 5)));
static int fail(v2_error *e, int status, const char *code, const char *fmt,
                ...)
{
    e->status = status;
    e->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return 0;
}

static const char *type_name(const json_t *v)
{
    return codec_type_name(v);
}

/* Collects the leaves of a (possibly nested) data array in row-major
 * order into in->leaves (in->n of them, already counted). */
static void collect(const json_t *a, const json_t **out, int64_t *k)
{
    for (size_t i = 0; i < json_array_size(a); i++) {
        const json_t *v = json_array_get(a, i);
        if (json_is_array(v))
            collect(v, out, k);
        else
            out[(*k)++] = v;
    }
}

/* Counts the leaves of a data array; the first of the wrong type is
 * reported at its flat index. */
static int count(const json_t *a, int is_bool, int null_ok, int is_int,
                 int64_t *n, int64_t *bad, const json_t **badv)
{
    for (size_t i = 0; i < json_array_size(a); i++) {
        const json_t *v = json_array_get(a, i);
        if (json_is_array(v)) {
            if (!count(v, is_bool, null_ok, is_int, n, bad, badv))
                return 0;
            continue;
        }
        if (is_bool  ? !json_is_boolean(v)
            : is_int ? !json_is_integer(v)
                     : !json_is_number(v) && !(null_ok && json_is_null(v))) {
            *bad = *n;
            *badv = v;
            return 0;
        }
        (*n)++;
    }
    return 1;
}

/* An input whose data is binary (Triton's binary tensor data): the next
 * `size` bytes after the JSON, little-endian float32 or one byte per BOOL,
 * every float finite, every BOOL 0 or 1. */
static int read_binary(v2_request *rq, size_t i, v2_input *t,
                       const char *name, json_int_t size, v2_error *e)
{
    const int64_t want = t->n * (t->is_bool ? 1 : t->int_bytes ? t->int_bytes
                                                               : 4);
    snprintf(e->path, sizeof e->path, "inputs[%zu].parameters."
             "binary_data_size", i);
    if (size != want)
        return fail(e, 400, "shape_mismatch", "%s's shape holds %lld "
                    "element%s, %lld bytes as %s, but binary_data_size is "
                    "%lld", name, (long long)t->n, t->n == 1 ? "" : "s",
                    (long long)want, t->is_bool ? "BOOL"
                    : t->int_bytes == 8 ? "INT64" : t->int_bytes ? "INT32"
                    : "FP32", (long long)size);
    if ((uint64_t)size > rq->tail_len - rq->tail_used)
        return fail(e, 400, "invalid_value", "the binary data after the "
                    "JSON is %zu bytes, too few for binary_data_size %lld "
                    "of %s after %zu bytes taken by the inputs before it",
                    rq->tail_len, (long long)size, name, rq->tail_used);
    const unsigned char *p = rq->tail + rq->tail_used;
    for (int64_t j = 0; j < t->n && !t->int_bytes; j++) {
        int ok;
        if (t->is_bool) {
            ok = p[j] <= 1;
        } else {
            float f;
            memcpy(&f, p + 4 * j, sizeof f);
            /* an FP32 mask may hide a key with -inf, null in JSON */
            ok = isfinite(f) ||
                 (f == -INFINITY && rq->m->inputs[t->name].may_bool);
        }
        if (!ok) {
            snprintf(e->path, sizeof e->path, "inputs[%zu].data[%lld]", i,
                     (long long)j);
            return fail(e, 400, t->is_bool ? "wrong_type" : "not_a_number",
                        "%s's element %lld in the binary data is %s",
                        name, (long long)j, t->is_bool
                            ? "a byte other than 0 or 1 (BOOL)"
                            : "not a finite float32 (NaN or infinity)");
        }
    }
    t->raw = p;
    rq->tail_used += (size_t)size;
    rq->ninputs++;
    return 1;
}

/* An input's keys, name (one of the model's, once) and parameters
 * (binary_data_size alone); the name's index into t->name. */
static int input_head(v2_request *rq, size_t i, const json_t *in,
                      v2_input *t, v2_error *e)
{
    static const char *const keys[] = {"name", "shape", "datatype", "data",
                                       "parameters", NULL};
    const api_model *m = rq->m;
    char list[160];
    snprintf(e->path, sizeof e->path, "inputs[%zu]", i);
    if (!json_is_object(in))
        return fail(e, 400, "wrong_type", "inputs[%zu] must be an object "
                    "{\"name\", \"shape\", \"datatype\", \"data\"}, not %s",
                    i, type_name(in));
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)in, key, v)
        if (name_index(keys, key) < 0) {
            snprintf(e->path, sizeof e->path, "inputs[%zu].%.40s", i, key);
            return fail(e, 400, "unknown_field", "unknown field \"%.60s\" "
                        "in inputs[%zu]; an input has name, shape, datatype, "
                        "data and parameters", key, i);
        }
    const json_t *jp = json_object_get(in, "parameters");
    const json_t *jbin = json_object_get(jp, "binary_data_size");
    for (int k = 0; k < 4; k++)
        if (!json_object_get(in, keys[k]) && !(k == 3 && jbin)) {
            snprintf(e->path, sizeof e->path, "inputs[%zu].%s", i, keys[k]);
            return fail(e, 400, "missing_field", "inputs[%zu] has no \"%s\"; "
                        "an input needs name, shape, datatype and data", i,
                        keys[k]);
        }
    /* name */
    const json_t *jn = json_object_get(in, "name");
    snprintf(e->path, sizeof e->path, "inputs[%zu].name", i);
    if (!json_is_string(jn))
        return fail(e, 400, "wrong_type", "the name of inputs[%zu] must be a "
                    "string, not %s", i, type_name(jn));
    const char *name = json_string_value(jn);
    v2_name_list(list, sizeof list, m, 0);
    t->name = api_model_input(m, name);
    if (t->name < 0)
        return fail(e, 400, "unknown_input", "model %s has no input "
                    "\"%.60s\"; its inputs: %s", m->name, name, list);
    for (int k = 0; k < rq->ninputs; k++)
        if (rq->in[k].name == t->name)
            return fail(e, 400, "duplicate_input", "input %s is given twice "
                        "(inputs[%d] and inputs[%zu])", name, k, i);
    /* parameters: binary_data_size (Triton's binary tensor data) only */
    if (jp) {
        snprintf(e->path, sizeof e->path, "inputs[%zu].parameters", i);
        if (!json_is_object(jp))
            return fail(e, 400, "wrong_type", "inputs[%zu].parameters must "
                        "be an object, not %s", i, type_name(jp));
        json_object_foreach((json_t *)jp, key, v) {
            snprintf(e->path, sizeof e->path, "inputs[%zu].parameters.%.40s",
                     i, key);
            if (strcmp(key, "binary_data_size") != 0)
                return fail(e, 400, "unknown_parameter", "unknown input "
                            "parameter \"%.60s\" (inputs take "
                            "binary_data_size alone)", key);
            if (!json_is_integer(v) || json_integer_value(v) < 0)
                return fail(e, 400, "wrong_type", "binary_data_size must be "
                            "a non-negative integer, not %s", type_name(v));
            if (json_object_get(in, "data"))
                return fail(e, 400, "invalid_value", "%s has both data and "
                            "binary_data_size; send one of them", name);
        }
    }
    return 1;
}

/* An input's datatype (FP32, or BOOL for a mask) and shape
 * (non-negative integers, their product under the element cap). */
static int input_shape(v2_request *rq, size_t i, const json_t *in,
                       v2_input *t, v2_error *e)
{
    const api_model *m = rq->m;
    const char *name = m->inputs[t->name].name;
    const json_t *jd = json_object_get(in, "datatype");
    snprintf(e->path, sizeof e->path, "inputs[%zu].datatype", i);
    const int mask = m->inputs[t->name].may_bool;
    if (!json_is_string(jd))
        return fail(e, 400, "wrong_type", "the datatype of inputs[%zu] (%s) "
                    "must be a string, not %s", i, name, type_name(jd));
    const char *dt = json_string_value(jd);
    t->is_bool = mask && strcmp(dt, "BOOL") == 0;
    if (m->inputs[t->name].dtype == API_INT64) {
        t->int_bytes = strcmp(dt, "INT64") == 0 ? 8
                       : strcmp(dt, "INT32") == 0 ? 4 : 0;
        if (!t->int_bytes)
            return fail(e, 400, "wrong_datatype", "%s must have datatype "
                        "INT64 or INT32, not \"%.20s\"", name, dt);
    } else if (!t->is_bool && strcmp(dt, "FP32") != 0) {
        return fail(e, 400, "wrong_datatype", "%s must have datatype %s, not "
                    "\"%.20s\"", name, mask ? "BOOL or FP32" : "FP32", dt);
    }
    /* shape: non-negative integers, their product under the element cap */
    const json_t *js = json_object_get(in, "shape");
    snprintf(e->path, sizeof e->path, "inputs[%zu].shape", i);
    if (!json_is_array(js))
        return fail(e, 400, "wrong_type", "the shape of inputs[%zu] (%s) "
                    "must be an array of integers, not %s", i, name,
                    type_name(js));
    if (json_array_size(js) > API_MAX_IN_RANK)
        return fail(e, 400, "wrong_rank", "%s has %zu dimensions; attnd's "
                    "tensors have at most %d", name, json_array_size(js),
                    API_MAX_IN_RANK);
    t->rank = (int)json_array_size(js);
    t->n = 1;
    for (int d = 0; d < t->rank; d++) {
        const json_t *jv = json_array_get(js, (size_t)d);
        snprintf(e->path, sizeof e->path, "inputs[%zu].shape[%d]", i, d);
        if (!json_is_integer(jv) || json_integer_value(jv) < 0)
            return fail(e, 400, "wrong_type", "dimension %d of %s's shape "
                        "must be a non-negative integer", d, name);
        t->dim[d] = json_integer_value(jv);
        /* t->n <= the cap so far: compare before multiplying */
        if (t->dim[d] && t->n > api_max_elements() / t->dim[d])
            return fail(e, 413, "too_large", "%s's shape holds more than "
                        "this server's limit of %lld elements "
                        "(--max-elements)", name,
                        (long long)api_max_elements());
        t->n *= t->dim[d];
    }
    return 1;
}

static int read_input(v2_request *rq, size_t i, const json_t *in,
                      v2_error *e, int *oom)
{
    v2_input *t = &rq->in[rq->ninputs];
    if (!input_head(rq, i, in, t, e) || !input_shape(rq, i, in, t, e))
        return 0;
    const char *name = rq->m->inputs[t->name].name;
    const int mask = rq->m->inputs[t->name].may_bool;
    const json_t *jbin = json_object_get(json_object_get(in, "parameters"),
                                         "binary_data_size");
    if (jbin)
        return read_binary(rq, i, t, name, json_integer_value(jbin), e);
    /* data: flat (the protocol) or nested (as Triton takes it) */
    const json_t *ja = json_object_get(in, "data");
    snprintf(e->path, sizeof e->path, "inputs[%zu].data", i);
    if (!json_is_array(ja))
        return fail(e, 400, "wrong_type", "the data of inputs[%zu] (%s) must "
                    "be an array, not %s", i, name, type_name(ja));
    int64_t n = 0, bad = 0;
    const json_t *badv = NULL;
    /* an FP32 mask may hold null: -inf, "may not attend", as natively */
    const int null_ok = !t->is_bool && mask;
    if (!count(ja, t->is_bool, null_ok, t->int_bytes, &n, &bad, &badv)) {
        snprintf(e->path, sizeof e->path, "inputs[%zu].data[%lld]", i,
                 (long long)bad);
        return fail(e, 400, "wrong_type", "%s's element %lld must be %s "
                    "(datatype %s), not %s", name, (long long)bad,
                    t->is_bool ? "true or false"
                    : t->int_bytes ? "an integer"
                    : null_ok ? "a number or null" : "a number",
                    t->is_bool ? "BOOL" : t->int_bytes == 8 ? "INT64"
                    : t->int_bytes ? "INT32" : "FP32", type_name(badv));
    }
    if (n != t->n) {
        char sh[64] = "";
        size_t k = 0;
        for (int d = 0; d < t->rank; d++)
            k += (size_t)snprintf(sh + k, sizeof sh - k, "%s%lld",
                                  d ? ", " : "", (long long)t->dim[d]);
        return fail(e, 400, "shape_mismatch", "%s's shape [%s] holds %lld "
                    "element%s but its data has %lld", name, sh,
                    (long long)t->n, t->n == 1 ? "" : "s", (long long)n);
    }
    t->leaves = malloc((size_t)(n ? n : 1) * sizeof *t->leaves);
    if (!t->leaves) {
        *oom = 1;
        return 0;
    }
    int64_t k = 0;
    collect(ja, t->leaves, &k);
    rq->ninputs++;
    return 1;
}

static int read_outputs(v2_request *rq, const json_t *jo, v2_error *e)
{
    const api_model *m = rq->m;
    char list[200];
    snprintf(e->path, sizeof e->path, "outputs");
    if (!json_is_array(jo))
        return fail(e, 400, "wrong_type", "outputs must be an array of "
                    "{\"name\"}, not %s", type_name(jo));
    if (json_array_size(jo) > V2_MAX_OUTPUTS)
        return fail(e, 400, "invalid_value", "outputs names %zu tensors; at "
                    "most %d", json_array_size(jo), V2_MAX_OUTPUTS);
    for (size_t i = 0; i < json_array_size(jo); i++) {
        const json_t *o = json_array_get(jo, i);
        const char *key;
        const json_t *v;
        snprintf(e->path, sizeof e->path, "outputs[%zu]", i);
        if (!json_is_object(o))
            return fail(e, 400, "wrong_type", "outputs[%zu] must be an "
                        "object {\"name\"}, not %s", i, type_name(o));
        json_object_foreach((json_t *)o, key, v) {
            if (strcmp(key, "name") == 0)
                continue;
            snprintf(e->path, sizeof e->path, "outputs[%zu].%.40s", i, key);
            if (strcmp(key, "parameters") != 0)
                return fail(e, 400, "unknown_field", "unknown field "
                            "\"%.60s\" in outputs[%zu]; an output has name "
                            "and parameters", key, i);
            if (!json_is_object(v))
                return fail(e, 400, "wrong_type", "outputs[%zu].parameters "
                            "must be an object, not %s", i, type_name(v));
            const char *pk;
            const json_t *pv;
            json_object_foreach((json_t *)v, pk, pv) {
                snprintf(e->path, sizeof e->path,
                         "outputs[%zu].parameters.%.40s", i, pk);
                if (strcmp(pk, "binary_data") != 0)
                    return fail(e, 400, "unknown_parameter", "unknown "
                                "output parameter \"%.60s\" (outputs take "
                                "binary_data, true or false)", pk);
                if (!json_is_boolean(pv))
                    return fail(e, 400, "wrong_type", "binary_data must be "
                                "true or false, not %s", type_name(pv));
            }
        }
        /* Triton's binary tensor data: this output's own binary_data, or
         * else the request's binary_data_output. */
        const json_t *jb = json_object_get(json_object_get(o, "parameters"),
                                           "binary_data");
        rq->out_bin[rq->noutputs] = jb ? json_is_true(jb) : -1;
        const json_t *jn = json_object_get(o, "name");
        snprintf(e->path, sizeof e->path, "outputs[%zu].name", i);
        if (!jn)
            return fail(e, 400, "missing_field", "outputs[%zu] has no "
                        "\"name\"", i);
        if (!json_is_string(jn))
            return fail(e, 400, "wrong_type", "the name of outputs[%zu] must "
                        "be a string, not %s", i, type_name(jn));
        const int k = api_model_output(m, json_string_value(jn));
        v2_name_list(list, sizeof list, m, 1);
        if (k < 0)
            return fail(e, 400, "unknown_output", "model %s has no output "
                        "\"%.60s\"; its outputs: %s", m->name,
                        json_string_value(jn), list);
        rq->out[rq->noutputs++] = k;
    }
    if (rq->noutputs == 0)
        return fail(e, 400, "invalid_value", "outputs is empty; name at "
                    "least one output, or leave outputs out for the "
                    "model's default");
    return 1;
}

static int read_params(v2_request *rq, const json_t *jp, v2_error *e)
{
    const char *key;
    const json_t *v;
    snprintf(e->path, sizeof e->path, "parameters");
    if (!json_is_object(jp))
        return fail(e, 400, "wrong_type", "parameters must be an object, not "
                    "%s", type_name(jp));
    json_object_foreach((json_t *)jp, key, v) {
        snprintf(e->path, sizeof e->path, "parameters.%.40s", key);
        if (api_model_input(rq->m, key) >= 0)
            return fail(e, 400, "invalid_value", "%s is a tensor: send it "
                        "in inputs, not parameters", key);
        if (strcmp(key, "return") == 0)
            return fail(e, 400, "invalid_value", "name the tensors to "
                        "return in the request's outputs ([{\"name\": "
                        "...}]), not parameters.return");
        if (strcmp(key, "format") == 0)
            return fail(e, 400, "invalid_value", "v2 outputs are flat "
                        "JSON data or binary tensor data (the protocol's "
                        "forms: see an output's binary_data); format is a "
                        "parameter of the native endpoints only");
        if (strcmp(key, "binary_data_output") == 0) {
            if (!json_is_boolean(v))
                return fail(e, 400, "wrong_type", "binary_data_output must "
                            "be true or false, not %s", type_name(v));
            rq->bin_default = json_is_true(v);
        }
    }
    rq->params = jp;
    return 1;
}

/* model_name and model_version, which KServe's SDK (InferRequest) always
 * sends and the URL already says: accepted when they name the URL's model
 * and its one version, refused otherwise (the request went to another
 * model than its body names: a client bug worth an answer). */
static int read_model_names(v2_request *rq, const json_t *root, v2_error *e)
{
    static const char *const keys[2] = {"model_name", "model_version"};
    const char *want[2] = {rq->m->name, API_V2_VERSION};
    for (int i = 0; i < 2; i++) {
        const json_t *v = json_object_get(root, keys[i]);
        if (!v)
            continue;
        snprintf(e->path, sizeof e->path, "%s", keys[i]);
        if (!json_is_string(v))
            return fail(e, 400, "wrong_type", "%s must be a string, not %s",
                        keys[i], type_name(v));
        if (strcmp(json_string_value(v), want[i]) != 0 ||
            json_string_length(v) != strlen(want[i]))
            return fail(e, 400, "model_mismatch", "%s is \"%.60s\" but "
                        "this request was sent to model %s version "
                        API_V2_VERSION " (the URL); send it to /v2/models/"
                        "<model_name>/infer, or leave %s out", keys[i],
                        json_string_value(v), rq->m->name, keys[i]);
    }
    return 1;
}

int v2_read_request(v2_request *rq, const json_t *root, v2_error *e,
                        int *oom)
{
    static const char *const keys[] = {"id", "inputs", "outputs",
                                       "parameters", "model_name",
                                       "model_version", NULL};
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)root, key, v)
        if (name_index(keys, key) < 0) {
            snprintf(e->path, sizeof e->path, "%.60s", key);
            return fail(e, 400, "unknown_field", "unknown field \"%.60s\"; "
                        "an inference request has id, model_name, "
                        "model_version, parameters, inputs and outputs", key);
        }
    const json_t *id = json_object_get(root, "id");
    if (id && !json_is_string(id)) {
        snprintf(e->path, sizeof e->path, "id");
        return fail(e, 400, "wrong_type", "id must be a string, not %s",
                    type_name(id));
    }
    if (!read_model_names(rq, root, e))
        return 0;
    const json_t *jp = json_object_get(root, "parameters");
    if (jp && !read_params(rq, jp, e))
        return 0;
    const json_t *jo = json_object_get(root, "outputs");
    if (jo && !read_outputs(rq, jo, e))
        return 0;
    const json_t *ji = json_object_get(root, "inputs");
    snprintf(e->path, sizeof e->path, "inputs");
    if (!ji)
        return fail(e, 400, "missing_field", "inputs is required: "
                    "[{\"name\", \"shape\", \"datatype\", \"data\"}, ...]");
    if (!json_is_array(ji))
        return fail(e, 400, "wrong_type", "inputs must be an array, not %s",
                    type_name(ji));
    for (size_t i = 0; i < json_array_size(ji); i++) {
        if (rq->ninputs == V2_MAX_INPUTS) {
            snprintf(e->path, sizeof e->path, "inputs[%zu]", i);
            return fail(e, 400, "invalid_value", "inputs has more entries "
                        "than model %s has inputs", rq->m->name);
        }
        if (!read_input(rq, i, json_array_get(ji, i), e, oom))
            return 0;
    }
    /* After a JSON-only request only whitespace may follow. */
    size_t ws = 0;
    while (!rq->tail_used && !rq->tail_told && ws < rq->tail_len &&
           strchr(" \t\r\n", rq->tail[ws]) && rq->tail[ws])
        ws++;
    if (!rq->tail_used && ws < rq->tail_len) {
        e->path[0] = '\0';
        return fail(e, 400, "invalid_json", "%zu byte%s follow the JSON "
                    "object and no input has parameters.binary_data_size "
                    "to take them", rq->tail_len, rq->tail_len == 1 ? "" : "s");
    }
    if (rq->tail_used && rq->tail_used != rq->tail_len) {
        snprintf(e->path, sizeof e->path, "inputs");
        return fail(e, 400, "invalid_value", "%zu bytes follow the JSON "
                    "request but the inputs' binary_data_size add up to %zu",
                    rq->tail_len, rq->tail_used);
    }
    return 1;
}

void v2_request_free(v2_request *rq)
{
    for (int i = 0; i < rq->ninputs; i++) {
        free(rq->in[i].leaves);
        rq->in[i].leaves = NULL;
    }
}

/* ==== the body, and paths in it ==== */

/* The path of a call's error (x[0][1][2], wq, causal, out: the native
 * field names) as the place in the v2 request it came from. */
void v2_map_path(const v2_request *rq, const char *np, char *dst,
                     size_t cap)
{
    const api_model *m = rq->m;
    const size_t nlen = strcspn(np, "[");
    char name[64];
    snprintf(name, sizeof name, "%.*s", (int)(nlen < 63 ? nlen : 63), np);
    const char *rest = np + nlen;
    for (int i = 0; i < rq->ninputs; i++) {
        const v2_input *t = &rq->in[i];
        if (strcmp(m->inputs[t->name].name, name) != 0)
            continue;
        if (!*rest) {
            snprintf(dst, cap, "inputs[%d] (%s)", i, name);
            return;
        }
        /* [a][b][c] -> the row-major index of that element */
        int64_t flat = 0;
        int d = 0;
        const char *p = rest;
        while (*p == '[' && d < t->rank) {
            char *q;
            const long long ix = strtoll(p + 1, &q, 10);
            if (*q != ']')
                break;
            flat = flat * t->dim[d] + ix;
            d++;
            p = q + 1;
        }
        if (d == t->rank && !*p)
            snprintf(dst, cap, "inputs[%d].data[%lld] (%s)", i,
                     (long long)flat, np);
        else
            snprintf(dst, cap, "inputs[%d].data (%s)", i, np);
        return;
    }
    if (strcmp(name, "return") == 0) {
        if (*rest)
            snprintf(dst, cap, "outputs%s.name", rest);
        else
            snprintf(dst, cap, "outputs");
    } else if (api_model_input(m, name) >= 0) {
        snprintf(dst, cap, "inputs (%s)", np);
    } else if (rq->params && json_object_get(rq->params, name)) {
        /* a parameter that shares an output's name (gpt's text) */
        snprintf(dst, cap, "parameters.%s", np);
    } else if (api_model_output(m, name) >= 0) {
        snprintf(dst, cap, "outputs (%s)", np);
    } else {
        snprintf(dst, cap, "parameters.%s", np);
    }
}


/* The Inference-Header-Content-Length header s, for a body of len bytes:
 * the JSON part's length (0, as in Triton: all of the body) into *jlen,
 * or 0 with res set to the 400. */
static int json_length_of(const char *s, size_t len, size_t *jlen,
                          api_response *res)
{
    char msg[200];
    size_t n = 0, i = 0;
    for (; s[i] >= '0' && s[i] <= '9'; i++)
        n = i < 19 ? n * 10 + (size_t)(s[i] - '0') : SIZE_MAX;
    if (i == 0 || s[i]) {
        snprintf(msg, sizeof msg, "Inference-Header-Content-Length is "
                 "\"%.40s%s\"; it must be the length in bytes of the JSON "
                 "at the start of the body (a whole number)", s,
                 strlen(s) > 40 ? "..." : "");
        v2_fail(res, 400, "invalid_value", NULL, msg);
        return 0;
    }
    if (n > len) {
        snprintf(msg, sizeof msg, "Inference-Header-Content-Length is "
                 "%.40s%s but the body has only %zu byte%s", s,
                 i > 40 ? "..." : "", len, len == 1 ? "" : "s");
        v2_fail(res, 400, "invalid_value", NULL, msg);
        return 0;
    }
    *jlen = n ? n : len;
    return 1;
}


/* Parses the JSON part of the body into *root and checks the request in
 * v2 terms; 0 with res set. */
int v2_read_body(v2_request *rq, const char *body, size_t len,
                     const char *json_length, json_t **root,
                     api_response *res)
{
    /* Triton's binary tensor data: the JSON object, then raw bytes.  Where
     * the JSON ends is the header's to say, as Triton reads it; without
     * it, where the object closes. */
    size_t jlen = len;
    const char *p = body, *end = body + len;
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    if (json_length) {
        if (!json_length_of(json_length, len, &jlen, res))
            return 0;
        rq->tail = (const unsigned char *)body + jlen;
        rq->tail_len = len - jlen;
        rq->tail_told = 1;
    } else if (p < end && *p == '{') {
        const char *q = api_json_skip(p, end);
        q = q ? q : end;
        jlen = (size_t)(q - body);
        rq->tail = (const unsigned char *)q;
        rq->tail_len = (size_t)(end - q);
    }
    api_error pe = {0};
    /* v2_read_request refuses an unknown key before anything else */
    static const char *const keys[] = {"id", "inputs", "outputs",
                                       "parameters", NULL};
    const api_parse_spec spec = {keys, NULL, NULL, 0, NULL, NULL, 0};
    *root = api_parse_bounded(body, jlen, &spec, &pe);
    if (!*root) {
        if (pe.status == 503)
            v2_oom(res);
        else    /* the message says where (line, column) */
            v2_fail(res, v2_status(pe.status), pe.code, NULL, pe.message);
        return 0;
    }
    v2_error e;
    memset(&e, 0, sizeof e);
    int oom = 0;
    if (!v2_read_request(rq, *root, &e, &oom)) {
        if (oom)
            v2_oom(res);
        else
            v2_fail(res, e.status, e.code, e.path, e.message);
        return 0;
    }
    return 1;
}

