/* gpt_model.c -- see gpt_model.h. */
#include "gpt_model.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "safetensors.h"

#define fail api_st_errorf

/* ==== UTF-8 ==== */

/* One code point from s[0..len); returns its byte length, 0 if invalid
 * (overlong, surrogate, past U+10FFFF, truncated). */
static int utf8_next(const unsigned char *s, size_t len, uint32_t *cp)
{
    if (len == 0)
        return 0;
    const unsigned c = s[0];
    int n;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xe0) == 0xc0) {
        n = 2, v = c & 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
        n = 3, v = c & 0x0f, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
        n = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if ((size_t)n > len)
        return 0;
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        v = v << 6 | (s[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return n;
}

static size_t utf8_put(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3f));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* ==== config.json ==== */

static int need_int(const json_t *c, const char *label, const char *key,
                    int64_t lo, int64_t hi, int64_t *out, char *err,
                    size_t cap)
{
    const json_t *v = json_object_get(c, key);
    if (!json_is_integer(v) || json_integer_value(v) < lo
        || json_integer_value(v) > hi)
        return fail(err, cap, "%s: \"%s\" must be an integer in [%lld, %lld]",
                    label, key, (long long)lo, (long long)hi);
    *out = json_integer_value(v);
    return 0;
}

int api_gpt_config(const json_t *c, const char *label, engine_gpt_config *cfg,
                   uint32_t **vocab, char *err, size_t cap)
{
    *vocab = NULL;
    if (!json_is_object(c))
        return fail(err, cap, "%s: not a JSON object", label);
    const char *arch = json_string_value(json_object_get(c, "architecture"));
    if (!arch || strcmp(arch, "GPTLanguageModel") != 0)
        return fail(err, cap, "%s: \"architecture\" must be "
                    "\"GPTLanguageModel\" (the lecture's model)", label);
    if (need_int(c, label, "vocab_size", 1, API_GPT_MAX_VOCAB, &cfg->vocab_size, err,
                 cap) || need_int(c, label, "block_size", 1, 1 << 16,
                                  &cfg->block_size, err, cap)
        || need_int(c, label, "n_embd", 1, 1 << 16, &cfg->n_embd, err, cap)
        || need_int(c, label, "n_layer", 1, API_GPT_MAX_LAYERS,
                    &cfg->n_layer, err, cap)
        || need_int(c, label, "n_head", 1, cfg->n_embd, &cfg->n_head, err,
                    cap))
        return -1;
    /* Each term is at most 2^32 * 2^6, so the sum cannot overflow. */
    if (engine_gpt_numel(cfg) > API_GPT_MAX_PARAMS)
        return fail(err, cap, "%s: %lld parameters, more than the %lld a "
                    "model may have", label,
                    (long long)engine_gpt_numel(cfg),
                    (long long)API_GPT_MAX_PARAMS);
    const json_t *vj = json_object_get(c, "vocab");
    if (!json_is_string(vj))
        return fail(err, cap, "%s: \"vocab\" must be a string: the %lld "
                    "characters of the vocabulary in id order", label,
                    (long long)cfg->vocab_size);
    const unsigned char *s = (const unsigned char *)json_string_value(vj);
    size_t len = json_string_length(vj);
    uint32_t *v = malloc((size_t)cfg->vocab_size * sizeof *v);
    if (!v)
        return fail(err, cap, "%s: out of memory", label);
    int64_t n = 0;
    while (len) {
        uint32_t cp;
        int k = utf8_next(s, len, &cp);   /* Jansson checked the UTF-8 */
        if (!k || n == cfg->vocab_size)
            break;
        for (int64_t i = 0; i < n; i++)
            if (v[i] == cp) {
                free(v);
                return fail(err, cap, "%s: \"vocab\" has character U+%04X "
                            "twice (ids %lld and %lld)", label, cp,
                            (long long)i, (long long)n);
            }
        v[n++] = cp;
        s += k, len -= (size_t)k;
    }
    if (n != cfg->vocab_size || len) {
        free(v);
        return fail(err, cap, "%s: \"vocab\" must hold exactly vocab_size = "
                    "%lld characters", label, (long long)cfg->vocab_size);
    }
    *vocab = v;
    return 0;
}

/* ==== loading ==== */

void api_gpt_free(api_gpt_model *m)
{
    free(m->blocks);
    free(m->buf);
    free(m->vocab);
    json_decref(m->config);
    memset(m, 0, sizeof *m);
}

int api_gpt_load(api_gpt_model *m, const char *dir, const char *name,
                 char *err, size_t cap)
{
    memset(m, 0, sizeof *m);
    char path[4096];
    if (strlen(name) >= API_GPT_MAX_NAME)
        return fail(err, cap, "%s/%s: model name longer than %d bytes", dir,
                    name, API_GPT_MAX_NAME - 1);
    snprintf(m->name, sizeof m->name, "%s", name);

    snprintf(path, sizeof path, "%s/%s/config.json", dir, name);
    json_error_t je;
    m->config = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!m->config) {
        fail(err, cap, "%s: %s (line %d, column %d)", path, je.text, je.line,
             je.column);
        api_gpt_free(m);
        return -1;
    }
    engine_gpt_config cfg;
    if (api_gpt_config(m->config, path, &cfg, &m->vocab, err, cap) != 0) {
        api_gpt_free(m);
        return -1;
    }
    m->blocks = calloc((size_t)cfg.n_layer, sizeof *m->blocks);
    m->buf = malloc((size_t)engine_gpt_numel(&cfg) * sizeof *m->buf);
    engine_param *ps = NULL;
    if (!m->blocks || !m->buf) {
        fail(err, cap, "%s/%s: out of memory for %lld parameters", dir, name,
             (long long)engine_gpt_numel(&cfg));
        api_gpt_free(m);
        return -1;
    }
    engine_gpt_layout(&m->w, m->blocks, m->buf, &cfg);

    snprintf(path, sizeof path, "%s/%s/model.safetensors", dir, name);
    api_st_file f;
    if (api_st_open(&f, path, err, cap) != 0) {
        api_gpt_free(m);
        return -1;
    }
    const int64_t np = engine_gpt_params(NULL, 0, &m->w);
    ps = malloc((size_t)np * sizeof *ps);
    int rc = ps ? 0 : fail(err, cap, "%s: out of memory", path);
    if (!rc)
        engine_gpt_params(ps, np, &m->w);
    for (int64_t i = 0; !rc && i < np; i++)
        rc = api_st_read_f32(&f, ps[i].name, ps[i].data, ps[i].rank,
                             ps[i].dim, err, cap);
    /* Nothing else may be in the file (the lecture's tril buffers aside):
     * a tensor under an unexpected name is a wrong export. */
    for (int i = 0; !rc && i < f.ntensors; i++) {
        const char *tn = f.tensors[i].name;
        const size_t tl = strlen(tn);
        if (tl > 5 && strcmp(tn + tl - 5, ".tril") == 0)
            continue;
        int64_t j = 0;
        while (j < np && strcmp(ps[j].name, tn) != 0)
            j++;
        if (j == np)
            rc = fail(err, cap, "%s: unexpected tensor %s (not a parameter of "
                      "GPTLanguageModel with n_layer %lld, n_head %lld)", path,
                      tn, (long long)cfg.n_layer, (long long)cfg.n_head);
    }
    free(ps);
    api_st_close(&f);
    if (rc) {
        api_gpt_free(m);
        return -1;
    }
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void api_gpt_free_all(api_gpt_model *models, int n)
{
    for (int i = 0; i < n; i++)
        api_gpt_free(&models[i]);
    free(models);
}

int api_gpt_load_all(api_gpt_model **out, int *n, const char *dir, char *err,
                     size_t cap)
{
    *out = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return fail(err, cap, "%s: cannot open the model repository", dir);
    char **names = NULL;
    int cnt = 0, rc = 0;
    struct dirent *e;
    while (!rc && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s/config.json", dir, e->d_name);
        if (stat(path, &st) != 0)
            continue;       /* not a model folder */
        char **nn = realloc(names, (size_t)(cnt + 1) * sizeof *names);
        if (!nn || !(nn[cnt] = strdup(e->d_name))) {
            names = nn ? nn : names;
            rc = fail(err, cap, "%s: out of memory", dir);
            break;
        }
        names = nn;
        cnt++;
    }
    closedir(d);
    if (!rc && cnt)
        qsort(names, (size_t)cnt, sizeof *names, by_name);
    api_gpt_model *ms = rc ? NULL : calloc((size_t)(cnt ? cnt : 1), sizeof *ms);
    if (!rc && !ms)
        rc = fail(err, cap, "%s: out of memory", dir);
    for (int i = 0; !rc && i < cnt; i++)
        rc = api_gpt_load(&ms[i], dir, names[i], err, cap);
    for (int i = 0; i < cnt; i++)
        free(names[i]);
    free(names);
    if (rc) {
        api_gpt_free_all(ms, cnt);   /* failed ones are already empty */
        return -1;
    }
    *out = ms;
    *n = cnt;
    return 0;
}

/* ==== text ==== */

int64_t api_gpt_encode(const api_gpt_model *m, const char *text, size_t len,
                       int64_t *ids, int64_t cap)
{
    const unsigned char *s = (const unsigned char *)text;
    const int64_t V = m->w.cfg.vocab_size;
    int64_t n = 0;
    size_t at = 0;
    while (at < len) {
        uint32_t cp;
        const int k = utf8_next(s + at, len - at, &cp);
        int64_t id = -1;
        for (int64_t i = 0; k && i < V; i++)
            if (m->vocab[i] == cp) {
                id = i;
                break;
            }
        if (id < 0)
            return -1 - (int64_t)at;
        if (n < cap)
            ids[n] = id;
        n++;
        at += (size_t)k;
    }
    return n;
}

size_t api_gpt_decode(const api_gpt_model *m, const int64_t *ids, int64_t n,
                      char *out, size_t cap)
{
    size_t len = 0, w = 0;      /* needed, written */
    for (int64_t i = 0; i < n; i++) {
        char b[4];
        const size_t k = utf8_put(m->vocab[ids[i]], b);
        if (w == len && len + k < cap) {
            memcpy(out + len, b, k);
            w += k;
        }
        len += k;
    }
    if (cap)
        out[w] = '\0';
    return len;
}
