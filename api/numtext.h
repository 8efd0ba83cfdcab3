/* numtext.h -- number text, both ways, through two well-kept libraries:
 * fast_float (correctly rounded decimal -> double; numtext.cc, in the
 * server) and Google's double-conversion (shortest round-trip float32
 * text; numtext_ref.cc, the reference of api/f2s.c, in the test and check
 * binaries only).  A C face on C++ code. */
#ifndef ATTND_NUMTEXT_H
#define ATTND_NUMTEXT_H

#ifdef __cplusplus
extern "C" {
#endif

/* The reference for f2s_format (which writes responses): the shortest
 * decimal text that reads back (strtof) as exactly f: plain decimals from
 * 1e-6 up to 1e15, else 1e-7 / 3e+20 / 3.4028235e+38; -0 stays "-0".
 * (JavaScript goes plain up to 1e21, but an integer of 16+ digits breaks
 * JSON parsers that read integers as int64 -- Jansson among them; the
 * fuzzer found it.)  Non-finite values are written as null.
 * s must hold 32 bytes; returns the length (not counting the NUL). */
int numtext_format_float(char *s, float f);

/* Parses one JSON number (the caller has checked its grammar) from
 * [p, end) into *out, correctly rounded as strtod would; returns the end
 * of the number, or NULL if no number starts at p. */
const char *numtext_parse_double(const char *p, const char *end, double *out);

/* The same, straight to the nearest float32 (no double in between, so no
 * double rounding): the shortest text numtext_format_float writes reads
 * back as exactly its float. */
const char *numtext_parse_float(const char *p, const char *end, float *out);

#ifdef __cplusplus
}
#endif

#endif
