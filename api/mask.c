/* mask.c -- what /attention and /multihead share for cross-attention and
 * masks: "causal" with its default, "context" (B x S x C) and "mask"
 * (T x S or B x T x S; booleans, true = may attend as in
 * F.scaled_dot_product_attention, or numbers added to the scores, null
 * standing for -inf).
 *
 * Why a reader of its own for the mask: tensors hold only numbers
 * (codec.c, body.c), and a boolean mask is the common case.  It takes the
 * same three forms as every tensor: nested, {"shape", "data"} and
 * {"shape", "dtype": "float32", "b64"} (additive, -inf allowed).  A mask is
 * T x S, small next to x, so Jansson's tree is fast enough for it. */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ==== causal ==== */

int api_read_causal(const json_t *root, int has_ctx, int has_mask,
                    int *causal, api_error *e)
{
    if (!api_read_bool(root, "causal", !(has_ctx || has_mask), causal, e))
        return 0;
    if (*causal && has_mask) {
        api_fail(e, 422, "invalid_value", "causal",
                 "causal: true cannot be combined with a mask "
                 "(F.scaled_dot_product_attention refuses is_causal with "
                 "an attn_mask too); put the causal pattern into the mask "
                 "(false above the diagonal) or drop \"causal\"");
        return 0;
    }
    return 1;
}

/* ==== the mask's structure ==== */

enum { LEAF_NONE, LEAF_BOOL, LEAF_NUMBER };

static int leaf_kind(const json_t *v)
{
    if (json_is_boolean(v))
        return LEAF_BOOL;
    if (json_is_number(v) || json_is_null(v))
        return LEAF_NUMBER;
    return LEAF_NONE;
}

/* One element of a mask, at path: a boolean, or a number (within float32)
 * or null, of the same kind as the first element (*kind, which the first
 * sets; `first` is that element's path). */
static int check_leaf(const json_t *v, const char *path, int *kind,
                      const char *first, api_error *e)
{
    const int k = leaf_kind(v);
    if (k == LEAF_NONE) {
        api_fail(e, 422, "wrong_type", path,
                 "%s is %s; a mask holds booleans (true = may attend) or "
                 "numbers (added to the scores, null for -inf)", path,
                 codec_type_name(v));
        return 0;
    }
    if (!*kind) {
        *kind = k;
    } else if (k != *kind) {
        api_fail(e, 422, "wrong_type", path,
                 "%s is %s but %s is %s; a mask is all booleans (true = may "
                 "attend) or all numbers (added to the scores, null for "
                 "-inf), not both", path,
                 k == LEAF_BOOL ? "a boolean" : "a number", first,
                 *kind == LEAF_BOOL ? "a boolean" : "a number");
        return 0;
    }
    if (json_is_number(v) && !(fabs(json_number_value(v)) < FLOAT32_LIMIT)) {
        api_fail(e, 422, "out_of_range", path,
                 "%s = %g does not fit in float32 (largest magnitude "
                 "3.4028235e38; send null for -inf)", path,
                 json_number_value(v));
        return 0;
    }
    return 1;
}

/* The kind the elements of a nested mask have, and where it was set. */
typedef struct mkind {
    int kind;                       /* LEAF_BOOL or LEAF_NUMBER */
    char first[128];                /* path of the leaf that set kind */
} mkind;

/* An element of a nested mask: check_leaf, all of the kind of the
 * first. */
static int nested_leaf(const json_t *x, const char *path, void *ctx,
                       api_error *e)
{
    mkind *m = ctx;
    const int had = m->kind;
    if (!check_leaf(x, path, &m->kind, m->first, e))
        return 0;
    if (!had)
        snprintf(m->first, sizeof m->first, "%s", path);
    return 1;
}

/* ==== the mask as a tensor object ==== */

/* data[i] of a mask object: check_leaf, all of the kind of data[0]. */
static int object_leaf(const json_t *x, const char *path, void *kind,
                       api_error *e)
{
    return check_leaf(x, path, kind, "mask.data[0]", e);
}

/* {"shape": [T, S] or [B, T, S], "data": [flat booleans, or numbers and
 * nulls]} or {"shape", "dtype": "float32", "b64"} (additive; the bits of
 * -inf hide a key, NaN and +inf are refused): the same forms as every
 * tensor field (codec_object_read), with a mask's ranks, element kinds and
 * words. */
static int read_mask_object(const json_t *v, engine_tensor *t, int *is_bool,
                            api_error *e)
{
    int kind = 0;
    const codec_object_kind k = {
        .min_rank = 2, .max_rank = 3, .object = "mask", .unit = "value",
        .elements = "booleans or numbers",
        .f32_note = ", added to the scores",
        .dtype_note = "; a boolean mask goes in data", .neg_inf_ok = 1,
        .cap_each_dim = 1, .its_shape = 1, .leaf = object_leaf,
        .ctx = &kind};
    *t = (engine_tensor){NULL, 0, {0}};
    if (!codec_object_read(v, "mask", &k, &t->rank, t->dim, e))
        return 0;
    *is_bool = kind == LEAF_BOOL;       /* b64 sets no kind: numbers */
    return 1;
}

int api_mask_depth_ok(int depth, api_error *e)
{
    if (depth > 3) {
        api_fail(e, 422, "wrong_rank", "mask",
                 "mask must be 2-D (T x S) or 3-D (B x T x S) but is "
                 "nested deeper");
        return 0;
    }
    if (depth < 2) {
        api_fail(e, 422, "wrong_rank", "mask",
                 "mask must be 2-D (T x S) or 3-D (B x T x S) but is 1-D");
        return 0;
    }
    return 1;
}

int api_mask_shape(const json_t *v, engine_tensor *t, int *is_bool,
                   api_error *e)
{
    mkind m = {0};
    int64_t dim[ENGINE_MAX_RANK];
    codec_walk w = {.name = "mask", .unit = "value", .dim = dim,
                    .ragged_any = 1, .leaf = nested_leaf, .ctx = &m,
                    .e = e};
    if (json_is_object(v))
        return read_mask_object(v, t, is_bool, e);
    if (!json_is_array(v)) {
        api_fail(e, 422, "wrong_type", "mask",
                 "mask must be a T x S or B x T x S array of booleans or "
                 "numbers, or a tensor object ({\"shape\", \"data\"} or "
                 "{\"shape\", \"dtype\", \"b64\"}), not %s",
                 codec_type_name(v));
        return 0;
    }
    const int depth = codec_walk_descend(&w, v, 3, dim, NULL);
    if (depth < 0)
        return 0;
    if (!api_mask_depth_ok(depth, e))
        return 0;
    w.rank = depth;
    if (!codec_walk_check(&w, v, 0))
        return 0;
    *t = (engine_tensor){NULL, w.rank, {0}};
    memcpy(t->dim, dim, (size_t)w.rank * sizeof *dim);
    *is_bool = m.kind == LEAF_BOOL;
    return api_check_tensor_size(t, "mask", e);
}

/* ==== context and mask ==== */

int api_cross_check(const api_cross *c, int64_t B, int64_t T, int64_t C,
                    int64_t *S, api_error *e)
{
    *S = T;
    if (c->has_ctx) {
        const int64_t *d = c->ctx.dim;
        if (d[0] != B || d[2] != C) {
            api_fail(e, 422, "shape_mismatch", "context",
                     "context is %lld x %lld x %lld but must be B x S x C "
                     "with B = %lld and C = %lld as in x (S, its length, is "
                     "free)", (long long)d[0], (long long)d[1],
                     (long long)d[2], (long long)B, (long long)C);
            return 0;
        }
        *S = d[1];
        if (!api_check_seq(*S, "context length S", "context", e))
            return 0;
    }
    if (c->has_mask) {
        const engine_tensor *m = &c->mask;
        const int r = m->rank;
        const char *spath = c->has_ctx ? "S from context"
                                       : "S = T without a context";
        if ((r == 3 && m->dim[0] != B) || m->dim[r - 2] != T ||
            m->dim[r - 1] != *S) {
            if (r == 3)
                api_fail(e, 422, "shape_mismatch", "mask",
                         "mask is %lld x %lld x %lld but must be T x S = "
                         "%lld x %lld or B x T x S = %lld x %lld x %lld "
                         "(T from x, %s)", (long long)m->dim[0],
                         (long long)m->dim[1], (long long)m->dim[2],
                         (long long)T, (long long)*S, (long long)B,
                         (long long)T, (long long)*S, spath);
            else
                api_fail(e, 422, "shape_mismatch", "mask",
                         "mask is %lld x %lld but must be T x S = %lld x "
                         "%lld or B x T x S = %lld x %lld x %lld (T from x, "
                         "%s)", (long long)m->dim[0],
                         (long long)m->dim[1], (long long)T, (long long)*S,
                         (long long)B, (long long)T, (long long)*S, spath);
            return 0;
        }
    }
    return 1;
}

/* Row-major copy of the checked mask value v into out: bool -> 0 / -inf,
 * number -> itself as float32, null -> -inf. */
static float *fill_mask(float *out, const json_t *v, int is_bool)
{
    if (json_is_array(v)) {
        size_t i;
        const json_t *el;
        json_array_foreach(v, i, el)
            out = fill_mask(out, el, is_bool);
        return out;
    }
    if (is_bool)
        *out = json_is_true(v) ? 0.0f : -INFINITY;
    else
        *out = json_is_null(v) ? -INFINITY : (float)json_number_value(v);
    return out + 1;
}

void api_mask_fill(const json_t *jm, int is_bool, engine_tensor *t)
{
    if (!json_is_object(jm)) {
        fill_mask(t->data, jm, is_bool);
    } else if (json_object_get(jm, "data")) {
        fill_mask(t->data, json_object_get(jm, "data"), is_bool);
    } else {
        const json_t *b64 = json_object_get(jm, "b64");
        size_t bad;
        int64_t nonfinite;
        codec_b64_floats(json_string_value(b64), json_string_length(b64),
                         t->data, engine_numel(t), 1, &bad, &nonfinite);
    }
}

int api_cross_hidden(const api_cross *c, int causal, int64_t b, int64_t t,
                     int64_t s)
{
    if (causal && s > t)
        return 1;
    if (!c->has_mask)
        return 0;
    const engine_tensor *m = &c->mask;
    const int64_t T = m->dim[m->rank - 2], S = m->dim[m->rank - 1];
    const int64_t base = m->rank == 3 ? b * T * S : 0;
    return m->data[base + t * S + s] == -INFINITY;
}
