/* route.c -- the routing table and the decisions made before a body is
 * read.  No libmicrohttpd here: http.c feeds it from the daemon, the
 * fuzzer feeds it bytes. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "server.h"

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

static const server_route routes[] = {
    {"/bow", "POST, OPTIONS", api_bow, NULL, 0},
    {"/attention", "POST, OPTIONS", api_attention, NULL, 0},
    {"/multihead", "POST, OPTIONS", api_multihead, NULL, 0},
    {"/randn", "POST, OPTIONS", api_randn, NULL, 0},
    {"/healthz", "GET, HEAD, OPTIONS", NULL, api_healthz, 0},
    {"/openapi.yaml", "GET, HEAD, OPTIONS", NULL, serve_openapi, 1},
    {"/", "GET, HEAD, OPTIONS", NULL, serve_index, 1},
    {"/readyz", "GET, HEAD, OPTIONS", NULL, server_readyz, 0},
    {"/metrics", "GET, HEAD, OPTIONS", NULL, server_metrics_get, 0},
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

const server_route *server_find_route(const char *path)
{
    for (size_t i = 0; i < NROUTES; i++)
        if (strcmp(path, routes[i].path) == 0)
            return &routes[i];
    return NULL;
}

/* A media type is JSON if it is application/json or application/<x>+json,
 * parameters (charset) aside. */
static int is_json_type(const char *ct)
{
    size_t n = strcspn(ct, ";");
    while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
        n--;
    while (n > 0 && (*ct == ' ' || *ct == '\t')) {
        ct++;
        n--;
    }
    if (n == 16 && strncasecmp(ct, "application/json", 16) == 0)
        return 1;
    return n > 17 && strncasecmp(ct, "application/", 12) == 0 &&
           strncasecmp(ct + n - 5, "+json", 5) == 0;
}

void server_decide_early(const server_route *rt, const char *method,
                         const char *path, const char *content_type,
                         api_response *early)
{
    char msg[320];
    memset(early, 0, sizeof *early);
    if (!rt) {
        snprintf(msg, sizeof msg, "no route %s %s; routes: POST /bow, "
                 "POST /attention, POST /multihead, POST /randn, "
                 "GET /healthz, GET /readyz, GET /metrics, GET /openapi.yaml, "
                 "GET / (the visualizer)", method, path);
        api_simple_error(early, 404, "not_found", msg);
        return;
    }
    if (strcmp(method, "OPTIONS") == 0) {
        early->status = 204;
        early->is_static = 1;
        return;
    }
    int ok = rt->post ? strcmp(method, "POST") == 0
                      : strcmp(method, "GET") == 0 ||
                            strcmp(method, "HEAD") == 0;
    if (!ok) {
        snprintf(msg, sizeof msg, "%s is not allowed on %s; allowed: %s",
                 method, rt->path, rt->allow);
        api_simple_error(early, 405, "method_not_allowed", msg);
        return;
    }
    if (rt->post && content_type && !is_json_type(content_type)) {
        snprintf(msg, sizeof msg, "Content-Type %.80s is not supported; "
                 "send the body as application/json", content_type);
        api_simple_error(early, 415, "unsupported_media_type", msg);
    }
}

void server_dispatch(const server_route *rt, const char *body, size_t len,
                     api_response *res)
{
    if (rt->post)
        rt->post(body ? body : "", len, res);
    else
        rt->get(res);
}
