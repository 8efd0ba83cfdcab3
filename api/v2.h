/* v2.h -- the KServe / Triton v2 inference protocol ("Open Inference
 * Protocol", REST), a codec of the typed call (api/model.h), as the
 * native JSON is: a v2 infer request becomes the call of the model (bow,
 * attention, multihead), its result v2 outputs.  Errors are the
 * protocol's {"error": "<message>"}.  No sockets here; the routes and the
 * health answers (which need the server's readiness) are in server/. */
#ifndef ATTND_API_V2_H
#define ATTND_API_V2_H

#include <stddef.h>

#include "api.h"

/* The model served at /v2/models/<name> (bow, attention, multihead), or
 * -1. */
int api_v2_model_index(const char *name);

/* "bow, attention, multihead, block, gpt" and the --models models, for
 * messages (fixed once the repository is loaded). */
const char *api_v2_models(void);

/* The one version each model has, as the protocol's URLs and metadata
 * write it. */
#define API_V2_VERSION "1"

/* GET /v2/models/<name>: the model metadata (name, versions, platform,
 * inputs, outputs; -1 for variable dimensions).  Unknown name: 404. */
void api_v2_model_metadata(const char *model, api_response *res);

/* POST /v2/models/<name>/infer.  json_length is the request's
 * Inference-Header-Content-Length header, or NULL if it has none: as in
 * Triton, the length of the JSON at the start of the body, binary tensor
 * data after it ("0": the whole body is JSON); without it the JSON ends
 * where its object closes. */
void api_v2_infer(const char *model, const char *body, size_t len,
                  const char *json_length, api_response *res);

/* GET /v2/models/<name>/config: the model's configuration as Triton
 * writes one (name, platform, max_batch_size, input, output), from the
 * model table.  Unknown name: 404. */
void api_v2_model_config(const char *model, api_response *res);

/* {"error": "<code>: <message>"} with status; res->code = code (for
 * metrics).  Allocation failure gives the static 503. */
void api_v2_error(api_response *res, int status, const char *code,
                  const char *message);

#endif
