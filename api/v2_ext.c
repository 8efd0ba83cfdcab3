/* v2_ext.c -- the v2 answers around infer: health and readiness bodies,
 * model readiness.  (Configuration is next to the metadata in v2.c.)  The readiness itself is
 * the server's: it is passed in. */
#include "v2_internal.h"

#include <stdio.h>
#include <string.h>

/* A small JSON answer built in a fixed buffer and copied out. */
static void small_json(api_response *res, int status, const char *text,
                       size_t n)
{
    jsonw w;
    jw_init(&w);
    jw_raw(&w, text, n);
    size_t len = 0;
    char *body = jw_take(&w, &len);
    memset(res, 0, sizeof *res);
    if (!body) {
        v2_oom(res);
        return;
    }
    res->status = status;
    res->content_type = "application/json";
    res->body = body;
    res->len = len;
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
