#!/usr/bin/python3
"""Export a state_dict of the lecture's GPTLanguageModel to attnd's model
repository layout (Triton's: one folder per model):

    DIR/<name>/config.json        hyper-parameters and the vocabulary
    DIR/<name>/model.safetensors  every parameter, float32, under the
                                  lecture's state_dict names
                                  (blocks.0.sa.heads.0.key.weight, ...)

safetensors is an 8-byte little-endian header length N, N bytes of JSON
({name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__":
{...}}, padded with spaces to a multiple of 8), then the raw little-endian
data; written here with the standard library, no safetensors package.  The
`tril` buffers of the lecture's Head are not parameters and not exported.

    /usr/bin/python3 models/export.py CHECKPOINT.pt VOCAB.txt DIR/<name>
re-exports a torch.save()d state_dict (the vocabulary is the characters of
VOCAB.txt, sorted, as the lecture builds it).
"""

import json
import os
import struct
import sys

sys.dont_write_bytecode = True
import torch


def state_tensors(model_or_sd):
    sd = model_or_sd.state_dict() if hasattr(model_or_sd, "state_dict") \
        else model_or_sd
    return {k: v for k, v in sd.items() if not k.endswith(".tril")}


def write_safetensors(path, tensors, metadata=None):
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    for name, t in tensors.items():
        t = t.detach().to(torch.float32).contiguous().cpu()
        raw = t.numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape),
                        "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    """The reader PyTorch's side of the tests uses: name -> float32 tensor."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, d in header.items():
        if name == "__metadata__":
            continue
        b, e = d["data_offsets"]
        t = torch.frombuffer(bytearray(data[b:e]), dtype=torch.float32)
        out[name] = t.reshape(d["shape"]).clone()
    return out


def config_of(model_cfg, chars, training=None):
    cfg = {"architecture": "GPTLanguageModel",
           "vocab_size": len(chars),
           "block_size": model_cfg["block_size"],
           "n_embd": model_cfg["n_embd"],
           "n_head": model_cfg["n_head"],
           "n_layer": model_cfg["n_layer"],
           "vocab": "".join(chars)}
    if training:
        cfg["training"] = training
    return cfg


def export(model, chars, out_dir, training=None):
    """Write out_dir/config.json and out_dir/model.safetensors."""
    import lecture_gpt as L
    os.makedirs(out_dir, exist_ok=True)
    cfg = config_of(dict(block_size=L.block_size, n_embd=L.n_embd,
                         n_head=L.n_head, n_layer=L.n_layer), chars, training)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1, ensure_ascii=False)
        f.write("\n")
    write_safetensors(os.path.join(out_dir, "model.safetensors"),
                      state_tensors(model), {"format": "pt"})


def load(model_dir):
    """Build the lecture's model from an exported folder (PyTorch side)."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import lecture_gpt as L
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    L.configure(vocab_size=cfg["vocab_size"], block_size=cfg["block_size"],
                n_embd=cfg["n_embd"], n_head=cfg["n_head"],
                n_layer=cfg["n_layer"], dropout=0.0)
    m = L.GPTLanguageModel()
    missing, unexpected = m.load_state_dict(
        read_safetensors(os.path.join(model_dir, "model.safetensors")),
        strict=False)
    assert not unexpected and all(k.endswith(".tril") for k in missing), \
        (missing, unexpected)
    return m.eval(), cfg


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import lecture_gpt as L
    sd = torch.load(sys.argv[1], map_location="cpu")
    chars = sorted(set(open(sys.argv[2], encoding="utf-8").read()))
    C = sd["token_embedding_table.weight"].shape[1]
    nl = 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("blocks."))
    nh = 1 + max(int(k.split(".")[4]) for k in sd if ".sa.heads." in k)
    L.configure(vocab_size=len(chars), n_embd=C, n_head=nh, n_layer=nl,
                block_size=sd["position_embedding_table.weight"].shape[0])
    export(sd, chars, sys.argv[3])
