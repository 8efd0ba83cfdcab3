/* seed.c -- the seeded forms of requests: "seed", "shape", "head_size".
 * A seed stands for torch.manual_seed(seed) followed by the draws of the
 * lecture's program; see engine/rng.h for the generator itself. */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int api_read_seed(const json_t *root, api_seed *s, api_error *e)
{
    const json_t *v = json_object_get(root, "seed");
    s->present = v != NULL;
    s->value = 0;
    if (!v)
        return 1;
    if (json_is_integer(v)) {
        /* torch stores a negative seed as its two's complement. */
        s->value = (uint64_t)json_integer_value(v);
        return 1;
    }
    if (json_is_string(v)) {
        /* Seeds from 2^63 to 2^64-1 do not fit a JSON integer as Jansson
         * (and many clients) read them, so they may come as a string. */
        const char *t = json_string_value(v);
        char *end;
        errno = 0;
        int neg = t[0] == '-';
        if (neg) {
            long long x = strtoll(t, &end, 10);
            s->value = (uint64_t)x;
        } else {
            s->value = strtoull(t, &end, 10);
        }
        if (t[neg] >= '0' && t[neg] <= '9' && !errno && *end == '\0')
            return 1;
        api_fail(e, 422, "out_of_range", "seed",
                 "seed \"%.40s\" is not an integer from -2^63 to 2^64-1 "
                 "(the seeds torch.manual_seed accepts)", t);
        return 0;
    }
    api_fail(e, 422, "wrong_type", "seed",
             "seed must be an integer (or a decimal string for seeds above "
             "2^63-1), not %s", codec_type_name(v));
    return 0;
}

int api_read_shape(const json_t *v, const char *name, int min_rank,
                   int max_rank, int64_t min_dim, int64_t *dim, int *rank,
                   api_error *e)
{
    if (!json_is_array(v)) {
        api_fail(e, 422, "wrong_type", name,
                 "%s must be an array of integers, not %s", name,
                 codec_type_name(v));
        return 0;
    }
    const int n = (int)json_array_size(v);
    if (n < min_rank || n > max_rank) {
        if (min_rank == max_rank)
            api_fail(e, 422, "wrong_rank", name,
                     "%s must have %d dimensions, not %d", name, min_rank, n);
        else
            api_fail(e, 422, "wrong_rank", name,
                     "%s must have %d to %d dimensions, not %d", name,
                     min_rank, max_rank, n);
        return 0;
    }
    int64_t numel = 1;
    for (int i = 0; i < n; i++) {
        const json_t *d = json_array_get(v, (size_t)i);
        char path[48];
        snprintf(path, sizeof path, "%s[%d]", name, i);
        if (!codec_need_integer(d, path, e))
            return 0;
        const json_int_t x = json_integer_value(d);
        if (x < min_dim) {
            api_fail(e, 422, min_dim > 0 && x == 0 ? "empty_dimension"
                                                   : "out_of_range", path,
                     "%s = %lld; dimensions must be at least %lld", path,
                     (long long)x, (long long)min_dim);
            return 0;
        }
        dim[i] = x;
        /* After a 0 the tensor is empty whatever follows (torch.randn(0,
         * 10**12) is): nothing is allocated or written for the entries
         * past it, so they are not capped. */
        if (numel == 0)
            continue;
        if (!api_check_size(x, path, path, e))
            return 0;
        /* Both factors are under the cap, so the product cannot overflow
         * before the check below catches it. */
        numel *= x;
        if (!api_check_size(numel, "the tensor this shape describes", name,
                            e))
            return 0;
    }
    *rank = n;
    return 1;
}

int api_read_count(const json_t *v, const char *name, int64_t *out,
                   api_error *e)
{
    if (!codec_need_integer(v, name, e))
        return 0;
    const json_int_t x = json_integer_value(v);
    if (x < 1) {
        api_fail(e, 422, "out_of_range", name,
                 "%s = %lld; it must be at least 1", name, (long long)x);
        return 0;
    }
    if (!api_check_size(x, name, name, e))
        return 0;               /* a size no tensor here could have */
    *out = x;
    return 1;
}
