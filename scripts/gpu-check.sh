#!/usr/bin/env bash
# Every GPU check in one go, on the GPU machine, from the binaries scripts/gpu-prepare.sh put in
# .gpu/: the [cuda] test suite, the CUDA benchmarks, and PyTorch on the same configs for ratios.
# Outputs go to the screen and to ${OUT:-gpu-results}/.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-gpu-results}"
mkdir -p "$out"
export LD_LIBRARY_PATH="$PWD/.gpu:${LD_LIBRARY_PATH:-}"
status=0
run() {  # run NAME COMMAND...: tee to $out/NAME.txt, remember a failure
    echo "== $1"
    local name=$1
    shift
    "$@" 2>&1 | tee "$out/$name.txt"
    local rc=${PIPESTATUS[0]}
    echo "== $name: exit $rc"
    [ "$rc" -eq 0 ] || status=1
}
nvidia-smi -L | tee "$out/gpu.txt"
run cuda_tests .gpu/latte_cuda_tests --durations yes
run latte_absorb .gpu/latte absorb --device cuda --repeats 5
run latte_decode .gpu/latte decode --device cuda --model mla --batch 16 --steps 512
run bench_train .gpu/bench_train --benchmark_filter=_cuda
run bench_inference .gpu/bench_inference --benchmark_filter='device:1'
run torch_train python3 scripts/bench_torch.py --device cuda --configs small,medium,large --steps 20
run torch_part13 python3 scripts/part13_torch.py --device cuda --repeats 5
exit $status
