#!/usr/bin/python3
"""PyTorch's side of bench/gpt_bench.sh: the lecture's GPTLanguageModel
loaded from the same exported folder (models/export.py), forward on the
same (B,T) ids, ITERS times after a warm-up, torch.set_num_threads(THREADS).

    gpt_torch.py MODEL_REPO NAME B T ITERS THREADS
prints  torch_gpt B T ms_per_forward logit_sum blas"""
import os
import sys
import time

sys.dont_write_bytecode = True
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "models"))
import export  # noqa: E402

repo, name, B, T, iters, threads = sys.argv[1:7]
B, T, iters, threads = int(B), int(T), int(iters), int(threads)
torch.set_num_threads(threads)
m, cfg = export.load(os.path.join(repo, name))
V = cfg["vocab_size"]
idx = torch.tensor([(i * 7 + 3) % V for i in range(B * T)]).view(B, T)
with torch.no_grad():
    logits, _ = m(idx)
    t0 = time.perf_counter()
    for _ in range(iters):
        logits, _ = m(idx)
    ms = (time.perf_counter() - t0) * 1e3 / iters
cfgtxt = torch.__config__.show()
blas = [w for w in cfgtxt.replace(",", " ").split() if w.startswith("BLAS_INFO")]
print("torch_gpt %d %d %.3f %.6f %s" % (B, T, ms, logits.double().sum().item(),
                                        blas[0] if blas else "BLAS_INFO=?"))
