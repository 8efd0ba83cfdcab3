/* codec.h -- reading tensors and fields out of Jansson values, with the
 * precise error (code + path) the contract promises.  Private to api/. */
#ifndef ATTND_CODEC_H
#define ATTND_CODEC_H

#include <jansson.h>
#include <stdint.h>

#include "api.h"
#include "../engine/engine.h"

/* Doubles at or above this magnitude round to infinity as float32: it is
 * FLT_MAX plus half an ulp (ties go to the even, infinite, neighbour), so
 * "3.4028235e38" -- FLT_MAX as printed -- is still accepted. */
#define FLOAT32_LIMIT 0x1.ffffffp+127

/* Shape of a nested-array tensor of exactly `rank` dimensions.  Walks
 * the whole value: on success fills dim[] and returns 1; otherwise fills e
 * (ragged_array, not_a_number, out_of_range, wrong_rank, empty_dimension,
 * wrong_type) with the path of the offending value, name being the
 * field's path ("x").  Allocates nothing. */
int codec_tensor_shape(const json_t *v, const char *name, int rank,
                       int64_t dim[ENGINE_MAX_RANK], api_error *e);

/* A walk over a nested-array field: x and the weights (numbers) and mask
 * (booleans or numbers) share it, and differ only in what a leaf is and
 * the words for it.  Paths are name[i][j]... */
typedef struct codec_walk {
    const char *name;           /* the field: "x", "mask" */
    const char *unit;           /* a leaf, in messages: "number", "value" */
    int rank;
    const int64_t *dim;         /* every element's length at each depth */
    int ragged_any;             /* any non-array where an array belongs is
                                 * ragged_array, named by its JSON type
                                 * (else only a number is, and the rest
                                 * not_a_number) */
    /* a leaf (never an array) at path; NULL: a number within float32 */
    int (*leaf)(const json_t *x, const char *path, void *ctx, api_error *e);
    void *ctx;
    api_error *e;
    size_t idx[ENGINE_MAX_RANK + 1];    /* where the walk is */
} codec_walk;

/* Reads the dimensions of nested array v along its first elements into
 * dim[] (w->idx left at zeros) and *first (if not NULL) the first leaf.
 * Returns the depth of that leaf; max + 1 if v is nested deeper than max
 * (e not set: the caller names the ranks it takes); -1 with e set
 * (empty_dimension) at an empty array. */
int codec_walk_descend(codec_walk *w, const json_t *v, int max,
                       int64_t *dim, const json_t **first);

/* Checks that v at `depth` has the dimensions w->dim[depth..rank) all
 * through and every leaf passes w->leaf.  1, or 0 with w->e set
 * (ragged_array, not_a_number or the leaf's error). */
int codec_walk_check(codec_walk *w, const json_t *v, int depth);

/* A tensor field may also be an object: {"shape": [...], "data": [flat
 * row-major numbers]} or {"shape": [...], "dtype": "float32", "b64":
 * "..."} (standard padded base64 of little-endian float32).
 * codec_tensor_shape checks those too: keys, the shape against rank and
 * the element cap (before anything is decoded), the data length or the
 * decoded byte count against the shape, and every element, with paths
 * like "x.shape[1]", "x.data[17]", "x.b64". */

/* What a kind of tensor object takes -- its ranks, its elements -- and
 * the words its errors say it with. */
typedef struct codec_object_kind {
    int min_rank, max_rank;     /* at most two ranks: min, min + 1 */
    const char *object;         /* "a tensor object is {...}" */
    const char *unit;           /* an element, counted: "number" */
    const char *elements;       /* what data holds: "numbers" */
    const char *f32_note;       /* after "binary32" where dtype is missing */
    const char *dtype_note;     /* after "binary32" where dtype is refused */
    int neg_inf_ok;             /* b64 may hold -inf (a mask's "may not
                                 * attend"); NaN and +inf never */
    int cap_each_dim;           /* --max-elements checked on each dimension
                                 * as it is read, then on the product
                                 * without naming the shape */
    int its_shape;              /* length errors say "its shape", not
                                 * "shape [2, 3]" */
    /* data[i] at path; NULL: a number within float32 */
    int (*leaf)(const json_t *x, const char *path, void *ctx, api_error *e);
    void *ctx;
} codec_object_kind;

/* A tensor object of field `name` -- {"shape", "data"} or {"shape",
 * "dtype": "float32", "b64"} -- checked as kind k says: its keys, its
 * shape (rank, dimensions >= 1, the element cap) before anything is
 * decoded, its dtype, then every element of data (k->leaf) or the base64
 * (valid, of the shape's length, finite).  Fills *rank and dim[]; returns
 * 1, or 0 with e set (paths "x.shape[1]", "x.data[17]", "x.b64").
 * Allocates nothing. */
int codec_object_read(const json_t *v, const char *name,
                      const codec_object_kind *k, int *rank,
                      int64_t dim[ENGINE_MAX_RANK], api_error *e);

/* 422 wrong_rank at "<name>.shape": the shape has `got` entries where
 * the field is `rank`-D.  (The body fast path says it in the same
 * words.) */
void codec_shape_rank_error(const char *name, int rank, int got,
                            api_error *e);

/* Decodes s[0..len) -- strict standard base64 with padding -- as
 * little-endian float32 into out[0..cap) (out NULL: only checks), in
 * chunks through libsodium.  Returns the number of bytes it decodes to,
 * or -1 if it is not valid base64, with *bad_at the offset of the first
 * character refused.  *nonfinite is the index of the first NaN or
 * infinity (-inf excepted if neg_inf_ok: a mask's "may not attend"), or
 * -1. */
int64_t codec_b64_floats(const char *s, size_t len, float *out, int64_t cap,
                         int neg_inf_ok, size_t *bad_at, int64_t *nonfinite);

/* Copies a value that codec_tensor_shape accepted into t->data (which
 * must hold numel floats), row-major, rounding each number to float32. */
void codec_tensor_fill(engine_tensor *t, const json_t *v);

/* First key of obj not in the NULL-terminated list `known` -> 422
 * unknown_field (suggesting the nearest known name).  Returns 1 if all
 * keys are known. */
int codec_known_fields(const json_t *obj, const char *const *known,
                       api_error *e);

/* The same for an object inside field `prefix`: paths and names are
 * "<prefix>.<key>" (prefix NULL: the body's top level). */
int codec_known_fields_at(const json_t *obj, const char *const *known,
                          const char *prefix, api_error *e);

/* obj[key] or 422 missing_field. */
const json_t *codec_required(const json_t *obj, const char *key,
                             api_error *e);

/* "B x T x C", "head_size x C" and the like: the dimensions of field
 * `name` at this rank, for messages (by rank alone for other names). */
const char *codec_rank_shape(const char *name, int rank);

/* Name of a JSON value's type for messages ("string", "array", ...). */
const char *codec_type_name(const json_t *v);
/* 1 if v is a JSON integer; else 0 and 422 wrong_type at path ("PATH must
 * be an integer, not TYPE"). */
int codec_need_integer(const json_t *v, const char *path, api_error *e);

#endif
