/* codec.c -- see codec.h */
#include "codec.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

const char *codec_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "object";
    case JSON_ARRAY: return "array";
    case JSON_STRING: return "string";
    case JSON_INTEGER: return "integer";
    case JSON_REAL: return "number";
    case JSON_TRUE: return "true";
    case JSON_FALSE: return "false";
    case JSON_NULL: return "null";
    }
    return "value";
}

/* ==== tensors ==== */

/* The path of the value at depth `depth` reached by idx[0..depth-1]. */
static void path_of(char *out, size_t cap, const char *name,
                    const size_t *idx, int depth)
{
    int n = snprintf(out, cap, "%s", name);
    for (int d = 0; d < depth && n > 0 && (size_t)n < cap; d++)
        n += snprintf(out + n, cap - (size_t)n, "[%zu]", idx[d]);
}

const char *codec_rank_shape(int rank)
{
    switch (rank) {
    case 1: return "N";
    case 2: return "rows x columns";
    case 3: return "B x T x C";
    default: return "nested";
    }
}

typedef struct walk {
    const char *name;
    int rank;
    const int64_t *dim;
    size_t idx[ENGINE_MAX_RANK + 1];
    api_error *e;
} walk;

static int walk_check(walk *w, const json_t *v, int depth)
{
    char path[160];
    if (depth < w->rank) {
        if (!json_is_array(v)) {
            path_of(path, sizeof path, w->name, w->idx, depth);
            if (json_is_number(v))
                api_fail(w->e, 422, "ragged_array", path,
                         "%s is a number where an array of %lld was "
                         "expected: the nesting must be the same "
                         "everywhere", path, (long long)w->dim[depth]);
            else
                api_fail(w->e, 422, "not_a_number", path,
                         "%s is %s; tensors hold only numbers in nested "
                         "arrays", path, codec_type_name(v));
            return 0;
        }
        size_t n = json_array_size(v);
        if ((int64_t)n != w->dim[depth]) {
            path_of(path, sizeof path, w->name, w->idx, depth);
            api_fail(w->e, 422, "ragged_array", path,
                     "%s has %zu element%s but its siblings have %lld: "
                     "every row must be the same length", path, n,
                     n == 1 ? "" : "s", (long long)w->dim[depth]);
            return 0;
        }
        for (size_t i = 0; i < n; i++) {
            w->idx[depth] = i;
            if (!walk_check(w, json_array_get(v, i), depth + 1))
                return 0;
        }
        return 1;
    }
    if (json_is_number(v)) {
        double d = json_number_value(v);
        if (!(fabs(d) < FLOAT32_LIMIT)) {
            path_of(path, sizeof path, w->name, w->idx, depth);
            api_fail(w->e, 422, "out_of_range", path,
                     "%s = %g does not fit in float32 (largest magnitude "
                     "3.4028235e38)", path, d);
            return 0;
        }
        return 1;
    }
    path_of(path, sizeof path, w->name, w->idx, depth);
    if (json_is_array(v))
        api_fail(w->e, 422, "ragged_array", path,
                 "%s is an array where a number was expected: the nesting "
                 "must be the same everywhere (%s is %d-D)", path, w->name,
                 w->rank);
    else
        api_fail(w->e, 422, "not_a_number", path,
                 "%s is %s, not a number", path, codec_type_name(v));
    return 0;
}

int codec_tensor_shape(const json_t *v, const char *name, int rank,
                       int64_t dim[ENGINE_MAX_RANK], api_error *e)
{
    walk w = {.name = name, .rank = rank, .dim = dim, .e = e};
    char path[160];

    if (!json_is_array(v)) {
        api_fail(e, 422, "wrong_type", name,
                 "%s must be a %d-D array of numbers (%s), not %s", name,
                 rank, codec_rank_shape(rank), codec_type_name(v));
        return 0;
    }
    /* The shape is read along the first elements, then every element is
     * checked against it. */
    const json_t *p = v;
    int depth = 0;
    while (json_is_array(p)) {
        if (json_array_size(p) == 0) {
            path_of(path, sizeof path, name, w.idx, depth);
            api_fail(e, 422, "empty_dimension", path,
                     "%s is empty: every dimension of %s must be at least "
                     "1", path, name);
            return 0;
        }
        if (depth == rank) {
            api_fail(e, 422, "wrong_rank", name,
                     "%s must be %d-D (%s) but is nested deeper", name,
                     rank, codec_rank_shape(rank));
            return 0;
        }
        dim[depth] = (int64_t)json_array_size(p);
        w.idx[depth] = 0;
        p = json_array_get(p, 0);
        depth++;
    }
    if (!json_is_number(p)) {
        path_of(path, sizeof path, name, w.idx, depth);
        api_fail(e, 422, "not_a_number", path, "%s is %s, not a number",
                 path, codec_type_name(p));
        return 0;
    }
    if (depth != rank) {
        api_fail(e, 422, "wrong_rank", name,
                 "%s must be %d-D (%s) but is %d-D", name, rank,
                 codec_rank_shape(rank), depth);
        return 0;
    }
    return walk_check(&w, v, 0);
}

static float *fill_rec(float *out, const json_t *v)
{
    if (!json_is_array(v)) {
        *out = (float)json_number_value(v);
        return out + 1;
    }
    size_t n = json_array_size(v);
    for (size_t i = 0; i < n; i++)
        out = fill_rec(out, json_array_get(v, i));
    return out;
}

void codec_tensor_fill(engine_tensor *t, const json_t *v)
{
    fill_rec(t->data, v);
}

/* ==== fields ==== */

/* Levenshtein distance of two short strings, capped at 9. */
static int edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 30 || lb > 30)
        return 9;
    int row[32];
    for (size_t j = 0; j <= lb; j++)
        row[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int up = row[j];
            int best = diag + (a[i - 1] != b[j - 1]);
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

int codec_known_fields(const json_t *obj, const char *const *known,
                       api_error *e)
{
    const char *key;
    const json_t *val;
    json_object_foreach((json_t *)obj, key, val) {
        int found = 0;
        for (const char *const *k = known; *k; k++)
            if (strcmp(key, *k) == 0)
                found = 1;
        if (found)
            continue;
        const char *best = NULL;
        int bestd = 3;
        for (const char *const *k = known; *k; k++) {
            int d = edit_distance(key, *k);
            if (d < bestd) {
                bestd = d;
                best = *k;
            }
        }
        char list[160] = "";
        size_t n = 0;
        for (const char *const *k = known; *k && n < sizeof list; k++)
            n += (size_t)snprintf(list + n, sizeof list - n, "%s%s",
                                  k == known ? "" : ", ", *k);
        if (best)
            api_fail(e, 422, "unknown_field", key,
                     "unknown field \"%.60s\"; did you mean \"%s\"? "
                     "(fields: %s)", key, best, list);
        else
            api_fail(e, 422, "unknown_field", key,
                     "unknown field \"%.60s\" (fields: %s)", key, list);
        return 0;
    }
    return 1;
}

const json_t *codec_required(const json_t *obj, const char *key,
                             api_error *e)
{
    const json_t *v = json_object_get(obj, key);
    if (!v)
        api_fail(e, 422, "missing_field", key,
                 "missing required field \"%s\"", key);
    return v;
}
