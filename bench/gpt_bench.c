/* gpt_bench.c -- the lecture's GPT forward in attnd's engine, no HTTP.
 *
 *   gpt_bench MODEL_REPO NAME B T ITERS THREADS
 * loads MODEL_REPO/NAME (api/gpt_model.c), runs engine_gpt_forward on a
 * fixed (B,T) batch of token ids ITERS times (after one warm-up) with
 * every logit computed and no attention weights kept, and prints one line
 *   engine_gpt B T ms_per_forward max_logit_checksum
 * bench/gpt_bench.sh runs it beside bench/gpt_torch.py (PyTorch on the
 * same exported file) and prints the ratio. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "../api/gpt_model.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: gpt_bench MODEL_REPO NAME B T ITERS THREADS\n");
        return 2;
    }
    api_gpt_model m;
    char err[512];
    if (api_gpt_load(&m, argv[1], argv[2], err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    const int64_t B = atoll(argv[3]), T = atoll(argv[4]);
    const int iters = atoi(argv[5]), nthreads = atoi(argv[6]);
    const int64_t V = m.w.cfg.vocab_size;
    if (T > m.w.cfg.block_size) {
        fprintf(stderr, "T > block_size\n");
        return 2;
    }
    int64_t *idx = malloc((size_t)(B * T) * sizeof *idx);
    for (int64_t i = 0; i < B * T; i++)
        idx[i] = (i * 7 + 3) % V;     /* the same ids gpt_torch.py uses */
    float *logits = malloc((size_t)(B * T * V) * sizeof *logits);
    float *scratch = malloc((size_t)engine_gpt_scratch(&m.w.cfg, B, T, nthreads) *
                            sizeof *scratch);
    const engine_gpt_out o = {logits, NULL, NULL, NULL, 0};
    engine_gpt_forward(&o, idx, T, B, T, &m.w, scratch, nthreads);
    const double t0 = now();
    for (int i = 0; i < iters; i++)
        engine_gpt_forward(&o, idx, T, B, T, &m.w, scratch, nthreads);
    const double ms = (now() - t0) * 1e3 / iters;
    double sum = 0;
    for (int64_t i = 0; i < B * T * V; i++)
        sum += logits[i];
    printf("engine_gpt %lld %lld %.3f %.6f\n", (long long)B, (long long)T, ms,
           sum);
    free(scratch), free(logits), free(idx);
    api_gpt_free(&m);
    return 0;
}
