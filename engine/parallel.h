/* parallel.h -- engine-internal: the loop every kernel team runs. */
#ifndef ATTND_ENGINE_PARALLEL_H
#define ATTND_ENGINE_PARALLEL_H

#include <stdint.h>

/* A loop over i in [0, n) shared by an OpenMP team of `nthreads` (a
 * variable of that name in scope), or a plain loop for one thread:
 * `#pragma omp parallel if (0)` still has libgomp start and end a team of
 * one, whose end is a futex wake -- one system call on every small
 * request (bench/README.md, the small case). */
#define PARALLEL_FOR(i, n, ...)                                           \
    do {                                                                  \
        if (nthreads > 1) {                                               \
            _Pragma("omp parallel for num_threads(nthreads)")             \
            for (int64_t i = 0; i < (n); i++) __VA_ARGS__                 \
        } else {                                                          \
            for (int64_t i = 0; i < (n); i++) __VA_ARGS__                 \
        }                                                                 \
    } while (0)

#endif
