/* rng.h -- PyTorch's CPU random generator, bit for bit.
 *
 * A request that carries a seed must get exactly the float32 values that
 *     torch.manual_seed(seed); torch.randn(n)        (or rand, nn.Linear)
 * gives in Debian's PyTorch 1.13 -- memcmp-equal, not merely close.  That
 * fixes every detail below: torch's mt19937, how a 32-bit word becomes a
 * float, the two normal paths (< 16 and >= 16 elements) and the rounding of
 * every step of the 16-wide Box-Muller kernel, including where GCC fused a
 * multiply and an add into one FMA when it compiled PyTorch's AVX2 kernel.
 * tests/fixtures/gen_rng.py records the ground truth; tests/unit/test_rng.c
 * compares.
 *
 * Everything depends only on the element count: torch.randn(B,T,C) is
 * torch.randn(B*T*C) viewed as (B,T,C).  No allocation; the caller owns
 * both the generator and every output buffer.  A generator is not
 * thread-safe: one per request (torch's default generator is one global
 * behind a mutex; ours is a value the caller keeps).
 */
#ifndef ATTND_ENGINE_RNG_H
#define ATTND_ENGINE_RNG_H

#include <stdint.h>

#define ENGINE_MT_N 624

/* torch's at::CPUGeneratorImpl: the mt19937 engine plus the cached second
 * sample of the double Box-Muller that randn of fewer than 16 elements
 * uses.  (torch also keeps a float cache, which no float32 randn/rand/
 * uniform path ever reads or writes, so it is not here.) */
typedef struct engine_rng {
    uint64_t seed;                  /* torch.initial_seed(): all 64 bits */
    uint32_t state[ENGINE_MT_N];    /* mt19937 state words */
    int left;                       /* draws until the next twist (1..624) */
    int next;                       /* index of the next state word */
    int has_normal;                 /* a cached normal sample exists ... */
    double normal;                  /* ... and it is this */
} engine_rng;

/* torch.manual_seed(seed).  torch accepts Python ints in [-2^63, 2^64-1]
 * and stores a negative one as its two's complement (-1 -> 2^64-1), which
 * is what a cast to uint64_t does.  Only the low 32 bits reach mt19937
 * (seeds s and s + 2^32 give the same stream).  Drops the cached normal. */
void engine_rng_seed(engine_rng *g, uint64_t seed);

/* One raw 32-bit draw (torch's CPUGeneratorImpl::random()). */
uint32_t engine_rng_u32(engine_rng *g);

/* out (n,) = torch.rand(n): (draw & 0xffffff) * 2^-24, one draw each. */
void engine_rand(engine_rng *g, float *out, int64_t n);

/* out (n,) = tensor.uniform_(from, to) on a float32 tensor of n elements.
 * from and to are rounded to float first, then each element is
 * fmaf(u, to - from, from) with u as in engine_rand -- the FMA is PyTorch's
 * (its AVX2 build contracts that multiply-add).  Preconditions, which
 * torch checks and so must the caller: finite, from <= to, and to - from
 * representable in float32. */
void engine_uniform(engine_rng *g, float *out, int64_t n, double from,
                    double to);

/* out (n,) = torch.randn(n), any shape of n elements.
 *   n >= 16: n uniforms, then 16-element Box-Muller blocks; when n % 16 != 0
 *            the last 16 positions get 16 fresh uniforms and are redone.
 *   n <  16: per element, the cached normal if g holds one, else a new
 *            double Box-Muller pair (4 draws) whose sine half is cached --
 *            across calls too, until the next engine_rng_seed. */
void engine_randn(engine_rng *g, float *out, int64_t n);

/* Same values as engine_randn, always with the portable scalar kernel
 * (explicit fmaf() where PyTorch's AVX2 code fuses).  The reference the
 * AVX2 kernel is tested against, and the fallback on CPUs without it. */
void engine_randn_ref(engine_rng *g, float *out, int64_t n);

/* out (n,) = tensor.normal_(mean, std) on a float32 tensor of n elements
 * (torch.nn.init.normal_ too): n >= 16 is engine_randn's fill with
 * n * (float)std + (float)mean fused into each lane; n < 16 is
 * normal_distribution<double>: fma(sample, std, mean) in double, rounded
 * to float (sharing the cached second sample as engine_randn does).
 * engine_randn is engine_normal(g, out, n, 0, 1). */
void engine_normal(engine_rng *g, float *out, int64_t n, double mean,
                   double stdv);

/* out (n,) = tensor.exponential_(lambda) on a float32 tensor: per element
 * (float)(-1/lambda * log(1 - u)), u a double uniform from 64 bits of the
 * generator (53 kept), as PyTorch's CPU kernel without MKL. */
void engine_exponential(engine_rng *g, float *out, int64_t n, double lambda);

/* Which 16-wide Box-Muller kernel engine_randn runs on this CPU:
 * "avx2+fma" or "scalar-fmaf".  Both give identical bits. */
const char *engine_randn_kernel(void);

/* nn.Linear(in_features, out_features[, bias]) default initialisation on
 * the generator: weight (out_features, in_features) row-major from
 * kaiming_uniform_(a=sqrt(5)), i.e. uniform(-b, b) with
 *   b = sqrt(3) * sqrt(2 / (1 + sqrt(5)**2)) / sqrt(in_features)
 * computed in double as Python does; then, if bias is not NULL, bias
 * (out_features,) from uniform(-1/sqrt(in), 1/sqrt(in)).  A weight with no
 * elements draws nothing (torch warns and returns); in_features == 0 gives
 * a zero bias bound. */
void engine_linear_init(engine_rng *g, float *weight, float *bias,
                        int64_t out_features, int64_t in_features);

/* ==== private: between rng.c and rng_avx2.c ==== */

/* Box-Muller in place over nblocks consecutive blocks of 16 uniforms
 * data (nblocks*16,): in each block, u[0..8) feed the radius and u[8..16)
 * the angle; out = n * stdv + mean (fused).  Returns 0, touching nothing,
 * when this build or this CPU lacks AVX2+FMA. */
int engine_rngp_normal16_avx2(float *data, int64_t nblocks, float mean,
                              float stdv);

/* The same transform, one lane at a time with fmaf(): the reference. */
void engine_rngp_normal16_ref(float *data, int64_t nblocks, float mean,
                              float stdv);

#endif
