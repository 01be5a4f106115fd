#!/usr/bin/env bash
# Every GPU check in one go, on the GPU machine, from the binaries scripts/gpu-prepare.sh put in
# .gpu/. Made for a short window (about 10 minutes): each step has a time limit and the whole run a
# budget (GPU_CHECK_BUDGET seconds, default 540), steps in order of what matters most:
#   1. preflight: the GPU, driver and toolkit, and `ldd` of every binary with its "not found" lines;
#   2. the [cuda] suite, one test case per process (90 s each: a hang or a sticky CUDA error costs
#      one case);
#   3. `latte absorb` and `latte decode` on the GPU (they exit 1 when an error is over tolerance);
#   4. bench_train's CUDA cases, then PyTorch on the same configs (eager and SDPA): a latte/PyTorch
#      ratio table per config and module, computed by scripts/bench_torch.py;
#   5. bench_inference's GPU cases and PyTorch's Part 13: a ratio table by scripts/part13_torch.py;
#   6. compute-sanitizer --tool memcheck on the op tests tagged [memcheck] (needs 60 s left);
#   7. up to 4 failing [cuda] cases again with CUDA_LAUNCH_BLOCKING=1, so the error names the right
#      launch (not those that timed out: they would hang again).
# A cut-off benchmark JSON (a timeout, an exception in one case) is closed after its last finished
# run, so the ratio tables keep what latte measured. A bad GPU_CHECK_BUDGET exits 2 at once.
# Every output goes to the screen and into ONE tarball, ${OUT:-gpu-results}/gpu-check-logs.tar.gz,
# refreshed after every step, so even a kill leaves the logs so far. Give the command that runs this
# script a limit above the budget (e.g. 600 s for the default 540). Exit status: 0 only if every
# step passed.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
out="${OUT:-gpu-results}"
budget="${GPU_CHECK_BUDGET:-540}"
case "$budget" in '' | *[!0-9]*) echo "gpu-check: GPU_CHECK_BUDGET must be a number of seconds, got '$budget'" >&2; exit 2 ;; esac
mkdir -p "$out"
work="$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX")"
logs="$work/gpu-check"
mkdir -p "$logs"
bin="$PWD/.gpu"
export LD_LIBRARY_PATH="$bin${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# The toolkit's tools (nvcc, compute-sanitizer) may be installed without being on PATH.
for d in /usr/local/cuda/bin /usr/local/cuda/compute-sanitizer; do [ -d "$d" ] && PATH="$PATH:$d"; done
status=0
complete=0  # set at the very end: a run cut short by a shell error never reports PASSED
summary=()
failed_cases=()
rerun=()  # failed (not timed-out) [cuda] cases, rerun with CUDA_LAUNCH_BLOCKING=1 at the end

# Packs the logs so far; the rename keeps a kill halfway from leaving a broken tarball.
pack() {
    tar -czf "$out/.gpu-check-logs.tar.gz.part" -C "$work" gpu-check &&
        mv -f "$out/.gpu-check-logs.tar.gz.part" "$out/gpu-check-logs.tar.gz"
}

finish() {
    trap - EXIT
    if [ "$complete" -ne 1 ]; then
        status=1
        summary+=("run stopped early (line ${BASH_LINENO[0]}): the steps after it did not run")
    fi
    {
        echo
        echo "==================== summary ===================="
        printf '%s\n' "${summary[@]}"
        if [ "${#failed_cases[@]}" -gt 0 ]; then
            echo "failing [cuda] cases:"
            printf '  %s\n' "${failed_cases[@]}"
        fi
        for table in torch_train torch_part13; do
            [ -f "$logs/$table.txt" ] || continue
            rows=$(sed -n '/^config \|^Part 13, float32/,/^ratio < 1\|^medians on both sides/p' "$logs/$table.txt")
            [ -n "$rows" ] || rows="(no ratio table: see $table.txt)"
            printf -- '---- ratio table from %s ----\n%s\n' "$table" "$rows"
        done
        echo "overall: $([ "$status" -eq 0 ] && echo PASSED || echo FAILED) in ${SECONDS}s"
    } | tee "$logs/summary.txt"
    if pack; then
        echo "logs: $out/gpu-check-logs.tar.gz"
        rm -rf "$work"
    else
        echo "gpu-check: packing the logs failed; they are still in $work"
    fi
    exit "$status"
}
trap finish EXIT
trap 'status=1; summary+=("interrupted after ${SECONDS}s"); exit 1' INT TERM

# step NAME LIMIT COMMAND...: runs COMMAND under `timeout`, capped by what is left of the budget,
# output to the screen and $logs/NAME.txt. Returns COMMAND's exit status (124: timed out).
step() {
    local name=$1 limit=$2
    shift 2
    local left=$((budget - SECONDS)) min=${STEP_MIN:-15}
    if [ "$left" -lt "$min" ]; then
        summary+=("$(printf '%-34s SKIPPED (%ss of the %ss budget left, needs %ss)' "$name" "$((left < 0 ? 0 : left))" "$budget" "$min")")
        status=1
        return 125
    fi
    [ "$limit" -le "$left" ] || limit=$left
    echo "== $name (limit ${limit}s): $*"
    local start=$SECONDS
    timeout --kill-after=10 "$limit" "$@" 2>&1 | tee "$logs/$name.txt"
    local rc=${PIPESTATUS[0]}
    local note=""
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then note=" TIMED OUT"; fi
    summary+=("$(printf '%-34s exit %3d %5ss%s' "$name" "$rc" $((SECONDS - start)) "$note")")
    printf '%s\n' "${summary[@]}" > "$logs/summary_so_far.txt"
    echo "== $name: exit $rc$note"
    [ "$rc" -eq 0 ] || status=1
    pack
    return "$rc"
}

# ---- 1. preflight ----------------------------------------------------------------------------
binaries=(latte_cuda_tests latte bench_train bench_inference)
{
    echo "host: $(uname -a)"
    timeout -k 5 30 nvidia-smi || echo "nvidia-smi failed"
    timeout -k 5 30 nvidia-smi --query-gpu=index,name,driver_version,memory.total,compute_cap,clocks.max.sm --format=csv ||
        echo "nvidia-smi --query-gpu failed"
    [ -f "$bin/BUILD_INFO" ] && cat "$bin/BUILD_INFO"
    echo "driver: $(head -1 /proc/driver/nvidia/version 2>/dev/null)"
    command -v nvcc > /dev/null && timeout 30 nvcc --version | tail -2
    command -v compute-sanitizer > /dev/null && timeout 30 compute-sanitizer --version | head -2
    timeout -k 5 90 python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available())" 2>&1
    echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
} 2>&1 | tee "$logs/preflight.txt"
missing=0
for b in "${binaries[@]}"; do
    if [ ! -x "$bin/$b" ]; then
        echo "preflight: $bin/$b is missing (run scripts/gpu-prepare.sh on the build machine)" | tee -a "$logs/preflight.txt"
        missing=1
        continue
    fi
    ldd "$bin/$b" > "$logs/ldd_$b.txt" 2>&1
    if grep -q "not found" "$logs/ldd_$b.txt"; then
        { echo "preflight: $b has unresolved libraries:"; grep "not found" "$logs/ldd_$b.txt"; } | tee -a "$logs/preflight.txt"
        missing=1
    fi
done
pack
if [ "$missing" -ne 0 ]; then
    summary+=("preflight                          FAILED (missing binaries or libraries, see above)")
    status=1
else
    summary+=("preflight                          ok")
fi

# ---- 2. the [cuda] suite, one case per process -------------------------------------------------
# Catch2 reads commas, brackets, quotes, wildcards and backslashes in a name as syntax: escape them.
# shellcheck disable=SC2001
catch_escape() { sed -e 's/[]\\,*"[]/\\&/g' <<< "$1"; }
if [ -x "$bin/latte_cuda_tests" ]; then
    timeout -k 5 60 "$bin/latte_cuda_tests" --list-test-names-only > "$logs/cuda_case_list.txt" 2>&1
    mapfile -t cases < <(grep -v '^CUDA devices:' "$logs/cuda_case_list.txt" | grep -v '^$')
    # Without its "CUDA devices:" line the runner did not get as far as listing (no GPU: SKIPPED,
    # a missing library, a crash): the lines are messages, not test names.
    if [ "${#cases[@]}" -eq 0 ] || ! grep -q '^CUDA devices:' "$logs/cuda_case_list.txt"; then
        cat "$logs/cuda_case_list.txt"
        summary+=("cuda suite                         NOT RUN (no test cases listed, see cuda_case_list.txt)")
        status=1
    else
        passed=0 skipped=0
        for i in "${!cases[@]}"; do
            name=${cases[$i]}
            id=$(printf 'cuda_case_%02d' "$((i + 1))")
            # -w NoTests: a name that matches nothing fails instead of passing quietly.
            step "$id" 90 "$bin/latte_cuda_tests" -w NoTests --durations yes "$(catch_escape "$name")"
            case $? in
                0) passed=$((passed + 1)) ;;
                125) skipped=$((skipped + 1)) ;;  # out of budget: not a failure of the case
                124 | 137) failed_cases+=("$id: $name (timed out)") ;;  # a rerun would hang again
                *) failed_cases+=("$id: $name"); rerun+=("$id: $name") ;;
            esac
        done
        summary+=("$(printf '%-34s %d of %d cases passed, %d failed, %d skipped' "cuda suite" "$passed" \
            "${#cases[@]}" "${#failed_cases[@]}" "$skipped")")
    fi
fi

# bench_json FILE: 0 when FILE holds bench runs. A run killed or aborted midway (a timeout, an
# exception in one case) leaves the JSON cut off after the last finished case: it is closed so
# that the ratio table still gets those cases.
bench_json() {
    timeout 30 python3 - "$1" <<'EOF'
import json, sys
path = sys.argv[1]
try:
    text = open(path).read()
except OSError:
    sys.exit(1)
for tail in ("", "\n  ]\n}\n"):
    try:
        doc = json.loads(text.rstrip().rstrip(",") + tail if tail else text)
    except ValueError:
        continue
    if tail:
        with open(path, "w") as f:
            json.dump(doc, f, indent=2)
        print(f"gpu-check: {path} was cut off; closed it after its {len(doc.get('benchmarks', []))} finished runs")
    sys.exit(0 if doc.get("benchmarks") else 1)
print(f"gpu-check: {path} is not JSON that can be closed")
sys.exit(1)
EOF
}

# ---- 3. the latte program's checks on the GPU ----------------------------------------------------
step latte_absorb 120 "$bin/latte" absorb --device cuda --repeats 5
step latte_decode_mla 120 "$bin/latte" decode --device cuda --model mla --batch 16 --steps 512
step latte_decode_gqa 120 "$bin/latte" decode --device cuda --model gqa --batch 16 --steps 512

# ---- 4. training steps: latte, then PyTorch on the same configs, and the ratio table ------------
step bench_train 300 "$bin/bench_train" --benchmark_filter=_cuda \
    --benchmark_out="$logs/bench_train.json" --benchmark_out_format=json
bench_rc=$?
if bench_json "$logs/bench_train.json"; then
    step torch_train 300 python3 scripts/bench_torch.py --device cuda --steps 20 --latte "$logs/bench_train.json"
else
    if [ "$bench_rc" -ne 125 ]; then
        summary+=("bench_train                        NO CUDA RUNS in its JSON (nothing to compare)")
        status=1
    fi
    step torch_train 300 python3 scripts/bench_torch.py --device cuda --steps 20 --configs small,medium,large
fi

# ---- 5. Part 13 and decoding: bench_inference, then PyTorch's Part 13 and its ratio table -------
step bench_inference 180 "$bin/bench_inference" --benchmark_filter='device:1' \
    --benchmark_out="$logs/bench_inference.json" --benchmark_out_format=json
bench_rc=$?
if bench_json "$logs/bench_inference.json"; then
    step torch_part13 120 python3 scripts/part13_torch.py --device cuda --repeats 20 --latte "$logs/bench_inference.json"
else
    if [ "$bench_rc" -ne 125 ]; then
        summary+=("bench_inference                    NO GPU RUNS in its JSON (nothing to compare)")
        status=1
    fi
    step torch_part13 120 python3 scripts/part13_torch.py --device cuda --repeats 20
fi

# ---- 6. memcheck on a short subset of op tests ----------------------------------------------------
if command -v compute-sanitizer > /dev/null; then
    # Without latte's block cache, so that memcheck sees every allocation at its exact size.
    LATTE_CUDA_CACHE_MB=0 STEP_MIN=60 step memcheck 240 compute-sanitizer --tool memcheck --error-exitcode 99 \
        "$bin/latte_cuda_tests" -w NoTests "[memcheck]"
else
    summary+=("memcheck                           SKIPPED (no compute-sanitizer on PATH)")
fi

# ---- 7. failing [cuda] cases again with CUDA_LAUNCH_BLOCKING=1 (diagnosis: after the measurements)
for entry in "${rerun[@]:0:4}"; do
    id=${entry%%:*}
    name=${entry#*: }
    CUDA_LAUNCH_BLOCKING=1 step "${id}_blocking" 60 \
        "$bin/latte_cuda_tests" -w NoTests --durations yes "$(catch_escape "$name")"
done
complete=1
