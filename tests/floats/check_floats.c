/* check_floats.c -- every one of the 2^32 float32 bit patterns through the
 * response formatter (f2s_format, Ryu): its text must be byte for byte the
 * reference's (double-conversion's ToShortestSingle), each finite value's
 * text must read back (strtof) as the identical bits, and each non-finite
 * one must be "null".  Too slow for make test (minutes on 2 cores); run by
 * `make check-floats`. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../api/f2s.h"
#include "../../api/numtext.h"

int main(void)
{
    unsigned long long bad = 0, finite = 0;
    #pragma omp parallel for schedule(dynamic, 1) reduction(+ : bad, finite)
    for (int64_t hi = 0; hi < 65536; hi++) {
        char s[32], ref[32];
        for (uint32_t lo = 0; lo < 65536; lo++) {
            const uint32_t bits = (uint32_t)hi << 16 | lo;
            float f, g;
            memcpy(&f, &bits, sizeof f);
            f2s_format(s, f);
            numtext_format_float(ref, f);
            if (strcmp(s, ref) != 0) {
                if (bad < 10)
                    fprintf(stderr, "0x%08x: \"%s\", reference \"%s\"\n",
                            bits, s, ref);
                bad++;
                continue;
            }
            if (!isfinite(f)) {
                bad += strcmp(s, "null") != 0;
                continue;
            }
            finite++;
            g = strtof(s, NULL);
            if (memcmp(&f, &g, sizeof f) != 0) {
                if (bad < 10)
                    fprintf(stderr, "0x%08x (%a) -> \"%s\" -> %a\n", bits,
                            (double)f, s, (double)g);
                bad++;
            }
        }
    }
    printf("%llu finite floats round-tripped, %llu failures\n", finite, bad);
    return bad != 0;
}
