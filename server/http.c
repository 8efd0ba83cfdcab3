/* http.c -- the libmicrohttpd daemon: routes, CORS, bodies, log, metrics,
 * shutdown. */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "../api/api.h"

/* ==== per-request state ==== */

/* One per request, made on the handler's first call and freed in the
 * completion callback, whatever happened in between. */
typedef struct request {
    struct timespec start;
    char method[16];
    char path[128];
    const server_route *route;
    char *body;
    size_t len, cap;
    int too_large;          /* body passed max_body: drained, then 413 */
    size_t expected;        /* Content-Length, when announced and allowed */
    int inm_match;          /* If-None-Match names the route's ETag */
    api_response early;     /* an answer decided before the body is read */
    int status;
    size_t sent;
    const char *code;       /* the error code answered, or why it was cut */
    uint64_t received;      /* body bytes that arrived (drained ones too) */
    char remote[48];        /* client address, for the JSON log only */
} request;

static const server_config *cfg;
static atomic_int in_flight;         /* requests begun, not completed */
static atomic_int in_handler;        /* handler calls running right now */
static atomic_llong last_activity;   /* monotonic us of the last progress */
static atomic_int stopping;          /* SIGINT/SIGTERM received */

static int64_t now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

/* now_us() to within a clock tick (4 ms here) for five times less (5.6
 * against 25.6 ns a call): for marks that only need seconds -- progress
 * for the shutdown wait, the request timeout -- of which a request makes
 * about six. */
static int64_t coarse_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &t);
    return (int64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

static int64_t elapsed_us(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (int64_t)(t1.tv_sec - t0->tv_sec) * 1000000 +
           (t1.tv_nsec - t0->tv_nsec) / 1000;
}

/* Copies s for the log, replacing anything unprintable so a request line
 * cannot forge log lines. */
static void log_copy(char *dst, size_t cap, const char *s)
{
    size_t i = 0;
    for (; s && s[i] && i + 1 < cap; i++)
        dst[i] = (s[i] > 32 && s[i] < 127) ? s[i] : '?';
    dst[i] = '\0';
}

/* The client's address as text ("" if unknown). */
static void remote_addr(struct MHD_Connection *c, char *dst, size_t cap)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    dst[0] = '\0';
    if (!ci || !ci->client_addr)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, dst,
                  (socklen_t)cap);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr,
                  dst, (socklen_t)cap);
}

/* v in decimal at o; returns the end. */
static char *put_u64(char *o, uint64_t v)
{
    char t[20];
    int n = 0;
    do {
        t[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *o++ = t[--n];
    return o;
}

static void request_completed(void *cls, struct MHD_Connection *c,
                              void **req_cls,
                              enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    request *r = *req_cls;
    if (!r)
        return;
    const int64_t us = elapsed_us(&r->start);
    const int ok = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK;
    if (!r->code && toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED)
        r->code = "connection_timeout";
    server_metrics_end(r->route, r->method, r->status, r->code, r->received,
                       strcmp(r->method, "HEAD") == 0 ? 0 : r->sent, us);
    /* Batched: written at once on a quiet server, about once a
     * millisecond under load (see log.c). */
    if (cfg->log_json) {
        char ts[32], path[sizeof r->path * 2];
        server_log_timestamp(ts);
        server_json_escape(path, sizeof path, 0, r->path);
        server_log(1, "{\"ts\":\"%s\",\"method\":\"%s\",\"path\":\"%s\","
                   "\"status\":%d,\"bytes\":%zu,\"duration_us\":%lld,"
                   "\"remote\":\"%s\"%s}\n", ts, r->method, path, r->status,
                   r->sent, (long long)us, r->remote,
                   ok ? "" : ",\"aborted\":true");
    } else {
        /* "POST /bow 200 1115 52us": by hand, a tenth of what vsnprintf
         * took (callgrind: ~1.8k instructions a request) */
        char line[sizeof r->method + sizeof r->path + 80];
        char *o = line;
        const size_t nm = strlen(r->method), np = strlen(r->path);
        memcpy(o, r->method, nm);
        o += nm;
        *o++ = ' ';
        memcpy(o, r->path, np);
        o += np;
        *o++ = ' ';
        o = put_u64(o, (uint64_t)(r->status < 0 ? 0 : r->status));
        *o++ = ' ';
        o = put_u64(o, (uint64_t)r->sent);
        *o++ = ' ';
        o = put_u64(o, (uint64_t)(us < 0 ? 0 : us));
        memcpy(o, "us", 2);
        o += 2;
        if (!ok) {
            memcpy(o, " aborted", 8);
            o += 8;
        }
        *o++ = '\n';
        server_log_line(1, line, (size_t)(o - line));
    }
    api_response_free(&r->early);
    free(r->body);
    free(r);
    *req_cls = NULL;
    atomic_store(&last_activity, coarse_us());
    atomic_fetch_sub(&in_flight, 1);
}

/* ==== responses ==== */

static enum MHD_Result send_response(struct MHD_Connection *c, request *r,
                                     api_response *res)
{
    struct MHD_Response *resp;
    if (res->is_static)
        resp = MHD_create_response_from_buffer(res->len, res->body,
                                               MHD_RESPMEM_PERSISTENT);
    else
        resp = MHD_create_response_from_buffer(res->len, res->body,
                                               MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        api_response_free(res);
        return MHD_NO;          /* libmicrohttpd closes the connection */
    }
    /* The response owns the body now. */
    res->body = NULL;
    res->is_static = 1;

    MHD_add_response_header(resp, "Access-Control-Allow-Origin", "*");
    if (atomic_load(&stopping))     /* keep-alive clients: go elsewhere */
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    if (res->content_type)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                res->content_type);
    if (res->json_len) {
        /* v2 binary outputs: where the JSON ends and the tensor data
         * begins; exposed, or a page on another origin could not read it. */
        char n[24];
        snprintf(n, sizeof n, "%zu", res->json_len);
        MHD_add_response_header(resp, "Inference-Header-Content-Length", n);
        MHD_add_response_header(resp, "Access-Control-Expose-Headers",
                                "Inference-Header-Content-Length");
    }
    const char *etag = r->route ? server_route_etag(r->route) : NULL;
    if (etag && (res->status == 200 || res->status == 304)) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
                                "no-cache");    /* revalidate: cheap 304 */
    }
    if (res->status == 405 && r->route)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW,
                                r->route->allow);
    if (res->status == 204 && r->route) {
        MHD_add_response_header(resp, "Access-Control-Allow-Methods",
                                r->route->allow);
        /* tritonclient sends Inference-Header-Content-Length with binary
         * tensor data; a browser may send it only if allowed here. */
        MHD_add_response_header(resp, "Access-Control-Allow-Headers",
                                "Content-Type, Inference-Header-Content-Length");
        MHD_add_response_header(resp, "Access-Control-Max-Age", "86400");
    }
    r->status = res->status;
    r->sent = res->len;
    r->code = res->code;
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)res->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* ==== the access handler ==== */

static int body_append(request *r, const char *data, size_t n)
{
    if (r->too_large || r->early.status)
        return 1;               /* draining: the answer is already known */
    if (r->len + n > cfg->max_body) {
        r->too_large = 1;
        free(r->body);
        r->body = NULL;
        r->len = r->cap = 0;
        return 1;
    }
    if (r->len + n > r->cap) {
        /* Content-Length's size at once (a small body then fits malloc's
         * per-thread cache), but no more than 64 KiB before the bytes
         * arrive: a client may announce a body it never sends. */
        size_t cap = r->cap ? r->cap
                            : r->expected && r->expected <= 65536 ? r->expected
                                                                  : 16384;
        while (cap < r->len + n)
            cap *= 2;
        if (cap > cfg->max_body)
            cap = cfg->max_body;
        char *b = realloc(r->body, cap);
        if (!b)
            return 0;
        r->body = b;
        r->cap = cap;
    }
    memcpy(r->body + r->len, data, n);
    r->len += n;
    return 1;
}

static enum MHD_Result handle_request(void *cls, struct MHD_Connection *c,
                              const char *url, const char *method,
                              const char *version, const char *upload_data,
                              size_t *upload_data_size, void **req_cls)
{
    (void)cls;
    (void)version;
    request *r = *req_cls;

    if (!r) {
        /* First call: headers only. */
        r = calloc(1, sizeof *r);
        if (!r)
            return MHD_NO;
        atomic_fetch_add(&in_flight, 1);
        server_metrics_begin();
        clock_gettime(CLOCK_MONOTONIC, &r->start);
        if (cfg->log_json)
            remote_addr(c, r->remote, sizeof r->remote);
        log_copy(r->method, sizeof r->method, method);
        log_copy(r->path, sizeof r->path, url);
        r->route = server_find_route(url);
        *req_cls = r;
        server_decide_early(r->route, r->method, r->path,
                            MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                        "Content-Type"),
                            &r->early);

        const char *etag = server_route_etag(r->route);
        const char *inm = MHD_lookup_connection_value(
            c, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
        r->inm_match = etag && inm &&
                       (strstr(inm, etag) || strcmp(inm, "*") == 0);
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                     "Content-Length");
        const unsigned long long announced = cl ? strtoull(cl, NULL, 10) : 0;
        if (announced > cfg->max_body)
            r->too_large = 1;   /* refuse to buffer; drain what comes */
        else
            r->expected = (size_t)announced;
        return MHD_YES;
    }

    if (*upload_data_size) {
        r->received += *upload_data_size;
        /* libmicrohttpd 0.9.75 accepts a response only before the body or
         * after all of it, so a request cut mid-body cannot be answered:
         * its connection is closed, and the log line records why (status
         * 408 or 503, 0 bytes, "aborted"). */
        const int64_t start = (int64_t)r->start.tv_sec * 1000000 +
                              r->start.tv_nsec / 1000;
        if (coarse_us() - start > (int64_t)cfg->request_timeout * 1000000) {
            /* The idle timeout resets on every byte; this bounds a client
             * that dribbles a body forever (slowloris). */
            r->status = 408;
            r->code = "request_timeout";
            return MHD_NO;
        }
        if (!body_append(r, upload_data, *upload_data_size)) {
            r->status = 503;
            r->code = "out_of_memory";
            return MHD_NO;
        }
        *upload_data_size = 0;
        return MHD_YES;
    }

    /* Final call: the whole body has been read (or drained). */
    api_response res = {0};
    if (r->early.status) {
        res = r->early;
        memset(&r->early, 0, sizeof r->early);
    } else if (r->too_large) {
        server_body_too_large(r->path, cfg->max_body, &res);
    } else if (r->inm_match) {
        res.status = 304;       /* the client's copy is current */
        res.is_static = 1;
    } else {
        server_dispatch(r->route, r->body, r->len,
                        MHD_lookup_connection_value(
                            c, MHD_HEADER_KIND,
                            "Inference-Header-Content-Length"),
                        &res);
    }
    return send_response(c, r, &res);
}

/* Every call is progress, and a call still running (a long computation)
 * must not look like a stalled client to the shutdown wait. */
static enum MHD_Result handle(void *cls, struct MHD_Connection *c,
                              const char *url, const char *method,
                              const char *version, const char *upload_data,
                              size_t *upload_data_size, void **req_cls)
{
    atomic_fetch_add(&in_handler, 1);
    enum MHD_Result ret = handle_request(cls, c, url, method, version,
                                         upload_data, upload_data_size,
                                         req_cls);
    atomic_store(&last_activity, coarse_us());
    atomic_fetch_sub(&in_handler, 1);
    return ret;
}

/* ==== daemon ==== */

/* libmicrohttpd's own messages (malformed requests it refuses before any
 * handler runs), marked so they cannot be mistaken for access-log lines. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    line[strcspn(line, "\n")] = '\0';
    /* The one sign of a connection closed at --max-per-ip (or, in a race,
     * at --max-connections): no request exists for it. */
    if (strncmp(line, "Server reached connection limit", 31) == 0)
        server_metrics_reject("connection_limit");
    server_log_msg("attnd: http: %s", line);
}

static int resolve(const char *host, int port, struct sockaddr_storage *ss,
                   int *ipv6)
{
    struct addrinfo hints = {0}, *ai = NULL;
    char service[16];
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(service, sizeof service, "%d", port);
    int rc = getaddrinfo(host, service, &hints, &ai);
    if (rc != 0) {
        server_log_msg("attnd: cannot resolve --host %s: %s", host,
                       gai_strerror(rc));
        return 0;
    }
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    *ipv6 = ai->ai_family == AF_INET6;
    freeaddrinfo(ai);
    return 1;
}

/* Each connection's libmicrohttpd memory pool: request line and headers,
 * one read of the body at a time (bodies are copied out as they come),
 * and the response headers.  libmicrohttpd 0.9.75 zeroes the whole pool
 * after every request on a keep-alive connection, and also the unused
 * part of its read buffer, so the pool's size is paid on every request:
 * 64 KiB cost ~4% of the small /bow case (perf, memset) and 96 KiB
 * written per request.  16 KiB still takes request headers of about 15
 * KiB (Node.js's default limit is 16 KiB) and large bodies as fast. */
#define CONN_MEMORY (16 * 1024)

int server_run(const server_config *config)
{
    cfg = config;
    server_routes_init();
    server_log_json(cfg->log_json);
    server_metrics_init(MHD_get_version(), cfg->threads);
    api_config acfg = cfg->limits;
    acfg.omp_threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    api_init(&acfg);

    /* Signals are taken synchronously by this thread; block them before
     * libmicrohttpd starts its threads so they inherit the mask. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct sockaddr_storage ss;
    int ipv6 = 0;
    struct sockaddr_in any = {0};
    any.sin_family = AF_INET;
    any.sin_port = htons((uint16_t)cfg->port);
    any.sin_addr.s_addr = htonl(INADDR_ANY);
    if (cfg->host) {
        if (!resolve(cfg->host, cfg->port, &ss, &ipv6))
            return 1;
    } else {
        memcpy(&ss, &any, sizeof any);
    }

    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG |
                     MHD_USE_ITC | (ipv6 ? MHD_USE_IPv6 : 0);
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, (uint16_t)cfg->port, NULL, NULL, handle, NULL,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)cfg->threads,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->conn_timeout,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->conn_limit,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)cfg->per_ip_limit,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_MEMORY,
        MHD_OPTION_NOTIFY_COMPLETED, request_completed, NULL,
        MHD_OPTION_END);
    if (!d) {
        server_log_msg("attnd: cannot listen on %s:%d: %s",
                       cfg->host ? cfg->host : "0.0.0.0", cfg->port,
                       strerror(errno));
        return 1;
    }
    server_log_start();         /* signals are blocked: it inherits that */
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    server_log_msg("attnd listening on http://%s%s%s:%u (%d threads)",
                   ipv6 ? "[" : "", cfg->host ? cfg->host : "0.0.0.0",
                   ipv6 ? "]" : "",
                   info ? (unsigned)info->port : (unsigned)cfg->port,
                   cfg->threads);
    if (cfg->nmodels > 0)
        server_log_msg("attnd: %d model%s from %s (GET /models)",
                       cfg->nmodels, cfg->nmodels == 1 ? "" : "s",
                       cfg->models_dir);

    /* Wait for a signal (log.c's flusher writes batched lines; the flush
     * every 100 ms here is a backstop). */
    int sig;
    const struct timespec tick = {0, 100 * 1000 * 1000};
    while ((sig = sigtimedwait(&stop, NULL, &tick)) < 0)
        server_log_flush();
    server_log_flush();
    atomic_store(&stopping, 1);
    server_set_draining();          /* GET /readyz: 503 from now on */
    if (cfg->drain_delay > 0) {
        /* Keep serving (every answer with Connection: close) while load
         * balancers see /readyz fail and move away; a second signal cuts
         * the wait short. */
        server_log_msg("attnd: signal %d, draining for %d s (/readyz "
                       "answers 503)", sig, cfg->drain_delay);
        const int64_t until = now_us() + (int64_t)cfg->drain_delay * 1000000;
        while (now_us() < until) {
            if (sigtimedwait(&stop, NULL, &tick) >= 0)
                break;
            server_log_flush();
        }
        server_log_flush();
    }
    server_log_msg("attnd: signal %d, finishing in-flight requests", sig);

    /* Stop accepting; let requests already started run to completion, for
     * at most the grace period.  libmicrohttpd notices some vanished
     * clients (half-closed mid-body) only at the connection timeout, so
     * once nothing has progressed for a second and no handler is running,
     * what is left is stalled and is cut rather than waited for. */
    MHD_socket ls = MHD_quiesce_daemon(d);
    const int64_t t0 = now_us(), grace = (int64_t)cfg->shutdown_grace * 1000000;
    atomic_store(&last_activity, t0);
    while (atomic_load(&in_flight) > 0 && now_us() - t0 < grace) {
        if (atomic_load(&in_handler) == 0 &&
            now_us() - atomic_load(&last_activity) > 1000000)
            break;
        struct timespec nap = {0, 10 * 1000 * 1000};
        nanosleep(&nap, NULL);
    }
    int left = atomic_load(&in_flight);
    MHD_stop_daemon(d);
    if (ls != MHD_INVALID_SOCKET)
        close(ls);
    server_log_stop();          /* writes what is held; later lines at once */
    if (left > 0)
        server_log_msg("attnd: stopped, %d stalled request%s cut", left,
                       left == 1 ? "" : "s");
    else
        server_log_msg("attnd: stopped");
    return 0;
}
