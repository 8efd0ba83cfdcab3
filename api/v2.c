/* v2.c -- the KServe / Triton v2 inference protocol over the native
 * handlers.
 *
 * An infer request is checked in v2 terms (inputs with name, shape,
 * datatype FP32 -- or BOOL for a mask -- and data, flat or nested, or as
 * Triton's binary tensor data after the JSON object), then
 * rewritten as the native body of the model: each input becomes the field
 * of its name as nested arrays of its shape, each request parameter the
 * native field of its name, the "outputs" list the native "return".  The
 * native handler answers; its tensors become v2 outputs.
 *
 * Exactness both ways: an input number is written as text the native
 * parser reads as the very float32 it would have made of the number sent
 * to the native endpoint (integers as they are; reals, and binary
 * float32, as the shortest text of that float, checked to read back; see
 * write_f32); an output number is the
 * native answer's text copied byte for byte (the shortest text that reads
 * back as the float32), never re-read and re-printed; or, as Triton's
 * binary tensor data (an output's binary_data, the request's
 * binary_data_output), that text read straight to float32, which gives
 * that float back exactly.  So a v2 answer holds exactly the numbers of
 * the native answer to the same request.
 */
#include "v2.h"
#include "internal.h"
#include "numtext.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "binary tensor data is little-endian float32: read it as is");

/* ==== the models ==== */

typedef struct v2_model {
    const char *name;
    void (*native)(const char *body, size_t len, api_response *res);
    const char *const *inputs;      /* NULL-terminated */
    const char *const *outputs;     /* NULL-terminated */
    int has_return;                 /* the native body takes "return" */
    const char *metadata;           /* GET /v2/models/<name> */
} v2_model;

static const char *const bow_inputs[] = {"x", NULL};
static const char *const bow_outputs[] = {"out", "weights", "x",
                                          "max_abs_diff", "allclose", NULL};
static const char *const attn_inputs[] = {"x", "wq", "wk", "wv", "context",
                                          "mask", NULL};
static const char *const attn_outputs[] = {"weights", "out", "q", "k", "v",
                                           "scores", "x", "wq", "wk", "wv",
                                           NULL};
static const char *const mh_inputs[] = {"x", "wq", "wk", "wv", "wo", "bo",
                                        "context", "mask", NULL};
static const char *const mh_outputs[] = {"out", "weights", "heads", "q", "k",
                                         "v", "scores", "x", "wq", "wk",
                                         "wv", "wo", "bo", NULL};

#define T_(n, d, s) "{\"name\":\"" n "\",\"datatype\":\"" d "\",\"shape\":" s "}"
/* A metadata tensor has one datatype and one shape.  Where a tensor takes
 * more, datatype and shape say the first datatype and the largest rank,
 * and "parameters" (as MLServer's metadata tensors have) lists them all,
 * as comma-separated text (the protocol's parameter values are scalars):
 * a mask is BOOL (true = may attend) or FP32 (added to the scores), B x T
 * x S or T x S (every batch); /multihead's weights B x H x T x S, or B x T
 * x S with average_weights. */
#define TP_(n, d, s, p)                                                  \
    "{\"name\":\"" n "\",\"datatype\":\"" d "\",\"shape\":" s              \
    ",\"parameters\":" p "}"
#define MASK_T                                                           \
    TP_("mask", "BOOL", F3, "{\"datatypes\":\"BOOL,FP32\",\"ranks\":\"2,3\"}")
#define MH_WEIGHTS_T TP_("weights", "FP32", F4, "{\"ranks\":\"3,4\"}")
#define F3 "[-1,-1,-1]"
#define F2 "[-1,-1]"
#define F4 "[-1,-1,-1,-1]"
#define META(name, in, out)                                              \
    "{\"name\":\"" name "\",\"versions\":[\"" API_V2_VERSION "\"],"       \
    "\"platform\":\"attnd\",\"inputs\":[" in "],\"outputs\":[" out "]}"

static const char bow_meta[] = META(
    "bow", T_("x", "FP32", F3),
    T_("out", "FP32", F3) "," T_("weights", "FP32", F2) ","
    T_("x", "FP32", F3) "," T_("max_abs_diff", "FP32", "[3]") ","
    T_("allclose", "BOOL", "[1]"));
static const char attn_meta[] = META(
    "attention",
    T_("x", "FP32", F3) "," T_("wq", "FP32", F2) "," T_("wk", "FP32", F2) ","
    T_("wv", "FP32", F2) "," T_("context", "FP32", F3) ","
    MASK_T,
    T_("weights", "FP32", F3) "," T_("out", "FP32", F3) ","
    T_("q", "FP32", F3) "," T_("k", "FP32", F3) "," T_("v", "FP32", F3) ","
    T_("scores", "FP32", F3) "," T_("x", "FP32", F3) ","
    T_("wq", "FP32", F2) "," T_("wk", "FP32", F2) "," T_("wv", "FP32", F2));
static const char mh_meta[] = META(
    "multihead",
    T_("x", "FP32", F3) "," T_("wq", "FP32", F3) "," T_("wk", "FP32", F3) ","
    T_("wv", "FP32", F3) "," T_("wo", "FP32", F2) ","
    T_("bo", "FP32", "[-1]") "," T_("context", "FP32", F3) ","
    MASK_T,
    T_("out", "FP32", F3) "," MH_WEIGHTS_T ","
    T_("heads", "FP32", F3) "," T_("q", "FP32", F4) ","
    T_("k", "FP32", F4) "," T_("v", "FP32", F4) ","
    T_("scores", "FP32", F4) "," T_("x", "FP32", F3) ","
    T_("wq", "FP32", F3) "," T_("wk", "FP32", F3) "," T_("wv", "FP32", F3) ","
    T_("wo", "FP32", F2) "," T_("bo", "FP32", "[-1]"));

static const v2_model models[] = {
    {"bow", api_bow, bow_inputs, bow_outputs, 0, bow_meta},
    {"attention", api_attention, attn_inputs, attn_outputs, 1, attn_meta},
    {"multihead", api_multihead, mh_inputs, mh_outputs, 1, mh_meta},
};
#define NMODELS (int)(sizeof models / sizeof models[0])

int api_v2_model_index(const char *name)
{
    for (int i = 0; i < NMODELS; i++)
        if (strcmp(name, models[i].name) == 0)
            return i;
    return -1;
}

static int name_index(const char *const *names, const char *name)
{
    for (int i = 0; names[i]; i++)
        if (strcmp(names[i], name) == 0)
            return i;
    return -1;
}

/* "x, wq, wk" */
static void name_list(char *dst, size_t cap, const char *const *names)
{
    size_t n = 0;
    dst[0] = '\0';
    for (int i = 0; names[i] && n < cap; i++)
        n += (size_t)snprintf(dst + n, cap - n, "%s%s", i ? ", " : "",
                              names[i]);
}

/* ==== errors ==== */

static const char oom_body[] =
    "{\"error\":\"out_of_memory: the server could not allocate memory for "
    "this request; retry later or send a smaller request\"}";

static void v2_oom(api_response *res)
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
            int n = (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3
                  : (c & 0xf8) == 0xf0 ? 4 : 0;
            int ok = n > 0;
            for (int i = 1; ok && i < n; i++)
                ok = p + i < end && (p[i] & 0xc0) == 0x80;
            if (ok) {
                unsigned cp = c & (0x7f >> n);
                for (int i = 1; i < n; i++)
                    cp = cp << 6 | (p[i] & 0x3f);
                static const unsigned min[5] = {0, 0, 0x80, 0x800, 0x10000};
                ok = cp >= min[n] && cp <= 0x10ffff &&
                     !(cp >= 0xd800 && cp <= 0xdfff);
            }
            if (ok) {
                jw_raw(w, (const char *)p, (size_t)n);
                p += n;
            } else {
                jw_raw(w, "?", 1);
                p++;
            }
        }
    }
}

static void jw_escaped(jsonw *w, const char *s)
{
    jw_escaped_n(w, s, strlen(s));
}

/* {"error": "<code>[ at <path>]: <message>"} */
static void v2_fail(api_response *res, int status, const char *code,
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
static int v2_status(int status)
{
    return status == 422 ? 400 : status;
}

/* ==== the request, in v2 terms ==== */

#define V2_MAX_INPUTS 8
#define V2_MAX_OUTPUTS 16

typedef struct v2_input {
    int name;                       /* index into the model's inputs */
    int is_bool;                    /* datatype BOOL */
    int rank;
    int64_t dim[ENGINE_MAX_RANK];
    int64_t n;
    const json_t **leaves;          /* n of them, malloc'd; or NULL and */
    const unsigned char *raw;       /* binary data: n float32 (LE) or n
                                     * bytes for BOOL, in the body */
} v2_input;

typedef struct v2_request {
    const v2_model *m;
    const json_t *root;
    const json_t *params;           /* object or NULL */
    int ninputs;
    v2_input in[V2_MAX_INPUTS];
    int noutputs;                   /* 0 = none asked for */
    int out[V2_MAX_OUTPUTS];        /* indexes into the model's outputs */
    signed char out_bin[V2_MAX_OUTPUTS];    /* binary_data: 1, 0, or -1
                                             * (not given) */
    int bin_default;                /* parameters.binary_data_output */
    const unsigned char *tail;      /* binary data after the JSON, or NULL */
    size_t tail_len, tail_used;
    int tail_told;                  /* Inference-Header-Content-Length said
                                     * where the JSON ends: whitespace after
                                     * it is data too */
} v2_request;

/* An error found by the adapter itself: status, code, v2 path, message. */
typedef struct v2_error {
    int status;
    const char *code;
    char path[96];
    char message[320];
} v2_error;

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
static int count(const json_t *a, int is_bool, int null_ok, int64_t *n,
                 int64_t *bad, const json_t **badv)
{
    for (size_t i = 0; i < json_array_size(a); i++) {
        const json_t *v = json_array_get(a, i);
        if (json_is_array(v)) {
            if (!count(v, is_bool, null_ok, n, bad, badv))
                return 0;
            continue;
        }
        if (is_bool ? !json_is_boolean(v)
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
    const int64_t want = t->n * (t->is_bool ? 1 : 4);
    snprintf(e->path, sizeof e->path, "inputs[%zu].parameters."
             "binary_data_size", i);
    if (size != want)
        return fail(e, 400, "shape_mismatch", "%s's shape holds %lld "
                    "element%s, %lld bytes as %s, but binary_data_size is "
                    "%lld", name, (long long)t->n, t->n == 1 ? "" : "s",
                    (long long)want, t->is_bool ? "BOOL" : "FP32",
                    (long long)size);
    if ((uint64_t)size > rq->tail_len - rq->tail_used)
        return fail(e, 400, "invalid_value", "the binary data after the "
                    "JSON is %zu bytes, too few for binary_data_size %lld "
                    "of %s after %zu bytes taken by the inputs before it",
                    rq->tail_len, (long long)size, name, rq->tail_used);
    const unsigned char *p = rq->tail + rq->tail_used;
    for (int64_t j = 0; j < t->n; j++) {
        int ok;
        if (t->is_bool) {
            ok = p[j] <= 1;
        } else {
            float f;
            memcpy(&f, p + 4 * j, sizeof f);
            /* an FP32 mask may hide a key with -inf, null in JSON */
            ok = isfinite(f) || (f == -INFINITY && strcmp(name, "mask") == 0);
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

static int read_input(v2_request *rq, size_t i, const json_t *in,
                      v2_error *e, int *oom)
{
    static const char *const keys[] = {"name", "shape", "datatype", "data",
                                       "parameters", NULL};
    const v2_model *m = rq->m;
    v2_input *t = &rq->in[rq->ninputs];
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
    name_list(list, sizeof list, m->inputs);
    t->name = name_index(m->inputs, name);
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
    /* datatype: FP32, or BOOL for a mask */
    const json_t *jd = json_object_get(in, "datatype");
    snprintf(e->path, sizeof e->path, "inputs[%zu].datatype", i);
    const int mask = strcmp(name, "mask") == 0;
    if (!json_is_string(jd))
        return fail(e, 400, "wrong_type", "the datatype of inputs[%zu] (%s) "
                    "must be a string, not %s", i, name, type_name(jd));
    const char *dt = json_string_value(jd);
    t->is_bool = mask && strcmp(dt, "BOOL") == 0;
    if (!t->is_bool && strcmp(dt, "FP32") != 0)
        return fail(e, 400, "wrong_datatype", "%s must have datatype %s, not "
                    "\"%.20s\"", name, mask ? "BOOL or FP32" : "FP32", dt);
    /* shape: non-negative integers, their product under the element cap */
    const json_t *js = json_object_get(in, "shape");
    snprintf(e->path, sizeof e->path, "inputs[%zu].shape", i);
    if (!json_is_array(js))
        return fail(e, 400, "wrong_type", "the shape of inputs[%zu] (%s) "
                    "must be an array of integers, not %s", i, name,
                    type_name(js));
    if (json_array_size(js) > ENGINE_MAX_RANK)
        return fail(e, 400, "wrong_rank", "%s has %zu dimensions; attnd's "
                    "tensors have at most %d", name, json_array_size(js),
                    ENGINE_MAX_RANK);
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
    const int null_ok = !t->is_bool && strcmp(name, "mask") == 0;
    if (!count(ja, t->is_bool, null_ok, &n, &bad, &badv)) {
        snprintf(e->path, sizeof e->path, "inputs[%zu].data[%lld]", i,
                 (long long)bad);
        return fail(e, 400, "wrong_type", "%s's element %lld must be %s "
                    "(datatype %s), not %s", name, (long long)bad,
                    t->is_bool ? "true or false"
                    : null_ok ? "a number or null" : "a number",
                    t->is_bool ? "BOOL" : "FP32", type_name(badv));
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
    const v2_model *m = rq->m;
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
        const int k = name_index(m->outputs, json_string_value(jn));
        name_list(list, sizeof list, m->outputs);
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
        if (name_index(rq->m->inputs, key) >= 0)
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

static int read_request(v2_request *rq, const json_t *root, v2_error *e,
                        int *oom)
{
    static const char *const keys[] = {"id", "inputs", "outputs",
                                       "parameters", NULL};
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)root, key, v)
        if (name_index(keys, key) < 0) {
            snprintf(e->path, sizeof e->path, "%.60s", key);
            return fail(e, 400, "unknown_field", "unknown field \"%.60s\"; "
                        "an inference request has id, parameters, inputs "
                        "and outputs", key);
        }
    const json_t *id = json_object_get(root, "id");
    if (id && !json_is_string(id)) {
        snprintf(e->path, sizeof e->path, "id");
        return fail(e, 400, "wrong_type", "id must be a string, not %s",
                    type_name(id));
    }
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

static void request_free(v2_request *rq)
{
    for (int i = 0; i < rq->ninputs; i++) {
        free(rq->in[i].leaves);
        rq->in[i].leaves = NULL;
    }
}

/* ==== the native body ==== */

/* A float32 as text the native parser (a correctly rounded double, then
 * the float) reads back as exactly f, sign of zero included: the shortest
 * float text when that round trip holds (it almost always does; checked,
 * since double rounding through the double could in principle move it),
 * else the float's exact double with 17 digits. */
static void write_f32(jsonw *w, float f)
{
    if (f == -INFINITY) {       /* only a mask's: the native text for it */
        jw_raw(w, "null", 4);
        return;
    }
    char s[40];
    int n = jw_format_float(s, f);
    double back;
    const float g = numtext_parse_double(s, s + n, &back) == s + n
                        ? (float)back : NAN;
    if (memcmp(&g, &f, sizeof f) != 0)
        n = snprintf(s, sizeof s, "%.17g", (double)f);
    jw_raw(w, s, (size_t)n);
}

/* A JSON value as text for the native parser: integers as they are;
 * strings escaped; a real in a tensor (elem) as the float32 it rounds to,
 * which is all a native endpoint keeps of it, unless that overflows;
 * other reals (parameters, or an overflowing element, which the native
 * endpoint is to refuse as it would have) as the double itself, still a
 * real ("1.0", not "1": a native integer field refuses reals). */
static void write_value(jsonw *w, const json_t *v, int elem)
{
    char buf[40];
    switch (json_typeof(v)) {
    case JSON_INTEGER:
        jw_raw(w, buf, (size_t)snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT,
                                        json_integer_value(v)));
        break;
    case JSON_REAL: {
        const double d = json_real_value(v);
        if (elem && isfinite((float)d)) {
            write_f32(w, (float)d);
            break;
        }
        int n = snprintf(buf, sizeof buf, "%.17g", d);
        if (!strpbrk(buf, ".e"))
            n += snprintf(buf + n, sizeof buf - (size_t)n, ".0");
        jw_raw(w, buf, (size_t)n);
        break;
    }
    case JSON_TRUE:
        jw_raw(w, "true", 4);
        break;
    case JSON_FALSE:
        jw_raw(w, "false", 5);
        break;
    case JSON_STRING:
        jw_raw(w, "\"", 1);
        jw_escaped_n(w, json_string_value(v), json_string_length(v));
        jw_raw(w, "\"", 1);
        break;
    case JSON_ARRAY:
        jw_raw(w, "[", 1);
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i)
                jw_raw(w, ",", 1);
            write_value(w, json_array_get(v, i), elem);
        }
        jw_raw(w, "]", 1);
        break;
    case JSON_OBJECT: {
        const char *k;
        const json_t *x;
        int first = 1;
        jw_raw(w, "{", 1);
        json_object_foreach((json_t *)v, k, x) {
            jw_raw(w, first ? "\"" : ",\"", first ? 1 : 2);
            jw_escaped(w, k);
            jw_raw(w, "\":", 2);
            write_value(w, x, elem);
            first = 0;
        }
        jw_raw(w, "}", 1);
        break;
    }
    default:
        jw_raw(w, "null", 4);
        break;
    }
}

/* An input's leaves as nested arrays of its shape. */
static void write_nested(jsonw *w, const v2_input *t, int d, int64_t *k)
{
    if (d == t->rank) {
        if (t->leaves) {
            write_value(w, t->leaves[(*k)++], 1);
        } else if (t->is_bool) {
            jw_lit(w, t->raw[(*k)++] ? "true" : "false");
        } else {
            float f;
            memcpy(&f, t->raw + 4 * (*k)++, sizeof f);
            write_f32(w, f);
        }
        return;
    }
    jw_raw(w, "[", 1);
    for (int64_t i = 0; i < t->dim[d]; i++) {
        if (i)
            jw_raw(w, ",", 1);
        write_nested(w, t, d + 1, k);
    }
    jw_raw(w, "]", 1);
}

static void write_native(jsonw *w, const v2_request *rq)
{
    const v2_model *m = rq->m;
    int first = 1;
    jw_raw(w, "{", 1);
    for (int i = 0; i < rq->ninputs; i++) {
        if (!first)
            jw_raw(w, ",", 1);
        first = 0;
        jw_key(w, m->inputs[rq->in[i].name]);
        int64_t k = 0;
        write_nested(w, &rq->in[i], 0, &k);
    }
    const char *key;
    const json_t *v;
    if (rq->params)
        json_object_foreach((json_t *)rq->params, key, v) {
            if (strcmp(key, "binary_data_output") == 0)
                continue;       /* the adapter's: see native_answer */
            jw_raw(w, first ? "\"" : ",\"", first ? 1 : 2);
            first = 0;
            jw_escaped(w, key);
            jw_raw(w, "\":", 2);
            write_value(w, v, 0);
        }
    if (m->has_return && rq->noutputs) {
        jw_lit(w, first ? "\"return\":[" : ",\"return\":[");
        for (int i = 0; i < rq->noutputs; i++) {
            jw_lit(w, i ? ",\"" : "\"");
            jw_lit(w, m->outputs[rq->out[i]]);
            jw_lit(w, "\"");
        }
        jw_lit(w, "]");
    }
    jw_raw(w, "}", 1);
}

/* ==== native errors in v2 terms ==== */

/* A native path (x[0][1][2], wq, return[1], causal, out) as the place in
 * the v2 request it came from. */
static void map_path(const v2_request *rq, const char *np, char *dst,
                     size_t cap)
{
    const v2_model *m = rq->m;
    const size_t nlen = strcspn(np, "[");
    char name[64];
    snprintf(name, sizeof name, "%.*s", (int)(nlen < 63 ? nlen : 63), np);
    const char *rest = np + nlen;
    for (int i = 0; i < rq->ninputs; i++) {
        const v2_input *t = &rq->in[i];
        if (strcmp(m->inputs[t->name], name) != 0)
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
    } else if (name_index(m->inputs, name) >= 0) {
        snprintf(dst, cap, "inputs (%s)", np);
    } else if (name_index(m->outputs, name) >= 0) {
        snprintf(dst, cap, "outputs (%s)", np);
    } else {
        snprintf(dst, cap, "parameters.%s", np);
    }
}

/* The native handler's error answer, retold in v2 form. */
static void native_error(const v2_request *rq, const api_response *nres,
                         api_response *res)
{
    json_t *j = api_json_loadb(nres->body, nres->len);
    const json_t *err = json_object_get(j, "error");
    const json_t *code = json_object_get(err, "code");
    const json_t *msg = json_object_get(err, "message");
    const json_t *path = json_object_get(err, "path");
    if (!json_is_string(code) || !json_is_string(msg) ||
        strcmp(json_string_value(code), "out_of_memory") == 0) {
        json_decref(j);
        v2_oom(res);
        return;
    }
    char where[160] = "";
    if (json_is_string(path))
        map_path(rq, json_string_value(path), where, sizeof where);
    /* The code must outlive j: it is one of the native handlers' static
     * strings, which the native response still points at. */
    v2_fail(res, v2_status(nres->status), nres->code ? nres->code : "error",
            where, json_string_value(msg));
    json_decref(j);
}

/* ==== the native answer in v2 terms ==== */

/* The native answer is attnd's own compact JSON (jsonw): an object whose
 * values are nested arrays of numbers (or null), objects of numbers,
 * booleans and strings.  Its spans are found by a scanner, and numbers
 * are copied as text. */
typedef struct span {
    const char *key, *val;
    size_t klen, vlen;
} span;

#define V2_MAX_SPANS 24

static const char *skip_string(const char *p, const char *end)
{
    for (p++; p < end && *p != '"'; p++)
        if (*p == '\\')
            p++;
    return p < end ? p + 1 : end;
}

static const char *skip_value(const char *p, const char *end)
{
    if (*p == '"')
        return skip_string(p, end);
    if (*p == '[' || *p == '{') {
        int depth = 0;
        while (p < end) {
            if (*p == '"') {
                p = skip_string(p, end);
                continue;
            }
            if (*p == '[' || *p == '{')
                depth++;
            else if ((*p == ']' || *p == '}') && --depth == 0)
                return p + 1;
            p++;
        }
        return end;
    }
    while (p < end && *p != ',' && *p != '}' && *p != ']')
        p++;
    return p;
}

static int scan_object(const char *p, const char *end, span *s, int max)
{
    int n = 0;
    if (p >= end || *p != '{')
        return 0;
    p++;
    while (p < end && *p == '"' && n < max) {
        const char *k = p + 1;
        p = skip_string(p, end);
        s[n].key = k;
        s[n].klen = (size_t)(p - 1 - k);
        if (p >= end || *p != ':')
            return n;
        s[n].val = ++p;
        p = skip_value(p, end);
        s[n].vlen = (size_t)(p - s[n].val);
        n++;
        if (p < end && *p == ',')
            p++;
    }
    return n;
}

static int is_tensor(const span *s)
{
    const char c = s->val[0];
    return c == '[' || c == '{' || c == 't' || c == 'f';
}

/* Elements of the array at p ('[') and whether its first is an array. */
static int64_t count_items(const char *p, const char *end)
{
    if (p + 1 < end && p[1] == ']')
        return 0;
    int64_t n = 1;
    int depth = 0;
    for (; p < end; p++) {
        if (*p == '[' || *p == '{')
            depth++;
        else if (*p == ']' || *p == '}') {
            if (--depth == 0)
                break;
        } else if (*p == ',' && depth == 1)
            n++;
    }
    return n;
}

/* A native value's v2 shape and datatype: nested arrays are FP32 of
 * their nesting (an empty dimension ends it), an object of numbers (bow's
 * max_abs_diff) FP32 [its size], a boolean (allclose) BOOL [1]. */
typedef struct out_shape {
    int rank;
    int64_t dim[8];
    int64_t n;                      /* elements */
    int is_bool;
} out_shape;

static void shape_of(const span *s, out_shape *o)
{
    const char *p = s->val, *end = s->val + s->vlen;
    memset(o, 0, sizeof *o);
    o->n = 1;
    if (*p == '[') {
        for (const char *q = p; q < end && *q == '[' && o->rank < 8; q++) {
            const int64_t k = count_items(q, end);
            o->dim[o->rank++] = k;
            o->n *= k;
            if (!k)
                break;
        }
    } else if (*p == '{') {
        span f[V2_MAX_SPANS];
        o->n = scan_object(p, end, f, V2_MAX_SPANS);
        o->dim[o->rank++] = o->n;
    } else {
        o->dim[o->rank++] = 1;
        o->is_bool = 1;
    }
}

/* Calls fn on each element of a native value, row-major, with its text:
 * a number, null (a masked score: -inf, the one non-finite value a native
 * answer holds), true or false. */
typedef void (*element_fn)(jsonw *w, const char *t, size_t n, int first);

static void each_element(const span *s, jsonw *w, element_fn fn)
{
    const char *p = s->val, *end = s->val + s->vlen;
    if (*p == '[') {
        int first = 1;
        while (p < end) {
            if (*p == '[' || *p == ']' || *p == ',') {
                p++;
                continue;
            }
            const char *t = p;
            while (p < end && *p != '[' && *p != ']' && *p != ',')
                p++;
            fn(w, t, (size_t)(p - t), first);
            first = 0;
        }
    } else if (*p == '{') {
        span f[V2_MAX_SPANS];
        const int n = scan_object(p, end, f, V2_MAX_SPANS);
        for (int i = 0; i < n; i++)
            fn(w, f[i].val, f[i].vlen, i == 0);
    } else {
        fn(w, s->val, s->vlen, 1);
    }
}

/* JSON data: the native text, copied. */
static void text_element(jsonw *w, const char *t, size_t n, int first)
{
    if (!first)
        jw_raw(w, ",", 1);
    jw_raw(w, t, n);
}

/* Binary tensor data: the float32 the native text is the shortest text of
 * (read straight to float32, so exactly that float), little-endian, null
 * as the bits of -inf; a BOOL as one byte, 1 or 0. */
static void binary_element(jsonw *w, const char *t, size_t n, int first)
{
    (void)first;
    if (*t == 't' || *t == 'f') {
        jw_raw(w, *t == 't' ? "\1" : "\0", 1);
        return;
    }
    float f = -INFINITY;
    if (*t != 'n')
        numtext_parse_float(t, t + n, &f);
    jw_raw(w, (const char *)&f, sizeof f);
}

/* {"name", "shape", "datatype", "data"} for one native value; as binary
 * tensor data, "parameters": {"binary_data_size"} in place of "data" (the
 * bytes are written after the JSON, by binary_element). */
static void write_output(jsonw *w, const span *s, int bin)
{
    out_shape o;
    char buf[80];
    shape_of(s, &o);
    jw_lit(w, "{\"name\":\"");
    jw_raw(w, s->key, s->klen);
    jw_lit(w, "\",\"shape\":[");
    for (int d = 0; d < o.rank; d++)
        jw_raw(w, buf, (size_t)snprintf(buf, sizeof buf, "%s%lld",
                                        d ? "," : "", (long long)o.dim[d]));
    jw_lit(w, o.is_bool ? "],\"datatype\":\"BOOL\"" : "],\"datatype\":\"FP32\"");
    if (bin) {
        jw_raw(w, buf, (size_t)snprintf(buf, sizeof buf, ",\"parameters\":"
                                        "{\"binary_data_size\":%lld}}",
                                        (long long)(o.n * (o.is_bool ? 1 : 4))));
        return;
    }
    jw_lit(w, ",\"data\":[");
    each_element(s, w, text_element);
    jw_lit(w, "]}");
}

static const span *find_span(const span *s, int n, const char *name)
{
    const size_t len = strlen(name);
    for (int i = 0; i < n; i++)
        if (s[i].klen == len && memcmp(s[i].key, name, len) == 0)
            return &s[i];
    return NULL;
}

static void native_answer(const v2_request *rq, const char *id, size_t idlen,
                          const api_response *nres, api_response *res)
{
    const v2_model *m = rq->m;
    span s[V2_MAX_SPANS];
    const int n = scan_object(nres->body, nres->body + nres->len, s,
                              V2_MAX_SPANS);
    /* Asked-for outputs the native answer does not hold (bow's x without
     * a seed, max_abs_diff without method "all"). */
    for (int i = 0; i < rq->noutputs; i++) {
        const char *name = m->outputs[rq->out[i]];
        if (find_span(s, n, name))
            continue;
        char msg[320], path[32];
        size_t k = (size_t)snprintf(msg, sizeof msg, "model %s produced no "
                                    "%s for this request; it produced:",
                                    m->name, name);
        for (int j = 0; j < n && k < sizeof msg; j++)
            if (is_tensor(&s[j]))
                k += (size_t)snprintf(msg + k, sizeof msg - k, "%s %.*s",
                                      msg[k - 1] == ':' ? "" : ",",
                                      (int)s[j].klen, s[j].key);
        if (k < sizeof msg)
            snprintf(msg + k, sizeof msg - k, "%s",
                     strcmp(name, "x") == 0
                         ? " (x is returned when parameters.seed generates it)"
                     : strcmp(m->name, "bow") == 0
                         ? " (max_abs_diff and allclose come with "
                           "parameters.method \"all\")"
                         : "");
        snprintf(path, sizeof path, "outputs[%d].name", i);
        v2_fail(res, 400, "not_produced", path, msg);
        return;
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
    /* The outputs: those asked for, in request order, each once (as the
     * native "return"), or every tensor of the answer (not bow's
     * "method"); each binary as its binary_data says, or else as the
     * request's binary_data_output. */
    const span *out[V2_MAX_SPANS];
    int bin[V2_MAX_SPANS], nout = 0, any_bin = 0;
    if (rq->noutputs) {
        int seen[V2_MAX_SPANS] = {0};
        for (int i = 0; i < rq->noutputs; i++) {
            const span *sp = find_span(s, n, m->outputs[rq->out[i]]);
            if (seen[sp - s]++)
                continue;
            out[nout] = sp;
            bin[nout++] = rq->out_bin[i] >= 0 ? rq->out_bin[i]
                                               : rq->bin_default;
        }
    } else {
        for (int i = 0; i < n; i++)
            if (is_tensor(&s[i])) {
                out[nout] = &s[i];
                bin[nout++] = rq->bin_default;
            }
    }
    for (int i = 0; i < nout; i++) {
        if (i)
            jw_raw(&w, ",", 1);
        write_output(&w, out[i], bin[i]);
        any_bin |= bin[i];
    }
    jw_lit(&w, "]}");
    /* Binary tensor data: after the JSON, in the order of its outputs. */
    const size_t json_len = w.len;
    for (int i = 0; i < nout; i++)
        if (bin[i])
            each_element(out[i], &w, binary_element);
    memset(res, 0, sizeof *res);
    size_t len = 0;
    char *body = jw_take(&w, &len);
    if (!body) {
        v2_oom(res);
        return;
    }
    res->status = 200;
    /* as Triton: the whole body is octet-stream once any part is binary */
    res->content_type = any_bin ? "application/octet-stream"
                                : "application/json";
    res->json_len = any_bin ? json_len : 0;
    res->body = body;
    res->len = len;
}

/* ==== the handlers ==== */

void api_v2_model_metadata(const char *model, api_response *res)
{
    const int i = api_v2_model_index(model);
    if (i < 0) {
        char msg[160];
        snprintf(msg, sizeof msg, "unknown model \"%.60s\"; models: "
                 API_V2_MODELS, model);
        api_v2_error(res, 404, "not_found", msg);
        return;
    }
    memset(res, 0, sizeof *res);
    res->status = 200;
    res->content_type = "application/json";
    res->body = (char *)models[i].metadata;
    res->len = strlen(models[i].metadata);
    res->is_static = 1;
}

/* The first half of infer: the v2 request checked and rewritten as the
 * native body (returned, malloc'd), rq keeping what maps native errors
 * back and *id a copy of the request's id (or NULL); or NULL with res set
 * to the v2 error. */
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

static char *prepare(const char *model, const char *body, size_t len,
                     const char *json_length, v2_request *rq, char **id,
                     size_t *idlen, size_t *nlen, api_response *res)
{
    *id = NULL;
    *idlen = 0;
    const int mi = api_v2_model_index(model);
    if (mi < 0) {
        api_v2_model_metadata(model, res);      /* its 404 */
        return NULL;
    }
    memset(rq, 0, sizeof *rq);
    rq->m = &models[mi];

    /* Triton's binary tensor data: the JSON object, then raw bytes.  Where
     * the JSON ends is the header's to say, as Triton reads it; without
     * it, where the object closes. */
    size_t jlen = len;
    const char *p = body, *end = body + len;
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    if (json_length) {
        if (!json_length_of(json_length, len, &jlen, res))
            return NULL;
        rq->tail = (const unsigned char *)body + jlen;
        rq->tail_len = len - jlen;
        rq->tail_told = 1;
    } else if (p < end && *p == '{') {
        const char *q = skip_value(p, end);
        jlen = (size_t)(q - body);
        rq->tail = (const unsigned char *)q;
        rq->tail_len = (size_t)(end - q);
    }
    api_error pe = {0};
    json_t *root = api_parse_body(body, jlen, &pe);
    if (!root) {
        if (pe.status == 503)
            v2_oom(res);
        else    /* the message says where (line, column) */
            v2_fail(res, v2_status(pe.status), pe.code, NULL, pe.message);
        return NULL;
    }
    v2_error e;
    memset(&e, 0, sizeof e);
    int oom = 0;
    if (!read_request(rq, root, &e, &oom)) {
        request_free(rq);
        json_decref(root);
        if (oom)
            v2_oom(res);
        else
            v2_fail(res, e.status, e.code, e.path, e.message);
        return NULL;
    }

    /* The native body; then the tree can go (it is far bigger than the
     * text) once the id is copied. */
    jsonw nb;
    jw_init(&nb);
    write_native(&nb, rq);
    request_free(rq);
    const json_t *jid = json_object_get(root, "id");
    *idlen = jid ? json_string_length(jid) : 0;
    *id = jid ? malloc(*idlen + 1) : NULL;
    if (*id)
        memcpy(*id, json_string_value(jid), *idlen + 1);
    json_decref(root);
    char *ntext = jw_take(&nb, nlen);
    if (!ntext || (jid && !*id)) {
        free(ntext);
        free(*id);
        *id = NULL;
        v2_oom(res);
        return NULL;
    }
    return ntext;
}

char *api_v2_native_body(const char *model, const char *body, size_t len,
                         const char *json_length, size_t *nlen,
                         api_response *res)
{
    v2_request rq;
    char *id;
    size_t idlen;
    memset(res, 0, sizeof *res);
    char *ntext = prepare(model, body, len, json_length, &rq, &id, &idlen,
                          nlen, res);
    free(id);
    return ntext;
}

void api_v2_infer(const char *model, const char *body, size_t len,
                  const char *json_length, api_response *res)
{
    v2_request rq;
    char *id;
    size_t idlen, nlen = 0;
    char *ntext = prepare(model, body, len, json_length, &rq, &id, &idlen,
                          &nlen, res);
    if (!ntext)
        return;
    api_response nres = {0};
    rq.m->native(ntext, nlen, &nres);
    free(ntext);
    if (nres.status == 200)
        native_answer(&rq, id, idlen, &nres, res);
    else
        native_error(&rq, &nres, res);
    api_response_free(&nres);
    free(id);
}
