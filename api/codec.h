/* codec.h -- reading tensors and fields out of Jansson values, with the
 * precise error (code + path) the contract promises.  Private to api/. */
#ifndef ATTND_CODEC_H
#define ATTND_CODEC_H

#include <jansson.h>

#include "api.h"

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

/* Copies a value that codec_tensor_shape accepted into t->data (which
 * must hold numel floats), row-major, rounding each number to float32. */
void codec_tensor_fill(engine_tensor *t, const json_t *v);

/* First key of obj not in the NULL-terminated list `known` -> 422
 * unknown_field (suggesting the nearest known name).  Returns 1 if all
 * keys are known. */
int codec_known_fields(const json_t *obj, const char *const *known,
                       api_error *e);

/* obj[key] or 422 missing_field. */
const json_t *codec_required(const json_t *obj, const char *key,
                             api_error *e);

/* "B x T x C" and the like, for messages about a tensor of this rank. */
const char *codec_rank_shape(int rank);

/* Name of a JSON value's type for messages ("string", "array", ...). */
const char *codec_type_name(const json_t *v);

#endif
