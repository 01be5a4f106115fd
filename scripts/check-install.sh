#!/usr/bin/env bash
# Installs a built latte into a temporary prefix, then checks it as a user outside the tree would
# meet it (docs/install.md):
#   - every installed header compiles alone with only <prefix>/include on the include path
#     (catching an include that only resolves from the source root);
#   - the installed latteTargets*.cmake name no absolute path, and the CPU-only one no CUDA,
#     MPI or NCCL;
#   - the consumer of docs/install.md (its first ```cmake block and its ```cpp block) builds and
#     runs with CUDA and MPI hidden from it, and links none of their libraries;
#   - the same program against latte::full (the second ```cmake block) builds and runs, and so
#     does the example experiment; asking for latte::full with CUDA/MPI hidden fails, naming them.
# Usage: scripts/check-install.sh BUILD_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix="$work/prefix"
fail() { echo "check-install: $*"; exit 1; }
cmake --install "$build" --prefix "$prefix" > /dev/null

test -f "$prefix/include/latte/latte.h"
headers=$(cd "$prefix/include" && find latte -name '*.h' | sort)
# Every header of the source folders is installed (one left out would also escape the check below).
for dir in core ops nn backends/common; do
  for h in "$root/$dir"/*.h; do
    test -f "$prefix/include/latte/$dir/$(basename "$h")" || fail "$dir/$(basename "$h") not installed"
  done
done
# latte.h names every header of core/, ops/ and nn/: it includes it or lists it as internal.
for h in $(cd "$prefix/include/latte" && ls core/*.h ops/*.h nn/*.h); do
  grep -qF "$h" "$prefix/include/latte/latte.h" || fail "latte.h neither includes $h nor lists it as internal"
done
# Each header alone, included as a user would (#include <latte/...>), with the build's compiler,
# two at a time; xargs fails if any does.
export CXX=$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$build/CMakeCache.txt")
echo "$headers" | xargs -P 2 -I{} sh -c \
  'printf "#include <%s>\n" "$2" | "$CXX" -std=c++20 -fsyntax-only -I "$1" -x c++ - ||
   { echo "check-install: $2 does not compile alone"; exit 1; }' sh "$prefix/include" {}

# The exported targets: paths relative to the package (${_IMPORT_PREFIX}), never this machine's.
package=$(dirname "$(find "$prefix" -name latteConfig.cmake)")
for f in "$package"/latteTargets*.cmake "$package"/latteFullTargets*.cmake; do
  if grep -nE '(^|[" ;(])/[A-Za-z]' "$f" | grep -v '^[0-9]*:#'; then fail "$(basename "$f") names an absolute path"; fi
  if grep -nF -e "$build" -e "$root" -e "$prefix" "$f"; then fail "$(basename "$f") names a build or install folder"; fi
done
if grep -nE 'CUDA::|MPI::|nccl|cuda' "$package"/latteTargets*.cmake; then
  fail "the CPU-only latte::latte depends on CUDA, MPI or NCCL"
fi
with() { grep -q "set(latte_WITH_$1 ON)" "$package/latteConfig.cmake"; }

# The ```LANG block number N (1-based) of a markdown file, written to stdout.
block() {
  awk -v lang="$2" -v n="$3" '
    /^```/ { if (inside) { inside = 0; if (seen == n) exit; next }
             if ($0 == "```" lang) { seen++; inside = 1; next } }
    inside && seen == n { print }' "$1"
}
doc="$root/docs/install.md"
for dir in cpu full hidden_full; do mkdir -p "$work/$dir"; block "$doc" cpp 1 > "$work/$dir/main.cpp"; done
block "$doc" cmake 1 > "$work/cpu/CMakeLists.txt"
block "$doc" cmake 2 > "$work/full/CMakeLists.txt"
cp "$work/full/CMakeLists.txt" "$work/hidden_full/CMakeLists.txt"
for f in cpu/CMakeLists.txt cpu/main.cpp full/CMakeLists.txt; do
  test -s "$work/$f" || fail "docs/install.md has no block for $f"
done
grep -q 'latte::latte' "$work/cpu/CMakeLists.txt" || fail "docs/install.md's first cmake block does not link latte::latte"
grep -q 'COMPONENTS full' "$work/full/CMakeLists.txt" || fail "docs/install.md's second cmake block does not ask for full"

# CUDA and MPI hidden: find_package refuses them, and PATH holds only the tools a build needs
# (no nvcc, no mpicc); the compiler is named by its full path.
hidden_bin="$work/bin"
mkdir -p "$hidden_bin"
for tool in cmake make sh as ld; do ln -s "$(command -v $tool)" "$hidden_bin/$tool"; done
hidden() {
  env -u CUDA_PATH -u CUDA_HOME -u CUDAToolkit_ROOT -u MPI_HOME PATH="$hidden_bin" "$@"
}
hide_flags=(-DCMAKE_DISABLE_FIND_PACKAGE_CUDAToolkit=ON -DCMAKE_DISABLE_FIND_PACKAGE_MPI=ON
  -DCMAKE_CXX_COMPILER="$CXX" -DCMAKE_PREFIX_PATH="$prefix")
hidden cmake -S "$work/cpu" -B "$work/cpu/build" "${hide_flags[@]}" > "$work/cpu.log" 2>&1 ||
  { cat "$work/cpu.log"; fail "the CPU-only consumer does not configure with CUDA and MPI hidden"; }
hidden cmake --build "$work/cpu/build" -j2 > "$work/cpu.log" 2>&1 ||
  { cat "$work/cpu.log"; fail "the CPU-only consumer does not build with CUDA and MPI hidden"; }
output=$("$work/cpu/build/my_lm")
echo "$output"
echo "$output" | grep -qx "MPI process group built in: no" || fail "the CPU-only consumer has MPI built in"
if readelf -d "$work/cpu/build/my_lm" | grep -E 'NEEDED.*(cuda|cublas|mpi|nccl)'; then
  fail "the CPU-only consumer links a CUDA, MPI or NCCL library"
fi

# The full variant, with whatever this machine has.
cmake -S "$work/full" -B "$work/full/build" -DCMAKE_PREFIX_PATH="$prefix" > "$work/full.log" 2>&1 ||
  { cat "$work/full.log"; fail "the latte::full consumer does not configure"; }
cmake --build "$work/full/build" -j2 > "$work/full.log" 2>&1 ||
  { cat "$work/full.log"; fail "the latte::full consumer does not build"; }
full_output=$("$work/full/build/my_lm")
expected=no
if with MPI; then expected=yes; fi
echo "$full_output" | grep -qx "MPI process group built in: $expected" || fail "latte::full: MPI built in is not '$expected'"
cmake -S "$root/tests/install" -B "$work/example" -DCMAKE_PREFIX_PATH="$prefix" \
  -DLATTE_EXAMPLE_SOURCE="$root/experiments/examples/my_experiment.cpp" > /dev/null
cmake --build "$work/example" -j2 > /dev/null
example=$("$work/example/my_experiment")  # exits 1 if its gradient check fails
test "$(echo "$example" | head -n 1)" = "gradcheck: ok" || { echo "$example"; fail "the example experiment failed"; }

# Asking for latte::full where what it needs is hidden fails at configure time, naming it.
if with CUDA || with MPI; then
  if hidden cmake -S "$work/hidden_full" -B "$work/hidden_full/build" "${hide_flags[@]}" > "$work/hidden.log" 2>&1; then
    fail "find_package(latte COMPONENTS full) succeeded with CUDA and MPI hidden"
  fi
  grep -q "latte's component 'full' needs" "$work/hidden.log" || { cat "$work/hidden.log"; fail "no message names what latte::full misses"; }
fi
echo "check-install: $(echo "$headers" | wc -l) installed headers compile alone; docs/install.md's consumer built and ran on latte::latte with CUDA and MPI hidden, and on latte::full"
