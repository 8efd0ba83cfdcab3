/* gpt_model.h -- the lecture's GPTLanguageModel from a model repository.
 *
 * Triton's layout, one folder per model:
 *     DIR/<name>/config.json        {"architecture": "GPTLanguageModel",
 *                                    "vocab_size", "block_size", "n_embd",
 *                                    "n_head", "n_layer", "vocab": "<the
 *                                    vocab_size characters, in id order>",
 *                                    ...anything else is kept, unread}
 *     DIR/<name>/model.safetensors  float32 tensors under the lecture's
 *                                    state_dict names (models/export.py)
 * Loading checks everything before a model is handed out: the config's
 * fields and limits, every tensor present with its exact shape and dtype,
 * no unexpected tensor (the lecture's `tril` buffers are ignored), the
 * file's own structure (api/safetensors.h).  An error is one sentence
 * naming the file, the tensor and the expected shape.  A repository loads
 * whole or not at all.
 */
#ifndef ATTND_API_GPT_MODEL_H
#define ATTND_API_GPT_MODEL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "../engine/gpt.h"

/* Limits a config must respect (a model is read whole into memory). */
#define API_GPT_MAX_PARAMS ((int64_t)1 << 28)   /* floats: 1 GiB */
#define API_GPT_MAX_LAYERS 64
#define API_GPT_MAX_VOCAB (1 << 20)  /* ids are exact as float32 */
#define API_GPT_MAX_NAME 64

typedef struct api_gpt_model {
    char name[API_GPT_MAX_NAME];    /* the folder's name */
    engine_gpt_weights w;           /* w.cfg: the hyper-parameters */
    engine_block_weights *blocks;   /* n_layer, malloc'd */
    float *buf;                     /* every parameter, malloc'd */
    uint32_t *vocab;                /* vocab_size Unicode code points */
    json_t *config;                 /* config.json as read (owned) */
} api_gpt_model;

/* Loads DIR/<name>/ into m.  Returns 0, or -1 with err set and m empty. */
int api_gpt_load(api_gpt_model *m, const char *dir, const char *name,
                 char *err, size_t cap);

/* Validates a config object and fills cfg and the vocabulary (malloc'd
 * into *vocab); label names the file in errors.  Returns 0 or -1. */
int api_gpt_config(const json_t *config, const char *label,
                   engine_gpt_config *cfg, uint32_t **vocab, char *err,
                   size_t cap);

void api_gpt_free(api_gpt_model *m);

/* Every model of a repository: each sub-folder of dir holding a
 * config.json, in name order; folders without one are skipped (so the
 * repository may also hold scripts).  All or nothing: on an error,
 * nothing stays loaded.  *out is a malloc'd array of *n models.  Returns
 * 0 or -1 with err set. */
int api_gpt_load_all(api_gpt_model **out, int *n, const char *dir, char *err,
                     size_t cap);
void api_gpt_free_all(api_gpt_model *models, int n);

/* Text -> ids through the model's vocabulary: UTF-8 decoded, one id per
 * character.  Returns the number of ids (at most cap are written), or
 * -1 - (byte offset) of the first byte that is not valid UTF-8 or whose
 * character is not in the vocabulary. */
int64_t api_gpt_encode(const api_gpt_model *m, const char *text, size_t len,
                       int64_t *ids, int64_t cap);

/* ids -> UTF-8 text into out (NUL-terminated); returns the bytes needed
 * (without the NUL), as snprintf does.  Ids must be in range. */
size_t api_gpt_decode(const api_gpt_model *m, const int64_t *ids, int64_t n,
                      char *out, size_t cap);

#endif
