/* codec.c -- see codec.h */
#include "codec.h"
#include "b64.h"
#include "internal.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>


const char *codec_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "object";
    case JSON_ARRAY: return "array";
    case JSON_STRING: return "string";
    case JSON_INTEGER: return "integer";
    case JSON_REAL: return "number";
    case JSON_TRUE: return "true";
    case JSON_FALSE: return "false";
    case JSON_NULL: return "null";
    }
    return "value";
}

int codec_need_integer(const json_t *v, const char *path, api_error *e)
{
    if (json_is_integer(v))
        return 1;
    api_fail(e, 422, "wrong_type", path, "%s must be an integer, not %s", path,
             codec_type_name(v));
    return 0;
}

/* ==== tensors ==== */

/* The path of the value at depth `depth` reached by idx[0..depth-1]. */
static void path_of(char *out, size_t cap, const char *name,
                    const size_t *idx, int depth)
{
    int n = snprintf(out, cap, "%s", name);
    for (int d = 0; d < depth && n > 0 && (size_t)n < cap; d++)
        n += snprintf(out + n, cap - (size_t)n, "[%zu]", idx[d]);
}

const char *codec_rank_shape(const char *name, int rank)
{
    /* the fields' own letters, as the README writes them */
    static const struct {
        const char *name;
        int rank;
        const char *shape;
    } fields[] = {
        {"x", 3, "B x T x C"},
        {"context", 3, "B x S x C"},
        {"wq", 2, "head_size x C"},
        {"wk", 2, "head_size x C"},
        {"wv", 2, "head_size x C"},
        {"wq", 3, "num_heads x head_size x C"},
        {"wk", 3, "num_heads x head_size x C"},
        {"wv", 3, "num_heads x head_size x C"},
        {"wo", 2, "C x num_heads*head_size"},
        {"bo", 1, "C"},
        {"mask", 2, "T x S"},
        {"mask", 3, "B x T x S"},
    };
    for (size_t i = 0; name && i < sizeof fields / sizeof fields[0]; i++)
        if (fields[i].rank == rank && strcmp(fields[i].name, name) == 0)
            return fields[i].shape;
    switch (rank) {
    case 1: return "N";
    case 2: return "rows x columns";
    case 3: return "B x T x C";
    default: return "nested";
    }
}

/* data[i] of a tensor: a number within float32. */
static int number_leaf(const json_t *x, const char *path, void *ctx,
                       api_error *e)
{
    (void)ctx;
    if (!json_is_number(x)) {
        if (json_is_array(x))
            api_fail(e, 422, "not_a_number", path,
                     "%s is an array, not a number: data is flat "
                     "(row-major) and shape says how it folds", path);
        else
            api_fail(e, 422, "not_a_number", path, "%s is %s, not a number",
                     path, codec_type_name(x));
        return 0;
    }
    const double d = json_number_value(x);
    if (!(fabs(d) < FLOAT32_LIMIT)) {
        api_fail(e, 422, "out_of_range", path,
                 "%s = %g does not fit in float32 (largest magnitude "
                 "3.4028235e38)", path, d);
        return 0;
    }
    return 1;
}

/* ==== nested arrays ==== */

int codec_walk_descend(codec_walk *w, const json_t *v, int max,
                       int64_t *dim, const json_t **first)
{
    char path[160];
    int depth = 0;
    while (json_is_array(v)) {
        if (json_array_size(v) == 0) {
            path_of(path, sizeof path, w->name, w->idx, depth);
            api_fail(w->e, 422, "empty_dimension", path,
                     "%s is empty: every dimension of %s must be at least "
                     "1", path, w->name);
            return -1;
        }
        if (depth == max)
            return max + 1;
        dim[depth] = (int64_t)json_array_size(v);
        w->idx[depth] = 0;
        v = json_array_get(v, 0);
        depth++;
    }
    if (first)
        *first = v;
    return depth;
}

/* v, not an array, stands where an array of w->dim[depth] belongs. */
static void not_array(const codec_walk *w, const json_t *v,
                      const char *path, int depth)
{
    if (w->ragged_any || json_is_number(v))
        api_fail(w->e, 422, "ragged_array", path,
                 "%s is %s where an array of %lld was expected: the "
                 "nesting must be the same everywhere", path,
                 w->ragged_any ? codec_type_name(v) : "a number",
                 (long long)w->dim[depth]);
    else
        api_fail(w->e, 422, "not_a_number", path,
                 "%s is %s; tensors hold only numbers in nested arrays",
                 path, codec_type_name(v));
}

int codec_walk_check(codec_walk *w, const json_t *v, int depth)
{
    char path[160];
    if (depth < w->rank) {
        if (!json_is_array(v)) {
            path_of(path, sizeof path, w->name, w->idx, depth);
            not_array(w, v, path, depth);
            return 0;
        }
        const size_t n = json_array_size(v);
        if ((int64_t)n != w->dim[depth]) {
            path_of(path, sizeof path, w->name, w->idx, depth);
            api_fail(w->e, 422, "ragged_array", path,
                     "%s has %zu element%s but its siblings have %lld: "
                     "every row must be the same length", path, n,
                     n == 1 ? "" : "s", (long long)w->dim[depth]);
            return 0;
        }
        for (size_t i = 0; i < n; i++) {
            w->idx[depth] = i;
            if (!codec_walk_check(w, json_array_get(v, i), depth + 1))
                return 0;
        }
        return 1;
    }
    if (!w->leaf && json_is_number(v) &&
        fabs(json_number_value(v)) < FLOAT32_LIMIT)
        return 1;       /* the common case, without printing a path */
    path_of(path, sizeof path, w->name, w->idx, depth);
    if (json_is_array(v)) {
        api_fail(w->e, 422, "ragged_array", path,
                 "%s is an array where a %s was expected: the nesting "
                 "must be the same everywhere (%s is %d-D)", path, w->unit,
                 w->name, w->rank);
        return 0;
    }
    return (w->leaf ? w->leaf : number_leaf)(v, path, w->ctx, w->e);
}

/* ==== tensor objects: {"shape", "data"} and {"shape", "dtype", "b64"} ==== */

static const char *const tensor_keys[] = {"shape", "data", "dtype", "b64",
                                          NULL};

/* "[2, 3]" for messages. */
static void shape_text(char *out, size_t cap, const int64_t *dim, int rank)
{
    size_t n = (size_t)snprintf(out, cap, "[");
    for (int i = 0; i < rank && n < cap; i++)
        n += (size_t)snprintf(out + n, cap - n, "%s%lld", i ? ", " : "",
                              (long long)dim[i]);
    if (n < cap)
        snprintf(out + n, cap - n, "]");
}

/* Base64 is decoded in chunks of this many characters (3072 bytes, 768
 * whole floats), so a check needs no buffer of the tensor's size. */
#define B64_CHUNK 4096

int64_t codec_b64_floats(const char *s, size_t len, float *out, int64_t cap,
                         int neg_inf_ok, size_t *bad_at, int64_t *nonfinite)
{
    unsigned char buf[B64_CHUNK / 4 * 3];
    int64_t bytes = 0;
    *nonfinite = -1;
    for (size_t at = 0; at < len || at == 0; at += B64_CHUNK) {
        const size_t n = len - at < B64_CHUNK ? len - at : B64_CHUNK;
        const int last = at + n == len;
        size_t got = 0, stop = 0;
        /* The chunk's first byte outside the alphabet is the error,
         * wherever decoding would stop (as with libsodium, whose 1.0.18
         * took bytes from 0x80 up for digits: found by make fuzz). */
        const size_t bad = b64_alphabet_span(s + at, n);
        if (bad < n) {
            *bad_at = at + bad;
            return -1;
        }
        /* Strict: the standard alphabet, '=' padding required, no
         * whitespace, zero trailing bits; stop is where it stopped. */
        if (b64_decode(buf, sizeof buf, s + at, n, &got, &stop) != 0 ||
            stop != n || (!last && got != sizeof buf)) {
            /* Where it stopped, or the padding of a chunk before the
             * last. */
            *bad_at = at + stop;
            if (!last && stop == n) {
                const char *pad = memchr(s + at, '=', n);
                *bad_at = pad ? (size_t)(pad - s) : at + n;
            }
            return -1;
        }
        for (size_t i = 0; i + 4 <= got; i += 4) {
            const int64_t k = (bytes + (int64_t)i) / 4;
            const uint32_t u = (uint32_t)buf[i] | (uint32_t)buf[i + 1] << 8 |
                               (uint32_t)buf[i + 2] << 16 |
                               (uint32_t)buf[i + 3] << 24;
            float f;
            memcpy(&f, &u, sizeof f);   /* little-endian on any host */
            if (*nonfinite < 0 && !isfinite(f) &&
                !(neg_inf_ok && f == -INFINITY))
                *nonfinite = k;
            if (out && k < cap)
                out[k] = f;
        }
        bytes += (int64_t)got;
        if (len == 0)
            break;
    }
    return bytes;
}

/* "2-D (T x S) or 3-D (B x T x S)", "3-D (B x T x C)": the ranks a kind
 * takes, for messages (a range of one or two ranks). */
static void ranks_text(char *out, size_t cap, const char *name, int lo,
                       int hi)
{
    int n = snprintf(out, cap, "%d-D (%s)", lo, codec_rank_shape(name, lo));
    if (hi != lo && n > 0 && (size_t)n < cap)
        snprintf(out + n, cap - (size_t)n, " or %d-D (%s)", hi,
                 codec_rank_shape(name, hi));
}

/* 422 wrong_rank at "<name>.shape" for a shape of `got` entries. */
static void rank_error(const char *name, int lo, int hi, int got,
                       api_error *e)
{
    char path[160], ranks[96];
    snprintf(path, sizeof path, "%s.shape", name);
    ranks_text(ranks, sizeof ranks, name, lo, hi);
    api_fail(e, 422, "wrong_rank", path, "%s has %d entr%s but %s must be %s",
             path, got, got == 1 ? "y" : "ies", name, ranks);
}

void codec_shape_rank_error(const char *name, int rank, int got,
                            api_error *e)
{
    rank_error(name, rank, rank, got, e);
}

/* The element cap: the product of the shape, named, or (cap_each_dim)
 * each dimension as it is read and then the product.  A product past
 * int64 (three dimensions under the cap can make one) is over it too. */
static int object_cap(const char *name, const codec_object_kind *k,
                      int rank, const int64_t *dim, int over, int64_t numel,
                      api_error *e)
{
    char shape[128];
    if (k->cap_each_dim && !over) {
        engine_tensor t = {NULL, rank, {0}};
        memcpy(t.dim, dim, (size_t)rank * sizeof *dim);
        return api_check_tensor_size(&t, name, e);
    }
    if (!over && numel <= api_max_elements())
        return 1;
    shape_text(shape, sizeof shape, dim, rank);
    if (over)
        api_fail(e, 413, "too_large", name,
                 "%s has shape %s, more elements than int64 holds, over "
                 "this server's limit of %lld (--max-elements)", name,
                 shape, (long long)api_max_elements());
    else
        api_fail(e, 413, "too_large", name,
                 "%s has %lld elements (shape %s), over this server's "
                 "limit of %lld (--max-elements)", name, (long long)numel,
                 shape, (long long)api_max_elements());
    return 0;
}

/* A tensor object's keys: shape, and data or (with dtype) b64. */
static int object_keys(const json_t *v, const char *name,
                       const codec_object_kind *k, api_error *e)
{
    char path[160];
    if (!codec_known_fields_at(v, tensor_keys, name, e))
        return 0;
    const json_t *js = json_object_get(v, "shape");
    const json_t *data = json_object_get(v, "data");
    const json_t *dtype = json_object_get(v, "dtype");
    const json_t *b64 = json_object_get(v, "b64");
    if (!js) {
        snprintf(path, sizeof path, "%s.shape", name);
        api_fail(e, 422, "missing_field", path,
                 "%s is required: a %s object is {\"shape\": [...], "
                 "\"data\": [...]} or {\"shape\": [...], \"dtype\": "
                 "\"float32\", \"b64\": \"...\"}", path, k->object);
        return 0;
    }
    if (data && b64) {
        api_fail(e, 422, "invalid_value", name,
                 "%s has both data and b64; send the %ss once, in one of "
                 "them", name, k->unit);
        return 0;
    }
    if (!data && !b64) {
        snprintf(path, sizeof path, "%s.data", name);
        api_fail(e, 422, "missing_field", path,
                 "%s has no data (a flat array of %s) and no b64 (base64 "
                 "of little-endian float32); send one", name, k->elements);
        return 0;
    }
    if (b64 && !dtype) {
        snprintf(path, sizeof path, "%s.dtype", name);
        api_fail(e, 422, "missing_field", path,
                 "%s is required with b64: \"float32\" (little-endian IEEE "
                 "754 binary32%s)", path, k->f32_note);
        return 0;
    }

    return 1;
}

/* The shape js, against k's ranks and the element cap, before anything
 * is decoded: *rank, dim[] and *numel. */
static int object_shape(const json_t *js, const char *name,
                        const codec_object_kind *k, int *rank,
                        int64_t dim[ENGINE_MAX_RANK], int64_t *numel_out,
                        api_error *e)
{
    char path[160];
    snprintf(path, sizeof path, "%s.shape", name);
    if (!json_is_array(js)) {
        if (k->min_rank == k->max_rank)
            api_fail(e, 422, "wrong_type", path,
                     "%s must be an array of %d integers (%s), not %s", path,
                     k->min_rank, codec_rank_shape(name, k->min_rank),
                     codec_type_name(js));
        else
            api_fail(e, 422, "wrong_type", path,
                     "%s must be an array of %d or %d integers (%s or %s), "
                     "not %s", path, k->min_rank, k->max_rank,
                     codec_rank_shape(name, k->min_rank),
                     codec_rank_shape(name, k->max_rank),
                     codec_type_name(js));
        return 0;
    }
    const size_t nd = json_array_size(js);
    if (nd < (size_t)k->min_rank || nd > (size_t)k->max_rank || nd > 64) {
        rank_error(name, k->min_rank, k->max_rank, (int)nd, e);
        return 0;
    }
    *rank = (int)nd;
    int64_t numel = 1;
    int over = 0;
    for (int i = 0; i < *rank; i++) {
        const json_t *d = json_array_get(js, (size_t)i);
        snprintf(path, sizeof path, "%s.shape[%d]", name, i);
        if (!codec_need_integer(d, path, e))
            return 0;
        const json_int_t x = json_integer_value(d);
        if (x < 1) {
            api_fail(e, 422, x == 0 ? "empty_dimension" : "out_of_range",
                     path, "%s = %lld; every dimension of %s must be at "
                     "least 1", path, (long long)x, name);
            return 0;
        }
        if (k->cap_each_dim && x > api_max_elements()) {
            api_fail(e, 413, "too_large", name,
                     "%s = %lld is over this server's limit of %lld "
                     "elements (--max-elements)", path, (long long)x,
                     (long long)api_max_elements());
            return 0;
        }
        dim[i] = x;
        if (__builtin_mul_overflow(numel, x, &numel))
            over = 1;
    }
    if (!object_cap(name, k, *rank, dim, over, numel, e))
        return 0;
    *numel_out = numel;
    return 1;
}

/* dtype: the string "float32". */
static int object_dtype(const json_t *dtype, const char *name,
                        const codec_object_kind *k, api_error *e)
{
    char path[160];
    snprintf(path, sizeof path, "%s.dtype", name);
    if (!json_is_string(dtype)) {
        api_fail(e, 422, "wrong_type", path,
                 "%s must be the string \"float32\", not %s", path,
                 codec_type_name(dtype));
        return 0;
    }
    if (strcmp(json_string_value(dtype), "float32") != 0 ||
        strlen(json_string_value(dtype)) != json_string_length(dtype)) {
        api_fail(e, 422, "invalid_value", path,
                 "%s \"%.40s\" is not supported; supported dtypes: "
                 "float32 (little-endian IEEE 754 binary32%s)", path,
                 json_string_value(dtype), k->dtype_note);
        return 0;
    }
    return 1;
}

/* data: a flat array of numel elements, each k->leaf's. */
static int object_data(const json_t *data, const char *name,
                       const codec_object_kind *k, int64_t numel,
                       const char *shape, api_error *e)
{
    char path[160];
    snprintf(path, sizeof path, "%s.data", name);
    if (!json_is_array(data)) {
        api_fail(e, 422, "wrong_type", path,
                 "%s must be a flat array of %s (row-major), not %s",
                 path, k->elements, codec_type_name(data));
        return 0;
    }
    const size_t n = json_array_size(data);
    if ((int64_t)n != numel) {
        api_fail(e, 422, "shape_mismatch", path,
                 "%s has %zu %s%s but %s needs %lld (the product of the "
                 "shape)", path, n, k->unit, n == 1 ? "" : "s", shape,
                 (long long)numel);
        return 0;
    }
    size_t i;
    const json_t *x;
    json_array_foreach(data, i, x) {
        snprintf(path, sizeof path, "%s.data[%zu]", name, i);
        if (!(k->leaf ? k->leaf : number_leaf)(x, path, k->ctx, e))
            return 0;
    }
    return 1;
}

/* b64: valid base64 of numel float32, finite (or -inf where k allows). */
static int object_b64(const json_t *b64, const char *name,
                      const codec_object_kind *k, int64_t numel,
                      const char *shape, api_error *e)
{
    char path[160];
    snprintf(path, sizeof path, "%s.b64", name);
    if (!json_is_string(b64)) {
        api_fail(e, 422, "wrong_type", path,
                 "%s must be a string (standard base64 of little-endian "
                 "float32), not %s", path, codec_type_name(b64));
        return 0;
    }
    size_t bad;
    int64_t nonfinite;
    const size_t len = json_string_length(b64);
    const int64_t bytes = codec_b64_floats(json_string_value(b64), len, NULL,
                                           0, k->neg_inf_ok, &bad,
                                           &nonfinite);
    if (bytes < 0) {
        api_fail(e, 422, "invalid_value", path,
                 "%s is not valid base64 from offset %zu of its %zu characters (standard "
                 "alphabet A-Z a-z 0-9 + /, '=' padding to a multiple of 4, "
                 "no whitespace)", path, bad, len);
        return 0;
    }
    if (bytes != 4 * numel) {
        api_fail(e, 422, "shape_mismatch", path,
                 "%s decodes to %lld bytes but %s needs %lld (%lld float32 "
                 "of 4 bytes)", path, (long long)bytes, shape,
                 (long long)(4 * numel), (long long)numel);
        return 0;
    }
    if (nonfinite >= 0) {
        char what[64];
        if (k->neg_inf_ok)
            snprintf(what, sizeof what, "a %s holds finite float32 or -inf",
                     k->object);
        else
            snprintf(what, sizeof what, "tensors hold finite float32 only");
        api_fail(e, 422, "out_of_range", path,
                 "%s holds a NaN or %sinfinity at element %lld (bytes %lld "
                 "to %lld); %s", path, k->neg_inf_ok ? "+" : "",
                 (long long)nonfinite, (long long)(4 * nonfinite),
                 (long long)(4 * nonfinite + 3), what);
        return 0;
    }
    return 1;
}

int codec_object_read(const json_t *v, const char *name,
                      const codec_object_kind *k, int *rank,
                      int64_t dim[ENGINE_MAX_RANK], api_error *e)
{
    char shape[128];
    int64_t numel;
    const json_t *data = json_object_get(v, "data");
    const json_t *dtype = json_object_get(v, "dtype");
    if (!object_keys(v, name, k, e) ||
        !object_shape(json_object_get(v, "shape"), name, k, rank, dim,
                      &numel, e))
        return 0;
    if (k->its_shape)
        snprintf(shape, sizeof shape, "its shape");
    else {
        memcpy(shape, "shape ", 6);
        shape_text(shape + 6, sizeof shape - 6, dim, *rank);
    }
    if (dtype && !object_dtype(dtype, name, k, e))
        return 0;
    if (data)
        return object_data(data, name, k, numel, shape, e);
    return object_b64(json_object_get(v, "b64"), name, k, numel, shape, e);
}

int codec_tensor_shape(const json_t *v, const char *name, int rank,
                       int64_t dim[ENGINE_MAX_RANK], api_error *e)
{
    codec_walk w = {.name = name, .unit = "number", .rank = rank,
                    .dim = dim, .e = e};
    char path[160];

    if (json_is_object(v)) {
        const codec_object_kind k = {
            .min_rank = rank, .max_rank = rank, .object = "tensor",
            .unit = "number", .elements = "numbers", .f32_note = "",
            .dtype_note = ""};
        int got;
        return codec_object_read(v, name, &k, &got, dim, e);
    }
    if (!json_is_array(v)) {
        api_fail(e, 422, "wrong_type", name,
                 "%s must be a %d-D array of numbers (%s) or a tensor object "
                 "{\"shape\", \"data\"} / {\"shape\", \"dtype\", "
                 "\"b64\"}, not %s", name, rank, codec_rank_shape(name, rank),
                 codec_type_name(v));
        return 0;
    }
    /* The shape is read along the first elements, then every element is
     * checked against it. */
    const json_t *p = NULL;
    const int depth = codec_walk_descend(&w, v, rank, dim, &p);
    if (depth < 0)
        return 0;
    if (depth > rank) {
        api_fail(e, 422, "wrong_rank", name,
                 "%s must be %d-D (%s) but is nested deeper", name,
                 rank, codec_rank_shape(name, rank));
        return 0;
    }
    if (!json_is_number(p)) {
        path_of(path, sizeof path, name, w.idx, depth);
        api_fail(e, 422, "not_a_number", path, "%s is %s, not a number",
                 path, codec_type_name(p));
        return 0;
    }
    if (depth != rank) {
        api_fail(e, 422, "wrong_rank", name,
                 "%s must be %d-D (%s) but is %d-D", name, rank,
                 codec_rank_shape(name, rank), depth);
        return 0;
    }
    return codec_walk_check(&w, v, 0);
}

static float *fill_rec(float *out, const json_t *v)
{
    if (!json_is_array(v)) {
        *out = (float)json_number_value(v);
        return out + 1;
    }
    size_t n = json_array_size(v);
    for (size_t i = 0; i < n; i++)
        out = fill_rec(out, json_array_get(v, i));
    return out;
}

void codec_tensor_fill(engine_tensor *t, const json_t *v)
{
    if (!json_is_object(v)) {
        fill_rec(t->data, v);
        return;
    }
    const json_t *data = json_object_get(v, "data");
    if (data) {
        size_t i;
        const json_t *x;
        json_array_foreach(data, i, x)
            t->data[i] = (float)json_number_value(x);
        return;
    }
    const json_t *b64 = json_object_get(v, "b64");
    size_t bad;
    int64_t nonfinite;
    codec_b64_floats(json_string_value(b64), json_string_length(b64), t->data,
                     engine_numel(t), 0, &bad, &nonfinite);
}

/* ==== fields ==== */

/* Levenshtein distance of two short strings, capped at 9. */
static int edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 30 || lb > 30)
        return 9;
    int row[32];
    for (size_t j = 0; j <= lb; j++)
        row[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int up = row[j];
            int best = diag + (a[i - 1] != b[j - 1]);
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

int codec_known_fields(const json_t *obj, const char *const *known,
                       api_error *e)
{
    return codec_known_fields_at(obj, known, NULL, e);
}

int codec_known_fields_at(const json_t *obj, const char *const *known,
                          const char *prefix, api_error *e)
{
    const char *key;
    const json_t *val;
    json_object_foreach((json_t *)obj, key, val) {
        int found = 0;
        for (const char *const *k = known; *k; k++)
            if (strcmp(key, *k) == 0)
                found = 1;
        if (found)
            continue;
        const char *best = NULL;
        int bestd = 3;
        for (const char *const *k = known; *k; k++) {
            int d = edit_distance(key, *k);
            if (d < bestd) {
                bestd = d;
                best = *k;
            }
        }
        char list[160] = "";
        size_t n = 0;
        for (const char *const *k = known; *k && n < sizeof list; k++)
            n += (size_t)snprintf(list + n, sizeof list - n, "%s%s",
                                  k == known ? "" : ", ", *k);
        char path[160];
        snprintf(path, sizeof path, "%s%s%.60s", prefix ? prefix : "",
                 prefix ? "." : "", key);
        if (best)
            api_fail(e, 422, "unknown_field", prefix ? path : key,
                     "unknown field \"%s\"; did you mean \"%s\"? "
                     "(fields: %s)", path, best, list);
        else
            api_fail(e, 422, "unknown_field", prefix ? path : key,
                     "unknown field \"%s\" (fields: %s)", path, list);
        return 0;
    }
    return 1;
}

const json_t *codec_required(const json_t *obj, const char *key,
                             api_error *e)
{
    const json_t *v = json_object_get(obj, key);
    if (!v)
        api_fail(e, 422, "missing_field", key,
                 "missing required field \"%s\"", key);
    return v;
}
