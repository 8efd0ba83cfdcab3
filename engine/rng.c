/* rng.c -- PyTorch 1.13's CPU generator (mt19937 + its distributions),
 * reproduced bit for bit.  See rng.h for the contract.
 *
 * Sources read to write this (attnd's own code, PyTorch's algorithm):
 *   aten/src/ATen/core/MT19937RNGEngine.h      the engine and its seeding
 *   aten/src/ATen/CPUGeneratorImpl.cpp         random(), random64(), caches
 *   aten/src/ATen/core/TransformationHelper.h  words -> floats
 *   aten/src/ATen/core/DistributionsHelper.h   normal_distribution<double>
 *   aten/src/ATen/native/cpu/DistributionTemplates.h  normal_fill(_AVX2)
 *   aten/src/ATen/native/cpu/avx_mathfun.h     log256_ps, sincos256_ps
 * and the machine code of Debian's libtorch_cpu.so.1.13 for where GCC
 * (-O2 -mavx2 -mfma, default -ffp-contract=fast) fused multiply-adds.
 *
 * This file must be compiled with -ffp-contract=off (the Makefile says so):
 * every fusion PyTorch has is written out as fmaf()/fma(), and any extra
 * one a compiler invented would change low bits.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "rng.h"

/* ==== mt19937, as at::mt19937 ==== */

#define MT_M 397
#define MT_MATRIX_A 0x9908b0dfu
#define MT_UPPER 0x80000000u
#define MT_LOWER 0x7fffffffu

void engine_rng_seed(engine_rng *g, uint64_t seed)
{
    /* The classic init_genrand on the low 32 bits; torch keeps the full
     * 64-bit value only to report it back (torch.initial_seed()). */
    g->seed = seed;
    g->state[0] = (uint32_t)(seed & 0xffffffffu);
    for (uint32_t j = 1; j < ENGINE_MT_N; j++)
        g->state[j] = 1812433253u * (g->state[j - 1] ^ (g->state[j - 1] >> 30))
                      + j;
    g->left = 1;     /* the first draw twists */
    g->next = 0;
    g->has_normal = 0;
    g->normal = 0.0;
}

static uint32_t twist(uint32_t u, uint32_t v)
{
    return (((u & MT_UPPER) | (v & MT_LOWER)) >> 1) ^ (v & 1u ? MT_MATRIX_A : 0u);
}

static void next_state(engine_rng *g)
{
    uint32_t *s = g->state;
    int j;
    for (j = 0; j < ENGINE_MT_N - MT_M; j++)
        s[j] = s[j + MT_M] ^ twist(s[j], s[j + 1]);
    for (; j < ENGINE_MT_N - 1; j++)
        s[j] = s[j + MT_M - ENGINE_MT_N] ^ twist(s[j], s[j + 1]);
    s[j] = s[j + MT_M - ENGINE_MT_N] ^ twist(s[j], s[0]);
    g->left = ENGINE_MT_N;
    g->next = 0;
}

uint32_t engine_rng_u32(engine_rng *g)
{
    if (--g->left == 0)
        next_state(g);
    uint32_t y = g->state[g->next++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

/* torch's random64(): the first draw is the high half. */
static uint64_t rng_u64(engine_rng *g)
{
    uint64_t hi = engine_rng_u32(g);
    return hi << 32 | engine_rng_u32(g);
}

/* ==== words -> uniforms (transformation::uniform_real) ==== */

/* A float keeps 24 bits of the word: u = (w & (2^24-1)) * 2^-24, exact,
 * in [0, 1).  A double keeps 53 bits of a 64-bit draw. */
static float u24(engine_rng *g)
{
    return (float)(engine_rng_u32(g) & 0xffffffu) * 0x1p-24f;
}

static double u53(engine_rng *g)
{
    return (double)(rng_u64(g) & 0x1fffffffffffffull) * 0x1p-53;
}

void engine_rand(engine_rng *g, float *out, int64_t n)
{
    /* uniform_(0, 1): fmaf(u, 1, 0) is u. */
    for (int64_t i = 0; i < n; i++)
        out[i] = u24(g);
}

void engine_uniform(engine_rng *g, float *out, int64_t n, double from,
                    double to)
{
    /* uniform_kernel casts both bounds to float and computes
     * x * (to - from) + from in float, which the AVX2 build fuses. */
    const float f = (float)from, range = (float)to - f;
    for (int64_t i = 0; i < n; i++)
        out[i] = fmaf(u24(g), range, f);
}

/* ==== randn, fewer than 16 elements: normal_distribution<double> ==== */

/* u1 (first draw) sets the angle, u2 the radius; the sine half is cached
 * for the next call.  GCC turns torch's sin()+cos() into one sincos()
 * call; glibc's sincos gives sin's and cos's exact results either way. */
static double normal_double(engine_rng *g)
{
    if (g->has_normal) {
        g->has_normal = 0;
        return g->normal;
    }
    const double u1 = u53(g);
    const double u2 = u53(g);
    const double r = sqrt(-2.0 * log(1.0 - u2));
    const double theta = 2.0 * M_PI * u1;
    double s, c;
    sincos(theta, &s, &c);
    g->normal = r * s;
    g->has_normal = 1;
    return r * c;
}

static void normal_small(engine_rng *g, float *out, int64_t n, double mean,
                         double stdv)
{
    /* transformation::normal is val * std + mean in double, fused: with
     * std 1 and mean 0 that is val except that -0 becomes +0, kept here. */
    for (int64_t i = 0; i < n; i++)
        out[i] = (float)fma(normal_double(g), stdv, mean);
}

/* ==== the 16-wide Box-Muller kernel, scalar reference ==== */

/* log and sincos below are the cephes single-precision algorithms
 * (Stephen L. Moshier) as vectorised by Julien Pommier's sse_mathfun.h
 * and Giovanni Garberoglio's AVX port (avx_mathfun.h, zlib licence), which
 * PyTorch ships.  The constants are theirs, rounded to float as PyTorch's
 * tables hold them (checked against libtorch_cpu's .rodata); the fmaf()
 * calls are exactly the multiply-adds GCC contracted in PyTorch's build. */

#define LOG_P0   0x1.204376p-4f   /*  7.0376836292E-2 */
#define LOG_P1  -0x1.d7a370p-4f   /* -1.1514610310E-1 */
#define LOG_P2   0x1.de4a34p-4f   /*  1.1676998740E-1 */
#define LOG_P3  -0x1.fcba9ep-4f   /* -1.2420140846E-1 */
#define LOG_P4   0x1.23d37ep-3f   /*  1.4249322787E-1 */
#define LOG_P5  -0x1.555ca0p-3f   /* -1.6668057665E-1 */
#define LOG_P6   0x1.999d58p-3f   /*  2.0000714765E-1 */
#define LOG_P7  -0x1.fffff8p-3f   /* -2.4999993993E-1 */
#define LOG_P8   0x1.555554p-2f   /*  3.3333331174E-1 */
#define LOG_Q1  -0x1.bd0106p-13f  /* -2.12194440e-4 */
#define LOG_Q2   0x1.630000p-1f   /*  0.693359375 */
#define SQRTHF   0x1.6a09e6p-1f   /*  0.707106781186547524 */
#define FOPI     0x1.45f306p+0f   /*  4/pi = 1.27323954473516 */
#define MDP1    -0x1.920000p-1f   /* -0.78515625 */
#define MDP2    -0x1.fb4000p-13f  /* -2.4187564849853515625e-4 */
#define MDP3    -0x1.4442d2p-25f  /* -3.77489497744594108e-8 */
#define COS_P0   0x1.99eb9cp-16f  /*  2.443315711809948E-005 */
#define COS_P1  -0x1.6c0c34p-10f  /* -1.388731625493765E-003 */
#define COS_P2   0x1.55554ap-5f   /*  4.166664568298827E-002 */
#define SIN_P0  -0x1.9943f2p-13f  /* -1.9515295891E-4 */
#define SIN_P1   0x1.11073cp-7f   /*  8.3321608736E-3 */
#define SIN_P2  -0x1.555546p-3f   /* -1.6666655461E-1 */
#define TWO_PI   0x1.921fb6p+2f   /* (float)(2.0 * pi) */

static uint32_t fbits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float bitsf(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Natural log for x in (0, 1] (log256_ps, one lane). */
static float log_cephes(float x)
{
    const int invalid = x <= 0.0f;
    x = x > 0x1p-126f ? x : 0x1p-126f;        /* no denormals */
    const int32_t k = (int32_t)(fbits(x) >> 23) - 127;
    x = bitsf((fbits(x) & 0x807fffffu) | 0x3f000000u);   /* [0.5, 1) */
    float e = (float)k + 1.0f;
    const int small = x < SQRTHF;
    const float tmp = small ? x : 0.0f;
    x = x + -1.0f;
    e = e - (small ? 1.0f : 0.0f);
    x = tmp + x;

    const float z = x * x;
    float y = fmaf(LOG_P0, x, LOG_P1);
    y = fmaf(y, x, LOG_P2);
    y = fmaf(y, x, LOG_P3);
    y = fmaf(y, x, LOG_P4);
    y = fmaf(y, x, LOG_P5);
    y = fmaf(y, x, LOG_P6);
    y = fmaf(y, x, LOG_P7);
    y = fmaf(y, x, LOG_P8);
    y = y * x;
    y = fmaf(y, z, e * LOG_Q1);
    y = fmaf(-z, 0.5f, y);
    x = x + y;
    x = fmaf(e, LOG_Q2, x);
    return invalid ? bitsf(0xffffffffu) : x;     /* NaN, as the vector code */
}

/* sin and cos of one x (sincos256_ps, one lane). */
static void sincos_cephes(float x, float *s, float *c)
{
    uint32_t sign_sin = fbits(x) & 0x80000000u;
    x = bitsf(fbits(x) & 0x7fffffffu);
    int32_t j = (int32_t)(x * FOPI);          /* truncates, as cvttps2dq */
    j = (j + 1) & ~1;
    const float y = (float)j;
    sign_sin ^= (uint32_t)(j & 4) << 29;
    const uint32_t sign_cos = (uint32_t)(~(j - 2) & 4) << 29;
    const int poly_sin = (j & 2) == 0;        /* lanes where sin uses y2 */

    /* Extended precision modular arithmetic: x - y*pi/4 in three parts. */
    x = fmaf(y, MDP1, x);
    x = fmaf(y, MDP2, x);
    x = fmaf(y, MDP3, x);

    const float z = x * x;
    float yc = fmaf(COS_P0, z, COS_P1);
    yc = fmaf(yc, z, COS_P2);
    yc = yc * z;
    yc = fmaf(yc, z, -(z * 0.5f));
    yc = yc + 1.0f;

    float ys = fmaf(SIN_P0, z, SIN_P1);
    ys = fmaf(ys, z, SIN_P2);
    ys = ys * z;
    ys = fmaf(ys, x, x);

    /* The vector code selects with masks and adds the two halves; the
     * masked half is +0, kept so that a -0 result stays what it is there. */
    const float ysin2 = poly_sin ? ys : 0.0f;
    const float ysin1 = poly_sin ? 0.0f : yc;
    ys = ys - ysin2;
    yc = yc - ysin1;
    *s = bitsf(fbits(ysin2 + ysin1) ^ sign_sin);
    *c = bitsf(fbits(yc + ys) ^ sign_cos);
}

void engine_rngp_normal16_ref(float *data, int64_t nblocks, float mean,
                              float stdv)
{
    for (int64_t b = 0; b < nblocks; b++, data += 16)
        for (int j = 0; j < 8; j++) {
            const float u1 = 1.0f - data[j];      /* [0,1) -> (0,1] */
            const float radius = sqrtf(-2.0f * log_cephes(u1));
            float s, c;
            sincos_cephes(TWO_PI * data[j + 8], &s, &c);
            data[j] = fmaf(radius * c, stdv, mean);
            data[j + 8] = fmaf(radius * s, stdv, mean);
        }
}

/* ==== randn ==== */

/* normal_fill: n uniforms, Box-Muller over every whole block of 16, then
 * -- if n is not a multiple of 16 -- 16 fresh uniforms over the last 16
 * positions (overwriting normals already made there) and one more block. */
static void normal_fill(engine_rng *g, float *out, int64_t n, float mean,
                        float stdv, int use_avx2)
{
    const int64_t nblocks = n / 16;
    for (int64_t i = 0; i < n; i++)
        out[i] = u24(g);
    if (!use_avx2 || !engine_rngp_normal16_avx2(out, nblocks, mean, stdv))
        engine_rngp_normal16_ref(out, nblocks, mean, stdv);
    if (n % 16 != 0) {
        float *tail = out + n - 16;
        for (int i = 0; i < 16; i++)
            tail[i] = u24(g);
        if (!use_avx2 || !engine_rngp_normal16_avx2(tail, 1, mean, stdv))
            engine_rngp_normal16_ref(tail, 1, mean, stdv);
    }
}

void engine_randn(engine_rng *g, float *out, int64_t n)
{
    engine_normal(g, out, n, 0.0, 1.0);
}

void engine_randn_ref(engine_rng *g, float *out, int64_t n)
{
    if (n >= 16)
        normal_fill(g, out, n, 0.0f, 1.0f, 0);
    else
        normal_small(g, out, n, 0.0, 1.0);
}

void engine_normal(engine_rng *g, float *out, int64_t n, double mean,
                   double stdv)
{
    /* normal_kernel: the float fill (mean and std cast to float) for 16
     * elements or more, else normal_distribution<double>(mean, std). */
    if (n >= 16)
        normal_fill(g, out, n, (float)mean, (float)stdv, 1);
    else
        normal_small(g, out, n, mean, stdv);
}

void engine_exponential(engine_rng *g, float *out, int64_t n, double lambda)
{
    /* exponential_kernel (no MKL in Debian's build): one
     * exponential_distribution<double> per element, serially:
     * -1.0 / lambda * log(1.0 - u) with u a 53-bit double uniform, then
     * cast to float. */
    for (int64_t i = 0; i < n; i++)
        out[i] = (float)(-1.0 / lambda * log(1.0 - u53(g)));
}

const char *engine_randn_kernel(void)
{
    /* Zero blocks: only the build and CPU checks run. */
    return engine_rngp_normal16_avx2(NULL, 0, 0.0f, 1.0f) ? "avx2+fma"
                                                          : "scalar-fmaf";
}

/* ==== nn.Linear's default init ==== */

void engine_linear_init(engine_rng *g, float *weight, float *bias,
                        int64_t out_features, int64_t in_features)
{
    const int64_t nw = out_features * in_features;
    if (nw > 0) {
        /* init.kaiming_uniform_(w, a=math.sqrt(5)), in Python's doubles:
         * gain = sqrt(2 / (1 + a**2)); std = gain / sqrt(fan_in);
         * bound = sqrt(3) * std.  (a**2 is pow(a, 2), 5.000000000000001.) */
        const double a = sqrt(5.0);
        const double gain = sqrt(2.0 / (1.0 + pow(a, 2.0)));
        const double stdv = gain / sqrt((double)in_features);
        const double bound = sqrt(3.0) * stdv;
        engine_uniform(g, weight, nw, -bound, bound);
    }
    if (bias && out_features > 0) {
        /* bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0 -- a
         * different double from the weight's, same float for common
         * sizes. */
        const double bound = in_features > 0 ? 1.0 / sqrt((double)in_features)
                                             : 0.0;
        engine_uniform(g, bias, out_features, -bound, bound);
    }
}
