/* server.h -- attnd's HTTP side (libmicrohttpd): routing, CORS, body
 * accumulation with a hard cap, access log, graceful shutdown.  Knows
 * nothing of tensors: bodies go to api/ handlers as bytes. */
#ifndef ATTND_SERVER_H
#define ATTND_SERVER_H

#include <stddef.h>
#include <stdint.h>

typedef struct server_config {
    const char *host;       /* NULL = all IPv4 interfaces */
    int port;               /* 0 = any free port */
    int threads;            /* libmicrohttpd pool size */
    uint64_t max_body;      /* bytes; larger bodies get 413 */
    int64_t max_elements;   /* passed to api/ */
    int conn_timeout;       /* seconds of inactivity before closing */
    int conn_limit;         /* simultaneous connections */
    int shutdown_grace;     /* seconds to let in-flight requests finish */
} server_config;

/* Serves until SIGINT/SIGTERM, then stops accepting, lets in-flight
 * requests finish and returns 0; returns 1 if the daemon cannot start. */
int server_run(const server_config *cfg);

/* The embedded openapi.yaml (server/assets.S). */
extern const char server_openapi_start[];
extern const char server_openapi_end[];

#endif
