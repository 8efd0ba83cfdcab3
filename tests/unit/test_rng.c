/* test_rng.c -- engine/rng.c against PyTorch, bit for bit.
 *
 * Every case of tests/fixtures/rng/cases.jsonl (written by
 * tests/fixtures/gen_rng.py with Debian's PyTorch 1.13) is replayed twice:
 * once through engine_randn, which runs the Box-Muller kernel this CPU
 * dispatches to (its name is in the test case's name), once through the
 * scalar reference engine_randn_ref.  Both must be memcmp-equal to torch.
 * Then the two kernels are compared on every float uniform there is. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../engine/rng.h"
#include "unit.h"

#define CASES_FILE "tests/fixtures/rng/cases.jsonl"
#define CASES_DIR "tests/fixtures/rng/"

static json_t **cases;
static int ncases;
static char dispatch_name[96];

/* ==== fixture plumbing ==== */

static void load_cases(void)
{
    FILE *f = fopen(CASES_FILE, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    if (!f) {
        fprintf(stderr, "test_unit: %s not found (run from the repo root)\n",
                CASES_FILE);
        exit(EXIT_FAILURE);
    }
    while ((len = getline(&line, &cap, f)) > 0) {
        json_error_t err;
        json_t *c = json_loadb(line, (size_t)len, 0, &err);
        if (!c) {
            fprintf(stderr, "test_unit: %s:%d: %s\n", CASES_FILE, ncases + 1,
                    err.text);
            exit(EXIT_FAILURE);
        }
        cases = realloc(cases, (size_t)(ncases + 1) * sizeof *cases);
        cases[ncases++] = c;
    }
    free(line);
    fclose(f);
}

/* The seed is the decimal text of the Python int torch.manual_seed got:
 * a negative one is taken as two's complement, as torch does. */
static uint64_t parse_seed(const char *s)
{
    char *end;
    errno = 0;
    uint64_t v = s[0] == '-' ? (uint64_t)strtoll(s, &end, 10)
                             : strtoull(s, &end, 10);
    ck_assert_msg(errno == 0 && *end == '\0', "bad seed \"%s\"", s);
    return v;
}

/* Expected values: 8 hex digits of the float's bits each, or a raw
 * little-endian float32 file. */
static float *expected(const json_t *op, const char *key, int64_t n)
{
    float *want = malloc((size_t)(n ? n : 1) * sizeof *want);
    const char *file = json_string_value(json_object_get(op, "file"));
    if (file) {
        char path[512];
        snprintf(path, sizeof path, CASES_DIR "%s", file);
        FILE *f = fopen(path, "rb");
        ck_assert_msg(f != NULL, "%s: cannot open", path);
        ck_assert_msg(fread(want, sizeof *want, (size_t)n, f) == (size_t)n,
                      "%s: short", path);
        fclose(f);
        return want;
    }
    const char *hex = json_string_value(json_object_get(op, key));
    ck_assert_msg(hex && (int64_t)strlen(hex) == 8 * n, "%s: want %lld values",
                  key, (long long)n);
    for (int64_t i = 0; i < n; i++) {
        char word[9];
        memcpy(word, hex + 8 * i, 8);
        word[8] = '\0';
        uint32_t bits = (uint32_t)strtoul(word, NULL, 16);
        memcpy(&want[i], &bits, sizeof bits);
    }
    return want;
}

static void assert_same_bits(const float *got, const float *want, int64_t n,
                             const char *cname, int opi, const char *what,
                             const char *path)
{
    if (memcmp(got, want, (size_t)n * sizeof *got) == 0)
        return;
    int64_t i = 0, bad = 0;
    while (memcmp(&got[i], &want[i], sizeof *got) == 0)
        i++;
    for (int64_t j = 0; j < n; j++)
        bad += memcmp(&got[j], &want[j], sizeof *got) != 0;
    uint32_t g, w;
    memcpy(&g, &got[i], 4);
    memcpy(&w, &want[i], 4);
    ck_abort_msg("%s op %d (%s, randn kernel %s): %lld of %lld differ, first "
                 "[%lld] got %08x (%.9g) want %08x (%.9g)", cname, opi, what,
                 path, (long long)bad, (long long)n, (long long)i, g,
                 (double)got[i], w, (double)want[i]);
}

/* Replays one case on a fresh generator; ref selects engine_randn_ref. */
static void run_case(const json_t *c, int ref)
{
    const char *cname = json_string_value(json_object_get(c, "name"));
    const char *path = ref ? "scalar-fmaf (reference)" : engine_randn_kernel();
    engine_rng g;
    engine_rng_seed(&g, parse_seed(json_string_value(json_object_get(c, "seed"))));
    const json_t *ops = json_object_get(c, "ops");
    for (int k = 0; k < (int)json_array_size(ops); k++) {
        const json_t *op = json_array_get(ops, k);
        const char *what = json_string_value(json_object_get(op, "op"));
        if (strcmp(what, "linear") == 0) {
            const int64_t in = json_integer_value(json_object_get(op, "in"));
            const int64_t out = json_integer_value(json_object_get(op, "out"));
            const int has_bias = json_object_get(op, "bias") != NULL;
            float *w = malloc((size_t)(in * out + 1) * sizeof *w),
                  *b = malloc((size_t)(out + 1) * sizeof *b);
            engine_linear_init(&g, w, has_bias ? b : NULL, out, in);
            float *ww = expected(op, "weight", in * out);
            assert_same_bits(w, ww, in * out, cname, k, "linear weight", path);
            free(ww);
            if (has_bias) {
                float *wb = expected(op, "bias", out);
                assert_same_bits(b, wb, out, cname, k, "linear bias", path);
                free(wb);
            }
            free(w), free(b);
            continue;
        }
        const int64_t n = json_integer_value(json_object_get(op, "n"));
        float *got = malloc((size_t)(n + 1) * sizeof *got);
        if (strcmp(what, "randn") == 0)
            (ref ? engine_randn_ref : engine_randn)(&g, got, n);
        else if (strcmp(what, "rand") == 0)
            engine_rand(&g, got, n);
        else if (strcmp(what, "uniform") == 0)
            engine_uniform(&g, got, n,
                           json_number_value(json_object_get(op, "from")),
                           json_number_value(json_object_get(op, "to")));
        else
            ck_abort_msg("%s: unknown op %s", cname, what);
        float *want = expected(op, "f32", n);
        assert_same_bits(got, want, n, cname, k, what, path);
        free(want), free(got);
    }
}

START_TEST(fixture_dispatch_matches_torch)
{
    run_case(cases[_i], 0);
}
END_TEST

START_TEST(fixture_reference_matches_torch)
{
    run_case(cases[_i], 1);
}
END_TEST

/* ==== without torch ==== */

/* C++11 [rand.predef]: the 10000th output of mt19937 seeded 5489 (torch's
 * seeding is the standard one). */
START_TEST(mt19937_known_answer)
{
    engine_rng g;
    engine_rng_seed(&g, 5489);
    uint32_t v = 0;
    for (int i = 0; i < 10000; i++)
        v = engine_rng_u32(&g);
    ck_assert_uint_eq(v, 4123659995u);
}
END_TEST

START_TEST(seed_uses_low_32_bits_and_resets_cache)
{
    engine_rng a, b;
    float x[40], y[40];
    engine_rng_seed(&a, 7);
    engine_rng_seed(&b, 7 + (1ull << 32));
    ck_assert(b.seed == 7 + (1ull << 32));
    engine_randn(&a, x, 3);
    engine_randn(&b, y, 3);
    engine_rand(&a, x + 3, 37);
    engine_rand(&b, y + 3, 37);
    ck_assert_mem_eq(x, y, sizeof x);

    engine_rng_seed(&a, 11);
    engine_randn(&a, x, 1);              /* leaves a cached sample */
    ck_assert(a.has_normal);
    engine_rng_seed(&a, 11);
    ck_assert(!a.has_normal);
    engine_randn(&a, y, 1);
    ck_assert_mem_eq(x, y, sizeof(float));
}
END_TEST

/* Both Box-Muller kernels on every float uniform k * 2^-24 there is.
 * Pass 0: every k as the radius input, angle input 0 (cos 0 is exactly 1,
 * so the outputs are the radius and 0).  Pass 1: every k as the angle
 * input, with the radius input 6601320 * 2^-24, whose radius is exactly
 * 1.0 (pass 0 checks that too), so the outputs are cos and sin themselves.
 * Together: every value either half of the kernel can ever see. */
START_TEST(kernels_agree_on_every_uniform)
{
    if (strcmp(engine_randn_kernel(), "avx2+fma") != 0)
        return;                   /* only the scalar kernel on this CPU */
    enum { CHUNK = 1 << 16 };     /* blocks per round */
    const float RADIUS_ONE = 6601320 * 0x1p-24f;
    float one[16] = {RADIUS_ONE};
    engine_rngp_normal16_ref(one, 1, 0.0f, 1.0f);
    ck_assert_float_eq(one[0], 1.0f);
    float *a = malloc(CHUNK * 16 * sizeof *a), *b = malloc(CHUNK * 16 * sizeof *b);
    for (int pass = 0; pass < 2; pass++)
        for (uint32_t k0 = 0; k0 < (1u << 24); k0 += CHUNK * 8) {
            for (uint32_t blk = 0; blk < CHUNK; blk++)
                for (int j = 0; j < 8; j++) {
                    const float u = (float)(k0 + blk * 8 + (uint32_t)j) * 0x1p-24f;
                    a[blk * 16 + j] = pass == 0 ? u : RADIUS_ONE;
                    a[blk * 16 + 8 + j] = pass == 0 ? 0.0f : u;
                }
            memcpy(b, a, CHUNK * 16 * sizeof *a);
            ck_assert(engine_rngp_normal16_avx2(a, CHUNK, 0.0f, 1.0f));
            engine_rngp_normal16_ref(b, CHUNK, 0.0f, 1.0f);
            if (memcmp(a, b, CHUNK * 16 * sizeof *a) != 0)
                for (int i = 0; i < CHUNK * 16; i++)
                    ck_assert_msg(memcmp(&a[i], &b[i], 4) == 0,
                                  "pass %d, k0 %u, element %d: avx2 %.9g, "
                                  "scalar %.9g", pass, k0, i, (double)a[i],
                                  (double)b[i]);
        }
    free(a), free(b);
}
END_TEST

START_TEST(dispatch_equals_reference_on_draws)
{
    /* The kernels on real draws, every length up to 300 and a few more. */
    static float a[5000], b[5000];
    for (int n = 0; n < 5000; n = n < 300 ? n + 1 : n * 3 + 7) {
        engine_rng g, h;
        engine_rng_seed(&g, (uint64_t)n * 2654435761u);
        engine_rng_seed(&h, (uint64_t)n * 2654435761u);
        engine_randn(&g, a, n);
        engine_randn_ref(&h, b, n);
        ck_assert_msg(memcmp(a, b, (size_t)n * sizeof *a) == 0, "n=%d", n);
        ck_assert_mem_eq(g.state, h.state, sizeof g.state);
    }
}
END_TEST

Suite *rng_suite(void)
{
    Suite *s = suite_create("rng");
    load_cases();
    if (ncases < 100) {
        fprintf(stderr, "test_unit: only %d cases in %s\n", ncases, CASES_FILE);
        exit(EXIT_FAILURE);
    }
    /* The kernel in the name: a failure report says which path ran. */
    snprintf(dispatch_name, sizeof dispatch_name,
             "torch_fixtures[randn kernel %s]", engine_randn_kernel());
    TCase *tc = tcase_create(dispatch_name);
    tcase_add_loop_test(tc, fixture_dispatch_matches_torch, 0, ncases);
    suite_add_tcase(s, tc);
    tc = tcase_create("torch_fixtures[randn kernel scalar-fmaf reference]");
    tcase_add_loop_test(tc, fixture_reference_matches_torch, 0, ncases);
    suite_add_tcase(s, tc);
    tc = tcase_create("generator");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, mt19937_known_answer);
    tcase_add_test(tc, seed_uses_low_32_bits_and_resets_cache);
    tcase_add_test(tc, kernels_agree_on_every_uniform);
    tcase_add_test(tc, dispatch_equals_reference_on_draws);
    suite_add_tcase(s, tc);
    printf("rng: torch.randn's 16-wide kernel on this CPU: %s\n",
           engine_randn_kernel());
    return s;
}
