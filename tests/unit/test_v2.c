/* test_v2.c -- the KServe / Triton v2 adapter (api/v2.c) and its routes
 * (server/route.c): a v2 request's call is the native request's (the
 * answers side by side), binary data exact both ways, errors told at the
 * place in the v2 request, versioned URLs. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../api/v2.h"
#include "../../server/server.h"
#include "unit.h"

/* The v2 error text of a request (asserts the status and the form). */
static void error_of(const char *model, const char *v2, int status,
                     char *msg, size_t cap)
{
    api_response res = {0};
    api_v2_infer(model, v2, strlen(v2), NULL, &res);
    ck_assert_int_eq(res.status, status);
    json_t *j = json_loadb(res.body, res.len, 0, NULL);
    ck_assert_ptr_nonnull(j);
    ck_assert_int_eq((int)json_object_size(j), 1);
    const char *e = json_string_value(json_object_get(j, "error"));
    ck_assert_ptr_nonnull(e);
    snprintf(msg, cap, "%s", e);
    json_decref(j);
    api_response_free(&res);
}

/* The numbers of the array value after `key` in text, as "a,b,c". */
static void tokens_after(const char *text, const char *key, char *out,
                         size_t cap)
{
    const char *s = strstr(text, key);
    ck_assert_msg(s != NULL, "%s not in %s", key, text);
    s += strlen(key);
    ck_assert_int_eq(*s, '[');
    size_t k = 0;
    int depth = 0;
    do {
        const char c = *s;
        if (c == '[' || c == ']') {
            depth += c == '[' ? 1 : -1;
        } else if (c != ',') {
            if (k && out[k - 1] != ',')
                out[k++] = ',';
            while (*s && *s != ',' && *s != ']' && *s != '[' && k + 2 < cap)
                out[k++] = *s++;
            continue;
        }
        s++;
    } while (depth > 0 && *s);
    out[k] = '\0';
}

/* One head over a 1 x 2 x 2 x (causal: a score masked), natively with
 * return scores, weights, out, and the same as v2 inputs, to which the
 * caller adds outputs (and parameters): the two answers, both 200. */
static void one_head(const char *v2_rest, api_response *n, api_response *r)
{
    static const char native[] =
        "{\"x\":[[[0.3,1],[2,3]]],\"wq\":[[1,0.7]],\"wk\":[[0.2,1]],"
        "\"wv\":[[1,1]],\"return\":[\"scores\",\"weights\",\"out\"]}";
    char v2[1024];
    snprintf(v2, sizeof v2,
        "{\"inputs\":[{\"name\":\"x\",\"shape\":[1,2,2],\"datatype\":\"FP32\","
        "\"data\":[0.3,1,2,3]},{\"name\":\"wq\",\"shape\":[1,2],\"datatype\":"
        "\"FP32\",\"data\":[1,0.7]},{\"name\":\"wk\",\"shape\":[1,2],"
        "\"datatype\":\"FP32\",\"data\":[0.2,1]},{\"name\":\"wv\",\"shape\":"
        "[1,2],\"datatype\":\"FP32\",\"data\":[1,1]}],%s}", v2_rest);
    api_attention(native, strlen(native), n);
    api_v2_infer("attention", v2, strlen(v2), NULL, r);
    ck_assert_int_eq(n->status, 200);
    ck_assert_int_eq(r->status, 200);
}

/* The numbers of output `name` in a v2 JSON answer and of field `name`
 * in a native answer are the same text. */
static void same_numbers(const api_response *n, const api_response *r,
                         const char *name, const char *shape)
{
    char key[96], a[1024], b[1024];
    snprintf(key, sizeof key, "\"%s\":", name);
    tokens_after(n->body, key, a, sizeof a);
    snprintf(key, sizeof key, "\"name\":\"%s\",\"shape\":%s,"
             "\"datatype\":\"FP32\",\"data\":", name, shape);
    tokens_after(r->body, key, b, sizeof b);
    ck_assert_str_eq(a, b);
}

/* Flat and nested data, parameters as the native fields, outputs as
 * "return": the call is the native request's (numbers as the float32
 * each rounds to). */
START_TEST(inputs_flat_and_nested)
{
    static const char v2[] =
        "{\"id\":\"r\",\"inputs\":[{\"name\":\"x\",\"shape\":[1,2,2],"
        "\"datatype\":\"FP32\",\"data\":[1,0.1,-2.5e-3,4]},"
        "{\"name\":\"wq\",\"shape\":[1,2],\"datatype\":\"FP32\","
        "\"data\":[[1,2]]}],\"parameters\":{\"causal\":false,\"scale\":0.5,"
        "\"seed\":\"7\",\"shape\":[1,2,2],\"head_size\":1},"
        "\"outputs\":[{\"name\":\"scores\"},{\"name\":\"out\"},"
        "{\"name\":\"x\"},{\"name\":\"wk\"}]}";
    static const char native[] =
        "{\"x\":[[[1,0.1],[-2.5e-3,4]]],\"wq\":[[1,2]],\"causal\":false,"
        "\"scale\":0.5,\"seed\":\"7\",\"shape\":[1,2,2],\"head_size\":1,"
        "\"return\":[\"scores\",\"out\",\"x\",\"wk\"]}";
    api_response n = {0}, r = {0};
    api_attention(native, strlen(native), &n);
    api_v2_infer("attention", v2, strlen(v2), NULL, &r);
    ck_assert_int_eq(n.status, 200);
    ck_assert_int_eq(r.status, 200);
    same_numbers(&n, &r, "scores", "[1,2,2]");
    same_numbers(&n, &r, "out", "[1,2,1]");
    same_numbers(&n, &r, "x", "[1,2,2]");
    same_numbers(&n, &r, "wk", "[1,2]");
    api_response_free(&n);
    api_response_free(&r);
    /* a real stays a real in parameters (head_size 2.0 is refused as
     * natively); an element past float32 is refused where it stands */
    char msg[400];
    error_of("attention", "{\"inputs\":[{\"name\":\"x\",\"shape\":[1,1,2],"
             "\"datatype\":\"FP32\",\"data\":[1e39,-0.0]}],\"parameters\":"
             "{\"seed\":1,\"head_size\":2.0}}", 400, msg, sizeof msg);
    ck_assert_str_eq(msg, "wrong_type at parameters.head_size: head_size "
                     "must be an integer, not number");
    error_of("attention", "{\"inputs\":[{\"name\":\"x\",\"shape\":[1,1,2],"
             "\"datatype\":\"FP32\",\"data\":[1,1e39]}],\"parameters\":"
             "{\"seed\":1,\"head_size\":2}}", 400, msg, sizeof msg);
    ck_assert_str_eq(msg, "out_of_range at inputs[0].data[1] (x[0][0][1]): "
                     "x[0][0][1] = 1e+39 does not fit in float32 (largest "
                     "magnitude 3.4028235e38)");
}
END_TEST

/* context and a BOOL mask (true = may attend) give the native answer. */
START_TEST(inputs_context_and_mask)
{
    static const char v2[] =
        "{\"inputs\":[{\"name\":\"mask\",\"shape\":[2,3],\"datatype\":"
        "\"BOOL\",\"data\":[true,false,true,true,true,false]},"
        "{\"name\":\"context\",\"shape\":[1,3,2],\"datatype\":\"FP32\","
        "\"data\":[[[3,-1],[0.5,2],[1,1]]]},{\"name\":\"x\",\"shape\":"
        "[1,2,2],\"datatype\":\"FP32\",\"data\":[0.3,1,2,3]}],"
        "\"parameters\":{\"seed\":3,\"head_size\":2},\"outputs\":"
        "[{\"name\":\"weights\"},{\"name\":\"out\"}]}";
    static const char native[] =
        "{\"mask\":[[true,false,true],[true,true,false]],\"context\":"
        "[[[3,-1],[0.5,2],[1,1]]],\"x\":[[[0.3,1],[2,3]]],\"seed\":3,"
        "\"head_size\":2}";
    api_response n = {0}, r = {0};
    api_attention(native, strlen(native), &n);
    api_v2_infer("attention", v2, strlen(v2), NULL, &r);
    ck_assert_int_eq(n.status, 200);
    ck_assert_int_eq(r.status, 200);
    same_numbers(&n, &r, "weights", "[1,2,3]");
    same_numbers(&n, &r, "out", "[1,2,2]");
    api_response_free(&n);
    api_response_free(&r);
}
END_TEST

/* The v2 answer carries exactly the native answer's number text. */
START_TEST(answer_is_the_native_text)
{
    api_response n = {0}, r = {0};
    one_head("\"outputs\":[{\"name\":\"scores\"},{\"name\":\"weights\"},"
             "{\"name\":\"out\"}]", &n, &r);
    ck_assert_str_eq(r.content_type, "application/json");
    static const char *const names[3] = {"scores", "weights", "out"};
    static const char *const shapes[3] = {"[1,2,2]", "[1,2,2]", "[1,2,1]"};
    for (int i = 0; i < 3; i++) {
        char key[64], a[512], b[512];
        snprintf(key, sizeof key, "\"%s\":", names[i]);
        tokens_after(n.body, key, a, sizeof a);
        snprintf(key, sizeof key, "\"name\":\"%s\",\"shape\":%s,"
                 "\"datatype\":\"FP32\",\"data\":", names[i], shapes[i]);
        tokens_after(r.body, key, b, sizeof b);
        ck_assert_str_eq(a, b);
    }
    /* masked scores stay null */
    ck_assert_ptr_nonnull(strstr(r.body, "\"data\":[1.06,null,"));
    ck_assert(strncmp(r.body, "{\"model_name\":\"attention\",\"model_version\""
                      ":\"1\",\"outputs\":[{\"name\":\"scores\"", 70) == 0);
    api_response_free(&n);
    api_response_free(&r);
}
END_TEST

/* The numbers of the native answer's value after `key`, read by strtof
 * (not the adapter's reader), null as -inf; returns how many. */
static int floats_after(const char *text, const char *key, float *out,
                        int cap)
{
    char tok[1024];
    tokens_after(text, key, tok, sizeof tok);
    int n = 0;
    for (char *t = strtok(tok, ","); t && n < cap; t = strtok(NULL, ","))
        out[n++] = strcmp(t, "null") == 0 ? -INFINITY : strtof(t, NULL);
    return n;
}

/* Triton's binary tensor data for outputs: each binary output's JSON
 * entry says its size in place of its data, its bytes follow the JSON in
 * output order, and they are the very float32 of the native answer's text
 * (-inf where a score is masked); an output's binary_data overrides the
 * request's binary_data_output. */
START_TEST(binary_outputs)
{
    api_response n = {0}, r = {0};
    one_head("\"parameters\":{\"binary_data_output\":true},\"outputs\":["
             "{\"name\":\"scores\"},{\"name\":\"weights\",\"parameters\":"
             "{\"binary_data\":false}},{\"name\":\"out\"}]", &n, &r);
    ck_assert_str_eq(r.content_type, "application/octet-stream");
    ck_assert_uint_eq(r.len - r.json_len, 4 * 4 + 2 * 4);
    json_t *j = json_loadb(r.body, r.json_len, 0, NULL);
    ck_assert_ptr_nonnull(j);
    const json_t *o = json_object_get(j, "outputs");
    ck_assert_int_eq((int)json_array_size(o), 3);
    static const char *const names[3] = {"scores", "weights", "out"};
    static const int sizes[3] = {16, -1, 8};
    for (int i = 0; i < 3; i++) {
        const json_t *t = json_array_get(o, (size_t)i);
        ck_assert_str_eq(json_string_value(json_object_get(t, "name")),
                         names[i]);
        ck_assert_str_eq(json_string_value(json_object_get(t, "datatype")),
                         "FP32");
        const json_t *sz = json_object_get(json_object_get(t, "parameters"),
                                           "binary_data_size");
        if (sizes[i] < 0) {
            ck_assert_ptr_null(sz);
            ck_assert_ptr_nonnull(json_object_get(t, "data"));
        } else {
            ck_assert_int_eq((int)json_integer_value(sz), sizes[i]);
            ck_assert_ptr_null(json_object_get(t, "data"));
        }
    }
    json_decref(j);
    float want[8], got[8];
    ck_assert_int_eq(floats_after(n.body, "\"scores\":", want, 8), 4);
    ck_assert_int_eq(floats_after(n.body, "\"out\":", want + 4, 4), 2);
    memcpy(got, r.body + r.json_len, 6 * sizeof(float));
    ck_assert(isinf(want[1]) && want[1] < 0);       /* masked (causal) */
    ck_assert(memcmp(got, want, 6 * sizeof(float)) == 0);
    api_response_free(&n);
    api_response_free(&r);

    /* bow's max_abs_diff (an object natively) and allclose (BOOL: one
     * byte), binary by their own binary_data alone */
    const char *bow =
        "{\"inputs\":[],\"parameters\":{\"seed\":4,\"shape\":[1,3,2],"
        "\"method\":\"all\"},\"outputs\":[{\"name\":\"allclose\","
        "\"parameters\":{\"binary_data\":true}},{\"name\":\"out\"},"
        "{\"name\":\"max_abs_diff\",\"parameters\":{\"binary_data\":true}}]}";
    const char *bow_native = "{\"seed\":4,\"shape\":[1,3,2],\"method\":"
                             "\"all\"}";
    api_bow(bow_native, strlen(bow_native), &n);
    api_v2_infer("bow", bow, strlen(bow), NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.content_type, "application/octet-stream");
    ck_assert_uint_eq(r.len - r.json_len, 1 + 3 * 4);
    ck_assert_ptr_nonnull(strstr(n.body, "\"allclose\":true"));
    ck_assert_int_eq(r.body[r.json_len], 1);
    const char *m = strstr(n.body, "\"max_abs_diff\":{");
    ck_assert_ptr_nonnull(m);
    m = strchr(m, '{');
    for (int i = 0; i < 3; i++) {
        m = strchr(m + 1, ':');
        want[i] = strtof(m + 1, NULL);
    }
    memcpy(got, r.body + r.json_len + 1, 3 * sizeof(float));
    ck_assert(memcmp(got, want, 3 * sizeof(float)) == 0);
    api_response_free(&n);
    api_response_free(&r);

    /* all JSON: as before, no header length */
    const char *plain = "{\"inputs\":[],\"parameters\":{\"seed\":4,\"shape\":"
                        "[1,3,2],\"binary_data_output\":false}}";
    api_v2_infer("bow", plain, strlen(plain), NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.content_type, "application/json");
    ck_assert_uint_eq(r.json_len, 0);
    api_response_free(&r);

    char msg[400];
    error_of("bow", "{\"inputs\":[],\"parameters\":{\"seed\":4,\"shape\":"
             "[1,3,2]},\"outputs\":[{\"name\":\"out\",\"parameters\":"
             "{\"binary_data\":1}}]}", 400, msg, sizeof msg);
    ck_assert_str_eq(msg, "wrong_type at outputs[0].parameters.binary_data: "
                     "binary_data must be true or false, not integer");
}
END_TEST

START_TEST(errors_name_the_v2_place)
{
    char msg[400];
    /* a native element path becomes the flat data index */
    error_of("bow", "{\"inputs\":[{\"name\":\"x\",\"shape\":[1,2,2],"
             "\"datatype\":\"FP32\",\"data\":[[[1,2],[3,-1e39]]]}]}", 400,
             msg, sizeof msg);
    ck_assert_str_eq(msg, "out_of_range at inputs[0].data[3] (x[0][1][1]): "
                     "x[0][1][1] = -1e+39 does not fit in float32 (largest "
                     "magnitude 3.4028235e38)");
    /* a native field that was a v2 input, a parameter, an output */
    error_of("attention", "{\"inputs\":[{\"name\":\"wq\",\"shape\":[1,1],"
             "\"datatype\":\"FP32\",\"data\":[1]}],\"parameters\":{\"seed\":"
             "1,\"shape\":[1,2,3]}}", 400, msg, sizeof msg);
    ck_assert_str_eq(msg, "shape_mismatch at inputs[0] (wq): wq is 1 x 1 but "
                     "must be head_size x C with C = 3 (the last dimension of "
                     "x): nn.Linear.weight layout, out_features x "
                     "in_features");
    error_of("attention", "{\"inputs\":[],\"parameters\":{\"seed\":1,"
             "\"shape\":[1,2,0],\"head_size\":2}}", 400, msg, sizeof msg);
    ck_assert_str_eq(msg, "empty_dimension at parameters.shape[2]: shape[2] "
                     "= 0; dimensions must be at least 1");
    error_of("multihead", "{\"inputs\":[],\"parameters\":{\"seed\":1,"
             "\"shape\":[1,2,4],\"num_heads\":2}}", 400, msg, sizeof msg);
    ck_assert(strncmp(msg, "missing_field at parameters.head_size: ", 39) == 0);
    /* the adapter's own checks */
    error_of("multihead", "{\"inputs\":[{\"name\":\"x\",\"shape\":[1,1,1],"
             "\"datatype\":\"FP32\",\"data\":[1]},{\"name\":\"bo\",\"shape\":"
             "[1],\"datatype\":\"FP32\",\"data\":[1]},{\"name\":\"x\"}]}", 400,
             msg, sizeof msg);
    ck_assert_str_eq(msg, "missing_field at inputs[2].shape: inputs[2] has no "
                     "\"shape\"; an input needs name, shape, datatype and "
                     "data");
    error_of("bow", "{\"inputs\":[{\"name\":\"x\",\"shape\":[1,1,2],"
             "\"datatype\":\"FP32\",\"data\":[1,[2,[true]]]}]}", 400, msg,
             sizeof msg);
    ck_assert_str_eq(msg, "wrong_type at inputs[0].data[2]: x's element 2 "
                     "must be a number (datatype FP32), not true");
    error_of("attention", "{\"inputs\":[{\"name\":\"mask\",\"shape\":[1],"
             "\"datatype\":\"BOOL\",\"data\":[1]}]}", 400, msg, sizeof msg);
    ck_assert_str_eq(msg, "wrong_type at inputs[0].data[0]: mask's element 0 "
                     "must be true or false (datatype BOOL), not integer");
    error_of("bow", "{\"inputs\":[{\"name\":\"x\",\"shape\":[1,1,1,1,1],"
             "\"datatype\":\"FP32\",\"data\":[1]}]}", 400, msg, sizeof msg);
    ck_assert(strncmp(msg, "wrong_rank at inputs[0].shape: ", 31) == 0);
    error_of("nope", "{}", 404, msg, sizeof msg);
    ck_assert_str_eq(msg, "not_found: unknown model \"nope\"; models: bow, "
                     "attention, multihead, block, gpt");
}
END_TEST

/* Every float32 an input carries as binary tensor data is the call's
 * float, sign of zero included, and comes back as binary output bit for
 * bit: 2^18 random bit patterns plus the edges (bow returns the x it was
 * sent when a seed is given). */
START_TEST(input_floats_are_exact)
{
    enum { N = 1 << 18 };
    static const char head[] =
        "{\"inputs\":[{\"name\":\"x\",\"shape\":[1,1,262144],\"datatype\":"
        "\"FP32\",\"parameters\":{\"binary_data_size\":1048576}}],"
        "\"parameters\":{\"seed\":1},\"outputs\":[{\"name\":\"x\","
        "\"parameters\":{\"binary_data\":true}}]}";
    const size_t hl = sizeof head - 1;
    char *body = malloc(hl + 4 * (size_t)N);
    float *f = malloc(4 * (size_t)N);
    memcpy(body, head, hl);
    uint64_t st = 0x9E3779B97F4A7C15ull;
    static const uint32_t edges[] = {0x00000001u, 0x80000001u, 0x007fffffu,
                                     0x00800000u, 0x7f7fffffu, 0xff7fffffu,
                                     0x80000000u, 0x00000000u, 0x3f800000u};
    for (int i = 0; i < N; i++) {
        uint32_t b;
        do {
            st ^= st << 13;
            st ^= st >> 7;
            st ^= st << 17;
            b = i < 9 ? edges[i] : (uint32_t)(st >> 20);
            memcpy(&f[i], &b, 4);
        } while (!isfinite(f[i]));
    }
    memcpy(body + hl, f, 4 * (size_t)N);
    api_response res = {0};
    api_v2_infer("bow", body, hl + 4 * (size_t)N, NULL, &res);
    ck_assert_int_eq(res.status, 200);
    ck_assert_uint_eq(res.len - res.json_len, 4 * (size_t)N);
    ck_assert(memcmp(res.body + res.json_len, f, 4 * (size_t)N) == 0);
    api_response_free(&res);
    free(f);
    free(body);
}
END_TEST

START_TEST(metadata)
{
    for (int i = 0; i < 3; i++) {
        static const char *const m[3] = {"bow", "attention", "multihead"};
        api_response res = {0};
        api_v2_model_metadata(m[i], &res);
        ck_assert_int_eq(res.status, 200);
        json_t *j = json_loadb(res.body, res.len, 0, NULL);
        ck_assert_ptr_nonnull(j);
        ck_assert_str_eq(json_string_value(json_object_get(j, "name")), m[i]);
        ck_assert_int_gt((int)json_array_size(json_object_get(j, "inputs")), 0);
        /* a mask's other datatype and rank, in parameters */
        const json_t *in = json_object_get(j, "inputs"), *mask = NULL;
        for (size_t k = 0; k < json_array_size(in); k++)
            if (strcmp(json_string_value(json_object_get(
                           json_array_get(in, k), "name")), "mask") == 0)
                mask = json_array_get(in, k);
        if (i == 0) {
            ck_assert_ptr_null(mask);
        } else {
            ck_assert_ptr_nonnull(mask);
            char *text = json_dumps(mask, JSON_COMPACT | JSON_PRESERVE_ORDER);
            ck_assert_str_eq(text, "{\"name\":\"mask\",\"datatype\":\"BOOL\","
                             "\"shape\":[-1,-1,-1],\"parameters\":{"
                             "\"datatypes\":\"BOOL,FP32\",\"ranks\":\"2,3\"}}");
            free(text);
        }
        json_decref(j);
        api_response_free(&res);
    }
}
END_TEST

START_TEST(routes)
{
    const server_route *infer = server_find_route("/v2/models/bow/infer");
    ck_assert_ptr_nonnull(infer);
    ck_assert_ptr_eq(server_find_route("/v2/models/bow/versions/1/infer"),
                     infer);
    ck_assert_ptr_eq(server_find_route("/v2/models/multihead/versions/1"),
                     server_find_route("/v2/models/multihead"));
    ck_assert_ptr_eq(server_find_route("/v2/models/attention/versions/1/ready"),
                     server_find_route("/v2/models/attention/ready"));
    ck_assert_ptr_null(server_find_route("/v2/models/bow/versions/2/infer"));
    ck_assert_ptr_null(server_find_route("/v2/models/bow/versions/11/infer"));
    ck_assert_ptr_null(server_find_route("/v2/models/bow/versions/1x"));
    ck_assert_ptr_null(server_find_route("/v2/models/nope/versions/1/infer"));
    ck_assert(server_is_v2_path("/v2") && server_is_v2_path("/v2/x"));
    ck_assert(!server_is_v2_path("/v20") && !server_is_v2_path("/bow"));

    /* early answers on /v2 paths are in the v2 form, others not */
    api_response early;
    server_decide_early(NULL, "GET", "/v2/nope", NULL, &early);
    ck_assert_int_eq(early.status, 404);
    ck_assert(strncmp(early.body, "{\"error\":\"not_found: no route GET "
                      "/v2/nope; v2 routes:", 50) == 0);
    api_response_free(&early);
    server_decide_early(infer, "POST", "/v2/models/bow/infer", "text/csv",
                        &early);
    ck_assert_int_eq(early.status, 415);
    ck_assert_str_eq(early.code, "unsupported_media_type");
    ck_assert(strncmp(early.body, "{\"error\":\"unsupported_media_type: ",
                      34) == 0);
    api_response_free(&early);
    server_decide_early(NULL, "GET", "/nope", NULL, &early);
    ck_assert(strncmp(early.body, "{\"error\":{\"status\":404", 22) == 0);
    api_response_free(&early);

    /* a body over --max-body: 413 either way, the form the path's */
    server_body_too_large("/v2/models/bow/versions/1/infer", 1000, &early);
    ck_assert_int_eq(early.status, 413);
    ck_assert_str_eq(early.code, "body_too_large");
    static const char want[] = "{\"error\":\"body_too_large: the request "
                               "body is over this server's limit of 1000 "
                               "bytes (--max-body)\"}";
    ck_assert_uint_eq(early.len, sizeof want - 1);
    ck_assert(memcmp(early.body, want, early.len) == 0);
    api_response_free(&early);
    server_body_too_large("/bow", 1000, &early);
    ck_assert_int_eq(early.status, 413);
    ck_assert(strncmp(early.body, "{\"error\":{\"status\":413,\"code\":"
                      "\"body_too_large\"", 43) == 0);
    api_response_free(&early);
}
END_TEST

Suite *v2_suite(void)
{
    Suite *s = suite_create("v2");
    TCase *tc = tcase_create("adapter");
    tcase_add_test(tc, inputs_flat_and_nested);
    tcase_add_test(tc, inputs_context_and_mask);
    tcase_add_test(tc, answer_is_the_native_text);
    tcase_add_test(tc, binary_outputs);
    tcase_add_test(tc, errors_name_the_v2_place);
    tcase_add_test(tc, input_floats_are_exact);
    tcase_add_test(tc, metadata);
    tcase_add_test(tc, routes);
    suite_add_tcase(s, tc);
    return s;
}
