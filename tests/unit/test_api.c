/* test_api.c -- the handlers below HTTP: PyTorch fixtures and the error
 * cases of tests/cases run straight through api_bow / api_attention. */
#include <glob.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../api/api.h"
#include "../../api/codec.h"
#include "../../api/internal.h"
#include "unit.h"

#include <sodium.h>

static glob_t fixtures, cases;

typedef void (*handler)(const char *, size_t, api_response *);

static handler handler_for(const char *path)
{
    if (strcmp(path, "/bow") == 0)
        return api_bow;
    if (strcmp(path, "/attention") == 0)
        return api_attention;
    if (strcmp(path, "/multihead") == 0)
        return api_multihead;
    if (strcmp(path, "/randn") == 0)
        return api_randn;
    return NULL;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (b) {
        b[n] = '\0';
        *len = (size_t)n;
    }
    return b;
}

/* ==== PyTorch fixtures ==== */

START_TEST(fixture_matches_pytorch)
{
    const char *file = fixtures.gl_pathv[_i];
    json_error_t err;
    json_t *fx = json_load_file(file, 0, &err);
    ck_assert_msg(fx != NULL, "%s: %s", file, err.text);
    const char *endpoint = json_string_value(json_object_get(fx, "endpoint"));
    handler h = handler_for(endpoint);
    ck_assert_ptr_nonnull(h);

    char *body = json_dumps(json_object_get(fx, "request"), JSON_COMPACT);
    api_response res = {0};
    h(body, strlen(body), &res);
    ck_assert_msg(res.status == 200, "%s: status %d: %.*s", file, res.status,
                  (int)res.len, res.body);

    json_t *got = json_loadb(res.body, res.len, 0, &err);
    ck_assert_msg(got != NULL, "%s: response is not JSON: %s", file, err.text);
    const json_t *want = json_object_get(fx, "expect");
    char why[512];
    ck_assert_msg(unit_json_close(got, want, 1e-5, 1e-5, why, sizeof why),
                  "%s: %s", file, why);
    /* /attention and /randn return exactly these keys, in this order. */
    if (strcmp(endpoint, "/bow") != 0) {
        ck_assert_uint_eq(json_object_size(got), json_object_size(want));
        void *gi = json_object_iter(got), *wi = json_object_iter((json_t *)want);
        for (; gi && wi; gi = json_object_iter_next(got, gi),
                         wi = json_object_iter_next((json_t *)want, wi))
            ck_assert_str_eq(json_object_iter_key(gi), json_object_iter_key(wi));
    }
    json_decref(got);
    json_decref(fx);
    free(body);
    api_response_free(&res);
}
END_TEST

/* ==== tests/cases, the ones decided by the body ==== */

START_TEST(case_gives_its_error)
{
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s", cases.gl_pathv[_i]);
    dir[strlen(dir) - strlen("/case.json")] = '\0';
    json_error_t err;
    json_t *c = json_load_file(cases.gl_pathv[_i], 0, &err);
    ck_assert_msg(c != NULL, "%s: %s", dir, err.text);
    const int status = (int)json_integer_value(json_object_get(c, "status"));
    const char *method = json_string_value(json_object_get(c, "method"));
    handler h = handler_for(json_string_value(json_object_get(c, "path")));
    /* Routing, content type and size are the server's business. */
    if (!h || strcmp(method, "POST") != 0 || status == 415 || status == 413 ||
        status == 404 || status == 405) {
        json_decref(c);
        return;
    }
    size_t len = 0;
    snprintf(path, sizeof path, "%s/request.body", dir);
    char *body = read_file(path, &len);
    ck_assert_msg(body != NULL, "%s: no request.body", dir);

    api_response res = {0};
    h(body, len, &res);
    ck_assert_msg(res.status == status, "%s: status %d, want %d: %.*s", dir,
                  res.status, status, (int)res.len, res.body);
    json_t *got = json_loadb(res.body, res.len, 0, &err);
    ck_assert_msg(got != NULL, "%s: response is not JSON", dir);
    if (status != 200) {
        json_t *e = json_object_get(got, "error");
        ck_assert_ptr_nonnull(e);
        ck_assert_int_eq(json_integer_value(json_object_get(e, "status")),
                         status);
        ck_assert_str_eq(json_string_value(json_object_get(e, "code")),
                         json_string_value(json_object_get(c, "code")));
        ck_assert(strlen(json_string_value(json_object_get(e, "message"))) > 0);
        const json_t *wp = json_object_get(c, "error_path");
        if (wp && json_is_null(wp))
            ck_assert_ptr_null(json_object_get(e, "path"));
        else if (wp)
            ck_assert_str_eq(json_string_value(json_object_get(e, "path")),
                             json_string_value(wp));
        static const char *const pos[] = {"line", "column", "position"};
        for (int i = 0; i < 3; i++) {
            const json_t *w = json_object_get(c, pos[i]);
            if (w)
                ck_assert_int_eq(json_integer_value(json_object_get(e, pos[i])),
                                 json_integer_value(w));
        }
    }
    json_decref(got);
    json_decref(c);
    free(body);
    api_response_free(&res);
}
END_TEST

/* ==== the body fast path against Jansson alone ==== */

/* Every fixture and every case body: the response with tensors read from
 * the text must be byte for byte the one Jansson alone gives. */
START_TEST(fast_body_path_is_invisible)
{
    const size_t nf = fixtures.gl_pathc;
    char path[600];
    size_t len = 0;
    char *body;
    handler h;
    if ((size_t)_i < nf) {
        json_t *fx = json_load_file(fixtures.gl_pathv[_i], 0, NULL);
        ck_assert_ptr_nonnull(fx);
        h = handler_for(json_string_value(json_object_get(fx, "endpoint")));
        body = json_dumps(json_object_get(fx, "request"), JSON_COMPACT);
        len = strlen(body);
        json_decref(fx);
    } else {
        snprintf(path, sizeof path, "%s", cases.gl_pathv[_i - nf]);
        json_t *c = json_load_file(path, 0, NULL);
        ck_assert_ptr_nonnull(c);
        h = handler_for(json_string_value(json_object_get(c, "path")));
        json_decref(c);
        strcpy(strrchr(path, '/'), "/request.body");
        body = read_file(path, &len);
        ck_assert_ptr_nonnull(body);
    }
    if (!h) {
        free(body);
        return;
    }
    api_response fast = {0}, slow = {0}, bounded = {0};
    api_body_set_fast(1);
    h(body, len, &fast);
    /* parse.c's bounded parsing, which only large bodies take, on every
     * body: the same answers */
    api_parse_set_small(0);
    h(body, len, &bounded);
    api_body_set_fast(0);
    api_parse_set_small(SIZE_MAX);
    h(body, len, &slow);
    api_body_set_fast(1);
    api_parse_set_small(API_PARSE_SMALL);
    ck_assert_int_eq(fast.status, slow.status);
    ck_assert_msg(fast.len == slow.len &&
                  memcmp(fast.body, slow.body, fast.len) == 0,
                  "fast: %.*s\nslow: %.*s", (int)(fast.len > 300 ? 300 : fast.len),
                  fast.body, (int)(slow.len > 300 ? 300 : slow.len), slow.body);
    ck_assert_msg(bounded.len == slow.len &&
                  memcmp(bounded.body, slow.body, bounded.len) == 0,
                  "bounded: %.*s\nslow: %.*s",
                  (int)(bounded.len > 300 ? 300 : bounded.len), bounded.body,
                  (int)(slow.len > 300 ? 300 : slow.len), slow.body);
    api_response_free(&fast);
    api_response_free(&bounded);
    api_response_free(&slow);
    free(body);
}
END_TEST

/* ==== tensor formats: flat and b64 in, flat and b64 out ==== */

static const char *const bow_t[] = {"x", NULL};
static const char *const attention_t[] = {"x", "wq", "wk", "wv", NULL};
static const char *const multihead_t[] = {"x", "wq", "wk", "wv", "wo", "bo",
                                          NULL};
static const char *const none_t[] = {NULL};

static const char *const *tensor_fields(const char *endpoint)
{
    if (strcmp(endpoint, "/bow") == 0)
        return bow_t;
    if (strcmp(endpoint, "/attention") == 0)
        return attention_t;
    if (strcmp(endpoint, "/multihead") == 0)
        return multihead_t;
    return none_t;
}

static void leaves(const json_t *v, json_t *out)
{
    if (!json_is_array(v)) {
        json_array_append(out, (json_t *)v);
        return;
    }
    size_t i;
    const json_t *x;
    json_array_foreach(v, i, x)
        leaves(x, out);
}

static json_t *dims_of(const json_t *v)
{
    json_t *shape = json_array();
    for (const json_t *p = v; json_is_array(p); p = json_array_get(p, 0))
        json_array_append_new(shape, json_integer((json_int_t)json_array_size(p)));
    return shape;
}

/* Nested arrays v as {"shape", "data"} (b64 0) or {"shape", "dtype",
 * "b64"} holding float32(each number). */
static json_t *as_object(const json_t *v, int b64)
{
    json_t *flat = json_array();
    leaves(v, flat);
    if (!b64)
        return json_pack("{s:o, s:o}", "shape", dims_of(v), "data", flat);
    const size_t n = json_array_size(flat);
    float *f = malloc(n * sizeof *f);
    for (size_t i = 0; i < n; i++)
        f[i] = (float)json_number_value(json_array_get(flat, i));
    const size_t cap = sodium_base64_ENCODED_LEN(n * 4,
                                                 sodium_base64_VARIANT_ORIGINAL);
    char *text = malloc(cap);
    sodium_bin2base64(text, cap, (const unsigned char *)f, n * 4,
                      sodium_base64_VARIANT_ORIGINAL);
    json_t *o = json_pack("{s:o, s:s, s:s}", "shape", dims_of(v), "dtype",
                          "float32", "b64", text);
    free(text);
    free(f);
    json_decref(flat);
    return o;
}

static void run_both(handler h, const json_t *req, api_response *fast,
                     api_response *slow)
{
    char *body = json_dumps(req, JSON_COMPACT);
    api_body_set_fast(1);
    h(body, strlen(body), fast);
    api_body_set_fast(0);
    h(body, strlen(body), slow);
    api_body_set_fast(1);
    free(body);
}

static int same_response(const api_response *a, const api_response *b)
{
    return a->status == b->status && a->len == b->len &&
           memcmp(a->body, b->body, a->len) == 0;
}

/* A tensor written as nested arrays (want) against the same tensor in
 * the flat or b64 form (got): same shape (want_shape, or NULL: read off
 * want, which an empty tensor's nesting cannot always tell); flat numbers
 * equal as JSON; b64 floats bit for bit float32(number), -inf where
 * nested has null. */
static void check_tensor_form(const json_t *got, const json_t *want,
                              const json_t *want_shape, int b64,
                              const char *what)
{
    ck_assert_msg(json_is_object(got), "%s: not an object", what);
    json_t *shape = want_shape ? json_deep_copy(want_shape) : dims_of(want);
    json_t *flat = json_array();
    leaves(want, flat);
    ck_assert_msg(json_equal(json_object_get(got, "shape"), shape),
                  "%s: shape", what);
    const size_t n = json_array_size(flat);
    if (!b64) {
        ck_assert_uint_eq(json_object_size(got), 2);
        ck_assert_msg(json_equal(json_object_get(got, "data"), flat),
                      "%s: data", what);
    } else {
        ck_assert_uint_eq(json_object_size(got), 3);
        ck_assert_str_eq(json_string_value(json_object_get(got, "dtype")),
                         "float32");
        const json_t *t = json_object_get(got, "b64");
        float *f = malloc(n * sizeof *f + 4);
        size_t bad;
        int64_t nonfinite;
        ck_assert_int_eq(codec_b64_floats(json_string_value(t),
                                          json_string_length(t), f,
                                          (int64_t)n, 0, &bad, &nonfinite),
                         (int64_t)(4 * n));
        for (size_t i = 0; i < n; i++) {
            const json_t *x = json_array_get(flat, i);
            const float w = json_is_null(x) ? -INFINITY
                                            : (float)json_number_value(x);
            /* Jansson reads the text "-0" as the integer 0, so a zero
             * matches either zero here (the e2e suite reads the text
             * with strtof and checks the sign too). */
            const int zero = json_is_integer(x) && w == 0.0f && f[i] == 0.0f;
            ck_assert_msg(zero || memcmp(&w, &f[i], 4) == 0,
                          "%s[%zu]: %a, want %a", what, i, (double)f[i],
                          (double)w);
        }
        free(f);
    }
    json_decref(shape);
    json_decref(flat);
}

/* Every fixture: its tensors sent flat or as b64 give byte for byte the
 * response of the nested request, and "format" flat / b64 gives the same
 * tensors in that form -- the body fast path and Jansson alone alike. */
START_TEST(formats_agree_with_nested)
{
    json_t *fx = json_load_file(fixtures.gl_pathv[_i], 0, NULL);
    ck_assert_ptr_nonnull(fx);
    const char *endpoint = json_string_value(json_object_get(fx, "endpoint"));
    handler h = handler_for(endpoint);
    const json_t *req = json_object_get(fx, "request");
    api_response ref = {0}, ref_slow = {0};
    run_both(h, req, &ref, &ref_slow);
    ck_assert_int_eq(ref.status, 200);

    for (int b64 = 0; b64 < 2; b64++) {
        json_t *r = json_deep_copy(req);
        int converted = 0;
        for (const char *const *f = tensor_fields(endpoint); *f; f++) {
            const json_t *v = json_object_get(r, *f);
            if (json_is_array(v)) {
                json_object_set_new(r, *f, as_object(v, b64));
                converted++;
            }
        }
        api_response fast = {0}, slow = {0};
        run_both(h, r, &fast, &slow);
        ck_assert_msg(same_response(&fast, &ref) && same_response(&slow, &ref),
                      "%s, %s in: %.*s", fixtures.gl_pathv[_i],
                      b64 ? "b64" : "flat", (int)(fast.len > 300 ? 300 : fast.len),
                      fast.body);
        api_response_free(&fast);
        api_response_free(&slow);
        json_decref(r);
    }

    json_t *want = json_loadb(ref.body, ref.len, 0, NULL);
    for (int b64 = 0; b64 < 2; b64++) {
        json_t *r = json_deep_copy(req);
        json_object_set_new(r, "format", json_string(b64 ? "b64" : "flat"));
        api_response fast = {0}, slow = {0};
        run_both(h, r, &fast, &slow);
        ck_assert(same_response(&fast, &slow));
        ck_assert_int_eq(fast.status, 200);
        json_t *got = json_loadb(fast.body, fast.len, 0, NULL);
        ck_assert_ptr_nonnull(got);
        if (strcmp(endpoint, "/randn") == 0) {
            /* the response is the tensor itself */
            check_tensor_form(got, json_object_get(want, "data"),
                              json_object_get(want, "shape"), b64, "randn");
        } else {
            ck_assert_uint_eq(json_object_size(got), json_object_size(want));
            const char *key;
            const json_t *wv;
            json_object_foreach(want, key, wv) {
                const json_t *gv = json_object_get(got, key);
                ck_assert_msg(gv != NULL, "%s missing", key);
                if (json_is_array(wv))
                    check_tensor_form(gv, wv, NULL, b64, key);
                else
                    ck_assert_msg(json_equal(gv, wv), "%s differs", key);
            }
        }
        json_decref(got);
        api_response_free(&fast);
        api_response_free(&slow);
        json_decref(r);
    }
    json_decref(want);
    api_response_free(&ref);
    api_response_free(&ref_slow);
    json_decref(fx);
}
END_TEST

/* The base64 reader across its 4096-character chunks. */
START_TEST(b64_chunks)
{
    enum { N = 5000 };                  /* floats: 26668 characters */
    float *f = malloc(N * sizeof *f), *g = malloc(N * sizeof *g);
    unit_fill_random(f, N, 9);
    const size_t cap = sodium_base64_ENCODED_LEN(N * 4,
                                                 sodium_base64_VARIANT_ORIGINAL);
    char *t = malloc(cap);
    sodium_bin2base64(t, cap, (const unsigned char *)f, N * 4,
                      sodium_base64_VARIANT_ORIGINAL);
    const size_t len = cap - 1;
    size_t bad = 0;
    int64_t nf;
    ck_assert_int_eq(codec_b64_floats(t, len, g, N, 0, &bad, &nf), 4 * N);
    ck_assert_int_eq(nf, -1);
    ck_assert(memcmp(f, g, N * sizeof *f) == 0);
    /* only checking, and a shorter output */
    ck_assert_int_eq(codec_b64_floats(t, len, NULL, 0, 0, &bad, &nf), 4 * N);
    ck_assert_int_eq(codec_b64_floats(t, len, g, 10, 0, &bad, &nf), 4 * N);
    /* a bad character in the third chunk, found where it is */
    t[9000] = '*';
    ck_assert_int_eq(codec_b64_floats(t, len, NULL, 0, 0, &bad, &nf), -1);
    ck_assert_uint_eq(bad, 9000);
    t[9000] = 'A';
    /* a byte from 0x80 up (libsodium 1.0.18 alone would take it) */
    t[5001] = (char)0xc3;
    ck_assert_int_eq(codec_b64_floats(t, len, NULL, 0, 0, &bad, &nf), -1);
    ck_assert_uint_eq(bad, 5001);
    t[5001] = 'A';
    /* padding that ends the first chunk: "xx==" then more is refused */
    char keep[2] = {t[4094], t[4095]};
    t[4094] = t[4095] = '=';
    ck_assert_int_eq(codec_b64_floats(t, len, NULL, 0, 0, &bad, &nf), -1);
    ck_assert_uint_eq(bad, 4094);
    t[4094] = keep[0];
    t[4095] = keep[1];
    /* a NaN in the fourth chunk: element 2500 (bytes 10000..10003) */
    f[2500] = NAN;
    sodium_bin2base64(t, cap, (const unsigned char *)f, N * 4,
                      sodium_base64_VARIANT_ORIGINAL);
    ck_assert_int_eq(codec_b64_floats(t, len, NULL, 0, 0, &bad, &nf), 4 * N);
    ck_assert_int_eq(nf, 2500);
    /* the empty string is 0 bytes */
    ck_assert_int_eq(codec_b64_floats("", 0, NULL, 0, 0, &bad, &nf), 0);
    free(t);
    free(f);
    free(g);
}
END_TEST

/* ==== codec details ==== */

START_TEST(tensor_shape_errors_name_the_value)
{
    static const struct { const char *json; int rank; const char *code, *path; }
    cases_[] = {
        {"[[[1,2],[3,4]],[[5,6]]]", 3, "ragged_array", "x[1]"},
        {"[[[1,2],[3,[4]]]]", 3, "ragged_array", "x[0][1][1]"},
        {"[[[1,2],[3,true]]]", 3, "not_a_number", "x[0][1][1]"},
        {"[[1,2]]", 3, "wrong_rank", "x"},
        {"[[[[1]]]]", 3, "wrong_rank", "x"},
        {"[[[]]]", 3, "empty_dimension", "x[0][0]"},
        {"[]", 3, "empty_dimension", "x"},
        {"[[[1e39]]]", 3, "out_of_range", "x[0][0][0]"},
        {"\"[[1]]\"", 2, "wrong_type", "x"},
        {"{}", 2, "missing_field", "x.shape"},
    };
    for (size_t i = 0; i < sizeof cases_ / sizeof cases_[0]; i++) {
        json_t *v = json_loads(cases_[i].json, JSON_DECODE_ANY, NULL);
        ck_assert_ptr_nonnull(v);
        int64_t dim[ENGINE_MAX_RANK];
        api_error e = {0};
        ck_assert(!codec_tensor_shape(v, "x", cases_[i].rank, dim, &e));
        ck_assert_str_eq(e.code, cases_[i].code);
        ck_assert_str_eq(e.path, cases_[i].path);
        json_decref(v);
    }
    /* FLT_MAX as it is printed rounds to FLT_MAX, not to infinity. */
    json_t *v = json_loads("[[[3.4028235e38, -3.4028235e38]]]", 0, NULL);
    int64_t dim[ENGINE_MAX_RANK];
    api_error e = {0};
    ck_assert(codec_tensor_shape(v, "x", 3, dim, &e));
    ck_assert(dim[0] == 1 && dim[1] == 1 && dim[2] == 2);
    json_decref(v);
}
END_TEST

/* Every error of the object forms, straight from codec_tensor_shape:
 * code, path, and the words that make it actionable. */
START_TEST(tensor_object_errors_name_the_value)
{
    static const struct {
        const char *json, *code, *path, *says;
    } c[] = {
        {"{\"shape\":[1,2,3],\"data\":[1,2,3,4,5,6],\"dtyp\":1}",
         "unknown_field", "x.dtyp", "did you mean \"dtype\""},
        {"{\"data\":[1]}", "missing_field", "x.shape", "x.shape is required"},
        {"{\"shape\":[1,1,1]}", "missing_field", "x.data", "no data"},
        {"{\"shape\":[1,1,1],\"b64\":\"AACAPw==\"}", "missing_field",
         "x.dtype", "\"float32\""},
        {"{\"shape\":[1,1,1],\"data\":[1],\"dtype\":\"float32\","
         "\"b64\":\"AACAPw==\"}", "invalid_value", "x", "both data and b64"},
        {"{\"shape\":{},\"data\":[1]}", "wrong_type", "x.shape", "integers"},
        {"{\"shape\":[1,1],\"data\":[1]}", "wrong_rank", "x.shape",
         "2 entries but x must be 3-D"},
        {"{\"shape\":[1,1,\"1\"],\"data\":[1]}", "wrong_type",
         "x.shape[2]", "integer"},
        {"{\"shape\":[1,0,1],\"data\":[]}", "empty_dimension", "x.shape[1]",
         "at least 1"},
        {"{\"shape\":[-1,1,1],\"data\":[1]}", "out_of_range", "x.shape[0]",
         "at least 1"},
        {"{\"shape\":[1000,1000,1000],\"data\":[1]}", "too_large", "x",
         "1000000000 elements"},
        {"{\"shape\":[4611686018427387904,4611686018427387904,4],"
         "\"data\":[1]}", "too_large", "x", "more elements than int64"},
        {"{\"shape\":[1,1,1],\"dtype\":\"float64\",\"data\":[1]}",
         "invalid_value", "x.dtype", "supported dtypes: float32"},
        {"{\"shape\":[1,1,1],\"dtype\":7,\"data\":[1]}", "wrong_type",
         "x.dtype", "\"float32\""},
        {"{\"shape\":[1,1,1],\"data\":{}}", "wrong_type", "x.data", "flat"},
        {"{\"shape\":[1,2,3],\"data\":[1,2,3,4,5]}", "shape_mismatch",
         "x.data", "has 5 numbers but shape [1, 2, 3] needs 6"},
        {"{\"shape\":[1,1,2],\"data\":[1,\"2\"]}", "not_a_number",
         "x.data[1]", "string"},
        {"{\"shape\":[1,1,2],\"data\":[[1],2]}", "not_a_number",
         "x.data[0]", "flat"},
        {"{\"shape\":[1,1,2],\"data\":[1,-1e39]}", "out_of_range",
         "x.data[1]", "float32"},
        {"{\"shape\":[1,1,1],\"dtype\":\"float32\",\"b64\":1}",
         "wrong_type", "x.b64", "string"},
        {"{\"shape\":[1,1,1],\"dtype\":\"float32\",\"b64\":\"AAC-Pw==\"}",
         "invalid_value", "x.b64", "offset 3 of its 8"},
        {"{\"shape\":[1,1,2],\"dtype\":\"float32\",\"b64\":\"AACAPw==\"}",
         "shape_mismatch", "x.b64", "decodes to 4 bytes but shape [1, 1, 2] "
         "needs 8"},
        {"{\"shape\":[1,1,2],\"dtype\":\"float32\","
         "\"b64\":\"AACAPwAAgH8=\"}", "out_of_range", "x.b64",
         "element 1"},
        {"{\"shape\":[1,1,2],\"dtype\":\"float32\",\"b64\":\"AACAPwAAgH8\"}",
         "invalid_value", "x.b64", "offset 11 of its 11"},
        {"{\"shape\":[1,1,3],\"dtype\":\"float32\","
         "\"b64\":\"AACAPwAAgH8AAIA/\"}", "out_of_range", "x.b64",
         "element 1 (bytes 4 to 7)"},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        json_t *v = json_loads(c[i].json, 0, NULL);
        ck_assert_msg(v != NULL, "%zu: %s", i, c[i].json);
        int64_t dim[ENGINE_MAX_RANK];
        api_error e = {0};
        ck_assert_msg(!codec_tensor_shape(v, "x", 3, dim, &e), "%zu", i);
        ck_assert_msg(strcmp(e.code, c[i].code) == 0 &&
                      strcmp(e.path, c[i].path) == 0 &&
                      strstr(e.message, c[i].says) != NULL,
                      "%zu: %s at %s: %s", i, e.code, e.path, e.message);
        json_decref(v);
    }
    /* -0, FLT_MAX and the smallest subnormal are fine, in both forms. */
    json_t *v = json_loads("{\"shape\":[1,1,3],\"data\":[-0.0,"
                           "3.4028235e38,1e-45]}", 0, NULL);
    int64_t dim[ENGINE_MAX_RANK];
    api_error e = {0};
    ck_assert(codec_tensor_shape(v, "x", 3, dim, &e));
    json_decref(v);
    v = json_loads("{\"shape\":[1,1,3],\"dtype\":\"float32\","
                   "\"b64\":\"AAAAgP//fxABAAAA\"}", 0, NULL);
    ck_assert(codec_tensor_shape(v, "x", 3, dim, &e));
    engine_tensor t = {NULL, 3, {1, 1, 3}};
    float f[3];
    t.data = f;
    codec_tensor_fill(&t, v);
    uint32_t bits[3];
    memcpy(bits, f, sizeof bits);
    ck_assert(bits[0] == 0x80000000u && bits[1] == 0x107fffffu &&
              bits[2] == 1u);
    json_decref(v);
}
END_TEST

START_TEST(too_large_refused_before_allocating)
{
    api_config cfg;
    api_config_defaults(&cfg);
    cfg.max_elements = 1000;
    api_init(&cfg);
    /* T = 40: x has 40 elements but the weights would have 1600. */
    char body[512] = "{\"x\":[[";
    for (int t = 0; t < 40; t++)
        strcat(body, t ? ",[1]" : "[1]");
    strcat(body, "]]}");
    api_response res = {0};
    api_bow(body, strlen(body), &res);
    ck_assert_int_eq(res.status, 413);
    ck_assert(strstr(res.body, "\"too_large\"") != NULL);
    api_response_free(&res);
    api_config_defaults(&cfg);
    api_init(&cfg);
}
END_TEST

/* --max-depth holds for tensors read by the body scanner too: a rank-4 x
 * nests 5 deep, which --max-depth 4 refuses as too_deep on both paths. */
START_TEST(max_depth_holds_for_scanned_tensors)
{
    api_config cfg;
    api_config_defaults(&cfg);
    cfg.max_depth = 4;
    api_init(&cfg);
    static const char body[] = "{\"x\":[[[[1]]]]}";
    api_response fast = {0}, slow = {0};
    api_bow(body, strlen(body), &fast);
    api_body_set_fast(0);
    api_bow(body, strlen(body), &slow);
    api_body_set_fast(1);
    ck_assert_int_eq(fast.status, 400);
    ck_assert_msg(strstr(fast.body, "\"too_deep\"") != NULL, "%s", fast.body);
    ck_assert(same_response(&fast, &slow));
    api_response_free(&fast);
    api_response_free(&slow);
    api_config_defaults(&cfg);
    api_init(&cfg);
}
END_TEST

/* A context's length S is bounded like T, and the B x T x S scores it
 * makes are named after it, on both endpoints. */
#define W1 "\"wq\":[[1]],\"wk\":[[1]],\"wv\":[[1]]"
#define MH1 "\"wq\":[[[1]]],\"wk\":[[[1]]],\"wv\":[[[1]]],\"wo\":[[1]]," \
            "\"bo\":[0]"
#define CTX_S5 "\"x\":[[[1],[0]]],\"context\":[[[1],[2],[3],[4],[5]]]"
#define CTX_S6 "\"x\":[[[1],[0],[1],[0]]],\"context\":[[[1],[2],[3],[4]," \
               "[5],[6]]]"
START_TEST(context_limits_name_the_context)
{
    static const struct {
        handler h;
        const char *body, *code;
        int small_seq;      /* else small max_elements */
    } c[4] = {
        {api_attention, "{" CTX_S5 "," W1 "}", "dimension_too_large", 1},
        {api_multihead, "{" CTX_S5 "," MH1 "}", "dimension_too_large", 1},
        {api_attention, "{" CTX_S6 "," W1 "}", "too_large", 0},
        {api_multihead, "{" CTX_S6 "," MH1 "}", "too_large", 0}};
    api_config cfg;
    for (int i = 0; i < 4; i++) {
        api_config_defaults(&cfg);
        if (c[i].small_seq)
            cfg.max_seq = 4;        /* T = 2 fits, S = 5 does not */
        else
            cfg.max_elements = 20;  /* every input fits, T x S = 24 not */
        api_init(&cfg);
        api_response res = {0};
        c[i].h(c[i].body, strlen(c[i].body), &res);
        ck_assert_msg(res.status == 413, "%s: %.*s", c[i].body,
                      (int)res.len, res.body);
        json_t *j = json_loadb(res.body, res.len, 0, NULL);
        json_t *e = json_object_get(j, "error");
        ck_assert_str_eq(json_string_value(json_object_get(e, "code")),
                         c[i].code);
        ck_assert_str_eq(json_string_value(json_object_get(e, "path")),
                         "context");
        ck_assert(strstr(json_string_value(json_object_get(e, "message")),
                         c[i].small_seq ? "context length S = 5" :
                         "(B x T x S) = 24") != NULL);
        json_decref(j);
        api_response_free(&res);
    }
    api_config_defaults(&cfg);
    api_init(&cfg);
}
END_TEST

/* Found by make fuzz (with its fast-path check): the integer -0 is the
 * integer 0 to Jansson, so +0, while -0.0 is a real and stays -0; the body
 * fast path reads them the same way, nested and flat. */
START_TEST(negative_zero_reads_as_jansson_does)
{
    static const char *const bodies[] = {
        "{\"x\":[[[-0,-0.0,-0e5]]],\"wq\":[[1,1,1]],\"wk\":[[1,1,1]],"
        "\"wv\":[[1,1,1]],\"return\":[\"x\"]}",
        "{\"x\":{\"shape\":[1,1,3],\"data\":[-0,-0.0,-0e5]},"
        "\"wq\":[[1,1,1]],\"wk\":[[1,1,1]],\"wv\":[[1,1,1]],"
        "\"return\":[\"x\"]}",
    };
    for (int i = 0; i < 2; i++) {
        api_response fast = {0}, slow = {0};
        api_body_set_fast(1);
        api_attention(bodies[i], strlen(bodies[i]), &fast);
        api_body_set_fast(0);
        api_attention(bodies[i], strlen(bodies[i]), &slow);
        api_body_set_fast(1);
        ck_assert_int_eq(fast.status, 200);
        ck_assert_msg(same_response(&fast, &slow), "%.*s\n%.*s",
                      (int)fast.len, fast.body, (int)slow.len, slow.body);
        static const char want[] = "{\"x\":[[[0,-0,-0]]]}";
        ck_assert_msg(fast.len == sizeof want - 1 &&
                      memcmp(fast.body, want, fast.len) == 0,
                      "%.*s", (int)fast.len, fast.body);
        api_response_free(&fast);
        api_response_free(&slow);
    }
}
END_TEST

/* The body scanner reads a number's digits while it checks the grammar and
 * computes short decimals itself (Clinger's fast path), leaving the rest to
 * fast_float.  Every float must be the one a correctly rounded strtod (or,
 * for integers, Jansson's int64) gives, on both sides of every edge of that
 * path: 19/20 digits, 2^53, 10^+-22, leading zeros, signs, exponents. */
static void number_text(char *o, unsigned *seed, int form)
{
#define R(n) ((*seed = *seed * 1103515245u + 12345u) >> 8) % (n)
    char *p = o;
    if (R(3) == 0)
        *p++ = '-';
    int digits = form == 0 ? 1 + (int)R(9) : 1 + (int)R(24);
    int point = (int)R((unsigned)digits + 1);
    if (point == 0)
        *p++ = '0';
    for (int i = 0; i < digits; i++) {
        if (i == point && i > 0)
            *p++ = '.';
        if (i == 0 && point == 0)
            *p++ = '.';
        *p++ = (char)('0' + ((i == 0 && point > 1) ? 1 + R(9) : R(10)));
    }
    if (form == 2) {
        *p++ = R(2) ? 'e' : 'E';
        const int x = (int)R(70) - 40;
        p += sprintf(p, R(2) && x >= 0 ? "+%d" : "%d", x);
    }
    *p = '\0';
#undef R
}

static float expected_float(const char *t)
{
    if (!strpbrk(t, ".eE"))
        return (float)(double)strtoll(t, NULL, 10);   /* "-0" is 0 */
    return (float)strtod(t, NULL);
}

START_TEST(body_scanner_reads_numbers_as_strtod)
{
    static const char *const edges[] = {
        "9007199254740992", "9007199254740993", "-9007199254740993",
        "900719925474099.3", "9007199254740993e-3", "1234567890123456789e-5",
        "12345678901234567890e-5", "0.0000000000000000000123",
        "0.1e23", "1e22", "1e23", "1e-22", "1e-23", "4.5e-22", "4.5e-23",
        "-0", "-0.0", "0e10", "-0E-7", "0.000", "1e0", "123456789012345678",
        "3.4028234e38", "1.17549435e-38", "1.4e-45", "7e-46", "1.5e-45",
        "0.30000001192092896", "16777217", "16777216.5", "0.1", "-2.4385"};
    const char *tensors[] = {"x", NULL};
    enum { N = 3000 };
    char (*text)[48] = malloc(N * sizeof *text);
    char *body = malloc(N * 50 + 16);
    unsigned seed = 12345;
    for (int round = 0; round < 8; round++) {
        int n = 0;
        if (round == 0)
            for (; n < (int)(sizeof edges / sizeof *edges); n++)
                strcpy(text[n], edges[n]);
        /* Halfway between two floats, with 16 to 19 digits: the double
         * the text rounds to is the exact midpoint, so a double that is
         * one unit off turns the float the other way. */
        for (; round >= 6 && n < N; n++) {
            seed = seed * 1103515245u + 12345u;
            const float f = ldexpf(1.0f + (float)(seed >> 9) / 8388608.0f,
                                   (int)(seed % 80) - 40);
            const double mid = ((double)f + (double)nextafterf(f, 1e30f)) / 2;
            sprintf(text[n], "%.*e", 15 + (int)(seed >> 28) % 4, mid);
        }
        while (n < N) {
            number_text(text[n], &seed, round % 3);
            const int integer = !strpbrk(text[n], ".eE");
            if ((integer && strlen(text[n]) > 18) ||   /* past int64 */
                !(fabs(strtod(text[n], NULL)) < FLOAT32_LIMIT))
                continue;
            n++;
        }
        char *o = body + sprintf(body, "{\"x\":[");
        for (int i = 0; i < n; i++)
            o += sprintf(o, "%s%s", i ? "," : "", text[i]);
        o += sprintf(o, "]}");
        api_body b;
        api_error e = {0};
        ck_assert(api_body_parse(&b, body, (size_t)(o - body), tensors, &e));
        ck_assert_int_eq(b.npre, 1);        /* the scanner read it */
        ck_assert_int_eq(b.pre[0].dim[0], n);
        for (int i = 0; i < n; i++) {
            const float want = expected_float(text[i]);
            uint32_t a, w;
            memcpy(&a, &b.pre[0].data[i], 4);
            memcpy(&w, &want, 4);
            ck_assert_msg(a == w, "%s: read %a, want %a", text[i],
                          (double)b.pre[0].data[i], (double)want);
        }
        api_body_free(&b);
    }
    free(body);
    free(text);
}
END_TEST

/* Found by make fuzz: a float of 1e15 or more written as a 16+ digit
 * integer is JSON that int64 parsers such as Jansson refuse. */
START_TEST(big_floats_parse_as_json)
{
    static const char body[] =
        "{\"x\": [[[3e+20, 3e+15]]], \"wq\": [[1, 1]], \"wk\": [[0.5, 0]], "
        "\"wv\": [[0.5, 0]], \"return\": [\"q\"]}";
    api_response res = {0};
    api_attention(body, strlen(body), &res);
    ck_assert_int_eq(res.status, 200);
    json_error_t err;
    json_t *j = json_loadb(res.body, res.len, 0, &err);
    ck_assert_msg(j != NULL, "%.*s: %s", (int)res.len, res.body, err.text);
    const double q = json_number_value(json_array_get(json_array_get(
        json_array_get(json_object_get(j, "q"), 0), 0), 0));
    ck_assert_double_eq_tol(q, 3.00003e20, 1e14);
    json_decref(j);
    api_response_free(&res);
}
END_TEST

Suite *api_suite(void)
{
    Suite *s = suite_create("api");
    glob("tests/fixtures/*/*.json", 0, NULL, &fixtures);
    glob("tests/cases/*/case.json", 0, NULL, &cases);

    TCase *tc = tcase_create("fixtures");
    /* An empty folder must fail, not pass vacuously. */
    if (fixtures.gl_pathc < 20 || cases.gl_pathc < 30) {
        fprintf(stderr, "test_unit: tests/fixtures or tests/cases not found "
                "(run from the repo root)\n");
        exit(EXIT_FAILURE);
    }
    tcase_add_loop_test(tc, fixture_matches_pytorch, 0, (int)fixtures.gl_pathc);
    suite_add_tcase(s, tc);
    tc = tcase_create("cases");
    tcase_add_loop_test(tc, case_gives_its_error, 0, (int)cases.gl_pathc);
    tcase_add_loop_test(tc, fast_body_path_is_invisible, 0,
                        (int)(fixtures.gl_pathc + cases.gl_pathc));
    tcase_add_loop_test(tc, formats_agree_with_nested, 0,
                        (int)fixtures.gl_pathc);
    tcase_add_test(tc, b64_chunks);
    tcase_add_test(tc, tensor_shape_errors_name_the_value);
    tcase_add_test(tc, tensor_object_errors_name_the_value);
    tcase_add_test(tc, too_large_refused_before_allocating);
    tcase_add_test(tc, big_floats_parse_as_json);
    tcase_add_test(tc, context_limits_name_the_context);
    tcase_add_test(tc, negative_zero_reads_as_jansson_does);
    tcase_add_test(tc, body_scanner_reads_numbers_as_strtod);
    tcase_add_test(tc, max_depth_holds_for_scanned_tensors);
    suite_add_tcase(s, tc);
    return s;
}
