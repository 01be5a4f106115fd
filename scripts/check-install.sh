#!/usr/bin/env bash
# Installs a built latte into a temporary prefix, then checks it as a user outside the tree
# would meet it: every installed header compiles alone with only <prefix>/include on the include
# path (catching an include that only resolves from the source root), and an outside project
# finds the package, builds the example experiment (<latte/latte.h>, nn::gradcheck_module) and
# runs its gradient check. Usage: scripts/check-install.sh BUILD_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix="$work/prefix"
cmake --install "$build" --prefix "$prefix" > /dev/null

test -f "$prefix/include/latte/latte.h"
headers=$(cd "$prefix/include" && find latte -name '*.h' | sort)
# Every header of the source folders is installed (one left out would also escape the check below).
for dir in core ops nn backends/common; do
  for h in "$root/$dir"/*.h; do
    test -f "$prefix/include/latte/$dir/$(basename "$h")" || { echo "check-install: $dir/$(basename "$h") not installed"; exit 1; }
  done
done
# latte.h names every header of core/, ops/ and nn/: it includes it or lists it as internal.
for h in $(cd "$prefix/include/latte" && ls core/*.h ops/*.h nn/*.h); do
  grep -qF "$h" "$prefix/include/latte/latte.h" || { echo "check-install: latte.h neither includes $h nor lists it as internal"; exit 1; }
done
# Each header alone, included as a user would (#include <latte/...>), with the build's compiler,
# two at a time; xargs fails if any does.
export CXX=$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$build/CMakeCache.txt")
echo "$headers" | xargs -P 2 -I{} sh -c \
  'printf "#include <%s>\n" "$2" | "$CXX" -std=c++20 -fsyntax-only -I "$1" -x c++ - ||
   { echo "check-install: $2 does not compile alone"; exit 1; }' sh "$prefix/include" {}

cmake -S "$root/tests/install" -B "$work/build" -DCMAKE_PREFIX_PATH="$prefix" \
  -DLATTE_EXAMPLE_SOURCE="$root/experiments/examples/my_experiment.cpp" > /dev/null
cmake --build "$work/build" -j2 > /dev/null
output=$("$work/build/my_experiment")  # exits 1 if its gradient check fails
echo "$output"
test "$(echo "$output" | head -n 1)" = "gradcheck: ok"
echo "check-install: $(echo "$headers" | wc -l) installed headers compile alone; an outside project built against the installed latte"
