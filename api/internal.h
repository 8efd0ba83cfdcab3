/* internal.h -- helpers shared by the api/ handlers; not for server/. */
#ifndef ATTND_API_INTERNAL_H
#define ATTND_API_INTERNAL_H

#include <jansson.h>

#include "api.h"
#include "codec.h"
#include "jsonw.h"
#include "../engine/engine.h"
#include "../engine/rng.h"

/* The most dimensions a tensor sent in a request may have (/randn's
 * shape too); results may have up to ENGINE_MAX_RANK. */
#define API_MAX_IN_RANK 4

/* The body as a JSON object, or NULL with e set (400 invalid_json with
 * line/column, 422 wrong_type, 503). */
json_t *api_parse_body(const char *body, size_t len, api_error *e);

/* ==== bounded parsing (parse.c) ==== */

/* Bodies from this size on are parsed in memory bounded by their size;
 * smaller ones go to Jansson whole. */
#define API_PARSE_SMALL (64 * 1024)
/* The tree Jansson may build, in bytes per byte of body. */
#define API_PARSE_TREE_PER_BYTE 2
/* ... or this many bytes, whichever is more. */
#define API_PARSE_TREE_FLOOR (256 * 1024)
#define API_MAX_DEFERRED 8
/* Blocks from this size on are mmapped, and unmapped when freed. */
#define API_MMAP_THRESHOLD (256 * 1024)

/* A field's value left out of the tree (it holds 0 there): its text. */
typedef struct api_deferred {
    const char *name;               /* one of api_parse_spec.defer */
    const char *from, *to;
} api_deferred;

typedef struct api_deferred_list {
    int n;
    api_deferred d[API_MAX_DEFERRED];
} api_deferred_list;

/* What the caller reads of the body. */
typedef struct api_parse_spec {
    const char *const *known;   /* its top-level fields (NULL-terminated):
                                 * parsing stops at the first other one,
                                 * which the caller refuses first of all;
                                 * NULL: every field is kept */
    const char *const *defer;   /* fields whose array value the caller
                                 * reads from the text (NULL: none) */
    api_deferred_list *out;     /* filled with them */
    int bounded;                /* refuse a tree past the bound with 413
                                 * body_too_complex (else build it) */
    const char *const *drop;    /* fields already read: 0 in the tree */
    const char *const *valid;   /* nvalid [from, to) pairs: top-level
                                 * values known to be valid JSON */
    int nvalid;
} api_parse_spec;

/* api_parse_body with the same errors, in bounded memory: see parse.c.
 * May also fail with 413 body_too_complex.  spec may be NULL. */
json_t *api_parse_bounded(const char *body, size_t len,
                          const api_parse_spec *spec, api_error *e);
/* api_parse_body with Jansson over the whole text: the old way. */
json_t *api_parse_jansson(const char *body, size_t len, api_error *e);
/* 0 with e set when the body nests past --max-depth or holds a NUL. */
int api_parse_prescan(const char *body, size_t len, api_error *e);
/* Tests: the size from which bodies are parsed the bounded way. */
void api_parse_set_small(size_t bytes);
size_t api_parse_small_size(void);
/* Whether the valid JSON key at key ('"') decodes to word. */
int api_json_key_is(const char *key, const char *word);
/* The JSON number in [p, e): its end (NULL if none), whether it is an
 * integer, and its value, correctly rounded (body.c). */
const char *api_read_number(const char *p, const char *e, int *integer,
                            double *d);
/* After a large request: give free memory back to the system. */
void api_release_memory(size_t body_len);

/* json_loadb of a text attnd wrote itself, or NULL if any allocation
 * failed (Jansson may then return a tree with a value missing). */
json_t *api_json_loadb(const char *text, size_t len);
/* Whether a Jansson allocation failed on this thread since the last
 * api_json_alloc_watch(). */
void api_json_alloc_watch(void);
int api_json_alloc_failed(void);

/* Shape of tensor field `name` into t (data left NULL), checked against
 * the element cap. */
int api_read_tensor(const json_t *v, const char *name, int rank,
                    engine_tensor *t, api_error *e);

/* 413 too_large if t (shape set) passes the element cap. */
int api_check_tensor_size(const engine_tensor *t, const char *name,
                          api_error *e);

int64_t api_max_elements(void);
int api_max_depth(void);         /* --max-depth: nesting Jansson refuses past */

/* ==== request bodies (body.c) ==== */

#define API_MAX_PRE 8

/* A tensor field read straight from the body text. */
typedef struct api_pre {
    const char *name;               /* one of the caller's field names */
    int rank;
    int64_t dim[ENGINE_MAX_RANK];
    float *data;                    /* malloc'd, freed by api_body_free */
    int object;                     /* sent as {"shape", "data" | "b64"} */
} api_pre;

typedef struct api_body {
    json_t *root;                   /* the object; tensors read from the
                                     * text appear in it as 0 */
    int npre;
    api_pre pre[API_MAX_PRE];
    api_deferred_list deferred;     /* large arrays left in the text */
    size_t len;                     /* the body's */
} api_body;

/* Parses a request body; the fields named in `tensors` (NULL-terminated)
 * may be read from the text directly.  Errors are exactly those of
 * api_parse_body.  Returns 1 with b filled, or 0 with e set (b is then
 * empty). */
int api_body_parse(api_body *b, const char *body, size_t len,
                   const char *const *tensors, api_error *e);
/* The same, with the endpoint's top-level fields (parsing keeps nothing
 * past the first unknown one) and the fields (tensors and masks) whose
 * arrays may be left in the text and read there (see parse.c). */
int api_body_parse_known(api_body *b, const char *body, size_t len,
                         const char *const *tensors,
                         const char *const *defer,
                         const char *const *known, api_error *e);
void api_body_free(api_body *b);

/* api_read_tensor / codec_tensor_fill for a field of b, wherever it was
 * read from. */
int api_body_tensor(const api_body *b, const char *name, int rank,
                    engine_tensor *t, api_error *e);
void api_body_fill(const api_body *b, const char *name, engine_tensor *t);

/* api_mask_shape / api_mask_fill for a field of b. */
int api_body_mask_shape(const api_body *b, const char *name,
                        engine_tensor *t, int *is_bool, api_error *e);
void api_body_mask_fill(const api_body *b, const char *name, int is_bool,
                        engine_tensor *t);

/* Tests: 0 sends every body through Jansson alone. */
void api_body_set_fast(int on);

/* 413 too_large if a tensor of n elements would pass the cap. */
int api_check_size(int64_t n, const char *what, const char *path,
                   api_error *e);

/* ==== seeds (seed.c) ==== */

typedef struct api_seed {
    int present;
    uint64_t value;         /* what torch.manual_seed stores */
} api_seed;

/* "seed": an integer in [-2^63, 2^63-1] or a decimal string up to
 * 2^64-1; absent leaves s->present 0. */
int api_read_seed(const json_t *root, api_seed *s, api_error *e);

/* A shape: an array of min_rank..max_rank integers, each >= min_dim, whose
 * product passes the element cap, as each entry does; with min_dim 0, the
 * entries after a 0 are not capped (the tensor is empty). */
int api_read_shape(const json_t *v, const char *name, int min_rank,
                   int max_rank, int64_t min_dim, int64_t *dim, int *rank,
                   api_error *e);

/* A positive integer under the element cap (head_size). */
int api_read_count(const json_t *v, const char *name, int64_t *out,
                   api_error *e);

/* 413 dimension_too_large when B, T or head_size (0 = not applicable)
 * passes its limit; each path names where that size came from. */
int api_check_dims(int64_t B, int64_t T, int64_t hs, const char *bpath,
                   const char *tpath, const char *hpath, api_error *e);

/* 413 dimension_too_large when a sequence length other than T (what, such
 * as a context's S) passes --max-seq. */
int api_check_seq(int64_t S, const char *what, const char *path,
                  api_error *e);

/* 413 dimension_too_large when num_heads passes --max-head-size (which
 * bounds both sizes of a head grid); path names where H came from. */
int api_check_heads(int64_t H, const char *path, api_error *e);

/* 413 work_too_large when a request's multiply-adds pass --max-work. */
int api_check_work(double madds, api_error *e);

/* 413 request_too_large when all the floats of a request pass the cap. */
int api_check_total(int64_t n, api_error *e);

/* ==== fields the endpoints share (options.c) ==== */

#define API_MAX_OUTPUTS 16

/* The outputs an endpoint's "return" may name, and its default. */
typedef struct api_outputs {
    const char *const *names;
    int n;                          /* <= API_MAX_OUTPUTS */
    const char *list;               /* the names, for messages */
    int defaults[4];
    int ndefaults;
} api_outputs;

/* A boolean field, dflt when absent. */
int api_read_bool(const json_t *root, const char *key, int dflt, int *out,
                  api_error *e);

/* "scale": true or absent -> NAN (the caller applies head_size**-0.5),
 * false -> 1, a number -> itself (within float32). */
int api_read_scale(const json_t *root, float *scale, api_error *e);

/* "return": indexes into outs->names, in request order, duplicates once;
 * outs->defaults when absent. */
int api_read_return(const json_t *root, const api_outputs *outs, int *order,
                    int *norder, api_error *e);

/* "format": how every returned tensor is written; JW_NESTED when
 * absent, 422 invalid_value for another name. */
int api_read_format(const json_t *root, jw_format *format, api_error *e);

/* res = 200 with {"name": tensor, ...}: t[order[i]] under names[order[i]]
 * for i < norder, each written in `format` (t[masked]'s -inf as null in
 * the text forms; masked -1 for none), or 503.  Large tensors are written
 * on several threads, counted as computing. */
void api_respond_tensors(api_response *res, const engine_tensor *t,
                         const char *const *names, const int *order,
                         int norder, int masked, jw_format format);

/* ==== cross-attention and masks (mask.c) ==== */

/* "context" and "mask" of a request. */
typedef struct api_cross {
    int has_ctx, has_mask;
    engine_tensor ctx;              /* B x S x C */
    engine_tensor mask;             /* T x S or B x T x S, additive */
    int mask_bool;                  /* sent as booleans */
} api_cross;

/* "causal": default false when context or mask is sent, true otherwise;
 * an explicit true with a mask is 422 invalid_value (as SDPA refuses). */
int api_read_causal(const json_t *root, int has_ctx, int has_mask,
                    int *causal, api_error *e);

/* A mask value (nested booleans or numbers, or a tensor object): its
 * shape into t (data NULL) and whether it holds booleans, every element
 * checked; then its values (bool -> 0 / -inf, null -> -inf). */
int api_mask_shape(const json_t *v, engine_tensor *t, int *is_bool,
                   api_error *e);

/* A mask nested `depth` deep is 2-D or 3-D, or 422 wrong_rank at "mask"
 * (whichever reader walked it: the tree's or the body text's). */
int api_mask_depth_ok(int depth, api_error *e);
void api_mask_fill(const json_t *v, int is_bool, engine_tensor *t);

/* context against x's B and C, S against --max-seq, mask against
 * (T,S) / (B,T,S); *S = context's length, or T without one. */
int api_cross_check(const api_cross *c, int64_t B, int64_t T, int64_t C,
                    int64_t *S, api_error *e);

/* Nonzero when score (b, t, s) is -inf by design: hidden by causal or by
 * the mask (its data filled). */
int api_cross_hidden(const api_cross *c, int causal, int64_t b, int64_t t,
                     int64_t s);

/* The length of the valid UTF-8 sequence at p (before end): 1 to 4, or
 * 0 (not valid: overlong, a surrogate, past U+10FFFF, cut short). */
int api_utf8_seq(const unsigned char *p, const unsigned char *end);

/* The end of the JSON value at p (a string, array or object; anything
 * else up to a delimiter), or NULL if it is not closed before end.  Only
 * its extent: the value is not checked. */
const char *api_json_skip(const char *p, const char *end);

/* res = 200 with w's text (w is emptied), or 503 if w failed. */
void api_respond_json(api_response *res, jsonw *w);
void api_oom(api_response *res);

/* The largest team api_threads_for() may give (--omp-threads). */
int api_max_threads(void);

/* api_threads_for() for writing `numbers` floats as text. */
int api_threads_for_text(int64_t numbers);

/* Bracket engine calls so api_threads_for() knows how busy we are. */
void api_compute_begin(void);
void api_compute_end(void);

#endif
