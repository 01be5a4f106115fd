#!/usr/bin/env python3
"""PyTorch baseline for bench_train: the spec's MyMHA / MyGQA and an MLA module, one training
step (forward, MSE vs a fixed random target, backward, Adam lr 1e-3, zero_grad), median ms over
>= 10 steps after 3 warm-up steps. Not used by any build or test.

    /usr/bin/python3 scripts/bench_torch.py [--configs small,medium] [--device cpu] [--threads 2]
"""
import argparse, statistics, time
import torch
import torch.nn as nn

CONFIGS = {"small": (8, 128, 256, 8, 32, 2, 64), "medium": (16, 256, 512, 8, 64, 2, 128),
           "large": (16, 1024, 1024, 16, 64, 4, 256)}

class MyGQA(nn.Module):  # the spec's Part 7 class; G = H gives MyMHA
    def __init__(s, D1, D2, Dqk, Dv, H, G):
        super().__init__(); s.H, s.G, s.Dqk, s.Dv = H, G, Dqk, Dv
        s.W_Q = nn.Linear(D1, H * Dqk, bias=False); s.W_K = nn.Linear(D2, G * Dqk, bias=False)
        s.W_V = nn.Linear(D2, G * Dv, bias=False); s.W_O = nn.Linear(H * Dv, D1, bias=False)
    def attend(s, Q, K, V, B, L1, L2):
        n = s.H // s.G
        Q = Q.reshape(B, L1, n, s.G, s.Dqk).permute(0, 2, 3, 1, 4)
        K = K.reshape(B, L2, 1, s.G, s.Dqk).permute(0, 2, 3, 1, 4)
        V = V.reshape(B, L2, 1, s.G, s.Dv).permute(0, 2, 3, 1, 4)
        A = torch.softmax(Q @ K.transpose(-2, -1) / s.Dqk ** 0.5, dim=-1)
        return s.W_O((A @ V).permute(0, 3, 1, 2, 4).reshape(B, L1, -1))
    def forward(s, x, y):
        return s.attend(s.W_Q(x), s.W_K(y), s.W_V(y), x.shape[0], x.shape[1], y.shape[1])

class MyMLA(MyGQA):
    def __init__(s, D, H, d, r):
        super().__init__(D, D, d, d, H, H)
        del s.W_K, s.W_V
        s.W_DKV = nn.Linear(D, r, bias=False); s.W_UK = nn.Linear(r, H * d, bias=False); s.W_UV = nn.Linear(r, H * d, bias=False)
    def forward(s, x, y):
        c = s.W_DKV(y)
        return s.attend(s.W_Q(x), s.W_UK(c), s.W_UV(c), x.shape[0], x.shape[1], y.shape[1])

def step_ms(model, x, y, target, steps, sync):
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    times = []
    for i in range(3 + steps):
        t = time.perf_counter()
        loss = nn.functional.mse_loss(model(x, y), target)
        loss.backward(); opt.step(); opt.zero_grad()
        sync()
        if i >= 3: times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--configs", default="small,medium"); ap.add_argument("--device", default="cpu")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: leave as is)")
    a = ap.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {dev}")
    for name in a.configs.split(","):
        B, L, D, H, d, G, r = CONFIGS[name]
        torch.manual_seed(0)
        x, y, target = (torch.randn(B, L, D, device=dev) for _ in range(3))
        models = {"mha": MyGQA(D, D, d, d, H, H), "gqa": MyGQA(D, D, d, d, H, G), "mla": MyMLA(D, H, d, r)}
        for kind, m in models.items():
            if dev.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            ms = step_ms(m.to(dev), x, y, target, a.steps, sync)
            peak = f", peak {torch.cuda.max_memory_allocated() / 2**20:.1f} MiB" if dev.type == "cuda" else ""
            print(f"train_{kind}_{name}: {ms:.2f} ms/step{peak}", flush=True)

if __name__ == "__main__":
    main()
