/* rng_avx2.c -- the 16-wide Box-Muller of torch.randn with AVX2 + FMA.
 *
 * Built with -mavx2 -mfma -ffp-contract=off when the compiler takes them
 * (see the Makefile); the kernel runs only after a CPU check, so the
 * binary still works -- through the scalar reference in rng.c -- on a CPU
 * without AVX2.  Both give the same bits: every fused multiply-add below
 * is one that GCC contracted in PyTorch's AVX2 build (read back from
 * Debian's libtorch_cpu.so.1.13), written out as an intrinsic, and with
 * contraction off no other multiply-add is fused.
 *
 * The log and sincos are cephes' single-precision algorithms (Stephen L.
 * Moshier) in the SIMD form of Julien Pommier's sse_mathfun.h and its AVX
 * port by Giovanni Garberoglio (avx_mathfun.h, zlib licence), the code
 * PyTorch uses; rng.c's log_cephes / sincos_cephes are the one-lane
 * versions with the same constants.
 */
#include <stdint.h>

#include "rng.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

#define PS(v) _mm256_set1_ps(v)
#define PI32(v) _mm256_set1_epi32(v)

/* log of 8 floats in (0, 1]; NaN lanes where x <= 0. */
static __m256 log8(__m256 x)
{
    const __m256 one = PS(1.0f);
    const __m256 invalid = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LE_OS);
    x = _mm256_max_ps(x, _mm256_castsi256_ps(PI32(0x00800000)));
    __m256i k = _mm256_srli_epi32(_mm256_castps_si256(x), 23);
    x = _mm256_and_ps(x, _mm256_castsi256_ps(PI32((int)0x807fffff)));
    x = _mm256_or_ps(x, PS(0.5f));
    k = _mm256_sub_epi32(k, PI32(0x7f));
    __m256 e = _mm256_add_ps(_mm256_cvtepi32_ps(k), one);

    const __m256 small = _mm256_cmp_ps(x, PS(0x1.6a09e6p-1f), _CMP_LT_OS);
    const __m256 tmp = _mm256_and_ps(x, small);
    x = _mm256_sub_ps(x, one);
    e = _mm256_sub_ps(e, _mm256_and_ps(one, small));
    x = _mm256_add_ps(x, tmp);

    const __m256 z = _mm256_mul_ps(x, x);
    __m256 y = _mm256_fmadd_ps(PS(0x1.204376p-4f), x, PS(-0x1.d7a370p-4f));
    y = _mm256_fmadd_ps(y, x, PS(0x1.de4a34p-4f));
    y = _mm256_fmadd_ps(y, x, PS(-0x1.fcba9ep-4f));
    y = _mm256_fmadd_ps(y, x, PS(0x1.23d37ep-3f));
    y = _mm256_fmadd_ps(y, x, PS(-0x1.555ca0p-3f));
    y = _mm256_fmadd_ps(y, x, PS(0x1.999d58p-3f));
    y = _mm256_fmadd_ps(y, x, PS(-0x1.fffff8p-3f));
    y = _mm256_fmadd_ps(y, x, PS(0x1.555554p-2f));
    y = _mm256_mul_ps(y, x);
    y = _mm256_fmadd_ps(y, z, _mm256_mul_ps(e, PS(-0x1.bd0106p-13f)));
    y = _mm256_fnmadd_ps(z, PS(0.5f), y);
    x = _mm256_add_ps(x, y);
    x = _mm256_fmadd_ps(e, PS(0x1.630000p-1f), x);
    return _mm256_or_ps(x, invalid);
}

/* sin and cos of 8 floats. */
static void sincos8(__m256 x, __m256 *s, __m256 *c)
{
    const __m256 sign_mask = _mm256_castsi256_ps(PI32((int)0x80000000));
    __m256 sign_sin = _mm256_and_ps(x, sign_mask);
    x = _mm256_andnot_ps(sign_mask, x);

    __m256i j = _mm256_cvttps_epi32(_mm256_mul_ps(x, PS(0x1.45f306p+0f)));
    j = _mm256_and_si256(_mm256_add_epi32(j, PI32(1)), PI32(~1));
    const __m256 y = _mm256_cvtepi32_ps(j);
    const __m256 swap_sin = _mm256_castsi256_ps(
        _mm256_slli_epi32(_mm256_and_si256(j, PI32(4)), 29));
    const __m256 poly_mask = _mm256_castsi256_ps(
        _mm256_cmpeq_epi32(_mm256_and_si256(j, PI32(2)), _mm256_setzero_si256()));
    const __m256 sign_cos = _mm256_castsi256_ps(_mm256_slli_epi32(
        _mm256_andnot_si256(_mm256_sub_epi32(j, PI32(2)), PI32(4)), 29));
    sign_sin = _mm256_xor_ps(sign_sin, swap_sin);

    x = _mm256_fmadd_ps(y, PS(-0x1.920000p-1f), x);
    x = _mm256_fmadd_ps(y, PS(-0x1.fb4000p-13f), x);
    x = _mm256_fmadd_ps(y, PS(-0x1.4442d2p-25f), x);

    const __m256 z = _mm256_mul_ps(x, x);
    __m256 yc = _mm256_fmadd_ps(PS(0x1.99eb9cp-16f), z, PS(-0x1.6c0c34p-10f));
    yc = _mm256_fmadd_ps(yc, z, PS(0x1.55554ap-5f));
    yc = _mm256_mul_ps(yc, z);
    yc = _mm256_fmsub_ps(yc, z, _mm256_mul_ps(z, PS(0.5f)));
    yc = _mm256_add_ps(yc, PS(1.0f));

    __m256 ys = _mm256_fmadd_ps(PS(-0x1.9943f2p-13f), z, PS(0x1.11073cp-7f));
    ys = _mm256_fmadd_ps(ys, z, PS(-0x1.555546p-3f));
    ys = _mm256_mul_ps(ys, z);
    ys = _mm256_fmadd_ps(ys, x, x);

    const __m256 ysin2 = _mm256_and_ps(poly_mask, ys);
    const __m256 ysin1 = _mm256_andnot_ps(poly_mask, yc);
    ys = _mm256_sub_ps(ys, ysin2);
    yc = _mm256_sub_ps(yc, ysin1);
    *s = _mm256_xor_ps(_mm256_add_ps(ysin1, ysin2), sign_sin);
    *c = _mm256_xor_ps(_mm256_add_ps(yc, ys), sign_cos);
}

int engine_rngp_normal16_avx2(float *data, int64_t nblocks, float mean,
                              float stdv)
{
    if (!(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")))
        return 0;
    const __m256 one = PS(1.0f), two_pi = PS(0x1.921fb6p+2f),
                 minus_two = PS(-2.0f), m = PS(mean), sd = PS(stdv);
    for (int64_t b = 0; b < nblocks; b++, data += 16) {
        const __m256 u1 = _mm256_sub_ps(one, _mm256_loadu_ps(data));
        const __m256 u2 = _mm256_loadu_ps(data + 8);
        const __m256 radius =
            _mm256_sqrt_ps(_mm256_mul_ps(minus_two, log8(u1)));
        __m256 s, c;
        sincos8(_mm256_mul_ps(two_pi, u2), &s, &c);
        _mm256_storeu_ps(data, _mm256_fmadd_ps(_mm256_mul_ps(radius, c), sd, m));
        _mm256_storeu_ps(data + 8,
                         _mm256_fmadd_ps(_mm256_mul_ps(radius, s), sd, m));
    }
    return 1;
}

#else

int engine_rngp_normal16_avx2(float *data, int64_t nblocks, float mean,
                              float stdv)
{
    (void)data, (void)nblocks, (void)mean, (void)stdv;
    return 0;
}

#endif
