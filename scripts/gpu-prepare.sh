#!/usr/bin/env bash
# Builds latte with CUDA on this (GPU-less) machine and collects what the GPU machine runs into
# .gpu/ (git-ignored): the [cuda] test binary, the benchmarks, the latte program, and Debian's
# libbenchmark, which the GPU machine lacks. Then run scripts/gpu-check.sh there. Built without
# MPI: the GPU machine has no Open MPI, and the binaries would not start without libmpi.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build-gpu -DLATTE_CUDA=ON -DLATTE_MPI=OFF -DCMAKE_BUILD_TYPE=Release > /dev/null
cmake --build build-gpu -j2 --target latte_cuda_tests bench_train bench_inference latte_cli
rm -rf .gpu && mkdir -p .gpu
cp build-gpu/tests/latte_cuda_tests build-gpu/bin/bench_train build-gpu/bin/bench_inference build-gpu/bin/latte .gpu/
cp -L "$(ldconfig -p | awk '/libbenchmark.so.1debian/{print $NF; exit}')" .gpu/
du -sh .gpu
