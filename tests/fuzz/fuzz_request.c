/* fuzz_request.c -- libFuzzer over the whole request path below HTTP.
 *
 * Input: "METHOD PATH\n" "CONTENT-TYPE\n" then the body (an empty second
 * line means no Content-Type header).  It goes through the same
 * server_decide_early / server_dispatch the daemon uses; any response that
 * breaks the contract aborts, and so does a body whose answer with the
 * body fast path (api/body.c) differs by a byte from Jansson's alone; the
 * sanitizers catch the rest. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../api/internal.h"
#include "../../server/server.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    /* Small caps keep each run fast; the limits themselves are code under
     * test (413 too_large). */
    api_config cfg;
    api_config_defaults(&cfg);
    cfg.max_elements = 1 << 16;
    cfg.max_total_elements = 1 << 18;
    api_init(&cfg);
    return 0;
}

static void check(int ok, const char *what, const api_response *res)
{
    if (ok)
        return;
    fprintf(stderr, "contract broken: %s (status %d): %.*s\n", what,
            res->status, (int)(res->len > 400 ? 400 : res->len), res->body);
    abort();
}

static void check_response(const api_response *res, int v2)
{
    static const int allowed[] = {200, 204, 400, 404, 405, 413,
                                  415, 422, 503};
    int known = 0;
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
        known |= res->status == allowed[i];
    check(known, "unexpected status", res);
    json_error_t err;
    if (res->json_len) {
        /* v2 binary outputs: a JSON answer, then the tensor data */
        check(v2 && res->status == 200 && res->json_len < res->len &&
              strcmp(res->content_type, "application/octet-stream") == 0,
              "binary outputs outside a v2 answer", res);
        json_t *j = json_loadb(res->body, res->json_len, 0, &err);
        check(json_is_array(json_object_get(j, "outputs")),
              "binary outputs after no JSON answer", res);
        json_decref(j);
        return;
    }
    if (res->status == 204 || (res->content_type &&
                               strcmp(res->content_type, "application/json")))
        return;
    if (v2 && !res->content_type) {
        /* a v2 health answer: the status is the answer, no body */
        check((res->status == 200 || res->status == 400) && res->len == 0,
              "v2 health answer with a body or another status", res);
        return;
    }
    json_t *j = json_loadb(res->body, res->len, 0, &err);
    check(j != NULL, "response is not JSON", res);
    if (res->status != 200 && v2) {
        /* the v2 protocol's {"error": "<code>[ at <where>]: <message>"} */
        const char *e = json_string_value(json_object_get(j, "error"));
        check(e && json_object_size(j) == 1, "v2 error is not {\"error\": "
              "string}", res);
        check(strspn(e, "abcdefghijklmnopqrstuvwxyz_") > 0 &&
              strstr(e, ": ") != NULL, "v2 error without its code", res);
    } else if (res->status != 200) {
        json_t *e = json_object_get(j, "error");
        check(json_is_object(e), "error body without \"error\"", res);
        check(json_integer_value(json_object_get(e, "status")) == res->status,
              "error.status differs from the HTTP status", res);
        check(json_is_string(json_object_get(e, "code")), "no error.code", res);
        const char *m = json_string_value(json_object_get(e, "message"));
        check(m && *m, "no error.message", res);
    }
    json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data, *end = p + size;
    const char *nl1 = memchr(p, '\n', size);
    if (!nl1)
        return 0;
    const char *nl2 = memchr(nl1 + 1, '\n', (size_t)(end - nl1 - 1));
    if (!nl2)
        return 0;
    char line[256], ct[256];
    size_t n1 = (size_t)(nl1 - p), n2 = (size_t)(nl2 - nl1 - 1);
    if (n1 >= sizeof line || n2 >= sizeof ct)
        return 0;
    memcpy(line, p, n1);
    line[n1] = '\0';
    memcpy(ct, nl1 + 1, n2);
    ct[n2] = '\0';
    char *sp = strchr(line, ' ');
    if (!sp)
        return 0;
    *sp = '\0';
    const char *method = line, *path = sp + 1;

    const char *body = nl2 + 1;
    size_t len = (size_t)(end - body);
    /* The daemon hands handlers a malloc'd buffer of exactly len bytes;
     * copy so ASan sees reads past its end. */
    char *copy = len ? malloc(len) : NULL;
    if (len)
        memcpy(copy, body, len);

    const server_route *rt = server_find_route(path);
    api_response res;
    server_decide_early(rt, method, path, n2 ? ct : NULL, &res);
    int dispatched = 0;
    if (!res.status) {
        server_dispatch(rt, copy, len, NULL, &res);
        dispatched = 1;
    }
    check_response(&res, server_is_v2_path(path));
    if (dispatched) {
        /* the same body through Jansson alone: the same bytes */
        api_response slow;
        api_body_set_fast(0);
        server_dispatch(rt, copy, len, NULL, &slow);
        api_body_set_fast(1);
        check(slow.status == res.status && slow.len == res.len &&
              (!res.len || memcmp(slow.body, res.body, res.len) == 0),
              "the body fast path answers differently from Jansson alone",
              &res);
        api_response_free(&slow);
    }
    api_response_free(&res);
    free(copy);
    return 0;
}
