/* budget.c -- the server-wide memory budget (--max-memory).
 *
 * A request reserves the bytes it may make the server hold before they are
 * allocated and releases them after its answer is sent; a reservation that
 * does not fit is refused (the caller answers 503 with Retry-After) rather
 * than letting an allocation take the machine down.  One atomic counter,
 * compare-and-swap: no lock on the request path.
 *
 * What is reserved today (http.c): a body's announced Content-Length (or
 * its bytes as they arrive, when chunked) before it is buffered, and, when
 * the handler runs, RESERVE_FACTOR x the body more for what parsing and
 * the answer make of it.  The api's cost estimate (issue 15) will replace
 * that guess with the floats a request will hold. */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "server.h"

static _Atomic uint64_t reserved;
static uint64_t limit = UINT64_MAX;

void server_budget_init(uint64_t max_bytes)
{
    limit = max_bytes ? max_bytes : UINT64_MAX;
    atomic_store(&reserved, 0);
}

int server_budget_reserve(uint64_t n)
{
    uint64_t cur = atomic_load_explicit(&reserved, memory_order_relaxed);
    do {
        if (n > limit || cur > limit - n)
            return 0;
    } while (!atomic_compare_exchange_weak_explicit(
        &reserved, &cur, cur + n, memory_order_relaxed,
        memory_order_relaxed));
    return 1;
}

void server_budget_release(uint64_t n)
{
    atomic_fetch_sub_explicit(&reserved, n, memory_order_relaxed);
}

uint64_t server_budget_reserved(void)
{
    return atomic_load_explicit(&reserved, memory_order_relaxed);
}

uint64_t server_budget_limit(void)
{
    return limit;
}

/* A cgroup's memory limit in bytes (v2 memory.max, else v1
 * memory.limit_in_bytes), or 0 when there is none. */
static uint64_t cgroup_limit(void)
{
    static const char *const files[] = {
        "/sys/fs/cgroup/memory.max",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        FILE *f = fopen(files[i], "r");
        if (!f)
            continue;
        char line[64] = "";
        const int ok = fgets(line, sizeof line, f) != NULL;
        fclose(f);
        unsigned long long v;
        if (ok && strncmp(line, "max", 3) != 0 &&
            sscanf(line, "%llu", &v) == 1 && v > 0 && v < (1ULL << 60))
            return (uint64_t)v;
    }
    return 0;
}

uint64_t server_budget_default(void)
{
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    uint64_t mem = pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page
                                         : (uint64_t)4 << 30;
    const uint64_t cg = cgroup_limit();
    if (cg && cg < mem)
        mem = cg;
    /* Three quarters: the rest is the process itself (code, the idle
     * heap, libmicrohttpd's per-connection pools) and what malloc keeps. */
    return mem / 4 * 3;
}
