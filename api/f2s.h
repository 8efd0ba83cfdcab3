/* f2s.h -- shortest round-trip float32 text (Ryu); see f2s.c. */
#ifndef ATTND_F2S_H
#define ATTND_F2S_H

/* Writes the shortest decimal that reads back as exactly f, in the style
 * of numtext_format_float (its reference): plain decimals for exponents
 * -6..14, else 1.5e-7 / 3e+20 / 3.4028235e+38; -0 as "-0"; inf and NaN as
 * null.
 * s must hold F2S_BUFFER bytes: the text is at most 16 bytes and a NUL,
 * but the bytes after it may be written too.  Returns the length. */
#define F2S_BUFFER 32
int f2s_format(char *s, float f);

#endif
