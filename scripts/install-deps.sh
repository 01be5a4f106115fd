#!/usr/bin/env bash
# Installs the Debian packages latte builds on, if any are missing. Needs root (or sudo) and apt.
set -euo pipefail
# Open MPI (libopenmpi-dev, with mpirun from openmpi-bin) builds the data-parallel process group;
# python3 runs the doc checks (scripts/doc_blocks.py); binutils' readelf, check-install.sh. oneDNN
# (libdnnl-dev) runs bf16 products on AMX CPUs and is bench_ops' comparison (cmake/LatteDnnl.cmake);
# on AVX512_BF16 CPUs latte's own kernels run them without it.
packages=(g++ binutils cmake make libopenblas-dev liblapacke-dev catch2 libbenchmark-dev libopenmpi-dev openmpi-bin
  python3 libdnnl-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
command -v nvcc > /dev/null || echo "install-deps: nvcc is not on PATH: latte builds without its CUDA backend" \
  "(put the CUDA toolkit's bin/ on PATH to build it)"
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
sudo_cmd=""
[ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
$sudo_cmd apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}"
