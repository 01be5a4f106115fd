#!/usr/bin/env bash
# Installs a built latte into a temporary prefix and builds an outside project against it with
# find_package(latte). Usage: scripts/check-install.sh BUILD_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" > /dev/null
cmake -S "$root/tests/install" -B "$work/build" -DCMAKE_PREFIX_PATH="$work/prefix" \
  -DLATTE_EXAMPLE_SOURCE="$root/experiments/examples/my_experiment.cpp" > /dev/null
cmake --build "$work/build" -j2 > /dev/null
test -x "$work/build/my_experiment"
echo "check-install: an outside project built against the installed latte"
