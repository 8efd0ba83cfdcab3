#!/usr/bin/python3
"""engine_torch.py CASE THREADS -- PyTorch twin of engine_bench.c.

CASE is a, b, c, d (engine_bench.c's cases, the same ops the lecture
writes: q, k, v = x @ w^T; wei = (q @ k^T) * hs**-0.5; masked_fill(tril == 0,
-inf) when causal; softmax; wei @ v; heads concatenated and projected in
case c), or `ceiling`: single-precision GEMM n=2048 through torch.mm and
numpy.matmul, the BLAS's best on this many threads.

One thread count per process: Debian's torch calls the generic libblas.so.3
(OpenBLAS once libopenblas0-pthread is installed), whose threads only
OPENBLAS_NUM_THREADS sets, so bench/run.sh sets it to THREADS and this sets
torch.set_num_threads(THREADS) alike.  Prints

  ENGINE case=a impl=torch threads=N reps=R p50_ms=.. min_ms=.. max_ms=..
         gflops=.. checksum=.. vmhwm_kib=.. blas=<library torch runs on>

(gflops: engine_bench.c's useful_flop at p50) or, for `ceiling`,

  CEILING threads=N torch_gflops=.. numpy_gflops=.. blas=..
"""
import math
import os
import sys
import time

import numpy
import torch
import torch.nn.functional as F

MAX_REPS, MIN_REPS, MIN_SECONDS = 30, 5, 2.0

CASES = {   # B, T, S, C, H, hs, causal, cross, proj
    "a": (16, 512, 512, 64, 1, 64, True, False, False),
    "b": (1, 8192, 8192, 64, 1, 64, True, False, False),
    "c": (4, 1024, 1024, 512, 8, 64, True, False, True),
    "d": (4, 1024, 1024, 64, 1, 64, False, True, False),
}


def vmhwm_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return -1


def blas():
    """The BLAS library this process has mapped (torch's and numpy's)."""
    libs = set()
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split()[-1]
            name = os.path.basename(path)
            if "blas" in name or "mkl" in name:
                libs.add(os.path.realpath(path))
    return ",".join(sorted(libs)) or "none"


def useful_flop(B, T, S, C, H, hs, causal, cross, proj):
    D = H * hs
    pairs = T * S
    if causal:
        pairs = T * (T + 1) / 2 if S >= T else S * (S + 1) / 2 + (T - S) * S
    return B * (2 * C * D * (T + 2 * S) + (2 * T * D * C if proj else 0)
                + 4 * pairs * D)


def attend(x, ctx, wq, wk, wv, wo, bo, tril, scale, H):
    B, T, _ = x.shape
    S = ctx.shape[1]
    hs = wq.shape[0] // H
    q = (x @ wq.T).view(B, T, H, hs).transpose(1, 2)
    k = (ctx @ wk.T).view(B, S, H, hs).transpose(1, 2)
    v = (ctx @ wv.T).view(B, S, H, hs).transpose(1, 2)
    wei = (q @ k.transpose(-2, -1)) * scale
    if tril is not None:
        wei = wei.masked_fill(tril == 0, float("-inf"))
    wei = F.softmax(wei, dim=-1)
    out = (wei @ v).transpose(1, 2).reshape(B, T, H * hs)
    if wo is not None:
        out = out @ wo.T + bo
    return out


def timed(fn):
    fn()                                # warm-up, untimed
    times = []
    start = time.perf_counter()
    while len(times) < MAX_REPS and (
            len(times) < MIN_REPS or time.perf_counter() - start < MIN_SECONDS):
        t0 = time.perf_counter()
        r = fn()
        times.append(time.perf_counter() - t0)
    return sorted(times), r


def ceiling(n_threads):
    n = 2048
    g = torch.Generator().manual_seed(7)
    a, b = torch.randn(n, n, generator=g), torch.randn(n, n, generator=g)
    flop = 2.0 * n ** 3
    tt, _ = timed(lambda: torch.mm(a, b))
    an, bn = a.numpy(), b.numpy()
    tn, _ = timed(lambda: numpy.matmul(an, bn))
    print(f"CEILING threads={n_threads} "
          f"torch_gflops={flop / tt[len(tt) // 2] * 1e-9:.3f} "
          f"numpy_gflops={flop / tn[len(tn) // 2] * 1e-9:.3f} "
          f"blas={blas()} torch={torch.__version__}", flush=True)


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: engine_torch.py a|b|c|d|ceiling THREADS")
    name, n_threads = sys.argv[1], int(sys.argv[2])
    torch.set_num_threads(n_threads)
    if name == "ceiling":
        with torch.inference_mode():
            ceiling(n_threads)
        return
    B, T, S, C, H, hs, causal, cross, proj = CASES[name]
    g = torch.Generator().manual_seed(1337)
    x = torch.randn(B, T, C, generator=g)
    ctx = torch.randn(B, S, C, generator=g) if cross else x
    bound = 1.0 / math.sqrt(C)
    wq, wk, wv = ((torch.rand(H * hs, C, generator=g) * 2 - 1) * bound
                  for _ in range(3))
    wo = bo = None
    if proj:
        wo = (torch.rand(C, H * hs, generator=g) * 2 - 1) / math.sqrt(H * hs)
        bo = (torch.rand(C, generator=g) * 2 - 1) / math.sqrt(H * hs)
    tril = torch.tril(torch.ones(T, S)) if causal else None
    scale = hs ** -0.5
    with torch.inference_mode():
        ts, out = timed(lambda: attend(x, ctx, wq, wk, wv, wo, bo, tril,
                                       scale, H))
    p50 = ts[len(ts) // 2]
    flop = useful_flop(B, T, S, C, H, hs, causal, cross, proj)
    print(f"ENGINE case={name} impl=torch threads={n_threads} reps={len(ts)} "
          f"p50_ms={p50 * 1e3:.3f} min_ms={ts[0] * 1e3:.3f} "
          f"max_ms={ts[-1] * 1e3:.3f} gflops={flop / p50 * 1e-9:.3f} "
          f"checksum={float(out.sum()):.6g} vmhwm_kib={vmhwm_kib()} "
          f"blas={blas()} torch={torch.__version__}", flush=True)


if __name__ == "__main__":
    main()
