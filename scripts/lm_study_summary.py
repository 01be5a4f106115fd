#!/usr/bin/env python3
"""Aggregates the runs of scripts/lm_study.sh (Python 3 standard library only).

Reads IN/*/summary.json (written by `latte lm`; run folders are named TASK_MODEL_sSEED) and writes
  OUT/study.csv           one row per run
  OUT/table.md            per task and model: held-out accuracy over the seeds (mean +- sample std,
                          and each seed's), KV-cache bytes per token, steps to 99% per seed; then
                          the GQA -> MLA conversion check, seed by seed
  OUT/accuracy_vs_kv.svg  held-out accuracy against KV bytes per token (log scale), one marker per
                          model (the seeds' mean, a bar from the lowest to the highest), one panel per task

usage: lm_study_summary.py --in runs/lm_study --out docs/lm_study [--command "how the runs were made"]
"""
import argparse
import csv
import io
import json
import math
import os
import re
import statistics
import sys

NAME = re.compile(r"^(recall|copy|modadd)_(.+)_s(\d+)$")
# Conversion-check runs: the trained RoPE-free GQA, and the two --load evaluations.
CONVERT_TRAINED, CONVERT_GQA, CONVERT_MLA = "gqa_g2_nope", "gqa_g2_nope_eval", "gqa_g2_nope_mla"
# Study models in table order, with the family that picks their marker.
FAMILIES = [("mha", "MHA", "#1f77b4", "circle"), ("gqa", "GQA", "#2ca02c", "square"),
            ("mla", "MLA", "#d62728", "triangle"), ("mla_rope", "MLA + RoPE", "#9467bd", "diamond")]


def fail(message):
    sys.exit(f"lm_study_summary.py: {message}")


def load_runs(folder):
    if not os.path.isdir(folder):
        fail(f"--in '{folder}' is not a folder")
    runs = []
    for entry in sorted(os.listdir(folder)):
        path = os.path.join(folder, entry, "summary.json")
        if not os.path.isfile(path):
            continue
        match = NAME.match(entry)
        if not match:
            continue  # not a study run
        with open(path) as f:
            try:
                s = json.load(f)
            except json.JSONDecodeError as e:
                fail(f"{path}: {e}")
        task, model, seed = match.group(1), match.group(2), int(match.group(3))
        if s.get("task") != task or s.get("seed") != seed:
            fail(f"{path}: says task {s.get('task')} seed {s.get('seed')}, its folder {task} seed {seed}")
        s["model"] = model
        runs.append(s)
    if not runs:
        fail(f"no TASK_MODEL_sSEED/summary.json under '{folder}'")
    return runs


def family(run):
    if run["attention"] == "mla_rope":
        return "mla_rope"
    return run["attention"]


def label(run):
    a = run["attention"]
    if a == "mha":
        return "MHA"
    if a == "gqa":
        return f"GQA G={run['G']}" + ("" if run["rope"] else " no RoPE")
    if a == "mla":
        return f"MLA r={run['r']}"
    return f"MLA+RoPE r={run['r']} d_R={run['d_R']}"


def model_key(model):
    """Table order: MHA, GQA by G, MLA by r, MLA + RoPE, then anything else by name."""
    m = re.match(r"^(mha|gqa_g|mla_rope_r|mla_r)(\d*)$", model)
    order = {"mha": 0, "gqa_g": 1, "mla_r": 2, "mla_rope_r": 3}
    return (order[m.group(1)], int(m.group(2) or 0), "") if m else (9, 0, model)


def write_atomically(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def cell(v):
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return v


def study_csv(runs):
    fields = ["task", "model", "seed", "attention", "rope", "H", "G", "r", "d_R", "kv_bytes_per_token",
              "held_out_accuracy", "held_out_correct", "held_out_total", "held_out_loss", "steps", "steps_to_99",
              "parameters", "loaded_from"]
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(fields)
    for r in sorted(runs, key=lambda r: (r["task"], model_key(r["model"]), r["seed"])):
        w.writerow([cell(r.get(k)) for k in fields])
    return out.getvalue()


def mean_std(values):
    m = statistics.fmean(values)
    return m, (statistics.stdev(values) if len(values) > 1 else 0.0)


def grouped(runs, exclude_convert=True):
    groups = {}
    for r in runs:
        if exclude_convert and r["model"] in (CONVERT_GQA, CONVERT_MLA):
            continue
        groups.setdefault((r["task"], r["model"]), []).append(r)
    for g in groups.values():
        g.sort(key=lambda r: r["seed"])
    return groups


def seeds(runs):
    return sorted({r["seed"] for r in runs})


def table_md(runs, command):
    groups = grouped(runs)
    tasks = [t for t in ("recall", "copy", "modadd") if any(k[0] == t for k in groups)]
    lines = []
    if command:
        lines += ["Made by:", "", "```", command, "```", ""]
    first = next(iter(groups.values()))[0]
    answers = ", ".join(f"{t} {next(g[0]['held_out_total'] for k, g in groups.items() if k[0] == t)}" for t in tasks)
    lines.append(f"All models: {first['layers']} layers, D={first['D']}, H={first['H']} (d={first['d']}), "
                 f"vocab {first['vocab']}, L {first['L']}, batch {first['batch']}, {len(seeds(runs))} seeds. "
                 f"Held-out answers per run: {answers}. Held-out accuracy is evaluated every {first['eval_every']} "
                 "steps; \"steps to 99%\" is the first evaluated step at >= 0.99 (— : not reached). KV cache: bytes "
                 "per token over all layers, float32.")
    for task in tasks:
        keys = sorted((k for k in groups if k[0] == task), key=lambda k: model_key(k[1]))
        steps = groups[keys[0]][0]["steps"]
        lines += ["", f"### {task} ({steps} steps)", "",
                  "| model | KV bytes/token | held-out accuracy (mean ± std) | per seed | steps to 99% per seed |",
                  "|---|---:|---:|---|---|"]
        for k in keys:
            g = groups[k]
            accs = [r["held_out_accuracy"] for r in g]
            m, s = mean_std(accs)
            per_seed = ", ".join(f"{a:.3f}" for a in accs)
            reached = ", ".join("—" if r["steps_to_99"] is None else str(r["steps_to_99"]) for r in g)
            lines.append(f"| {label(g[0])} | {g[0]['kv_bytes_per_token']} | {m:.3f} ± {s:.3f} | {per_seed} | {reached} |")
    # The conversion check: the same held-out set, the GQA file and the MLA file made from it.
    checks = {}
    for r in runs:
        if r["model"] in (CONVERT_GQA, CONVERT_MLA):
            checks.setdefault((r["task"], r["seed"]), {})[r["model"]] = r
    if checks:
        ranks = sorted({c[CONVERT_MLA]["r"] for c in checks.values() if CONVERT_MLA in c})
        lines += ["", "### GQA -> MLA with `latte convert`", "",
                  "A RoPE-free GQA (the \"no RoPE\" rows above) converted to MLA (r = 2·G·d = "
                  f"{', '.join(map(str, ranks))}); both files evaluated on the same held-out set with "
                  "`latte lm --load FILE --steps 0`.", "",
                  "| task | seed | GQA (no RoPE) held-out accuracy | converted MLA held-out accuracy | "
                  "KV bytes/token GQA / MLA | same number right |", "|---|---:|---:|---:|---:|---|"]
        for (task, seed), pair in sorted(checks.items(), key=lambda kv: (tasks.index(kv[0][0]) if kv[0][0] in tasks
                                                                          else 9, kv[0][1])):
            g, m = pair.get(CONVERT_GQA), pair.get(CONVERT_MLA)
            if g is None or m is None:
                lines.append(f"| {task} | {seed} | {'missing' if g is None else g['held_out_accuracy']} | "
                             f"{'missing' if m is None else m['held_out_accuracy']} | | no |")
                continue
            same = "yes" if g["held_out_correct"] == m["held_out_correct"] else "**no**"
            lines.append(f"| {task} | {seed} | {g['held_out_accuracy']:.4f} ({g['held_out_correct']}/"
                         f"{g['held_out_total']}) | {m['held_out_accuracy']:.4f} ({m['held_out_correct']}/"
                         f"{m['held_out_total']}) | {g['kv_bytes_per_token']} / {m['kv_bytes_per_token']} | {same} |")
    return "\n".join(lines) + "\n"


def marker(shape, x, y, color, size=6):
    if shape == "circle":
        return f"<circle cx='{x:.1f}' cy='{y:.1f}' r='{size}' fill='{color}'/>"
    if shape == "square":
        return f"<rect x='{x - size:.1f}' y='{y - size:.1f}' width='{2 * size}' height='{2 * size}' fill='{color}'/>"
    if shape == "triangle":
        pts = [(x, y - size * 1.2), (x - size * 1.1, y + size * 0.8), (x + size * 1.1, y + size * 0.8)]
    else:
        pts = [(x, y - size * 1.3), (x - size, y), (x, y + size * 1.3), (x + size, y)]
    return "<polygon points='" + " ".join(f"{a:.1f},{b:.1f}" for a, b in pts) + f"' fill='{color}'/>"


def accuracy_svg(runs):
    groups = grouped(runs)
    tasks = [t for t in ("recall", "copy", "modadd") if any(k[0] == t for k in groups)]
    kv = [g[0]["kv_bytes_per_token"] for g in groups.values()]
    lo, hi = 2 ** math.floor(math.log2(min(kv)) - 0.3), 2 ** math.ceil(math.log2(max(kv)) + 0.3)
    panel_w, panel_h, left, top, gap, bottom = 460, 380, 60, 50, 40, 110
    width = max(left + len(tasks) * (panel_w + gap), 880)  # room for the title and legend with one panel
    height = top + panel_h + bottom
    style = {f[0]: f for f in FAMILIES}
    svg = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' font-family='sans-serif' "
           "font-size='12'>", "<rect width='100%' height='100%' fill='white'/>",
           f"<text x='{width / 2}' y='22' text-anchor='middle' font-size='15'>Held-out accuracy against KV-cache "
           "bytes per token (mean of the seeds; bars: lowest to highest)</text>"]
    for i, task in enumerate(tasks):
        x0 = left + i * (panel_w + gap)
        def px(v):
            return x0 + panel_w * (math.log2(v) - math.log2(lo)) / (math.log2(hi) - math.log2(lo))
        def py(a):
            return top + panel_h * (1 - a)
        svg.append(f"<rect x='{x0}' y='{top}' width='{panel_w}' height='{panel_h}' fill='none' stroke='#888'/>")
        svg.append(f"<text x='{x0 + panel_w / 2}' y='{top - 8}' text-anchor='middle' font-size='14'>{task}</text>")
        for a in (0, 0.25, 0.5, 0.75, 1.0):
            svg.append(f"<line x1='{x0}' x2='{x0 + panel_w}' y1='{py(a):.1f}' y2='{py(a):.1f}' stroke='#eee'/>")
            svg.append(f"<text x='{x0 - 6}' y='{py(a) + 4:.1f}' text-anchor='end'>{a:g}</text>")
        v = lo
        while v <= hi:
            svg.append(f"<line x1='{px(v):.1f}' x2='{px(v):.1f}' y1='{top}' y2='{top + panel_h}' stroke='#eee'/>")
            svg.append(f"<text x='{px(v):.1f}' y='{top + panel_h + 16}' text-anchor='middle'>{v}</text>")
            v *= 2
        svg.append(f"<text x='{x0 + panel_w / 2}' y='{top + panel_h + 34}' text-anchor='middle'>KV cache, bytes per "
                   "token (log scale)</text>")
        if i == 0:
            svg.append(f"<text x='16' y='{top + panel_h / 2}' transform='rotate(-90 16 {top + panel_h / 2})' "
                       "text-anchor='middle'>held-out answer accuracy</text>")
        # Models at the same KV size are nudged apart by family, so markers and labels stay readable.
        nudge = {"mha": 0, "gqa": -0.08, "mla": 0.08, "mla_rope": 0}
        placed = []
        for (t, model), g in sorted(groups.items(), key=lambda kv: model_key(kv[0][1])):
            if t != task:
                continue
            fam = family(g[0])
            if model == CONVERT_TRAINED:
                fam_color, shape = "#ff7f0e", "square"
            else:
                _, _, fam_color, shape = style.get(fam, (fam, fam, "#333", "circle"))
            accs = [r["held_out_accuracy"] for r in g]
            x = px(g[0]["kv_bytes_per_token"] * 2 ** nudge.get(fam, 0))
            y = py(statistics.fmean(accs))
            svg.append(f"<line x1='{x:.1f}' x2='{x:.1f}' y1='{py(max(accs)):.1f}' y2='{py(min(accs)):.1f}' "
                       f"stroke='{fam_color}' stroke-width='2'/>")
            svg.append(marker(shape, x, y, fam_color))
            text = label(g[0]).replace("MLA+RoPE ", "")
            ty = y + 4
            while any(abs(ty - p[1]) < 13 and abs(x - p[0]) < 70 for p in placed):
                ty += 13  # below a label already there
            placed.append((x, ty))
            anchor, tx = ("end", x - 9) if fam == "gqa" else ("start", x + 9)
            svg.append(f"<text x='{tx:.1f}' y='{ty:.1f}' text-anchor='{anchor}' fill='{fam_color}' "
                       f"font-size='11'>{text}</text>")
    # Legend.
    ly = top + panel_h + 60
    shown = {family(g[0]) for g in groups.values()}
    entries = [(name, color, shape) for fam, name, color, shape in FAMILIES if fam in shown]
    if any(model == CONVERT_TRAINED for _, model in groups):
        entries.append(("GQA, no RoPE", "#ff7f0e", "square"))
    for j, (name, color, shape) in enumerate(entries):
        lx = left + j * 150
        svg.append(marker(shape, lx, ly, color))
        svg.append(f"<text x='{lx + 12}' y='{ly + 4}'>{name}</text>")
    svg.append("</svg>")
    return "\n".join(svg) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--in", dest="inp", required=True, help="the study's run folder (OUT of lm_study.sh)")
    p.add_argument("--out", required=True, help="folder for study.csv, table.md, accuracy_vs_kv.svg")
    p.add_argument("--command", default="", help="the command that made the runs, quoted in table.md")
    a = p.parse_args()
    runs = load_runs(a.inp)
    os.makedirs(a.out, exist_ok=True)
    write_atomically(os.path.join(a.out, "study.csv"), study_csv(runs))
    write_atomically(os.path.join(a.out, "table.md"), table_md(runs, a.command))
    write_atomically(os.path.join(a.out, "accuracy_vs_kv.svg"), accuracy_svg(runs))
    print(f"lm_study_summary.py: {len(runs)} runs -> {a.out}/study.csv, table.md, accuracy_vs_kv.svg")


if __name__ == "__main__":
    main()
