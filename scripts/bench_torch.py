#!/usr/bin/env python3
"""PyTorch baseline for bench_train: the spec's MyMHA / MyGQA and an MLA module, one training
step (forward, MSE vs a fixed random target, backward, Adam lr 1e-3, zero_grad), median ms over
>= 10 steps after 3 warm-up steps, at bench_train's configs. Not used by any build or test.

Config "lm" times a decoder LM step instead, the architecture of latte's nn::DecoderLM: embedding
(vocab 512, D 256) -> 2 pre-norm blocks (RMSNorm, causal self-attention, residual, RMSNorm, SwiGLU
MLP 4D no bias, residual) -> RMSNorm -> untied head; cross-entropy vs random targets, AdamW lr 1e-3
(weight decay 0.1 on matrices, 0 on the embedding and norms, as nn::param_groups), zero_grad.
Its attention (--models): mha, gqa (RoPE on q, k), mla (NoPE), mla_rope (DeepSeek-V2 decoupled
RoPE, d_R 16); runs are named train_<model>_lm, e.g. train_mla_rope_lm.

    /usr/bin/python3 scripts/bench_torch.py [--configs small,medium,long] [--models mha,gqa,mla]
                                            [--device cpu] [--threads N] [--steps 10]
    # side by side with latte, in one sitting:
    ./build/bin/bench_train --benchmark_format=json > latte.json
    /usr/bin/python3 scripts/bench_torch.py --latte latte.json

With --latte it runs the configs and models found in bench_train's JSON (a "custom" config takes
its sizes from the JSON's context) and prints a latte/PyTorch table: latte ms and the attention
path latte took (flash, chunked or plain, from the JSON's labels), then torch ms and the ratio for
each --attention mode: eager (the spec's classes, scores materialised) and, on torch >= 2.0,
sdpa (torch.nn.functional.scaled_dot_product_attention, GQA through enable_gqa). On a GPU it
prints PyTorch's TF32 settings beside latte's (the JSON's cuda_tf32).
On the CPU it prints the OpenBLAS core PyTorch runs on (and latte's, from the JSON): give both
the same one (OPENBLAS_CORETYPE=...), or the ratio compares kernels, not frameworks.
"""
import argparse, ctypes, json, os, re, statistics, sys, time

# Threads that spin while waiting for work make a busy or oversubscribed machine 10x slower; set
# OMP_WAIT_POLICY=ACTIVE yourself to measure the spinning default.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
try:
    import torch
    import torch.nn as nn
except ImportError:
    sys.exit("bench_torch.py needs PyTorch, which this Python does not have (on Debian 12: "
             "apt-get install python3-torch, then run it with /usr/bin/python3). Nothing else needs it.")

# name: (B, L, D, H, d, G, r), as in experiments/bench/bench_train.cpp
CONFIGS = {"small": (8, 128, 256, 8, 32, 2, 64), "medium": (16, 256, 512, 8, 64, 2, 128),
           "long": (2, 2048, 512, 8, 64, 2, 128), "large": (16, 1024, 1024, 16, 64, 4, 256),
           "lm": (8, 256, 256, 8, 32, 2, 128)}
LM_CONFIGS = {"lm"}  # decoder LM configs; the rest time one attention module
LM_VOCAB, LM_LAYERS, LM_ROPE_DIM, LM_WEIGHT_DECAY = 512, 2, 16, 0.1  # MLP hidden 4D, RMSNorm eps 1e-6
MODELS = ("mha", "gqa", "mla")           # attention configs
LM_MODELS = ("mha", "gqa", "mla", "mla_rope")  # LM configs
ATTENTION = {"mode": "eager"}  # eager: scores materialised; sdpa: F.scaled_dot_product_attention

def sdpa_attend(Q, K, V, B, L1, L2, H, G, Dk, Dv, causal):
    """softmax(QK^T / sqrt(Dk) [+ causal]) V through SDPA. Query head h = i*G + g reads K/V head g
    (h mod G); SDPA's GQA maps head h' to K/V head h' // (H/G), so the query heads go in as
    h' = g*(H/G) + i and come back in the spec's order."""
    F, n = nn.functional, H // G
    q = Q.reshape(B, L1, n, G, Dk).permute(0, 3, 2, 1, 4).reshape(B, H, L1, Dk)
    k = K.reshape(B, L2, G, Dk).transpose(1, 2)
    v = V.reshape(B, L2, G, Dv).transpose(1, 2)
    extra = {}
    if causal and L1 == L2: extra["is_causal"] = True
    elif causal:  # bottom-right aligned, as latte and the eager path (SDPA's is_causal is top-left)
        extra["attn_mask"] = ~torch.ones(L1, L2, dtype=torch.bool, device=Q.device).triu(L2 - L1 + 1)
    if n > 1:
        try:
            o = F.scaled_dot_product_attention(q, k, v, enable_gqa=True, **extra)
        except TypeError:  # torch < 2.5: no enable_gqa; the same mapping by copying K/V heads
            o = F.scaled_dot_product_attention(q, k.repeat_interleave(n, 1), v.repeat_interleave(n, 1), **extra)
    else:
        o = F.scaled_dot_product_attention(q, k, v, **extra)
    return o.reshape(B, G, n, L1, Dv).permute(0, 3, 2, 1, 4).reshape(B, L1, -1)

class MyGQA(nn.Module):  # the spec's Part 7 class; G = H gives MyMHA
    def __init__(s, D1, D2, Dqk, Dv, H, G):
        super().__init__(); s.H, s.G, s.Dqk, s.Dv = H, G, Dqk, Dv
        s.W_Q = nn.Linear(D1, H * Dqk, bias=False); s.W_K = nn.Linear(D2, G * Dqk, bias=False)
        s.W_V = nn.Linear(D2, G * Dv, bias=False); s.W_O = nn.Linear(H * Dv, D1, bias=False)
    def attend(s, Q, K, V, B, L1, L2, causal=False, Dk=None):
        n = s.H // s.G
        Dk = Dk or s.Dqk  # the q/k width per head (mla_rope: d + d_R)
        if ATTENTION["mode"] == "sdpa":
            return s.W_O(sdpa_attend(Q, K, V, B, L1, L2, s.H, s.G, Dk, s.Dv, causal))
        Q = Q.reshape(B, L1, n, s.G, Dk).permute(0, 2, 3, 1, 4)
        K = K.reshape(B, L2, 1, s.G, Dk).permute(0, 2, 3, 1, 4)
        V = V.reshape(B, L2, 1, s.G, s.Dv).permute(0, 2, 3, 1, 4)
        S = Q @ K.transpose(-2, -1) / Dk ** 0.5
        if causal:  # queries are the last L1 of the L2 positions
            S = S.masked_fill(torch.ones(L1, L2, dtype=torch.bool, device=S.device).triu(L2 - L1 + 1), float("-inf"))
        A = torch.softmax(S, dim=-1)
        return s.W_O((A @ V).permute(0, 3, 1, 2, 4).reshape(B, L1, -1))
    def forward(s, x, y, causal=False):
        return s.attend(s.W_Q(x), s.W_K(y), s.W_V(y), x.shape[0], x.shape[1], y.shape[1], causal)

class MyMLA(MyGQA):
    def __init__(s, D, H, d, r):
        super().__init__(D, D, d, d, H, H)
        del s.W_K, s.W_V
        s.W_DKV = nn.Linear(D, r, bias=False); s.W_UK = nn.Linear(r, H * d, bias=False); s.W_UV = nn.Linear(r, H * d, bias=False)
    def forward(s, x, y, causal=False):
        c = s.W_DKV(y)
        return s.attend(s.W_Q(x), s.W_UK(c), s.W_UV(c), x.shape[0], x.shape[1], y.shape[1], causal)

def make(kind, D, H, d, G, r):
    if kind == "mha": return MyGQA(D, D, d, d, H, H)
    if kind == "gqa": return MyGQA(D, D, d, d, H, G)
    return MyMLA(D, H, d, r)

# --- the decoder LM (config "lm"), as latte's nn::DecoderLM ---

def rope(x, base=10000.0):
    """ops/rope: x (B, L, H, d), rotate_half pairing (i with i + d/2), position l turns pair i by
    l * base^(-2i/d)."""
    L, d = x.shape[1], x.shape[-1]
    angle = torch.arange(L, dtype=torch.float64)[:, None] * base ** (-2.0 * torch.arange(d // 2, dtype=torch.float64) / d)
    c, s = (f(angle).to(x.dtype).to(x.device)[:, None, :] for f in (torch.cos, torch.sin))  # (L, 1, d/2)
    x1, x2 = x[..., :d // 2], x[..., d // 2:]
    return torch.cat([x1 * c - x2 * s, x2 * c + x1 * s], -1)

class RopeGQA(MyGQA):  # nn::MultiHeadAttention / GroupedQueryAttention with RoPE on q and k
    def forward(s, x, y, causal=False):
        B, L1, L2 = x.shape[0], x.shape[1], y.shape[1]
        q = rope(s.W_Q(x).reshape(B, L1, s.H, s.Dqk)).reshape(B, L1, -1)  # self-attention: L1 = L2
        k = rope(s.W_K(y).reshape(B, L2, s.G, s.Dqk)).reshape(B, L2, -1)
        return s.attend(q, k, s.W_V(y), B, L1, L2, causal)

class MyMLARoPE(MyMLA):  # nn::MultiHeadLatentAttentionRoPE (DeepSeek-V2 decoupled RoPE)
    def __init__(s, D, H, d, r, dR):
        super().__init__(D, H, d, r); s.dR = dR
        s.W_QR = nn.Linear(D, H * dR, bias=False); s.W_KR = nn.Linear(D, dR, bias=False)
    def forward(s, x, y, causal=False):
        B, L1, L2, H, d, dR = x.shape[0], x.shape[1], y.shape[1], s.H, s.Dqk, s.dR
        c = s.W_DKV(y)
        q = torch.cat([s.W_Q(x).reshape(B, L1, H, d), rope(s.W_QR(x).reshape(B, L1, H, dR))], -1)
        kr = rope(s.W_KR(y).reshape(B, L2, 1, dR)).expand(B, L2, H, dR)  # one rotary key, shared by the heads
        k = torch.cat([s.W_UK(c).reshape(B, L2, H, d), kr], -1)
        # score = (q.k + q_R.k_R) / sqrt(d + d_R)
        return s.attend(q.reshape(B, L1, -1), k.reshape(B, L2, -1), s.W_UV(c), B, L1, L2, causal, Dk=d + dR)

class RMSNorm(nn.Module):  # torch 1.13 has none: x / sqrt(mean(x^2) + eps) * weight
    def __init__(s, D, eps=1e-6):
        super().__init__(); s.eps = eps; s.weight = nn.Parameter(torch.ones(D))
    def forward(s, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + s.eps) * s.weight

class MLP(nn.Module):  # SwiGLU, no bias: down(silu(gate x) * up x)
    def __init__(s, D, hidden):
        super().__init__()
        s.W_gate = nn.Linear(D, hidden, bias=False); s.W_up = nn.Linear(D, hidden, bias=False)
        s.W_down = nn.Linear(hidden, D, bias=False)
    def forward(s, x):
        return s.W_down(nn.functional.silu(s.W_gate(x)) * s.W_up(x))

class Block(nn.Module):  # pre-norm: x + attn(norm1 x, causal); + mlp(norm2 x)
    def __init__(s, D, attn, hidden):
        super().__init__(); s.norm1, s.attn, s.norm2, s.mlp = RMSNorm(D), attn, RMSNorm(D), MLP(D, hidden)
    def forward(s, x):
        h = s.norm1(x)
        x = x + s.attn(h, h, causal=True)
        return x + s.mlp(s.norm2(x))

class DecoderLM(nn.Module):
    def __init__(s, kind, vocab, layers, D, H, d, G, r, dR):
        super().__init__()
        def attn():
            if kind == "mha": return RopeGQA(D, D, d, d, H, H)
            if kind == "gqa": return RopeGQA(D, D, d, d, H, G)
            if kind == "mla": return MyMLA(D, H, d, r)
            return MyMLARoPE(D, H, d, r, dR)
        s.embed = nn.Embedding(vocab, D)
        s.layers = nn.ModuleList(Block(D, attn(), 4 * D) for _ in range(layers))
        s.norm = RMSNorm(D); s.head = nn.Linear(D, vocab, bias=False)
    def forward(s, ids):
        h = s.embed(ids)
        for block in s.layers: h = block(h)
        return s.head(s.norm(h))

def param_groups(model, weight_decay):
    """nn::param_groups: decay on >= 2-D parameters, none on embeddings, norms and < 2-D ones."""
    decay, no_decay = [], []
    for mod in model.modules():
        for p in mod.parameters(recurse=False):
            skip = isinstance(mod, (nn.Embedding, RMSNorm)) or p.dim() < 2
            (no_decay if skip else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]

def step_ms(loss_fn, opt, steps, sync):
    times = []
    for i in range(3 + steps):
        t = time.perf_counter()
        loss = loss_fn()
        loss.backward(); opt.step(); opt.zero_grad()
        sync()
        if i >= 3: times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)

def openblas_core():
    """The core OpenBLAS picked in this process (torch loaded it), via openblas_get_corename."""
    torch.zeros(2, 2) @ torch.zeros(2, 2)  # make sure the BLAS is loaded
    try:
        with open("/proc/self/maps") as f:
            paths = sorted({l.split()[-1] for l in f if "blas" in l.lower() and l.split()[-1].startswith("/")})
    except OSError:
        return None
    for path in paths:
        try:
            fn = ctypes.CDLL(path).openblas_get_corename
        except (OSError, AttributeError):
            continue
        fn.restype = ctypes.c_char_p
        return f"{fn().decode()} ({path})"
    return None

def read_latte(path):
    """bench_train's JSON -> ({(config, model, cuda): ms}, {config: sizes}, context, {key: attention path})."""
    with open(path) as f:
        doc = json.load(f)
    ctx = doc.get("context", {})
    sizes = {}
    if "custom_config" in ctx:
        kv = dict(p.split("=") for p in ctx["custom_config"].split())
        sizes["custom"] = tuple(int(kv[k]) for k in ("B", "L", "D", "H", "d", "G", "r"))
    scale = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}
    iterations, medians, paths = {}, {}, {}
    for b in doc.get("benchmarks", []):
        m = re.fullmatch(r"train_(mha|gqa|mla_rope|mla)_(\w+?)(_cuda)?", b.get("run_name", b["name"]).split("/")[0])
        if not m or b.get("error_occurred"): continue
        key = (m.group(2), m.group(1), bool(m.group(3)))
        if b.get("label", "").startswith("attention "): paths[key] = b["label"].split()[1]
        # The median step (bench_train's median_ms counter), as PyTorch's side reports; older
        # JSON without it gives Google Benchmark's mean.
        ms = b["median_ms"] if "median_ms" in b else b["real_time"] * scale[b.get("time_unit", "ns")]
        if b.get("run_type") == "aggregate":
            if b.get("aggregate_name") == "median": medians[key] = ms
        else:
            iterations.setdefault(key, []).append(ms)
    runs = {k: statistics.median(v) for k, v in iterations.items()}
    runs.update(medians)  # with --benchmark_repetitions, the median of the repetitions
    return runs, sizes, ctx, paths

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--configs", help="comma separated: " + ", ".join(CONFIGS) +
                    " (default small,medium,long on cpu, small,medium,large on cuda; with --latte, its configs)")
    ap.add_argument("--models", help="comma separated: " + ", ".join(LM_MODELS) +
                    " (default mha,gqa,mla; on lm configs also mla_rope; mla_rope runs on lm configs only)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=0,
                    help="torch.set_num_threads (default: LATTE_NUM_THREADS, else every usable core, as latte does)")
    ap.add_argument("--latte", metavar="JSON", help="bench_train --benchmark_format=json output: print a ratio table")
    ap.add_argument("--attention", choices=("eager", "sdpa", "both"),
                    help="PyTorch's attention: eager (scores materialised), sdpa, or both (default: both on cuda, "
                         "eager on cpu)")
    a = ap.parse_args()
    # Debian's torch 1.13 starts with one thread; latte uses LATTE_NUM_THREADS or every core.
    torch.set_num_threads(a.threads or int(os.environ.get("LATTE_NUM_THREADS", 0)) or len(os.sched_getaffinity(0)))
    dev = torch.device(a.device)
    cuda = dev.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    models = a.models.split(",") if a.models else list(LM_MODELS)
    for m in models:
        if m not in LM_MODELS: sys.exit(f"bench_torch.py: unknown model '{m}' (expected {', '.join(LM_MODELS)})")

    modes = {"both": ["eager", "sdpa"], None: ["eager", "sdpa"] if cuda else ["eager"]}.get(a.attention, [a.attention])
    if "sdpa" in modes and not hasattr(nn.functional, "scaled_dot_product_attention"):
        if a.attention: sys.exit(f"bench_torch.py: torch {torch.__version__} has no scaled_dot_product_attention")
        modes = ["eager"]
    latte, configs, latte_paths, ctx = {}, dict(CONFIGS), {}, {}
    if a.latte:
        runs, sizes, ctx, paths = read_latte(a.latte)
        latte_paths = {(c, m): p for (c, m, on_cuda), p in paths.items() if on_cuda == cuda}
        configs.update(sizes)
        latte = {(c, m): ms for (c, m, on_cuda), ms in runs.items() if on_cuda == cuda}
        if not latte:
            sys.exit(f"bench_torch.py: {a.latte} has no bench_train runs on {'cuda' if cuda else 'cpu'}")
        names = a.configs.split(",") if a.configs else list(dict.fromkeys(c for c, _ in latte))
        models = [m for m in models if any(k[1] == m for k in latte)]
    else:
        names = (a.configs or ("small,medium,large" if cuda else "small,medium,long")).split(",")
    for name in names:
        if name not in configs: sys.exit(f"bench_torch.py: unknown config '{name}' (expected {', '.join(configs)})")

    print(f"torch {torch.__version__}, threads {torch.get_num_threads()} (OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}), "
          f"device {dev}")
    if not cuda:
        core = openblas_core()
        print(f"torch's OpenBLAS core: {core or 'unknown (not OpenBLAS?)'}")
        if a.latte:
            print(f"latte's OpenBLAS core: {ctx.get('openblas_core', 'unknown')} (from {a.latte})")
            if core and ctx.get("openblas_core") and not core.startswith(ctx["openblas_core"] + " "):
                print("warning: different OpenBLAS cores; set OPENBLAS_CORETYPE for both runs")
    if cuda:
        mm = torch.backends.cuda.matmul.allow_tf32
        print(f"TF32: torch.backends.cuda.matmul.allow_tf32={mm}, float32_matmul_precision="
              f"{torch.get_float32_matmul_precision()}, cudnn.allow_tf32={torch.backends.cudnn.allow_tf32}"
              + (f"; latte cuda_tf32={ctx.get('cuda_tf32', 'unknown')} (from {a.latte})" if a.latte else ""))
        if a.latte and ctx.get("cuda_tf32") in ("on", "off") and (ctx["cuda_tf32"] == "on") != mm:
            print("warning: TF32 differs between latte and PyTorch: the float32 matmuls are not the same work")
    print("attention: " + ", ".join({"eager": "eager = the spec's classes, scores materialised",
                                     "sdpa": "sdpa = F.scaled_dot_product_attention"}[m] for m in modes))
    torch_ms = {}
    for name in names:
        B, L, D, H, d, G, r = configs[name]
        lm = name in LM_CONFIGS
        torch.manual_seed(0)
        if lm:
            ids, targets = (torch.randint(0, LM_VOCAB, (B, L), device=dev) for _ in range(2))
        else:
            x, y, target = (torch.randn(B, L, D, device=dev) for _ in range(3))
        for kind, mode in ((k, md) for k in models for md in modes):
            if a.latte and (name, kind) not in latte: continue
            if not lm and kind not in MODELS:  # mla_rope: LM configs only
                if a.models and mode == modes[0]: print(f"train_{kind}_{name}: skipped ({kind} runs on the lm config only)")
                continue
            ATTENTION["mode"] = mode
            torch.manual_seed(1)  # the same weights in every mode
            if cuda: torch.cuda.reset_peak_memory_stats()
            if lm:
                m = DecoderLM(kind, LM_VOCAB, LM_LAYERS, D, H, d, G, r, LM_ROPE_DIM).to(dev)
                opt = torch.optim.AdamW(param_groups(m, LM_WEIGHT_DECAY), lr=1e-3)
                loss_fn = lambda: nn.functional.cross_entropy(m(ids).reshape(-1, LM_VOCAB), targets.reshape(-1))
            else:
                m = make(kind, D, H, d, G, r).to(dev)
                opt = torch.optim.Adam(m.parameters(), lr=1e-3)
                loss_fn = lambda: nn.functional.mse_loss(m(x, y), target)
            ms = step_ms(loss_fn, opt, a.steps, sync)
            torch_ms[(name, kind, mode)] = ms
            peak = f", peak {torch.cuda.max_memory_allocated() / 2**20:.1f} MiB" if cuda else ""
            print(f"train_{kind}_{name}{'_cuda' if cuda else ''} [attention {mode}]: {ms:.2f} ms/step{peak}", flush=True)
            del m, opt, loss_fn
            if cuda: torch.cuda.empty_cache()

    if a.latte:
        head = f"{'config':<8} {'model':<8} {'latte ms':>9} {'latte attention':>15}"
        for mode in modes: head += f" {mode + ' ms':>9} {'latte/' + mode:>11}"
        print("\n" + head)
        for name, kind in dict.fromkeys((n, k) for n, k, _ in torch_ms):
            l = latte[(name, kind)]
            row = f"{name:<8} {kind:<8} {l:>9.2f} {latte_paths.get((name, kind), '-'):>15}"
            for mode in modes:
                t = torch_ms.get((name, kind, mode))
                row += f" {t:>9.2f} {l / t:>11.2f}" if t else f" {'-':>9} {'-':>11}"
            print(row)
        print("ratio < 1: latte is faster. PyTorch's times vary by 25% or more between runs.")

if __name__ == "__main__":
    main()
