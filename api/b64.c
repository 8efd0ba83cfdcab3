/* Strict standard base64: encoder, decoder with libsodium's contract, and
 * the alphabet scan (b64.h).
 *
 * Each direction has a scalar path (lookup tables: 12 bits -> 2
 * characters to encode, one table per character position to decode) and
 * an AVX2 path, compiled with a function attribute (no -mavx2 for the
 * file, so the build stays portable) and taken only when the CPU says it
 * has AVX2.  The vector loops only ever handle whole blocks of valid
 * input; everything else -- the tail, the first character outside the
 * alphabet, the padding -- goes to the scalar code, which is libsodium's
 * decoding loop written out, so the two paths cannot disagree on where
 * decoding stops.  The AVX2 loops are Wojciech Muła and Daniel Lemire's
 * ("Faster Base64 Encoding and Decoding Using AVX2 Instructions", ACM
 * TWEB 2018), as aklomp/base64 has them. */
#include "b64.h"

#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define B64_X86 1
#endif

static const char alphabet[64] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* ==== tables, built once (the first call; identical on every thread) ==== */

/* enc12[v]: the two characters of the 12 bits v, first one in byte 0. */
static uint16_t enc12[4096];
/* dec[k][c]: character c at position k of a 4-character group, as its
 * bits in place in the 3 output bytes (byte 0 lowest); 0xff000000 when c
 * is not in the alphabet ('=' included). */
static uint32_t dec[4][256];
/* val[c]: the 6-bit value of c, or 0xff. */
static unsigned char val[256];
static int tables_ready;

static void build_tables(void)
{
    for (int c = 0; c < 256; c++)
        val[c] = 0xff;
    for (int i = 0; i < 64; i++)
        val[(unsigned char)alphabet[i]] = (unsigned char)i;
    for (int v = 0; v < 4096; v++)
        enc12[v] = (uint16_t)((unsigned char)alphabet[v >> 6] |
                              (unsigned char)alphabet[v & 63] << 8);
    for (int c = 0; c < 256; c++) {
        const uint32_t d = val[c];
        if (d == 0xff) {
            dec[0][c] = dec[1][c] = dec[2][c] = dec[3][c] = 0xff000000u;
            continue;
        }
        /* 24 bits c0 c1 c2 c3 -> bytes b0 = c0<<2 | c1>>4,
         * b1 = (c1&15)<<4 | c2>>2, b2 = (c2&3)<<6 | c3 */
        dec[0][c] = d << 2;
        dec[1][c] = d >> 4 | (d & 15) << 12;
        dec[2][c] = (d >> 2) << 8 | (d & 3) << 22;
        dec[3][c] = d << 16;
    }
    __atomic_store_n(&tables_ready, 1, __ATOMIC_RELEASE);
}

static void need_tables(void)
{
    /* Every thread that races here writes the same values. */
    if (!__atomic_load_n(&tables_ready, __ATOMIC_ACQUIRE))
        build_tables();
}

static int simd_off;    /* tests run the scalar path on an AVX2 machine */

void b64_use_simd(int on)
{
    simd_off = !on;
}

static int have_avx2(void)
{
#ifdef B64_X86
    return !simd_off && __builtin_cpu_supports("avx2");
#else
    return 0;
#endif
}

const char *b64_impl(void)
{
    return have_avx2() ? "avx2" : "scalar";
}

/* ==== encoding ==== */

#ifdef B64_X86
/* 24 bytes (read: 28, from in) -> 32 characters. */
__attribute__((target("avx2")))
static size_t enc_avx2(char *out, const unsigned char *in, size_t n)
{
    size_t i = 0;
    const __m256i shuf = _mm256_set_epi8(
        10, 11, 9, 10, 7, 8, 6, 7, 4, 5, 3, 4, 1, 2, 0, 1,
        10, 11, 9, 10, 7, 8, 6, 7, 4, 5, 3, 4, 1, 2, 0, 1);
    const __m256i lut = _mm256_setr_epi8(
        65, 71, -4, -4, -4, -4, -4, -4, -4, -4, -4, -4, -19, -16, 0, 0,
        65, 71, -4, -4, -4, -4, -4, -4, -4, -4, -4, -4, -19, -16, 0, 0);
    for (; i + 28 <= n; i += 24, out += 32) {
        /* bytes 0..11 in the low lane, 12..23 in the high one */
        __m256i v = _mm256_inserti128_si256(
            _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(in + i))),
            _mm_loadu_si128((const __m128i *)(in + i + 12)), 1);
        v = _mm256_shuffle_epi8(v, shuf);
        /* each 32-bit lane b1 b0 b2 b1 -> four 6-bit indices, one a byte */
        const __m256i t0 = _mm256_and_si256(v, _mm256_set1_epi32(0x0fc0fc00));
        const __m256i t1 = _mm256_mulhi_epu16(t0, _mm256_set1_epi32(0x04000040));
        const __m256i t2 = _mm256_and_si256(v, _mm256_set1_epi32(0x003f03f0));
        const __m256i t3 = _mm256_mullo_epi16(t2, _mm256_set1_epi32(0x01000010));
        const __m256i idx = _mm256_or_si256(t1, t3);
        /* index -> character: an offset per range (A-Z, a-z, 0-9, +, /) */
        __m256i r = _mm256_subs_epu8(idx, _mm256_set1_epi8(51));
        r = _mm256_sub_epi8(r, _mm256_cmpgt_epi8(idx, _mm256_set1_epi8(25)));
        r = _mm256_add_epi8(idx, _mm256_shuffle_epi8(lut, r));
        _mm256_storeu_si256((__m256i *)out, r);
    }
    return i;
}
#endif

size_t b64_encode(char *out, const unsigned char *bin, size_t n)
{
    need_tables();
    char *const start = out;
    size_t i = 0;
#ifdef B64_X86
    if (have_avx2()) {
        i = enc_avx2(out, bin, n);
        out += i / 3 * 4;
    }
#endif
    for (; i + 3 <= n; i += 3, out += 4) {
        const uint32_t v = (uint32_t)bin[i] << 16 | (uint32_t)bin[i + 1] << 8 |
                           bin[i + 2];
        memcpy(out, &enc12[v >> 12], 2);
        memcpy(out + 2, &enc12[v & 4095], 2);
    }
    if (i < n) {
        const uint32_t v = (uint32_t)bin[i] << 16 |
                           (i + 1 < n ? (uint32_t)bin[i + 1] << 8 : 0);
        out[0] = alphabet[v >> 18];
        out[1] = alphabet[v >> 12 & 63];
        out[2] = i + 1 < n ? alphabet[v >> 6 & 63] : '=';
        out[3] = '=';
        out += 4;
    }
    return (size_t)(out - start);
}

/* ==== decoding ==== */

#ifdef B64_X86
/* Whole blocks of 32 alphabet characters -> 24 bytes (32 written), while
 * there are 32 bytes of room; stops before the first block holding
 * anything else.  Returns the characters consumed. */
__attribute__((target("avx2")))
static size_t dec_avx2(unsigned char *bin, size_t bin_max, const char *s,
                       size_t len)
{
    const __m256i lut_lo = _mm256_setr_epi8(
        0x15, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
        0x11, 0x11, 0x13, 0x1a, 0x1b, 0x1b, 0x1b, 0x1a,
        0x15, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
        0x11, 0x11, 0x13, 0x1a, 0x1b, 0x1b, 0x1b, 0x1a);
    const __m256i lut_hi = _mm256_setr_epi8(
        0x10, 0x10, 0x01, 0x02, 0x04, 0x08, 0x04, 0x08,
        0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10,
        0x10, 0x10, 0x01, 0x02, 0x04, 0x08, 0x04, 0x08,
        0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10);
    const __m256i lut_roll = _mm256_setr_epi8(
        0, 16, 19, 4, -65, -65, -71, -71, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 16, 19, 4, -65, -65, -71, -71, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m256i mask_2f = _mm256_set1_epi8(0x2f);
    size_t i = 0, o = 0;
    for (; i + 32 <= len && o + 32 <= bin_max; i += 32, o += 24) {
        __m256i str = _mm256_loadu_si256((const __m256i *)(s + i));
        /* classify by nibbles: any byte outside the alphabet sets a bit
         * common to its two lookups ('=' and bytes from 0x80 included) */
        const __m256i hi_nib =
            _mm256_and_si256(_mm256_srli_epi32(str, 4), mask_2f);
        const __m256i lo_nib = _mm256_and_si256(str, mask_2f);
        const __m256i hi = _mm256_shuffle_epi8(lut_hi, hi_nib);
        const __m256i lo = _mm256_shuffle_epi8(lut_lo, lo_nib);
        if (!_mm256_testz_si256(lo, hi))
            break;
        /* character -> 6-bit value: one offset per range, '/' its own */
        const __m256i eq_2f = _mm256_cmpeq_epi8(str, mask_2f);
        const __m256i roll =
            _mm256_shuffle_epi8(lut_roll, _mm256_add_epi8(eq_2f, hi_nib));
        str = _mm256_add_epi8(str, roll);
        /* four 6-bit values -> three bytes, in each 32-bit lane */
        const __m256i ab_bc =
            _mm256_maddubs_epi16(str, _mm256_set1_epi32(0x01400140));
        __m256i out = _mm256_madd_epi16(ab_bc, _mm256_set1_epi32(0x00011000));
        out = _mm256_shuffle_epi8(out, _mm256_setr_epi8(
            2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1,
            2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1));
        out = _mm256_permutevar8x32_epi32(
            out, _mm256_setr_epi32(0, 1, 2, 4, 5, 6, -1, -1));
        _mm256_storeu_si256((__m256i *)(bin + o), out);
    }
    return i;
}
#endif

int b64_decode(unsigned char *bin, size_t bin_max, const char *s, size_t len,
               size_t *bin_len, size_t *end)
{
    need_tables();
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, o = 0;
#ifdef B64_X86
    if (have_avx2()) {
        i = dec_avx2(bin, bin_max, s, len);
        o = i / 4 * 3;
    }
#endif
    /* Whole groups of 4 alphabet characters, 4 bytes of room (one
     * written past the 3). */
    for (; i + 4 <= len && o + 4 <= bin_max; i += 4, o += 3) {
        const uint32_t x = dec[0][u[i]] | dec[1][u[i + 1]] |
                           dec[2][u[i + 2]] | dec[3][u[i + 3]];
        if (x & 0xff000000u)
            break;
        memcpy(bin + o, &x, 4);
    }
    /* The rest is libsodium's loop (codecs.c, sodium_base642bin without
     * the ignore set), from a group boundary: nothing is carried. */
    unsigned int acc = 0, acc_len = 0;
    int ret = 0;
    for (; i < len; i++) {
        const unsigned int d = val[u[i]];
        if (d == 0xff)
            break;
        acc = (acc << 6) + d;
        acc_len += 6;
        if (acc_len >= 8) {
            acc_len -= 8;
            if (o >= bin_max) {
                ret = -1;
                break;
            }
            bin[o++] = (unsigned char)(acc >> acc_len);
        }
    }
    if (acc_len > 4 || (acc & ((1u << acc_len) - 1)) != 0) {
        ret = -1;
    } else if (ret == 0) {
        /* 2 or 4 bits left: one or two '=' must follow */
        for (unsigned int pad = acc_len / 2; pad > 0; pad--, i++) {
            if (i >= len || s[i] != '=') {
                ret = -1;
                break;
            }
        }
    }
    *bin_len = ret == 0 ? o : 0;
    *end = i;
    return ret;
}

/* ==== the alphabet scan ==== */

#ifdef B64_X86
/* Whole blocks of 32 bytes that are all alphabet or '='. */
__attribute__((target("avx2")))
static size_t span_avx2(const char *s, size_t n)
{
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m256i v = _mm256_loadu_si256((const __m256i *)(s + i));
        /* A-Z a-z: (v | 0x20) - 'a' below 26 unsigned; 0-9; '+', '/', '=' */
        const __m256i low = _mm256_or_si256(v, _mm256_set1_epi8(0x20));
        const __m256i az = _mm256_cmpeq_epi8(
            _mm256_min_epu8(_mm256_sub_epi8(low, _mm256_set1_epi8('a')),
                            _mm256_set1_epi8(25)),
            _mm256_sub_epi8(low, _mm256_set1_epi8('a')));
        const __m256i d = _mm256_sub_epi8(v, _mm256_set1_epi8('0'));
        const __m256i digit =
            _mm256_cmpeq_epi8(_mm256_min_epu8(d, _mm256_set1_epi8(9)), d);
        const __m256i other = _mm256_or_si256(
            _mm256_or_si256(_mm256_cmpeq_epi8(v, _mm256_set1_epi8('+')),
                            _mm256_cmpeq_epi8(v, _mm256_set1_epi8('/'))),
            _mm256_cmpeq_epi8(v, _mm256_set1_epi8('=')));
        const __m256i ok = _mm256_or_si256(_mm256_or_si256(az, digit), other);
        if ((uint32_t)_mm256_movemask_epi8(ok) != 0xffffffffu)
            break;
    }
    return i;
}
#endif

size_t b64_alphabet_span(const char *s, size_t n)
{
    need_tables();
    size_t i = 0;
#ifdef B64_X86
    if (have_avx2())
        i = span_avx2(s, n);
#endif
    for (; i < n; i++) {
        const unsigned char c = (unsigned char)s[i];
        if (val[c] == 0xff && c != '=')
            break;
    }
    return i;
}
