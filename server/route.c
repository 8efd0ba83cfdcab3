/* route.c -- the routing table and the decisions made before a body is
 * read.  No libmicrohttpd here: http.c feeds it from the daemon, the
 * fuzzer feeds it bytes. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
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

/* The route table: the models' native routes first, then the fixed
 * ones, then each model's v2 routes, the models coming from api/'s table
 * (so a new model gets its routes, metrics labels and --help line from
 * there).  Built once, by server_routes_init before any thread, or on
 * first use.  A model's routes carry its index; their handlers here are
 * markers that say the kind (server_dispatch calls the model's). */
static void model_post(const char *body, size_t len, api_response *res)
{
    (void)body;
    (void)len;
    (void)res;
}

static void model_metadata(api_response *res)
{
    (void)res;
}

static void model_infer(const char *body, size_t len, const char *json_length,
                        api_response *res)
{
    (void)body;
    (void)len;
    (void)json_length;
    (void)res;
}

static const server_route fixed[] = {
    {"/randn", "POST, OPTIONS", api_randn, NULL, 0, NULL, -1},
    {"/healthz", "GET, HEAD, OPTIONS", NULL, api_healthz, 0, NULL, -1},
    {"/models", "GET, HEAD, OPTIONS", NULL, api_models_list, 0, NULL, -1},
    {"/openapi.yaml", "GET, HEAD, OPTIONS", NULL, serve_openapi, 1, NULL, -1},
    {"/", "GET, HEAD, OPTIONS", NULL, serve_index, 1, NULL, -1},
    {"/readyz", "GET, HEAD, OPTIONS", NULL, server_readyz, 0, NULL, -1},
    {"/metrics", "GET, HEAD, OPTIONS", NULL, server_metrics_get, 0, NULL, -1},
    {"/v2", "GET, HEAD, OPTIONS", NULL, v2_server_metadata, 0, NULL, -1},
    {"/v2/health/live", "GET, HEAD, OPTIONS", NULL, v2_live, 0, NULL, -1},
    {"/v2/health/ready", "GET, HEAD, OPTIONS", NULL, v2_ready, 0, NULL, -1},
};
#define NFIXED (sizeof fixed / sizeof fixed[0])

static server_route routes[SERVER_MAX_ROUTES];
static char route_paths[SERVER_MAX_ROUTES][96];
static size_t nroutes;
static pthread_once_t routes_once = PTHREAD_ONCE_INIT;

static void add_route(const server_route *rt, const char *fmt,
                      const char *name)
{
    if (nroutes == SERVER_MAX_ROUTES)
        abort();                /* a build-time mistake: raise the limit */
    routes[nroutes] = *rt;
    if (fmt) {
        snprintf(route_paths[nroutes], sizeof route_paths[nroutes], fmt,
                 name);
        routes[nroutes].path = route_paths[nroutes];
    }
    nroutes++;
}

static void build_routes(void)
{
    const int n = api_model_count();
    for (int m = 0; m < n; m++) {
        const server_route native = {NULL, "POST, OPTIONS", model_post, NULL,
                                     0, NULL, m};
        if (api_model_builtin(m))
            add_route(&native, "/%s", api_model_name(m));
    }
    for (size_t i = 0; i < NFIXED; i++)
        add_route(&fixed[i], NULL, NULL);
    for (int m = 0; m < n; m++) {
        const server_route v2[3] = {
            {NULL, "GET, HEAD, OPTIONS", NULL, model_metadata, 0, NULL, m},
            {NULL, "GET, HEAD, OPTIONS", NULL, v2_ready, 0, NULL, -1},
            {NULL, "POST, OPTIONS", NULL, NULL, 0, model_infer, m}};
        add_route(&v2[0], "/v2/models/%s", api_model_name(m));
        add_route(&v2[1], "/v2/models/%s/ready", api_model_name(m));
        add_route(&v2[2], "/v2/models/%s/infer", api_model_name(m));
    }
}

static void routes_ready(void)
{
    pthread_once(&routes_once, build_routes);
}

size_t server_route_count(void)
{
    routes_ready();
    return nroutes;
}

const server_route *server_route_at(size_t i)
{
    routes_ready();
    return i < nroutes ? &routes[i] : NULL;
}

/* ETags of the cacheable routes, filled on first use (and before threads
 * start: server_run asks for each once). */
static char etags[SERVER_MAX_ROUTES][24];

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
    routes_ready();
    for (size_t i = 0; i < nroutes; i++)
        server_route_etag(&routes[i]);
}

static const server_route *exact_route(const char *path)
{
    routes_ready();
    for (size_t i = 0; i < nroutes; i++)
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
            snprintf(msg, sizeof msg, "unknown model \"%s\"; models: %s",
                     model, api_v2_models());
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
             "POST /v2/models/{model}[/versions/1]/infer with models %s",
             method, path, api_v2_models());
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
    char msg[448];
    memset(early, 0, sizeof *early);
    const error_form fail = error_form_of(path);
    if (!rt) {
        if (fail == api_v2_error) {
            v2_not_found(method, path, early);
            return;
        }
        char models[128] = "";
        size_t n = 0;
        for (int m = 0; m < api_model_count() && n < sizeof models; m++)
            if (api_model_builtin(m))
                n += (size_t)snprintf(models + n, sizeof models - n,
                                      "POST /%s, ", api_model_name(m));
        snprintf(msg, sizeof msg, "no route %s %.100s; routes: %sPOST /randn, "
                 "GET /models, GET /healthz, GET /readyz, GET /metrics, "
                 "GET /openapi.yaml, GET / (the visualizer), and the KServe "
                 "v2 routes under /v2", method, path, models);
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
    if (rt->model >= 0) {
        const char *name = api_model_name(rt->model);
        if (rt->infer)
            api_v2_infer(name, body ? body : "", len, json_length, res);
        else if (rt->post)
            api_model_post(rt->model, body ? body : "", len, res);
        else
            api_v2_model_metadata(name, res);
        return;
    }
    if (rt->infer)
        rt->infer(body ? body : "", len, json_length, res);
    else if (rt->post)
        rt->post(body ? body : "", len, res);
    else
        rt->get(res);
}
