/* v2_ext.c -- the v2 answers around infer: health and readiness bodies,
 * model readiness, and the model repository extension (the index; load
 * and unload refused: the models are built in).  (Configuration is next
 * to the metadata in v2.c, statistics in stats.c.)  The readiness itself is
 * the server's: it is passed in. */
#include "v2_internal.h"

#include <stdio.h>
#include <string.h>

#include "internal.h"

/* A small JSON answer built in a fixed buffer and copied out. */
static void small_json(api_response *res, int status, const char *text,
                       size_t n)
{
    jsonw w;
    jw_init(&w);
    jw_raw(&w, text, n);
    v2_respond(res, status, &w, "application/json", 0);
}

static void static_json(api_response *res, int status, const char *text)
{
    memset(res, 0, sizeof *res);
    res->status = status;
    res->content_type = "application/json";
    res->body = (char *)text;
    res->len = strlen(text);
    res->is_static = 1;
}

/* The protocol says the status (200 true, 4xx false: 400, as Triton)
 * and an empty body; KServe's SDK reads the body ({"live": true}, as
 * KServe's own server writes it), Triton's client only the status, so
 * both are sent. */
void api_v2_live(api_response *res)
{
    static_json(res, 200, "{\"live\":true}");
}

void api_v2_ready(int ready, api_response *res)
{
    static_json(res, ready ? 200 : 400,
                ready ? "{\"ready\":true}" : "{\"ready\":false}");
}

/* GET /v2/models/<m>/ready: {"name": m, "ready": bool}, KServe's form. */
void api_v2_model_ready(const char *model, int ready, api_response *res)
{
    const api_model *m = api_model_find(model);
    if (!m) {
        api_v2_model_metadata(model, res);      /* its 404 */
        return;
    }
    char text[96];
    const int n = snprintf(text, sizeof text, "{\"name\":\"%s\",\"ready\":%s}",
                           m->name, ready ? "true" : "false");
    small_json(res, ready ? 200 : 400, text, (size_t)n);
}

/* ==== the model repository extension ==== */

/* The body of an index request: empty (tritonclient sends none) or
 * {"ready": bool}.  1, or 0 with res set to the error. */
static int index_body(const char *body, size_t len, int *ready_only,
                      api_response *res)
{
    size_t ws = 0;
    while (ws < len && strchr(" \t\r\n", body[ws]) && body[ws])
        ws++;
    *ready_only = 0;
    if (ws == len)
        return 1;
    api_error pe = {0};
    json_t *root = api_parse_body(body, len, &pe);
    if (!root) {
        if (pe.status == 503)
            v2_oom(res);
        else
            v2_fail(res, v2_status(pe.status), pe.code, NULL, pe.message);
        return 0;
    }
    const char *key;
    json_t *v;
    int ok = 1;             /* api_parse_body took only an object */
    json_object_foreach(root, key, v) {
        if (!ok)
            break;
        if (strcmp(key, "ready") != 0) {
            char path[64];
            snprintf(path, sizeof path, "%.60s", key);
            v2_fail(res, 400, "unknown_field", path, "a repository index "
                    "request has one field, ready");
            ok = 0;
        } else if (!json_is_boolean(v)) {
            v2_fail(res, 400, "wrong_type", "ready", "ready must be true "
                    "or false");
            ok = 0;
        } else {
            *ready_only = json_is_true(v);
        }
    }
    json_decref(root);
    return ok;
}

void api_v2_repository_index(const char *body, size_t len, api_response *res)
{
    int ready_only;
    if (!index_body(body, len, &ready_only, res))
        return;
    /* every model is built in and always loaded: READY whatever "ready"
     * asks */
    jsonw w;
    jw_init(&w);
    jw_raw(&w, "[", 1);
    for (int i = 0; i < api_nmodels; i++) {
        jw_lit(&w, i ? ",{\"name\":\"" : "{\"name\":\"");
        jw_lit(&w, api_models[i].name);
        jw_lit(&w, "\",\"version\":\"" API_V2_VERSION "\",\"state\":\"READY\"}");
    }
    jw_raw(&w, "]", 1);
    v2_respond(res, 200, &w, "application/json", 0);
}

void api_v2_repository_load(const char *model, int unload, api_response *res)
{
    char msg[320];
    const int i = api_v2_model_index(model);
    if (i >= 0 && !api_model_builtin(i))
        snprintf(msg, sizeof msg, "model %s was loaded from --models at "
                 "start-up and stays loaded while the server runs: %s (POST "
                 "/v2/repository/index lists the models, all READY)", model,
                 unload ? "it cannot be unloaded"
                        : "restart attnd to load another set");
    else
        snprintf(msg, sizeof msg, "model %s is built into attnd and always "
                 "loaded: %s (POST /v2/repository/index lists the models, all "
                 "READY)", model, unload ? "it cannot be unloaded"
                                         : "there is no repository to load it "
                                           "from");
    api_v2_error(res, 400, "not_supported", msg);
}
