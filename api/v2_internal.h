/* v2_internal.h -- a v2 infer request in v2 terms (v2_request.c), for
 * the v2 codec (v2.c).  Private to api/. */
#ifndef ATTND_API_V2_INTERNAL_H
#define ATTND_API_V2_INTERNAL_H

#include "model.h"
#include "jsonw.h"
#include "v2.h"

#define V2_MAX_INPUTS 8
#define V2_MAX_OUTPUTS 16

typedef struct v2_input {
    int name;                       /* index into the model's inputs */
    int is_bool;                    /* datatype BOOL */
    int int_bytes;                  /* INT64: 8, INT32: 4 (token ids);
                                     * 0 for FP32 and BOOL */
    int rank;
    int64_t dim[ENGINE_MAX_RANK];
    int64_t n;
    const json_t **leaves;          /* n of them, malloc'd; or NULL and */
    const unsigned char *raw;       /* binary data: n float32 (LE) or n
                                     * bytes for BOOL, in the body */
} v2_input;

typedef struct v2_request {
    const api_model *m;
    const json_t *root;
    const json_t *params;           /* object or NULL */
    int ninputs;
    v2_input in[V2_MAX_INPUTS];
    int noutputs;                   /* 0 = none asked for */
    int out[V2_MAX_OUTPUTS];        /* indexes into the model's outputs */
    signed char out_bin[V2_MAX_OUTPUTS];    /* binary_data: 1, 0, or -1
                                             * (not given) */
    int bin_default;                /* parameters.binary_data_output */
    const unsigned char *tail;      /* binary data after the JSON, or NULL */
    size_t tail_len, tail_used;
    int tail_told;                  /* Inference-Header-Content-Length said
                                     * where the JSON ends: whitespace after
                                     * it is data too */
} v2_request;

/* An error found by the adapter itself: status, code, v2 path, message. */
typedef struct v2_error {
    int status;
    const char *code;
    char path[96];
    char message[320];
} v2_error;

/* The request's structure checked (id, parameters, outputs, inputs with
 * their data or binary data, what follows the JSON) into rq (rq->m and
 * the tail set by the caller).  1, or 0 with e set or *oom. */
int v2_read_request(v2_request *rq, const json_t *root, v2_error *e,
                    int *oom);
void v2_request_free(v2_request *rq);

/* The names of a model's inputs or outputs, "x, wq, wk", for messages. */
void v2_name_list(char *dst, size_t cap, const api_model *m, int outputs);

/* The JSON part of a body parsed into *root (Inference-Header-Content-
 * Length, or where the object closes; binary data after it) and checked
 * by v2_read_request; 0 with res set to the v2 error. */
int v2_read_body(v2_request *rq, const char *body, size_t len,
                 const char *json_length, json_t **root, api_response *res);

/* A call's error path (native names: x[0][1][2], wq, causal, out) as the
 * place in the v2 request it came from. */
void v2_map_path(const v2_request *rq, const char *np, char *dst,
                 size_t cap);

/* {"error": "<code>[ at <path>]: <message>"}; the static 503; native
 * statuses in v2 terms (422 is the protocol's 400). */
void v2_fail(api_response *res, int status, const char *code,
             const char *path, const char *message);
void v2_oom(api_response *res);

/* Answers `status` with w's text (taken) as `type`; json_len: where the
 * JSON ends before binary tensor data, or 0.  v2_oom when w ran out. */
void v2_respond(api_response *res, int status, jsonw *w, const char *type,
                size_t json_len);
int v2_status(int status);

#endif
