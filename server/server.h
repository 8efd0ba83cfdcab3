/* server.h -- attnd's HTTP side (libmicrohttpd): routing, CORS, body
 * accumulation with a hard cap, access log, graceful shutdown.  Knows
 * nothing of tensors: bodies go to api/ handlers as bytes. */
#ifndef ATTND_SERVER_H
#define ATTND_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "../api/api.h"

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
    api_config limits;      /* passed to api_init */
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
} server_route;

/* The strong ETag of a cacheable route's body (a quoted hash of the bytes,
 * computed once), or NULL. */
const char *server_route_etag(const server_route *rt);

/* Computes every ETag; called once before serving. */
void server_routes_init(void);

/* The route for an exact path, or NULL. */
const server_route *server_find_route(const char *path);

/* Decides from the request line and Content-Type alone (NULL = header
 * absent) whether the request can only end one way -- 404, 405, 415, or
 * the 204 preflight -- and fills early if so (early->status != 0). */
void server_decide_early(const server_route *rt, const char *method,
                         const char *path, const char *content_type,
                         api_response *early);

/* Runs the route's handler on a complete body (body may be NULL). */
void server_dispatch(const server_route *rt, const char *body, size_t len,
                     api_response *res);

/* ==== the access log (log.c) ==== */

/* Appends one printf-formatted line (ending in \n) to stderr's log; with
 * batch set it may wait in a buffer until server_log_flush. */
void server_log(int batch, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void server_log_flush(void);

/* The embedded openapi.yaml (server/assets.S). */
extern const char server_openapi_start[];
extern const char server_openapi_end[];

#endif
