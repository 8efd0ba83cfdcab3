// numtext.cc -- see numtext.h: decimal text -> double / float through
// fast_float.  fast_float parses a double in ~20-30 ns where glibc's
// strtod takes ~100 ns and Jansson ~780 ns including its heap object.
// (numtext_format_float, the reference of api/f2s.c, is in
// numtext_ref.cc: test and check binaries only.)
#include "numtext.h"

#include <system_error>

#include <fast_float/fast_float.h>

extern "C" const char *numtext_parse_double(const char *p, const char *end,
                                            double *out)
{
    const fast_float::from_chars_result r = fast_float::from_chars(p, end, *out);
    return r.ec == std::errc() ? r.ptr : nullptr;
}

extern "C" const char *numtext_parse_float(const char *p, const char *end,
                                           float *out)
{
    const fast_float::from_chars_result r = fast_float::from_chars(p, end, *out);
    return r.ec == std::errc() ? r.ptr : nullptr;
}
