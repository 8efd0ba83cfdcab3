/* test_b64.c -- api/b64.c against libsodium, the codec it replaced.
 *
 * Every case runs twice: on the path this CPU takes (AVX2 where it has
 * it) and with the scalar path forced.  The encoder must write
 * sodium_bin2base64's text; the decoder must give sodium_base642bin's
 * result, bytes, byte count and stop position (on bytes below 0x80: 1.0.18
 * misreads the others); codec_b64_floats must answer as it did with
 * libsodium (ref_b64_floats below is that version, kept verbatim) on
 * random texts of every length 0..300 and large ones, every
 * single-character corruption at many positions (every position for the
 * short ones), padding variants and bytes from 0x80 up. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "../../api/b64.h"
#include "../../api/codec.h"
#include "unit.h"

/* ==== the reference: codec_b64_floats as it was, on libsodium ==== */

#define REF_CHUNK 4096

static int64_t ref_b64_floats(const char *s, size_t len, float *out,
                              int64_t cap, int neg_inf_ok, size_t *bad_at,
                              int64_t *nonfinite)
{
    unsigned char buf[REF_CHUNK / 4 * 3];
    int64_t bytes = 0;
    *nonfinite = -1;
    for (size_t at = 0; at < len || at == 0; at += REF_CHUNK) {
        const size_t n = len - at < REF_CHUNK ? len - at : REF_CHUNK;
        const int last = at + n == len;
        size_t got = 0;
        const char *end = NULL;
        for (size_t i = 0; i < n; i++) {
            const unsigned char c = (unsigned char)s[at + i];
            if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                  (c >= '0' && c <= '9') || c == '+' || c == '/' ||
                  c == '=')) {
                *bad_at = at + i;
                return -1;
            }
        }
        if (sodium_base642bin(buf, sizeof buf, s + at, n, NULL, &got, &end,
                              sodium_base64_VARIANT_ORIGINAL) != 0 ||
            end != s + at + n || (!last && got != sizeof buf)) {
            *bad_at = end ? (size_t)(end - s) : at;
            if (!last && end == s + at + n) {
                const char *pad = memchr(s + at, '=', n);
                *bad_at = pad ? (size_t)(pad - s) : at + n;
            }
            return -1;
        }
        for (size_t i = 0; i + 4 <= got; i += 4) {
            const int64_t k = (bytes + (int64_t)i) / 4;
            const uint32_t u = (uint32_t)buf[i] | (uint32_t)buf[i + 1] << 8 |
                               (uint32_t)buf[i + 2] << 16 |
                               (uint32_t)buf[i + 3] << 24;
            float f;
            memcpy(&f, &u, sizeof f);
            if (*nonfinite < 0 && !isfinite(f) &&
                !(neg_inf_ok && f == -INFINITY))
                *nonfinite = k;
            if (out && k < cap)
                out[k] = f;
        }
        bytes += (int64_t)got;
        if (len == 0)
            break;
    }
    return bytes;
}

/* ==== helpers ==== */

static uint64_t rng_state = 0x2545f4914f6cdd1du;

static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}

static void random_bytes(unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)rnd();
}

/* sodium's text of bin[0..n) into a malloc'd NUL-terminated buffer */
static char *sodium_text(const unsigned char *bin, size_t n, size_t *tlen)
{
    const size_t cap = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL);
    char *t = malloc(cap);
    ck_assert_ptr_nonnull(t);
    sodium_bin2base64(t, cap, bin, n, sodium_base64_VARIANT_ORIGINAL);
    *tlen = cap - 1;
    return t;
}

static int ascii_only(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0x80)
            return 0;
    return 1;
}

/* b64_decode == sodium_base642bin (ASCII texts), for a few bin_max */
static void check_decode(const char *s, size_t len)
{
    if (!ascii_only(s, len))
        return;
    const size_t full = len / 4 * 3 + 3, exact = len / 4 * 3;
    /* room for all, exactly the groups, one byte short (libsodium's
     * ERANGE stop) */
    const size_t maxes[] = {full, exact, exact > 0 ? exact - 1 : 0};
    unsigned char *a = malloc(full + 32), *b = malloc(full + 32);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    for (size_t m = 0; m < sizeof maxes / sizeof maxes[0]; m++) {
        size_t alen = 77, blen = 77, aend = 0;
        const char *bend = NULL;
        const int ra = b64_decode(a, maxes[m], s, len, &alen, &aend);
        const int rb = sodium_base642bin(b, maxes[m], s, len, NULL, &blen,
                                         &bend, sodium_base64_VARIANT_ORIGINAL);
        if (!(ra == rb && alen == blen && aend == (size_t)(bend - s)))
            ck_abort_msg("decode of %zu chars \"%.80s\" bin_max %zu: ours rc %d "
                         "len %zu end %zu, libsodium rc %d len %zu end %zu",
                         len, s, maxes[m], ra, alen, aend, rb, blen,
                         (size_t)(bend - s));
        if (ra == 0 && memcmp(a, b, alen) != 0)
            ck_abort_msg("decoded bytes differ (%zu chars)", len);
    }
    free(a);
    free(b);
}

/* codec_b64_floats == ref_b64_floats: result, bad offset, non-finite
 * index and the floats, with and without an output, -inf allowed or not */
static void check_codec(const char *s, size_t len)
{
    const int64_t cap = (int64_t)(len / 4 * 3 / 4 + 1);
    float *a = malloc((size_t)cap * sizeof(float));
    float *b = malloc((size_t)cap * sizeof(float));
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    /* with an output and -inf refused; only checking and -inf allowed */
    for (int inf_ok = 0; inf_ok < 2; inf_ok++) {
        const int with_out = !inf_ok;
        size_t abad = 7, bbad = 7;
        int64_t anf = 5, bnf = 5;
        memset(a, 0xab, (size_t)cap * sizeof(float));
        memset(b, 0xab, (size_t)cap * sizeof(float));
        const int64_t ra = codec_b64_floats(s, len, with_out ? a : NULL, cap,
                                            inf_ok, &abad, &anf);
        const int64_t rb = ref_b64_floats(s, len, with_out ? b : NULL, cap,
                                          inf_ok, &bbad, &bnf);
        if (!(ra == rb && anf == bnf && (ra >= 0 || abad == bbad)))
            ck_abort_msg("codec_b64_floats of %zu chars \"%.80s\": ours %lld "
                         "bad_at %zu nonfinite %lld, reference %lld bad_at %zu "
                         "nonfinite %lld", len, s, (long long)ra, abad,
                         (long long)anf, (long long)rb, bbad, (long long)bnf);
        if (ra >= 0 && with_out &&
            memcmp(a, b, (size_t)cap * sizeof(float)) != 0)
            ck_abort_msg("codec_b64_floats: floats differ (%zu chars)", len);
    }
    free(a);
    free(b);
}

static void check_span(const char *s, size_t n)
{
    size_t want = 0;
    while (want < n) {
        const unsigned char c = (unsigned char)s[want];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              (c >= '0' && c <= '9') || c == '+' || c == '/' || c == '='))
            break;
        want++;
    }
    const size_t got = b64_alphabet_span(s, n);
    if (got != want)
        ck_abort_msg("b64_alphabet_span of %zu bytes: %zu, want %zu", n, got,
                     want);
}

static void check_all(const char *s, size_t len)
{
    check_decode(s, len);
    check_codec(s, len);
    check_span(s, len);
}

/* Replacement characters: outside the alphabet, '=', and ones inside it
 * (a changed digit can leave bad trailing bits). */
static const unsigned char subst[] = {'=', ' ', '\n', '\r', '\t', '-', '_',
                                      '.', '*', '\0', 0x7f, 0x80, 0xc3, 0xff,
                                      'A', 'B', '/', '+', 'z', '9'};

/* Every character of subst at position i of t (len chars). */
static void corrupt_at(char *t, size_t len, size_t i)
{
    const char keep = t[i];
    for (size_t k = 0; k < sizeof subst; k++) {
        t[i] = (char)subst[k];
        check_all(t, len);
    }
    t[i] = keep;
}

/* ==== the tests, each on both paths ==== */

static void both_paths(void (*f)(void))
{
    b64_use_simd(1);
    f();
    b64_use_simd(0);
    f();
    b64_use_simd(1);
}

static void encode_cases(void)
{
    unsigned char bin[4200];
    char ours[5700];
    for (size_t n = 0; n <= 4200; n += n < 300 ? 1 : 97) {
        random_bytes(bin, n);
        size_t tlen;
        char *want = sodium_text(bin, n, &tlen);
        memset(ours, '#', sizeof ours);
        ck_assert_uint_eq(b64_encode(ours, bin, n), tlen);
        ck_assert_msg(memcmp(ours, want, tlen) == 0, "encode of %zu bytes", n);
        ck_assert_int_eq(ours[tlen], '#');      /* nothing past the text */
        ck_assert_uint_eq(B64_ENCODED_LEN(n), tlen + 1);
        free(want);
    }
    /* every byte value in every position of a group */
    for (int v = 0; v < 256; v++) {
        for (int at = 0; at < 3; at++) {
            unsigned char b[36];
            memset(b, v == 0 ? 0xff : 0, sizeof b);
            for (size_t i = at; i < sizeof b; i += 3)
                b[i] = (unsigned char)v;
            size_t tlen;
            char *want = sodium_text(b, sizeof b, &tlen);
            ck_assert_uint_eq(b64_encode(ours, b, sizeof b), tlen);
            ck_assert(memcmp(ours, want, tlen) == 0);
            free(want);
        }
    }
}

START_TEST(b64_encode_equals_libsodium)
{
    both_paths(encode_cases);
}
END_TEST

static void encode_large_case(void)
{
    const size_t n = 3 * 1000 * 1000 + 2;
    unsigned char *bin = malloc(n);
    char *ours = malloc(n / 3 * 4 + 8);
    ck_assert_ptr_nonnull(bin);
    ck_assert_ptr_nonnull(ours);
    random_bytes(bin, n);
    size_t tlen;
    char *want = sodium_text(bin, n, &tlen);
    ck_assert_uint_eq(b64_encode(ours, bin, n), tlen);
    ck_assert(memcmp(ours, want, tlen) == 0);
    /* the decoder takes it back */
    unsigned char *back = malloc(n + 32);
    size_t got = 0, end = 0;
    ck_assert_int_eq(b64_decode(back, n, ours, tlen, &got, &end), 0);
    ck_assert_uint_eq(got, n);
    ck_assert_uint_eq(end, tlen);
    ck_assert(memcmp(back, bin, n) == 0);
    ck_assert_uint_eq(b64_alphabet_span(ours, tlen), tlen);
    free(back);
    free(want);
    free(ours);
    free(bin);
}

START_TEST(b64_large_round_trip)
{
    both_paths(encode_large_case);
}
END_TEST

static void valid_cases(void)
{
    unsigned char bin[300];
    for (size_t n = 0; n <= 300; n++) {
        random_bytes(bin, n);
        size_t tlen;
        char *t = sodium_text(bin, n, &tlen);
        check_all(t, tlen);
        free(t);
    }
}

START_TEST(b64_valid_every_length)
{
    both_paths(valid_cases);
}
END_TEST

static void corrupt_short_cases(void)
{
    unsigned char bin[60];
    for (size_t n = 0; n <= 60; n++) {
        random_bytes(bin, n);
        size_t tlen;
        char *t = sodium_text(bin, n, &tlen);
        for (size_t i = 0; i < tlen; i++)
            corrupt_at(t, tlen, i);
        free(t);
    }
}

START_TEST(b64_every_corruption_short)
{
    both_paths(corrupt_short_cases);
}
END_TEST

static void corrupt_long_cases(void)
{
    unsigned char bin[300];
    for (size_t n = 61; n <= 300; n++) {
        random_bytes(bin, n);
        size_t tlen;
        char *t = sodium_text(bin, n, &tlen);
        const size_t at[] = {0, 1, 2, 3, 31, 32, 33, 63, 64, tlen / 2,
                             tlen - 6, tlen - 5, tlen - 4, tlen - 3,
                             tlen - 2, tlen - 1, rnd() % tlen};
        for (size_t k = 0; k < sizeof at / sizeof at[0]; k++)
            if (at[k] < tlen)
                corrupt_at(t, tlen, at[k]);
        free(t);
    }
}

START_TEST(b64_corruptions_to_300)
{
    both_paths(corrupt_long_cases);
}
END_TEST

static void padding_cases(void)
{
    static const char *const cases[] = {
        "", "=", "==", "===", "====", "A", "A=", "A==", "A===", "AA", "AA=",
        "AA==", "AA===", "AAA", "AAA=", "AAA==", "AAAA", "AAAA=", "AAAA==",
        "AB==", "AAB=", "AAAB", "AQ==", "AAE=", "AB=", "AQ=", "AAE",
        "AA==AAAA", "AAA=AAAA", "AAAA=AAA", "AA=A", "A=AA", "=AAA",
        "AA==\n", "AAA= ", "AAAA\n", "AACAPw==", "AACAPw=", "AACAPw",
        "AACAPw===", "AACAPwAA", "AACA/w==", "AADAfw==", "AACAfw==",
        "AACAPw==AACAPw==", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy",
        "Zm9vYg=", "Zm9vYmE", "Zm9vYmF=", "Zm9vYh==", "Zm9vYmF+", "Zm9v-_==",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_all(cases[i], strlen(cases[i]));
}

START_TEST(b64_padding_variants)
{
    both_paths(padding_cases);
}
END_TEST

/* Large texts: the decoder's 32-character blocks, codec's 4096-character
 * chunks, a bad character or a padding on and around their edges. */
static void large_cases(void)
{
    const size_t n = 3 * 4096 + 1000;
    unsigned char *bin = malloc(n);
    ck_assert_ptr_nonnull(bin);
    random_bytes(bin, n);
    size_t tlen;
    char *t = sodium_text(bin, n, &tlen);
    check_all(t, tlen);
    const size_t at[] = {0, 31, 32, 33, 4063, 4064, 4092, 4093, 4094, 4095,
                         4096, 4097, 4098, 4099, 8160, 8191, 8192, 8193,
                         12287, 12288, tlen - 33, tlen - 32, tlen - 1};
    for (size_t k = 0; k < sizeof at / sizeof at[0]; k++) {
        corrupt_at(t, tlen, at[k]);
        /* "==" at a chunk's end, then more */
        if (at[k] + 2 < tlen) {
            char a = t[at[k]], b = t[at[k] + 1];
            t[at[k]] = t[at[k] + 1] = '=';
            check_all(t, tlen);
            t[at[k]] = a, t[at[k] + 1] = b;
        }
    }
    /* a text cut at every length near a chunk's end */
    for (size_t len = 4080; len <= 4100; len++)
        check_all(t, len);
    /* NaN and +inf bit patterns in a later chunk; -inf */
    static const char *const pats[] = {"AADAfw==", "AACAfw==", "AACA/w=="};
    for (size_t p = 0; p < 3; p++) {
        char *u = malloc(tlen + 8);
        memcpy(u, t, tlen);
        /* float k starts at byte 4k: a whole group every 3 floats */
        memcpy(u + 5000 / 16 * 16, pats[p], 6);
        check_all(u, tlen / 16 * 16);
        free(u);
    }
    free(t);
    free(bin);
}

START_TEST(b64_large_and_chunk_edges)
{
    both_paths(large_cases);
}
END_TEST

static void random_text_cases(void)
{
    /* texts of alphabet and '=' in random places, and random bytes */
    char t[200];
    for (int k = 0; k < 4000; k++) {
        const size_t len = rnd() % sizeof t;
        for (size_t i = 0; i < len; i++) {
            const uint32_t r = rnd();
            t[i] = r % 23 == 0 ? '=' : r % 31 == 0 ? (char)(r >> 8)
                                                   : "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                     "abcdefghijklmnopqrstuvwxyz"
                                                     "0123456789+/"[r % 64];
        }
        check_all(t, len);
    }
}

START_TEST(b64_random_texts)
{
    both_paths(random_text_cases);
}
END_TEST

static void span_cases(void)
{
    char t[100] = {0};
    for (size_t n = 0; n <= sizeof t; n++) {
        for (size_t i = 0; i < n; i++)
            t[i] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                   "0123456789+/="[i % 65];
        check_span(t, n);
        for (size_t i = 0; i < n; i++) {
            const char keep = t[i];
            for (int c = 0; c < 256; c++) {
                t[i] = (char)c;
                check_span(t, n);
            }
            t[i] = keep;
        }
    }
}

START_TEST(b64_alphabet_span_every_byte)
{
    both_paths(span_cases);
}
END_TEST

Suite *b64_suite(void)
{
    Suite *s = suite_create("b64");
    TCase *tc = tcase_create("b64");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, b64_encode_equals_libsodium);
    tcase_add_test(tc, b64_large_round_trip);
    tcase_add_test(tc, b64_valid_every_length);
    tcase_add_test(tc, b64_every_corruption_short);
    tcase_add_test(tc, b64_corruptions_to_300);
    tcase_add_test(tc, b64_padding_variants);
    tcase_add_test(tc, b64_large_and_chunk_edges);
    tcase_add_test(tc, b64_random_texts);
    tcase_add_test(tc, b64_alphabet_span_every_byte);
    suite_add_tcase(s, tc);
    return s;
}
