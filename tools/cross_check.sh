#!/usr/bin/env bash
# Compiles the native core (every file of csrc/ but the Python bindings) for aarch64 with
# -Wall -Wextra -Werror: nothing in it may assume x86 (the x86 kernel files compile to
# nothing there; the scalar and NEON sets run).  Needs Debian's g++-aarch64-linux-gnu.  It compiles
# and runs nothing (tools/aarch64_tests.sh runs the tests under qemu).
#
#     tools/cross_check.sh [compiler]        (default: aarch64-linux-gnu-g++)
set -euo pipefail
cd "$(dirname "$0")/.."
cxx=${1:-aarch64-linux-gnu-g++}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
n=0
for f in csrc/*.cpp csrc/kernels/*.cpp; do
  [ "$f" = csrc/bindings.cpp ] && continue
  "$cxx" -std=c++17 -O2 -Wall -Wextra -Werror -ffp-contract=off -Icsrc -c "$f" -o "$out/$(basename "$f").o"
  n=$((n + 1))
done
# The x86 kernel sets must be empty there, the scalar and NEON ones complete.
syms=$(nm -C "$out"/*.o)
for set in scalar neon; do
  grep -Eq " [DR] cnn::kernels::${set}_kernels$" <<<"$syms" || { echo "no $set kernel set" >&2; exit 1; }
done
if grep -Eq ' [DR] cnn::kernels::(avx2|avx512)_kernels$' <<<"$syms"; then
  echo "x86 kernel sets compiled for $cxx" >&2; exit 1
fi
echo "cross_check: $n files compile for $("$cxx" -dumpmachine) with no warning"
