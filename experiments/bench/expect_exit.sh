#!/usr/bin/env bash
# Runs a bench program and checks how it ended: the exit code, and a pattern its output (stdout
# and stderr) must hold and, optionally, one it must not. Usage (the ctest entries bench_*):
#   expect_exit.sh CODE MUST_MATCH MUST_NOT_MATCH PROGRAM [ARGS...]   (MUST_NOT_MATCH may be "")
set -uo pipefail
code=$1 must=$2 must_not=$3
shift 3
output=$("$@" 2>&1)
rc=$?
echo "$output"
[ "$rc" -eq "$code" ] || { echo "expect_exit: $* exited $rc, expected $code"; exit 1; }
echo "$output" | grep -qE -- "$must" || { echo "expect_exit: the output does not match '$must'"; exit 1; }
if [ -n "$must_not" ] && echo "$output" | grep -qE -- "$must_not"; then
  echo "expect_exit: the output matches '$must_not'"; exit 1
fi
exit 0
