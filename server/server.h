/* server.h -- attnd's HTTP side (libmicrohttpd): routing, CORS, body
 * accumulation with a hard cap, access log, graceful shutdown.  Knows
 * nothing of tensors: bodies go to api/ handlers as bytes. */
#ifndef ATTND_SERVER_H
#define ATTND_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "../api/api.h"

#define ATTND_VERSION "1.0.0"   /* openapi.yaml's info.version */

typedef struct server_config {
    const char *host;       /* NULL = all IPv4 interfaces */
    int port;               /* 0 = any free port */
    int threads;            /* libmicrohttpd pool size */
    uint64_t max_body;      /* bytes; larger bodies get 413 */
    int conn_timeout;       /* seconds of inactivity before closing */
    int request_timeout;    /* seconds a request may take to arrive */
    int conn_limit;         /* simultaneous connections */
    int per_ip_limit;       /* simultaneous connections from one address */
    int shutdown_grace;     /* seconds to let in-flight requests finish */
    int drain_delay;        /* seconds /readyz says 503 before the daemon
                               stops accepting, after SIGINT/SIGTERM */
    int log_json;           /* access log as JSON lines (--log-format json) */
    api_config limits;      /* passed to api_init */
    const char *models_dir; /* the repository loaded (--models), said in */
    int nmodels;            /* the log with how many models it held */
} server_config;

/* Serves until SIGINT/SIGTERM, then stops accepting, lets in-flight
 * requests finish and returns 0; returns 1 if the daemon cannot start. */
int server_run(const server_config *cfg);

/* ==== routing (route.c): pure, no sockets, so tests and the fuzzer drive
 * exactly what the daemon does ==== */

typedef struct server_route {
    const char *path;
    const char *allow;      /* the Allow / Access-Control-Allow-Methods list */
    void (*post)(const char *body, size_t len, api_response *res);
    void (*get)(api_response *res);
    int cacheable;          /* GET answers a fixed embedded file: ETag it */
    /* POST, for v2 infer: post with the Inference-Header-Content-Length
     * header's value (NULL if absent) */
    void (*infer)(const char *body, size_t len, const char *json_length,
                  api_response *res);
    /* A model's route (api_model_name(model)): its native POST, or its v2
     * metadata or infer, as the function above that is not NULL says;
     * -1 for the others.  The handlers take the model from here. */
    int model;
} server_route;

/* The strong ETag of a cacheable route's body (a quoted hash of the bytes,
 * computed once), or NULL. */
const char *server_route_etag(const server_route *rt);

/* Computes every ETag; called once before serving. */
void server_routes_init(void);

/* The table itself, for metrics labels: entry i of server_route_count(). */
#define SERVER_MAX_ROUTES 128
size_t server_route_count(void);
const server_route *server_route_at(size_t i);

/* The route for an exact path (a KServe v2 versioned path,
 * /v2/models/<m>/versions/1/..., is the unversioned route), or NULL. */
const server_route *server_find_route(const char *path);

/* /v2 and /v2/...: errors in the v2 protocol's form {"error": "..."}. */
int server_is_v2_path(const char *path);

/* Decides from the request line and Content-Type alone (NULL = header
 * absent) whether the request can only end one way -- 404, 405, 415, or
 * the 204 preflight -- and fills early if so (early->status != 0). */
void server_decide_early(const server_route *rt, const char *method,
                         const char *path, const char *content_type,
                         api_response *early);

/* The 413 body_too_large of a body over --max-body (max_body bytes), in
 * the error form of the path (the v2 form under /v2). */
void server_body_too_large(const char *path, uint64_t max_body,
                           api_response *res);

/* Runs the route's handler on a complete body (body may be NULL);
 * json_length is the Inference-Header-Content-Length header (NULL if
 * absent), which only v2 infer reads. */
void server_dispatch(const server_route *rt, const char *body, size_t len,
                     const char *json_length, api_response *res);

/* ==== metrics and readiness (metrics.c): relaxed atomics only ==== */

/* Called once before serving. */
void server_metrics_init(const char *mhd_version, int threads);
/* A request began (in flight + 1). */
void server_metrics_begin(void);
/* A request completed: rt NULL = an unknown path (route="other"), status 0
 * = nothing sent, code = the error code answered (or how the request was
 * cut: "request_timeout", "connection_timeout", "out_of_memory"), NULL for
 * none; bytes of the request and response bodies. */
void server_metrics_end(const server_route *rt, const char *method,
                        int status, const char *code, uint64_t bytes_in,
                        uint64_t bytes_out, int64_t duration_us);
/* Counts a rejection no request carries ("connection_limit"). */
void server_metrics_reject(const char *reason);
/* After SIGINT/SIGTERM: /readyz answers 503 {"status":"draining"}. */
void server_set_draining(void);
int server_draining(void);
/* GET /metrics (Prometheus text 0.0.4) and GET /readyz. */
void server_metrics_get(api_response *res);
void server_readyz(api_response *res);

/* ==== the access log (log.c) ==== */

/* Appends one printf-formatted line (ending in \n) to stderr's log.  With
 * batch set, and between server_log_start and server_log_stop, a line
 * written less than a millisecond (one tick of the coarse clock) after the
 * last write waits (about a millisecond) to share a write with the lines
 * after it; otherwise it is written at once. */
void server_log(int batch, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* One line of n bytes, newline included, as server_log writes it. */
void server_log_line(int batch, const char *line, size_t n);
void server_log_flush(void);
/* Start and stop the thread that writes held lines (stop writes them). */
void server_log_start(void);
void server_log_stop(void);

/* A server message (not an access-log line): as is in the text format, as
 * {"ts":...,"msg":"..."} with --log-format json.  Written at once. */
void server_log_json(int on);
void server_log_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Appends s to dst (cap bytes in all, NUL-terminated) as the inside of a
 * JSON string; returns the new length. */
size_t server_json_escape(char *dst, size_t cap, size_t len, const char *s);

/* The current UTC time as RFC 3339 with microseconds (28 bytes + NUL). */
void server_log_timestamp(char buf[32]);

/* The embedded openapi.yaml (server/assets.S). */
extern const char server_openapi_start[];
extern const char server_openapi_end[];

/* The visualizer page, web/index.html (server/assets.S). */
extern const char server_web_index_start[];
extern const char server_web_index_end[];

#endif
