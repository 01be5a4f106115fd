#!/usr/bin/env bash
# CTest's mpi_latte_train: `mpirun -np 2 latte train` (and `latte lm`) end with the same losses
# as one process; only rank 0 prints and writes; a checkpoint written on 2 ranks resumes on 1 to
# the same end; ranks started differently are refused; a rank that stops answering is named
# within --timeout.
# Usage: check-mpi-train.sh LATTE MPIRUN...   (float32: losses compared to 1e-4 relative)
set -euo pipefail
latte=$1
shift
mpirun=("$@")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
flags=(--model gqa --L 12 --seed 3)

# The final train loss and held-out loss: from `latte train`'s summary line, or `latte lm`'s final line.
losses() {
  sed -n -e 's/^summary: final train loss \([^,]*\), held-out loss \([^ ]*\) .*/\1 \2/p' \
    -e 's/^final: .*, held-out loss \([^,]*\), train loss \([^;]*\);.*/\2 \1/p' "$1"
}
same() {  # same LABEL FILE_A FILE_B
  read -r a1 a2 <<< "$(losses "$2")"
  read -r b1 b2 <<< "$(losses "$3")"
  if [ -z "${a1:-}" ] || [ -z "${b1:-}" ]; then echo "FAIL: $1: no summary line"; exit 1; fi
  awk -v a1="$a1" -v a2="$a2" -v b1="$b1" -v b2="$b2" -v label="$1" 'function rel(x, y) { d = x - y; if (d < 0) d = -d; return d / (y < 0 ? -y : y) }
    BEGIN { if (rel(a1, b1) > 1e-4 || rel(a2, b2) > 1e-4) { printf "FAIL: %s: %s %s vs %s %s\n", label, a1, a2, b1, b2; exit 1 }
            printf "ok: %s: train %s vs %s, held-out %s vs %s\n", label, a1, b1, a2, b2 }'
}

"$latte" train "${flags[@]}" --batch 8 --steps 40 --out "$work" --name one > "$work/one.txt"
"${mpirun[@]}" "$latte" train "${flags[@]}" --batch 8 --steps 40 --out "$work" --name two > "$work/two.txt"
same "2 ranks vs 1 process" "$work/two.txt" "$work/one.txt"
[ "$(grep -c '^summary:' "$work/two.txt")" = 1 ] || { echo "FAIL: more than one rank printed"; cat "$work/two.txt"; exit 1; }
grep -q '^data-parallel on 2 ranks' "$work/two.txt" || { echo "FAIL: no data-parallel banner"; exit 1; }

# 20 steps on 2 ranks, then resumed to 40 on 1 process (the other flags are the checkpoint's).
"${mpirun[@]}" "$latte" train "${flags[@]}" --batch 8 --steps 20 --out "$work" --name half > /dev/null
"$latte" train --steps 40 --resume "$work/half/checkpoint.safetensors" > "$work/resumed.txt"
same "2 ranks, then resumed on 1" "$work/resumed.txt" "$work/one.txt"

# A batch the ranks cannot split is refused before training, with one message.
if "${mpirun[@]}" "$latte" train "${flags[@]}" --batch 7 --steps 5 --out "$work" --name odd > "$work/odd.txt" 2>&1; then
  echo "FAIL: --batch 7 on 2 ranks was accepted"; exit 1
fi
grep -q 'does not split evenly over 2 ranks' "$work/odd.txt" || { echo "FAIL: no clear error"; cat "$work/odd.txt"; exit 1; }
echo "ok: --batch 7 on 2 ranks refused"

# latte lm: the same, with the whole batch's accuracy counted over the shards.
lm_flags=(lm --task recall --steps 60 --eval-every 0 --batch 16)
"$latte" "${lm_flags[@]}" --out "$work" --name lm_one > "$work/lm_one.txt"
"${mpirun[@]}" "$latte" "${lm_flags[@]}" --out "$work" --name lm_two > "$work/lm_two.txt"
same "latte lm: 2 ranks vs 1 process" "$work/lm_two.txt" "$work/lm_one.txt"
cmp -s <(cut -d, -f3 "$work/lm_one/loss.csv") <(cut -d, -f3 "$work/lm_two/loss.csv") ||
  { echo "FAIL: latte lm: the training accuracies differ"; exit 1; }
echo "ok: latte lm: the same training accuracy at every step"

# Ranks started with different settings are refused at once, on every rank, naming what differs
# (rank_agreement.h). Two programs in one job (mpirun's A : B form), one rank each.
launcher=()
skip=0
for word in "${mpirun[@]}"; do  # the mpirun command without its "-np 2"
  if [ "$skip" = 1 ]; then skip=0; continue; fi
  if [ "$word" = "-np" ] || [ "$word" = "-n" ]; then skip=1; continue; fi
  launcher+=("$word")
done
refused() {  # refused LABEL EXPECTED_MESSAGE -- RANK0_ARGS -- RANK1_ARGS
  local label=$1 expected=$2
  shift 3
  local a=() b=()
  while [ "$1" != "--" ]; do a+=("$1"); shift; done
  shift
  b=("$@")
  local start end
  start=$(date +%s)
  if timeout 60 "${launcher[@]}" -np 1 "$latte" "${a[@]}" : -np 1 "$latte" "${b[@]}" > "$work/refused.txt" 2>&1; then
    echo "FAIL: $label: accepted"; exit 1
  fi
  end=$(date +%s)
  [ $((end - start)) -le 30 ] || { echo "FAIL: $label: took $((end - start)) s"; exit 1; }
  [ "$(grep -c "$expected" "$work/refused.txt")" = 2 ] ||
    { echo "FAIL: $label: both ranks must say '$expected'"; cat "$work/refused.txt"; exit 1; }
  echo "ok: $label refused on both ranks in $((end - start)) s"
}
base=(train "${flags[@]}" --batch 8 --out "$work")
refused "different --lr" "the ranks disagree on --lr: rank 0 has 0.01, rank 1 has 0.03" -- \
  "${base[@]}" --steps 5 --lr 0.01 --name lr -- "${base[@]}" --steps 5 --lr 0.03 --name lr
refused "different --steps" "the ranks disagree on --steps: rank 0 has 5, rank 1 has 6" -- \
  "${base[@]}" --steps 5 --name steps -- "${base[@]}" --steps 6 --name steps
refused "latte lm: different --task" "the ranks disagree on --task: rank 0 has recall, rank 1 has copy" -- \
  lm --task recall --steps 5 --out "$work" --name task -- lm --task copy --steps 5 --out "$work" --name task
# Files are compared by content, not path: a copy is the same file, other weights are not.
"$latte" train --model gqa --L 12 --steps 2 --seed 1 --save "$work/w1.safetensors" --out "$work" --name w1 > /dev/null
"$latte" train --model gqa --L 12 --steps 2 --seed 2 --save "$work/w2.safetensors" --out "$work" --name w2 > /dev/null
cp "$work/w1.safetensors" "$work/w1copy.safetensors"
timeout 60 "${launcher[@]}" -np 1 "$latte" "${base[@]}" --steps 3 --init "$work/w1.safetensors" --name init_same : \
  -np 1 "$latte" "${base[@]}" --steps 3 --init "$work/w1copy.safetensors" --name init_same > /dev/null ||
  { echo "FAIL: the same --init file under two paths was refused"; exit 1; }
echo "ok: the same --init contents under two paths accepted"
refused "different --init contents" "the ranks disagree on --init: rank 0 has size" -- \
  "${base[@]}" --steps 3 --init "$work/w1.safetensors" --name init -- "${base[@]}" --steps 3 --init "$work/w2.safetensors" --name init

# A rank that stops answering (SIGSTOP, as a hung rank or a dead machine would) is named by the
# other within --timeout, and the job ends with an error instead of waiting 5 minutes.
"${mpirun[@]}" "$latte" train "${flags[@]}" --batch 8 --steps 1000000 --log-every 0 --timeout 3 --out "$work" \
  --name stopped > "$work/stopped.txt" 2>&1 &
job=$!
rank1=""
for _ in $(seq 200); do  # rank 1's process, by its environment, once it trains
  for p in $(pgrep -f "$latte train"); do
    if tr '\0' '\n' < "/proc/$p/environ" 2>/dev/null | grep -qx 'OMPI_COMM_WORLD_RANK=1'; then rank1=$p; fi
  done
  if [ -n "$rank1" ] && grep -q '^data-parallel on 2 ranks' "$work/stopped.txt"; then break; fi
  sleep 0.1
done
[ -n "$rank1" ] || { echo "FAIL: rank 1 of the --timeout run never started"; cat "$work/stopped.txt"; exit 1; }
sleep 1
start=$(date +%s)
kill -STOP "$rank1"
status=0
for _ in $(seq 300); do kill -0 "$job" 2> /dev/null || break; sleep 0.1; done
if kill -0 "$job" 2> /dev/null; then
  kill -CONT "$rank1"; kill "$job"; echo "FAIL: --timeout 3: the job still runs 30 s after rank 1 stopped"; exit 1
fi
wait "$job" || status=$?
end=$(date +%s)
[ "$status" != 0 ] || { echo "FAIL: --timeout 3: the job exited 0"; exit 1; }
# Rank 1 stops either before a collective (rank 0's agreement check names it) or inside one's
# blocking transfer (rank 0's watchdog names it).
grep -Eq 'latte \(rank 0\).*(timed out after 3 s: rank 1 did not arrive|timeout \(3 s\) although every rank had arrived: rank 1 stopped)' \
  "$work/stopped.txt" || { echo "FAIL: --timeout 3: rank 0 did not name rank 1"; cat "$work/stopped.txt"; exit 1; }
echo "ok: a stopped rank is named by the other, and the job ends in $((end - start)) s"
