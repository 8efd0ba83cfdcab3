/* internal.h -- helpers shared by the api/ handlers; not for server/. */
#ifndef ATTND_API_INTERNAL_H
#define ATTND_API_INTERNAL_H

#include <jansson.h>

#include "api.h"
#include "codec.h"
#include "jsonw.h"

/* The body as a JSON object, or NULL with e set (400 invalid_json with
 * line/column, 422 wrong_type, 503). */
json_t *api_parse_body(const char *body, size_t len, api_error *e);

/* Shape of tensor field `name` into t (data left NULL), checked against
 * the element cap. */
int api_read_tensor(const json_t *v, const char *name, int rank,
                    engine_tensor *t, api_error *e);

/* 413 too_large if a tensor of n elements would pass the cap. */
int api_check_size(int64_t n, const char *what, const char *path,
                   api_error *e);

/* res = 200 with w's text (w is emptied), or 503 if w failed. */
void api_respond_json(api_response *res, jsonw *w);
void api_oom(api_response *res);

/* Bracket engine calls so api_threads_for() knows how busy we are. */
void api_compute_begin(void);
void api_compute_end(void);

#endif
