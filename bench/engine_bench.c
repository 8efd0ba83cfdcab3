/* engine_bench.c -- engine_attend without HTTP, for `make bench`.
 *
 *   engine_bench CASE [threads...]        CASE: a b c d; threads default 1 2
 *
 * The engine cases (bench/README.md), each the lecture's attention
 * through engine_attend with buffers allocated once:
 *   a  B16 T512 hs64 causal, one head (C = hs), scores and weights returned
 *   b  B1 T8192 hs64 causal, one head (C = hs), out only (streaming path)
 *   c  B4 T1024 H8 hs64 causal, C = H*hs = 512, proj, out only
 *   d  cross-attention B4 T=S=1024 hs64 (C = hs), no mask, weights returned
 * Prints one ENGINE line per thread count:
 *
 *   ENGINE case=a impl=attnd threads=N reps=R p50_ms=.. min_ms=.. max_ms=..
 *          gflops=.. checksum=.. vmhwm_kib=..
 *
 * gflops counts only the work that must be done (useful_flop below: the
 * projections, and q.k^T and weights.v over the pairs a query may see,
 * the causal half once), at the median (p50) time; bench/engine_torch.py
 * counts the same.  vmhwm_kib is this process's peak RSS.  One CORES line
 * per thread count: how many cores' worth a pure ALU loop got between the
 * same calls.  The thread counts take turns call by call.
 */
#include "engine.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_REPS 30
#define MIN_REPS 5
#define MIN_SECONDS 2.0

typedef struct bench_case {
    char name;
    int64_t B, T, S, C, H, hs;
    int causal, cross, proj, matrices;
} bench_case;

static const bench_case cases[] = {
    {'a', 16, 512, 512, 64, 1, 64, 1, 0, 0, 1},
    {'b', 1, 8192, 8192, 64, 1, 64, 1, 0, 0, 0},
    {'c', 4, 1024, 1024, 512, 8, 64, 1, 0, 1, 0},
    {'d', 4, 1024, 1024, 64, 1, 64, 0, 1, 0, 1},
};

/* The floating-point operations that must be done: the projections
 * (q from T rows, k and v from S rows, the output projection), then
 * q.k^T and weights.v (2*hs each) over the (query, key) pairs that are
 * not hidden by causality. */
static double useful_flop(const bench_case *c)
{
    const double B = c->B, T = c->T, S = c->S, C = c->C, D = c->H * c->hs;
    double pairs = T * S;
    if (c->causal)      /* row t sees min(t+1, S) keys */
        pairs = c->S >= c->T ? T * (T + 1) / 2
                             : S * (S + 1) / 2 + (T - S) * S;
    return B * (2 * C * D * (T + 2 * S) + (c->proj ? 2 * T * D * C : 0) +
                4 * pairs * D);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static engine_tensor tensor(int rank, int64_t d0, int64_t d1, int64_t d2,
                            int64_t d3)
{
    engine_tensor t = {NULL, rank, {d0, d1, d2, d3}};
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
    const bench_case *c = NULL;
    for (size_t i = 0; argc > 1 && i < sizeof cases / sizeof cases[0]; i++)
        if (argv[1][0] == cases[i].name && !argv[1][1])
            c = &cases[i];
    if (!c) {
        fprintf(stderr, "usage: engine_bench a|b|c|d [threads...]\n");
        return 2;
    }
    int threads[8] = {1, 2};
    int nthr = 2;
    if (argc > 2) {
        nthr = 0;
        for (int i = 2; i < argc && nthr < 8; i++)
            threads[nthr++] = atoi(argv[i]);
    }
    int maxthr = 1;
    for (int i = 0; i < nthr; i++)
        maxthr = threads[i] > maxthr ? threads[i] : maxthr;

    const int64_t B = c->B, T = c->T, S = c->S, C = c->C, H = c->H,
                  hs = c->hs, D = H * hs;
    engine_tensor x = tensor(3, B, T, C, 0), ctx = tensor(3, B, S, C, 0);
    engine_tensor wq = tensor(3, H, hs, C, 0), wk = tensor(3, H, hs, C, 0),
                  wv = tensor(3, H, hs, C, 0), wo = tensor(2, C, D, 0, 0),
                  bo = tensor(1, C, 0, 0, 0);
    engine_tensor out = tensor(3, B, T, c->proj ? C : D, 0);
    engine_tensor scores = {0}, wei = {0};
    if (c->matrices) {
        scores = tensor(4, B, H, T, S);
        wei = tensor(4, B, H, T, S);
    }
    fill(&x, 1.0);
    fill(&ctx, 1.0);
    fill(&wq, 1.0 / sqrt((double)C));
    fill(&wk, 1.0 / sqrt((double)C));
    fill(&wv, 1.0 / sqrt((double)C));
    fill(&wo, 1.0 / sqrt((double)D));
    fill(&bo, 1.0 / sqrt((double)D));
    const engine_attention_args args = {c->causal,
                                        (float)(1.0 / sqrt((double)hs)),
                                        NULL, NULL};
    const double flop = useful_flop(c);
    float *scratch = malloc((size_t)engine_attend_scratch(
                                B, T, S, C, H, hs, c->matrices, maxthr) *
                            sizeof *scratch);
    if (!scratch)
        return 1;
#define CALL(n)                                                             \
    engine_attend(NULL, NULL, NULL, c->matrices ? &scores : NULL,           \
                  c->matrices ? &wei : NULL, NULL, &out, &x,                \
                  c->cross ? &ctx : NULL, &wq, &wk, &wv,                    \
                  c->proj ? &wo : NULL, c->proj ? &bo : NULL, &args,        \
                  scratch, (n))

    /* The thread counts take turns, one call each, so that a machine whose
     * speed drifts (a shared host) affects them alike. */
    static double times[8][MAX_REPS], spins[8][MAX_REPS];
    for (int ti = 0; ti < nthr; ti++)   /* untimed: page in, start teams */
        CALL(threads[ti]);
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
            CALL(threads[ti]);
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
        printf("ENGINE case=%c impl=attnd threads=%d reps=%d p50_ms=%.3f "
               "min_ms=%.3f max_ms=%.3f gflops=%.3f checksum=%.6g "
               "vmhwm_kib=%ld kernel=%s\n",
               c->name, threads[ti], reps, p50 * 1e3, times[ti][0] * 1e3,
               times[ti][reps - 1] * 1e3, flop / p50 * 1e-9, sum,
               vmhwm_kib(), engine_attention_kernel());
    }
    qsort(spins[0], reps, sizeof spins[0][0], cmp_double);
    for (int ti = 0; ti < nthr; ti++) {
        if (ti > 0)
            qsort(spins[ti], reps, sizeof spins[ti][0], cmp_double);
        printf("CORES case=%c threads=%d cores=%.2f\n", c->name, threads[ti],
               threads[ti] * spins[0][reps / 2] / spins[ti][reps / 2]);
    }
    return 0;
}
