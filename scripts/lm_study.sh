#!/usr/bin/env bash
# The study of issue 11: held-out accuracy against KV-cache bytes per token, on associative recall
# and on copy (induction), for MHA, GQA (G = 1, 2, H/2), MLA at several ranks and MLA + RoPE at
# several ranks, three seeds each, all with the same sizes. It also trains a RoPE-free GQA, converts it to MLA with
# `latte convert` and evaluates both (`latte lm --load FILE --steps 0`): the accuracies must match.
#
#   bash scripts/lm_study.sh                       # ./build/bin/latte, runs in runs/lm_study, docs/lm_study
#   LATTE=build-study/bin/latte JOBS=2 bash scripts/lm_study.sh
#
# Every run writes OUT/TASK_MODEL_sSEED/summary.json; a run whose summary.json exists is skipped, so
# an interrupted study continues where it stopped (FRESH=1 reruns everything). Then
# scripts/lm_study_summary.py writes DOCS/{study.csv, table.md, accuracy_vs_kv.svg}.
# Environment: LATTE (binary), OUT (run folder), DOCS (output folder), SEEDS ("0 1 2"), JOBS (runs
# at once, default 1), RECALL_STEPS (1200), COPY_STEPS (400), FRESH, and for a partial study TASKS
# ("recall copy"), MODELS_MATCHING (a regex on the model names below, default all) and CONVERT
# (1: also the convert check).
#
# The longer recall study of the MLA models in the README:
#   OUT=runs/lm_study_long DOCS=docs/lm_study/long TASKS=recall MODELS_MATCHING='^mla' CONVERT=0 \
#     RECALL_STEPS=4000 JOBS=2 bash scripts/lm_study.sh
set -euo pipefail

LATTE=${LATTE:-./build/bin/latte}
OUT=${OUT:-runs/lm_study}
DOCS=${DOCS:-docs/lm_study}
SEEDS=${SEEDS:-"0 1 2"}
JOBS=${JOBS:-1}
RECALL_STEPS=${RECALL_STEPS:-1200}
COPY_STEPS=${COPY_STEPS:-400}
FRESH=${FRESH:-0}
TASKS=${TASKS:-"recall copy"}
MODELS_MATCHING=${MODELS_MATCHING:-.}
CONVERT=${CONVERT:-1}
# One thread per run: the runs are small, and JOBS runs share the cores.
export LATTE_NUM_THREADS=${LATTE_NUM_THREADS:-1}

[[ -x "$LATTE" ]] || { echo "lm_study.sh: no latte binary at '$LATTE' (set LATTE=...)" >&2; exit 1; }
[[ "$JOBS" =~ ^[1-9][0-9]*$ ]] || { echo "lm_study.sh: JOBS must be a positive integer, got '$JOBS'" >&2; exit 1; }
mkdir -p "$OUT/logs" "$OUT/models" "$DOCS"

# The sizes every model shares: D = 128, H = 8 heads of d = 16, 2 layers, vocab 32, L 17, batch 32.
COMMON=(--layers 2 --D 128 --H 8 --vocab 32 --batch 32 --eval-every 50 --eval-batches 8)
# model name -> its attention flags. KV cache per token (2 layers, float32): MHA 2*H*d = 256 numbers
# per layer (2048 bytes), GQA 2*G*d, MLA r, MLA + RoPE r + d_R.
MODELS=(
  "mha:--attention mha"
  "gqa_g1:--attention gqa --G 1"
  "gqa_g2:--attention gqa --G 2"
  "gqa_g4:--attention gqa --G 4"
  "mla_r8:--attention mla --r 8"
  "mla_r16:--attention mla --r 16"
  "mla_r32:--attention mla --r 32"
  "mla_r64:--attention mla --r 64"
  "mla_rope_r8:--attention mla_rope --r 8 --d_R 8"
  "mla_rope_r16:--attention mla_rope --r 16 --d_R 8"
  "mla_rope_r32:--attention mla_rope --r 32 --d_R 8"
)

steps_for() { if [[ $1 == recall ]]; then echo "$RECALL_STEPS"; else echo "$COPY_STEPS"; fi; }

# The commands, one a line, then run JOBS at a time.
jobs_file=$(mktemp)
trap 'rm -f "$jobs_file"' EXIT
q() { printf '%q ' "$@"; }
for task in $TASKS; do
  steps=$(steps_for "$task")
  for seed in $SEEDS; do
    for entry in "${MODELS[@]}"; do
      model=${entry%%:*}
      [[ $model =~ $MODELS_MATCHING ]] || continue
      read -r -a flags <<< "${entry#*:}"
      name=${task}_${model}_s${seed}
      [[ $FRESH == 1 || ! -f "$OUT/$name/summary.json" ]] || continue
      echo "$(q "$LATTE" lm --task "$task" "${flags[@]}" "${COMMON[@]}" --steps "$steps" --seed "$seed" \
              --out "$OUT" --name "$name") > $(q "$OUT/logs/$name.log") 2>&1" >> "$jobs_file"
    done
    # The convert check: a RoPE-free GQA (G = 2), converted to MLA (r = 2*G*d = 64), both evaluated
    # on the same held-out set (same --seed) by --load ... --steps 0.
    [[ $CONVERT == 1 ]] || continue
    base=${task}_gqa_g2_nope_s${seed}
    gqa_file=$OUT/models/$base.safetensors
    mla_file=$OUT/models/${task}_gqa_g2_nope_mla_s${seed}.safetensors
    [[ $FRESH == 1 || ! -f "$OUT/${task}_gqa_g2_nope_mla_s${seed}/summary.json" ]] || continue
    eval_flags=(--task "$task" --L 17 --batch 32 --eval-batches 8 --seed "$seed" --steps 0 --out "$OUT")
    echo "{ $(q "$LATTE" lm --task "$task" --attention gqa --G 2 --rope off "${COMMON[@]}" --steps "$steps" \
              --seed "$seed" --out "$OUT" --name "$base" --save "$gqa_file") && \
$(q "$LATTE" convert --in "$gqa_file" --out "$mla_file") && \
$(q "$LATTE" lm "${eval_flags[@]}" --load "$gqa_file" --name "${task}_gqa_g2_nope_eval_s${seed}") && \
$(q "$LATTE" lm "${eval_flags[@]}" --load "$mla_file" --name "${task}_gqa_g2_nope_mla_s${seed}"); } \
> $(q "$OUT/logs/$base.log") 2>&1" >> "$jobs_file"
  done
done

total=$(wc -l < "$jobs_file")
echo "lm_study.sh: $total runs to do with $LATTE, $JOBS at a time; logs in $OUT/logs"
start=$(date +%s)
# xargs stops at the first failing run (exit 255) and reports it; the logs say why.
tr '\n' '\0' < "$jobs_file" | xargs -0 -r -n 1 -P "$JOBS" bash -c 'eval "$1" || { echo "failed: $1" >&2; exit 255; }' run
echo "lm_study.sh: runs done in $(( $(date +%s) - start ))s"

python3 "$(dirname "$0")/lm_study_summary.py" --in "$OUT" --out "$DOCS" \
  --command "$(printf 'LATTE=%q OUT=%q DOCS=%q JOBS=%q SEEDS=%q TASKS=%q MODELS_MATCHING=%q CONVERT=%q RECALL_STEPS=%q COPY_STEPS=%q bash scripts/lm_study.sh' \
    "$LATTE" "$OUT" "$DOCS" "$JOBS" "$SEEDS" "$TASKS" "$MODELS_MATCHING" "$CONVERT" "$RECALL_STEPS" "$COPY_STEPS")"
