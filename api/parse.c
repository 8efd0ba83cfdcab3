/* parse.c -- request bodies parsed in memory bounded by their size.
 *
 * Why: Jansson turns every value into a heap object (32 bytes a number,
 * ~250 an empty object), so a 63 MiB array of {} in an unknown field grew
 * the server by 5 GB (issue 15).  A large body is therefore first checked
 * here by a validator that accepts exactly what Jansson accepts
 * (JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, no NUL) and allocates nothing
 * but the key tables of objects with many keys; then Jansson parses a
 * *skeleton* of the body: its text with the values nobody reads replaced by
 * 0, served through json_load_callback so the body is never copied.
 *
 *   - An invalid body: every complete value (a run of them) before the
 *     error becomes one 0, the rest is the body itself.  Jansson fails on
 *     the skeleton exactly where it fails on the body (same parser state,
 *     same token), and its error position is mapped back to the body; line
 *     and column are counted from the body as Jansson counts them.
 *   - A body with a field the endpoint does not know: the endpoints check
 *     that first (codec_known_fields, v2_read_request), so only the keys
 *     up to the first unknown one are kept, every value 0.
 *   - Fields the caller reads from the text itself (api_parse_spec.defer:
 *     body.c's tensors) become 0 and their text is handed back.
 *   - Whatever else stays: when Jansson's tree of it would pass
 *     API_PARSE_TREE_PER_BYTE bytes per body byte, the body is refused
 *     with 413 body_too_complex naming the biggest field.
 *
 * Bodies under API_PARSE_SMALL bytes take Jansson alone, as always.
 */
#include "internal.h"

#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ==== the validator ==== */

#define JANSSON_MAX_DEPTH 2048      /* JSON_PARSER_MAX_DEPTH */
#define SMALL_OBJECT 16             /* keys compared pairwise up to this */

typedef struct jv {
    const char *body, *end;
    const char *const *skip;        /* values known valid: from, to, ... */
    int nskip;
    const char *fail;               /* where the first error was met */
    const char *dup_first;          /* a duplicate key: its first use */
    int dup;                        /* the error is a duplicate key */
    int nomem;
} jv;

static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static const char *ws(const char *p, const char *end)
{
    while (p < end && is_ws(*p))
        p++;
    return p;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0'
         : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static int32_t hex4(const char *p)
{
    int32_t v = 0;
    for (int i = 0; i < 4; i++)
        v = v << 4 | hexval(p[i]);
    return v;
}

/* The string at p ('"'): its end, or NULL (v->fail set) where Jansson
 * refuses it: a control character, a bad escape or surrogate, \u0000,
 * invalid UTF-8, no closing quote. */
static const char *v_string(jv *v, const char *p)
{
    const char *end = v->end;
    for (p++; p < end;) {
        const unsigned char c = (unsigned char)*p;
        if (c == '"')
            return p + 1;
        if (c < 0x20)
            break;
        if (c >= 0x80) {
            const int n = api_utf8_seq((const unsigned char *)p,
                                       (const unsigned char *)end);
            if (!n)
                break;
            p += n;
            continue;
        }
        if (c != '\\') {
            p++;
            continue;
        }
        if (end - p < 2)
            break;
        const char x = p[1];
        if (x != 'u') {
            if (!x || !strchr("\"\\/bfnrt", x))   /* a NUL: prescan lets
                                                   * one pass after '\\' */
                break;
            p += 2;
            continue;
        }
        if (end - p < 6 || hexval(p[2]) < 0 || hexval(p[3]) < 0 ||
            hexval(p[4]) < 0 || hexval(p[5]) < 0)
            break;
        const int32_t u = hex4(p + 2);
        if (u == 0 || (u >= 0xDC00 && u <= 0xDFFF))
            break;
        if (u >= 0xD800 && u <= 0xDBFF) {
            if (end - p < 12 || p[6] != '\\' || p[7] != 'u' ||
                hexval(p[8]) < 0 || hexval(p[9]) < 0 || hexval(p[10]) < 0 ||
                hexval(p[11]) < 0)
                break;
            const int32_t u2 = hex4(p + 8);
            if (u2 < 0xDC00 || u2 > 0xDFFF)
                break;
            p += 12;
        } else {
            p += 6;
        }
    }
    v->fail = p;
    return NULL;
}

/* A number as Jansson lexes it (strtoll for integers, strtod for the
 * rest): its end, or NULL where Jansson refuses it. */
static const char *v_number(jv *v, const char *p)
{
    const char *q = p, *end = v->end;
    const int neg = q < end && *q == '-';
    q += neg;
    const char *d0 = q;
    if (q >= end || *q < '0' || *q > '9')
        goto bad;
    if (*q == '0') {
        q++;
        if (q < end && *q >= '0' && *q <= '9')
            goto bad;
    } else {
        while (q < end && *q >= '0' && *q <= '9')
            q++;
    }
    if (q >= end || (*q != '.' && *q != 'e' && *q != 'E')) {
        /* an integer: strtoll's range */
        static const char max[] = "9223372036854775807";
        const size_t nd = (size_t)(q - d0);
        if (nd > 19)
            goto bad;
        if (nd == 19) {
            int c = memcmp(d0, max, 18);
            if (c > 0 || (c == 0 && d0[18] > max[18] + neg))
                goto bad;
        }
        return q;
    }
    if (*q == '.') {
        q++;
        if (q >= end || *q < '0' || *q > '9')
            goto bad;
        while (q < end && *q >= '0' && *q <= '9')
            q++;
    }
    if (q < end && (*q == 'e' || *q == 'E')) {
        q++;
        if (q < end && (*q == '+' || *q == '-'))
            q++;
        if (q >= end || *q < '0' || *q > '9')
            goto bad;
        while (q < end && *q >= '0' && *q <= '9')
            q++;
    }
    /* strtod overflows only with an exponent or 309+ digits */
    int integer;
    double d;
    if ((memchr(p, 'e', (size_t)(q - p)) || memchr(p, 'E', (size_t)(q - p)) ||
         q - p > 300) &&
        (api_read_number(p, q, &integer, &d) != q || !(d - d == 0)))
        goto bad;                   /* "real number overflow" */
    return q;
bad:
    v->fail = p;
    return NULL;
}

/* ---- the keys of one object, for duplicates ---- */

/* Bytes of a key as Jansson decodes it, one at a time. */
typedef struct keyit {
    const char *p;
    unsigned char buf[4];
    int n, i;
} keyit;

static int key_next(keyit *k)
{
    if (k->i < k->n)
        return k->buf[k->i++];
    const char *p = k->p;
    if (*p == '"')
        return -1;
    if (*p != '\\') {
        k->p++;
        return (unsigned char)*p;
    }
    int32_t u;
    switch (p[1]) {
    case 'b': k->p += 2; return '\b';
    case 'f': k->p += 2; return '\f';
    case 'n': k->p += 2; return '\n';
    case 'r': k->p += 2; return '\r';
    case 't': k->p += 2; return '\t';
    case 'u':
        u = hex4(p + 2);
        k->p += 6;
        if (u >= 0xD800 && u <= 0xDBFF) {
            u = ((u - 0xD800) << 10) + (hex4(p + 8) - 0xDC00) + 0x10000;
            k->p += 6;
        }
        break;
    default: k->p += 2; return (unsigned char)p[1];
    }
    k->i = 0;
    if (u < 0x80) {
        k->n = 0;
        return u;
    }
    if (u < 0x800) {
        k->buf[0] = (unsigned char)(0x80 | (u & 0x3f));
        k->n = 1;
        return 0xc0 | u >> 6;
    }
    if (u < 0x10000) {
        k->buf[0] = (unsigned char)(0x80 | ((u >> 6) & 0x3f));
        k->buf[1] = (unsigned char)(0x80 | (u & 0x3f));
        k->n = 2;
        return 0xe0 | u >> 12;
    }
    k->buf[0] = (unsigned char)(0x80 | ((u >> 12) & 0x3f));
    k->buf[1] = (unsigned char)(0x80 | ((u >> 6) & 0x3f));
    k->buf[2] = (unsigned char)(0x80 | (u & 0x3f));
    k->n = 3;
    return 0xf0 | u >> 18;
}

/* a and b point at the opening quotes of two valid keys. */
static int key_eq(const char *a, const char *b)
{
    keyit x = {.p = a + 1}, y = {.p = b + 1};
    for (;;) {
        const int c = key_next(&x);
        if (c != key_next(&y))
            return 0;
        if (c < 0)
            return 1;
    }
}

static uint32_t key_hash(const char *a)
{
    keyit x = {.p = a + 1};
    uint32_t h = 2166136261u;
    for (int c; (c = key_next(&x)) >= 0;)
        h = (h ^ (uint32_t)c) * 16777619u;
    return h;
}

int api_json_key_is(const char *key, const char *word)
{
    keyit x = {.p = key + 1};
    for (;; word++) {
        const int c = key_next(&x);
        if (c < 0 || c != (unsigned char)*word)
            return c < 0 && !*word;
    }
}

/* The keys met so far: pairwise while few, then a hash table of their
 * offsets (uint32: bodies are far under 4 GiB), grown at 3/4 full. */
typedef struct keyset {
    const char *few[SMALL_OBJECT];
    int n;
    uint32_t *tab;                  /* offset + 1; 0 = free */
    size_t cap, used;
} keyset;

/* 1 if new (remembered), 0 if a duplicate (*first = its first use), -1
 * when memory ran out. */
static int keyset_add(jv *v, keyset *s, const char *key, const char **first)
{
    if (!s->tab && s->n < SMALL_OBJECT) {
        for (int i = 0; i < s->n; i++)
            if (key_eq(s->few[i], key)) {
                *first = s->few[i];
                return 0;
            }
        s->few[s->n++] = key;
        return 1;
    }
    if (!s->tab || 4 * (s->used + 1) > 3 * s->cap) {
        const size_t cap = s->cap ? 2 * s->cap : 4 * SMALL_OBJECT;
        uint32_t *t = calloc(cap, sizeof *t);
        if (!t)
            return -1;
        for (size_t i = 0; i < s->cap; i++)
            if (s->tab[i]) {
                size_t j = key_hash(v->body + s->tab[i] - 1) & (cap - 1);
                while (t[j])
                    j = (j + 1) & (cap - 1);
                t[j] = s->tab[i];
            }
        for (int i = 0; !s->tab && i < s->n; i++) {
            size_t j = key_hash(s->few[i]) & (cap - 1);
            while (t[j])
                j = (j + 1) & (cap - 1);
            t[j] = (uint32_t)(s->few[i] - v->body) + 1;
            s->used++;
        }
        free(s->tab);
        s->tab = t;
        s->cap = cap;
    }
    size_t j = key_hash(key) & (s->cap - 1);
    for (; s->tab[j]; j = (j + 1) & (s->cap - 1))
        if (key_eq(v->body + s->tab[j] - 1, key)) {
            *first = v->body + s->tab[j] - 1;
            return 0;
        }
    s->tab[j] = (uint32_t)(key - v->body) + 1;
    s->used++;
    return 1;
}

/* Jansson's tree for a value, roughly (glibc chunks, tables at their
 * usual fill): what API_PARSE_TREE_PER_BYTE is measured against. */
#define COST_OBJECT 224
#define COST_MEMBER 112
#define COST_ARRAY 128
#define COST_ELEMENT 12
#define COST_STRING 48
#define COST_NUMBER 32

static const char *v_value(jv *v, const char *p, int depth, size_t *cost);

static const char *v_container(jv *v, const char *p, int depth,
                               size_t *cost)
{
    const char close = *p == '[' ? ']' : '}';
    const int object = *p == '{';
    keyset keys = {.n = 0};
    const char *q = ws(p + 1, v->end);
    *cost += object ? COST_OBJECT : COST_ARRAY;
    if (q < v->end && *q == close)
        return q + 1;
    for (;;) {
        if (object) {
            if (q >= v->end || *q != '"')
                goto bad;
            const char *k = q, *first;
            if (!(q = v_string(v, q)))
                goto out;
            const int r = keyset_add(v, &keys, k, &first);
            if (r < 0) {
                v->nomem = 1;
                v->fail = k;
                goto out;
            }
            if (!r) {
                v->dup = 1;
                v->dup_first = first;
                v->fail = k;
                goto out;
            }
            *cost += COST_MEMBER + (size_t)(q - k);
            q = ws(q, v->end);
            if (q >= v->end || *q != ':')
                goto bad;
            q = ws(q + 1, v->end);
        } else {
            *cost += COST_ELEMENT;
        }
        if (!(q = v_value(v, q, depth + 1, cost)))
            goto out;
        q = ws(q, v->end);
        if (q < v->end && *q == ',') {
            q = ws(q + 1, v->end);
            continue;
        }
        if (q < v->end && *q == close) {
            free(keys.tab);
            return q + 1;
        }
        goto bad;
    }
bad:
    v->fail = q;
out:
    free(keys.tab);
    return NULL;
}

/* The value at p (whitespace skipped before): its end or NULL. */
static const char *v_value(jv *v, const char *p, int depth, size_t *cost)
{
    if (p >= v->end || depth > JANSSON_MAX_DEPTH) {
        v->fail = p;
        return NULL;
    }
    for (int i = 0; depth == 2 && i < v->nskip; i++)
        if (p == v->skip[2 * i])
            return v->skip[2 * i + 1];      /* read by the fast scanner */
    const char c = *p;
    if (c == '[' || c == '{')
        return v_container(v, p, depth, cost);
    if (c == '"') {
        const char *q = v_string(v, p);
        *cost += COST_STRING + (q ? (size_t)(q - p) : 0);
        return q;
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        *cost += COST_NUMBER;
        return v_number(v, p);
    }
    const char *q = p;
    while (q < v->end && ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z')))
        q++;
    if ((q - p == 4 && (!memcmp(p, "true", 4) || !memcmp(p, "null", 4))) ||
        (q - p == 5 && !memcmp(p, "false", 5)))
        return q;
    v->fail = p;
    return NULL;
}

/* ==== the skeleton, served to Jansson ==== */

#define MAX_PIECES 256

typedef struct piece {
    const char *p;
    size_t len;
    size_t orig;                    /* offset in the body; SIZE_MAX: ours */
    size_t at;                      /* offset in the skeleton */
} piece;

typedef struct skel {
    const char *body;
    piece pc[MAX_PIECES];
    int n, over;
    size_t total;
    int cur;                        /* the callback's place */
    size_t off;
} skel;

static void put(skel *s, const char *p, size_t len, int ours)
{
    if (!len && ours)
        return;
    if (s->n == MAX_PIECES) {
        s->over = 1;
        return;
    }
    piece *x = &s->pc[s->n++];
    x->p = p;
    x->len = len;
    x->orig = ours ? SIZE_MAX : (size_t)(p - s->body);
    x->at = s->total;
    s->total += len;
}

static void put_body(skel *s, const char *from, const char *to)
{
    put(s, from, (size_t)(to - from), 0);
}

static void put_lit(skel *s, const char *lit)
{
    put(s, lit, strlen(lit), 1);
}

static size_t serve(void *buf, size_t cap, void *data)
{
    skel *s = data;
    size_t n = 0;
    while (n < cap && s->cur < s->n) {
        const piece *x = &s->pc[s->cur];
        size_t k = x->len - s->off;
        if (k > cap - n)
            k = cap - n;
        memcpy((char *)buf + n, x->p + s->off, k);
        n += k;
        s->off += k;
        if (s->off == x->len) {
            s->cur++;
            s->off = 0;
        }
    }
    return n;
}

/* A run of complete children: one 0, or one member with the key `key`
 * (its text in the body); a comma when more follows. */
static void put_run(skel *s, const jv *v, const char *key, int comma)
{
    if (key) {
        jv w = {.body = v->body, .end = v->end};
        put_body(s, key, v_string(&w, key));
        put_lit(s, ":");
    }
    put_lit(s, comma ? "0," : "0");
}

/* A complete value [p, q) that the error follows, then the rest of the
 * body: a placeholder of the same kind, so that nothing after it lexes
 * differently ("0" then "e" would be one token), and a number or literal
 * as it is (Jansson may still be reading it when it meets the error:
 * "near '-92233'"). */
static void put_last(skel *s, const char *p, const char *q, const char *end)
{
    if (*p == '[')
        put_lit(s, "[]");
    else if (*p == '{')
        put_lit(s, "{}");
    else if (*p == '"')
        put_lit(s, "\"\"");
    else
        put_body(s, p, q);
    put_body(s, q, end);
}

/* The skeleton of a container that holds the error: appended to s. */
static void emit_failing(jv *v, skel *s, const char *p, int depth)
{
    const int object = *p == '{';
    const char close = object ? '}' : ']';
    const char *q = ws(p + 1, v->end);
    const char *runkey = NULL;
    int run = 0;
    put_body(s, p, q);
    for (;;) {
        const char *c = q, *val = q;
        jv w = {.body = v->body, .end = v->end};
        size_t cost = 0;
        const char *key = NULL;
        if (object) {
            const char *k;
            if (q >= v->end || *q != '"' || !(k = v_string(&w, q)) ||
                (v->dup && c == v->fail))
                goto tail;
            key = c;
            k = ws(k, v->end);
            if (k >= v->end || *k != ':')
                goto tail;
            val = ws(k + 1, v->end);
        }
        const char *ve = v_value(&w, val, depth + 1, &cost);
        if (!ve) {
            if (val < v->end && (*val == '[' || *val == '{')) {
                if (run)
                    put_run(s, v, object ? runkey : NULL, 1);
                put_body(s, c, val);
                emit_failing(v, s, val, depth + 1);
                return;
            }
            goto tail;
        }
        const char *sep = ws(ve, v->end);
        if (object && (!runkey || (v->dup && key == v->dup_first)))
            runkey = key;
        if (sep < v->end && *sep == ',') {
            run = 1;
            q = ws(sep + 1, v->end);
            continue;
        }
        if (sep < v->end && *sep == close) {
            s->over = 1;            /* not where the error is: give up */
            return;
        }
        /* complete, and what follows it is wrong */
        if (run && object && runkey != key)
            put_run(s, v, runkey, 1);
        else if (run && !object)
            put_run(s, v, NULL, 1);
        put_body(s, c, val);
        put_last(s, val, ve, v->end);
        return;
    tail:
        if (run)
            put_run(s, v, object ? runkey : NULL, 1);
        put_body(s, c, v->end);
        return;
    }
}

/* ==== errors and the result ==== */

static size_t parse_small = API_PARSE_SMALL;

void api_parse_set_small(size_t bytes)
{
    parse_small = bytes;
}

size_t api_parse_small_size(void)
{
    return parse_small;
}

/* Line and column of byte `at`, as Jansson's stream counts them. */
static void where(const char *body, size_t at, api_error *e)
{
    int line = 1;
    size_t bol = 0;
    for (size_t i = 0; i < at; i++)
        if (body[i] == '\n') {
            line++;
            bol = i + 1;
        }
    int col = 0;
    for (size_t i = bol; i < at; i++)
        col += ((unsigned char)body[i] & 0xc0) != 0x80;
    e->line = line;
    e->column = col;
    e->position = (int)at;
}

/* Jansson over the skeleton; NULL with e set as for the body, or NULL
 * with *retry when the skeleton did not give the body's answer. */
static json_t *parse_skel(skel *s, const char *body, int *retry,
                          api_error *e)
{
    json_error_t jerr;
    s->cur = 0;
    s->off = 0;
    api_json_alloc_watch();
    json_t *root = json_load_callback(serve, s, JSON_DECODE_ANY |
                                      JSON_REJECT_DUPLICATES, &jerr);
    if (root && api_json_alloc_failed()) {
        json_decref(root);
        root = NULL;
    }
    if (root)
        return root;
    if (api_json_alloc_failed() ||
        json_error_code(&jerr) == json_error_out_of_memory) {
        api_fail(e, 503, "out_of_memory", NULL,
                 "the server ran out of memory parsing the body");
        return NULL;
    }
    /* back to the body's offsets */
    const size_t at = (size_t)jerr.position;
    size_t orig = SIZE_MAX;
    for (int i = 0; i < s->n; i++) {
        const piece *x = &s->pc[i];
        if (at >= x->at && (at < x->at + x->len ||
                            (i == s->n - 1 && at == x->at + x->len)))
            orig = x->orig == SIZE_MAX ? SIZE_MAX : x->orig + (at - x->at);
    }
    if (orig == SIZE_MAX) {
        *retry = 1;
        return NULL;
    }
    where(body, orig, e);
    api_fail(e, 400, "invalid_json", NULL,
             "malformed JSON at line %d, column %d: %s", e->line, e->column,
             jerr.text);
    e->has_position = 1;
    return NULL;
}

static int known(const char *key, const char *const *list)
{
    for (; list && *list; list++)
        if (api_json_key_is(key, *list))
            return 1;
    return 0;
}

static int is_real(const char *p, const char *q)
{
    for (; p < q; p++)
        if (*p == '.' || *p == 'e' || *p == 'E')
            return 1;
    return 0;
}

/* The top-level field named by key (its text), for a path. */
static void key_text(const char *key, char *out, size_t cap)
{
    keyit k = {.p = key + 1};
    size_t n = 0;
    for (int c; (c = key_next(&k)) >= 0;)
        if (n + 1 < cap)
            out[n++] = (char)c;
    out[n] = 0;
}

/* Freed trees of millions of small chunks stay resident between the
 * chunks still in use (4.75 GB after one request, issue 15); malloc_trim
 * gives back every free page of every arena.  It costs the next request
 * its page faults, so only after a parse that built a large tree (a
 * Jansson-only body from TRIM_FROM bytes, or a skeleton of that many
 * bytes of tree); the tensors read from the text are single blocks,
 * mmapped (API_MMAP_THRESHOLD) and unmapped when freed. */
#define TRIM_FROM (16 * 1024)
#define TRIM_TREE_FROM (1024 * 1024)

static _Thread_local int tree_big;

void api_release_memory(size_t body_len)
{
    (void)body_len;
    if (tree_big)
        malloc_trim(0);
    tree_big = 0;
}

json_t *api_parse_bounded(const char *body, size_t len,
                          const api_parse_spec *spec, api_error *e)
{
    if (spec && spec->out)
        spec->out->n = 0;
    if (len < parse_small || len == 0 || len > UINT32_MAX) {
        tree_big |= len >= TRIM_FROM;
        return api_parse_jansson(body, len, e);
    }
    if (!api_parse_prescan(body, len, e))
        return NULL;
    jv v = {.body = body, .end = body + len};
    if (spec && spec->valid) {
        v.skip = spec->valid;
        v.nskip = spec->nvalid;
    }
    size_t cost = 0;
    const char *p = ws(body, v.end);
    const char *ve = v_value(&v, p, 1, &cost);
    skel s = {.body = body};
    if (ve && ws(ve, v.end) != v.end) {
        v.fail = ws(ve, v.end);
        ve = NULL;
    }
    if (!ve) {
        if (v.nomem) {
            api_fail(e, 503, "out_of_memory", NULL,
                     "the server ran out of memory parsing the body");
            return NULL;
        }
        put_body(&s, body, p);
        jv w = {.body = body, .end = v.end};
        size_t c2 = 0;
        const char *we = v_value(&w, p, 1, &c2);
        if (we)                     /* complete, then trailing text */
            put_last(&s, p, we, v.end); else if (p < v.end && (*p == '[' || *p == '{')) {
            emit_failing(&v, &s, p, 1);
        } else {
            put_body(&s, p, v.end);
        }
        int retry = 0;
        if (!s.over) {
            json_t *r = parse_skel(&s, body, &retry, e);
            if (r)
                json_decref(r);
            else if (!retry)
                return NULL;
        }
        return api_parse_jansson(body, len, e);     /* not expected */
    }
    /* Valid.  Anything but an object only needs its type. */
    if (*p != '{') {
        const char *type = *p == '[' ? "array" : *p == '"' ? "string"
                         : *p == 't' ? "true" : *p == 'f' ? "false"
                         : *p == 'n' ? "null"
                         : is_real(p, ve) ? "number" : "integer";
        api_fail(e, 422, "wrong_type", "",
                 "the request body must be a JSON object, not %s", type);
        return NULL;
    }
    /* The members, each value kept, deferred or dropped. */
    const char *q = ws(p + 1, v.end);
    size_t kept = 0, worst = 0;
    const char *worst_key = NULL;
    int any = 0;
    put_lit(&s, "{");
    while (*q == '"') {
        const char *key = q;
        const char *k = v_string(&v, q);
        const char *val = ws(ws(k, v.end) + 1, v.end);
        size_t vc = 0;
        const char *vend = v_value(&v, val, 2, &vc);
        const char *next = ws(vend, v.end);
        if (any)
            put_lit(&s, ",");
        any = 1;
        put_body(&s, key, k);
        put_lit(&s, ":");
        if (spec && spec->drop && known(key, spec->drop)) {
            put_lit(&s, "0");
        } else if (spec && spec->known && !known(key, spec->known)) {
            put_lit(&s, "0");
            break;                  /* the endpoint stops there */
        } else if (spec && spec->out && *val == '[' &&
                   known(key, spec->defer) &&
                   spec->out->n < API_MAX_DEFERRED) {
            api_deferred *d = &spec->out->d[spec->out->n++];
            for (const char *const *t = spec->defer; *t; t++)
                if (api_json_key_is(key, *t))
                    d->name = *t;
            d->from = val;
            d->to = vend;
            put_lit(&s, "0");
        } else {
            put_body(&s, val, vend);
            kept += vc;
            if (vc > worst) {
                worst = vc;
                worst_key = key;
            }
        }
        if (*next != ',')
            break;
        q = ws(next + 1, v.end);
    }
    put_lit(&s, "}");
    if (s.over) {
        tree_big = 1;
        return api_parse_jansson(body, len, e);
    }
    if (spec && spec->bounded && kept > API_PARSE_TREE_PER_BYTE * len &&
        kept > API_PARSE_TREE_FLOOR) {
        char name[64];
        key_text(worst_key, name, sizeof name);
        api_fail(e, 413, "body_too_complex", name,
                 "parsing %s would take about %zu MiB of memory (each JSON "
                 "value costs 30-250 bytes), over this server's bound of %d "
                 "bytes per byte of body; send large tensors as nested "
                 "arrays of numbers or base64, and no large values the "
                 "endpoint does not need", name, (kept >> 20) + 1,
                 API_PARSE_TREE_PER_BYTE);
        return NULL;
    }
    tree_big |= kept >= TRIM_TREE_FROM;
    int retry = 0;
    json_t *root = parse_skel(&s, body, &retry, e);
    if (!root && retry) {
        tree_big = 1;
        return api_parse_jansson(body, len, e);
    }
    return root;
}
