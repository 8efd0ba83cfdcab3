/* test_oom.c -- allocation failure anywhere in a request: every handler
 * must answer (200 or 503 out_of_memory, never a crash) and free all it
 * took.  The unit binary is linked with --wrap=malloc,calloc,realloc,free
 * (Makefile), so every allocation of api/, engine/ and -- through
 * api/s allocator -- Jansson is counted here, and the N-th can be made
 * to fail.  (api/ gives Jansson an allocator that calls malloc, so
 * Jansson's allocations pass through the wrap as well.) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../api/api.h"
#include "../../api/v2.h"
#include "unit.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);

static long armed_calls;    /* allocations since arming; -1 = disarmed */
static long fail_at;        /* the allocation (1-based) that fails */
static long live;           /* allocations not yet freed */

static int should_fail(void)
{
    if (armed_calls < 0)
        return 0;
    return ++armed_calls == fail_at;
}

void *__wrap_malloc(size_t n)
{
    if (should_fail())
        return NULL;
    void *p = __real_malloc(n);
    if (p)
        live++;
    return p;
}

void *__wrap_calloc(size_t n, size_t m)
{
    if (should_fail())
        return NULL;
    void *p = __real_calloc(n, m);
    if (p)
        live++;
    return p;
}

void *__wrap_realloc(void *old, size_t n)
{
    if (should_fail())
        return NULL;            /* old stays valid, as realloc promises */
    void *p = __real_realloc(old, n);
    if (p && !old)
        live++;
    return p;
}

void __wrap_free(void *p)
{
    if (p)
        live--;
    __real_free(p);
}

typedef void (*handler)(const char *, size_t, api_response *);

static void v2_bow(const char *b, size_t n, api_response *res)
{
    api_v2_infer("bow", b, n, NULL, res);
}

static void v2_attention(const char *b, size_t n, api_response *res)
{
    api_v2_infer("attention", b, n, NULL, res);
}

static void v2_multihead(const char *b, size_t n, api_response *res)
{
    api_v2_infer("multihead", b, n, NULL, res);
}

static const struct {
    const char *name;
    handler h;
    const char *body;
    int status;             /* of the answer without failure */
} requests[] = {
    {"bow all", api_bow, "{\"x\":[[[1,2],[3,4],[5,6]],[[1,0],[0,1],[2,2]]],"
                         "\"method\":\"all\"}", 200},
    {"bow seeded", api_bow, "{\"seed\":3,\"shape\":[2,5,3]}", 200},
    {"attention explicit", api_attention,
     "{\"x\":[[[1,0],[0,1],[2,3]]],\"wq\":[[1,0],[0,1]],\"wk\":[[1,2],[0,1]],"
     "\"wv\":[[1,0],[3,1]],\"return\":[\"q\",\"k\",\"v\",\"scores\","
     "\"weights\",\"out\"]}", 200},
    {"attention seeded", api_attention,
     "{\"seed\":1337,\"shape\":[2,4,8],\"head_size\":4,\"return\":[\"x\","
     "\"wq\",\"weights\"]}", 200},
    {"multihead explicit", api_multihead,
     "{\"x\":[[[1,0],[0,1],[2,3]]],\"wq\":[[[1,0]],[[0,1]]],"
     "\"wk\":[[[1,2]],[[0,1]]],\"wv\":[[[1,0]],[[3,1]]],"
     "\"wo\":[[1,0],[0,1]],\"bo\":[0.5,-1],\"return\":[\"heads\","
     "\"q\",\"scores\",\"weights\",\"out\"]}", 200},
    {"multihead seeded", api_multihead,
     "{\"seed\":1337,\"shape\":[2,4,8],\"num_heads\":2,\"head_size\":4,"
     "\"average_weights\":true,\"return\":[\"wo\",\"weights\"]}", 200},
    {"attention context", api_attention,
     "{\"x\":[[[1,0],[0,1],[2,3]]],\"context\":[[[1,2],[0,1]]],"
     "\"wq\":[[1,0],[0,1]],\"wk\":[[1,2],[0,1]],\"wv\":[[1,0],[3,1]],"
     "\"causal\":true,\"return\":[\"k\",\"scores\",\"weights\","
     "\"out\"]}", 200},
    {"attention mask", api_attention,
     "{\"x\":[[[1,0],[0,1],[2,3]]],\"wq\":[[1,0],[0,1]],"
     "\"wk\":[[1,2],[0,1]],\"wv\":[[1,0],[3,1]],\"mask\":[[true,false,"
     "false],[false,false,false],[true,true,true]],\"return\":[\"scores\","
     "\"weights\",\"out\"]}", 200},
    {"multihead context and mask", api_multihead,
     "{\"x\":[[[1,0],[0,1],[2,3]]],\"context\":[[[1,2],[0,1]]],"
     "\"mask\":[[[0,null],[-1,0],[null,null]]],"
     "\"wq\":[[[1,0]],[[0,1]]],\"wk\":[[[1,2]],[[0,1]]],"
     "\"wv\":[[[1,0]],[[3,1]]],\"wo\":[[1,0],[0,1]],\"bo\":[0.5,-1],"
     "\"average_weights\":true,\"return\":[\"scores\",\"weights\","
     "\"out\"]}", 200},
    {"attention mask objects", api_attention,
     "{\"x\":[[[1,0],[0,1]]],\"wq\":[[1,0]],\"wk\":[[1,2]],"
     "\"wv\":[[1,0]],\"mask\":{\"shape\":[2,2],\"dtype\":\"float32\","
     "\"b64\":\"AAAAAAAAgP8AAAAAAAAAAA==\"},\"return\":[\"scores\","
     "\"out\"]}", 200},
    {"multihead flat mask", api_multihead,
     "{\"x\":[[[1,0],[0,1]]],\"wq\":[[[1,0]]],\"wk\":[[[1,2]]],"
     "\"wv\":[[[1,0]]],\"wo\":[[1],[0]],\"bo\":[0,1],\"mask\":"
     "{\"shape\":[1,2,2],\"data\":[true,false,true,true]}}", 200},
    {"randn", api_randn,
     "{\"seed\":\"18446744073709551615\",\"shape\":[3,7]}", 200},
    {"bow flat in, flat out", api_bow,
     "{\"x\":{\"shape\":[2,3,2],\"data\":[1,2,3,4,5,6,1,0,0,1,2,2]},"
     "\"method\":\"all\",\"format\":\"flat\"}", 200},
    {"attention b64 in, b64 out", api_attention,
     "{\"x\":{\"shape\":[1,3,2],\"dtype\":\"float32\",\"b64\":"
     "\"AACAPwAAAAAAAAAAAACAPwAAAEAAAEBA\"},"
     "\"wq\":{\"shape\":[2,2],\"data\":[1,0,0,1]},"
     "\"wk\":{\"shape\":[2,2],\"dtype\":\"float32\",\"b64\":"
     "\"AACAPwAAAEAAAAAAAACAPw==\"},"
     "\"wv\":[[1,0],[3,1]],\"return\":[\"scores\",\"weights\",\"out\"],"
     "\"format\":\"b64\"}", 200},
    {"multihead flat and b64", api_multihead,
     "{\"x\":{\"shape\":[1,3,2],\"data\":[1,0,0,1,2,3]},"
     "\"wq\":{\"shape\":[2,1,2],\"dtype\":\"float32\",\"b64\":"
     "\"AACAPwAAAAAAAAAAAACAPw==\"},"
     "\"wk\":[[[1,2]],[[0,1]]],\"wv\":[[[1,0]],[[3,1]]],"
     "\"wo\":{\"shape\":[2,2],\"data\":[1,0,0,1]},\"bo\":[0.5,-1],"
     "\"format\":\"flat\"}", 200},
    {"randn b64", api_randn,
     "{\"seed\":7,\"shape\":[3,7],\"format\":\"b64\"}", 200},
    {"error 422 in a b64 tensor", api_bow,
     "{\"x\":{\"shape\":[1,3,2],\"dtype\":\"float32\",\"b64\":"
     "\"AACAPwAAAEAAAEBAAACAQAAAoEA=\"}}", 422},
    {"error 422", api_attention, "{\"x\":[[[1,2],[3]]],\"wq\":[[1]],"
                                 "\"wk\":[[1]],\"wv\":[[1]]}", 422},
    {"error 400", api_bow, "{\"x\": [[[1, 2]]", 400},
    {"v2 attention", v2_attention,
     "{\"id\":\"r1\",\"inputs\":[{\"name\":\"x\",\"shape\":[1,3,2],"
     "\"datatype\":\"FP32\",\"data\":[1,0,0,1,2,3]},{\"name\":\"wq\","
     "\"shape\":[2,2],\"datatype\":\"FP32\",\"data\":[[1,0],[0,1]]},"
     "{\"name\":\"wk\",\"shape\":[2,2],\"datatype\":\"FP32\","
     "\"data\":[1,2,0,1]},{\"name\":\"wv\",\"shape\":[2,2],"
     "\"datatype\":\"FP32\",\"data\":[1,0,3,1]}],\"parameters\":"
     "{\"scale\":0.5},\"outputs\":[{\"name\":\"scores\"},"
     "{\"name\":\"out\"}]}", 200},
    {"v2 bow all", v2_bow,
     "{\"inputs\":[{\"name\":\"x\",\"shape\":[1,2,2],\"datatype\":"
     "\"FP32\",\"data\":[1,2,3,4]}],\"parameters\":{\"method\":\"all\"}}", 200},
    {"v2 multihead seeded", v2_multihead,
     "{\"inputs\":[],\"parameters\":{\"seed\":3,\"shape\":[1,3,4],"
     "\"num_heads\":2,\"head_size\":2}}", 200},
    {"v2 native error", v2_attention,
     "{\"inputs\":[{\"name\":\"x\",\"shape\":[1,1,1],\"datatype\":"
     "\"FP32\",\"data\":[1e39]}]}", 400},
    {"v2 binary", v2_attention,
     "{\"inputs\":[{\"name\":\"x\",\"shape\":[1,2,2],\"datatype\":"
     "\"FP32\",\"parameters\":{\"binary_data_size\":16}},{\"name\":"
     "\"wq\",\"shape\":[1,2],\"datatype\":\"FP32\",\"data\":[1,2]},"
     "{\"name\":\"wk\",\"shape\":[1,2],\"datatype\":\"FP32\","
     "\"parameters\":{\"binary_data_size\":8}},{\"name\":\"wv\","
     "\"shape\":[1,2],\"datatype\":\"FP32\",\"data\":[0.5,1]}]}"
     "AAAABBBBCCCCDDDDEEEEFFFF", 200},
    {"v2 binary outputs", v2_bow,
     "{\"inputs\":[],\"parameters\":{\"seed\":5,\"shape\":[1,3,2],"
     "\"method\":\"all\",\"binary_data_output\":true},\"outputs\":["
     "{\"name\":\"out\"},{\"name\":\"weights\",\"parameters\":"
     "{\"binary_data\":false}},{\"name\":\"allclose\"}]}", 200},
    {"v2 adapter error", v2_bow,
     "{\"inputs\":[{\"name\":\"x\",\"shape\":[1,1,2],\"datatype\":"
     "\"FP32\",\"data\":[1]}]}", 400},
};

START_TEST(every_allocation_may_fail)
{
    const char *body = requests[_i].body;
    /* The answer with no failure: every other run must give exactly it
     * (a failure in an optional fast path may be absorbed) or a 503. */
    api_response ref = {0};
    requests[_i].h(body, strlen(body), &ref);
    ck_assert_msg(ref.status == requests[_i].status, "%s: status %d: %.*s",
                  requests[_i].name, ref.status, (int)ref.len, ref.body);
    long n;
    for (n = 1;; n++) {
        /* No Check calls inside the measured window: they allocate. */
        const long before = live;
        api_response res = {0};
        armed_calls = 0;
        fail_at = n;
        requests[_i].h(body, strlen(body), &res);
        const long calls = armed_calls;
        armed_calls = -1;
        const int status = res.status;
        const int same = res.status == ref.status && res.len == ref.len &&
                         memcmp(res.body, ref.body, res.len) == 0;
        /* (v2 binary outputs: the JSON before the tensor data) */
        json_t *j = res.body ? json_loadb(res.body, res.json_len ? res.json_len
                                                                 : res.len,
                                          0, NULL)
                             : NULL;
        char code[32] = "";
        /* attnd's {"error": {"code"}}, or the v2 protocol's
         * {"error": "<code>: ..."} */
        const json_t *err = json_object_get(j, "error");
        if (json_is_string(err))
            snprintf(code, sizeof code, "%.*s",
                     (int)strcspn(json_string_value(err), ": "),
                     json_string_value(err));
        else if (j)
            snprintf(code, sizeof code, "%s", json_string_value(json_object_get(
                         err, "code")) ?: "");
        json_decref(j);
        api_response_free(&res);
        const long leaked = live - before;

        ck_assert_msg(status == 503 || same,
                      "%s, allocation %ld failed: status %d and not the "
                      "answer without failure", requests[_i].name, n, status);
        ck_assert_msg(j != NULL, "%s, allocation %ld failed: body is not "
                      "JSON", requests[_i].name, n);
        if (status == 503)
            ck_assert_str_eq(code, "out_of_memory");
        ck_assert_msg(leaked == 0, "%s, allocation %ld failed: %ld "
                      "allocation(s) leaked", requests[_i].name, n, leaked);
        if (calls < n)
            break;              /* ran to the end with no failure */
    }
    ck_assert_msg(n > 2, "%s made only %ld allocations: is the wrap "
                  "linked?", requests[_i].name, n - 1);
    api_response_free(&ref);
}
END_TEST

Suite *oom_suite(void)
{
    armed_calls = -1;
    Suite *s = suite_create("oom");
    TCase *tc = tcase_create("allocation failure");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, every_allocation_may_fail, 0,
                        (int)(sizeof requests / sizeof requests[0]));
    suite_add_tcase(s, tc);
    return s;
}
