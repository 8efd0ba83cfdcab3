/* body.c -- a request body as Jansson's tree plus tensors read straight
 * from the text.
 *
 * Why: bench/ measured Jansson at ~780 ns a number (a heap object each,
 * strtod, then a float copy) -- 190 ms for the 3 MB large /attention body,
 * several times the maths.  So the tensor fields of a body are first read
 * by a strict scanner that writes floats directly (fast_float for the
 * digits), and Jansson parses only the rest, with each tensor's text
 * replaced by 0.  The scanner only ever accepts input that the full path
 * would accept with the same values: anything else -- a syntax error, an
 * escape in a key, an empty or ragged array, a non-number, a number out of
 * float32 range, an integer past int64 -- makes it give up, and the whole
 * body goes through Jansson exactly as before, so every error keeps its
 * code, message, path, line and column.
 *
 * A tensor field may also be an object {"shape", "data"} or {"shape",
 * "dtype", "b64"} (codec.h): the scanner reads a flat data array the same
 * way, and decodes b64 straight into the tensor's floats; the same rule
 * holds -- only a tensor object that codec_tensor_shape would accept is
 * taken from the text, anything else goes to Jansson.  Any field named in
 * `tensors` gets all three forms this way.
 */
#include "internal.h"
#include "numtext.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ==== the tensor scanner ==== */

typedef struct scan {
    const char *p, *end;
    int rank;                       /* 0 until the first number is met */
    int64_t dim[ENGINE_MAX_RANK];   /* -1 until that depth's first array
                                     * closes */
    float *buf;
    size_t n, cap;
    int64_t max;                    /* element cap */
    int max_depth;                  /* --max-depth */
} scan;

static void skip_ws(scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' ||
                             *s->p == '\r' || *s->p == '\t'))
        s->p++;
}

/* After a value inside an array or object: skips ',' (1: another value
 * follows) or the closing `close` (0: done); -1 for anything else. */
static int separator(scan *s, char close)
{
    skip_ws(s);
    if (s->p < s->end && (*s->p == ',' || *s->p == close))
        return *s->p++ == ',';
    return -1;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* 10^0 .. 10^22: every one exact in a double. */
static const double exact_pow10[23] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* The JSON number at p (text up to e): its end (NULL when there is none),
 * whether it is an integer, and its value.
 *
 * The grammar check also gathers the digits: when they fit in 2^53 and the
 * decimal exponent is within +-22, the digits and 10^|exponent| are both
 * exact doubles and one IEEE multiply or divide is the correctly rounded
 * value (Clinger's fast path, the one fast_float itself takes first), so
 * the text is not read a second time.  Anything else -- 20+ digits, big
 * exponents -- goes to fast_float.  Tensors are mostly short decimals
 * (measurements: bench/README.md, "Instruction counts in api/"). */
static inline __attribute__((always_inline)) const char *
read_number(const char *p, const char *e, int *integer, double *d)
{
    const char *q = p;
    int neg = 0;
    uint64_t m = 0;                 /* the digits, while there are <= 19 */
    int64_t nd = 0;                 /* digits gathered, leading 0s too */
    int64_t e10 = 0;                /* value = m * 10^e10 */
    *integer = 1;
    if (q < e && *q == '-') {
        neg = 1;
        q++;
    }
    if (q >= e || !is_digit(*q))
        return NULL;
    if (*q == '0') {
        q++;
    } else {
        const char *d0 = q;
        while (q < e && is_digit(*q))
            m = m * 10 + (uint64_t)(*q++ - '0');
        nd = q - d0;
    }
    if (q < e && *q == '.') {
        *integer = 0;
        if (++q >= e || !is_digit(*q))
            return NULL;
        const char *f0 = q;
        while (q < e && is_digit(*q))
            m = m * 10 + (uint64_t)(*q++ - '0');
        nd += q - f0;
        e10 = -(q - f0);
    }
    if (q < e && (*q == 'e' || *q == 'E')) {
        *integer = 0;
        q++;
        int eneg = 0;
        if (q < e && (*q == '+' || *q == '-'))
            eneg = *q++ == '-';
        if (q >= e || !is_digit(*q))
            return NULL;
        int64_t x = 0;
        while (q < e && is_digit(*q)) {
            if (x < 100000)         /* past that, only the fallback reads it */
                x = x * 10 + (*q - '0');
            q++;
        }
        e10 += eneg ? -x : x;
    }
    if (nd <= 19 && m <= (UINT64_C(1) << 53) && e10 >= -22 && e10 <= 22) {
        *d = e10 < 0 ? (double)m / exact_pow10[-e10]
                     : (double)m * exact_pow10[e10];
        if (neg)
            *d = -*d;
    } else if (numtext_parse_double(p, q, d) != q) {
        return NULL;
    }
    return q;
}

const char *api_read_number(const char *p, const char *e, int *integer,
                            double *d)
{
    return read_number(p, e, integer, d);
}

/* One JSON number at s->p, appended as a float; 0 to give up. */
static int scan_number(scan *s)
{
    const char *e = s->end;
    int integer;
    double d;
    const char *q = read_number(s->p, e, &integer, &d);
    if (!q)
        return 0;
    /* Jansson reads integers as int64 and refuses bigger ones; leave
     * anything near that edge to it. */
    if (integer && q - s->p > 18)
        return 0;
    if (!(fabs(d) < FLOAT32_LIMIT))
        return 0;                   /* 1e999, or out_of_range with a path */
    if (integer && d == 0.0)
        d = 0.0;    /* Jansson reads the integer -0 as 0, so +0 (make fuzz) */
    if ((int64_t)s->n >= s->max)
        return 0;                   /* too_large, with its message */
    if (s->n == s->cap) {
        /* At first room for as many numbers as the rest of the text can
         * hold (one digit and a comma each), up to 256: a small tensor's
         * floats then come from malloc's per-thread cache (up to 1 KiB),
         * and a big one doubles its way up. */
        size_t cap = s->cap ? 2 * s->cap
                            : (size_t)(e - s->p) / 2 + 1 < 256
                                  ? (size_t)(e - s->p) / 2 + 1 : 256;
        float *b = realloc(s->buf, cap * sizeof *b);
        if (!b)
            return 0;
        s->buf = b;
        s->cap = cap;
    }
    s->buf[s->n++] = (float)d;
    s->p = q;
    return 1;
}

/* The array at s->p ('[') at nesting depth `depth`; 0 to give up. */
static int scan_array(scan *s, int depth)
{
    /* The body object is level 1, this array level depth + 2: past
     * --max-depth the full path gives too_deep. */
    if (depth >= API_MAX_IN_RANK || depth + 2 > s->max_depth)
        return 0;
    s->p++;                         /* '[' */
    int64_t count = 0;
    for (;;) {
        skip_ws(s);
        if (s->p >= s->end)
            return 0;
        if (*s->p == '[') {
            if (s->rank && depth + 1 >= s->rank)
                return 0;           /* ragged: array where a number goes */
            if (!scan_array(s, depth + 1))
                return 0;
        } else {
            if (!s->rank)
                s->rank = depth + 1;
            else if (s->rank != depth + 1)
                return 0;           /* ragged: number where an array goes */
            if (!scan_number(s))
                return 0;
        }
        count++;
        const int more = separator(s, ']');
        if (more < 0)
            return 0;
        if (!more)
            break;
    }
    if (s->dim[depth] < 0)
        s->dim[depth] = count;
    return s->dim[depth] == count;
}

/* ==== tensor objects {"shape", "data" | "dtype", "b64"} ==== */

/* A key at s->p ('"'), without escapes, and its ':'; 0 to give up. */
static int scan_key(scan *s, const char **k, size_t *klen)
{
    if (s->p >= s->end || *s->p != '"')
        return 0;
    *k = ++s->p;
    while (s->p < s->end && *s->p != '"' && *s->p != '\\')
        s->p++;
    if (s->p >= s->end || *s->p != '"')
        return 0;                   /* an escape: leave it to Jansson */
    *klen = (size_t)(s->p - *k);
    s->p++;
    skip_ws(s);
    if (s->p >= s->end || *s->p != ':')
        return 0;
    s->p++;
    skip_ws(s);
    return 1;
}

static int key_is(const char *k, size_t klen, const char *word)
{
    return strlen(word) == klen && memcmp(k, word, klen) == 0;
}

/* A string at s->p without escapes: its text goes to [*from, *to). */
static int scan_plain_string(scan *s, const char **from, const char **to)
{
    if (s->p >= s->end || *s->p != '"')
        return 0;
    *from = ++s->p;
    /* memchr twice: a b64 string is most of a large body's text, and a
     * byte-by-byte loop was a few % of such a request (perf) */
    const char *q = memchr(s->p, '"', (size_t)(s->end - s->p));
    if (!q || memchr(s->p, '\\', (size_t)(q - s->p)))
        return 0;                   /* unclosed, or an escape: Jansson's */
    s->p = q + 1;
    *to = q;
    return 1;
}

/* A shape: '[' positive integers ']', 1 to API_MAX_IN_RANK of them. */
static int scan_shape(scan *s, int *rank, int64_t *dim)
{
    s->p++;                         /* '[' */
    *rank = 0;
    for (;;) {
        skip_ws(s);
        const char *q = s->p;
        while (q < s->end && is_digit(*q))
            q++;
        /* no sign, no leading zero (0 is refused anyway), no fraction */
        if (q == s->p || *s->p == '0' || q - s->p > 18 ||
            *rank == API_MAX_IN_RANK)
            return 0;
        int64_t v = 0;
        for (const char *c = s->p; c < q; c++)
            v = v * 10 + (*c - '0');
        dim[(*rank)++] = v;
        s->p = q;
        const int more = separator(s, ']');
        if (more <= 0)
            return more == 0;
    }
}

/* The object at s->p ('{') into pre; 0 to give up (pre->data is then
 * still owned by the caller's body). */
static int scan_object(scan *s, api_pre *pre)
{
    int have_shape = 0, have_data = 0, have_dtype = 0, rank = 0;
    int64_t dim[ENGINE_MAX_RANK];
    const char *b64 = NULL, *b64_end = NULL;
    scan d = {.max = s->max};
    for (int i = 0; i < ENGINE_MAX_RANK; i++)
        d.dim[i] = -1;
    s->p++;                         /* '{' */
    for (;;) {
        skip_ws(s);
        const char *k;
        size_t klen;
        if (!scan_key(s, &k, &klen))
            return 0;
        if (key_is(k, klen, "shape") && !have_shape && s->p < s->end &&
            *s->p == '[') {
            if (!scan_shape(s, &rank, dim))
                return 0;
            have_shape = 1;
        } else if (key_is(k, klen, "data") && !have_data && s->p < s->end &&
                   *s->p == '[') {
            d.p = s->p;
            d.end = s->end;
            const int ok = scan_array(&d, 0);
            pre->data = d.buf;
            if (!ok || d.rank != 1)
                return 0;           /* nested arrays in data, ... */
            s->p = d.p;
            have_data = 1;
        } else if (key_is(k, klen, "dtype") && !have_dtype) {
            const char *f, *t;
            if (!scan_plain_string(s, &f, &t) || !key_is(f, (size_t)(t - f),
                                                         "float32"))
                return 0;
            have_dtype = 1;
        } else if (key_is(k, klen, "b64") && !b64) {
            if (!scan_plain_string(s, &b64, &b64_end))
                return 0;
        } else {
            return 0;               /* unknown or repeated key */
        }
        const int more = separator(s, '}');
        if (more < 0)
            return 0;
        if (!more)
            break;
    }
    if (!have_shape || have_data == (b64 != NULL) || (b64 && !have_dtype))
        return 0;
    int64_t numel = 1;
    for (int i = 0; i < rank; i++)
        if (__builtin_mul_overflow(numel, dim[i], &numel) || numel > s->max)
            return 0;               /* too_large, with its message */
    if (have_data) {
        if ((int64_t)d.n != numel)
            return 0;
    } else {
        float *buf = malloc((size_t)numel * sizeof *buf);
        pre->data = buf;
        size_t bad;
        int64_t nonfinite;
        if (!buf || codec_b64_floats(b64, (size_t)(b64_end - b64), buf, numel,
                                     0, &bad, &nonfinite) != 4 * numel ||
            nonfinite >= 0)
            return 0;
    }
    pre->rank = rank;
    pre->object = 1;
    memcpy(pre->dim, dim, sizeof pre->dim);
    return 1;
}

/* ==== skipping other values (Jansson checks them later) ==== */

static const char *skip_string(const char *p, const char *end)
{
    for (p++; p < end; p++) {
        if (*p == '\\')
            p++;
        else if (*p == '"')
            return p + 1;
    }
    return NULL;
}

const char *api_json_skip(const char *p, const char *end)
{
    if (p >= end)
        return NULL;
    if (*p == '"')
        return skip_string(p, end);
    if (*p != '[' && *p != '{') {
        while (p < end && !strchr(",}] \t\r\n", *p))
            p++;
        return p;
    }
    int depth = 0;
    while (p < end) {
        const char c = *p;
        if (c == '"') {
            if (!(p = skip_string(p, end)))
                return NULL;
            continue;
        }
        p++;
        if (c == '[' || c == '{')
            depth++;
        else if ((c == ']' || c == '}') && --depth == 0)
            return p;
    }
    return NULL;
}

/* One value of any kind; only its extent matters here. */
static int skip_value(scan *s)
{
    skip_ws(s);
    const char *q = api_json_skip(s->p, s->end);
    if (q)
        s->p = q;
    return q != NULL;
}

/* ==== the body ==== */

static int fast_enabled = 1;

void api_body_set_fast(int on)
{
    fast_enabled = on;
}

typedef struct span {
    size_t from, to;                /* the tensor's text in the body */
} span;

/* The top-level fields as the scanner met them, for building Jansson's
 * object without parsing the text again. */
#define MAX_FIELDS 32
typedef struct fields {
    int n;                          /* -1: too many to keep */
    struct {
        const char *key, *v, *vend; /* key (no escapes), value's text */
        size_t klen;
        int tensor;                 /* read by the scanner: 0 in the tree */
    } f[MAX_FIELDS];
} fields;

void api_body_free(api_body *b)
{
    json_decref(b->root);
    api_release_memory(b->len);
    for (int i = 0; i < b->npre; i++)
        free(b->pre[i].data);
    memset(b, 0, sizeof *b);
}

/* Reads the tensor fields (names in `tensors`) of a top-level object
 * from the text; 0 when anything is unusual. */
static int fast_scan(api_body *b, const char *body, size_t len,
                     const char *const *tensors, span *spans, fields *fs)
{
    fs->n = 0;
    scan s = {.p = body, .end = body + len};
    skip_ws(&s);
    if (s.p >= s.end || *s.p != '{')
        return 0;
    s.p++;
    for (;;) {
        skip_ws(&s);
        if (s.p >= s.end || *s.p != '"')
            return 0;
        const char *k = ++s.p;
        while (s.p < s.end && *s.p != '"' && *s.p != '\\')
            s.p++;
        if (s.p >= s.end || *s.p != '"')
            return 0;               /* an escape in a key: leave it */
        const size_t klen = (size_t)(s.p - k);
        s.p++;
        skip_ws(&s);
        if (s.p >= s.end || *s.p != ':')
            return 0;
        s.p++;
        skip_ws(&s);
        const char *name = NULL;
        for (const char *const *t = tensors; *t; t++)
            if (strlen(*t) == klen && memcmp(*t, k, klen) == 0)
                name = *t;
        const int tensor = name && s.p < s.end && (*s.p == '[' || *s.p == '{');
        const char *v = s.p;
        if (fs->n >= 0 && fs->n < MAX_FIELDS) {
            fs->f[fs->n].key = k;
            fs->f[fs->n].klen = klen;
            fs->f[fs->n].v = v;
            fs->f[fs->n].tensor = tensor;
        }
        if (tensor) {
            if (b->npre == API_MAX_PRE)
                return 0;
            scan t = {.p = s.p, .end = s.end, .max = api_max_elements(),
                      .max_depth = api_max_depth()};
            for (int i = 0; i < ENGINE_MAX_RANK; i++)
                t.dim[i] = -1;
            spans[b->npre].from = (size_t)(s.p - body);
            api_pre *pre = &b->pre[b->npre];
            memset(pre, 0, sizeof *pre);
            pre->name = name;
            b->npre++;              /* pre->data is b's, even on failure */
            if (*s.p == '{') {
                if (!scan_object(&t, pre))
                    return 0;
            } else {
                int ok = scan_array(&t, 0);
                pre->data = t.buf;
                if (!ok)
                    return 0;
                pre->rank = t.rank;
                memcpy(pre->dim, t.dim, sizeof pre->dim);
            }
            spans[b->npre - 1].to = (size_t)(t.p - body);
            s.p = t.p;
        } else if (!skip_value(&s)) {
            return 0;
        }
        if (fs->n >= 0 && fs->n < MAX_FIELDS)
            fs->f[fs->n++].vend = s.p;
        else
            fs->n = -1;
        skip_ws(&s);
        if (s.p >= s.end)
            return 0;
        if (*s.p == ',') {
            s.p++;
            continue;
        }
        if (*s.p != '}')
            return 0;
        s.p++;
        skip_ws(&s);
        if (s.p != s.end)
            fs->n = -1;             /* trailing text: Jansson's error */
        return b->npre > 0;         /* nothing gained without a tensor */
    }
}

/* A value Jansson would read from [p, q) when it is a plain scalar -- a
 * string of printable ASCII without escapes, true, false, null, or a
 * number -- else NULL (anything else, or a number Jansson refuses: an
 * integer past int64, a real that overflows). */
static json_t *plain_scalar(const char *p, const char *q)
{
    const size_t n = (size_t)(q - p);
    if (n >= 2 && *p == '"' && q[-1] == '"') {
        for (const char *c = p + 1; c < q - 1; c++)
            if (*c < 0x20 || *c > 0x7e || *c == '"' || *c == '\\')
                return NULL;
        return json_stringn_nocheck(p + 1, n - 2);
    }
    if (n == 4 && memcmp(p, "true", 4) == 0)
        return json_true();
    if (n == 5 && memcmp(p, "false", 5) == 0)
        return json_false();
    if (n == 4 && memcmp(p, "null", 4) == 0)
        return json_null();
    int integer;
    double d;
    if (read_number(p, q, &integer, &d) != q)
        return NULL;
    if (integer) {
        if (n > 18)
            return NULL;            /* maybe past int64: Jansson's error */
        return json_integer((json_int_t)strtoll(p, NULL, 10));
    }
    if (!isfinite(d))
        return NULL;                /* "real number overflow" */
    return json_real(d);
}

/* The tree Jansson would build from the body, each tensor as 0, built from
 * the scanner's fields when every other value is a plain scalar; NULL
 * otherwise (or on a duplicate key, or when memory ran out), and the text
 * goes to Jansson, which costs far more for a small body (bench/README.md,
 * "Instruction counts in api/"). */
static json_t *plain_tree(const fields *fs)
{
    if (fs->n < 0)
        return NULL;
    for (int i = 0; i < fs->n; i++)
        for (size_t j = 0; j < fs->f[i].klen; j++)
            if (fs->f[i].key[j] < 0x20 || fs->f[i].key[j] > 0x7e)
                return NULL;        /* Jansson checks UTF-8; leave it */
    api_json_alloc_watch();
    json_t *o = json_object();
    for (int i = 0; o && i < fs->n; i++) {
        json_t *v = fs->f[i].tensor ? json_integer(0)
                                    : plain_scalar(fs->f[i].v, fs->f[i].vend);
        if (v && json_object_getn(o, fs->f[i].key, fs->f[i].klen)) {
            json_decref(v);         /* a duplicate key: Jansson's error */
            v = NULL;
        }
        /* setn_new takes v even when it fails */
        if (!v ||
            json_object_setn_new_nocheck(o, fs->f[i].key, fs->f[i].klen, v)) {
            json_decref(o);
            return NULL;
        }
    }
    if (o && api_json_alloc_failed()) {
        json_decref(o);
        return NULL;
    }
    return o;
}

int api_body_parse(api_body *b, const char *body, size_t len,
                   const char *const *tensors, api_error *e)
{
    return api_body_parse_known(b, body, len, tensors, tensors, NULL, e);
}

int api_body_parse_known(api_body *b, const char *body, size_t len,
                         const char *const *tensors,
                         const char *const *defer,
                         const char *const *known, api_error *e)
{
    memset(b, 0, sizeof *b);
    b->len = len;
    span spans[API_MAX_PRE];
    fields fs;
    if (fast_enabled && fast_scan(b, body, len, tensors, spans, &fs)) {
        b->root = plain_tree(&fs);
        if (b->root)
            return 1;
        if (len >= api_parse_small_size()) {
            /* The tensors read are 0 in the tree, masks stay in the
             * text: parse.c. */
            const char *drop[API_MAX_PRE + 1], *valid[2 * API_MAX_PRE];
            for (int i = 0; i < b->npre; i++) {
                drop[i] = b->pre[i].name;
                /* the scanner takes only valid JSON: not read again */
                valid[2 * i] = body + spans[i].from;
                valid[2 * i + 1] = body + spans[i].to;
            }
            drop[b->npre] = NULL;
            const api_parse_spec spec = {known, defer, &b->deferred, 1, drop,
                                         valid, b->npre};
            api_error quiet = {0};
            b->root = api_parse_bounded(body, len, &spec, &quiet);
            if (b->root)
                return 1;
            b->deferred.n = 0;
        } else {
            /* The rest, with each tensor's text replaced by 0, for
             * Jansson. */
            size_t cut = 0;
            for (int i = 0; i < b->npre; i++)
                cut += spans[i].to - spans[i].from - 1;
            char *rest = malloc(len - cut + 1);
            if (rest) {
                size_t o = 0, from = 0;
                for (int i = 0; i < b->npre; i++) {
                    memcpy(rest + o, body + from, spans[i].from - from);
                    o += spans[i].from - from;
                    rest[o++] = '0';
                    from = spans[i].to;
                }
                memcpy(rest + o, body + from, len - from);
                o += len - from;
                api_error quiet = {0};
                b->root = api_parse_jansson(rest, o, &quiet);
                free(rest);
                if (b->root)
                    return 1;
            }
        }
    }
    /* The full path: Jansson over the original text, for its errors; a
     * large tensor that is not plain numbers is checked on the text
     * (deferred_shape) rather than made a tree. */
    for (int i = 0; i < b->npre; i++)
        free(b->pre[i].data);
    b->npre = 0;
    if (!fast_enabled) {            /* tests: Jansson alone */
        b->root = api_parse_jansson(body, len, e);
        return b->root != NULL;
    }
    const api_parse_spec spec = {known, defer, &b->deferred, 1, NULL,
                                 NULL, 0};
    b->root = api_parse_bounded(body, len, &spec, e);
    return b->root != NULL;
}

/* ==== deferred tensors: codec_tensor_shape's checks on the text ==== */

/* The text is valid JSON (parse.c checked it). */
static const char *tws(const char *p)
{
    while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')
        p++;
    return p;
}

typedef struct twalk {
    const char *end, *name;
    int rank;
    int64_t *dim;
    size_t idx[ENGINE_MAX_RANK + 1];
    api_error *e;
    int mask;                       /* mask.c's rules: ragged_any, leaves
                                     * all booleans or all numbers/null */
    int kind;                       /* 0, or the first leaf's: 1 bool,
                                     * 2 number */
    char first[128];                /* that leaf's path */
} twalk;

static const char *tnext(const twalk *w, const char *p)
{
    return api_json_skip(p, w->end);
}

/* Elements of the array at p. */
static int64_t tcount(const twalk *w, const char *p)
{
    p = tws(p + 1);
    if (*p == ']')
        return 0;
    int64_t n = 0;
    for (;;) {
        p = tws(tnext(w, p));
        n++;
        if (*p != ',')
            return n;
        p = tws(p + 1);
    }
}

/* codec_type_name of the value at p. */
static const char *ttype(const char *p, const char *end)
{
    switch (*p) {
    case '{': return "object";
    case '[': return "array";
    case '"': return "string";
    case 't': return "true";
    case 'f': return "false";
    case 'n': return "null";
    }
    for (const char *q = p; q < end && *q && !strchr(",]} \t\r\n", *q); q++)
        if (*q == '.' || *q == 'e' || *q == 'E')
            return "number";
    return "integer";
}

static int tnumber(const char *p, const char *end, double *d)
{
    int integer;
    if (!(*p == '-' || is_digit(*p)))
        return 0;
    read_number(p, end, &integer, d);
    if (integer && *d == 0.0)
        *d = 0.0;                   /* Jansson's integer -0 is 0 */
    return 1;
}

static void tpath(char *out, size_t cap, const twalk *w, int depth)
{
    int n = snprintf(out, cap, "%s", w->name);
    for (int d = 0; d < depth && n > 0 && (size_t)n < cap; d++)
        n += snprintf(out + n, cap - (size_t)n, "[%zu]", w->idx[d]);
}

/* mask.c's check_leaf for the leaf at p (path). */
static int tmask_leaf(twalk *w, const char *p, const char *path)
{
    double d;
    const int k = *p == 't' || *p == 'f' ? 1
                : *p == 'n' || tnumber(p, w->end, &d) ? 2 : 0;
    if (!k) {
        api_fail(w->e, 422, "wrong_type", path,
                 "%s is %s; a mask holds booleans (true = may attend) or "
                 "numbers (added to the scores, null for -inf)", path,
                 ttype(p, w->end));
        return 0;
    }
    if (!w->kind) {
        w->kind = k;
        size_t n = strlen(path);    /* cut as mask.c's snprintf cuts it */
        n = n < sizeof w->first - 1 ? n : sizeof w->first - 1;
        memcpy(w->first, path, n);
        w->first[n] = 0;
    } else if (k != w->kind) {
        api_fail(w->e, 422, "wrong_type", path,
                 "%s is %s but %s is %s; a mask is all booleans (true = may "
                 "attend) or all numbers (added to the scores, null for "
                 "-inf), not both", path,
                 k == 1 ? "a boolean" : "a number", w->first,
                 w->kind == 1 ? "a boolean" : "a number");
        return 0;
    }
    if (k == 2 && *p != 'n' && !(fabs(d) < FLOAT32_LIMIT)) {
        api_fail(w->e, 422, "out_of_range", path,
                 "%s = %g does not fit in float32 (largest magnitude "
                 "3.4028235e38; send null for -inf)", path, d);
        return 0;
    }
    return 1;
}

/* codec_walk_check: pre-order, an array's length before its elements. */
static const char *tcheck(twalk *w, const char *p, int depth)
{
    char path[160];
    double d;
    if (depth < w->rank) {
        if (*p != '[') {
            tpath(path, sizeof path, w, depth);
            if (w->mask || tnumber(p, w->end, &d))
                api_fail(w->e, 422, "ragged_array", path,
                         "%s is %s where an array of %lld was "
                         "expected: the nesting must be the same everywhere",
                         path, w->mask ? ttype(p, w->end) : "a number",
                         (long long)w->dim[depth]);
            else
                api_fail(w->e, 422, "not_a_number", path,
                         "%s is %s; tensors hold only numbers in nested "
                         "arrays", path, ttype(p, w->end));
            return NULL;
        }
        const int64_t n = tcount(w, p);
        if (n != w->dim[depth]) {
            tpath(path, sizeof path, w, depth);
            api_fail(w->e, 422, "ragged_array", path,
                     "%s has %lld element%s but its siblings have %lld: "
                     "every row must be the same length", path, (long long)n,
                     n == 1 ? "" : "s", (long long)w->dim[depth]);
            return NULL;
        }
        p = tws(p + 1);
        for (int64_t i = 0; i < n; i++) {
            w->idx[depth] = (size_t)i;
            if (!(p = tcheck(w, p, depth + 1)))
                return NULL;
            p = tws(p);
            if (*p == ',')
                p = tws(p + 1);
        }
        return p + 1;               /* ']' */
    }
    if (!w->mask && tnumber(p, w->end, &d) && fabs(d) < FLOAT32_LIMIT)
        return tnext(w, p);
    tpath(path, sizeof path, w, depth);
    if (*p == '[') {
        api_fail(w->e, 422, "ragged_array", path,
                 "%s is an array where a %s was expected: the nesting "
                 "must be the same everywhere (%s is %d-D)", path,
                 w->mask ? "value" : "number", w->name, w->rank);
        return NULL;
    }
    if (w->mask)
        return tmask_leaf(w, p, path) ? tnext(w, p) : NULL;
    if (tnumber(p, w->end, &d))
        api_fail(w->e, 422, "out_of_range", path,
                 "%s = %g does not fit in float32 (largest magnitude "
                 "3.4028235e38)", path, d);
    else
        api_fail(w->e, 422, "not_a_number", path, "%s is %s, not a number",
                 path, ttype(p, w->end));
    return NULL;
}

/* codec_walk_descend: the lengths along the first elements; the depth
 * of the first leaf, max + 1 when deeper, -1 with e set. */
static int tdescend(twalk *w, const char **first, int max)
{
    char path[160];
    const char *p = *first;
    int depth = 0;
    while (*p == '[') {
        const int64_t n = tcount(w, p);
        if (n == 0) {
            tpath(path, sizeof path, w, depth);
            api_fail(w->e, 422, "empty_dimension", path,
                     "%s is empty: every dimension of %s must be at least "
                     "1", path, w->name);
            return -1;
        }
        if (depth == max)
            return max + 1;
        w->dim[depth] = n;
        w->idx[depth] = 0;
        p = tws(p + 1);
        depth++;
    }
    *first = p;
    return depth;
}

/* codec_tensor_shape of an array value, from its text. */
static int deferred_shape(const api_deferred *df, int rank, int64_t *dim,
                          api_error *e)
{
    twalk w = {.end = df->to, .name = df->name, .rank = rank, .dim = dim,
               .e = e};
    char path[160];
    const char *p = df->from;
    const int depth = tdescend(&w, &p, rank);
    if (depth < 0)
        return 0;
    if (depth > rank) {
        api_fail(e, 422, "wrong_rank", w.name,
                 "%s must be %d-D (%s) but is nested deeper", w.name,
                 rank, codec_rank_shape(w.name, rank));
        return 0;
    }
    double d;
    if (!tnumber(p, w.end, &d)) {
        tpath(path, sizeof path, &w, depth);
        api_fail(e, 422, "not_a_number", path, "%s is %s, not a number",
                 path, ttype(p, w.end));
        return 0;
    }
    if (depth != rank) {
        api_fail(e, 422, "wrong_rank", w.name,
                 "%s must be %d-D (%s) but is %d-D", w.name, rank,
                 codec_rank_shape(w.name, rank), depth);
        return 0;
    }
    return tcheck(&w, df->from, 0) != NULL;
}

/* api_mask_shape of a nested mask, from its text. */
static int deferred_mask(const api_deferred *df, engine_tensor *t,
                         int *is_bool, api_error *e)
{
    int64_t dim[ENGINE_MAX_RANK];
    twalk w = {.end = df->to, .name = df->name, .dim = dim, .e = e,
               .mask = 1};
    const char *p = df->from;
    const int depth = tdescend(&w, &p, 3);
    if (depth < 0)
        return 0;
    if (!api_mask_depth_ok(depth, e))
        return 0;
    w.rank = depth;
    if (!tcheck(&w, df->from, 0))
        return 0;
    *t = (engine_tensor){NULL, w.rank, {0}};
    memcpy(t->dim, dim, (size_t)w.rank * sizeof *dim);
    *is_bool = w.kind == 1;
    return api_check_tensor_size(t, "mask", e);
}

/* The values of a checked deferred tensor or mask, in order (mask.c's
 * fill_mask: true 0, false and null -inf). */
static void deferred_fill(const api_deferred *df, float *out)
{
    for (const char *p = df->from; p < df->to;) {
        double d;
        if (tnumber(p, df->to, &d)) {
            *out++ = (float)d;
            p = api_json_skip(p, df->to);
        } else if (*p == 't' || *p == 'f' || *p == 'n') {
            *out++ = *p == 't' ? 0.0f : -INFINITY;
            p = api_json_skip(p, df->to);
        } else {
            p++;
        }
    }
}

static const api_deferred *find_deferred(const api_body *b, const char *name)
{
    for (int i = 0; i < b->deferred.n; i++)
        if (strcmp(b->deferred.d[i].name, name) == 0)
            return &b->deferred.d[i];
    return NULL;
}

static const api_pre *find_pre(const api_body *b, const char *name)
{
    for (int i = 0; i < b->npre; i++)
        if (strcmp(b->pre[i].name, name) == 0)
            return &b->pre[i];
    return NULL;
}

int api_body_tensor(const api_body *b, const char *name, int rank,
                    engine_tensor *t, api_error *e)
{
    const api_pre *pre = find_pre(b, name);
    const api_deferred *df = find_deferred(b, name);
    if (!pre && df) {
        memset(t, 0, sizeof *t);
        t->rank = rank;
        return deferred_shape(df, rank, t->dim, e) &&
               api_check_tensor_size(t, name, e);
    }
    if (!pre)
        return api_read_tensor(json_object_get(b->root, name), name, rank, t,
                               e);
    memset(t, 0, sizeof *t);
    t->rank = rank;
    if (pre->rank != rank) {
        /* The same words codec_tensor_shape uses. */
        if (pre->object)
            codec_shape_rank_error(name, rank, pre->rank, e);
        else if (pre->rank > rank)
            api_fail(e, 422, "wrong_rank", name,
                     "%s must be %d-D (%s) but is nested deeper", name, rank,
                     codec_rank_shape(name, rank));
        else
            api_fail(e, 422, "wrong_rank", name,
                     "%s must be %d-D (%s) but is %d-D", name, rank,
                     codec_rank_shape(name, rank), pre->rank);
        return 0;
    }
    memcpy(t->dim, pre->dim, sizeof t->dim);
    return api_check_tensor_size(t, name, e);
}

int api_body_mask_shape(const api_body *b, const char *name,
                        engine_tensor *t, int *is_bool, api_error *e)
{
    const api_deferred *df = find_deferred(b, name);
    if (df)
        return deferred_mask(df, t, is_bool, e);
    return api_mask_shape(json_object_get(b->root, name), t, is_bool, e);
}

void api_body_mask_fill(const api_body *b, const char *name, int is_bool,
                        engine_tensor *t)
{
    const api_deferred *df = find_deferred(b, name);
    if (df)
        deferred_fill(df, t->data);
    else
        api_mask_fill(json_object_get(b->root, name), is_bool, t);
}

void api_body_fill(const api_body *b, const char *name, engine_tensor *t)
{
    const api_pre *pre = find_pre(b, name);
    const api_deferred *df = find_deferred(b, name);
    if (pre)
        memcpy(t->data, pre->data, (size_t)engine_numel(t) * sizeof *t->data);
    else if (df)
        deferred_fill(df, t->data);
    else
        codec_tensor_fill(t, json_object_get(b->root, name));
}
