#!/usr/bin/env python3
"""Checks that latte's safetensors files and PyTorch's spec classes interoperate both ways:
a GQA trained by latte loads into the spec's MyGQA with load_state_dict (strict); weights
changed and written from Python load into `latte forward`, whose output matches PyTorch's.
Reads and writes safetensors with json + struct (no safetensors package needed).

    /usr/bin/python3 scripts/check_torch_interop.py build/bin/latte
"""
import json, os, struct, subprocess, sys, tempfile
import torch

sys.path.insert(0, os.path.dirname(__file__))
from bench_torch import MyGQA  # the spec's Part 7 class

DTYPES = {"F32": torch.float32, "F64": torch.float64}

def read(path):
    blob = open(path, "rb").read()
    n = struct.unpack("<Q", blob[:8])[0]
    header, data = json.loads(blob[8:8 + n]), blob[8 + n:]
    meta = header.pop("__metadata__", {})
    tensors = {k: torch.frombuffer(bytearray(data[v["data_offsets"][0]:v["data_offsets"][1]]), dtype=DTYPES[v["dtype"]]).reshape(v["shape"])
               for k, v in header.items()}
    return tensors, meta

def write(path, tensors, meta):
    header, offset, blobs = {"__metadata__": meta}, 0, []
    for k, t in tensors.items():
        raw = t.detach().contiguous().numpy().tobytes()
        header[k] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        blobs.append(raw)
    h = json.dumps(header).encode()
    open(path, "wb").write(struct.pack("<Q", len(h)) + h + b"".join(blobs))

def main():
    latte = sys.argv[1] if len(sys.argv) > 1 else "build/bin/latte"
    tmp = tempfile.mkdtemp()
    p = lambda name: os.path.join(tmp, name)
    subprocess.run([latte, "train", "--model", "gqa", "--D", "16", "--H", "4", "--d", "4", "--G", "2", "--steps", "50",
                    "--save", p("gqa.safetensors"), "--out", p("runs")], check=True, stdout=subprocess.DEVNULL)
    state, meta = read(p("gqa.safetensors"))
    model = MyGQA(16, 16, 4, 4, 4, 2)
    model.load_state_dict(state)  # strict: every name and shape must match
    with torch.no_grad():
        for w in model.parameters():
            w.mul_(1.5)
    write(p("gqa_py.safetensors"), model.state_dict(), meta)
    torch.manual_seed(0)
    x, y = torch.randn(2, 3, 16), torch.randn(2, 5, 16)
    write(p("io.safetensors"), {"x": x, "y": y}, {})
    subprocess.run([latte, "forward", "--weights", p("gqa_py.safetensors"), "--inputs", p("io.safetensors"),
                    "--out", p("out.safetensors")], check=True, stdout=subprocess.DEVNULL)
    out, _ = read(p("out.safetensors"))
    diff = (out["out"] - model(x, y)).abs().max().item()
    print(f"latte -> MyGQA.load_state_dict: ok; Python weights -> latte forward: max abs diff {diff:.2e}")
    sys.exit(0 if diff < 1e-5 else 1)

if __name__ == "__main__":
    main()
