/* randn.c -- POST /randn: torch.randn / torch.rand of a shape under a
 * seed, bit for bit (engine/rng.c).  A plain endpoint: one input-less
 * draw, no model of the table. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void api_randn(const char *body, size_t len, api_response *res)
{
    static const char *const fields[] = {"seed", "shape", "dist", "format",
                                         NULL};
    api_error e = {0};
    api_seed seed;
    engine_tensor t = {0};
    int rand = 0;
    jw_format format;

    const api_parse_spec spec = {fields, NULL, NULL, 1, NULL, NULL, 0};
    json_t *root = api_parse_bounded(body, len, &spec, &e);
    if (!root)
        goto fail;
    const json_t *jshape, *jdist;
    if (!codec_known_fields(root, fields, &e) ||
        !codec_required(root, "seed", &e) ||
        !(jshape = codec_required(root, "shape", &e)) ||
        !api_read_seed(root, &seed, &e) ||
        !api_read_shape(jshape, "shape", 0, API_MAX_IN_RANK, 0, t.dim,
                        &t.rank, &e))
        goto fail;
    if ((jdist = json_object_get(root, "dist"))) {
        const char *d = json_string_value(jdist);
        if (!d) {
            api_fail(&e, 422, "wrong_type", "dist",
                     "dist must be \"randn\" or \"rand\", not %s",
                     codec_type_name(jdist));
            goto fail;
        }
        if (strcmp(d, "rand") && strcmp(d, "randn")) {
            api_fail(&e, 422, "unknown_dist", "dist",
                     "unknown dist \"%.40s\"; use \"randn\" (torch.randn) or "
                     "\"rand\" (torch.rand)", d);
            goto fail;
        }
        rand = strcmp(d, "rand") == 0;
    }
    if (!api_read_format(root, &format, &e))
        goto fail;
    json_decref(root);
    root = NULL;
    api_release_memory(len);

    const int64_t n = engine_numel(&t);
    t.data = malloc((size_t)(n ? n : 1) * sizeof *t.data);
    if (!t.data) {
        api_oom(res);
        return;
    }
    engine_rng g;
    engine_rng_seed(&g, seed.value);
    if (rand)
        engine_rand(&g, t.data, n);
    else
        engine_randn(&g, t.data, n);

    jsonw w;
    jw_init(&w);
    if (format != JW_NESTED) {
        /* the response is the tensor object itself */
        jw_tensor_as(&w, &t, 0, format, 1);
        free(t.data);
        api_respond_json(res, &w);
        return;
    }
    jw_lit(&w, "{\"shape\":[");
    for (int i = 0; i < t.rank; i++) {
        char num[24];
        snprintf(num, sizeof num, "%s%lld", i ? "," : "", (long long)t.dim[i]);
        jw_lit(&w, num);
    }
    jw_lit(&w, "],\"data\":");
    /* An empty tensor's text ends at its first 0 ([2, 0, 10**12] is
     * [[], []]): the uncapped entries after it are not walked. */
    engine_tensor shown = t;
    for (int i = 0; i < t.rank; i++)
        if (t.dim[i] == 0) {
            shown.rank = i + 1;
            break;
        }
    jw_tensor(&w, &shown, 0);
    jw_lit(&w, "}");
    free(t.data);
    api_respond_json(res, &w);
    return;

fail:
    json_decref(root);
    api_release_memory(len);
    api_error_response(res, &e);
}
