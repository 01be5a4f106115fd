#!/usr/bin/env bash
# Builds latte with CUDA on this (GPU-less) machine and collects what the GPU machine runs into
# .gpu/ (git-ignored): the [cuda] test binary, the benchmarks, the latte program, and Debian's
# libbenchmark, which the GPU machine lacks. Then run scripts/gpu-check.sh there. Built without
# MPI: the GPU machine has no Open MPI, and the binaries would not start without libmpi.
set -euo pipefail
if [ "$#" -ne 0 ]; then
    echo "usage: scripts/gpu-prepare.sh   (no options; builds build-gpu/ and fills .gpu/)" >&2
    exit 2
fi
cd "$(dirname "$0")/.."
cmake -S . -B build-gpu -DLATTE_CUDA=ON -DLATTE_MPI=OFF -DCMAKE_BUILD_TYPE=Release > /dev/null
cmake --build build-gpu -j2 --target latte_cuda_tests bench_train bench_inference latte_cli
rm -rf .gpu && mkdir -p .gpu
cp build-gpu/tests/latte_cuda_tests build-gpu/bin/bench_train build-gpu/bin/bench_inference build-gpu/bin/latte .gpu/
# The libbenchmark the binaries were linked against (not whatever ldconfig lists first).
lib=$(ldd build-gpu/bin/bench_train | awk '/libbenchmark/ {print $3; exit}')
[ -f "$lib" ] || { echo "gpu-prepare: bench_train links no libbenchmark that ldd can find" >&2; exit 1; }
cp -L "$lib" .gpu/
# What the GPU machine cannot supply: MPI (not installed there) and anything unresolved here.
if LD_LIBRARY_PATH="$PWD/.gpu" ldd .gpu/latte_cuda_tests .gpu/bench_train .gpu/bench_inference .gpu/latte |
    grep -E 'libmpi|not found'; then
    echo "gpu-prepare: the binaries above need libraries the GPU machine lacks" >&2
    exit 1
fi
{
    echo "built: $(date -u +%FT%TZ) from $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
    git status --short 2>/dev/null | sed 's/^/  changed: /'
} > .gpu/BUILD_INFO
du -sh .gpu
size=$(du -sm .gpu | cut -f1)
if [ "$size" -gt 48 ]; then
    echo "gpu-prepare: .gpu/ is ${size} MiB; with the repository it must stay under 64 MiB to travel" >&2
    exit 1
fi
