/* test_parse.c -- api/parse.c's bounded parsing against Jansson alone:
 * random texts, valid and broken, must give the same tree or the same
 * error (code, message, line, column, position); random ragged tensors
 * and masks read from the text must give the errors codec.c and mask.c
 * give on Jansson's tree. */
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../api/api.h"
#include "../../api/internal.h"
#include "unit.h"

typedef void (*handler_t)(const char *, size_t, api_response *);

static uint64_t rng_state;

static unsigned rnd(unsigned n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (unsigned)(rng_state >> 33) % n;
}

typedef struct buf {
    char *p;
    size_t n, cap;
} buf;

static void add(buf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void adds(buf *b, const char *s)
{
    add(b, s, strlen(s));
}

static void gen_ws(buf *b)
{
    static const char *const w[] = {"", "", "", " ", "\n", "\t", " \r\n "};
    adds(b, w[rnd(7)]);
}

static void gen_string(buf *b, int key)
{
    static const char *const parts[] = {
        "a", "b", "k", "x", "\\n", "\\\"", "\\\\", "\\/", "\\u0041",
        "\\u00e9", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
        "\\ud83d\\ude00", "\\u0061", " ", "shape", "data"};
    adds(b, "\"");
    const unsigned n = key ? rnd(3) : rnd(5);
    for (unsigned i = 0; i < n; i++)
        adds(b, parts[rnd(sizeof parts / sizeof *parts)]);
    adds(b, "\"");
}

static void gen_value(buf *b, int depth)
{
    static const char *const scalars[] = {
        "0", "-0", "1", "-12", "3.5", "1e3", "-2.5E-3", "1e400",
        "9223372036854775807", "9223372036854775808",
        "-9223372036854775808", "-9223372036854775809", "true", "false",
        "null", "123456789012345678901", "0.000001", "1.7976931348623157e308",
        "1.8e308"};
    const unsigned k = depth > 4 ? rnd(2) : rnd(5);
    if (k == 0) {
        adds(b, scalars[rnd(sizeof scalars / sizeof *scalars)]);
    } else if (k == 1) {
        gen_string(b, 0);
    } else if (k == 2 || k == 3) {
        adds(b, "[");
        const unsigned n = rnd(5);
        for (unsigned i = 0; i < n; i++) {
            gen_ws(b);
            if (i)
                adds(b, ",");
            gen_ws(b);
            gen_value(b, depth + 1);
        }
        gen_ws(b);
        adds(b, "]");
    } else {
        adds(b, "{");
        const unsigned n = rnd(5);
        for (unsigned i = 0; i < n; i++) {
            gen_ws(b);
            if (i)
                adds(b, ",");
            gen_string(b, 1);
            gen_ws(b);
            adds(b, ":");
            gen_ws(b);
            gen_value(b, depth + 1);
        }
        adds(b, "}");
    }
}

/* One byte changed, added, removed, or the text cut. */
static void mutate(buf *b)
{
    static const char bytes[] = "[]{},:\"\\ 0a-.eEt\n\x01\xc3\xa9\xff\x80u\0";
    if (!b->n)
        return;
    add(b, "  ", 2);                /* room for one more byte */
    b->n -= 2;
    const size_t at = rnd((unsigned)b->n);
    switch (rnd(4)) {
    case 0:
        b->p[at] = bytes[rnd(sizeof bytes - 1)];
        break;
    case 1:
        memmove(b->p + at + 1, b->p + at, b->n - at);
        b->p[at] = bytes[rnd(sizeof bytes - 1)];
        b->n++;
        break;
    case 2:
        memmove(b->p + at, b->p + at + 1, b->n - at - 1);
        b->n--;
        break;
    default:
        b->n = at;
    }
}

static void same_error(const api_error *a, const api_error *b,
                       const char *text, size_t n)
{
    ck_assert_msg(a->status == b->status && strcmp(a->message, b->message) == 0
                  && a->line == b->line && a->column == b->column &&
                  a->position == b->position && a->has_path == b->has_path &&
                  strcmp(a->path, b->path) == 0,
                  "text %.*s\nbounded: %d %s (%d:%d@%d)\njansson: %d %s "
                  "(%d:%d@%d)", (int)n, text, a->status, a->message, a->line,
                  a->column, a->position, b->status, b->message, b->line,
                  b->column, b->position);
}

START_TEST(bounded_parse_matches_jansson)
{
    static const char *const known[] = {"a", "k", "x", "shape", NULL};
    rng_state = 0x9E3779B97F4A7C15ull + (uint64_t)_i * 7919;
    api_parse_set_small(0);
    int invalid = 0;
    for (int iter = 0; iter < 4000; iter++) {
        buf b = {0};
        gen_ws(&b);
        if (rnd(4))
            adds(&b, "{\"a\":1,\"x\":"), gen_value(&b, 1), adds(&b, "}");
        else
            gen_value(&b, 0);
        gen_ws(&b);
        for (unsigned m = rnd(3); m > 0; m--)
            mutate(&b);
        /* without a spec: the same tree, or the same error */
        api_error e1 = {0}, e2 = {0};
        json_t *t1 = api_parse_bounded(b.p ? b.p : "", b.n, NULL, &e1);
        json_t *t2 = api_parse_jansson(b.p ? b.p : "", b.n, &e2);
        ck_assert_msg(!t1 == !t2, "text %.*s: bounded %s, jansson %s",
                      (int)b.n, b.p, t1 ? "ok" : e1.message,
                      t2 ? "ok" : e2.message);
        if (t1)
            ck_assert(json_equal(t1, t2));
        else
            same_error(&e1, &e2, b.p, b.n);
        invalid += !t2;
        /* with the fields an endpoint knows: its first check agrees */
        api_error e3 = {0}, e4 = {0};
        const api_parse_spec spec = {known, NULL, NULL, 0, NULL, NULL, 0};
        json_t *t3 = api_parse_bounded(b.p ? b.p : "", b.n, &spec, &e3);
        ck_assert(!t3 == !t2);
        if (t3) {
            codec_known_fields(t3, known, &e3);
            codec_known_fields(t2, known, &e4);
        } else {
            e4 = e2;
        }
        same_error(&e3, &e4, b.p, b.n);
        json_decref(t1);
        json_decref(t2);
        json_decref(t3);
        free(b.p);
    }
    api_parse_set_small(API_PARSE_SMALL);
    ck_assert_int_gt(invalid, 1000);    /* the mutations do break texts */
}
END_TEST

/* A nested array of rank 2 to 4 whose rows are mostly `want` long, with
 * now and then a row too short, a string, an object, a number too big, a
 * boolean or null, or an array too deep. */
static void gen_tensor(buf *b, int depth, int rank, int mask)
{
    if (depth == rank || rnd(60) == 0) {
        static const char *const odd[] = {"\"s\"", "{}", "1e39", "true",
                                          "null", "[1]", "false", "[]"};
        if (rnd(25) == 0)
            adds(b, odd[rnd(8)]);
        else if (mask == 1)
            adds(b, rnd(2) ? "true" : "false");
        else
            adds(b, rnd(2) ? "1" : "-0.5");
        return;
    }
    adds(b, "[");
    const unsigned n = rnd(30) == 0 ? 1 + rnd(3) : 3;
    for (unsigned i = 0; i < n; i++) {
        if (i)
            adds(b, rnd(8) ? "," : " , ");
        gen_tensor(b, depth + 1, rank, mask);
    }
    adds(b, "]");
}

START_TEST(text_tensors_match_jansson)
{
    rng_state = 0x2545F4914F6CDD1Dull + (uint64_t)_i * 104729;
    for (int iter = 0; iter < 300; iter++) {
        buf b = {0};
        handler_t h;
        const int m = (int)rnd(3);      /* 0: x of /bow, 1-2: a mask */
        if (m == 0) {
            h = api_bow;
            adds(&b, "{\"x\":");
            gen_tensor(&b, 0, 2 + (int)rnd(3), 0);
            adds(&b, "}");
        } else {
            h = api_attention;
            adds(&b, "{\"x\":[[[1,2],[3,4],[5,6]]],\"head_size\":2,\"seed\":1,"
                     "\"mask\":");
            gen_tensor(&b, 0, 2 + (int)rnd(2), m);
            adds(&b, "}");
        }
        api_response r1 = {0}, r2 = {0};
        api_parse_set_small(0);
        h(b.p, b.n, &r1);
        api_body_set_fast(0);
        api_parse_set_small(SIZE_MAX);
        h(b.p, b.n, &r2);
        api_body_set_fast(1);
        api_parse_set_small(API_PARSE_SMALL);
        ck_assert_msg(r1.status == r2.status && r1.len == r2.len &&
                      memcmp(r1.body, r2.body, r1.len) == 0,
                      "body %s\nbounded: %.*s\njansson: %.*s", b.p,
                      (int)(r1.len > 400 ? 400 : r1.len), r1.body,
                      (int)(r2.len > 400 ? 400 : r2.len), r2.body);
        api_response_free(&r1);
        api_response_free(&r2);
        free(b.p);
    }
}
END_TEST

/* The key tables of large objects: duplicates found however the key is
 * written, after thousands of others. */
START_TEST(duplicate_keys_in_large_objects)
{
    buf b = {0};
    adds(&b, "{\"seed\":1,\"junk\":{");
    char k[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(k, sizeof k, "%s\"k%d\":0", i ? "," : "", i);
        adds(&b, k);
    }
    adds(&b, ",\"\\u006b4321\":1}}");   /* "k4321" again */
    api_error e1 = {0}, e2 = {0};
    api_parse_set_small(0);
    json_t *t1 = api_parse_bounded(b.p, b.n, NULL, &e1);
    api_parse_set_small(API_PARSE_SMALL);
    json_t *t2 = api_parse_jansson(b.p, b.n, &e2);
    ck_assert_ptr_null(t1);
    ck_assert_ptr_null(t2);
    ck_assert_str_eq(e1.code, "invalid_json");
    ck_assert_ptr_nonnull(strstr(e1.message, "duplicate object key"));
    same_error(&e1, &e2, "(5000 keys)", 11);
    free(b.p);
}
END_TEST

/* nst/JSONTestSuite's parsing files: the same tree or error each. */
START_TEST(json_test_suite_files)
{
    glob_t g;
    ck_assert_int_eq(glob("tests/data/JSONTestSuite/test_parsing/*.json", 0,
                          NULL, &g), 0);
    ck_assert_int_gt((int)g.gl_pathc, 300);
    api_parse_set_small(0);
    for (size_t i = 0; i < g.gl_pathc; i++) {
        FILE *f = fopen(g.gl_pathv[i], "rb");
        ck_assert_ptr_nonnull(f);
        char text[1 << 16];
        const size_t n = fread(text, 1, sizeof text, f);
        fclose(f);
        api_error e1 = {0}, e2 = {0};
        json_t *t1 = api_parse_bounded(text, n, NULL, &e1);
        json_t *t2 = api_parse_jansson(text, n, &e2);
        ck_assert_msg(!t1 == !t2, "%s", g.gl_pathv[i]);
        if (t1)
            ck_assert_msg(json_equal(t1, t2), "%s", g.gl_pathv[i]);
        else
            same_error(&e1, &e2, g.gl_pathv[i], strlen(g.gl_pathv[i]));
        json_decref(t1);
        json_decref(t2);
    }
    api_parse_set_small(API_PARSE_SMALL);
    globfree(&g);
}
END_TEST

Suite *parse_suite(void)
{
    Suite *s = suite_create("parse");
    TCase *tc = tcase_create("bounded");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, bounded_parse_matches_jansson, 0, 8);
    tcase_add_loop_test(tc, text_tensors_match_jansson, 0, 8);
    tcase_add_test(tc, duplicate_keys_in_large_objects);
    tcase_add_test(tc, json_test_suite_files);
    suite_add_tcase(s, tc);
    return s;
}
