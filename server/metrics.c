/* metrics.c -- GET /metrics (Prometheus text format 0.0.4) and GET /readyz.
 *
 * Every series has a fixed label set: the routes are route.c's fixed table
 * (anything else is route="other"), methods and statuses are short fixed
 * lists, and the rejection reasons are the limit error codes.  So the
 * counters are plain arrays of atomics, bumped with relaxed atomic adds
 * from request_completed (no lock, no allocation on the request path), and
 * read the same way when /metrics is rendered. */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server.h"

typedef _Atomic uint64_t counter;

#define ADD(c, n) atomic_fetch_add_explicit(&(c), (uint64_t)(n), \
                                            memory_order_relaxed)
#define GET(c) atomic_load_explicit(&(c), memory_order_relaxed)

/* Route slots: one per table entry, then "other" (unknown paths). */
#define NSLOTS (SERVER_MAX_ROUTES + 1)

static const char *const methods[] = {"GET", "HEAD", "POST", "PUT", "DELETE",
                                      "PATCH", "OPTIONS", "other"};
#define NMETHODS (sizeof methods / sizeof methods[0])

/* Every status attnd answers with, 0 for "no response was sent" (the
 * client went away, or the request was cut mid-body and logged as 408 or
 * 503 with nothing sent), and "other" as a catch-all. */
static const int statuses[] = {0,   200, 204, 304, 400, 401, 404, 405,
                               408, 413, 415, 422, 500, 503};
#define NSTATUSES (sizeof statuses / sizeof statuses[0])
#define OTHER_STATUS NSTATUSES

/* Latency buckets, in microseconds and as Prometheus "le" labels. */
static const int64_t bucket_us[] = {100,    250,    500,     1000,    2500,
                                    5000,   10000,  25000,   50000,   100000,
                                    250000, 500000, 1000000, 2500000, 5000000,
                                    10000000};
static const char *const bucket_le[] = {
    "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005",
    "0.01",   "0.025",   "0.05",   "0.1",   "0.25",   "0.5",
    "1",      "2.5",     "5",      "10"};
#define NBUCKETS (sizeof bucket_us / sizeof bucket_us[0])

/* The limit (and resource) errors counted by attnd_rejected_total. */
static const char *const reasons[] = {
    "body_too_large",     /* 413: --max-body */
    "too_large",          /* 413: --max-elements */
    "request_too_large",  /* 413: --max-total-elements */
    "work_too_large",     /* 413: --max-work */
    "body_too_complex",   /* 413: a body whose parse tree would pass 2x it */
    "dimension_too_large",/* 413: --max-batch/--max-seq/--max-head-size */
    "too_deep",           /* 400: --max-depth */
    "request_timeout",    /* body slower than --request-timeout (log: 408) */
    "connection_timeout", /* a request cut by --timeout (idle connection) */
    "connection_limit",   /* connection closed at --max-per-ip (or the
                             total limit, in a race libmicrohttpd reports
                             the same way) */
    "out_of_memory",      /* 503 */
    "bad_request",        /* 400: framing refused by attnd (a %00 path,
                             conflicting lengths, ...) or libmicrohttpd's
                             own (not counted: no request exists) */
    "header_timeout",     /* connection cut: no complete head in time
                             (--header-timeout; keep-alive: --timeout) */
    "send_timeout",       /* a client that stopped reading (--send-timeout) */
    "compute_timeout",    /* 503: --compute-timeout */
    "client_gone",        /* a computation stopped: its client left */
    "shutting_down",      /* 503: cut by shutdown after --grace */
    "memory_budget",      /* 503: --max-memory spent */
    "idle_closed",        /* an idle keep-alive connection closed for a new
                             client at --max-connections */
};
#define NREASONS (sizeof reasons / sizeof reasons[0])

static struct {
    counter requests[NSLOTS][NMETHODS][NSTATUSES + 1];
    counter buckets[NSLOTS][NBUCKETS + 1];  /* not cumulative; last = +Inf */
    counter duration_us[NSLOTS];
    counter bytes_in[NSLOTS], bytes_out[NSLOTS];
    counter rejected[NREASONS];
} m;

static _Atomic int in_flight;
static _Atomic int connections, computing;
static atomic_int draining;
static char mhd_version[32] = "unknown";
static int threads;
static int64_t start_time;      /* unix seconds */

void server_metrics_init(const char *mhd_ver, int nthreads)
{
    if (mhd_ver)
        snprintf(mhd_version, sizeof mhd_version, "%s", mhd_ver);
    threads = nthreads;
    start_time = (int64_t)time(NULL);
}

void server_metrics_begin(void)
{
    atomic_fetch_add_explicit(&in_flight, 1, memory_order_relaxed);
}

static size_t slot_of(const server_route *rt)
{
    if (!rt)
        return SERVER_MAX_ROUTES;
    size_t i = (size_t)(rt - server_route_at(0));
    return i < SERVER_MAX_ROUTES ? i : SERVER_MAX_ROUTES;
}

static size_t method_of(const char *method)
{
    for (size_t i = 0; i + 1 < NMETHODS; i++)
        if (strcmp(method, methods[i]) == 0)
            return i;
    return NMETHODS - 1;
}

static size_t status_of(int status)
{
    for (size_t i = 0; i < NSTATUSES; i++)
        if (statuses[i] == status)
            return i;
    return OTHER_STATUS;
}

void server_metrics_reject(const char *reason)
{
    for (size_t i = 0; reason && i < NREASONS; i++)
        if (strcmp(reason, reasons[i]) == 0) {
            ADD(m.rejected[i], 1);
            return;
        }
}

void server_metrics_end(const server_route *rt, const char *method,
                        int status, const char *code, uint64_t bytes_in,
                        uint64_t bytes_out, int64_t duration_us)
{
    const size_t s = slot_of(rt);
    ADD(m.requests[s][method_of(method)][status_of(status)], 1);
    if (duration_us < 0)
        duration_us = 0;
    size_t b = 0;
    while (b < NBUCKETS && duration_us > bucket_us[b])
        b++;
    ADD(m.buckets[s][b], 1);
    ADD(m.duration_us[s], duration_us);
    ADD(m.bytes_in[s], bytes_in);
    ADD(m.bytes_out[s], bytes_out);
    if (code)
        server_metrics_reject(code);
    atomic_fetch_sub_explicit(&in_flight, 1, memory_order_relaxed);
}

void server_metrics_connections(int delta)
{
    atomic_fetch_add_explicit(&connections, delta, memory_order_relaxed);
}

void server_metrics_computing(int delta)
{
    atomic_fetch_add_explicit(&computing, delta, memory_order_relaxed);
}

void server_set_draining(void)
{
    atomic_store(&draining, 1);
}

int server_draining(void)
{
    return atomic_load(&draining);
}

/* ==== rendering ==== */

static const char *route_label(size_t s)
{
    return s < server_route_count() ? server_route_at(s)->path : "other";
}

/* The slots that can have series: the table's routes, then "other". */
static int slot_used(size_t s)
{
    return s < server_route_count() || s == SERVER_MAX_ROUTES;
}

/* One counter per route, with its HELP and TYPE lines. */
static void write_route_counter(FILE *f, const char *name, const char *help,
                                const counter *per_route)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
    for (size_t s = 0; s < NSLOTS; s++)
        if (slot_used(s))
            fprintf(f, "%s{route=\"%s\"} %llu\n", name, route_label(s),
                    (unsigned long long)GET(per_route[s]));
}

static void render(FILE *f, int versions)
{
    fprintf(f,
            "# HELP attnd_up 1 while the server is running.\n"
            "# TYPE attnd_up gauge\n"
            "attnd_up 1\n");
    /* Versions tell an attacker which advisories apply: only when asked
     * for (--metrics-versions) or to a request with an API key. */
    if (versions)
        fprintf(f,
            "# HELP attnd_build_info The attnd and libmicrohttpd versions.\n"
            "# TYPE attnd_build_info gauge\n"
            "attnd_build_info{version=\"%s\",libmicrohttpd=\"%s\"} 1\n",
            ATTND_VERSION, mhd_version);
    fprintf(f,
            "# HELP attnd_start_time_seconds When the server started, in "
            "seconds since the epoch.\n"
            "# TYPE attnd_start_time_seconds gauge\n"
            "attnd_start_time_seconds %lld\n"
            "# HELP attnd_threads HTTP threads, and compute workers "
            "(--threads).\n"
            "# TYPE attnd_threads gauge\n"
            "attnd_threads %d\n"
            "# HELP attnd_ready 1 while serving, 0 once SIGTERM/SIGINT "
            "arrived (GET /readyz answers 503).\n"
            "# TYPE attnd_ready gauge\n"
            "attnd_ready %d\n",
            (long long)start_time, threads,
            !server_draining());

    fprintf(f, "# HELP attnd_requests_in_flight Requests begun and not yet "
               "completed (this one included).\n"
               "# TYPE attnd_requests_in_flight gauge\n"
               "attnd_requests_in_flight %d\n",
            atomic_load_explicit(&in_flight, memory_order_relaxed));
    fprintf(f, "# HELP attnd_connections_open Open client connections.\n"
               "# TYPE attnd_connections_open gauge\n"
               "attnd_connections_open %d\n"
               "# HELP attnd_requests_computing Handlers running on the "
               "compute workers.\n"
               "# TYPE attnd_requests_computing gauge\n"
               "attnd_requests_computing %d\n"
               "# HELP attnd_memory_reserved_bytes Bytes reserved in the "
               "memory budget by requests in progress.\n"
               "# TYPE attnd_memory_reserved_bytes gauge\n"
               "attnd_memory_reserved_bytes %llu\n"
               "# HELP attnd_memory_budget_bytes The memory budget "
               "(--max-memory).\n"
               "# TYPE attnd_memory_budget_bytes gauge\n"
               "attnd_memory_budget_bytes %llu\n",
            atomic_load_explicit(&connections, memory_order_relaxed),
            atomic_load_explicit(&computing, memory_order_relaxed),
            (unsigned long long)server_budget_reserved(),
            (unsigned long long)server_budget_limit());

    fprintf(f, "# HELP attnd_requests_total Completed requests by route, "
               "method and status (status 0: no response was sent).\n"
               "# TYPE attnd_requests_total counter\n");
    for (size_t s = 0; s < NSLOTS; s++)
        for (size_t k = 0; slot_used(s) && k < NMETHODS; k++)
            for (size_t st = 0; st <= NSTATUSES; st++) {
                uint64_t n = GET(m.requests[s][k][st]);
                if (!n)
                    continue;
                char status[8];
                if (st == OTHER_STATUS)
                    snprintf(status, sizeof status, "other");
                else
                    snprintf(status, sizeof status, "%d", statuses[st]);
                fprintf(f, "attnd_requests_total{route=\"%s\",method=\"%s\","
                           "status=\"%s\"} %llu\n",
                        route_label(s), methods[k], status,
                        (unsigned long long)n);
            }

    fprintf(f, "# HELP attnd_request_duration_seconds Time from the request "
               "headers to the end of the response, by route.\n"
               "# TYPE attnd_request_duration_seconds histogram\n");
    for (size_t s = 0; s < NSLOTS; s++) {
        if (!slot_used(s))
            continue;
        uint64_t cum = 0;
        for (size_t b = 0; b <= NBUCKETS; b++) {
            cum += GET(m.buckets[s][b]);
            fprintf(f, "attnd_request_duration_seconds_bucket{route=\"%s\","
                       "le=\"%s\"} %llu\n",
                    route_label(s), b < NBUCKETS ? bucket_le[b] : "+Inf",
                    (unsigned long long)cum);
        }
        uint64_t us = GET(m.duration_us[s]);
        fprintf(f, "attnd_request_duration_seconds_sum{route=\"%s\"} "
                   "%llu.%06llu\n"
                   "attnd_request_duration_seconds_count{route=\"%s\"} "
                   "%llu\n",
                route_label(s), (unsigned long long)(us / 1000000),
                (unsigned long long)(us % 1000000), route_label(s),
                (unsigned long long)cum);
    }

    write_route_counter(f, "attnd_request_bytes_total",
                        "Request body bytes received, by route.", m.bytes_in);
    write_route_counter(f, "attnd_response_bytes_total",
                        "Response body bytes sent (HEAD: 0), by route.",
                        m.bytes_out);

    fprintf(f, "# HELP attnd_rejected_total Requests and connections refused "
               "by a limit, by reason (the error code, or how the "
               "connection was cut).\n"
               "# TYPE attnd_rejected_total counter\n");
    for (size_t i = 0; i < NREASONS; i++)
        fprintf(f, "attnd_rejected_total{reason=\"%s\"} %llu\n", reasons[i],
                (unsigned long long)GET(m.rejected[i]));
}

static atomic_int show_versions;

void server_metrics_show_versions(int on)
{
    atomic_store(&show_versions, on);
}

void server_metrics_get(api_response *res)
{
    server_metrics_render(res, atomic_load(&show_versions));
}

void server_metrics_render(api_response *res, int versions)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) {
        api_simple_error(res, 503, "out_of_memory",
                         "the server could not allocate memory for this "
                         "request; retry later");
        return;
    }
    render(f, versions);
    if (fclose(f) != 0 || !text) {
        free(text);
        api_simple_error(res, 503, "out_of_memory",
                         "the server could not allocate memory for this "
                         "request; retry later");
        return;
    }
    memset(res, 0, sizeof *res);
    res->status = 200;
    res->content_type = "text/plain; version=0.0.4; charset=utf-8";
    res->body = text;
    res->len = len;
}

void server_readyz(api_response *res)
{
    static const char ready[] = "{\"status\":\"ready\"}";
    static const char drain[] = "{\"status\":\"draining\"}";
    const int d = server_draining();
    memset(res, 0, sizeof *res);
    res->status = d ? 503 : 200;
    res->content_type = "application/json";
    res->body = (char *)(d ? drain : ready);
    res->len = d ? sizeof drain - 1 : sizeof ready - 1;
    res->is_static = 1;
}
