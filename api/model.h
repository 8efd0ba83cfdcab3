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
#include "../engine/gpt.h"

/* ==== roles: what a tensor is, whatever model it belongs to ==== */

/* IN_LN1_W .. IN_FC2_B: a Block's other parameters; IN_IDX: token ids. */
enum api_in_role { IN_X, IN_WQ, IN_WK, IN_WV, IN_WO, IN_BO, IN_CTX,
                   IN_MASK, IN_FC1_W, IN_FC1_B, IN_FC2_W, IN_FC2_B, IN_LN1_W,
                   IN_LN1_B, IN_LN2_W, IN_LN2_B, IN_IDX, API_MAX_IN };

/* OUT_LN1 .. OUT_HIDDEN: a Block's intermediates (OUT_HIDDEN is /gpt's
 * hidden states too); OUT_LOGITS .. OUT_TEXT: /gpt's. */
enum api_out_role { OUT_Q, OUT_K, OUT_V, OUT_SCORES, OUT_WEIGHTS, OUT_HEADS,
                    OUT_OUT, OUT_X, OUT_WQ, OUT_WK, OUT_WV, OUT_WO, OUT_BO,
                    OUT_MAX_ABS_DIFF, OUT_ALLCLOSE, OUT_LN1, OUT_ATTN,
                    OUT_RESID, OUT_LN2, OUT_HIDDEN, OUT_LOGITS,
                    OUT_LAST_LOGITS, OUT_PROBS, OUT_TOKENS, OUT_TEXT,
                    API_OUT_ROLES };

/* A tensor's element type where it is not FP32 (or BOOL, is_bool). */
enum api_dtype { API_FP32, API_INT64, API_BYTES };

typedef struct api_input_spec {
    const char *name;
    int role;                   /* api_in_role */
    int min_rank, max_rank;
    int may_bool;               /* BOOL as well as FP32 (a mask) */
    int required;               /* without a seed */
    int dtype;                  /* api_dtype: INT64 is idx (integers, read
                                 * exactly, held as floats) */
} api_input_spec;

typedef struct api_output_spec {
    const char *name;
    int role;                   /* api_out_role */
    int rank;                   /* the largest; -1 entries in metadata */
    const char *fixed_shape;    /* metadata shape when not all -1, or NULL */
    const char *ranks;          /* metadata "ranks" parameter, or NULL */
    int is_bool;
    int dtype;                  /* api_dtype: INT64 tokens, BYTES text */
} api_output_spec;

/* API_BLOCK, API_GPT: the lecture's Block and GPTLanguageModel
 * (lecture.c). */
typedef enum api_family { API_BOW, API_ATTEND, API_BLOCK, API_GPT }
    api_family;

struct api_gpt_model;

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
    /* A model of the repository (--models): its weights and vocabulary;
     * NULL for the built-in models.  Such a model is a v2 model; its
     * native route is /gpt with "model". */
    const struct api_gpt_model *gpt;
} api_model;

/* The built-in models, then the repository's (api_models_add_gpt). */
#define API_MAX_MODELS 32
extern api_model api_models[API_MAX_MODELS];
extern int api_nmodels;
extern const int api_nbuiltin;

/* Adds a loaded model to the table (before any thread serves): 0, or -1
 * with err set (a built-in's name, the table full). */
int api_models_add_gpt(const struct api_gpt_model *g, char *err,
                       size_t cap);
/* Back to the built-in models alone. */
void api_models_reset(void);

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
    /* block and gpt (lecture.c) */
    const struct api_gpt_model *gm; /* the model run, or NULL: seeded */
    engine_gpt_config g;            /* gpt's sizes; block: n_embd, n_head */
    const json_t *text;             /* "text" (a string or strings), until
                                     * api_call_fill encodes it */
    int64_t max_new;                /* max_new_tokens, 0 = no generate */
    uint64_t sample_seed;
};

/* The result: every output of the table by index (data NULL when not
 * computed), in one allocation. */
typedef struct api_result {
    float *block;
    engine_tensor t[API_MAX_OUT];
    int produced[API_MAX_OUT];
    int allclose;                   /* bow "all" */
    /* gpt: the token ids (the input's, B x T, then the generated
     * sequences, B x (T + max_new)) and the generated text, B
     * NUL-terminated strings one after another; malloc'd.  An INT64 or
     * BYTES output's t[i] holds its shape (data NULL). */
    int64_t *ids, *tokens;
    char *text;
    void *aux;                      /* lecture.c's weights views */
} api_result;

/* Reads and checks the request into c (c->m set by the caller).  1, or 0
 * with e set. */
int api_call_read(api_call *c, const api_model *m, const api_source *src,
                  api_error *e);

/* The sent inputs' shapes through the source, in table order (masks'
 * kind into c->mask_bool); 1, or 0 with e set. */
int api_call_read_tensors(api_call *c, api_error *e);

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
int api_should_defer(const api_cost *k);

/* ==== the lecture's Block and GPT (lecture.c), behind the same calls ==== */

int api_lecture_read(api_call *c, const json_t *o, api_error *e);
int api_lecture_plan(api_call *c, api_error *e);
api_cost api_lecture_cost(const api_call *c);
/* The inputs laid out at p (after draws and the source's values);
 * returns 0 when memory ran out. */
int api_lecture_fill(api_call *c, api_result *r, float *p);
int api_lecture_compute(api_call *c, api_result *r, api_error *e);

/* A token id (an integer) against the call's vocabulary; 1, or 0 with e
 * set (422 out_of_range at path). */
int api_idx_check(const api_call *c, double v, const char *path,
                  api_error *e);
/* The native idx (nested integers, T or B x T): its shape, every id
 * checked; then its values as floats (exact: ids are under 2^24). */
int api_idx_shape(const api_call *c, const json_t *v, engine_tensor *t,
                  api_error *e);
void api_idx_fill(const json_t *v, engine_tensor *t);

/* A JSON string of NUL-terminated UTF-8 text. */
void api_jw_string(jsonw *w, const char *s);

/* The native answer of /block and /gpt. */
void api_lecture_respond(api_response *res, const api_call *c,
                         const api_result *r);

/* ==== statistics (stats.c): Triton's per-model counters ==== */

/* A codec's handler calls begin when a request for a model starts and
 * end with the status it answered (200: a success; anything else a
 * failure); api_call_compute marks the start and end of the computation
 * in between, on the same thread. */
void api_stats_begin(void);
void api_stats_compute(int end);
void api_stats_end(const api_model *m, int status);

/* ==== codecs ==== */

/* Native JSON: the handler of model m. */
void api_native_handle(const api_model *m, const char *body, size_t len,
                       api_response *res);

#endif
