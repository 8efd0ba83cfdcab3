/* engine_bench.c -- engine_attention without HTTP, for `make bench`.
 *
 *   engine_bench [B T hs [threads...]]     default 16 512 64, threads 1 2
 *
 * Causal single-head attention with C = hs (x: (B,T,C), wq/wk/wv: (hs,C)),
 * the lecture's Head.forward through engine_attention, buffers allocated
 * once.  The projections are timed too, as in bench/engine_torch.py, but the
 * GFLOP/s figure counts only the 4*B*T^2*hs (q @ k^T and wei @ v
 * over the full T x T, masked half included).  Prints one ENGINE line per
 * thread count:
 *
 *   ENGINE impl=attnd threads=N reps=R p50_ms=.. p99_ms=.. gflops=..
 *          checksum=.. vmhwm_kib=..
 *
 * and one CORES line per thread count: how many cores' worth a pure ALU
 * loop got on that many threads, measured between the same calls (taken as
 * threads[0] being one thread).
 *
 * gflops is computed from the median (p50) time.  The thread counts take
 * turns call by call (see main).
 */
#include "engine.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_REPS 50
#define MIN_REPS 5
#define MIN_SECONDS 2.0

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static engine_tensor tensor(int rank, int64_t d0, int64_t d1, int64_t d2)
{
    engine_tensor t = {0};
    t.rank = rank;
    t.dim[0] = d0;
    t.dim[1] = d1;
    t.dim[2] = d2;
    size_t bytes = (size_t)engine_numel(&t) * sizeof(float);
    bytes = (bytes + 63) / 64 * 64;
    t.data = aligned_alloc(64, bytes);
    if (!t.data) {
        fprintf(stderr, "engine_bench: out of memory\n");
        exit(1);
    }
    memset(t.data, 0, bytes);
    return t;
}

/* xorshift + Box-Muller: reproducible N(0,1) without libc's rand(). */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static double uniform01(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return ((rng_state >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}
static void fill(engine_tensor *t, double scale)
{
    int64_t n = engine_numel(t);
    for (int64_t i = 0; i < n; i++)
        t->data[i] = (float)(scale * sqrt(-2.0 * log(uniform01())) *
                             cos(2.0 * M_PI * uniform01()));
}

static long vmhwm_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld", &v) == 1)
            break;
    fclose(f);
    return v;
}

/* A fixed amount of pure ALU work on each of n threads, no memory traffic:
 * n * time(1) / time(n) says how many cores' worth the machine gives right
 * now.  On a shared host the second vCPU can come and go, and then no
 * kernel can scale; this tells that case apart from a kernel that does not
 * scale. */
static volatile uint64_t spin_sink;
static void spin(int n)
{
    #pragma omp parallel num_threads(n) if (n > 1)
    {
        uint64_t z = 88172645463325252ull;
        for (long i = 0; i < 30000000L; i++) {
            z ^= z << 13;
            z ^= z >> 7;
            z ^= z << 17;
        }
        spin_sink = z;
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    int64_t B = argc > 3 ? atoll(argv[1]) : 16;
    int64_t T = argc > 3 ? atoll(argv[2]) : 512;
    int64_t hs = argc > 3 ? atoll(argv[3]) : 64;
    int64_t C = hs;
    int threads[8] = {1, 2};
    int nthr = 2;
    if (argc > 4) {
        nthr = 0;
        for (int i = 4; i < argc && nthr < 8; i++)
            threads[nthr++] = atoi(argv[i]);
    }
    if (B < 1 || T < 1 || hs < 1) {
        fprintf(stderr, "usage: engine_bench [B T hs [threads...]]\n");
        return 2;
    }

    engine_tensor x = tensor(3, B, T, C);
    engine_tensor wq = tensor(2, hs, C, 0), wk = tensor(2, hs, C, 0),
                  wv = tensor(2, hs, C, 0);
    engine_tensor q = tensor(3, B, T, hs), k = tensor(3, B, T, hs),
                  v = tensor(3, B, T, hs), out = tensor(3, B, T, hs);
    engine_tensor scores = tensor(3, B, T, T), wei = tensor(3, B, T, T);
    fill(&x, 1.0);
    fill(&wq, 1.0 / sqrt((double)C));
    fill(&wk, 1.0 / sqrt((double)C));
    fill(&wv, 1.0 / sqrt((double)C));
    const engine_attention_args args = {1, (float)(1.0 / sqrt((double)hs)),
                                        NULL};
    const double flop = 4.0 * B * T * T * hs;
    float *scratch = malloc((size_t)engine_attention_scratch(&x, NULL, hs) *
                            sizeof *scratch);
    if (!scratch)
        return 1;

    /* The thread counts take turns, one call each, so that a machine whose
     * speed drifts (a shared host) affects them alike. */
    static double times[8][MAX_REPS], spins[8][MAX_REPS];
    for (int ti = 0; ti < nthr; ti++)   /* untimed: page in, start teams */
        engine_attention(&q, &k, &v, &scores, &wei, &out, &x, NULL, &wq,
                         &wk, &wv, &args, scratch, threads[ti]);
    int reps = 0;
    double start = now();
    while (reps < MAX_REPS &&
           (reps < MIN_REPS || now() - start < MIN_SECONDS * nthr)) {
        for (int ti = 0; ti < nthr; ti++) {
            double t0 = now();
            spin(threads[ti]);
            spins[ti][reps] = now() - t0;
        }
        for (int ti = 0; ti < nthr; ti++) {
            double t0 = now();
            engine_attention(&q, &k, &v, &scores, &wei, &out, &x, NULL, &wq,
                             &wk, &wv, &args, scratch, threads[ti]);
            times[ti][reps] = now() - t0;
        }
        reps++;
    }
    double sum = 0.0;
    for (int64_t i = 0; i < engine_numel(&out); i++)
        sum += out.data[i];
    for (int ti = 0; ti < nthr; ti++) {
        qsort(times[ti], reps, sizeof times[ti][0], cmp_double);
        double p50 = times[ti][reps / 2];
        double p99 = times[ti][(int)ceil(0.99 * reps) - 1];
        printf("ENGINE impl=attnd threads=%d reps=%d p50_ms=%.3f p99_ms=%.3f "
               "gflops=%.3f checksum=%.6g vmhwm_kib=%ld\n",
               threads[ti], reps, p50 * 1e3, p99 * 1e3, flop / p50 * 1e-9,
               sum, vmhwm_kib());
    }
    qsort(spins[0], reps, sizeof spins[0][0], cmp_double);
    for (int ti = 0; ti < nthr; ti++) {
        if (ti > 0)
            qsort(spins[ti], reps, sizeof spins[ti][0], cmp_double);
        printf("CORES threads=%d cores=%.2f\n", threads[ti],
               threads[ti] * spins[0][reps / 2] / spins[ti][reps / 2]);
    }
    return 0;
}
