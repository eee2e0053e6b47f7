#!/usr/bin/env bash
# Compiles the native core (every file of csrc/ but the Python bindings) for aarch64 with the
# Release build's flags and -Wall -Wextra -Werror: nothing in it may assume x86 (the x86
# kernel files compile to nothing there; the scalar and NEON sets run).  Needs Debian's
# g++-aarch64-linux-gnu.  Compiles only; tools/aarch64_tests.sh links these objects and runs
# the tests under qemu.
#
#     tools/cross_check.sh [OUT]     (OUT: where the objects go, default a temporary folder)
set -euo pipefail
cd "$(dirname "$0")/.."
cxx=aarch64-linux-gnu-g++
if [ $# -ge 1 ]; then
  out=$1 && mkdir -p "$out"
else
  out=$(mktemp -d) && trap 'rm -rf "$out"' EXIT
fi
files=$(ls csrc/*.cpp csrc/kernels/*.cpp | grep -vx csrc/bindings.cpp)
xargs -P "$(nproc)" -I{} sh -c \
  '"$1" -std=c++17 -O3 -DNDEBUG -fPIC -fvisibility=hidden -ffp-contract=off \
   -Wall -Wextra -Werror -Icsrc -c {} -o "$2/$(echo {} | tr / _).o"' _ "$cxx" "$out" <<<"$files"
# The x86 kernel sets must be empty there, the scalar and NEON ones complete.
syms=$(nm -C "$out"/*.o)
for set in scalar neon; do
  grep -Eq " [DR] cnn::kernels::${set}_kernels$" <<<"$syms" || { echo "no $set kernel set" >&2; exit 1; }
done
if grep -Eq ' [DR] cnn::kernels::(avx2|avx512)_kernels$' <<<"$syms"; then
  echo "x86 kernel sets compiled for $cxx" >&2; exit 1
fi
echo "cross_check: $(wc -l <<<"$files") files compile for $("$cxx" -dumpmachine) with no warning"
