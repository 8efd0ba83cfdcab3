/* route.c -- the routing table and the decisions made before a body is
 * read.  No libmicrohttpd here: http.c feeds it from the daemon, the
 * fuzzer feeds it bytes. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "server.h"
#include "../api/v2.h"

/* A file embedded at build time (server/assets.S), answered as is. */
static void serve_embedded(api_response *res, const char *start,
                           const char *end, const char *type)
{
    res->status = 200;
    res->content_type = type;
    res->body = (char *)start;
    res->len = (size_t)(end - start);
    res->is_static = 1;
}

static void serve_openapi(api_response *res)
{
    serve_embedded(res, server_openapi_start, server_openapi_end,
                   "application/yaml");
}

/* The visualizer page (web/index.html), ETag'd like the spec. */
static void serve_index(api_response *res)
{
    serve_embedded(res, server_web_index_start, server_web_index_end,
                   "text/html; charset=utf-8");
}

/* ==== KServe / Triton v2 (api/v2.c adapts the models) ==== */

/* Health answers are a status and no body, as the protocol asks: 200 for
 * true, a 4xx (400, as Triton) for false. */
static void v2_health(api_response *res, int ok)
{
    memset(res, 0, sizeof *res);
    res->status = ok ? 200 : 400;
    res->body = (char *)"";
    res->is_static = 1;
}

static void v2_live(api_response *res)
{
    v2_health(res, 1);
}

/* Ready while /readyz is: false from SIGTERM/SIGINT on (draining). */
static void v2_ready(api_response *res)
{
    v2_health(res, !server_draining());
}

/* The extensions, as Triton names them: binary_tensor_data (inputs and
 * outputs as raw bytes after the JSON) and parameters (request parameters
 * that are not inputs: the native scalar fields). */
static void v2_server_metadata(api_response *res)
{
    static const char meta[] = "{\"name\":\"attnd\",\"version\":\""
                               ATTND_VERSION "\",\"extensions\":["
                               "\"binary_tensor_data\",\"parameters\"]}";
    memset(res, 0, sizeof *res);
    res->status = 200;
    res->content_type = "application/json";
    res->body = (char *)meta;
    res->len = sizeof meta - 1;
    res->is_static = 1;
}

/* Each model's three routes, bound to its name. */
#define V2_MODEL(m)                                                        \
    static void v2_##m##_metadata(api_response *res)                      \
    {                                                                     \
        api_v2_model_metadata(#m, res);                                   \
    }                                                                     \
    static void v2_##m##_infer(const char *body, size_t len,              \
                               const char *json_length, api_response *res) \
    {                                                                     \
        api_v2_infer(#m, body, len, json_length, res);                    \
    }
V2_MODEL(bow)
V2_MODEL(attention)
V2_MODEL(multihead)

#define V2_ROUTES(m)                                                      \
    {"/v2/models/" #m, "GET, HEAD, OPTIONS", NULL, v2_##m##_metadata, 0,  \
     NULL},                                                               \
    {"/v2/models/" #m "/ready", "GET, HEAD, OPTIONS", NULL, v2_ready, 0,  \
     NULL},                                                               \
    {"/v2/models/" #m "/infer", "POST, OPTIONS", NULL, NULL, 0,           \
     v2_##m##_infer}

static const server_route routes[] = {
    {"/bow", "POST, OPTIONS", api_bow, NULL, 0, NULL},
    {"/attention", "POST, OPTIONS", api_attention, NULL, 0, NULL},
    {"/multihead", "POST, OPTIONS", api_multihead, NULL, 0, NULL},
    {"/randn", "POST, OPTIONS", api_randn, NULL, 0, NULL},
    {"/healthz", "GET, HEAD, OPTIONS", NULL, api_healthz, 0, NULL},
    {"/openapi.yaml", "GET, HEAD, OPTIONS", NULL, serve_openapi, 1, NULL},
    {"/", "GET, HEAD, OPTIONS", NULL, serve_index, 1, NULL},
    {"/readyz", "GET, HEAD, OPTIONS", NULL, server_readyz, 0, NULL},
    {"/metrics", "GET, HEAD, OPTIONS", NULL, server_metrics_get, 0, NULL},
    {"/v2", "GET, HEAD, OPTIONS", NULL, v2_server_metadata, 0, NULL},
    {"/v2/health/live", "GET, HEAD, OPTIONS", NULL, v2_live, 0, NULL},
    {"/v2/health/ready", "GET, HEAD, OPTIONS", NULL, v2_ready, 0, NULL},
    V2_ROUTES(bow),
    V2_ROUTES(attention),
    V2_ROUTES(multihead),
};
#define NROUTES (sizeof routes / sizeof routes[0])
_Static_assert(NROUTES <= SERVER_MAX_ROUTES, "raise SERVER_MAX_ROUTES");

size_t server_route_count(void)
{
    return NROUTES;
}

const server_route *server_route_at(size_t i)
{
    return i < NROUTES ? &routes[i] : NULL;
}

/* ETags of the cacheable routes, filled on first use (and before threads
 * start: server_run asks for each once). */
static char etags[NROUTES][24];

const char *server_route_etag(const server_route *rt)
{
    if (!rt || !rt->cacheable || !rt->get)
        return NULL;
    const size_t i = (size_t)(rt - routes);
    if (!etags[i][0]) {
        api_response res = {0};
        rt->get(&res);
        /* FNV-1a 64 over the body: the file is fixed at build time. */
        uint64_t h = 1469598103934665603ull;
        for (size_t k = 0; k < res.len; k++)
            h = (h ^ (unsigned char)res.body[k]) * 1099511628211ull;
        snprintf(etags[i], sizeof etags[i], "\"%016llx\"",
                 (unsigned long long)h);
        api_response_free(&res);
    }
    return etags[i];
}

void server_routes_init(void)
{
    for (size_t i = 0; i < NROUTES; i++)
        server_route_etag(&routes[i]);
}

static const server_route *exact_route(const char *path)
{
    for (size_t i = 0; i < NROUTES; i++)
        if (strcmp(path, routes[i].path) == 0)
            return &routes[i];
    return NULL;
}

/* The protocol's versioned URLs, /v2/models/<m>/versions/<v>[/ready|
 * /infer], name the unversioned route when <v> is the one version a model
 * has; so they share its handler and metrics. */
#define V2_MODELS_PREFIX "/v2/models/"

static const server_route *versioned_route(const char *path)
{
    static const char mark[] = "/versions/" API_V2_VERSION;
    const size_t pre = sizeof V2_MODELS_PREFIX - 1;
    if (strncmp(path, V2_MODELS_PREFIX, pre) != 0)
        return NULL;
    const size_t name = strcspn(path + pre, "/");
    const char *v = path + pre + name;
    if (strncmp(v, mark, sizeof mark - 1) != 0)
        return NULL;
    const char *tail = v + sizeof mark - 1;
    if (*tail && *tail != '/')
        return NULL;
    char plain[128];
    if ((size_t)snprintf(plain, sizeof plain, "%.*s%s", (int)(pre + name),
                         path, tail) >= sizeof plain)
        return NULL;
    return exact_route(plain);
}

const server_route *server_find_route(const char *path)
{
    const server_route *rt = exact_route(path);
    return rt ? rt : versioned_route(path);
}

int server_is_v2_path(const char *path)
{
    return strncmp(path, "/v2", 3) == 0 && (path[3] == '\0' || path[3] == '/');
}

/* The 404 of a /v2 path, saying what is wrong with it. */
static void v2_not_found(const char *method, const char *path,
                         api_response *early)
{
    char msg[320];
    const size_t pre = sizeof V2_MODELS_PREFIX - 1;
    if (strncmp(path, V2_MODELS_PREFIX, pre) == 0) {
        char model[64];
        const size_t n = strcspn(path + pre, "/");
        snprintf(model, sizeof model, "%.*s", (int)(n < 63 ? n : 63),
                 path + pre);
        const char *v = path + pre + n;
        if (api_v2_model_index(model) < 0) {
            snprintf(msg, sizeof msg, "unknown model \"%s\"; models: "
                     API_V2_MODELS, model);
            api_v2_error(early, 404, "not_found", msg);
            return;
        }
        const size_t vn = strncmp(v, "/versions/", 10) == 0
                              ? strcspn(v + 10, "/") : 0;
        if (vn && (vn != sizeof API_V2_VERSION - 1 ||
                   strncmp(v + 10, API_V2_VERSION, vn) != 0)) {
            snprintf(msg, sizeof msg, "model %s has no version \"%.*s\"; "
                     "versions: " API_V2_VERSION, model,
                     (int)(vn < 40 ? vn : 40), v + 10);
            api_v2_error(early, 404, "not_found", msg);
            return;
        }
    }
    snprintf(msg, sizeof msg, "no route %s %.100s; v2 routes: GET /v2, "
             "GET /v2/health/live, GET /v2/health/ready, "
             "GET /v2/models/{model}[/versions/1][/ready], "
             "POST /v2/models/{model}[/versions/1]/infer with models "
             API_V2_MODELS, method, path);
    api_v2_error(early, 404, "not_found", msg);
}

/* The media type of a Content-Type value, parameters (charset) and
 * surrounding blanks aside: *ct moves to its start, its length returned. */
static size_t media_type(const char **ct)
{
    size_t n = strcspn(*ct, ";");
    while (n > 0 && ((*ct)[n - 1] == ' ' || (*ct)[n - 1] == '\t'))
        n--;
    while (n > 0 && (**ct == ' ' || **ct == '\t')) {
        (*ct)++;
        n--;
    }
    return n;
}

/* application/json or application/<x>+json */
static int is_json_type(const char *ct)
{
    const size_t n = media_type(&ct);
    if (n == 16 && strncasecmp(ct, "application/json", 16) == 0)
        return 1;
    return n > 17 && strncasecmp(ct, "application/", 12) == 0 &&
           strncasecmp(ct + n - 5, "+json", 5) == 0;
}

static int is_octet_stream(const char *ct)
{
    const size_t n = media_type(&ct);
    return n == 24 && strncasecmp(ct, "application/octet-stream", 24) == 0;
}

/* An error answer in the form of the path's protocol: /v2 paths in the
 * v2 form {"error": "<code>: <message>"}, the others in attnd's own. */
typedef void (*error_form)(api_response *res, int status, const char *code,
                           const char *message);

static error_form error_form_of(const char *path)
{
    return server_is_v2_path(path) ? api_v2_error : api_simple_error;
}

void server_decide_early(const server_route *rt, const char *method,
                         const char *path, const char *content_type,
                         api_response *early)
{
    char msg[320];
    memset(early, 0, sizeof *early);
    const error_form fail = error_form_of(path);
    if (!rt) {
        if (fail == api_v2_error) {
            v2_not_found(method, path, early);
            return;
        }
        snprintf(msg, sizeof msg, "no route %s %.100s; routes: POST /bow, "
                 "POST /attention, POST /multihead, POST /randn, "
                 "GET /healthz, GET /readyz, GET /metrics, GET /openapi.yaml, "
                 "GET / (the visualizer), and the KServe v2 routes under "
                 "/v2", method, path);
        fail(early, 404, "not_found", msg);
        return;
    }
    if (strcmp(method, "OPTIONS") == 0) {
        early->status = 204;
        early->is_static = 1;
        return;
    }
    const int takes_post = rt->post || rt->infer;
    int ok = takes_post ? strcmp(method, "POST") == 0
                      : strcmp(method, "GET") == 0 ||
                            strcmp(method, "HEAD") == 0;
    if (!ok) {
        snprintf(msg, sizeof msg, "%s is not allowed on %s; allowed: %s",
                 method, rt->path, rt->allow);
        fail(early, 405, "method_not_allowed", msg);
        return;
    }
    /* v2 infer also takes Triton's binary tensor data (JSON, then raw
     * bytes), which clients send as application/octet-stream. */
    if (takes_post && content_type && !is_json_type(content_type) &&
        !(fail == api_v2_error && is_octet_stream(content_type))) {
        snprintf(msg, sizeof msg, "Content-Type %.80s is not supported; "
                 "send the body as application/json%s", content_type,
                 fail == api_v2_error ? " (or application/octet-stream "
                 "with binary tensor data)" : "");
        fail(early, 415, "unsupported_media_type", msg);
    }
}

void server_body_too_large(const char *path, uint64_t max_body,
                           api_response *res)
{
    char msg[160];
    memset(res, 0, sizeof *res);
    snprintf(msg, sizeof msg, "the request body is over this server's "
             "limit of %llu bytes (--max-body)", (unsigned long long)max_body);
    error_form_of(path)(res, 413, "body_too_large", msg);
}

void server_dispatch(const server_route *rt, const char *body, size_t len,
                     const char *json_length, api_response *res)
{
    if (rt->infer)
        rt->infer(body ? body : "", len, json_length, res);
    else if (rt->post)
        rt->post(body ? body : "", len, res);
    else
        rt->get(res);
}
