#!/usr/bin/python3
"""Train the lecture's GPTLanguageModel on Tiny Shakespeare, seeded.

    /usr/bin/python3 models/train.py [--out models/shakespeare] [--data FILE]

Debian's PyTorch 1.13 (apt-get install python3-torch), CPU only.  This is
the lecture's training loop (gpt.py: get_batch, estimate_loss, AdamW) at a
size that trains in minutes on two cores: the hyper-parameters below are
attnd's choice, everything else is the lecture's.  The data set is the
lecture's input.txt (public domain), by default at ../shared/data/ beside the
repository; it is needed only here, never at run time.  At the end the model
is exported with models/export.py's layout (config.json + model.safetensors)
and the losses are written into config.json.
"""

import argparse
import json
import os
import sys
import time

sys.dont_write_bytecode = True   # no __pycache__ inside the model repository
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import lecture_gpt as L   # noqa: E402
import export             # noqa: E402

# ---- attnd's hyper-parameters (the lecture's are 384/6/6/256, dropout 0.2,
# batch 64, 5000 steps of lr 3e-4: hours on a GPU-less machine) ----
HP = dict(n_embd=64, n_head=4, n_layer=4, block_size=64, dropout=0.0)
batch_size = 32
max_iters = 2000
eval_interval = 500
learning_rate = 1e-3
eval_iters = 20
seed = 1337


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(HERE, "shakespeare"))
    ap.add_argument("--data", default=os.path.join(
        HERE, "..", "..", "shared", "data", "tinyshakespeare", "input.txt"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--iters", type=int, default=max_iters)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(seed)

    with open(args.data, 'r', encoding='utf-8') as f:
        text = f.read()
    chars = sorted(list(set(text)))
    stoi = {ch: i for i, ch in enumerate(chars)}
    L.configure(vocab_size=len(chars), **HP)
    block_size = HP["block_size"]

    # Train and test splits, as the lecture: first 90% train, rest val.
    data = torch.tensor([stoi[c] for c in text], dtype=torch.long)
    n = int(0.9 * len(data))
    train_data, val_data = data[:n], data[n:]

    def get_batch(split):
        d = train_data if split == 'train' else val_data
        ix = torch.randint(len(d) - block_size, (batch_size,))
        x = torch.stack([d[i:i + block_size] for i in ix])
        y = torch.stack([d[i + 1:i + block_size + 1] for i in ix])
        return x, y

    model = L.GPTLanguageModel()

    @torch.no_grad()
    def estimate_loss():
        out = {}
        model.eval()
        for split in ['train', 'val']:
            losses = torch.zeros(eval_iters)
            for k in range(eval_iters):
                X, Y = get_batch(split)
                _, loss = model(X, Y)
                losses[k] = loss.item()
            out[split] = losses.mean().item()
        model.train()
        return out

    print(sum(p.numel() for p in model.parameters()) / 1e6, 'M parameters')
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate)
    t0 = time.time()
    losses = None
    for it in range(args.iters):
        if it % eval_interval == 0 or it == args.iters - 1:
            losses = estimate_loss()
            print(f"step {it}: train loss {losses['train']:.4f}, "
                  f"val loss {losses['val']:.4f} ({time.time() - t0:.0f} s)",
                  flush=True)
        if it % 100 == 0:
            print(f"step {it} ({time.time() - t0:.0f} s)", flush=True)
        xb, yb = get_batch('train')
        _, loss = model(xb, yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    secs = time.time() - t0

    model.eval()
    training = dict(data="tinyshakespeare/input.txt", seed=seed,
                    steps=args.iters, batch_size=batch_size,
                    learning_rate=learning_rate, optimizer="AdamW",
                    eval_iters=eval_iters, train_loss=round(losses['train'], 4),
                    val_loss=round(losses['val'], 4), seconds=round(secs),
                    threads=args.threads, torch=torch.__version__)
    export.export(model, chars, args.out, training=training)
    print("wrote", args.out, json.dumps(training))


if __name__ == "__main__":
    main()
