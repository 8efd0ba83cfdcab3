/* http.c -- the libmicrohttpd daemon: routes, CORS, bodies, log, metrics,
 * shutdown; the bounds on what a connection may cost (deadlines, the
 * connection limit, strict framing) and the compute workers.
 *
 * Threads: libmicrohttpd's pool (--threads) parses, buffers bodies and
 * answers the cheap routes (probes, /metrics, the page) itself; a request
 * for a computing route is suspended and handed to a compute worker
 * (--threads of them), which resumes it with the answer.  So no probe ever
 * waits behind a computation.  A watchdog thread enforces the deadlines
 * libmicrohttpd's idle timer cannot (it restarts on every byte) and sets a
 * computation's cancel flag when its client goes away, its
 * --compute-timeout passes or the server stops. */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/sockios.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "../api/api.h"
#include "encoding.h"
#include "ident.h"
#include "../api/v2.h"

/* ==== per-connection and per-request state ==== */

/* Where a connection is, for the watchdog's deadlines. */
enum phase {
    PH_HEAD,        /* waiting for a request's line and headers */
    PH_BODY,        /* headers in, body arriving */
    PH_WORK,        /* the whole request in, being answered */
    PH_SEND,        /* answer queued, being written */
};

/* Why the watchdog cut a connection (for the request's log line). */
enum cut { CUT_NONE, CUT_HEAD, CUT_BODY, CUT_SEND, CUT_IDLE };

/* One per connection, made and freed by libmicrohttpd's connection
 * notifications, listed for the watchdog. */
typedef struct conn {
    struct conn *prev, *next;
    int fd;
    _Atomic int phase;
    _Atomic int64_t since;      /* coarse us: when the phase began */
    _Atomic int served;         /* requests answered on it */
    _Atomic int cut;            /* enum cut */
    int over_limit;             /* opened past --max-connections */
    int outq;                   /* watchdog: unsent bytes at last look */
    int64_t outq_since;         /* ... and since when unchanged */
    struct request *_Atomic req;/* a request handed to a worker */
} conn;

/* A request handed to a compute worker. */
enum job { JOB_NONE, JOB_QUEUED, JOB_RUNNING, JOB_DONE, JOB_ORPHANED };
enum cancel { CANCEL_NONE, CANCEL_CLIENT, CANCEL_DEADLINE, CANCEL_SHUTDOWN };

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
    server_ident ident;     /* X-Request-Id and traceparent (ident.c) */
    int coding;             /* the body's Content-Encoding (encoding.c) */
    int accept;             /* the coding Accept-Encoding asks for */
    const char *resp_coding;    /* the answer's Content-Encoding, or NULL */
    int close;              /* answer with Connection: close */
    uint64_t reserved;      /* bytes held in the memory budget */
    int over_budget;        /* the body did not fit the budget: drained */
    /* compute workers (pool_mu guards job, forced, next) */
    struct MHD_Connection *c;
    conn *cn;
    int job;                /* enum job */
    int forced;             /* resumed by shutdown with its own answer */
    struct request *next;   /* the queue */
    volatile int cancel;    /* enum cancel; the api polls it */
    int64_t work_start;     /* coarse us: handed to a worker */
    char *json_length;      /* Inference-Header-Content-Length, copied */
    api_response result;    /* the worker's answer */
    server_auth_result auth;    /* the Bearer check, when keys are on */
} request;

/* The URI log callback's mark for a request whose raw path holds an
 * encoded control character (libmicrohttpd decodes %00 and cuts there). */
static request bad_path_mark;

static const server_config *cfg;
static atomic_int in_flight;         /* requests begun, not completed */
static atomic_int in_handler;        /* handler calls running right now */
static atomic_llong last_activity;   /* monotonic us of the last progress */
static atomic_int stopping;          /* SIGINT/SIGTERM received */

/* Connections (conns_mu guards the list and each conn's outq fields). */
static pthread_mutex_t conns_mu = PTHREAD_MUTEX_INITIALIZER;
static conn *conns;
static int open_conns;

/* Compute workers (pool_mu guards the queue, every request's job and
 * forced fields, and daemon_gone). */
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pool_cv = PTHREAD_COND_INITIALIZER;
static request *queue_head, *queue_tail;
static int daemon_gone;              /* MHD_stop_daemon called: no resume */
static atomic_int suspended;         /* requests suspended for a worker */

/* An answer decided from the headers alone (404, 405, 413, 415, 503, a
 * refused framing) is sent at once, with the connection closed, for a
 * request with Expect: 100-continue (no 100 is sent), a chunked body, or
 * an announced body over twice --max-body and over --max-body + 1 MiB (a
 * 1 TiB Content-Length is not waited for).  Other bodies are read and dropped first: a client still
 * writing its body would otherwise see the connection reset before it
 * reads the answer, and a keep-alive connection survives a 404. */

/* A native model request this small runs on the HTTP thread itself: its
 * body is parsed and its cost planned there (api_defer_above), and only
 * if the plan is over these bounds is it handed to a compute worker.  The
 * hand-off (suspend, queue, wake a worker, resume) costs ~14 us of CPU,
 * more than such a request's maths; these bounds keep what an HTTP thread
 * may spend on one to well under a millisecond (16 KiB of body is ~2k
 * numbers to parse; 16k floats written as text, about as much). */
#define INLINE_MAX_BODY (16 * 1024)
#define INLINE_MAX_MADDS 65536.0
#define INLINE_MAX_FLOATS 16384

/* What a handler may make of its body, reserved in the memory budget
 * until the api estimates each request's cost: parsing's peak (issue 15
 * bounds it by 3x the body) and the answer. */
#define RESERVE_FACTOR 3
#define RESERVE_BASE (64 * 1024)

static int64_t now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

/* now_us() to within a clock tick (4 ms here) for five times less (5.6
 * against 25.6 ns a call): for marks that only need seconds -- progress
 * for the shutdown wait, the deadlines -- of which a request makes about
 * six. */
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

static void set_phase(conn *cn, int phase)
{
    if (!cn)
        return;
    atomic_store_explicit(&cn->since, coarse_us(), memory_order_relaxed);
    atomic_store_explicit(&cn->phase, phase, memory_order_relaxed);
}

static conn *conn_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
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

static void request_free(request *r)
{
    api_response_free(&r->early);
    api_response_free(&r->result);
    free(r->json_length);
    free(r->body);
    free(r);
}

static void request_completed(void *cls, struct MHD_Connection *c,
                              void **req_cls,
                              enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    request *r = *req_cls;
    if (!r || r == &bad_path_mark)
        return;
    conn *cn = r->cn;
    const int64_t us = elapsed_us(&r->start);
    const int ok = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK;
    /* A request a worker still holds (its connection closed, or shutdown
     * answered it without the worker) is freed by that worker; nobody will
     * read its answer, so it is stopped (the engine polls the flag). */
    int orphan = 0;
    if (r->job != JOB_NONE) {   /* JOB_NONE: only this thread writes it */
        pthread_mutex_lock(&pool_mu);
        if (r->job == JOB_QUEUED || r->job == JOB_RUNNING) {
            r->job = JOB_ORPHANED;
            orphan = 1;
            if (!r->cancel)
                r->cancel = CANCEL_CLIENT;
            if (!r->code && !r->forced)
                r->code = "client_gone";
        } else if (!r->code && r->cancel) {
            /* stopped, its 503 never sent (the connection closed first) */
            r->code = r->cancel == CANCEL_DEADLINE   ? "compute_timeout"
                      : r->cancel == CANCEL_SHUTDOWN ? "shutting_down"
                                                     : "client_gone";
        }
        pthread_mutex_unlock(&pool_mu);
    }
    const int cut = cn ? atomic_load(&cn->cut) : CUT_NONE;
    if (!ok && cut == CUT_BODY && !r->code) {
        r->status = 408;    /* cut mid-body: nothing could be sent */
        r->code = "request_timeout";
    } else if (!ok && cut == CUT_SEND) {
        r->code = "send_timeout";
    } else if (!r->code && toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED) {
        r->code = "connection_timeout";
    }
    server_metrics_end(r->route, r->method, r->status, r->code, r->received,
                       strcmp(r->method, "HEAD") == 0 ? 0 : r->sent, us);
    /* Batched: written at once on a quiet server, about once a
     * millisecond under load (see log.c). */
    if (cfg->log_json) {
        char ts[32], path[sizeof r->path * 2], rid[sizeof r->ident.id * 2];
        server_log_timestamp(ts);
        server_json_escape(path, sizeof path, 0, r->path);
        server_json_escape(rid, sizeof rid, 0, r->ident.id);
        server_log(1, "{\"ts\":\"%s\",\"method\":\"%s\",\"path\":\"%s\","
                   "\"status\":%d,\"bytes\":%zu,\"duration_us\":%lld,"
                   "\"remote\":\"%s\",\"request_id\":\"%s\"%s%s%s%s}\n", ts,
                   r->method, path, r->status, r->sent, (long long)us,
                   r->remote, rid,
                   r->ident.trace[0] ? ",\"traceparent\":\"" : "",
                   r->ident.trace, r->ident.trace[0] ? "\"" : "",
                   ok ? "" : ",\"aborted\":true");
    } else {
        /* "POST /bow 200 1115 52us id=<X-Request-Id>[ trace=<traceparent>]":
         * by hand, a tenth of what vsnprintf took (callgrind: ~1.8k
         * instructions a request) */
        char line[sizeof r->method + sizeof r->path + sizeof r->ident.id +
                  sizeof r->ident.trace + 96];
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
        memcpy(o, "us id=", 6);
        o += 6;
        const size_t ni = strlen(r->ident.id);
        memcpy(o, r->ident.id, ni);
        o += ni;
        if (r->ident.trace[0]) {
            memcpy(o, " trace=", 7);
            memcpy(o + 7, r->ident.trace, 55);
            o += 62;
        }
        if (!ok) {
            memcpy(o, " aborted", 8);
            o += 8;
        }
        *o++ = '\n';
        server_log_line(1, line, (size_t)(o - line));
    }
    if (r->reserved)
        server_budget_release(r->reserved);
    r->reserved = 0;
    if (cn) {
        atomic_store(&cn->req, NULL);
        atomic_fetch_add(&cn->served, 1);
        set_phase(cn, PH_HEAD);     /* the next request's head deadline */
    }
    *req_cls = NULL;
    if (!orphan)
        request_free(r);
    atomic_store(&last_activity, coarse_us());
    atomic_fetch_sub(&in_flight, 1);
}

/* ==== responses ==== */

/* CORS (the allow-list), WWW-Authenticate on a 401, and what every answer
 * tells a browser: no sniffing, no framing, and on the page a CSP that
 * lets it run only its own inline script and style (headers.c). */
static void add_security_headers(struct MHD_Connection *c, const request *r,
                                 struct MHD_Response *resp, int status)
{
    const char *allow = server_cors_allow(
        server_cors_any() ? NULL
                          : MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                        "Origin"));
    if (allow)
        MHD_add_response_header(resp, "Access-Control-Allow-Origin", allow);
    /* One Vary: on Origin with an allow-list (caches keep one answer per
     * origin), on Accept-Encoding for answers that may be compressed. */
    const int computed = server_may_compress(r->route);
    if (!server_cors_any() || computed)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_VARY,
                                server_cors_any() ? "Accept-Encoding"
                                : computed ? "Origin, Accept-Encoding"
                                           : "Origin");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    const int page = r->route && strcmp(r->route->path, "/") == 0;
    MHD_add_response_header(resp, "Content-Security-Policy",
                            page && server_csp() ? server_csp()
                                : "default-src 'none'; frame-ancestors 'none'");
    if (page) {
        MHD_add_response_header(resp, "X-Frame-Options", "DENY");
        MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    }
    if (status == 401)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                r->auth == SERVER_AUTH_WRONG
                                    ? "Bearer realm=\"attnd\", "
                                      "error=\"invalid_token\""
                                    : "Bearer realm=\"attnd\"");
}

/* libmicrohttpd's own error answers (400, 413, 414, 431, 501, 505 from
 * its parser, JSON by server/mhd's patch, which calls this): the headers
 * every answer carries.  No request exists yet, so no Origin is known:
 * with an allow-list no Access-Control-Allow-Origin is sent. */
void attnd_error_headers(struct MHD_Response *resp);
void attnd_error_headers(struct MHD_Response *resp)
{
    if (server_cors_any())
        MHD_add_response_header(resp, "Access-Control-Allow-Origin", "*");
    else
        MHD_add_response_header(resp, "Vary", "Origin");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Content-Security-Policy",
                            "default-src 'none'; frame-ancestors 'none'");
}

/* Whether a request needs a key: all but the probes, the page (which asks
 * for the key), preflights (browsers send them without credentials), and
 * /metrics with --metrics-public. */
static int needs_key(const request *r)
{
    if (strcmp(r->method, "OPTIONS") == 0 || !r->route)
        return r->route == NULL;
    const char *p = r->route->path;
    return strcmp(p, "/healthz") != 0 && strcmp(p, "/readyz") != 0 &&
           strcmp(p, "/") != 0 &&
           !(cfg->metrics_public && strcmp(p, "/metrics") == 0);
}

static void unauthorized(const request *r, api_response *res)
{
    const int v2 = server_is_v2_path(r->path);
    memset(res, 0, sizeof *res);
    (v2 ? api_v2_error : api_simple_error)(
        res, 401, "unauthorized",
        r->auth == SERVER_AUTH_WRONG
            ? "the API key sent is not one of this server's keys"
            : "this server needs an API key: send Authorization: Bearer "
              "<key>");
}

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

    add_security_headers(c, r, resp, res->status);
    MHD_add_response_header(resp, "X-Request-Id", r->ident.id);
    MHD_add_response_header(resp, "Access-Control-Expose-Headers",
                            SERVER_CORS_EXPOSE_HEADERS);
    /* Stopping: keep-alive clients go elsewhere.  A refusal of the framing
     * or of the connection: nothing more is read from it. */
    if (atomic_load(&stopping) || r->close)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    if (res->status == 503)     /* a budget or limit that frees up */
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    if (res->content_type)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                res->content_type);
    if (r->resp_coding)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_ENCODING,
                                r->resp_coding);
    if (res->json_len) {
        /* v2 binary outputs: where the JSON ends and the tensor data
         * begins; exposed, or a page on another origin could not read it. */
        char n[24];
        snprintf(n, sizeof n, "%zu", res->json_len);
        MHD_add_response_header(resp, "Inference-Header-Content-Length", n);
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
         * tensor data, tracing clients X-Request-Id and traceparent; a
         * browser may send them only if allowed here. */
        MHD_add_response_header(resp, "Access-Control-Allow-Headers",
                                server_auth_enabled()
                                    ? SERVER_CORS_ALLOW_HEADERS ", Authorization"
                                    : SERVER_CORS_ALLOW_HEADERS);
        MHD_add_response_header(resp, "Access-Control-Max-Age", "86400");
    }
    r->status = res->status;
    r->sent = res->len;
    r->code = res->code;
    set_phase(r->cn, PH_SEND);
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)res->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* An error decided by the server (not a handler), in the error form of the
 * request's path (the v2 form under /v2). */
static void refuse(request *r, int status, const char *code, const char *msg)
{
    api_response_free(&r->early);
    memset(&r->early, 0, sizeof r->early);
    (server_is_v2_path(r->path) ? api_v2_error : api_simple_error)(
        &r->early, status, code, msg);
}

/* ==== compute workers ==== */

static void cancelled_answer(request *r, api_response *res)
{
    char msg[200];
    api_response_free(res);
    memset(res, 0, sizeof *res);
    switch (r->cancel) {
    case CANCEL_DEADLINE:
        snprintf(msg, sizeof msg, "the computation took longer than this "
                 "server's limit of %d s (--compute-timeout) and was "
                 "stopped; ask for less (smaller shapes) or raise the limit",
                 cfg->compute_timeout);
        api_simple_error(res, 503, "compute_timeout", msg);
        break;
    case CANCEL_CLIENT:
        api_simple_error(res, 503, "client_gone", "the client closed the "
                         "connection; the computation was stopped");
        break;
    default:
        api_simple_error(res, 503, "shutting_down", "the server is stopping; "
                         "retry on another instance");
        break;
    }
    if (server_is_v2_path(r->path)) {   /* the same, in the v2 form */
        char m[200];
        snprintf(m, sizeof m, "%s", msg);
        const char *code = res->code;
        api_response_free(res);
        memset(res, 0, sizeof *res);
        api_v2_error(res, 503, code, r->cancel == CANCEL_DEADLINE ? m
                     : r->cancel == CANCEL_CLIENT ? "the client closed the "
                     "connection" : "the server is stopping");
    }
}

static void *worker_main(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&pool_mu);
        while (!queue_head)
            pthread_cond_wait(&pool_cv, &pool_mu);
        request *r = queue_head;
        queue_head = r->next;
        if (!queue_head)
            queue_tail = NULL;
        r->next = NULL;
        const int orphaned = r->job == JOB_ORPHANED;
        if (!orphaned)
            r->job = JOB_RUNNING;
        pthread_mutex_unlock(&pool_mu);
        if (orphaned) {
            request_free(r);
            continue;
        }

        server_metrics_computing(1);
        api_response res = {0};
        if (!r->cancel) {
            api_cancel_watch(&r->cancel);
            server_dispatch(r->route, r->body, r->len, r->json_length, &res);
            api_cancel_watch(NULL);
        }
        if (r->cancel)  /* stopped, or finished past its deadline */
            cancelled_answer(r, &res);
        server_metrics_computing(-1);

        pthread_mutex_lock(&pool_mu);
        if (r->job == JOB_ORPHANED) {
            pthread_mutex_unlock(&pool_mu);
            api_response_free(&res);
            request_free(r);
            continue;
        }
        r->job = JOB_DONE;
        if (!r->forced) {
            r->result = res;
            if (!daemon_gone)
                MHD_resume_connection(r->c);
        } else {
            api_response_free(&res);
        }
        pthread_mutex_unlock(&pool_mu);
    }
    return NULL;
}

static void enqueue(request *r)
{
    pthread_mutex_lock(&pool_mu);
    r->job = JOB_QUEUED;
    r->work_start = coarse_us();
    if (queue_tail)
        queue_tail->next = r;
    else
        queue_head = r;
    queue_tail = r;
    pthread_cond_signal(&pool_cv);
    pthread_mutex_unlock(&pool_mu);
}

/* ==== the access handler ==== */

/* Grows the body buffer; 0 on allocation failure.  Growth is reserved in
 * the memory budget first: a body that does not fit is dropped (and
 * answered 503 once it has all arrived). */
static int body_append(request *r, const char *data, size_t n)
{
    if (r->too_large || r->early.status || r->over_budget)
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
        if (cap > r->reserved) {
            if (!server_budget_reserve(cap - r->reserved)) {
                r->over_budget = 1;
                free(r->body);
                r->body = NULL;
                r->len = r->cap = 0;
                return 1;
            }
            r->reserved = cap;
        }
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

static void memory_budget_error(request *r)
{
    char msg[200];
    snprintf(msg, sizeof msg, "the server's memory budget (--max-memory, "
             "%llu bytes) is spent by the requests in progress; retry "
             "shortly", (unsigned long long)server_budget_limit());
    refuse(r, 503, "memory_budget", msg);
}

/* RFC 9112 framing that libmicrohttpd 1.0.1 lets through: header fields
 * are scanned once, on the first call. */
typedef struct framing {
    int n_cl, n_te, cl_differ, ctl;
    const char *cl;
} framing;

static enum MHD_Result scan_header(void *cls, enum MHD_ValueKind kind,
                                   const char *key, size_t key_len,
                                   const char *value, size_t value_len)
{
    (void)kind;
    framing *f = cls;
    if (key_len == 14 && strncasecmp(key, "Content-Length", 14) == 0) {
        if (f->n_cl++ && value && f->cl && strcmp(value, f->cl) != 0)
            f->cl_differ = 1;
        f->cl = value;
    } else if (key_len == 17 &&
               strncasecmp(key, "Transfer-Encoding", 17) == 0) {
        f->n_te++;
    }
    /* field-value: visible characters, SP, HTAB, obs-text; no CTL */
    for (size_t i = 0; value && i < value_len; i++) {
        const unsigned char ch = (unsigned char)value[i];
        if ((ch < 32 && ch != '\t') || ch == 127)
            f->ctl = 1;
    }
    return MHD_YES;
}

/* The first call: headers only.  Decides everything the headers can. */
/* A model's or /randn's 200 answer compressed when Accept-Encoding asks
 * and it is large enough to gain (encoding.c). */
static void compress_answer(request *r, api_response *res)
{
    if (res->status == 200 && server_may_compress(r->route))
        r->resp_coding = server_compress_response(res, r->accept);
}

static enum MHD_Result first_call(struct MHD_Connection *c, request *r,
                                  const char *url, const char *method,
                                  const char *version, int bad_path)
{
    conn *cn = conn_of(c);
    r->cn = cn;
    r->c = c;
    set_phase(cn, PH_BODY);
    if (cfg->log_json)
        remote_addr(c, r->remote, sizeof r->remote);
    log_copy(r->method, sizeof r->method, method);
    log_copy(r->path, sizeof r->path, url);
    r->route = server_find_route(url);
    server_ident_init(&r->ident,
                      MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                  "X-Request-Id"),
                      MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                  "traceparent"));
    server_decide_early(r->route, r->method, r->path,
                        MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                    "Content-Type"),
                        &r->early);
    if (!r->early.status && (r->route->post || r->route->infer))
        server_request_coding(r->path,
                              MHD_lookup_connection_value(
                                  c, MHD_HEADER_KIND, "Content-Encoding"),
                              &r->coding, &r->early);
    r->accept = server_accept_coding(MHD_lookup_connection_value(
        c, MHD_HEADER_KIND, "Accept-Encoding"));
    if (server_auth_enabled()) {
        r->auth = server_auth_check(MHD_lookup_connection_value(
            c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION));
        if (r->auth != SERVER_AUTH_OK && needs_key(r)) {
            api_response_free(&r->early);
            unauthorized(r, &r->early);
        }
    }

    const char *etag = server_route_etag(r->route);
    const char *inm = MHD_lookup_connection_value(
        c, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
    r->inm_match = etag && inm && (strstr(inm, etag) || strcmp(inm, "*") == 0);

    framing f = {0};
    MHD_get_connection_values_n(c, MHD_HEADER_KIND, scan_header, &f);
    const int chunked = f.n_te > 0;
    const char *cl = f.cl;
    const unsigned long long announced = cl ? strtoull(cl, NULL, 10) : 0;
    const int has_body = chunked || announced > 0;
    const int expect = MHD_lookup_connection_value(
                           c, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT) != NULL;

    /* Refusals of the framing: before anything else, connection closed. */
    const char *bad = NULL;
    if (bad_path)
        bad = "the path holds an encoded control character (%00-%1F or "
              "%7F); no route has one";
    else if (f.cl_differ)
        bad = "the request has Content-Length fields with different values "
              "(RFC 9112 6.3); send one";
    else if (f.n_te > 1)
        bad = "the request has more than one Transfer-Encoding field; send "
              "one, \"chunked\"";
    else if (chunked && strcmp(version, MHD_HTTP_VERSION_1_0) == 0)
        bad = "an HTTP/1.0 request cannot use Transfer-Encoding (RFC 9112 "
              "6.1); send Content-Length";
    else if (f.ctl)
        bad = "a header field value holds a control character";
    if (bad) {
        refuse(r, 400, "bad_request", bad);
        r->close = 1;
    } else if (cn && cn->over_limit) {
        char msg[160];
        snprintf(msg, sizeof msg, "the server has %d connections open "
                 "(--max-connections) and none idle to close; retry "
                 "shortly", cfg->conn_limit);
        refuse(r, 503, "connection_limit", msg);
        r->close = 1;
    } else if (!r->early.status && announced > cfg->max_body) {
        /* 413 at once when over twice the limit (below), else drained */
        server_body_too_large(r->path, cfg->max_body, &r->early);
    } else if (!r->early.status && announced) {
        /* The whole announced body is reserved before any of it is kept. */
        if (server_budget_reserve(announced))
            r->reserved = announced;
        else
            memory_budget_error(r);
        r->expected = (size_t)announced;
    }

    if (r->early.status && has_body &&
        (r->close || expect || chunked ||
         announced > cfg->max_body + (cfg->max_body > (1u << 20)
                                          ? cfg->max_body : (1u << 20)))) {
        /* Answered now: libmicrohttpd then sends no 100 Continue and
         * closes the connection instead of reading a body.  (Without a
         * body the final call comes at once: answered there, as
         * libmicrohttpd 1.0.1 closes any connection answered on the
         * first call.) */
        r->close = 1;
        api_response res = r->early;
        memset(&r->early, 0, sizeof r->early);
        return send_response(c, r, &res);
    }
    return MHD_YES;
}

static enum MHD_Result handle_request(void *cls, struct MHD_Connection *c,
                              const char *url, const char *method,
                              const char *version, const char *upload_data,
                              size_t *upload_data_size, void **req_cls)
{
    (void)cls;
    request *r = *req_cls;

    if (!r || r == &bad_path_mark) {
        const int bad_path = r == &bad_path_mark;
        r = calloc(1, sizeof *r);
        if (!r)
            return MHD_NO;
        atomic_fetch_add(&in_flight, 1);
        server_metrics_begin();
        clock_gettime(CLOCK_MONOTONIC, &r->start);
        *req_cls = r;
        return first_call(c, r, url, method, version, bad_path);
    }

    if (r->job == JOB_DONE || r->forced) {
        /* Resumed by its worker (or by shutdown) with the answer. */
        atomic_fetch_sub(&suspended, 1);
        api_response res = r->result;
        memset(&r->result, 0, sizeof r->result);
        if (r->job == JOB_DONE)
            compress_answer(r, &res);
        return send_response(c, r, &res);
    }

    if (*upload_data_size) {
        r->received += *upload_data_size;
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
    } else if (r->over_budget) {
        memory_budget_error(r);
        res = r->early;
        memset(&r->early, 0, sizeof r->early);
    } else if (r->inm_match) {
        res.status = 304;       /* the client's copy is current */
        res.is_static = 1;
    } else if (r->route->get == server_metrics_get &&
               server_auth_enabled() && r->auth == SERVER_AUTH_OK) {
        server_metrics_render(&res, 1);     /* under the key: versions too */
    } else if (r->route && (r->route->post || r->route->infer)) {
        if (r->coding) {        /* Content-Encoding: gzip or deflate */
            char *plain = NULL;
            size_t n = 0;
            if (server_decode_body(r->path, r->coding, r->body, r->len,
                                   cfg->max_body, &plain, &n, &res) != 0)
                return send_response(c, r, &res);
            if (plain) {
                free(r->body);
                r->body = plain;
                r->len = r->cap = n;
            }
        }
        if (r->route->model >= 0 && r->route->post && r->len <= INLINE_MAX_BODY) {
            /* maybe tiny enough for this thread (see INLINE_MAX_BODY) */
            set_phase(r->cn, PH_WORK);
            api_defer_above(INLINE_MAX_MADDS, INLINE_MAX_FLOATS);
            server_dispatch(r->route, r->body, r->len, NULL, &res);
            api_defer_above(0, 0);
            if (!res.deferred) {
                compress_answer(r, &res);
                return send_response(c, r, &res);
            }
            memset(&res, 0, sizeof res);
        }
        /* A computation: reserved in the budget, then off this thread. */
        const uint64_t more = (uint64_t)r->len * RESERVE_FACTOR + RESERVE_BASE;
        if (!server_budget_reserve(more)) {
            memory_budget_error(r);
            res = r->early;
            memset(&r->early, 0, sizeof r->early);
            return send_response(c, r, &res);
        }
        r->reserved += more;
        const char *jl = MHD_lookup_connection_value(
            c, MHD_HEADER_KIND, "Inference-Header-Content-Length");
        if (jl && !(r->json_length = strdup(jl))) {
            api_simple_error(&res, 503, "out_of_memory", "the server could "
                             "not allocate memory for this request; retry "
                             "later");
            return send_response(c, r, &res);
        }
        set_phase(r->cn, PH_WORK);
        if (r->cn)
            atomic_store(&r->cn->req, r);
        atomic_fetch_add(&suspended, 1);
        MHD_suspend_connection(c);
        enqueue(r);
        return MHD_YES;
    } else {
        set_phase(r->cn, PH_WORK);
        server_dispatch(r->route, r->body, r->len, NULL, &res);
    }
    return send_response(c, r, &res);
}

/* Every call is progress, and a call still running must not look like a
 * stalled client to the shutdown wait. */
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

/* The raw request target, before libmicrohttpd decodes it: a %00 would
 * cut the path the handler sees ("/metrics%00.css" -> "/metrics"), and
 * no route has an encoded control character. */
static void *uri_log(void *cls, const char *uri, struct MHD_Connection *c)
{
    (void)cls;
    (void)c;
    static const char hex[] = "0123456789abcdef0123456789ABCDEF";
    for (const char *p = uri; *p && *p != '?'; p++) {
        const char *h1, *h2;
        if (p[0] != '%' || !p[1] || !p[2] || !(h1 = strchr(hex, p[1])) ||
            !(h2 = strchr(hex, p[2])))
            continue;
        const int v = (int)((h1 - hex) % 16) * 16 + (int)((h2 - hex) % 16);
        if (v < 0x20 || v == 0x7f)
            return &bad_path_mark;
    }
    return NULL;
}

/* ==== connections: the limit and the watchdog ==== */

/* Shuts a connection's socket down (libmicrohttpd still owns and closes
 * the descriptor: conns_mu is held, and a conn leaves the list before its
 * descriptor is closed, so it cannot be another connection's by now). */
static void cut_locked(conn *cn, int why)
{
    atomic_store(&cn->cut, why);
    shutdown(cn->fd, SHUT_RDWR);
}

static void notify_connection(void *cls, struct MHD_Connection *c,
                              void **socket_context,
                              enum MHD_ConnectionNotificationCode code)
{
    (void)cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        conn *cn = calloc(1, sizeof *cn);
        *socket_context = cn;
        if (!cn)
            return;
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        cn->fd = ci ? ci->connect_fd : -1;
        set_phase(cn, PH_HEAD);
        pthread_mutex_lock(&conns_mu);
        cn->next = conns;
        if (conns)
            conns->prev = cn;
        conns = cn;
        if (++open_conns > cfg->conn_limit) {
            /* Over --max-connections: close the connection idle longest
             * between keep-alive requests, or else answer this one 503. */
            conn *idle = NULL;
            for (conn *o = cn->next; o; o = o->next)
                if (atomic_load(&o->phase) == PH_HEAD &&
                    atomic_load(&o->served) > 0 && !atomic_load(&o->cut) &&
                    !o->over_limit &&
                    (!idle || atomic_load(&o->since) <= atomic_load(&idle->since)))
                    idle = o;     /* ties: the older (later in the list) */
            if (idle) {
                cut_locked(idle, CUT_IDLE);
                server_metrics_reject("idle_closed");
            } else {
                cn->over_limit = 1;
            }
        }
        pthread_mutex_unlock(&conns_mu);
        server_metrics_connections(1);
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        conn *cn = *socket_context;
        if (!cn)
            return;
        pthread_mutex_lock(&conns_mu);
        if (cn->prev)
            cn->prev->next = cn->next;
        else
            conns = cn->next;
        if (cn->next)
            cn->next->prev = cn->prev;
        open_conns--;
        pthread_mutex_unlock(&conns_mu);
        server_metrics_connections(-1);
        free(cn);
        *socket_context = NULL;
    }
}

static void cancel(request *r, int why)
{
    if (r && !r->cancel)
        r->cancel = why;
}

/* Every 50 ms: the deadlines of every connection, and whether a client
 * whose request computes is still there. */
static void *watchdog_main(void *arg)
{
    (void)arg;
    const struct timespec tick = {0, 50 * 1000 * 1000};
    for (;;) {
        nanosleep(&tick, NULL);
        const int64_t now = coarse_us();
        const int stop = atomic_load(&stopping);
        pthread_mutex_lock(&conns_mu);
        for (conn *cn = conns; cn; cn = cn->next) {
            if (cn->fd < 0 || atomic_load(&cn->cut))
                continue;
            const int64_t t = now - atomic_load(&cn->since);
            switch (atomic_load(&cn->phase)) {
            case PH_HEAD: {
                /* A new connection has --header-timeout for its first
                 * request's head; a keep-alive one --timeout for the next
                 * (libmicrohttpd's idle timer, but absolute). */
                const int lim = atomic_load(&cn->served) > 0
                                    ? cfg->conn_timeout : cfg->header_timeout;
                if (t > (int64_t)lim * 1000000) {
                    cut_locked(cn, CUT_HEAD);
                    server_metrics_reject("header_timeout");
                }
                break;
            }
            case PH_BODY:
                if (t > (int64_t)cfg->request_timeout * 1000000)
                    cut_locked(cn, CUT_BODY);
                break;
            case PH_WORK: {
                request *r = atomic_load(&cn->req);
                if (!r)
                    break;
                if (stop >= 2)
                    cancel(r, CANCEL_SHUTDOWN);
                if (cfg->compute_timeout &&
                    t > (int64_t)cfg->compute_timeout * 1000000)
                    cancel(r, CANCEL_DEADLINE);
                struct pollfd p = {cn->fd, POLLRDHUP, 0};
                if (poll(&p, 1, 0) > 0 &&
                    (p.revents & (POLLRDHUP | POLLHUP | POLLERR)))
                    cancel(r, CANCEL_CLIENT);
                break;
            }
            case PH_SEND: {
                /* A client that stopped reading: the kernel's send queue
                 * neither empties nor changes for --send-timeout. */
                int outq = 0;
                if (ioctl(cn->fd, SIOCOUTQ, &outq) != 0 || outq == 0 ||
                    outq != cn->outq) {
                    cn->outq = outq;
                    cn->outq_since = now;
                } else if (now - cn->outq_since >
                           (int64_t)cfg->send_timeout * 1000000) {
                    cut_locked(cn, CUT_SEND);
                }
                break;
            }
            }
        }
        pthread_mutex_unlock(&conns_mu);
    }
    return NULL;
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
     * at libmicrohttpd's own limit): no request exists for it. */
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
 * and the response headers.  16 KiB takes request headers of about 15 KiB
 * (Node.js's default limit is 16 KiB) and large bodies as fast. */
#define CONN_MEMORY (16 * 1024)

/* Shutdown, once the grace period is over: the computations still queued
 * or running are cancelled; those that have not stopped a second later
 * are answered 503 shutting_down without their worker.  Returns when no
 * request is suspended any more (so MHD_stop_daemon may run), or 0 if
 * that did not happen within two seconds. */
static int stop_workers(void)
{
    atomic_store(&stopping, 2);         /* the watchdog cancels the rest */
    pthread_mutex_lock(&conns_mu);
    for (conn *cn = conns; cn; cn = cn->next)
        cancel(atomic_load(&cn->req), CANCEL_SHUTDOWN);
    pthread_mutex_unlock(&conns_mu);
    const int64_t t0 = now_us();
    const struct timespec nap = {0, 10 * 1000 * 1000};
    while (atomic_load(&suspended) > 0 && now_us() - t0 < 1000000)
        nanosleep(&nap, NULL);
    pthread_mutex_lock(&pool_mu);
    pthread_mutex_lock(&conns_mu);
    for (conn *cn = conns; cn; cn = cn->next) {
        request *r = atomic_load(&cn->req);
        if (r && (r->job == JOB_QUEUED || r->job == JOB_RUNNING) &&
            !r->forced) {
            r->forced = 1;
            cancel(r, CANCEL_SHUTDOWN);
            cancelled_answer(r, &r->result);
            MHD_resume_connection(r->c);
        }
    }
    pthread_mutex_unlock(&conns_mu);
    pthread_mutex_unlock(&pool_mu);
    while (atomic_load(&suspended) > 0 && now_us() - t0 < 2000000)
        nanosleep(&nap, NULL);
    return atomic_load(&suspended) == 0;
}

/* SIGHUP re-reads the TLS pair and the API keys; it never stops the
 * server, and a bad file leaves what is in use. */
static void on_sighup(void)
{
    const int tls = server_tls_enabled(), keys = server_auth_enabled();
    server_log_msg("attnd: SIGHUP: reloading %s%s%s", tls ? "the TLS pair" : "",
                   tls && keys ? " and " : "",
                   keys ? "the API keys" : tls ? ""
                                               : "nothing (no --tls-cert, no "
                                                 "--api-keys)");
    server_tls_reload();
    server_auth_reload();
}

int server_run(const server_config *config)
{
    cfg = config;
    server_routes_init();
    server_log_json(cfg->log_json);
    server_cors_init(cfg->cors_origins, cfg->n_cors_origins);
    server_metrics_show_versions(cfg->metrics_versions);
    if (!server_csp_init(server_web_index_start,
                         (size_t)(server_web_index_end -
                                  server_web_index_start)) ||
        !server_tls_init(cfg->tls_cert, cfg->tls_key, cfg->tls_priorities) ||
        !server_auth_init(cfg->api_keys)) {
        server_tls_free();
        return 1;
    }
    server_metrics_init(MHD_get_version(), cfg->threads);
    server_budget_init(cfg->max_memory);
    api_config acfg = cfg->limits;
    acfg.omp_threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    api_init(&acfg);

    /* Signals are taken synchronously by this thread; block them before
     * any other thread starts so they inherit the mask. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGHUP);       /* reload, never stop: on_sighup */
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

    for (int i = 0; i < cfg->threads + 1; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, i ? worker_main : watchdog_main,
                           NULL) != 0) {
            server_log_msg("attnd: cannot start a thread: %s",
                           strerror(errno));
            return 1;
        }
        pthread_detach(t);
    }

    /* libmicrohttpd's own limit is above --max-connections so that a
     * client past it is answered (503, or an idle connection closed for
     * it) rather than left unaccepted. */
    const unsigned hard_limit = (unsigned)cfg->conn_limit +
                                (unsigned)cfg->conn_limit / 8 + 8;
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG |
                     MHD_USE_ITC | MHD_ALLOW_SUSPEND_RESUME |
                     (ipv6 ? MHD_USE_IPv6 : 0) |
                     (server_tls_enabled() ? MHD_USE_TLS : 0);
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, (uint16_t)cfg->port, NULL, NULL, handle, NULL,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)cfg->threads,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->conn_timeout,
        MHD_OPTION_CONNECTION_LIMIT, hard_limit,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)cfg->per_ip_limit,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_MEMORY,
        MHD_OPTION_NOTIFY_COMPLETED, request_completed, NULL,
        MHD_OPTION_NOTIFY_CONNECTION, notify_connection, NULL,
        MHD_OPTION_URI_LOG_CALLBACK, uri_log, NULL,
        /* RFC 9112 strictly, within what the RFCs allow a server */
        MHD_OPTION_CLIENT_DISCIPLINE_LVL, 1,
        MHD_OPTION_ARRAY, (struct MHD_OptionItem *)server_tls_options(),
        MHD_OPTION_END);
    if (!d) {
        server_log_msg("attnd: cannot listen on %s:%d: %s",
                       cfg->host ? cfg->host : "0.0.0.0", cfg->port,
                       strerror(errno));
        server_tls_free();
        server_auth_free();
        return 1;
    }
    server_log_start();         /* signals are blocked: it inherits that */
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    server_log_msg("attnd listening on %s://%s%s%s:%u (%d threads)",
                   server_tls_enabled() ? "https" : "http", ipv6 ? "[" : "", cfg->host ? cfg->host : "0.0.0.0",
                   ipv6 ? "]" : "",
                   info ? (unsigned)info->port : (unsigned)cfg->port,
                   cfg->threads);
    if (cfg->nmodels > 0)
        server_log_msg("attnd: %d model%s from %s (GET /models)",
                       cfg->nmodels, cfg->nmodels == 1 ? "" : "s",
                       cfg->models_dir);

    /* Wait for a signal (log.c's flusher writes batched lines; the flush
     * every 100 ms here is a backstop).  SIGHUP re-reads the TLS pair and
     * the API keys (on_sighup) and is logged; it never stops the server. */
    int sig;
    const struct timespec tick = {0, 100 * 1000 * 1000};
    while ((sig = sigtimedwait(&stop, NULL, &tick)) < 0 || sig == SIGHUP) {
        if (sig == SIGHUP)
            on_sighup();
        server_log_flush();
    }
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
            const int s2 = sigtimedwait(&stop, NULL, &tick);
            if (s2 == SIGHUP)
                on_sighup();
            else if (s2 >= 0)
                break;
            server_log_flush();
        }
        server_log_flush();
    }
    server_log_msg("attnd: signal %d, finishing in-flight requests", sig);

    /* Stop accepting; let requests already started run to completion, for
     * at most the grace period.  libmicrohttpd notices some vanished
     * clients (half-closed mid-body) only at the connection timeout, so
     * once nothing has progressed for a second and nothing is running,
     * what is left is stalled and is cut rather than waited for. */
    MHD_socket ls = MHD_quiesce_daemon(d);
    const int64_t t0 = now_us(), grace = (int64_t)cfg->shutdown_grace * 1000000;
    atomic_store(&last_activity, t0);
    while (atomic_load(&in_flight) > 0 && now_us() - t0 < grace) {
        if (atomic_load(&in_handler) == 0 && atomic_load(&suspended) == 0 &&
            now_us() - atomic_load(&last_activity) > 1000000)
            break;
        struct timespec nap = {0, 10 * 1000 * 1000};
        nanosleep(&nap, NULL);
    }
    int left = atomic_load(&in_flight);
    const int clean = stop_workers();
    if (clean) {
        /* the 503s of stop_workers on their way (bounded: --grace spent) */
        const int64_t t1 = now_us();
        while (atomic_load(&in_flight) > 0 && now_us() - t1 < 200000) {
            struct timespec nap = {0, 10 * 1000 * 1000};
            nanosleep(&nap, NULL);
        }
        pthread_mutex_lock(&pool_mu);
        daemon_gone = 1;
        pthread_mutex_unlock(&pool_mu);
        MHD_stop_daemon(d);
    } else {
        /* libmicrohttpd must not be stopped with a suspended connection;
         * the process exits with it. */
        pthread_mutex_lock(&pool_mu);
        daemon_gone = 1;
        pthread_mutex_unlock(&pool_mu);
        server_log_msg("attnd: a computation did not stop; exiting anyway");
    }
    if (ls != MHD_INVALID_SOCKET)
        close(ls);
    server_tls_free();
    server_auth_free();
    server_log_stop();          /* writes what is held; later lines at once */
    if (left > 0)
        server_log_msg("attnd: stopped, %d stalled request%s cut", left,
                       left == 1 ? "" : "s");
    else
        server_log_msg("attnd: stopped");
    return 0;
}
