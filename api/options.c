/* options.c -- the request fields /attention and /multihead share:
 * booleans, "scale" and "return". */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

int api_read_bool(const json_t *root, const char *key, int dflt, int *out,
                  api_error *e)
{
    const json_t *v = json_object_get(root, key);
    *out = dflt;
    if (!v)
        return 1;
    if (!json_is_boolean(v)) {
        api_fail(e, 422, "wrong_type", key, "%s must be true or false, not %s",
                 key, codec_type_name(v));
        return 0;
    }
    *out = json_is_true(v);
    return 1;
}

int api_read_scale(const json_t *root, float *scale, api_error *e)
{
    const json_t *v = json_object_get(root, "scale");
    *scale = 1.0f;
    if (!v || json_is_true(v)) {
        *scale = NAN;           /* head_size**-0.5, once hs is known */
        return 1;
    }
    if (json_is_false(v))
        return 1;
    if (!json_is_number(v)) {
        api_fail(e, 422, "wrong_type", "scale",
                 "scale must be true (head_size**-0.5), false (no scaling) "
                 "or a number, not %s", codec_type_name(v));
        return 0;
    }
    double d = json_number_value(v);
    if (!(fabs(d) < FLOAT32_LIMIT)) {
        api_fail(e, 422, "out_of_range", "scale",
                 "scale = %g does not fit in float32", d);
        return 0;
    }
    *scale = (float)d;
    return 1;
}

int api_read_return(const json_t *root, const api_outputs *outs, int *order,
                    int *norder, api_error *e)
{
    const json_t *v = json_object_get(root, "return");
    *norder = 0;
    if (!v) {
        for (int i = 0; i < outs->ndefaults; i++)
            order[(*norder)++] = outs->defaults[i];
        return 1;
    }
    if (!json_is_array(v)) {
        api_fail(e, 422, "wrong_type", "return",
                 "return must be an array of names from %s; not %s",
                 outs->list, codec_type_name(v));
        return 0;
    }
    if (json_array_size(v) == 0) {
        api_fail(e, 422, "invalid_value", "return",
                 "return is empty; name at least one of %s", outs->list);
        return 0;
    }
    int seen[API_MAX_OUTPUTS] = {0};
    size_t i;
    const json_t *item;
    json_array_foreach(v, i, item) {
        char path[32];
        snprintf(path, sizeof path, "return[%zu]", i);
        if (!json_is_string(item)) {
            api_fail(e, 422, "wrong_type", path,
                     "%s must be a string, not %s", path,
                     codec_type_name(item));
            return 0;
        }
        int found = -1;
        for (int j = 0; j < outs->n; j++)
            if (strcmp(json_string_value(item), outs->names[j]) == 0)
                found = j;
        if (found < 0) {
            api_fail(e, 422, "unknown_return", path,
                     "%s = \"%.60s\" is not an output; choose from %s", path,
                     json_string_value(item), outs->list);
            return 0;
        }
        if (!seen[found]) {
            seen[found] = 1;
            order[(*norder)++] = found;
        }
    }
    return 1;
}

int api_read_format(const json_t *root, jw_format *format, api_error *e)
{
    static const char *const names[] = {"nested", "flat", "b64"};
    const json_t *v = json_object_get(root, "format");
    *format = JW_NESTED;
    if (!v)
        return 1;
    if (!json_is_string(v)) {
        api_fail(e, 422, "wrong_type", "format",
                 "format must be a string: \"nested\", \"flat\" or \"b64\", "
                 "not %s", codec_type_name(v));
        return 0;
    }
    for (int i = 0; i < 3; i++)
        if (strcmp(json_string_value(v), names[i]) == 0 &&
            strlen(names[i]) == json_string_length(v)) {
            *format = (jw_format)i;
            return 1;
        }
    api_fail(e, 422, "invalid_value", "format",
             "format \"%.40s\" is not one of \"nested\" (arrays in arrays), "
             "\"flat\" ({\"shape\", \"data\"}) or \"b64\" ({\"shape\", "
             "\"dtype\", \"b64\"})", json_string_value(v));
    return 0;
}

void api_respond_tensors(api_response *res, const engine_tensor *t,
                         const char *const *names, const int *order,
                         int norder, int masked, jw_format format)
{
    jsonw out;
    jw_init(&out);
    jw_lit(&out, "{");
    api_compute_begin();
    for (int i = 0; i < norder; i++) {
        const int o = order[i];
        if (i)
            jw_lit(&out, ",");
        jw_key(&out, names[o]);
        jw_tensor_as(&out, &t[o], o == masked, format,
                     api_threads_for_text(engine_numel(&t[o])));
    }
    api_compute_end();
    jw_lit(&out, "}");
    api_respond_json(res, &out);
}
