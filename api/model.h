/* model.h -- the model table and the typed call between the wire and the
 * engine.
 *
 *   wire (native JSON, v2 JSON/binary) --codec--> api_call --engine-->
 *   api_result --codec--> wire
 *
 * One table entry per model (bow, attention, multihead) says its inputs
 * (name, ranks, dtypes), its options, its outputs and how it runs; routes,
 * --help's endpoint list, v2 metadata and configuration, and the field
 * names in error messages all come from it.  A codec fills an api_call
 * through an api_source (where the tensors and options of one request
 * are); api_call_read checks everything a request can get wrong, in the
 * order the contract documents, api_call_plan checks sizes and limits and
 * counts the cost before anything is allocated, api_call_run allocates
 * once, fills, computes and checks the result.  Private to api/. */
#ifndef ATTND_API_MODEL_H
#define ATTND_API_MODEL_H

#include <jansson.h>

#include "internal.h"

/* ==== roles: what a tensor is, whatever model it belongs to ==== */

enum api_in_role { IN_X, IN_WQ, IN_WK, IN_WV, IN_WO, IN_BO, IN_CTX,
                   IN_MASK, API_MAX_IN };

enum api_out_role { OUT_Q, OUT_K, OUT_V, OUT_SCORES, OUT_WEIGHTS, OUT_HEADS,
                    OUT_OUT, OUT_X, OUT_WQ, OUT_WK, OUT_WV, OUT_WO, OUT_BO,
                    OUT_MAX_ABS_DIFF, OUT_ALLCLOSE, API_OUT_ROLES };

typedef struct api_input_spec {
    const char *name;
    int role;                   /* api_in_role */
    int min_rank, max_rank;
    int may_bool;               /* BOOL as well as FP32 (a mask) */
    int required;               /* without a seed */
} api_input_spec;

typedef struct api_output_spec {
    const char *name;
    int role;                   /* api_out_role */
    int rank;                   /* the largest; -1 entries in metadata */
    const char *fixed_shape;    /* metadata shape when not all -1, or NULL */
    const char *ranks;          /* metadata "ranks" parameter, or NULL */
    int is_bool;
} api_output_spec;

typedef enum api_family { API_BOW, API_ATTEND } api_family;

typedef struct api_model {
    const char *name;               /* v2 name; the route is "/" name */
    api_family family;
    int heads;                      /* attend: wq is (H,hs,C), projection */
    const api_input_spec *inputs;
    int ninputs;
    const api_output_spec *outputs; /* in v2 metadata order */
    int noutputs;
    const char *const *fields;      /* native fields, NULL-terminated */
    const char *return_list;        /* "return"'s names, for messages */
    const char *return_default[2];
    const char *summary;            /* --help's line */
} api_model;

extern const api_model api_models[];
extern const int api_nmodels;

const api_model *api_model_find(const char *name);
/* Index of the model's output called name, or -1. */
int api_model_output(const api_model *m, const char *name);
/* Index of the model's output of this role, or -1. */
int api_model_output_role(const api_model *m, int role);
/* Index of the model's input called name, or -1. */
int api_model_input(const api_model *m, const char *name);

/* ==== the typed call ==== */

#define API_MAX_OUT 16

/* What a request costs, counted from shapes before anything is
 * allocated: floats held (inputs, scratch, outputs) and multiply-adds. */
typedef struct api_cost {
    int64_t inputs, scratch, outputs;
    double madds;
} api_cost;

static inline int64_t api_cost_floats(const api_cost *c)
{
    return c->inputs + c->scratch + c->outputs;
}

typedef struct api_call api_call;

/* Where one request's tensors and options are: the native body or the v2
 * request.  Errors name native paths ("x[0][1]", "shape[0]"); a codec may
 * retell them in its own terms. */
typedef struct api_source {
    void *ctx;
    const json_t *opts;             /* the option fields (an object) */
    int preset_order;               /* the codec set c->order (no "return") */
    /* Input role `role` (sent) checked: its shape into *t (one of the
     * ranks the table allows), *is_bool for a mask; 1, or 0 with e set. */
    int (*shape)(void *ctx, const api_call *c, int role, engine_tensor *t,
                 int *is_bool, api_error *e);
    /* Its values into t->data (t's shape as read). */
    void (*fill)(void *ctx, const api_call *c, int role, engine_tensor *t);
} api_source;

struct api_call {
    const api_model *m;
    const api_source *src;
    int sent[API_MAX_IN];
    engine_tensor in[API_MAX_IN];   /* by role; data set by api_call_run */
    int mask_bool;
    api_seed seed;
    int method;                     /* bow: 0 loop .. 3 all */
    int causal, average;
    float scale;
    jw_format format;
    int has_shape;
    int64_t shape[3];               /* "shape", with a seed */
    int has_h, has_hs;
    int order[API_MAX_OUT];         /* requested outputs (table indexes) */
    int norder;
    /* sizes, once planned */
    int64_t B, T, S, C, H, hs;
    api_cost cost;
};

/* The result: every output of the table by index (data NULL when not
 * computed), in one allocation. */
typedef struct api_result {
    float *block;
    engine_tensor t[API_MAX_OUT];
    int produced[API_MAX_OUT];
    int allclose;                   /* bow "all" */
} api_result;

/* Reads and checks the request into c (c->m set by the caller).  1, or 0
 * with e set. */
int api_call_read(api_call *c, const api_model *m, const api_source *src,
                  api_error *e);

/* Shape relations, the limits and c->cost; 1, or 0 with e set. */
int api_call_plan(api_call *c, api_error *e);

/* The cost of a planned call (what api_call_plan stores in c->cost). */
api_cost api_call_cost(const api_call *c);

/* Allocates the result, fills the inputs (seed draws, then the source's
 * values); the source is not used after.  0 when memory ran out. */
int api_call_fill(api_call *c, api_result *r);

/* Computes and checks the result (422 non_finite_result); 1, or 0 with e
 * set. */
int api_call_compute(api_call *c, api_result *r, api_error *e);

void api_result_free(api_result *r);

/* The cancel flag the server set for this thread (api_cancel_watch), or
 * NULL. */
const volatile int *api_cancel_flag(void);

/* Whether a planned cost is over this thread's api_defer_above bound. */
int api_deferred(const api_cost *k);

/* ==== codecs ==== */

/* Native JSON: the handler of model m. */
void api_native_handle(const api_model *m, const char *body, size_t len,
                       api_response *res);

#endif
