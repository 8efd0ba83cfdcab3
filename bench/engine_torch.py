#!/usr/bin/python3
"""engine_torch.py [B T hs [threads...]] -- PyTorch twin of engine_bench.c.

The same causal single-head attention, the same ops in the same order as
engine_attention (and the lecture's Head.forward): q, k, v = x @ w^T;
wei = (q @ k^T) * hs**-0.5; masked_fill(tril == 0, -inf); softmax; wei @ v.
C = hs.  Debian's torch for /usr/bin/python3, torch.set_num_threads(N) for
each N, inference mode.  Prints one ENGINE line per thread count in the
format bench/run.sh parses; gflops counts 4*B*T^2*hs at the median time.
The thread counts take turns call by call, so host drift hits them alike.
"""
import math
import sys
import time

import torch
import torch.nn.functional as F

MAX_REPS, MIN_REPS, MIN_SECONDS = 50, 5, 2.0


def vmhwm_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return -1


def head(x, wq, wk, wv, tril, scale):
    q, k, v = x @ wq.T, x @ wk.T, x @ wv.T
    wei = (q @ k.transpose(-2, -1)) * scale
    wei = wei.masked_fill(tril == 0, float("-inf"))
    wei = F.softmax(wei, dim=-1)
    return wei @ v


def main():
    args = sys.argv[1:]
    B, T, hs = (int(a) for a in args[:3]) if len(args) >= 3 else (16, 512, 64)
    threads = [int(a) for a in args[3:]] or [1, 2]
    C = hs
    g = torch.Generator().manual_seed(1337)
    x = torch.randn(B, T, C, generator=g)
    bound = 1.0 / math.sqrt(C)
    wq, wk, wv = ((torch.rand(hs, C, generator=g) * 2 - 1) * bound
                  for _ in range(3))
    tril = torch.tril(torch.ones(T, T))
    scale = hs ** -0.5
    flop = 4.0 * B * T * T * hs

    with torch.inference_mode():
        for n in threads:                   # warm-up, untimed
            torch.set_num_threads(n)
            out = head(x, wq, wk, wv, tril, scale)
        # The thread counts take turns, one call each, as in engine_bench.c.
        times = {n: [] for n in threads}
        start = time.perf_counter()
        reps = 0
        while reps < MAX_REPS and (
                reps < MIN_REPS
                or time.perf_counter() - start < MIN_SECONDS * len(threads)):
            for n in threads:
                torch.set_num_threads(n)
                t0 = time.perf_counter()
                out = head(x, wq, wk, wv, tril, scale)
                times[n].append(time.perf_counter() - t0)
            reps += 1
        checksum = float(out.sum())
        for n in threads:
            ts = sorted(times[n])
            p50 = ts[len(ts) // 2]
            p99 = ts[math.ceil(0.99 * len(ts)) - 1]
            print(f"ENGINE impl=torch threads={n} reps={len(ts)} "
                  f"p50_ms={p50 * 1e3:.3f} p99_ms={p99 * 1e3:.3f} "
                  f"gflops={flop / p50 * 1e-9:.3f} "
                  f"checksum={checksum:.6g} vmhwm_kib={vmhwm_kib()} "
                  f"torch={torch.__version__}", flush=True)

if __name__ == "__main__":
    main()
