/* repo.c -- the model repository (--models DIR): every model loaded at
 * start-up, all or nothing, each added to the model table (so it is a v2
 * model with routes, metadata and infer), and GET /models. */
#include "model.h"
#include "gpt_model.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static api_gpt_model *models;
static int nmodels;

/* A name that is one URL path segment and nothing a route means. */
static int plain_name(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              (*s >= '0' && *s <= '9') || *s == '_' || *s == '-' ||
              *s == '.'))
            return 0;
    return 1;
}

int api_models_load(const char *dir, int required, char *err, size_t cap)
{
    struct stat st;
    err[0] = '\0';
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        if (!required)
            return 0;
        snprintf(err, cap, "%s: %s", dir,
                 errno ? strerror(errno) : "not a directory");
        return -1;
    }
    api_gpt_model *all = NULL;
    int n = 0;
    if (api_gpt_load_all(&all, &n, dir, err, cap) != 0)
        return -1;
    for (int i = 0; i < n; i++) {
        if (!plain_name(all[i].name) || strcmp(all[i].name, ".") == 0 ||
            strcmp(all[i].name, "..") == 0) {
            snprintf(err, cap, "%s/%s: a model's folder name is its URL "
                     "(/v2/models/<name>): letters, digits, '_', '-', '.'",
                     dir, all[i].name);
        } else if (api_models_add_gpt(&all[i], err, cap) == 0) {
            continue;
        }
        api_models_reset();             /* nothing stays half-loaded */
        api_gpt_free_all(all, n);
        return -1;
    }
    models = all;
    nmodels = n;
    return n;
}

int api_model_builtin(int i)
{
    return i < api_nbuiltin;
}

/* {"models": [{"name", "v2", "parameters", "config"}, ...]}: config is
 * config.json as the repository holds it (hyper-parameters, vocab,
 * training notes). */
void api_models_list(api_response *res)
{
    json_t *root = json_object(), *arr = json_array();
    int ok = root && arr && json_object_set_new(root, "models", arr) == 0;
    if (!ok)
        json_decref(arr);
    for (int i = 0; ok && i < nmodels; i++) {
        char url[96];
        snprintf(url, sizeof url, "/v2/models/%s", models[i].name);
        json_t *m = json_pack("{s:s, s:s, s:I, s:O}", "name", models[i].name,
                              "v2", url, "parameters",
                              (json_int_t)engine_gpt_numel(&models[i].w.cfg),
                              "config", models[i].config);
        ok = m && json_array_append_new(arr, m) == 0;
    }
    char *text = ok ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    if (!text) {
        api_oom(res);
        return;
    }
    memset(res, 0, sizeof *res);
    res->status = 200;
    res->content_type = "application/json";
    res->body = text;
    res->len = strlen(text);
}
