/* unit.h -- shared helpers of the Check unit tests. */
#ifndef ATTND_UNIT_H
#define ATTND_UNIT_H

#include <check.h>
#include <jansson.h>
#include <stdint.h>

Suite *engine_suite(void);
Suite *jsonw_suite(void);
Suite *api_suite(void);
Suite *oom_suite(void);
Suite *rng_suite(void);
Suite *v2_suite(void);
Suite *gpt_suite(void);
Suite *safetensors_suite(void);
Suite *b64_suite(void);
Suite *parse_suite(void);

/* Deterministic uniform floats in [-1, 1) (a test's own xorshift). */
void unit_fill_random(float *p, int64_t n, uint64_t seed);

/* Compares two JSON values: numbers with |a-b| <= atol + rtol*|b|, null
 * only with null, arrays/objects element by element.  On a difference,
 * writes its path and the two values into why and returns 0. */
int unit_json_close(const json_t *got, const json_t *want, double rtol,
                    double atol, char *why, size_t cap);

#endif
