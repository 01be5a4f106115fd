#!/usr/bin/env python3
"""The spec's Part 13 in PyTorch, timed, for a side-by-side ratio with `latte absorb` (run one
after the other on the same machine). Vanilla: MHA with W_K = W_UK W_DKV, W_V = W_UV W_DKV. Reduced:
the spec's MyMHA(D, D, r, r, H) with the reduced matrices (H copies of W_DKV as its K/V weights).
Not used by any build or test.

    OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 scripts/part13_torch.py [--device cpu|cuda] [--repeats 2] [--threads 2]
"""
import argparse, time
import torch
import torch.nn as nn

class MyMHA(nn.Module):  # the spec's Part 5 class
    def __init__(s, D1, D2, Dqk, Dv, H):
        super().__init__(); s.H, s.Dqk, s.Dv = H, Dqk, Dv
        s.W_Q = nn.Linear(D1, H * Dqk, bias=False); s.W_K = nn.Linear(D2, H * Dqk, bias=False)
        s.W_V = nn.Linear(D2, H * Dv, bias=False); s.W_O = nn.Linear(H * Dv, D1, bias=False)
    def forward(s, x, y):
        B, L1, L2 = x.shape[0], x.shape[1], y.shape[1]
        Q = s.W_Q(x).reshape(B, L1, s.H, s.Dqk).transpose(1, 2)
        K = s.W_K(y).reshape(B, L2, s.H, s.Dqk).transpose(1, 2)
        V = s.W_V(y).reshape(B, L2, s.H, s.Dv).transpose(1, 2)
        A = torch.softmax(Q @ K.transpose(-2, -1) / s.Dqk ** 0.5, dim=-1)
        return s.W_O((A @ V).transpose(1, 2).reshape(B, L1, -1))

def reduced_matrices(W_DKV, W_UK, W_UV, W_Q, W_O, H):  # the spec's answer
    r, D = W_DKV.shape
    W_Q_hat = (W_UK.reshape(H, -1, r).transpose(-2, -1) @ W_Q.reshape(H, -1, D)).reshape(-1, D) * (r / (D / H)) ** .5
    W_O_hat = (W_O.reshape(D, H, -1).transpose(0, 1) @ W_UV.reshape(H, -1, r)).transpose(0, 1).reshape(D, -1)
    return W_DKV, W_DKV, W_Q_hat, W_O_hat

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu"); ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: leave as is)")
    a = ap.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    D, H, r, B, L1, L2 = 1024, 32, 50, 32, 100, 300
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {dev}")
    for dtype in (torch.float32, torch.float64):
        torch.manual_seed(0)
        W_DKV, W_UK, W_UV = torch.randn(r, D, dtype=dtype), torch.randn(D, r, dtype=dtype), torch.randn(D, r, dtype=dtype)
        W_Q, W_O = torch.randn(D, D, dtype=dtype), torch.randn(D, D, dtype=dtype)
        x, y = torch.randn(B, L1, D, dtype=dtype, device=dev), torch.randn(B, L2, D, dtype=dtype, device=dev)
        van = MyMHA(D, D, D // H, D // H, H).to(dtype)
        red = MyMHA(D, D, r, r, H).to(dtype)
        k, v, q, o = reduced_matrices(W_DKV, W_UK, W_UV, W_Q, W_O, H)
        with torch.no_grad():
            van.W_K.weight.copy_(W_UK @ W_DKV); van.W_V.weight.copy_(W_UV @ W_DKV)
            van.W_Q.weight.copy_(W_Q); van.W_O.weight.copy_(W_O)
            red.W_K.weight.copy_(torch.cat([k] * H)); red.W_V.weight.copy_(torch.cat([v] * H))
            red.W_Q.weight.copy_(q); red.W_O.weight.copy_(o)
            van.to(dev); red.to(dev)
            times = {}
            for name, m in (("vanilla", van), ("reduced", red)):
                best = 1e9
                for _ in range(a.repeats):
                    sync(); t = time.perf_counter(); out = m(x, y); sync()
                    best = min(best, time.perf_counter() - t)
                times[name] = (best, out)
            rel = ((times["vanilla"][1] - times["reduced"][1]) ** 2).mean() ** .5 / (times["vanilla"][1] ** 2).mean() ** .5
        print(f"{str(dtype):14s} vanilla {times['vanilla'][0]:.3f}s  reduced {times['reduced'][0]:.3f}s  "
              f"relative error {rel.item():.2e}", flush=True)

if __name__ == "__main__":
    main()
