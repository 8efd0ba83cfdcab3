/* b64_bench -- api/b64.c against libsodium's base64, each way.
 *
 *     make b64-bench            (build/bench/b64_bench [MB] [reps])
 *
 * Random bytes of the size of a large b64 response (3.5 MB text for
 * /attention B8 T256 C64 hs64 weights+out; the default 2.6 MB of floats)
 * are encoded and the text decoded, best of reps runs each, one thread.
 * Rates are in MB/s of binary data (10^6 bytes a second), so both
 * directions count the same bytes; the text is 4/3 of it.  Rows: this
 * codec on the path this CPU takes (avx2 or scalar), its scalar path
 * forced, and libsodium 1.0.18 (constant time).  The decode rows include
 * the alphabet scan codec_b64_floats runs before decoding.  The results
 * of every row are checked equal before any timing is printed. */
#include "../api/b64.h"

#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

typedef struct {
    const char *name;
    double enc, dec;            /* best seconds */
} row;

static volatile size_t sink;

static void ours(row *r, const unsigned char *bin, size_t n, char *text,
                 unsigned char *back, int reps)
{
    const size_t tlen = (n + 2) / 3 * 4;
    r->enc = r->dec = 1e9;
    for (int k = 0; k < reps; k++) {
        double t = now();
        sink += b64_encode(text, bin, n);
        t = now() - t;
        if (t < r->enc)
            r->enc = t;
        t = now();
        size_t got = 0, end = 0;
        const size_t span = b64_alphabet_span(text, tlen);
        const int rc = b64_decode(back, n, text, tlen, &got, &end);
        t = now() - t;
        if (rc != 0 || span != tlen || got != n || end != tlen ||
            memcmp(back, bin, n) != 0) {
            fprintf(stderr, "b64_bench: %s did not round-trip\n", r->name);
            exit(1);
        }
        if (t < r->dec)
            r->dec = t;
    }
}

static void sodium(row *r, const unsigned char *bin, size_t n, char *text,
                   unsigned char *back, int reps)
{
    const size_t tlen = (n + 2) / 3 * 4;
    r->enc = r->dec = 1e9;
    for (int k = 0; k < reps; k++) {
        double t = now();
        sodium_bin2base64(text, tlen + 1, bin, n,
                          sodium_base64_VARIANT_ORIGINAL);
        t = now() - t;
        if (t < r->enc)
            r->enc = t;
        t = now();
        size_t got = 0;
        const char *end = NULL;
        const size_t span = b64_alphabet_span(text, tlen);
        const int rc = sodium_base642bin(back, n, text, tlen, NULL, &got, &end,
                                         sodium_base64_VARIANT_ORIGINAL);
        t = now() - t;
        if (rc != 0 || span != tlen || got != n || memcmp(back, bin, n) != 0) {
            fprintf(stderr, "b64_bench: libsodium did not round-trip\n");
            exit(1);
        }
        if (t < r->dec)
            r->dec = t;
    }
}

int main(int argc, char **argv)
{
    const double mb = argc > 1 ? atof(argv[1]) : 2.62144;
    const int reps = argc > 2 ? atoi(argv[2]) : 15;
    const size_t n = (size_t)(mb * 1e6) / 3 * 3 + 2;   /* a padded tail */
    unsigned char *bin = malloc(n), *back = malloc(n + 32);
    char *text = malloc((n + 2) / 3 * 4 + 64), *text2 = malloc((n + 2) / 3 * 4 + 64);
    if (!bin || !back || !text || !text2 || sodium_init() < 0)
        return 1;
    uint64_t x = 0x9e3779b97f4a7c15u;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        bin[i] = (unsigned char)x;
    }
    /* the same text from both encoders */
    const size_t tlen = b64_encode(text, bin, n);
    sodium_bin2base64(text2, tlen + 1, bin, n, sodium_base64_VARIANT_ORIGINAL);
    if (memcmp(text, text2, tlen) != 0) {
        fprintf(stderr, "b64_bench: encoders differ\n");
        return 1;
    }
    row rows[3] = {{b64_impl(), 0, 0}, {"scalar", 0, 0}, {"libsodium", 0, 0}};
    ours(&rows[0], bin, n, text, back, reps);
    b64_use_simd(0);
    ours(&rows[1], bin, n, text, back, reps);
    b64_use_simd(1);
    sodium(&rows[2], bin, n, text, back, reps);
    printf("base64 of %zu random bytes (%zu characters), best of %d, one thread\n",
           n, tlen, reps);
    printf("%-22s %12s %12s\n", "codec", "encode MB/s", "decode MB/s");
    for (int i = 0; i < 3; i++)
        printf("%-22s %12.0f %12.0f\n",
               i == 0 ? "api/b64.c (this CPU)" : i == 1 ? "api/b64.c scalar"
                                                        : "libsodium",
               (double)n / rows[i].enc / 1e6, (double)n / rows[i].dec / 1e6);
    printf("speed-up over libsodium: encode %.1fx, decode %.1fx (%s path)\n",
           rows[2].enc / rows[0].enc, rows[2].dec / rows[0].dec, rows[0].name);
    free(bin), free(back), free(text), free(text2);
    return (int)(sink & 0);
}
