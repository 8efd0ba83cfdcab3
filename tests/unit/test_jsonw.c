/* test_jsonw.c -- the response writer: shortest round-trip float32 text. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../api/jsonw.h"
#include "../../api/numtext.h"
#include "unit.h"

#include <sodium.h>

static int roundtrips(const char *s, float f)
{
    float g = strtof(s, NULL);
    return memcmp(&g, &f, sizeof f) == 0;   /* bit-exact, -0 included */
}

START_TEST(format_known_values)
{
    static const struct { float f; const char *s; } cases[] = {
        {0.0f, "0"}, {-0.0f, "-0"}, {1.0f, "1"}, {0.5f, "0.5"},
        {0.1f, "0.1"}, {1.0f / 3.0f, "0.33333334"}, {-2.5f, "-2.5"},
        {1e-45f, "1e-45"}, {FLT_MAX, "3.4028235e+38"}, {16777216.0f, "16777216"},
        {1e20f, "1e+20"}, {1e21f, "1e+21"}, {1e-7f, "1e-7"},
        {1e14f, "100000000000000"}, {1e15f, "1e+15"}, {3e20f, "3e+20"},
        {0.000001f, "0.000001"}, {-184936096.0f, "-184936100"},
    };
    char s[32];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        jw_format_float(s, cases[i].f);
        ck_assert_str_eq(s, cases[i].s);
    }
    jw_format_float(s, INFINITY);
    ck_assert_str_eq(s, "null");
    jw_format_float(s, NAN);
    ck_assert_str_eq(s, "null");
}
END_TEST

/* Every text reads back bit-exact and no shorter precision would. */
START_TEST(format_is_shortest_roundtrip)
{
    enum { N = 200000 };
    uint32_t bits = 0x12345678u;
    char s[32], shorter[400];
    for (int i = 0; i < N; i++) {
        bits = bits * 1664525u + 1013904223u;
        float f;
        memcpy(&f, &bits, sizeof f);
        if (!isfinite(f))
            continue;
        int n = jw_format_float(s, f);
        ck_assert_int_eq((int)strlen(s), n);
        ck_assert_msg(roundtrips(s, f), "%s does not read back as %a", s,
                      (double)f);
        /* significant digits of s: its digits before any exponent, less
         * leading zeros and (as in 184936100) trailing ones */
        const char *p0 = s, *pe = strchr(s, 'e');
        if (!pe)
            pe = s + n;
        while (p0 < pe && (*p0 == '-' || *p0 == '0' || *p0 == '.'))
            p0++;
        while (pe > p0 && (pe[-1] == '0' || pe[-1] == '.'))
            pe--;
        int digits = 0;
        for (const char *p = p0; p < pe; p++)
            digits += *p >= '0' && *p <= '9';
        if (digits > 1) {
            snprintf(shorter, sizeof shorter, "%.*g", digits - 1, (double)f);
            ck_assert_msg(!roundtrips(shorter, f), "%s is shorter than %s",
                          shorter, s);
        }
    }
}
END_TEST

START_TEST(tensor_nested_and_masked)
{
    float d[6] = {1, -INFINITY, 0.25f, 2, 3, -INFINITY};
    engine_tensor t = {d, 3, {1, 2, 3}};
    jsonw w;
    jw_init(&w);
    jw_tensor(&w, &t, 1);
    jw_lit(&w, " ");
    jw_tensor(&w, &t, 0);
    size_t len;
    char *s = jw_take(&w, &len);
    ck_assert_ptr_nonnull(s);
    static const char want[] =
        "[[[1,null,0.25],[2,3,null]]] [[[1,null,0.25],[2,3,null]]]";
    ck_assert_uint_eq(len, sizeof want - 1);
    ck_assert(memcmp(s, want, len) == 0);
    free(s);
}
END_TEST

/* Runs of one value copy the first one's text (numbers() in jsonw.c):
 * the text must be what formatting each number gives, across zeros,
 * -0, nulls, row ends and values differing in the last bit only. */
START_TEST(repeated_values_same_text)
{
    const float third = 1.0f / 3, next = nextafterf(third, 1.0f);
    float d[16] = {third, third, third, 0, third, -0.0f, -0.0f, next,
                   next, third, -INFINITY, third, 2.5f, 2.5f, 2.5f, 2.5f};
    char want[512];
    size_t k = 0;
    for (int r = 0; r < 4; r++) {
        want[k++] = r ? ',' : '[';
        want[k++] = '[';
        for (int i = 0; i < 4; i++) {
            const float f = d[r * 4 + i];
            if (i)
                want[k++] = ',';
            if (f == -INFINITY) {
                memcpy(want + k, "null", 4);
                k += 4;
            } else {
                k += (size_t)jw_format_float(want + k, f);
            }
        }
        want[k++] = ']';
    }
    want[k++] = ']';
    engine_tensor t = {d, 2, {4, 4}};
    jsonw w;
    jw_init(&w);
    jw_tensor(&w, &t, 1);
    size_t len;
    char *s = jw_take(&w, &len);
    ck_assert_ptr_nonnull(s);
    ck_assert_msg(len == k && memcmp(s, want, k) == 0, "%.*s\n%.*s",
                  (int)len, s, (int)k, want);
    free(s);
}
END_TEST

/* Many threads write exactly the text one thread does. */
START_TEST(tensor_mt_matches_single)
{
    static const int64_t shapes[][4] = {
        {7, 0, 0, 0}, {1, 5, 0, 0}, {3, 4, 0, 0}, {2, 3, 4, 0}, {1, 1, 9, 0},
        {8, 1, 1, 0}, {5, 2, 3, 4}, {1, 1, 1, 1}, {2, 1, 3, 1}, {3, 7, 2, 0}};
    const int64_t *sh = shapes[_i];
    engine_tensor t = {NULL, 0, {0}};
    for (int i = 0; i < 4 && sh[i]; i++)
        t.dim[t.rank++] = sh[i];
    const int64_t n = engine_numel(&t);
    t.data = malloc((size_t)n * sizeof *t.data);
    unit_fill_random(t.data, n, 40 + _i);
    for (int64_t i = 0; i < n; i += 3)
        t.data[i] = -INFINITY;
    for (int nullify = 0; nullify < 2; nullify++)
        for (int threads = 1; threads <= 5; threads++) {
            jsonw a, b;
            jw_init(&a);
            jw_init(&b);
            jw_tensor(&a, &t, nullify);
            jw_tensor_mt(&b, &t, nullify, threads);
            ck_assert_msg(a.len == b.len && memcmp(a.buf, b.buf, a.len) == 0,
                          "shape %d, %d threads:\n%.*s\n%.*s", _i, threads,
                          (int)a.len, a.buf, (int)b.len, b.buf);
            jw_free(&a);
            jw_free(&b);
        }
    free(t.data);
}
END_TEST

/* The flat and b64 forms of a small tensor, text for text.  The b64 text
 * is what Python's base64.b64encode(struct.pack("<4f", 1, -inf, 0.5, -2))
 * gives, spelled out from the IEEE bits below. */
START_TEST(tensor_formats_exact_text)
{
    float v[4] = {1.0f, -INFINITY, 0.5f, -2.0f};
    engine_tensor t = {v, 2, {2, 2}};
    static const struct { jw_format f; int null_inf; const char *text; } c[] = {
        {JW_NESTED, 1, "[[1,null],[0.5,-2]]"},
        {JW_FLAT, 1, "{\"shape\":[2,2],\"data\":[1,null,0.5,-2]}"},
        /* 0x3f800000 0xff800000 0x3f000000 0xc0000000, little-endian:
         * 00 00 80 3f | 00 00 80 ff | 00 00 00 3f | 00 00 00 c0 */
        {JW_B64, 1, "{\"shape\":[2,2],\"dtype\":\"float32\","
                    "\"b64\":\"AACAPwAAgP8AAAA/AAAAwA==\"}"},
        {JW_B64, 0, "{\"shape\":[2,2],\"dtype\":\"float32\","
                    "\"b64\":\"AACAPwAAgP8AAAA/AAAAwA==\"}"},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        jsonw w;
        jw_init(&w);
        jw_tensor_as(&w, &t, c[i].null_inf, c[i].f, 1);
        ck_assert_msg(w.len == strlen(c[i].text) &&
                      memcmp(w.buf, c[i].text, w.len) == 0, "%zu: %.*s", i,
                      (int)w.len, w.buf);
        jw_free(&w);
    }
    /* A 0-d tensor: shape [] and one number. */
    engine_tensor z = {v + 2, 0, {0}};
    jsonw w;
    jw_init(&w);
    jw_tensor_as(&w, &z, 0, JW_FLAT, 1);
    jw_raw(&w, "|", 1);
    jw_tensor_as(&w, &z, 0, JW_B64, 1);
    static const char want[] = "{\"shape\":[],\"data\":[0.5]}|{\"shape\":[],"
                               "\"dtype\":\"float32\",\"b64\":\"AAAAPw==\"}";
    ck_assert_msg(w.len == strlen(want) && memcmp(w.buf, want, w.len) == 0,
                  "%.*s", (int)w.len, w.buf);
    jw_free(&w);
}
END_TEST

/* Flat on many threads is the single-threaded text, and the numbers are
 * exactly the nested text's, brackets aside. */
START_TEST(flat_mt_matches_nested)
{
    engine_tensor t = {NULL, 3, {3, 7, 1001}};
    const int64_t n = engine_numel(&t);
    t.data = malloc((size_t)n * sizeof *t.data);
    unit_fill_random(t.data, n, 77);
    for (int64_t i = 0; i < n; i += 5)
        t.data[i] = -INFINITY;
    jsonw nested;
    jw_init(&nested);
    jw_tensor(&nested, &t, 1);
    /* the nested text without its brackets */
    char *want = malloc(nested.len + 64);
    size_t k = (size_t)sprintf(want, "{\"shape\":[3,7,1001],\"data\":[");
    for (size_t i = 0; i < nested.len; i++)
        if (nested.buf[i] != '[' && nested.buf[i] != ']')
            want[k++] = nested.buf[i];
    k += (size_t)sprintf(want + k, "]}");
    for (int threads = 1; threads <= 5; threads++) {
        jsonw w;
        jw_init(&w);
        jw_tensor_as(&w, &t, 1, JW_FLAT, threads);
        ck_assert_msg(w.len == k && memcmp(w.buf, want, k) == 0,
                      "%d threads", threads);
        jw_free(&w);
    }
    free(want);
    jw_free(&nested);
    free(t.data);
}
END_TEST

/* b64 in pieces on several threads is one libsodium call's text, for
 * tensors around the 3072-byte pieces (768 floats) and every n % 3. */
START_TEST(b64_mt_matches_one_call)
{
    static const int64_t sizes[] = {1, 2, 3, 767, 768, 769, 1536, 2305,
                                    100000};
    float *v = malloc(100000 * sizeof *v);
    unit_fill_random(v, 100000, 5);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        engine_tensor t = {v, 1, {sizes[i]}};
        const size_t bytes = (size_t)sizes[i] * 4;
        const size_t cap = sodium_base64_ENCODED_LEN(
            bytes, sodium_base64_VARIANT_ORIGINAL);
        char *want = malloc(cap + 64);
        int n = sprintf(want, "{\"shape\":[%lld],\"dtype\":\"float32\","
                        "\"b64\":\"", (long long)sizes[i]);
        sodium_bin2base64(want + n, cap, (const unsigned char *)v, bytes,
                          sodium_base64_VARIANT_ORIGINAL);
        strcat(want, "\"}");
        for (int threads = 1; threads <= 4; threads++) {
            jsonw w;
            jw_init(&w);
            jw_tensor_as(&w, &t, 0, JW_B64, threads);
            ck_assert_msg(w.len == strlen(want) &&
                          memcmp(w.buf, want, w.len) == 0,
                          "%lld floats, %d threads", (long long)sizes[i],
                          threads);
            jw_free(&w);
        }
        free(want);
    }
    free(v);
}
END_TEST

/* The Ryu writer against its reference (double-conversion), on every
 * 4099th bit pattern: identical text.  (make check-floats does all.) */
START_TEST(format_matches_reference)
{
    char s[32], ref[32];
    for (uint64_t b = (uint64_t)_i; b < (1ull << 32); b += 4099 * 4) {
        const uint32_t bits = (uint32_t)b;
        float f;
        memcpy(&f, &bits, sizeof f);
        jw_format_float(s, f);
        numtext_format_float(ref, f);
        ck_assert_msg(strcmp(s, ref) == 0, "0x%08x: \"%s\", reference \"%s\"",
                      bits, s, ref);
    }
}
END_TEST

Suite *jsonw_suite(void)
{
    Suite *s = suite_create("jsonw");
    TCase *tc = tcase_create("floats");
    tcase_add_test(tc, format_known_values);
    tcase_add_test(tc, format_is_shortest_roundtrip);
    tcase_add_loop_test(tc, format_matches_reference, 0, 4);
    tcase_add_test(tc, tensor_nested_and_masked);
    tcase_add_test(tc, repeated_values_same_text);
    tcase_add_loop_test(tc, tensor_mt_matches_single, 0, 10);
    tcase_add_test(tc, tensor_formats_exact_text);
    tcase_add_test(tc, flat_mt_matches_nested);
    tcase_add_test(tc, b64_mt_matches_one_call);
    suite_add_tcase(s, tc);
    return s;
}
