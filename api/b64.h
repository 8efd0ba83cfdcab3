/* Strict standard base64 (RFC 4648 alphabet, '=' padding), fast.
 *
 * The tensor formats' b64 path (codec.c decodes request tensors, jsonw.c
 * writes response tensors).  libsodium's codec, used before, is constant
 * time (~250-290 MB/s here), which a key needs and a tensor does not; it
 * was most of the CPU of a large b64 request.  These functions keep its
 * exact behaviour (tests/unit/test_b64.c compares them with it) at over
 * 1 GB/s each way (bench/b64_bench.c): AVX2 where the CPU has it, chosen
 * at run time, and a table-driven scalar path everywhere else. */
#ifndef ATTND_B64_H
#define ATTND_B64_H

#include <stddef.h>

/* Characters base64 of n bytes takes, with padding, plus one for a NUL. */
#define B64_ENCODED_LEN(n) (((n) + 2) / 3 * 4 + 1)

/* Writes the base64 of bin[0..n) at out: (n + 2) / 3 * 4 characters,
 * padded, and no NUL.  Returns the number of characters written.  Pieces
 * of whole 3-byte groups encode independently: their texts concatenate. */
size_t b64_encode(char *out, const unsigned char *bin, size_t n);

/* Decodes s[0..len) into bin (room for bin_max bytes) exactly as
 * libsodium's sodium_base642bin(bin, bin_max, s, len, NULL, bin_len,
 * &end, sodium_base64_VARIANT_ORIGINAL) does, given bytes below 0x80
 * (libsodium 1.0.18 misreads the others; here they are not base64):
 * decoding stops at the first character outside the alphabet, the bits
 * left must be zero and be followed by their '=' padding, and *end is
 * where it stopped (after the padding).  Returns 0, or -1 with *bin_len
 * 0 (bad trailing bits, missing padding, or more than bin_max bytes);
 * text after *end is the caller's to refuse. */
int b64_decode(unsigned char *bin, size_t bin_max, const char *s, size_t len,
               size_t *bin_len, size_t *end);

/* The index of the first byte of s[0..n) that is not a base64 character
 * or '=' (n when there is none). */
size_t b64_alphabet_span(const char *s, size_t n);

/* Which path runs on this CPU: "avx2" or "scalar". */
const char *b64_impl(void);

/* Tests: b64_use_simd(0) makes every call take the scalar path, (1) lets
 * them use AVX2 again where the CPU has it.  Not for use with threads. */
void b64_use_simd(int on);

#endif
