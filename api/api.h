/* api.h -- attnd's contract: JSON request bodies <-> engine tensors.
 *
 * Every handler takes the raw request body and fills an api_response whose
 * body is a malloc'd JSON text the caller frees.  Handlers never fail
 * without a response: bad input becomes a 4xx JSON error naming the
 * offending value's path, allocation failure a 503.  No sockets here.
 */
#ifndef ATTND_API_H
#define ATTND_API_H

#include <stddef.h>
#include <stdint.h>


/* Limits on what one request may make the server hold, each refused with
 * its own error before anything is allocated. */
typedef struct api_config {
    int64_t max_elements;       /* any one tensor: input, generated, result */
    int64_t max_total_elements; /* all the floats of one request together */
    int64_t max_batch;          /* B */
    int64_t max_seq;            /* T */
    int64_t max_head_size;      /* head_size */
    int64_t max_work;           /* multiply-adds of one request */
    int max_depth;              /* JSON nesting of the body */
    int omp_threads;            /* largest OpenMP team a request may use */
} api_config;

#define API_DEFAULT_MAX_ELEMENTS ((int64_t)1 << 25)

/* The default of max_work: about a second of one core of this engine
 * (10-17 G multiply-adds/s measured on a Zen 3 core in make bench). */
#define API_DEFAULT_MAX_WORK ((int64_t)10000000000)

/* The default of max_total_elements is this many times max_elements
 * (whatever --max-elements says). */
#define API_TOTAL_PER_ELEMENTS 4

/* The documented defaults (see attnd --help). */
void api_config_defaults(api_config *cfg);

/* Called once, before any thread serves requests. */
void api_init(const api_config *cfg);

typedef struct api_response {
    int status;
    const char *content_type;   /* static string */
    char *body;                 /* malloc'd, unless is_static */
    size_t len;
    int is_static;              /* body is static storage: never free it */
    const char *code;           /* an error's code (static string), set by
                                   api_error_response; NULL otherwise */
    size_t json_len;            /* v2 binary outputs: the body is this many
                                   bytes of JSON, then raw tensor data (the
                                   Inference-Header-Content-Length); 0 = the
                                   body is all of one type */
} api_response;

/* Frees what a handler put in res (safe on a zeroed res). */
void api_response_free(api_response *res);

/* A request failure: everything the client needs to act on it.  The first
 * error found wins (api_fail ignores later ones). */
typedef struct api_error {
    int status;                 /* 0 = no error */
    const char *code;           /* stable machine code, e.g. "ragged_array" */
    char message[448];
    char path[160];             /* "" = whole body; see has_path */
    int has_path;
    int line, column, position; /* invalid_json only (has_position) */
    int has_position;
} api_error;

void api_fail(api_error *e, int status, const char *code, const char *path,
              const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* The models of api/model.c's table (bow, attention, multihead), for
 * routes and --help: how many, each one's name (its route is "/" name,
 * its v2 model the same name) and a line saying what it computes. */
int api_model_count(void);
const char *api_model_name(int i);
const char *api_model_summary(int i);

/* Whether model i is built in (bow .. gpt: it has a native route
 * POST /<name>); the others are --models models, v2 models only. */
int api_model_builtin(int i);

/* Loads the model repository dir (--models: dir/<name>/config.json +
 * model.safetensors, api/gpt_model.h) into the model table, before any
 * thread serves.  Returns the number of models, or -1 with err set (the
 * file, the tensor, the expected shape); nothing stays loaded then.  A
 * missing dir is an error only if required. */
int api_models_load(const char *dir, int required, char *err, size_t cap);

/* GET /models: the loaded models and their config.json. */
void api_models_list(api_response *res);

/* POST /<name>: the native handler of model i. */
void api_model_post(int i, const char *body, size_t len, api_response *res);

/* Endpoint handlers (api_model_post by name). */
void api_bow(const char *body, size_t len, api_response *res);
void api_attention(const char *body, size_t len, api_response *res);
void api_multihead(const char *body, size_t len, api_response *res);
void api_randn(const char *body, size_t len, api_response *res);
void api_healthz(api_response *res);

/* An error response built from e, or from parts (path NULL = no path). */
void api_error_response(api_response *res, const api_error *e);
void api_simple_error(api_response *res, int status, const char *code,
                      const char *message);

/* The cancel flag of the request this thread is serving: the server
 * points it at a flag it may set (nonzero: stop computing, the answer
 * will not be sent); NULL (the default) never cancels.  Per thread. */
void api_cancel_watch(const volatile int *flag);

/* Team size for a kernel doing `work` multiply-adds: 1 for small work or
 * while another request is computing, so that the HTTP thread pool and
 * OpenMP never ask for more threads than cores. */
int api_threads_for(double work);

#endif
