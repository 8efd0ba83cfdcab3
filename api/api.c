/* api.c -- what every endpoint shares: errors, body parsing, config. */
#include "api.h"
#include "internal.h"
#include "model.h"

#include <malloc.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

static api_config config;
static atomic_int computing;

void api_config_defaults(api_config *cfg)
{
    cfg->max_elements = API_DEFAULT_MAX_ELEMENTS;
    cfg->max_total_elements =
        API_TOTAL_PER_ELEMENTS * API_DEFAULT_MAX_ELEMENTS;
    cfg->max_batch = 4096;
    cfg->max_seq = 65536;
    cfg->max_work = API_DEFAULT_MAX_WORK;
    cfg->max_head_size = 8192;
    cfg->max_depth = 32;
    cfg->omp_threads = 1;
}

/* Jansson's own report of a failed allocation is unreliable (an empty
 * error, or a syntax error when a string could not be copied), so its
 * allocations go through here and a failure is remembered per thread. */
static _Thread_local int json_alloc_failed;

static void *json_alloc(size_t n)
{
    void *p = malloc(n);
    if (!p)
        json_alloc_failed = 1;
    return p;
}

void api_json_alloc_watch(void)
{
    json_alloc_failed = 0;
}

int api_json_alloc_failed(void)
{
    return json_alloc_failed;
}

/* Defaults until api_init, so the handlers are usable from tests as is;
 * the allocator is set before any thread can touch Jansson. */
__attribute__((constructor)) static void config_init(void)
{
    api_config_defaults(&config);
    json_set_alloc_funcs(json_alloc, free);
}

void api_init(const api_config *cfg)
{
    config = *cfg;
    /* A fixed mmap threshold: glibc's default one rises to the largest
     * block freed (up to 32 MiB), after which request bodies and answers
     * come from the arenas and stay resident after the request
     * (docs/operations.md, "Memory"). */
    mallopt(M_MMAP_THRESHOLD, API_MMAP_THRESHOLD);
    if (config.omp_threads < 1)
        config.omp_threads = 1;
    /* Jansson seeds its hash function lazily; do it before threads race. */
    json_object_seed(0);
}

/* ==== errors ==== */

void api_fail(api_error *e, int status, const char *code, const char *path,
              const char *fmt, ...)
{
    if (e->status)
        return;                 /* the first error wins */
    e->status = status;
    e->code = code;
    e->has_path = path != NULL;
    snprintf(e->path, sizeof e->path, "%s", path ? path : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
}

/* The last resort when even the error body cannot be allocated: a static
 * text, marked so the server does not free it. */
static const char oom_body[] =
    "{\"error\":{\"status\":503,\"code\":\"out_of_memory\",\"message\":"
    "\"the server is out of memory; retry later or send a smaller "
    "request\"}}";

static void set_static(api_response *res, int status, const char *body,
                       size_t len)
{
    res->status = status;
    res->content_type = "application/json";
    res->body = (char *)body;
    res->len = len;
    res->is_static = 1;
}

int api_utf8_seq(const unsigned char *p, const unsigned char *end)
{
    const unsigned char c = *p;
    if (c < 0x80)
        return 1;
    const int n = (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3
                : (c & 0xf8) == 0xf0 ? 4 : 0;
    if (!n || end - p < n)
        return 0;
    unsigned cp = c & (0x7f >> n);
    for (int i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    /* no overlong forms, surrogates or code points past U+10FFFF */
    static const unsigned min[5] = {0, 0, 0x80, 0x800, 0x10000};
    return cp >= min[n] && cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff)
               ? n : 0;
}

/* Replaces, in place, every byte of s that does not belong to a complete,
 * valid UTF-8 sequence with '?'.  Messages quote the client's bytes and
 * Jansson's error text, both of which can end mid-character (Jansson says
 * "near '\xc3'"; "%.60s" cuts a key), and Jansson refuses to build a
 * string of invalid UTF-8. */
static void utf8_repair(char *s)
{
    unsigned char *p = (unsigned char *)s, *end = p + strlen(s);
    while (p < end) {
        const int n = api_utf8_seq(p, end);
        if (!n)
            *p = '?';
        p += n ? n : 1;
    }
}

void api_error_response(api_response *res, const api_error *e_in)
{
    api_error copy = *e_in;
    const api_error *e = &copy;
    utf8_repair(copy.message);
    utf8_repair(copy.path);
    memset(res, 0, sizeof *res);
    /* Any failed allocation gives the static 503: an error body missing
     * its path would mislead more than it helps.  The flag matters for
     * json_dumps too: Jansson 2.14 returns text with a key silently dropped
     * when an allocation fails mid-dump (found by tests/unit/test_oom.c). */
    json_alloc_failed = 0;
    json_t *err = json_pack("{s:i, s:s, s:s}", "status", e->status,
                            "code", e->code, "message", e->message);
    int ok = err != NULL;
    if (ok && e->has_path)
        ok = json_object_set_new(err, "path", json_string(e->path)) == 0;
    if (ok && e->has_position)
        ok = json_object_set_new(err, "line", json_integer(e->line)) == 0 &&
             json_object_set_new(err, "column", json_integer(e->column)) == 0 &&
             json_object_set_new(err, "position",
                                 json_integer(e->position)) == 0;
    json_t *root = ok ? json_pack("{s:o}", "error", err) : NULL;
    if (!root && !ok)
        json_decref(err);
    char *text = root ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    if (text && json_alloc_failed) {
        free(text);
        text = NULL;
    }
    if (!text) {
        set_static(res, 503, oom_body, sizeof oom_body - 1);
        res->code = "out_of_memory";
        return;
    }
    res->status = e->status;
    res->code = e->code;
    res->content_type = "application/json";
    res->body = text;
    res->len = strlen(text);
}

void api_simple_error(api_response *res, int status, const char *code,
                      const char *message)
{
    api_error e = {0};
    api_fail(&e, status, code, NULL, "%s", message);
    api_error_response(res, &e);
}

void api_oom(api_response *res)
{
    api_simple_error(res, 503, "out_of_memory",
                     "the server could not allocate memory for this "
                     "request; retry later or send a smaller request");
}

void api_respond_json(api_response *res, jsonw *w)
{
    memset(res, 0, sizeof *res);
    size_t len = 0;
    char *body = jw_take(w, &len);
    if (!body) {
        api_oom(res);
        return;
    }
    res->status = 200;
    res->content_type = "application/json";
    res->body = body;
    res->len = len;
}

void api_response_free(api_response *res)
{
    if (!res->is_static)
        free(res->body);
    memset(res, 0, sizeof *res);
}

void api_healthz(api_response *res)
{
    static const char ok[] = "{\"status\":\"ok\"}";
    set_static(res, 200, ok, sizeof ok - 1);
}

/* ==== request bodies ==== */

/* One pass before Jansson: 1 if the nesting passes max (Jansson's own
 * limit is a compile-time 2048 and costs a recursion frame per level), 2 if
 * there is a NUL byte (Jansson 2.14 skips one right after a number, so
 * [1<NUL>] would read as [1]); the offending position goes to *at. */
static int prescan(const char *body, size_t len, int max, size_t *at)
{
    int depth = 0, in_string = 0;
    for (size_t i = 0; i < len; i++) {
        const char ch = body[i];
        if (ch == '\0') {
            *at = i;
            return 2;
        }
        if (in_string) {
            if (ch == '\\')
                i++;
            else if (ch == '"')
                in_string = 0;
        } else if (ch == '"') {
            in_string = 1;
        } else if (ch == '[' || ch == '{') {
            if (++depth > max) {
                *at = i;
                return 1;
            }
        } else if (ch == ']' || ch == '}') {
            depth--;
        }
    }
    return 0;
}

json_t *api_json_loadb(const char *text, size_t len)
{
    json_alloc_failed = 0;
    json_t *j = json_loadb(text, len, 0, NULL);
    if (j && json_alloc_failed) {   /* maybe with a value missing */
        json_decref(j);
        j = NULL;
    }
    return j;
}

int api_parse_prescan(const char *body, size_t len, api_error *e)
{
    size_t at;
    const int bad = prescan(body, len, config.max_depth, &at);
    if (bad) {
        /* line and column of byte `at`, 1-based as Jansson's */
        int line = 1;
        size_t bol = 0;
        for (size_t i = 0; i < at; i++)
            if (body[i] == '\n') {
                line++;
                bol = i + 1;
            }
        e->line = line;
        e->column = (int)(at - bol) + 1;
        e->position = (int)at;
    }
    if (bad == 2) {
        api_fail(e, 400, "invalid_json", NULL,
                 "malformed JSON at line %d, column %d: a NUL byte",
                 e->line, e->column);
        e->has_position = 1;
        return 0;
    }
    if (bad == 1) {
        api_fail(e, 400, "too_deep", NULL,
                 "the body nests arrays/objects more than %d deep (line %d, "
                 "column %d); attnd's requests need at most 4",
                 config.max_depth, e->line, e->column);
        e->has_position = 1;
        return 0;
    }
    return 1;
}

json_t *api_parse_body(const char *body, size_t len, api_error *e)
{
    return api_parse_bounded(body, len, NULL, e);
}

json_t *api_parse_jansson(const char *body, size_t len, api_error *e)
{
    json_error_t jerr;
    if (!api_parse_prescan(body, len, e))
        return NULL;
    /* DECODE_ANY: a body like `3` is valid JSON of the wrong type (422),
     * not unparseable (400).  Duplicate keys are refused: which one would
     * win is undefined elsewhere. */
    json_alloc_failed = 0;
    json_t *root = json_loadb(body, len,
                              JSON_DECODE_ANY | JSON_REJECT_DUPLICATES,
                              &jerr);
    if (root && json_alloc_failed) {
        /* Jansson can return a tree with a value silently missing when an
         * allocation failed (found by tests/unit/test_oom.c: /randn
         * answered 200 with other numbers). */
        json_decref(root);
        root = NULL;
    }
    if (!root) {
        if (json_alloc_failed ||
            json_error_code(&jerr) == json_error_out_of_memory) {
            api_fail(e, 503, "out_of_memory", NULL,
                     "the server ran out of memory parsing the body");
            return NULL;
        }
        if (len == 0)
            api_fail(e, 400, "invalid_json", NULL,
                     "the request body is empty; send a JSON object");
        else
            api_fail(e, 400, "invalid_json", NULL,
                     "malformed JSON at line %d, column %d: %s",
                     jerr.line, jerr.column, jerr.text);
        e->has_position = 1;
        e->line = jerr.line;
        e->column = jerr.column;
        e->position = jerr.position;
        return NULL;
    }
    if (!json_is_object(root)) {
        api_fail(e, 422, "wrong_type", "",
                 "the request body must be a JSON object, not %s",
                 codec_type_name(root));
        json_decref(root);
        return NULL;
    }
    return root;
}

int64_t api_max_elements(void)
{
    return config.max_elements;
}

int api_max_depth(void)
{
    return config.max_depth;
}

int api_read_tensor(const json_t *v, const char *name, int rank,
                    engine_tensor *t, api_error *e)
{
    memset(t, 0, sizeof *t);
    t->rank = rank;
    if (!codec_tensor_shape(v, name, rank, t->dim, e))
        return 0;
    return api_check_tensor_size(t, name, e);
}

int api_check_tensor_size(const engine_tensor *t, const char *name,
                          api_error *e)
{
    if (engine_numel(t) > config.max_elements) {
        api_fail(e, 413, "too_large", name,
                 "%s has %lld elements, over this server's limit of %lld "
                 "(--max-elements)", name, (long long)engine_numel(t),
                 (long long)config.max_elements);
        return 0;
    }
    return 1;
}

int api_check_size(int64_t n, const char *what, const char *path,
                   api_error *e)
{
    if (n <= config.max_elements)
        return 1;
    api_fail(e, 413, "too_large", path,
             "%s = %lld is over this server's limit of %lld elements per "
             "tensor (--max-elements); send a smaller batch or sequence",
             what, (long long)n, (long long)config.max_elements);
    return 0;
}

int api_check_dims(int64_t B, int64_t T, int64_t hs, const char *bpath,
                   const char *tpath, const char *hpath, api_error *e)
{
    static const char *const what[3] = {"batch size B", "sequence length T",
                                        "head_size"};
    static const char *const flag[3] = {"--max-batch", "--max-seq",
                                        "--max-head-size"};
    const int64_t v[3] = {B, T, hs};
    const int64_t max[3] = {config.max_batch, config.max_seq,
                            config.max_head_size};
    const char *const path[3] = {bpath, tpath, hpath};
    for (int i = 0; i < 3; i++)
        if (v[i] > max[i]) {
            api_fail(e, 413, "dimension_too_large", path[i],
                     "%s = %lld is over this server's limit of %lld (%s)",
                     what[i], (long long)v[i], (long long)max[i], flag[i]);
            return 0;
        }
    return 1;
}

int api_check_seq(int64_t S, const char *what, const char *path,
                  api_error *e)
{
    if (S <= config.max_seq)
        return 1;
    api_fail(e, 413, "dimension_too_large", path,
             "%s = %lld is over this server's limit of %lld (--max-seq)",
             what, (long long)S, (long long)config.max_seq);
    return 0;
}

int api_check_heads(int64_t H, const char *path, api_error *e)
{
    if (H <= config.max_head_size)
        return 1;
    api_fail(e, 413, "dimension_too_large", path,
             "num_heads = %lld is over this server's limit of %lld "
             "(--max-head-size bounds num_heads too)", (long long)H,
             (long long)config.max_head_size);
    return 0;
}

int api_check_total(int64_t n, api_error *e)
{
    if (n <= config.max_total_elements)
        return 1;
    api_fail(e, 413, "request_too_large", NULL,
             "this request needs %lld floats in all (inputs, intermediates "
             "and results), over this server's limit of %lld "
             "(--max-total-elements)", (long long)n,
             (long long)config.max_total_elements);
    return 0;
}

int api_check_work(double madds, api_error *e)
{
    if (madds <= (double)config.max_work)
        return 1;
    api_fail(e, 413, "work_too_large", NULL,
             "this request needs %.4g multiply-adds, over this server's "
             "limit of %.4g (--max-work, about a second of one core); send a "
             "smaller batch, sequence, C or head_size", madds,
             (double)config.max_work);
    return 0;
}

/* ==== threads and cancellation ==== */

static _Thread_local const volatile int *cancel_flag;

void api_cancel_watch(const volatile int *flag)
{
    cancel_flag = flag;
}

const volatile int *api_cancel_flag(void)
{
    return cancel_flag;
}

static _Thread_local double defer_madds;
static _Thread_local int64_t defer_floats;

void api_defer_above(double madds, int64_t floats)
{
    defer_madds = madds;
    defer_floats = floats;
}

int api_should_defer(const api_cost *k)
{
    return (defer_madds > 0 || defer_floats > 0) &&
           (k->madds > defer_madds || api_cost_floats(k) > defer_floats);
}

int api_threads_for_text(int64_t numbers)
{
    /* Writing a float costs ~80 ns, about what 60 multiply-adds do. */
    return api_threads_for((double)numbers * 60.0);
}

void api_compute_begin(void)
{
    atomic_fetch_add(&computing, 1);
}

void api_compute_end(void)
{
    atomic_fetch_sub(&computing, 1);
}

int api_max_threads(void)
{
    return config.omp_threads;
}

int api_threads_for(double work)
{
    /* Below ~4M multiply-adds a team costs more to wake than it saves.
     * When more than one request is computing, the HTTP pool already keeps
     * the cores busy; a team per request would oversubscribe them. */
    if (config.omp_threads <= 1 || work < 4e6)
        return 1;
    if (atomic_load(&computing) > 1)
        return 1;
    return config.omp_threads;
}
