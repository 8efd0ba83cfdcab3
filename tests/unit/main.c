/* main.c -- runs every Check suite; exit status is the failure count. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../api/b64.h"
#include "../../engine/engine.h"
#include "unit.h"

void unit_fill_random(float *p, int64_t n, uint64_t seed)
{
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (int64_t i = 0; i < n; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        p[i] = (float)((double)(s >> 11) / 9007199254740992.0 * 2.0 - 1.0);
    }
}

static int close_rec(const json_t *got, const json_t *want, double rtol,
                     double atol, char *path, size_t plen, char *why,
                     size_t cap)
{
    if (json_is_number(want)) {
        if (!json_is_number(got)) {
            snprintf(why, cap, "%s: expected a number", path);
            return 0;
        }
        double g = json_number_value(got), w = json_number_value(want);
        double d = g > w ? g - w : w - g;
        double lim = atol + rtol * (w < 0 ? -w : w);
        if (!(d <= lim)) {
            snprintf(why, cap, "%s: got %.9g, want %.9g", path, g, w);
            return 0;
        }
        return 1;
    }
    if (json_is_array(want)) {
        if (!json_is_array(got) || json_array_size(got) != json_array_size(want)) {
            snprintf(why, cap, "%s: expected an array of %zu", path,
                     json_array_size(want));
            return 0;
        }
        for (size_t i = 0; i < json_array_size(want); i++) {
            size_t n = strlen(path);
            snprintf(path + n, plen - n, "[%zu]", i);
            int ok = close_rec(json_array_get(got, i), json_array_get(want, i),
                               rtol, atol, path, plen, why, cap);
            path[n] = '\0';
            if (!ok)
                return 0;
        }
        return 1;
    }
    if (json_is_object(want)) {
        const char *key;
        const json_t *v;
        if (!json_is_object(got)) {
            snprintf(why, cap, "%s: expected an object", path);
            return 0;
        }
        json_object_foreach((json_t *)want, key, v) {
            size_t n = strlen(path);
            snprintf(path + n, plen - n, ".%s", key);
            const json_t *g = json_object_get(got, key);
            int ok = g ? close_rec(g, v, rtol, atol, path, plen, why, cap) : 0;
            if (!g)
                snprintf(why, cap, "%s: missing", path);
            path[n] = '\0';
            if (!ok)
                return 0;
        }
        return 1;
    }
    if (!json_equal((json_t *)got, (json_t *)want)) {
        snprintf(why, cap, "%s: values differ", path);
        return 0;
    }
    return 1;
}

int unit_json_close(const json_t *got, const json_t *want, double rtol,
                    double atol, char *why, size_t cap)
{
    char path[256] = "$";
    return close_rec(got, want, rtol, atol, path, sizeof path, why, cap);
}

int main(void)
{
    printf("engine: attention loops on this CPU: %s\n",
           engine_attention_kernel());
    printf("b64: base64 on this CPU: %s\n", b64_impl());
    SRunner *sr = srunner_create(engine_suite());
    srunner_add_suite(sr, jsonw_suite());
    srunner_add_suite(sr, api_suite());
    srunner_add_suite(sr, oom_suite());
    srunner_add_suite(sr, rng_suite());
    srunner_add_suite(sr, v2_suite());
    srunner_add_suite(sr, gpt_suite());
    srunner_add_suite(sr, safetensors_suite());
    srunner_add_suite(sr, b64_suite());
    srunner_add_suite(sr, parse_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
