/* safetensors.c -- see safetensors.h.  Jansson parses the header; every
 * offset is checked against the buffer before it is used. */
#include "safetensors.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define fail api_st_errorf

int api_st_errorf(char *err, size_t cap, const char *fmt, ...)
{
    if (err && cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return -1;
}

void api_st_shape_text(char *out, size_t cap, int rank, const int64_t *shape)
{
    size_t n = 0;
    if (!cap)
        return;
    out[0] = '\0';
    n += (size_t)snprintf(out, cap, "[");
    for (int i = 0; i < rank && n < cap; i++)
        n += (size_t)snprintf(out + n, cap - n, "%s%lld", i ? ", " : "",
                              (long long)shape[i]);
    if (n < cap)
        snprintf(out + n, cap - n, "]");
}

static int dtype_size(const char *d)
{
    static const struct { const char *name; int size; } types[] = {
        {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8},
        {"I32", 4}, {"I16", 2}, {"I8", 1}, {"U64", 8}, {"U32", 4},
        {"U16", 2}, {"U8", 1}, {"BOOL", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1}};
    for (size_t i = 0; i < sizeof types / sizeof *types; i++)
        if (strcmp(d, types[i].name) == 0)
            return types[i].size;
    return 0;
}

static int by_offset(const void *a, const void *b)
{
    const api_st_tensor *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

/* One header entry into t; label and name for the messages. */
static int entry(api_st_tensor *t, const char *label, const char *name,
                 const json_t *v, char *err, size_t cap)
{
    if (!json_is_object(v))
        return fail(err, cap, "%s: tensor %s: header entry is not an object",
                    label, name);
    const json_t *dt = json_object_get(v, "dtype");
    const json_t *sh = json_object_get(v, "shape");
    const json_t *of = json_object_get(v, "data_offsets");
    if (!json_is_string(dt) || !json_is_array(sh) || !json_is_array(of))
        return fail(err, cap, "%s: tensor %s: header entry needs \"dtype\" "
                    "(a string), \"shape\" and \"data_offsets\" (arrays)",
                    label, name);
    const char *d = json_string_value(dt);
    const int size = strlen(d) < sizeof t->dtype ? dtype_size(d) : 0;
    if (!size)
        return fail(err, cap, "%s: tensor %s: unknown dtype \"%.16s\"", label,
                    name, d);
    strcpy(t->dtype, d);
    if (json_array_size(sh) > API_ST_MAX_RANK)
        return fail(err, cap, "%s: tensor %s: rank %zu, at most %d", label,
                    name, json_array_size(sh), API_ST_MAX_RANK);
    t->rank = (int)json_array_size(sh);
    uint64_t bytes = (uint64_t)size;
    for (int i = 0; i < t->rank; i++) {
        const json_t *e = json_array_get(sh, (size_t)i);
        if (!json_is_integer(e) || json_integer_value(e) < 0)
            return fail(err, cap, "%s: tensor %s: shape[%d] is not a "
                        "non-negative integer", label, name, i);
        t->shape[i] = json_integer_value(e);
        if (__builtin_mul_overflow(bytes, (uint64_t)t->shape[i], &bytes))
            return fail(err, cap, "%s: tensor %s: shape too large", label,
                        name);
    }
    if (json_array_size(of) != 2 || !json_is_integer(json_array_get(of, 0))
        || !json_is_integer(json_array_get(of, 1))
        || json_integer_value(json_array_get(of, 0)) < 0
        || json_integer_value(json_array_get(of, 1)) < 0)
        return fail(err, cap, "%s: tensor %s: data_offsets must be two "
                    "non-negative integers", label, name);
    t->begin = (uint64_t)json_integer_value(json_array_get(of, 0));
    t->end = (uint64_t)json_integer_value(json_array_get(of, 1));
    if (t->end < t->begin)
        return fail(err, cap, "%s: tensor %s: data_offsets [%llu, %llu] end "
                    "before they begin", label, name,
                    (unsigned long long)t->begin, (unsigned long long)t->end);
    if (t->end - t->begin != bytes) {
        char s[160];
        api_st_shape_text(s, sizeof s, t->rank, t->shape);
        return fail(err, cap, "%s: tensor %s: %s %s is %llu bytes but "
                    "data_offsets hold %llu", label, name, t->dtype, s,
                    (unsigned long long)bytes,
                    (unsigned long long)(t->end - t->begin));
    }
    return 0;
}

int api_st_parse(api_st_file *f, const unsigned char *buf, size_t len,
                 const char *label, char *err, size_t cap)
{
    memset(f, 0, sizeof *f);
    snprintf(f->label, sizeof f->label, "%s", label);
    f->buf = (unsigned char *)buf;
    f->size = len;
    label = f->label;
    if (len < 8)
        return fail(err, cap, "%s: %zu bytes, too short for a safetensors "
                    "file (an 8-byte header length comes first)", label, len);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = n << 8 | buf[i];
    if (n > len - 8)
        return fail(err, cap, "%s: the header says it is %llu bytes, larger "
                    "than the %zu bytes of the file after its length",
                    label, (unsigned long long)n, len - 8);
    if (n > API_ST_MAX_HEADER)
        return fail(err, cap, "%s: header of %llu bytes, more than %llu",
                    label, (unsigned long long)n,
                    (unsigned long long)API_ST_MAX_HEADER);
    f->data = buf + 8 + n;
    f->data_size = len - 8 - n;

    json_error_t je;
    json_t *h = json_loadb((const char *)buf + 8, (size_t)n,
                           JSON_REJECT_DUPLICATES, &je);
    if (!h)
        return fail(err, cap, "%s: header is not valid JSON: %s (byte %d of "
                    "the header)", label, je.text, je.position);
    if (!json_is_object(h)) {
        json_decref(h);
        return fail(err, cap, "%s: header is not a JSON object", label);
    }
    size_t cnt = json_object_size(h);
    f->tensors = calloc(cnt ? cnt : 1, sizeof *f->tensors);
    if (!f->tensors) {
        json_decref(h);
        return fail(err, cap, "%s: out of memory", label);
    }
    const char *key;
    json_t *v;
    int rc = 0;
    json_object_foreach(h, key, v) {
        if (strcmp(key, "__metadata__") == 0) {
            if (!json_is_object(v)) {
                rc = fail(err, cap, "%s: __metadata__ is not an object",
                          label);
                break;
            }
            continue;
        }
        api_st_tensor *t = &f->tensors[f->ntensors];
        if ((rc = entry(t, label, key, v, err, cap)) != 0)
            break;
        if (!(t->name = strdup(key))) {
            rc = fail(err, cap, "%s: out of memory", label);
            break;
        }
        f->ntensors++;
        if (t->end > f->data_size) {
            rc = fail(err, cap, "%s: truncated: tensor %s needs data bytes "
                      "[%llu, %llu) but the file has only %llu bytes of "
                      "data", label, key, (unsigned long long)t->begin,
                      (unsigned long long)t->end,
                      (unsigned long long)f->data_size);
            break;
        }
    }
    json_decref(h);
    if (rc) {
        api_st_close(f);
        return rc;
    }
    /* The tensors tile the data exactly, as the reference reader demands. */
    qsort(f->tensors, (size_t)f->ntensors, sizeof *f->tensors, by_offset);
    uint64_t at = 0;
    for (int i = 0; i < f->ntensors; i++) {
        const api_st_tensor *t = &f->tensors[i];
        if (t->begin != at) {
            rc = fail(err, cap, "%s: tensor %s starts at data byte %llu, "
                      "expected %llu (%s)", label, t->name,
                      (unsigned long long)t->begin, (unsigned long long)at,
                      t->begin < at ? "it overlaps the tensor before"
                                    : "a gap before it");
            break;
        }
        at = t->end;
    }
    if (!rc && at != f->data_size)
        rc = fail(err, cap, "%s: %llu bytes of data after the last tensor",
                  label, (unsigned long long)(f->data_size - at));
    if (rc)
        api_st_close(f);
    return rc;
}

int api_st_open(api_st_file *f, const char *path, char *err, size_t cap)
{
    memset(f, 0, sizeof *f);
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return fail(err, cap, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(fp);
        return fail(err, cap, "%s: not a regular file", path);
    }
    size_t len = (size_t)st.st_size;
    unsigned char *buf = malloc(len ? len : 1);
    if (!buf) {
        fclose(fp);
        return fail(err, cap, "%s: out of memory for %zu bytes", path, len);
    }
    if (fread(buf, 1, len, fp) != len) {
        free(buf);
        fclose(fp);
        return fail(err, cap, "%s: read error", path);
    }
    fclose(fp);
    if (api_st_parse(f, buf, len, path, err, cap) != 0) {
        free(buf);
        return -1;
    }
    f->owned = 1;
    return 0;
}

const api_st_tensor *api_st_find(const api_st_file *f, const char *name)
{
    for (int i = 0; i < f->ntensors; i++)
        if (strcmp(f->tensors[i].name, name) == 0)
            return &f->tensors[i];
    return NULL;
}

int api_st_read_f32(const api_st_file *f, const char *name, float *dst,
                    int rank, const int64_t *shape, char *err, size_t cap)
{
    char want[160], got[160];
    api_st_shape_text(want, sizeof want, rank, shape);
    const api_st_tensor *t = api_st_find(f, name);
    if (!t)
        return fail(err, cap, "%s: tensor %s is missing (expected F32 %s)",
                    f->label, name, want);
    if (strcmp(t->dtype, "F32") != 0)
        return fail(err, cap, "%s: tensor %s is %s, expected F32 %s",
                    f->label, name, t->dtype, want);
    int same = t->rank == rank;
    for (int i = 0; same && i < rank; i++)
        same = t->shape[i] == shape[i];
    if (!same) {
        api_st_shape_text(got, sizeof got, t->rank, t->shape);
        return fail(err, cap, "%s: tensor %s has shape %s, expected %s",
                    f->label, name, got, want);
    }
    /* Little-endian bytes to floats, whatever the host's byte order. */
    const unsigned char *p = f->data + t->begin;
    const uint64_t n = (t->end - t->begin) / 4;
    for (uint64_t i = 0; i < n; i++, p += 4) {
        const uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8
                           | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        memcpy(&dst[i], &u, sizeof u);
    }
    return 0;
}

void api_st_close(api_st_file *f)
{
    for (int i = 0; i < f->ntensors; i++)
        free(f->tensors[i].name);
    free(f->tensors);
    if (f->owned)
        free(f->buf);
    f->tensors = NULL;
    f->ntensors = 0;
    f->buf = NULL;
    f->owned = 0;
}
