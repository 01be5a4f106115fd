#!/usr/bin/env python3
"""The KV-budget study (issue 19): accuracy against KV-cache bytes per token for MHA, GQA and MLA
(with and without DeepSeek-V2's latent norm), on associative recall and on multi-query associative
recall (MQAR), each architecture at its best learning rate, 5 seeds per reported cell.

    python3 scripts/kv_study.py                   # ./build/bin/latte, runs/kv_study, docs/kv_study
    python3 scripts/kv_study.py --jobs 2 --latte build/bin/latte
    python3 scripts/kv_study.py --list            # the plan, nothing run

Every run is `latte lm ... --out OUT --name NAME`; a run whose OUT/NAME/summary.json exists is
skipped, so an interrupted study continues where it stopped (--fresh reruns everything). Runs go
--jobs at a time, each on one thread (LATTE_NUM_THREADS=1), with a progress line per finished run.

Plan, per block (recall, mqar), in two phases:
  1. the learning-rate sweep: every architecture at every rate of the block, SWEEP_SEEDS seeds;
  2. the best rate per architecture (highest mean final held-out accuracy, then fewest mean steps
     to 99%, a run that never reached it counting as the run's length), topped up to SEEDS seeds.
The long-context cell (MQAR at L = 256) runs at the rate the mqar block chose.
Then docs/kv_study/{runs.csv, tables.md, *.svg} are written (standard library only).
"""
import argparse
import csv
import json
import math
import os
import re
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed

SEEDS = [0, 1, 2, 3, 4]
SWEEP_SEEDS = [0, 1]

# The recall block: the old study's model and task (2 layers, D 128, H 8 heads of 16, vocab 32,
# L 17: 8 pairs and one query), 1200 steps, held-out accuracy every 100 steps on 1024 answers.
RECALL = {
    "task": ["--task", "recall", "--layers", "2", "--D", "128", "--H", "8", "--vocab", "32", "--batch", "32",
             "--steps", "1200", "--eval-every", "100", "--eval-batches", "32"],
    "lrs": ["0.0003", "0.001", "0.003"],
    "models": [
        ("mha", "MHA", ["--attention", "mha"]),
        ("gqa_g1", "GQA G=1", ["--attention", "gqa", "--G", "1"]),
        ("mla_rope_r16", "MLA + RoPE r=16 d_R=8", ["--attention", "mla_rope", "--r", "16", "--d_R", "8"]),
        ("mla_rope_r16_nonorm", "MLA + RoPE r=16 d_R=8, no latent norm",
         ["--attention", "mla_rope", "--r", "16", "--d_R", "8", "--latent-norm", "off"]),
    ],
}

# The MQAR block: 2 layers, D 64, H 8 heads of 8 (MHA caches 2*8*8 = 128 numbers per layer), vocab
# 40 (19 keys, 20 values); N pairs then Q = min(4, N) queries, 2000 steps. Budgets are MLA + RoPE's r + d_R
# against MHA's 128: 1/32 (2+2), 1/16 (4+4), 1/8 (8+8), 1/4 (24+8); GQA G=1 (16) and G=2 (32)
# match 1/8 and 1/4.
MQAR_MODEL = ["--task", "mqar", "--layers", "2", "--D", "64", "--H", "8", "--vocab", "40", "--batch", "32",
              "--eval-every", "100"]
MQAR = {
    "pairs": [2, 4, 8],
    "sweep_pairs": 8,
    "steps": "2000",
    "lrs": ["0.0005", "0.001", "0.002"],
    "models": [
        ("mha", "MHA", ["--attention", "mha"]),
        ("gqa_g2", "GQA G=2", ["--attention", "gqa", "--G", "2"]),
        ("gqa_g1", "GQA G=1", ["--attention", "gqa", "--G", "1"]),
        ("mla_rope_r24", "MLA + RoPE r=24 d_R=8", ["--attention", "mla_rope", "--r", "24", "--d_R", "8"]),
        ("mla_rope_r8", "MLA + RoPE r=8 d_R=8", ["--attention", "mla_rope", "--r", "8", "--d_R", "8"]),
        ("mla_rope_r8_nonorm", "MLA + RoPE r=8 d_R=8, no latent norm",
         ["--attention", "mla_rope", "--r", "8", "--d_R", "8", "--latent-norm", "off"]),
        ("mla_rope_r4", "MLA + RoPE r=4 d_R=4", ["--attention", "mla_rope", "--r", "4", "--d_R", "4"]),
        ("mla_rope_r2", "MLA + RoPE r=2 d_R=2", ["--attention", "mla_rope", "--r", "2", "--d_R", "2"]),
    ],
}
# The long-context cell: MQAR with 8 pairs at the start and 4 queries at the end of L = 256 (232
# filler tokens between them), batch 8, at equal budgets (1/8), each at its N = 8 rate.
LONG = {
    "task": ["--task", "mqar", "--pairs", "8", "--queries", "4", "--L", "256", "--layers", "2", "--D", "64", "--H",
             "8", "--vocab", "40", "--batch", "8", "--eval-every", "100", "--eval-batches", "32", "--steps", "2000"],
    "models": ["gqa_g1", "mla_rope_r8"],
}


# Truncated-rank conversion (the RoPE-free part of issue 19's item 3): a RoPE-free GQA (G = 2, so
# [W_K; W_V] has rank 2*G*d = 64) trained on recall as above, converted by `latte convert --rank R`
# (a truncated SVD of [W_K; W_V] per layer), evaluated at once and after a 200-step fine-tune.
CONVERT = {
    "train": RECALL["task"] + ["--attention", "gqa", "--G", "2", "--rope", "off", "--lr", "0.001"],
    "eval": ["--task", "recall", "--batch", "32", "--eval-batches", "32"],
    "finetune": ["--steps", "200", "--eval-every", "100", "--lr", "0.001"],
    "ranks": [64, 32, 16, 8],
}


# The recipe check: the recall block's MHA and MLA + RoPE r=16 at lr 0.001, 5 seeds, with the cosine
# decay to 0.1 lr at step 1200 instead of the constant rate: why latte lm's default is constant.
RECIPE = {"models": ["mha", "mla_rope_r16"], "lr": "0.001", "flags": ["--schedule", "cosine"]}


def recipe_job(model, seed):
    key, _, flags = next(m for m in RECALL["models"] if m[0] == model)
    name = f"recipe_cosine_{key}_s{seed}"
    return Job(name, RECALL["task"] + flags + RECIPE["flags"] + ["--lr", RECIPE["lr"], "--seed", str(seed)], "recipe",
               key, RECIPE["lr"], seed)


class Missing(Exception):
    """A table row or curve whose runs are not all done (--report-only before the study ends)."""


class Job:
    """One run of `latte lm` (args), or a chain of commands (cmds: [(argv, log suffix)]) whose last
    `latte lm` writes OUT/NAME/summary.json."""

    def __init__(self, name, args, block, model, lr, seed, pairs=None, cmds=None):
        self.name, self.args, self.block, self.model, self.lr, self.seed, self.pairs = (
            name, args, block, model, lr, seed, pairs)
        self.cmds = cmds


# Partial RoPE (issue 19 item 3, as MHA2MLA): the recall block's trained GQA G=1 models (RoPE on q
# and k, d = 16) converted by `latte convert --rope-dim 8 --rank R`: the 4 fastest-turning pairs of
# each head keep RoPE (the shared rotary key), the other 12 dims become position-free and are
# compressed with V to rank R; evaluated at once and after a 200-step fine-tune.
PARTIAL = {"rope_dim": 8, "ranks": [24, 16, 8]}


def partial_job(latte, out, lr, seed):
    models = os.path.join(out, "models")
    gqa = os.path.join(models, recall_job("gqa_g1", lr, seed).name + ".safetensors")
    cmds = []
    for r in PARTIAL["ranks"]:
        mla = os.path.join(models, f"partial_r{r}_s{seed}.safetensors")
        common = CONVERT["eval"] + ["--seed", str(seed), "--load", mla, "--out", out]
        cmds.append(([latte, "convert", "--in", gqa, "--out", mla, "--rank", str(r), "--rope-dim",
                      str(PARTIAL["rope_dim"])], f"convert r{r}"))
        cmds.append(([latte, "lm"] + common + ["--steps", "0", "--name", convert_name(seed, r, "eval", "partial")],
                     f"eval r{r}"))
        cmds.append(([latte, "lm"] + common + CONVERT["finetune"] + ["--name", convert_name(seed, r, "ft", "partial")],
                     f"fine-tune r{r}"))
    return Job(convert_name(seed, PARTIAL["ranks"][-1], "ft", "partial"), None, "partial", "gqa_g1", lr, seed,
               cmds=cmds)


def convert_name(seed, rank, stage, kind="convert"):
    return f"{kind}_r{rank}_{stage}_s{seed}"


def convert_job(latte, out, seed):
    """Train, then per rank: convert, evaluate, fine-tune; done when the last fine-tune is."""
    models = os.path.join(out, "models")
    gqa = os.path.join(models, f"gqa_nope_s{seed}.safetensors")
    cmds = [([latte, "lm"] + CONVERT["train"] + ["--seed", str(seed), "--out", out, "--name",
                                                 f"convert_gqa_nope_s{seed}", "--save", gqa], "train")]
    for r in CONVERT["ranks"]:
        mla = os.path.join(models, f"mla_r{r}_s{seed}.safetensors")
        common = CONVERT["eval"] + ["--seed", str(seed), "--load", mla, "--out", out]
        cmds.append(([latte, "convert", "--in", gqa, "--out", mla, "--rank", str(r)], f"convert r{r}"))
        cmds.append(([latte, "lm"] + common + ["--steps", "0", "--name", convert_name(seed, r, "eval")], f"eval r{r}"))
        cmds.append(([latte, "lm"] + common + CONVERT["finetune"] + ["--name", convert_name(seed, r, "ft")],
                     f"fine-tune r{r}"))
    last = convert_name(seed, CONVERT["ranks"][-1], "ft")
    return Job(last, None, "convert", "gqa_nope", "0.001", seed, cmds=cmds)


def lr_tag(lr):
    return lr.replace("0.", "").replace(".", "")


def recall_job(model, lr, seed, out="runs/kv_study"):
    key, _, flags = next(m for m in RECALL["models"] if m[0] == model)
    name = f"recall_{key}_lr{lr_tag(lr)}_s{seed}"
    save = ["--save", os.path.join(out, "models", name + ".safetensors")]  # for the partial-RoPE conversion
    return Job(name, RECALL["task"] + flags + ["--lr", lr, "--seed", str(seed)] + save, "recall", key, lr, seed)


def mqar_job(model, lr, seed, pairs):
    key, _, flags = next(m for m in MQAR["models"] if m[0] == model)
    name = f"mqar_n{pairs}_{key}_lr{lr_tag(lr)}_s{seed}"
    # Q = min(4, N) queries; enough held-out sequences for 1024 answers.
    queries = min(4, pairs)
    task = ["--pairs", str(pairs), "--queries", str(queries), "--eval-batches", str(-(-1024 // (32 * queries)))]
    args = MQAR_MODEL + task + ["--steps", MQAR["steps"]] + flags + ["--lr", lr, "--seed", str(seed)]
    return Job(name, args, "mqar", key, lr, seed, pairs)


def long_job(model, lr, seed):
    key, _, flags = next(m for m in MQAR["models"] if m[0] == model)
    name = f"long_{key}_lr{lr_tag(lr)}_s{seed}"
    return Job(name, LONG["task"] + flags + ["--lr", lr, "--seed", str(seed)], "long", key, lr, seed, 8)


def summary_of(out, job):
    path = os.path.join(out, job.name, "summary.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def run_jobs(jobs, args, label):
    todo = [j for j in jobs if args.fresh or summary_of(args.out, j) is None]
    print(f"kv_study: {label}: {len(jobs)} runs, {len(jobs) - len(todo)} already done, {len(todo)} to run "
          f"({args.jobs} at a time)", flush=True)
    if args.list:
        if not args.report_only:
            for j in todo:
                print("  " + j.name)
        return
    if not todo:
        return
    env = dict(os.environ, LATTE_NUM_THREADS="1")
    os.makedirs(os.path.join(args.out, "logs"), exist_ok=True)
    os.makedirs(os.path.join(args.out, "models"), exist_ok=True)
    start = time.time()

    def one(job):
        cmds = job.cmds or [([args.latte, "lm"] + job.args + ["--out", args.out, "--name", job.name], "run")]
        log = os.path.join(args.out, "logs", job.name + ".log")
        rc = 0
        with open(log, "w") as f:
            for cmd, _ in cmds:
                if cmd[1] == "lm":  # a job reruns only when unfinished (or --fresh): replace what it left
                    cmd = cmd + ["--overwrite"]
                f.write("$ " + " ".join(shlex.quote(c) for c in cmd) + "\n")
                f.flush()
                rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env).returncode
                if rc != 0:
                    break
        return job, rc, log

    done = 0
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(one, j) for j in todo]
        for fut in as_completed(futures):
            job, rc, log = fut.result()
            done += 1
            elapsed = time.time() - start
            eta = elapsed / done * (len(todo) - done)
            if rc != 0:
                print(f"kv_study: {job.name} failed (exit {rc}); see {log}", file=sys.stderr, flush=True)
                pool.shutdown(wait=True, cancel_futures=True)  # the runs under way end; no new one starts
                sys.exit(1)
            s = summary_of(args.out, job)
            reached = s["steps_to_99"] if s["steps_to_99"] is not None else "-"
            print(f"[{done}/{len(todo)}] {job.name}: held-out {s['held_out_accuracy']:.3f}, 99% at {reached} "
                  f"({elapsed:.0f}s elapsed, ETA {eta:.0f}s)", flush=True)


# ---- statistics -------------------------------------------------------------------------------

# Two-sided 95% Student t quantiles by degrees of freedom.
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}


def mean_ci(values):
    n = len(values)
    m = sum(values) / n
    if n < 2:
        return m, float("nan")
    sd = math.sqrt(sum((v - m) ** 2 for v in values) / (n - 1))
    return m, T95.get(n - 1, 1.96) * sd / math.sqrt(n)


def steps_cost(s):
    """Steps to 99%, with a run that never reached it counted as its length plus one."""
    return s["steps_to_99"] if s["steps_to_99"] is not None else s["steps"] + 1


def best_lr(out, jobs_by_lr):
    """The rate with the highest mean final accuracy, then the fewest mean steps to 99%."""
    scored = []
    for lr, jobs in jobs_by_lr.items():
        ss = [summary_of(out, j) for j in jobs]
        if any(s is None for s in ss):
            return None
        acc = sum(s["held_out_accuracy"] for s in ss) / len(ss)
        cost = sum(steps_cost(s) for s in ss) / len(ss)
        scored.append((-round(acc, 6), cost, float(lr), lr))
    return min(scored)[3]


# ---- plots ------------------------------------------------------------------------------------

COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]


def svg_chart(path, title, xlabel, ylabel, series, log_x=False, y_range=(0.0, 1.0)):
    """series: [(label, [(x, y)], [(x, low, high)] or None, dashed[, color index])] -> a line chart with a legend."""
    W, H, left, right, top, bottom = 800, 440, 64, 290, 40, 52
    xs = [x for entry in series for x, _ in entry[1]]
    if not xs:  # nothing done yet (--report-only)
        return
    x0, x1 = min(xs), max(xs)
    if log_x:
        x0, x1 = math.log2(x0), math.log2(x1)
    else:  # steps: from 0, ticks at a round step (1, 2 or 5 times a power of ten), about 6 of them
        x0 = 0
        raw = x1 / 6
        unit = 10 ** math.floor(math.log10(raw))
        tick = next(m * unit for m in (1, 2, 5, 10) if m * unit >= raw)
    if x1 == x0:
        x1 = x0 + 1
    y0, y1 = y_range

    def px(x):
        v = math.log2(x) if log_x else x
        return left + (W - left - right) * (v - x0) / (x1 - x0)

    def py(y):
        return top + (H - top - bottom) * (1 - (min(max(y, y0), y1) - y0) / (y1 - y0))

    out = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{W}' height='{H}' font-family='sans-serif' "
           f"font-size='12'>", "<rect width='100%' height='100%' fill='white'/>",
           f"<text x='{(W - right + left) / 2}' y='22' text-anchor='middle' font-size='14'>{title}</text>"]
    for i in range(6):
        y = y0 + (y1 - y0) * i / 5
        out.append(f"<line x1='{left}' x2='{W - right}' y1='{py(y):.1f}' y2='{py(y):.1f}' stroke='#ddd'/>")
        out.append(f"<text x='{left - 6}' y='{py(y) + 4:.1f}' text-anchor='end'>{y:.1f}</text>")
    ticks = sorted(set(xs)) if log_x else [tick * i for i in range(int(x1 // tick) + 1)]
    for x in ticks:
        out.append(f"<line x1='{px(x):.1f}' x2='{px(x):.1f}' y1='{top}' y2='{H - bottom}' stroke='#eee'/>")
        out.append(f"<text x='{px(x):.1f}' y='{H - bottom + 16}' text-anchor='middle'>{x:g}</text>")
    out.append(f"<text x='{(W - right + left) / 2}' y='{H - 12}' text-anchor='middle'>{xlabel}</text>")
    out.append(f"<text x='16' y='{(H - bottom + top) / 2}' transform='rotate(-90 16 {(H - bottom + top) / 2})' "
               f"text-anchor='middle'>{ylabel}</text>")
    for i, (label, pts, band, dashed, *color_index) in enumerate(series):
        color = COLORS[(color_index[0] if color_index else i) % len(COLORS)]
        if band:
            poly = [(px(x), py(hi)) for x, _, hi in band] + [(px(x), py(lo)) for x, lo, _ in reversed(band)]
            out.append("<polygon fill='" + color + "' fill-opacity='0.12' stroke='none' points='" +
                       " ".join(f"{a:.1f},{b:.1f}" for a, b in poly) + "'/>")
        dash = " stroke-dasharray='6 4'" if dashed else ""
        out.append(f"<polyline fill='none' stroke='{color}' stroke-width='2'{dash} points='" +
                   " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts) + "'/>")
        for x, y in pts:
            out.append(f"<circle cx='{px(x):.1f}' cy='{py(y):.1f}' r='2.5' fill='{color}'/>")
        ly = top + 16 * i + 8
        out.append(f"<line x1='{W - right + 12}' x2='{W - right + 36}' y1='{ly}' y2='{ly}' stroke='{color}' "
                   f"stroke-width='2'{dash}/>")
        out.append(f"<text x='{W - right + 42}' y='{ly + 4}'>{label}</text>")
    out.append("</svg>")
    with open(path + ".tmp", "w") as f:
        f.write("\n".join(out) + "\n")
    os.replace(path + ".tmp", path)


def eval_curve(out, job):
    path = os.path.join(out, job.name, "eval.csv")
    if not os.path.exists(path):
        sys.exit(f"kv_study: {path} is missing (a run from an older latte?); rerun it with --fresh")
    with open(path) as f:
        return [(int(r["step"]), float(r["held_out_accuracy"])) for r in csv.DictReader(f)]


def mean_curve(out, jobs):
    if not all(summary_of(out, j) for j in jobs):
        raise Missing()
    curves = [dict(eval_curve(out, j)) for j in jobs]
    steps = sorted(set.intersection(*[set(c) for c in curves]))
    pts, band = [], []
    for s in steps:
        m, ci = mean_ci([c[s] for c in curves])
        ci = 0 if math.isnan(ci) else ci
        pts.append((s, m))
        band.append((s, m - ci, m + ci))
    return pts, band


# ---- the study ---------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--latte", default="./build/bin/latte")
    ap.add_argument("--out", default="runs/kv_study")
    ap.add_argument("--docs", default="docs/kv_study")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--fresh", action="store_true", help="rerun runs that have a summary.json")
    ap.add_argument("--list", action="store_true", help="print the runs to do, run nothing")
    ap.add_argument("--report-only", action="store_true",
                    help="run nothing; write the report from the runs done so far (rows not done are left out)")
    ap.add_argument("--blocks", default="recall,convert,mqar,long,recipe", help="which blocks to run (comma-separated)")
    args = ap.parse_args()
    if args.report_only:
        args.list = True  # plan without running, then report
    if args.jobs < 1:
        ap.error("--jobs must be at least 1")
    if not os.access(args.latte, os.X_OK):
        ap.error(f"no latte binary at '{args.latte}' (build it, or pass --latte)")
    blocks = set(args.blocks.split(","))
    unknown = blocks - {"recall", "convert", "mqar", "long", "recipe"}
    if unknown:
        ap.error(f"unknown blocks {sorted(unknown)} (recall, convert, mqar, long, recipe)")
    started = time.time()
    chosen = {}  # (block, model) -> lr

    if "recall" in blocks:
        sweep = [recall_job(m[0], lr, s, args.out) for m in RECALL["models"] for lr in RECALL["lrs"]
                 for s in SWEEP_SEEDS]
        run_jobs(sweep, args, "recall, learning-rate sweep")
        top_up = []
        for m in RECALL["models"]:
            lr = best_lr(args.out, {lr: [recall_job(m[0], lr, s) for s in SWEEP_SEEDS] for lr in RECALL["lrs"]})
            if lr is None:
                continue
            chosen[("recall", m[0])] = lr
            top_up += [recall_job(m[0], lr, s, args.out) for s in SEEDS if s not in SWEEP_SEEDS]
        run_jobs(top_up, args, "recall, best rates topped up to 5 seeds")
        if ("recall", "gqa_g1") in chosen:
            run_jobs([partial_job(args.latte, args.out, chosen[("recall", "gqa_g1")], s) for s in SEEDS], args,
                     "partial RoPE: convert the GQA G=1 models, evaluate, fine-tune")

    if "convert" in blocks:
        run_jobs([convert_job(args.latte, args.out, s) for s in SEEDS], args, "convert: train, convert, fine-tune")

    if "mqar" in blocks or "long" in blocks:
        n = MQAR["sweep_pairs"]
        sweep = [mqar_job(m[0], lr, s, n) for m in MQAR["models"] for lr in MQAR["lrs"] for s in SWEEP_SEEDS]
        run_jobs(sweep, args, f"mqar, learning-rate sweep at N = {n}")
        for m in MQAR["models"]:
            lr = best_lr(args.out, {lr: [mqar_job(m[0], lr, s, n) for s in SWEEP_SEEDS] for lr in MQAR["lrs"]})
            if lr is not None:
                chosen[("mqar", m[0])] = lr
        if "mqar" in blocks:
            main_jobs = [mqar_job(m[0], chosen[("mqar", m[0])], s, p) for p in MQAR["pairs"] for m in MQAR["models"]
                         for s in SEEDS if ("mqar", m[0]) in chosen]
            run_jobs(main_jobs, args, "mqar, every N at each model's best rate, 5 seeds")
        if "long" in blocks:
            long_jobs = [long_job(m, chosen[("mqar", m)], s) for m in LONG["models"] for s in SEEDS
                         if ("mqar", m) in chosen]
            run_jobs(long_jobs, args, "mqar at L = 256")
    if "recipe" in blocks:
        run_jobs([recipe_job(m, s) for m in RECIPE["models"] for s in SEEDS], args,
                 "recipe check: cosine decay instead of the constant rate")
    if args.list and not args.report_only:
        return
    if not args.report_only:
        print(f"kv_study: all runs done in {time.time() - started:.0f}s this invocation", flush=True)
    write_report(args, chosen, blocks)


def write_report(args, chosen, blocks):
    os.makedirs(args.docs, exist_ok=True)
    rows = []
    for name in sorted(os.listdir(args.out)):
        p = os.path.join(args.out, name, "summary.json")
        if os.path.exists(p):
            with open(p) as f:
                rows.append(json.load(f))
    keys = ["name", "task", "attention", "latent_norm", "rope", "layers", "D", "H", "G", "d", "r", "d_R", "vocab", "L",
            "pairs", "queries", "batch", "lr", "seed", "steps", "held_out_accuracy", "held_out_correct",
            "held_out_total", "held_out_loss", "steps_to_99", "kv_bytes_per_token", "parameters", "seconds"]
    with open(os.path.join(args.docs, "runs.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(keys)
        for r in rows:
            w.writerow(["" if r.get(k) is None else r.get(k) for k in keys])
    total_seconds = sum(r.get("seconds") or 0 for r in rows)

    md = ["# The KV-budget study: tables", "",
          "Written by `python3 scripts/kv_study.py`; every run's numbers are in `runs.csv` beside this file.",
          f"Run time summed over {len(rows)} runs: {total_seconds / 60:.1f} minutes of one thread each.", ""]

    def cell(jobs):
        ss = [summary_of(args.out, j) for j in jobs]
        if not all(ss):
            raise Missing()
        accs = [s["held_out_accuracy"] for s in ss]
        m, ci = mean_ci(accs)
        reached = [s["steps_to_99"] for s in ss if s["steps_to_99"] is not None]
        steps = ", ".join(str(s["steps_to_99"]) if s["steps_to_99"] is not None else "never" for s in ss)
        return m, ci, len(reached), len(ss), steps, ss[0]["kv_bytes_per_token"]

    if "recall" in blocks:
        md += ["## Recall (8 pairs, one query; 2 layers, D 128, H 8, d 16; 1200 steps)", "",
               "Held-out accuracy on 1024 answers at step 1200, mean ± 95% t-interval over 5 seeds, at each model's "
               "best learning rate; steps to 99% per seed (evaluated every 100 steps).", "",
               "| model | KV bytes/token | best lr | accuracy | reached 99% | steps to 99% (seeds 0-4) |",
               "|---|---:|---:|---:|---:|---|"]
        sweep_md = ["", "### The learning-rate sweep (2 seeds each: mean, then each seed's accuracy)", "",
                    "| model | " + " | ".join(f"lr {lr}" for lr in RECALL["lrs"]) + " |",
                    "|---|" + "---:|" * len(RECALL["lrs"])]
        series = []
        for key, label, _ in RECALL["models"]:
            lr = chosen.get(("recall", key))
            if lr is None:
                continue
            jobs = [recall_job(key, lr, s) for s in SEEDS]
            sw = []
            for l in RECALL["lrs"]:
                sweep_runs = [summary_of(args.out, recall_job(key, l, s)) for s in SWEEP_SEEDS]
                if not all(sweep_runs):
                    sw.append("—")
                    continue
                accs = [r["held_out_accuracy"] for r in sweep_runs]
                reached = sum(r["steps_to_99"] is not None for r in sweep_runs)
                sw.append(f"{sum(accs) / len(accs):.3f} ({', '.join(f'{a:.3f}' for a in accs)}; {reached}/{len(accs)} "
                          "at 99%)")
            sweep_md.append(f"| {label} | " + " | ".join(sw) + " |")
            try:
                m, ci, k, n, steps, kv = cell(jobs)
                pts, band = mean_curve(args.out, jobs)
            except Missing:
                continue
            md.append(f"| {label} | {kv} | {lr} | {m:.3f} ± {ci:.3f} | {k}/{n} | {steps} |")
            series.append((f"{label[:40]} ({lr})", pts, band, "nonorm" in key))
        md += sweep_md + [""]
        svg_chart(os.path.join(args.docs, "recall_curves.svg"), "Recall: held-out accuracy (mean, 95% band, 5 seeds)",
                  "step", "held-out accuracy", series)

    if "mqar" in blocks:
        md += ["## MQAR (N pairs, min(4, N) queries; 2 layers, D 64, H 8, d 8; vocab 40; 2000 steps)", "",
               "Held-out accuracy on 1024 answers, mean ± 95% t-interval over 5 seeds, at "
               "each model's best learning rate from the sweep at N = 8 (2 seeds per rate). MHA caches 1024 "
               "bytes/token (2 layers x 128 numbers x 4 bytes).", "",
               "| model | KV bytes/token | of MHA | best lr | " + " | ".join(f"N={p}" for p in MQAR["pairs"]) + " |",
               "|---|---:|---:|---:|" + "---:|" * len(MQAR["pairs"])]
        by_pairs = {p: [] for p in MQAR["pairs"]}
        for key, label, _ in MQAR["models"]:
            lr = chosen.get(("mqar", key))
            if lr is None:
                continue
            cells = []
            kv = None
            for p in MQAR["pairs"]:
                try:
                    m, ci, k, n, _, kv = cell([mqar_job(key, lr, s, p) for s in SEEDS])
                except Missing:
                    cells.append("—")
                    continue
                cells.append(f"{m:.3f} ± {ci:.3f} ({k}/{n})")
                by_pairs[p].append((key, label, kv, m, ci))
            if kv is not None:
                md.append(f"| {label} | {kv} | 1/{1024 // kv} | {lr} | " + " | ".join(cells) + " |")
        md.append("")
        # Accuracy against KV bytes per token, one curve per N: MLA + RoPE (with the norm) solid, GQA dashed.
        series = []
        for n, p in enumerate(MQAR["pairs"]):  # one color per N
            for family, dashed in (("mla_rope", False), ("gqa", True)):
                pts = sorted((kv, m) for key, _, kv, m, _ in by_pairs[p]
                             if key.startswith(family) and "nonorm" not in key)
                if pts:
                    series.append((f"N={p} {'GQA' if dashed else 'MLA + RoPE'}", pts, None, dashed, n))
        curves = []
        for key, label, _ in MQAR["models"]:
            if ("mqar", key) in chosen:
                try:
                    pts, band = mean_curve(args.out, [mqar_job(key, chosen[("mqar", key)], s, MQAR["sweep_pairs"])
                                                      for s in SEEDS])
                except Missing:
                    continue
                curves.append((label[:40], pts, band, "nonorm" in key))
        svg_chart(os.path.join(args.docs, "mqar_curves.svg"),
                  f"MQAR, N = {MQAR['sweep_pairs']}: held-out accuracy (mean, 95% band, 5 seeds)", "step",
                  "held-out accuracy", curves)
        svg_chart(os.path.join(args.docs, "mqar_accuracy_vs_kv.svg"),
                  "MQAR: held-out accuracy against KV bytes per token (mean of 5 seeds)", "KV-cache bytes per token",
                  "held-out accuracy", series, log_x=True)
        # The equal-budget comparison with intervals.
        md += ["### GQA against MLA + RoPE at equal KV bytes per token", "",
               "Difference in mean held-out accuracy (MLA + RoPE minus GQA) with a 95% Welch interval over 5 + 5 seeds.",
               "", "| budget | N | GQA | MLA + RoPE | difference |", "|---|---:|---:|---:|---:|"]
        for gqa, mla in (("gqa_g1", "mla_rope_r8"), ("gqa_g2", "mla_rope_r24")):
            if ("mqar", gqa) not in chosen or ("mqar", mla) not in chosen:
                continue
            for p in MQAR["pairs"]:
                sa = [summary_of(args.out, mqar_job(gqa, chosen[("mqar", gqa)], s, p)) for s in SEEDS]
                sb = [summary_of(args.out, mqar_job(mla, chosen[("mqar", mla)], s, p)) for s in SEEDS]
                if not all(sa) or not all(sb):
                    continue
                a, b = [s["held_out_accuracy"] for s in sa], [s["held_out_accuracy"] for s in sb]
                kv = sa[0]["kv_bytes_per_token"]
                diff, ci = welch(b, a)
                md.append(f"| {kv} B (1/{1024 // kv}) | {p} | {mean_ci(a)[0]:.3f} | {mean_ci(b)[0]:.3f} | "
                          f"{diff:+.3f} ± {ci:.3f} |")
        md.append("")

    if "convert" in blocks:
        md += ["## Truncated-rank conversion of a trained RoPE-free GQA (recall; G = 2, exact at r = 64)", "",
               "Held-out accuracy (1024 answers), mean ± 95% t-interval over 5 seeds: the trained GQA, the MLA right "
               "after `latte convert --rank R`, and after a 200-step fine-tune (lr 0.001, 20 warm-up steps).", "",
               "| model | KV bytes/token | after conversion | after 200 steps | answers right, converted / trained (per seed) |",
               "|---|---:|---:|---:|---|"]
        base = [summary_of(args.out, Job(f"convert_gqa_nope_s{s}", None, "", "", "", s)) for s in SEEDS]
        md += conversion_rows(args.out, "GQA G=2, no RoPE (trained)", base, CONVERT["ranks"], "convert",
                              lambda r: f"MLA r={r}") + [""]

    if "recall" in blocks and ("recall", "gqa_g1") in chosen:
        lr = chosen[("recall", "gqa_g1")]
        md += ["## Partial-RoPE conversion of the trained GQA G=1 (recall)", "",
               f"The recall block's GQA G=1 models (RoPE, d = 16, lr {lr}) converted by `latte convert --rope-dim "
               f"{PARTIAL['rope_dim']} --rank R`: the {PARTIAL['rope_dim'] // 2} fastest-turning pairs keep RoPE as the "
               "shared rotary key, the rest become position-free and are compressed with V by a truncated SVD. "
               "Held-out accuracy (1024 answers), mean ± 95% t-interval over 5 seeds.", "",
               "| model | KV bytes/token | after conversion | after 200 steps | answers right, converted / trained (per seed) |",
               "|---|---:|---:|---:|---|"]
        base = [summary_of(args.out, recall_job("gqa_g1", lr, s)) for s in SEEDS]
        md += conversion_rows(args.out, "GQA G=1 (trained)", base, PARTIAL["ranks"], "partial",
                              lambda r: f"MLA + RoPE r={r} d_R={PARTIAL['rope_dim']}") + [""]

    if "recipe" in blocks:
        md += ["## The training recipe: constant rate against cosine decay (recall, lr 0.001)", "",
               "Both with AdamW β2 0.95, 100 warm-up steps and clipping at 1.0; cosine decays to 0.1 × lr at step "
               "1200. Held-out accuracy at step 1200, mean ± 95% t-interval over 5 seeds.", "",
               "| model | constant (the default) | reached 99% | cosine | reached 99% |", "|---|---:|---:|---:|---:|"]
        for key in RECIPE["models"]:
            label = next(m[1] for m in RECALL["models"] if m[0] == key)
            const = [summary_of(args.out, recall_job(key, RECIPE["lr"], s)) for s in SEEDS]
            cos = [summary_of(args.out, recipe_job(key, s)) for s in SEEDS]
            if not all(const) or not all(cos):
                continue
            row = [label]
            for ss in (const, cos):
                m, ci = mean_ci([x["held_out_accuracy"] for x in ss])
                row += [f"{m:.3f} ± {ci:.3f}", f"{sum(x['steps_to_99'] is not None for x in ss)}/{len(ss)}"]
            md.append("| " + " | ".join(row) + " |")
        md.append("")

    if "long" in blocks:
        md += ["## Long context: MQAR at L = 256 (8 pairs, 232 filler tokens, 4 queries; batch 8, 2000 steps)", "",
               "| model | KV bytes/token | lr | accuracy | reached 99% | steps to 99% |", "|---|---:|---:|---:|---:|---|"]
        for key in LONG["models"]:
            lr = chosen.get(("mqar", key))
            if lr is None:
                continue
            label = next(m[1] for m in MQAR["models"] if m[0] == key)
            try:
                m, ci, k, n, steps, kv = cell([long_job(key, lr, s) for s in SEEDS])
            except Missing:
                continue
            md.append(f"| {label} | {kv} | {lr} | {m:.3f} ± {ci:.3f} | {k}/{n} | {steps} |")
        md.append("")
    with open(os.path.join(args.docs, "tables.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    print(f"kv_study: wrote {args.docs}/runs.csv, tables.md and the plots", flush=True)


def conversion_rows(out, base_label, base, ranks, kind, label):
    """Table rows: the trained model, then per rank its conversion right after and after fine-tuning."""
    rows = []
    if all(base):
        m, ci = mean_ci([b["held_out_accuracy"] for b in base])
        rows.append(f"| {base_label} | {base[0]['kv_bytes_per_token']} | {m:.3f} ± {ci:.3f} | — | — |")
    for r in ranks:
        ev = [summary_of(out, Job(convert_name(s, r, "eval", kind), None, "", "", "", s)) for s in SEEDS]
        ft = [summary_of(out, Job(convert_name(s, r, "ft", kind), None, "", "", "", s)) for s in SEEDS]
        if not all(ev) or not all(ft):
            continue
        me, ce = mean_ci([e["held_out_accuracy"] for e in ev])
        mf, cf = mean_ci([e["held_out_accuracy"] for e in ft])
        kept = ", ".join(f"{e['held_out_correct']}/{b['held_out_correct']}" for e, b in zip(ev, base)) if all(base) else ""
        rows.append(f"| {label(r)} | {ev[0]['kv_bytes_per_token']} | {me:.3f} ± {ce:.3f} | {mf:.3f} ± {cf:.3f} | {kept} |")
    return rows


def welch(a, b):
    """Mean of a minus mean of b, and the 95% half-width of Welch's interval."""
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    va = sum((x - ma) ** 2 for x in a) / (len(a) - 1)
    vb = sum((x - mb) ** 2 for x in b) / (len(b) - 1)
    se2 = va / len(a) + vb / len(b)
    if se2 == 0:
        return ma - mb, 0.0
    df = se2 ** 2 / ((va / len(a)) ** 2 / (len(a) - 1) + (vb / len(b)) ** 2 / (len(b) - 1))
    t = T95.get(max(1, int(math.floor(df))), 1.96)
    return ma - mb, t * math.sqrt(se2)


if __name__ == "__main__":
    main()
