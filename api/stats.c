/* stats.c -- per-model inference statistics (Triton's statistics
 * extension), for native and v2 requests alike.
 *
 * The hot path is a handful of relaxed atomic adds on the model's own
 * cache line and four monotonic clock reads; nothing is locked.  Every
 * successful request is one inference and one execution (attnd batches
 * nothing itself, so Triton's batch size is 1), so one success counter
 * stands for inference_count, execution_count and the count of success,
 * queue, compute_input, compute_infer and compute_output; only their
 * nanoseconds are kept apart.  A reader may see one request's counters
 * half added: each number is exact, their sum at one instant is not. */
#include "model.h"
#include "v2_internal.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define STATS_MAX_MODELS API_MAX_MODELS

typedef struct model_stats {
    _Atomic uint64_t ok, ok_ns;         /* successful requests, their time */
    _Atomic uint64_t input_ns, infer_ns, output_ns;
    _Atomic uint64_t fail, fail_ns;
    _Atomic uint64_t last_ms;           /* wall clock, ms since the epoch */
} __attribute__((aligned(64))) model_stats;

static model_stats stats[STATS_MAX_MODELS];

/* The current request's marks on this thread: handler start, compute
 * start and end (0 = compute not reached). */
static _Thread_local struct { int64_t t0, t1, t2; } mark;

static int64_t mono_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

void api_stats_begin(void)
{
    mark.t0 = mono_ns();
    mark.t1 = mark.t2 = 0;
}

void api_stats_compute(int end)
{
    if (end)
        mark.t2 = mono_ns();
    else
        mark.t1 = mono_ns();
}

static void add(_Atomic uint64_t *a, int64_t v)
{
    atomic_fetch_add_explicit(a, (uint64_t)(v > 0 ? v : 0),
                              memory_order_relaxed);
}

void api_stats_end(const api_model *m, int status)
{
    const int i = (int)(m - api_models);
    if (i < 0 || i >= STATS_MAX_MODELS)
        return;
    model_stats *s = &stats[i];
    const int64_t t3 = mono_ns();
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME_COARSE, &wall);
    atomic_store_explicit(&s->last_ms, (uint64_t)wall.tv_sec * 1000 +
                          (uint64_t)wall.tv_nsec / 1000000,
                          memory_order_relaxed);
    if (status != 200 || !mark.t2) {
        add(&s->fail, 1);
        add(&s->fail_ns, t3 - mark.t0);
        return;
    }
    add(&s->input_ns, mark.t1 - mark.t0);
    add(&s->infer_ns, mark.t2 - mark.t1);
    add(&s->output_ns, t3 - mark.t2);
    add(&s->ok_ns, t3 - mark.t0);
    add(&s->ok, 1);
}

/* ==== GET /v2/models[/<m>[/versions/1]]/stats ==== */

static uint64_t get(_Atomic uint64_t *a)
{
    return atomic_load_explicit(a, memory_order_relaxed);
}

static void duration(jsonw *w, const char *name, uint64_t count, uint64_t ns)
{
    char buf[96];
    jw_raw(w, buf, (size_t)snprintf(buf, sizeof buf,
                                    "\"%s\":{\"count\":%llu,\"ns\":%llu}",
                                    name, (unsigned long long)count,
                                    (unsigned long long)ns));
}

/* One $model_stat, in Triton's field order. */
static void model_stat(jsonw *w, const api_model *m)
{
    model_stats *s = &stats[m - api_models];
    const uint64_t ok = get(&s->ok);
    const uint64_t in = get(&s->input_ns), inf = get(&s->infer_ns),
                   out = get(&s->output_ns);
    char buf[160];
    jw_lit(w, "{\"name\":\"");
    jw_lit(w, m->name);
    jw_raw(w, buf, (size_t)snprintf(buf, sizeof buf, "\",\"version\":\""
                                    API_V2_VERSION "\",\"last_inference\":%llu,"
                                    "\"inference_count\":%llu,"
                                    "\"execution_count\":%llu,"
                                    "\"inference_stats\":{",
                                    (unsigned long long)get(&s->last_ms),
                                    (unsigned long long)ok,
                                    (unsigned long long)ok));
    duration(w, "success", ok, get(&s->ok_ns));
    jw_raw(w, ",", 1);
    duration(w, "fail", get(&s->fail), get(&s->fail_ns));
    jw_raw(w, ",", 1);
    duration(w, "queue", ok, 0);
    jw_raw(w, ",", 1);
    duration(w, "compute_input", ok, in);
    jw_raw(w, ",", 1);
    duration(w, "compute_infer", ok, inf);
    jw_raw(w, ",", 1);
    duration(w, "compute_output", ok, out);
    jw_raw(w, ",", 1);
    duration(w, "cache_hit", 0, 0);
    jw_raw(w, ",", 1);
    duration(w, "cache_miss", 0, 0);
    jw_lit(w, "},\"response_stats\":{},\"batch_stats\":[");
    if (ok) {
        jw_lit(w, "{\"batch_size\":1,");
        duration(w, "compute_input", ok, in);
        jw_raw(w, ",", 1);
        duration(w, "compute_infer", ok, inf);
        jw_raw(w, ",", 1);
        duration(w, "compute_output", ok, out);
        jw_lit(w, "}");
    }
    jw_lit(w, "],\"memory_usage\":[]}");
}

void api_v2_stats(const char *model, api_response *res)
{
    const api_model *m = model ? api_model_find(model) : NULL;
    if (model && !m) {
        api_v2_model_metadata(model, res);      /* its 404 */
        return;
    }
    jsonw w;
    jw_init(&w);
    jw_lit(&w, "{\"model_stats\":[");
    for (int i = 0; i < api_nmodels && i < STATS_MAX_MODELS; i++) {
        if (m && m != &api_models[i])
            continue;
        if (!m && i)
            jw_raw(&w, ",", 1);
        model_stat(&w, &api_models[i]);
    }
    jw_lit(&w, "]}");
    v2_respond(res, 200, &w, "application/json", 0);
}

void api_v2_all_stats(api_response *res)
{
    api_v2_stats(NULL, res);
}
