/* test_gpt.c -- engine/gpt.c against the lecture's own modules in PyTorch.
 *
 * tests/fixtures/gpt/ (written by tests/fixtures/gpt/gen_gpt.py with
 * Debian's PyTorch 1.13 from models/lecture_gpt.py, the lecture's classes
 * verbatim):
 *   rng/draws.json  normal_(mean, std) and exponential_ bit patterns
 *   block/NAME.json  Block(n_embd, n_head): seeded parameters bit for bit,
 *                 every intermediate within the contract's tolerance
 *   gpt/NAME.json    GPTLanguageModel: seeded parameters (with _init_weights)
 *                 bit for bit, logits/probs/weights/hidden within the
 *                 tolerance, generate()'s tokens exactly
 * plus the fast Linear against its plain reference and thread-count
 * independence. */
#include <glob.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../api/gpt_model.h"
#include "../../engine/gpt.h"
#include "unit.h"

/* The contract's tolerance; a fixture may carry a looser "tolerance". */
static double ATOL = 1e-5, RTOL = 1e-5;

static glob_t block_files, gpt_files;

/* ==== fixture plumbing ==== */

static json_t *load(const char *path)
{
    json_error_t err;
    json_t *j = json_load_file(path, 0, &err);
    ck_assert_msg(j != NULL, "%s: %s", path, err.text);
    return j;
}

static int64_t flatten(const json_t *v, float *out, int64_t n, int64_t cap)
{
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++)
            n = flatten(json_array_get(v, i), out, n, cap);
        return n;
    }
    if (n < cap)
        out[n] = json_is_null(v) ? -INFINITY : (float)json_number_value(v);
    return n + 1;
}

/* A nested JSON array of exactly `want` numbers (null = -inf), malloc'd. */
static float *tensor_of(const json_t *v, int64_t want, const char *what)
{
    ck_assert_msg(v != NULL, "%s: missing", what);
    float *p = malloc((size_t)(want ? want : 1) * sizeof *p);
    const int64_t n = flatten(v, p, 0, want);
    ck_assert_msg(n == want, "%s: %lld numbers, want %lld", what,
                  (long long)n, (long long)want);
    return p;
}

static void assert_bits(const float *got, const float *want, int64_t n,
                        const char *file, const char *what)
{
    for (int64_t i = 0; i < n; i++)
        if (memcmp(&got[i], &want[i], sizeof *got) != 0) {
            uint32_t g, w;
            memcpy(&g, &got[i], 4), memcpy(&w, &want[i], 4);
            ck_abort_msg("%s: %s[%lld] got %08x (%.9g) want %08x (%.9g)",
                         file, what, (long long)i, g, (double)got[i], w,
                         (double)want[i]);
        }
}

static void assert_close(const float *got, const json_t *wantj, int64_t n,
                         const char *file, const char *what)
{
    float *want = tensor_of(wantj, n, what);
    for (int64_t i = 0; i < n; i++) {
        const double g = got[i], w = want[i];
        const int ok = isinf(w) ? g == w
                                : fabs(g - w) <= ATOL + RTOL * fabs(w);
        if (!ok) {
            free(want);
            ck_abort_msg("%s: %s[%lld] got %.9g want %.9g", file, what,
                         (long long)i, g, w);
        }
    }
    free(want);
}

/* got within the tolerance of want (both floats, -inf only with -inf). */
static void assert_near(const float *got, const float *want, int64_t n,
                        const char *file, const char *what)
{
    for (int64_t i = 0; i < n; i++) {
        const double g = got[i], w = want[i];
        const int ok = isinf(w) ? g == w
                                : fabs(g - w) <= ATOL + RTOL * fabs(w);
        ck_assert_msg(ok, "%s: %s[%lld] got %.9g want %.9g", file, what,
                      (long long)i, g, w);
    }
}

static int64_t geti(const json_t *o, const char *k)
{
    const json_t *v = json_object_get(o, k);
    ck_assert_msg(json_is_integer(v), "%s: not an integer", k);
    return json_integer_value(v);
}

/* Every state_dict tensor of `ps` against the fixture's object `params`:
 * same names, same count, every value bit for bit. */
static void check_params(const engine_param *ps, int64_t np,
                         const json_t *params, const char *file)
{
    ck_assert_msg((size_t)np == json_object_size(params),
                  "%s: %lld tensors, torch's state_dict has %zu", file,
                  (long long)np, json_object_size(params));
    for (int64_t i = 0; i < np; i++) {
        const int64_t n = ps[i].dim[0] * (ps[i].rank == 2 ? ps[i].dim[1] : 1);
        float *want = tensor_of(json_object_get(params, ps[i].name), n,
                                ps[i].name);
        assert_bits(ps[i].data, want, n, file, ps[i].name);
        free(want);
    }
}

/* Explicit weights: each state_dict tensor read from the object by name. */
static void load_params(const engine_param *ps, int64_t np, const json_t *obj)
{
    for (int64_t i = 0; i < np; i++) {
        const int64_t n = ps[i].dim[0] * (ps[i].rank == 2 ? ps[i].dim[1] : 1);
        float *v = tensor_of(json_object_get(obj, ps[i].name), n, ps[i].name);
        memcpy(ps[i].data, v, (size_t)n * sizeof *v);
        free(v);
    }
}

/* ==== the generator paths ==== */

START_TEST(rng_normal_exponential_bits)
{
    json_t *cases = load("tests/fixtures/gpt/rng/draws.json");
    ck_assert_int_ge((int)json_array_size(cases), 4);
    for (size_t c = 0; c < json_array_size(cases); c++) {
        const json_t *cs = json_array_get(cases, c);
        engine_rng g;
        engine_rng_seed(&g, (uint64_t)geti(cs, "seed"));
        const json_t *draws = json_object_get(cs, "draws");
        for (size_t k = 0; k < json_array_size(draws); k++) {
            const json_t *d = json_array_get(draws, k);
            const int64_t n = geti(d, "n");
            const char *op = json_string_value(json_object_get(d, "op"));
            float *got = malloc((size_t)n * sizeof *got);
            float *want = malloc((size_t)n * sizeof *want);
            const json_t *bits = json_object_get(d, "bits");
            ck_assert_int_eq((int64_t)json_array_size(bits), n);
            for (int64_t i = 0; i < n; i++) {
                uint32_t u = (uint32_t)json_integer_value(json_array_get(bits, i));
                memcpy(&want[i], &u, 4);
            }
            if (strcmp(op, "normal") == 0)
                engine_normal(&g, got, n,
                              json_number_value(json_object_get(d, "mean")),
                              json_number_value(json_object_get(d, "std")));
            else
                engine_exponential(&g, got, n, json_number_value(
                                                   json_object_get(d, "lambda")));
            char what[64];
            snprintf(what, sizeof what, "case %zu draw %zu (%s of %lld)", c, k,
                     op, (long long)n);
            assert_bits(got, want, n, "rng/draws.json", what);
            free(got), free(want);
        }
    }
    json_decref(cases);
}
END_TEST

/* ==== Block ==== */

START_TEST(block_matches_pytorch)
{
    const char *file = block_files.gl_pathv[_i];
    json_t *fx = load(file);
    const json_t *rq = json_object_get(fx, "request");
    const json_t *ex = json_object_get(fx, "expect");
    const int64_t C = geti(rq, "n_embd"), H = geti(rq, "n_head");
    const int64_t hs = C / H, D = H * hs;
    const json_t *xj = json_object_get(rq, "x");
    const int64_t B = (int64_t)json_array_size(xj);
    const int64_t T = (int64_t)json_array_size(json_array_get(xj, 0));
    float *x = tensor_of(xj, B * T * C, "x");

    float *buf = malloc((size_t)engine_block_numel(C, H) * sizeof *buf);
    engine_block_weights w;
    engine_block_layout(&w, buf, C, H);
    engine_param ps[256];
    const int64_t np = engine_block_params(ps, 256, "", &w, C, H);
    ck_assert_int_eq(np, 3 * H + 10);
    if (json_object_get(rq, "seed")) {
        engine_rng g;
        engine_rng_seed(&g, (uint64_t)geti(rq, "seed"));
        engine_block_init(&g, &w, C, H);
    } else {
        load_params(ps, np, json_object_get(rq, "weights"));
    }
    check_params(ps, np, json_object_get(fx, "params"), file);

    const int64_t BTC = B * T * C, QS = B * H * T * hs, SS = B * H * T * T;
    struct { const char *name; int64_t n; } outs[] = {
        {"ln1", BTC}, {"q", QS}, {"k", QS}, {"v", QS}, {"scores", SS},
        {"weights", SS}, {"heads", B * T * D}, {"attn", BTC},
        {"resid", BTC}, {"ln2", BTC}, {"hidden", 4 * BTC}, {"out", BTC}};
    float *o[12];
    for (int i = 0; i < 12; i++)
        o[i] = malloc((size_t)outs[i].n * sizeof(float));
    engine_block_trace tr = {o[0], o[1], o[2], o[3], o[4], o[5], o[6], o[7],
                             o[8], o[9], o[10]};
    float *scratch = malloc((size_t)engine_block_scratch(B, T, C, H, 2) *
                            sizeof *scratch);
    engine_block(o[11], &tr, x, &w, B, T, C, H, scratch, 1);
    for (int i = 0; i < 12; i++)
        assert_close(o[i], json_object_get(ex, outs[i].name), outs[i].n, file,
                     outs[i].name);

    /* No trace, two threads: engine_attend's streaming path (no T x T
     * matrix held), within the tolerance of PyTorch too. */
    float *out2 = malloc((size_t)BTC * sizeof *out2);
    engine_block(out2, NULL, x, &w, B, T, C, H, scratch, 2);
    assert_close(out2, json_object_get(ex, "out"), BTC, file,
                 "out (2 threads, streaming)");

    for (int i = 0; i < 12; i++)
        free(o[i]);
    free(out2), free(scratch), free(buf), free(x);
    json_decref(fx);
}
END_TEST

/* ==== GPTLanguageModel ==== */

typedef struct model {
    engine_gpt_weights w;
    engine_block_weights blocks[8];
    float *buf;
} model;

static void model_seeded(model *m, const json_t *rq)
{
    engine_gpt_config cfg = {geti(rq, "vocab_size"), geti(rq, "block_size"),
                             geti(rq, "n_embd"), geti(rq, "n_head"),
                             geti(rq, "n_layer")};
    ck_assert_int_le(cfg.n_layer, 8);
    m->buf = malloc((size_t)engine_gpt_numel(&cfg) * sizeof *m->buf);
    engine_gpt_layout(&m->w, m->blocks, m->buf, &cfg);
    engine_rng g;
    engine_rng_seed(&g, (uint64_t)geti(rq, "seed"));
    engine_gpt_init(&g, &m->w);
}

static int64_t *ids_of(const json_t *a, int64_t *B, int64_t *T)
{
    *B = (int64_t)json_array_size(a);
    *T = (int64_t)json_array_size(json_array_get(a, 0));
    int64_t *p = malloc((size_t)(*B * *T) * sizeof *p);
    for (int64_t b = 0; b < *B; b++)
        for (int64_t t = 0; t < *T; t++)
            p[b * *T + t] = json_integer_value(
                json_array_get(json_array_get(a, (size_t)b), (size_t)t));
    return p;
}

START_TEST(gpt_matches_pytorch)
{
    const char *file = gpt_files.gl_pathv[_i];
    json_t *fx = load(file);
    const json_t *rq = json_object_get(fx, "request");
    const json_t *ex = json_object_get(fx, "expect");
    model m;
    model_seeded(&m, rq);
    const engine_gpt_config *c = &m.w.cfg;
    const int64_t V = c->vocab_size, C = c->n_embd, H = c->n_head;
    const int64_t NL = c->n_layer;

    engine_param ps[512];
    const int64_t np = engine_gpt_params(ps, 512, &m.w);
    ck_assert_int_eq(np, 6 + NL * (3 * H + 10));
    int64_t total = 0;
    for (int64_t i = 0; i < np; i++)
        total += ps[i].dim[0] * (ps[i].rank == 2 ? ps[i].dim[1] : 1);
    ck_assert_int_eq(total, engine_gpt_numel(c));
    check_params(ps, np, json_object_get(fx, "params"), file);

    int64_t B, T;
    int64_t *idx = ids_of(json_object_get(rq, "idx"), &B, &T);
    float *logits = malloc((size_t)(B * T * V) * sizeof(float));
    float *probs = malloc((size_t)(B * V) * sizeof(float));
    float *wei = malloc((size_t)(B * NL * H * T * T) * sizeof(float));
    float *hid = malloc((size_t)(B * (NL + 1) * T * C) * sizeof(float));
    float *scratch = malloc((size_t)engine_gpt_scratch(c, B, T, 2) *
                            sizeof(float));
    const engine_gpt_out all = {logits, probs, wei, hid, 0};
    engine_gpt_forward(&all, idx, T, B, T, &m.w, scratch, 1);
    assert_close(logits, json_object_get(ex, "logits"), B * T * V, file,
                 "logits");
    assert_close(probs, json_object_get(ex, "probs"), B * V, file, "probs");
    assert_close(wei, json_object_get(ex, "weights"), B * NL * H * T * T, file,
                 "weights");
    assert_close(hid, json_object_get(ex, "hidden"), B * (NL + 1) * T * C,
                 file, "hidden");

    /* The last position only, two threads, no weights kept (the streaming
     * attention): the full forward's last rows, within the tolerance. */
    float *last = malloc((size_t)(B * V) * sizeof(float));
    float *probs2 = malloc((size_t)(B * V) * sizeof(float));
    const engine_gpt_out lo = {last, probs2, NULL, NULL, 1};
    engine_gpt_forward(&lo, idx, T, B, T, &m.w, scratch, 2);
    for (int64_t b = 0; b < B; b++)
        assert_near(last + b * V, logits + (b * T + T - 1) * V, V, file,
                    "last-only logits");
    assert_near(probs2, probs, B * V, file, "last-only probs");

    /* generate: torch.manual_seed(seed); model.generate(idx, n) */
    const json_t *gen = json_object_get(rq, "generate");
    if (gen) {
        int64_t GB, T0;
        int64_t *p = ids_of(json_object_get(gen, "idx"), &GB, &T0);
        const int64_t N = geti(gen, "max_new_tokens");
        int64_t *out = malloc((size_t)(GB * (T0 + N)) * sizeof *out);
        float *gs = malloc((size_t)engine_gpt_generate_scratch(c, GB, 1) *
                           sizeof(float));
        engine_rng g;
        engine_rng_seed(&g, (uint64_t)geti(gen, "seed"));
        engine_gpt_generate(out, p, GB, T0, N, &m.w, &g, gs, 1, NULL);
        int64_t WB, WT;
        int64_t *want = ids_of(json_object_get(ex, "generated"), &WB, &WT);
        ck_assert_int_eq(WB, GB);
        ck_assert_int_eq(WT, T0 + N);
        for (int64_t i = 0; i < GB * WT; i++)
            ck_assert_msg(out[i] == want[i], "%s: generated[%lld][%lld] = %lld,"
                          " torch sampled %lld", file, (long long)(i / WT),
                          (long long)(i % WT), (long long)out[i],
                          (long long)want[i]);
        free(want), free(gs), free(out), free(p);
    }
    free(last), free(probs2), free(scratch), free(hid), free(wei);
    free(probs), free(logits), free(idx), free(m.buf);
    json_decref(fx);
}
END_TEST

/* ==== the shipped model ==== */

/* models/shakespeare as attnd loads it, against PyTorch loading the same
 * exported file (shipped/shakespeare.json): logits on held-out text within
 * the tolerance, and generate()'s very tokens. */
START_TEST(shipped_model_matches_pytorch)
{
    const char *file = "tests/fixtures/gpt/shipped/shakespeare.json";
    json_t *fx = load(file);
    const json_t *rq = json_object_get(fx, "request");
    const json_t *ex = json_object_get(fx, "expect");
    api_gpt_model *all;
    int n;
    char err[512];
    ck_assert_msg(api_gpt_load_all(&all, &n, "models", err, sizeof err) == 0,
                  "%s", err);
    const api_gpt_model *m = NULL;
    for (int i = 0; i < n; i++)
        if (strcmp(all[i].name, "shakespeare") == 0)
            m = &all[i];
    ck_assert_msg(m != NULL, "models/shakespeare not loaded");
    const engine_gpt_config *c = &m->w.cfg;
    const int64_t V = c->vocab_size;

    const json_t *texts = json_object_get(rq, "text");
    const int64_t B = (int64_t)json_array_size(texts), T = c->block_size;
    int64_t *idx = malloc((size_t)(B * T) * sizeof *idx);
    for (int64_t b = 0; b < B; b++) {
        const json_t *t = json_array_get(texts, (size_t)b);
        ck_assert_int_eq(api_gpt_encode(m, json_string_value(t),
                                        json_string_length(t), idx + b * T, T),
                         T);
    }
    float *logits = malloc((size_t)(B * T * V) * sizeof(float));
    float *probs = malloc((size_t)(B * V) * sizeof(float));
    float *scratch = malloc((size_t)engine_gpt_scratch(c, B, T, 2) * sizeof(float));
    const engine_gpt_out o = {logits, probs, NULL, NULL, 0};
    engine_gpt_forward(&o, idx, T, B, T, &m->w, scratch, 2);
    const json_t *tol = json_object_get(ex, "tolerance");
    ATOL = json_number_value(json_object_get(tol, "atol"));
    RTOL = json_number_value(json_object_get(tol, "rtol"));
    ck_assert(ATOL > 0 && ATOL <= 1e-4 && RTOL > 0 && RTOL <= 1e-4);
    assert_close(logits, json_object_get(ex, "logits"), B * T * V, file,
                 "logits");
    assert_close(probs, json_object_get(ex, "probs"), B * V, file, "probs");
    ATOL = RTOL = 1e-5;

    const json_t *gen = json_object_get(rq, "generate");
    const char *prompt = json_string_value(json_object_get(gen, "text"));
    const int64_t N = geti(gen, "max_new_tokens");
    int64_t p[64];
    const int64_t T0 = api_gpt_encode(m, prompt, strlen(prompt), p, 64);
    ck_assert_int_gt(T0, 0);
    int64_t *out = malloc((size_t)(T0 + N) * sizeof *out);
    float *gs = malloc((size_t)engine_gpt_generate_scratch(c, 1, 1) * sizeof(float));
    engine_rng g;
    engine_rng_seed(&g, (uint64_t)geti(gen, "seed"));
    engine_gpt_generate(out, p, 1, T0, N, &m->w, &g, gs, 1, NULL);
    int64_t WB, WT;
    int64_t *want = ids_of(json_object_get(ex, "generated"), &WB, &WT);
    ck_assert_int_eq(WT, T0 + N);
    char text[1024];
    api_gpt_decode(m, out, T0 + N, text, sizeof text);
    for (int64_t i = 0; i < WT; i++)
        ck_assert_msg(out[i] == want[i], "%s: generated[%lld] = %lld, torch "
                      "sampled %lld; attnd wrote: %s", file, (long long)i,
                      (long long)out[i], (long long)want[i], text);
    ck_assert_str_eq(text, json_string_value(json_object_get(ex,
                                                             "generated_text")));
    free(want), free(gs), free(out), free(scratch), free(probs), free(logits);
    free(idx);
    api_gpt_free_all(all, n);
    json_decref(fx);
}
END_TEST

/* ==== kernels against their references ==== */

START_TEST(linear_equals_reference)
{
    static const int64_t sizes[][3] = {{1, 1, 1}, {7, 5, 3}, {64, 16, 64},
                                       {33, 96, 65}, {5, 1, 17}};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        const int64_t N = sizes[s][0], I = sizes[s][1], O = sizes[s][2];
        float *x = malloc((size_t)(N * I) * sizeof *x);
        float *w = malloc((size_t)(O * I) * sizeof *w);
        float *b = malloc((size_t)O * sizeof *b);
        float *o1 = malloc((size_t)(N * O) * sizeof *o1);
        float *o2 = malloc((size_t)(N * O) * sizeof *o2);
        float *wt = malloc((size_t)(O * I) * sizeof *wt);
        unit_fill_random(x, N * I, 1 + s);
        unit_fill_random(w, O * I, 100 + s);
        unit_fill_random(b, O, 200 + s);
        engine_tensor xt = {x, 2, {N, I}}, t1 = {o1, 2, {N, O}},
                      t2 = {o2, 2, {N, O}};
        for (int withb = 0; withb < 2; withb++) {
            engine_linear(&t1, &xt, w, withb ? b : NULL, wt, 2);
            engine_linear_ref(&t2, &xt, w, withb ? b : NULL);
            assert_bits(o1, o2, N * O, "engine_linear", "vs engine_linear_ref");
        }
        free(x), free(w), free(b), free(o1), free(o2), free(wt);
    }
}
END_TEST

START_TEST(layernorm_relu_basics)
{
    /* LayerNorm of a constant row is b (zero variance, no NaN); of
     * [1, 3] with w = 1, b = 0 it is [-1, 1] up to eps. */
    float x[4] = {5, 5, 1, 3}, o[4], w[2] = {1, 1}, b[2] = {0.5f, -2};
    engine_tensor xt = {x, 2, {2, 2}}, ot = {o, 2, {2, 2}};
    engine_layernorm(&ot, &xt, w, b, 1e-5f, 1);
    ck_assert(o[0] == 0.5f && o[1] == -2.0f);
    ck_assert(fabs(o[2] - (-1 + 0.5)) < 1e-4 && fabs(o[3] - (1 - 2)) < 1e-4);
    float r[4] = {-1.0f, 0.0f, 2.5f, NAN};
    engine_relu(r, 4);
    ck_assert(r[0] == 0.0f && !signbit(r[0]) && r[2] == 2.5f && isnan(r[3]));
}
END_TEST

START_TEST(multinomial_picks_certain_token)
{
    /* A one-hot distribution is sampled as that token whatever the draws,
     * and every call draws exactly B*V exponentials. */
    float p[2 * 5] = {0, 0, 1, 0, 0, 0, 0, 0, 0, 1}, q[10];
    int64_t out[2];
    engine_rng g, h;
    engine_rng_seed(&g, 5), engine_rng_seed(&h, 5);
    for (int k = 0; k < 20; k++) {
        engine_multinomial1(out, 1, p, q, 2, 5, &g);
        ck_assert(out[0] == 2 && out[1] == 4);
    }
    float sink[200];
    engine_exponential(&h, sink, 200, 1.0);
    ck_assert_uint_eq(engine_rng_u32(&g), engine_rng_u32(&h));
}
END_TEST

Suite *gpt_suite(void)
{
    Suite *s = suite_create("gpt");
    glob("tests/fixtures/gpt/block/*.json", 0, NULL, &block_files);
    glob("tests/fixtures/gpt/gpt/*.json", 0, NULL, &gpt_files);
    if (block_files.gl_pathc < 4 || gpt_files.gl_pathc < 3) {
        fprintf(stderr, "test_unit: tests/fixtures/gpt not found (run from "
                "the repo root)\n");
        exit(EXIT_FAILURE);
    }
    TCase *tc = tcase_create("pytorch");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, rng_normal_exponential_bits);
    tcase_add_loop_test(tc, block_matches_pytorch, 0,
                        (int)block_files.gl_pathc);
    tcase_add_loop_test(tc, gpt_matches_pytorch, 0, (int)gpt_files.gl_pathc);
    tcase_add_test(tc, shipped_model_matches_pytorch);
    suite_add_tcase(s, tc);
    tc = tcase_create("kernels");
    tcase_add_test(tc, linear_equals_reference);
    tcase_add_test(tc, layernorm_relu_basics);
    tcase_add_test(tc, multinomial_picks_certain_token);
    suite_add_tcase(s, tc);
    return s;
}
