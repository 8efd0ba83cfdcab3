/* jsonw.h -- a growable buffer that JSON responses are written into.
 *
 * Why not Jansson for output: json_dumps prints reals with %.17g (or a fixed
 * precision), never the shortest text that round-trips a float32, so 0.5f is
 * fine but 1/3.f becomes 0.3333333432674408; and building a json_t per
 * number costs far more than writing the text.  Responses are almost all
 * float32 tensors, so they are written here directly; Jansson still parses
 * every request and builds every error body.
 *
 * Errors are sticky: after an allocation failure every write is a no-op and
 * jw_take() returns NULL, so writers need not check each call.
 */
#ifndef ATTND_JSONW_H
#define ATTND_JSONW_H

#include <stddef.h>
#include <stdint.h>

#include "../engine/engine.h"

typedef struct jsonw {
    char *buf;
    size_t len, cap;
    int failed;
} jsonw;

/* A typical float's text and its separator, for sizing buffers ahead. */
#define JW_BYTES_PER_FLOAT 12

void jw_init(jsonw *w);
void jw_free(jsonw *w);
/* Hands the buffer to the caller (free() it); NULL after a failure. */
char *jw_take(jsonw *w, size_t *len);

void jw_raw(jsonw *w, const char *s, size_t n);
void jw_lit(jsonw *w, const char *s);            /* NUL-terminated raw text */
void jw_key(jsonw *w, const char *key);          /* "key": (key is plain ASCII) */
void jw_bool(jsonw *w, int b);

/* Shortest decimal text that reads back (strtof) as exactly f (f2s.c,
 * Ryu; style and reference in numtext.h); non-finite values are null.
 * Returns the number of chars written to s (s must hold 32 bytes). */
int jw_format_float(char *s, float f);
void jw_float(jsonw *w, float f);

/* A tensor as nested arrays.  With null_neg_inf, -inf elements are written
 * as null (masked scores: JSON has no -Infinity). */
void jw_tensor(jsonw *w, const engine_tensor *t, int null_neg_inf);

/* The same text as jw_tensor, written by nthreads threads, each into its
 * own buffer, joined in order.  (OpenMP in api/: for a large response
 * the number text costs more than the attention maths.) */
void jw_tensor_mt(jsonw *w, const engine_tensor *t, int null_neg_inf,
                  int nthreads);

/* t's numbers, comma-separated, row-major, no brackets (the "data" of
 * the flat form), on nthreads threads; -inf as null with null_neg_inf. */
void jw_numbers(jsonw *w, const engine_tensor *t, int null_neg_inf,
                int nthreads);

/* How a response writes its tensors (the request's "format"). */
typedef enum jw_format {
    JW_NESTED,      /* nested arrays, as jw_tensor */
    JW_FLAT,        /* {"shape":[...],"data":[row-major numbers]} */
    JW_B64          /* {"shape":[...],"dtype":"float32","b64":"..."}:
                     * standard padded base64 of little-endian float32 */
} jw_format;

/* t in `format`, on nthreads threads (the same text as one).  -inf is
 * null in nested and flat with null_neg_inf; b64 keeps every bit, -inf
 * too. */
void jw_tensor_as(jsonw *w, const engine_tensor *t, int null_neg_inf,
                  jw_format format, int nthreads);

#endif
