// numtext.cc -- see numtext.h.
//
// Why libraries: bench/ measured the response writer at ~80% of a large
// /attention request when it searched for the shortest text with
// snprintf("%.*g") + strtof (about 1.2 us a number); double-conversion's
// ToShortestSingle is ~70 ns and correct by construction.  Responses now
// use api/f2s.c (Ryu, ~27 ns); this is its reference, and
// `make check-floats` holds the two identical over all 2^32 floats.  fast_float parses
// a double in ~20-30 ns where glibc's strtod takes ~100 ns and Jansson
// ~780 ns including its heap object.
#include "numtext.h"

#include <cstring>
#include <system_error>

#include <double-conversion/double-conversion.h>
#include <fast_float/fast_float.h>

namespace {
using double_conversion::DoubleToStringConverter;
using double_conversion::StringBuilder;

// Immutable after construction, so one instance serves every thread.
const DoubleToStringConverter converter(
    DoubleToStringConverter::EMIT_POSITIVE_EXPONENT_SIGN, "null", "null",
    'e', -6, 15, 0, 0);
}  // namespace

extern "C" int numtext_format_float(char *s, float f)
{
    if (!(f - f == 0.0f)) {     // inf or NaN (its symbols would get a sign)
        std::memcpy(s, "null", 5);
        return 4;
    }
    StringBuilder b(s, 32);
    converter.ToShortestSingle(f, &b);
    const int n = b.position();
    b.Finalize();
    return n;
}

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
