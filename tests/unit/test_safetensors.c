/* test_safetensors.c -- api/safetensors.c and api/gpt_model.c.
 *
 * tests/fixtures/gpt/models/tiny/ is a model repository written by
 * models/export.py (through tests/fixtures/gpt/gen_gpt.py) from the
 * lecture's GPTLanguageModel seeded as gpt/gpt_seed1337_*.json: loading it
 * must give exactly the parameters engine_gpt_init gives for that seed.
 * Then broken copies of it, written here into a temporary repository, must
 * each be refused with a message naming the file, the tensor and what was
 * expected, and leave nothing loaded. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../api/gpt_model.h"
#include "../../api/safetensors.h"
#include "unit.h"

#define TINY_DIR "tests/fixtures/gpt/models"

static char tmpdir[256];

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "%s: cannot open", path);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*len + 1);
    ck_assert(fread(b, 1, *len, f) == *len);
    fclose(f);
    return b;
}

static void spit(const char *path, const void *b, size_t len)
{
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "%s: cannot write", path);
    ck_assert(fwrite(b, 1, len, f) == len);
    fclose(f);
}

/* ==== the exported fixture model ==== */

START_TEST(loads_pytorch_export_bit_for_bit)
{
    api_gpt_model m;
    char err[512];
    ck_assert_msg(api_gpt_load(&m, TINY_DIR, "tiny", err, sizeof err) == 0,
                  "%s", err);
    ck_assert_str_eq(m.name, "tiny");
    ck_assert_int_eq(m.w.cfg.vocab_size, 65);
    ck_assert_int_eq(m.w.cfg.n_layer, 2);
    ck_assert_uint_eq(m.vocab[0], '\n');
    ck_assert_uint_eq(m.vocab[64], 0xe9);

    /* torch.manual_seed(1337); GPTLanguageModel() with the same sizes */
    api_gpt_model s = m;
    engine_block_weights blocks[2];
    float *buf = malloc((size_t)engine_gpt_numel(&m.w.cfg) * sizeof *buf);
    engine_gpt_layout(&s.w, blocks, buf, &m.w.cfg);
    engine_rng g;
    engine_rng_seed(&g, 1337);
    engine_gpt_init(&g, &s.w);
    ck_assert(memcmp(buf, m.buf, (size_t)engine_gpt_numel(&m.w.cfg) *
                     sizeof *buf) == 0);
    free(buf);

    /* text through the vocabulary and back */
    int64_t ids[16];
    const char *text = "HI \xc3\xa9!\n";
    ck_assert_int_eq(api_gpt_encode(&m, text, strlen(text), ids, 16), 6);
    ck_assert_int_eq(ids[3], 64);
    char back[16];
    ck_assert_uint_eq(api_gpt_decode(&m, ids, 6, back, sizeof back),
                      strlen(text));
    ck_assert_str_eq(back, text);
    ck_assert_int_eq(api_gpt_encode(&m, "ab", 2, ids, 16), -1);  /* 'a' */
    ck_assert_int_eq(api_gpt_encode(&m, "A\xc3", 2, ids, 16), -2);
    api_gpt_free(&m);

    api_gpt_model *all;
    int n;
    ck_assert_msg(api_gpt_load_all(&all, &n, TINY_DIR, err, sizeof err) == 0,
                  "%s", err);
    ck_assert_int_eq(n, 1);
    api_gpt_free_all(all, n);
}
END_TEST

/* ==== broken models ==== */

/* A copy of tiny as tmpdir/<name>/ whose model.safetensors is rewritten
 * by `edit` (header JSON object and the data), or replaced by raw bytes. */
typedef void (*edit_fn)(json_t *header, unsigned char **data, size_t *dlen);

static void make_model(const char *name, edit_fn edit, const char *config)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    mkdir(path, 0700);
    size_t len;
    char src[512];
    snprintf(src, sizeof src, TINY_DIR "/tiny/config.json");
    unsigned char *cfg = slurp(src, &len);
    snprintf(path, sizeof path, "%s/%s/config.json", tmpdir, name);
    if (config)
        spit(path, config, strlen(config));
    else
        spit(path, cfg, len);
    free(cfg);

    unsigned char *st = slurp(TINY_DIR "/tiny/model.safetensors", &len);
    uint64_t hn = 0;
    for (int i = 7; i >= 0; i--)
        hn = hn << 8 | st[i];
    json_t *h = json_loadb((const char *)st + 8, (size_t)hn, 0, NULL);
    ck_assert(h != NULL);
    size_t dlen = len - 8 - hn;
    unsigned char *data = malloc(dlen);
    memcpy(data, st + 8 + hn, dlen);
    free(st);
    if (edit)
        edit(h, &data, &dlen);
    char *ht = json_dumps(h, JSON_COMPACT);
    json_decref(h);
    const size_t hl = strlen(ht);
    unsigned char *out = malloc(8 + hl + dlen);
    for (int i = 0; i < 8; i++)
        out[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(out + 8, ht, hl);
    memcpy(out + 8 + hl, data, dlen);
    snprintf(path, sizeof path, "%s/%s/model.safetensors", tmpdir, name);
    spit(path, out, 8 + hl + dlen);
    free(out), free(ht), free(data);
}

/* Drops a tensor and its bytes, shifting the later offsets down. */
static void drop(json_t *h, unsigned char **data, size_t *dlen,
                 const char *name)
{
    json_t *t = json_object_get(h, name);
    const json_int_t b = json_integer_value(json_array_get(
        json_object_get(t, "data_offsets"), 0));
    const json_int_t e = json_integer_value(json_array_get(
        json_object_get(t, "data_offsets"), 1));
    memmove(*data + b, *data + e, *dlen - (size_t)e);
    *dlen -= (size_t)(e - b);
    json_object_del(h, name);
    const char *k;
    json_t *v;
    json_object_foreach(h, k, v) {
        json_t *of = json_object_get(v, "data_offsets");
        if (!of)
            continue;
        for (size_t i = 0; i < 2; i++) {
            json_int_t x = json_integer_value(json_array_get(of, i));
            if (x >= e)
                json_array_set_new(of, i, json_integer(x - (e - b)));
        }
    }
}

static void e_missing(json_t *h, unsigned char **d, size_t *n)
{
    drop(h, d, n, "lm_head.bias");
}

static void e_shape(json_t *h, unsigned char **d, size_t *n)
{
    json_t *t = json_object_get(h, "lm_head.weight");
    json_object_set_new(t, "shape", json_pack("[ii]", 16, 65));
}

static void e_dtype(json_t *h, unsigned char **d, size_t *n)
{
    /* ln_f.bias (16 floats, 64 bytes) declared as 32 F16 values */
    json_t *t = json_object_get(h, "ln_f.bias");
    json_object_set_new(t, "dtype", json_string("F16"));
    json_object_set_new(t, "shape", json_pack("[i]", 32));
}

static void e_truncated(json_t *h, unsigned char **d, size_t *n)
{
    *n -= 100;
}

static void e_unexpected(json_t *h, unsigned char **d, size_t *n)
{
    /* a third layer's tensor after the data, for a 2-layer config */
    *d = realloc(*d, *n + 4);
    memset(*d + *n, 0, 4);
    json_object_set_new(h, "blocks.2.ln1.weight",
                        json_pack("{s:s,s:[i],s:[I,I]}", "dtype", "F32",
                                  "shape", 1, "data_offsets",
                                  (json_int_t)*n, (json_int_t)(*n + 4)));
    *n += 4;
}

static void e_overlap(json_t *h, unsigned char **d, size_t *n)
{
    json_t *t = json_object_get(h, "ln_f.bias");
    json_t *of = json_object_get(t, "data_offsets");
    const json_int_t b = json_integer_value(json_array_get(of, 0));
    json_array_set_new(of, 0, json_integer(b - 4));
    json_array_set_new(of, 1, json_integer(b - 4 + 64));
}

static void expect_refused(const char *name, edit_fn edit, const char *config,
                           const char *const *needles)
{
    make_model(name, edit, config);
    api_gpt_model m;
    char err[512] = "";
    ck_assert_msg(api_gpt_load(&m, tmpdir, name, err, sizeof err) == -1,
                  "%s: loaded", name);
    ck_assert_ptr_null(m.buf);
    for (int i = 0; needles[i]; i++)
        ck_assert_msg(strstr(err, needles[i]) != NULL,
                      "%s: \"%s\" not in: %s", name, needles[i], err);
    /* In a repository, one bad model fails the whole load. */
    api_gpt_model *all = (api_gpt_model *)1;
    int n = 7;
    ck_assert(api_gpt_load_all(&all, &n, tmpdir, err, sizeof err) == -1);
    ck_assert(all == NULL && n == 0);
    char path[512];
    snprintf(path, sizeof path, "rm -rf '%s/%s'", tmpdir, name);
    ck_assert(system(path) == 0);
}

START_TEST(bad_models_are_refused)
{
    make_model("good", NULL, NULL);
    {
        api_gpt_model *all;
        int n;
        char err[512];
        ck_assert_msg(api_gpt_load_all(&all, &n, tmpdir, err, sizeof err) == 0,
                      "%s", err);
        ck_assert_int_eq(n, 1);
        api_gpt_free_all(all, n);
    }
    expect_refused("missing", e_missing, NULL, (const char *const[]){
        "missing/model.safetensors", "lm_head.bias is missing",
        "expected F32 [65]", NULL});
    expect_refused("shape", e_shape, NULL, (const char *const[]){
        "lm_head.weight has shape [16, 65], expected [65, 16]", NULL});
    expect_refused("dtype", e_dtype, NULL, (const char *const[]){
        "ln_f.bias is F16, expected F32 [16]", NULL});
    expect_refused("truncated", e_truncated, NULL, (const char *const[]){
        "truncated/model.safetensors: truncated: tensor", NULL});
    expect_refused("unexpected", e_unexpected, NULL, (const char *const[]){
        "unexpected/model.safetensors: unexpected tensor blocks.2.ln1.weight",
        NULL});
    expect_refused("overlap", e_overlap, NULL, (const char *const[]){
        "overlaps", NULL});
    expect_refused("arch", NULL, "{\"architecture\": \"Bigram\"}",
                   (const char *const[]){"arch/config.json",
                                         "GPTLanguageModel", NULL});
    expect_refused("vocab", NULL,
                   "{\"architecture\": \"GPTLanguageModel\", \"vocab_size\": "
                   "65, \"block_size\": 8, \"n_embd\": 16, \"n_head\": 4, "
                   "\"n_layer\": 2, \"vocab\": \"abc\"}",
                   (const char *const[]){"exactly vocab_size = 65", NULL});
    expect_refused("layers", NULL,
                   "{\"architecture\": \"GPTLanguageModel\", \"vocab_size\": "
                   "3, \"block_size\": 8, \"n_embd\": 16, \"n_head\": 4, "
                   "\"n_layer\": 3, \"vocab\": \"abc\"}",
                   (const char *const[]){"token_embedding_table.weight has "
                                         "shape [65, 16], expected [3, 16]",
                                         NULL});
    expect_refused("badjson", NULL, "{\"architecture\": ",
                   (const char *const[]){"badjson/config.json", NULL});
}
END_TEST

/* ==== the reader on raw bytes ==== */

static const char *parse_err(const void *b, size_t len)
{
    static char err[512];
    api_st_file f;
    err[0] = '\0';
    if (api_st_parse(&f, b, len, "x.safetensors", err, sizeof err) == 0) {
        api_st_close(&f);
        return NULL;
    }
    ck_assert(f.tensors == NULL && f.ntensors == 0);
    return err;
}

static size_t with_header(unsigned char *out, const char *h, size_t extra)
{
    const size_t n = strlen(h);
    for (int i = 0; i < 8; i++)
        out[i] = (unsigned char)((uint64_t)n >> (8 * i));
    memcpy(out + 8, h, n);
    memset(out + 8 + n, 0, extra);
    return 8 + n + extra;
}

START_TEST(reader_refuses_bad_bytes)
{
    unsigned char b[512];
    ck_assert_ptr_nonnull(strstr(parse_err("abc", 3), "too short"));
    /* header length larger than the file */
    size_t n = with_header(b, "{}", 0);
    b[0] = 0xff, b[3] = 0x10;
    ck_assert_ptr_nonnull(strstr(parse_err(b, n), "larger than the 2 bytes"));
    memset(b, 0xff, 8);
    ck_assert_ptr_nonnull(strstr(parse_err(b, n), "larger than"));
    /* the smallest valid file, and one tensor */
    n = with_header(b, "{}", 0);
    ck_assert_ptr_null(parse_err(b, n));
    n = with_header(b, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],"
                       "\"data_offsets\":[0,8]},\"__metadata__\":{}}", 8);
    ck_assert_ptr_null(parse_err(b, n));
    ck_assert_ptr_nonnull(strstr(parse_err(b, n - 1), "truncated: tensor a"));
    ck_assert_ptr_nonnull(strstr(parse_err(b, n + 4),
                                 "4 bytes of data after the last tensor"));
    n = with_header(b, "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],"
                       "\"data_offsets\":[0,8]}}", 8);
    ck_assert_ptr_nonnull(strstr(parse_err(b, n),
                                 "tensor a: F32 [3] is 12 bytes"));
    n = with_header(b, "{\"a\":{\"dtype\":\"Q4\",\"shape\":[],"
                       "\"data_offsets\":[0,0]}}", 0);
    ck_assert_ptr_nonnull(strstr(parse_err(b, n), "unknown dtype"));
    n = with_header(b, "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,"
                       "4294967296],\"data_offsets\":[0,0]}}", 0);
    ck_assert_ptr_nonnull(strstr(parse_err(b, n), "too large"));
    n = with_header(b, "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],"
                       "\"data_offsets\":[0,0]}}", 0);
    ck_assert_ptr_nonnull(strstr(parse_err(b, n), "shape[0]"));
    n = with_header(b, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],"
                       "\"data_offsets\":[4,8]}}", 8);
    ck_assert_ptr_nonnull(strstr(parse_err(b, n), "a gap before it"));
    n = with_header(b, "[1]", 0);
    ck_assert_ptr_nonnull(strstr(parse_err(b, n), "not a JSON object"));
    n = with_header(b, "{\"a\":", 0);
    ck_assert_ptr_nonnull(strstr(parse_err(b, n), "not valid JSON"));
    n = with_header(b, "{\"a\":{},\"a\":{}}", 0);
    ck_assert_ptr_nonnull(strstr(parse_err(b, n), "not valid JSON"));

    /* reading: dtype and shape checked, little-endian decoded */
    n = with_header(b, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,2],"
                       "\"data_offsets\":[0,8]}}", 8);
    const float vals[2] = {1.5f, -2.0f};
    for (int i = 0; i < 2; i++) {
        uint32_t u;
        memcpy(&u, &vals[i], 4);
        for (int k = 0; k < 4; k++)
            b[n - 8 + 4 * i + k] = (unsigned char)(u >> (8 * k));
    }
    api_st_file f;
    char err[256];
    ck_assert(api_st_parse(&f, b, n, "x.safetensors", err, sizeof err) == 0);
    float got[2];
    ck_assert(api_st_read_f32(&f, "a", got, 2, (const int64_t[]){1, 2}, err,
                              sizeof err) == 0);
    ck_assert(got[0] == 1.5f && got[1] == -2.0f);
    ck_assert(api_st_read_f32(&f, "a", got, 1, (const int64_t[]){2}, err,
                              sizeof err) == -1);
    ck_assert_str_eq(err, "x.safetensors: tensor a has shape [1, 2], "
                          "expected [2]");
    ck_assert(api_st_read_f32(&f, "b", got, 1, (const int64_t[]){2}, err,
                              sizeof err) == -1);
    ck_assert_str_eq(err, "x.safetensors: tensor b is missing (expected F32 "
                          "[2])");
    api_st_close(&f);
}
END_TEST

static void setup(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/attnd-st-XXXXXX");
    ck_assert(mkdtemp(tmpdir) != NULL);
}

static void teardown(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
}

Suite *safetensors_suite(void)
{
    Suite *s = suite_create("safetensors");
    TCase *tc = tcase_create("models");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, loads_pytorch_export_bit_for_bit);
    tcase_add_test(tc, bad_models_are_refused);
    tcase_add_test(tc, reader_refuses_bad_bytes);
    suite_add_tcase(s, tc);
    return s;
}
