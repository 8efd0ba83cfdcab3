// numtext_ref.cc -- numtext_format_float (see numtext.h): the reference
// that api/f2s.c (which writes every response) is checked against, by
// tests/unit/test_jsonw.c and `make check-floats` (all 2^32 floats).
// Google's double-conversion; linked into the test and check binaries
// only, not into build/attnd.
#include "numtext.h"

#include <cstring>

#include <double-conversion/double-conversion.h>

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
