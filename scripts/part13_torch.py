#!/usr/bin/env python3
"""The spec's Part 13 in PyTorch, timed, for a side-by-side ratio with `latte absorb` (run one
after the other on the same machine). Vanilla: MHA with W_K = W_UK W_DKV, W_V = W_UV W_DKV. Reduced:
the spec's MyMHA(D, D, r, r, H) with the reduced matrices (H copies of W_DKV as its K/V weights).
Each path runs --warmup untimed forwards, then --repeats timed ones; it prints their median and
fastest, as bench_inference reports latte's (counters median_ms and min_ms). With --latte
bench_inference.json it ends with a latte/PyTorch table of the float32 medians on the same device.
Not used by any build or test.

    OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 scripts/part13_torch.py [--device cpu|cuda] [--repeats 5] [--threads 2]
                                                                    [--latte bench_inference.json]
"""
import argparse, json, os, re, statistics, time
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
    ap.add_argument("--device", default="cpu"); ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2, help="untimed forwards before the timed ones")
    ap.add_argument("--threads", type=int, default=0,
                    help="torch.set_num_threads (default: LATTE_NUM_THREADS, else every usable core, as latte does)")
    ap.add_argument("--latte", metavar="JSON", help="bench_inference --benchmark_format=json output: a ratio table")
    a = ap.parse_args()
    if a.repeats < 1 or a.warmup < 0: ap.error("--repeats must be at least 1 and --warmup at least 0")
    # Debian's torch 1.13 starts with one thread; latte uses LATTE_NUM_THREADS or every core.
    torch.set_num_threads(a.threads or int(os.environ.get("LATTE_NUM_THREADS", 0)) or len(os.sched_getaffinity(0)))
    dev = torch.device(a.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    D, H, r, B, L1, L2 = 1024, 32, 50, 32, 100, 300
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {dev}")
    if dev.type == "cuda":
        print(f"TF32: torch.backends.cuda.matmul.allow_tf32={torch.backends.cuda.matmul.allow_tf32} "
              f"(latte's default: off)")
    medians = {}
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
                for _ in range(a.warmup): m(x, y)
                seconds = []
                for _ in range(a.repeats):
                    sync(); t = time.perf_counter(); out = m(x, y); sync()
                    seconds.append(time.perf_counter() - t)
                times[name] = (statistics.median(seconds), min(seconds), out)
            rel = ((times["vanilla"][2] - times["reduced"][2]) ** 2).mean() ** .5 / (times["vanilla"][2] ** 2).mean() ** .5
        medians[dtype] = {k: v[0] for k, v in times.items()}
        print(f"{str(dtype):14s} vanilla {times['vanilla'][0] * 1e3:.3f} ms (min {times['vanilla'][1] * 1e3:.3f})  "
              f"reduced {times['reduced'][0] * 1e3:.3f} ms (min {times['reduced'][1] * 1e3:.3f})  "
              f"relative error {rel.item():.2e}  [median of {a.repeats} after {a.warmup} warm-up]", flush=True)
    if a.latte: ratio_table(a.latte, dev, medians[torch.float32])

def ratio_table(path, dev, torch_s):
    """latte's Part 13 medians (bench_inference JSON, float32, this device) against PyTorch's."""
    with open(path) as f:
        doc = json.load(f)
    want = 1 if dev.type == "cuda" else 0
    latte = {}
    for b in doc.get("benchmarks", []):
        m = re.match(r"part13_forward/(vanilla|absorbed_precomputed|absorbed_factored)(/cuda)?(/|$)", b.get("name", ""))
        if m and int(bool(m.group(2))) == want and "median_ms" in b and not b.get("error_occurred"):
            latte[("vanilla", "absorbed_precomputed", "absorbed_factored").index(m.group(1))] = b["median_ms"]
    if not latte:
        print(f"part13_torch.py: {path} has no BM_part13_forward runs on {dev.type}"); return
    print(f"\n{'Part 13, float32':<34} {'latte ms':>9} {'torch ms':>9} {'latte/torch':>11}")
    for path_id, label, torch_name in ((0, "vanilla", "vanilla"), (1, "absorbed precomputed vs reduced", "reduced"),
                                       (2, "absorbed factored vs reduced", "reduced")):
        if path_id in latte:
            t = torch_s[torch_name] * 1e3
            print(f"{label:<34} {latte[path_id]:>9.3f} {t:>9.3f} {latte[path_id] / t:>11.2f}")
    print("medians on both sides; ratio < 1: latte is faster.")
    print("The absorbed rows compare different work: PyTorch's reduced path is the spec's MyMHA with H copies of\n"
          "W_DKV (about 90 GFLOP at the default sizes), latte's absorbed paths attend one shared latent (28.1 GFLOP\n"
          "precomputed, 21.2 factored). Only the vanilla row (57.6 GFLOP on both sides) compares frameworks.")

if __name__ == "__main__":
    main()
