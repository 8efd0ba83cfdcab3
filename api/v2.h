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
 * writes one (name, platform, backend, version_policy, max_batch_size 0,
 * input with data_type TYPE_FP32/TYPE_BOOL, dims -1 where free, optional;
 * output; instance_group), from the model table.  Unknown name: 404. */
void api_v2_model_config(const char *model, api_response *res);

/* The protocol extensions attnd implements, as Triton names them, in GET
 * /v2's "extensions": binary_tensor_data (inputs and outputs as raw bytes
 * after the JSON), parameters (request parameters that are not inputs:
 * the native scalar fields), model_configuration (GET .../config),
 * statistics (GET .../stats), model_repository (POST
 * /v2/repository/index; load and unload answer that the models are built
 * in). */
#define API_V2_EXTENSIONS "\"binary_tensor_data\",\"parameters\"," \
                          "\"model_configuration\",\"statistics\"," \
                          "\"model_repository\""

/* GET /v2/health/live: 200 {"live": true}. */
void api_v2_live(api_response *res);
/* GET /v2/health/ready: 200 {"ready": true}, or 400 {"ready": false}. */
void api_v2_ready(int ready, api_response *res);
/* GET /v2/models/<name>/ready: 200 {"name", "ready": true}, or 400 with
 * "ready": false; unknown name: 404. */
void api_v2_model_ready(const char *model, int ready, api_response *res);

/* GET /v2/models/<name>[/versions/1]/stats (name NULL: GET
 * /v2/models/stats, every model): Triton's statistics extension,
 * {"model_stats": [{name, version, last_inference, inference_count,
 * execution_count, inference_stats, response_stats, batch_stats,
 * memory_usage}]}, counted for native and v2 requests since start.
 * Unknown name: 404. */
void api_v2_stats(const char *model, api_response *res);
void api_v2_all_stats(api_response *res);

/* POST /v2/repository/index: [{"name", "version", "state": "READY"}] for
 * every model; the body is empty or {"ready": bool} (400 otherwise). */
void api_v2_repository_index(const char *body, size_t len, api_response *res);
/* POST /v2/repository/models/<name>/load (unload: 0) or /unload (1): the
 * models are built in or loaded from --models at start-up, so 400
 * not_supported saying so. */
void api_v2_repository_load(const char *model, int unload, api_response *res);

/* {"error": "<code>: <message>"} with status; res->code = code (for
 * metrics).  Allocation failure gives the static 503. */
void api_v2_error(api_response *res, int status, const char *code,
                  const char *message);

#endif
