#!/usr/bin/env bash
# Coverage-guided fuzzing of the file loader with libFuzzer, under AddressSanitizer and
# UndefinedBehaviorSanitizer: fuzz/frombytes_fuzzer.cpp over the C++ core, seeded with valid
# files of every format and layout (tools/fuzz_corpus.py).  Checksums are not checked in this
# build (FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION), so mutations reach the decoders.
#   tools/fuzz.sh [SECONDS] [CORPUS...]   SECONDS per corpus (default 60); corpora among
#                                         index_map ham_rows ham_lanes hcsr_rows hcsr_lanes hcsr_fixed
# Needs clang with libFuzzer (Debian: clang-14 libclang-rt-14-dev).  Every kernel set the CPU
# runs meets the inputs (on a CPU without AVX-512: scalar and AVX2).
# A finding is saved as build/fuzz/crash-* (or timeout-*, oom-*), and the run fails;
# reproduce it with build/fuzz/frombytes_fuzzer FILE, and make it a regression test.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
[ $# -gt 0 ] && shift
corpora=("$@")
[ ${#corpora[@]} -gt 0 ] || corpora=(index_map ham_rows ham_lanes hcsr_rows hcsr_lanes hcsr_fixed)
cxx=${FUZZ_CXX:-clang++-14}
out=build/fuzz

# clang ignores the kernels' `#pragma GCC target`: their ISA comes from per-file flags.
common=(-std=c++17 -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all
        -Icsrc -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION -Wno-unknown-pragmas -Wno-ignored-pragmas)
avx2=(-mavx2 -mfma -mbmi -mbmi2 -mlzcnt -mpopcnt)
avx512=("${avx2[@]}" -mavx512f -mavx512bw -mavx512vl)
# Link order matters: an inline function that several files instantiate is taken from the
# first, so the files built for wider ISAs come last and lend no code to the others.
obj_dir="$out/obj-$(echo "$cxx ${common[*]}" | md5sum | cut -c1-8)"  # new flags, new objects
mkdir -p "$obj_dir"
objs=()
for src in $(ls csrc/*.cpp csrc/kernels/*.cpp | grep -v -e bindings.cpp -e /avx) \
           csrc/kernels/avx2.cpp csrc/kernels/avx512.cpp csrc/kernels/avx512_vbmi.cpp; do
  obj="$obj_dir/$(basename "${src%.cpp}").o"
  flags=("${common[@]}")
  case "$src" in
    */avx2.cpp) flags+=("${avx2[@]}") ;;
    */avx512.cpp) flags+=("${avx512[@]}") ;;
    */avx512_vbmi.cpp) flags+=("${avx512[@]}" -mavx512vbmi) ;;
  esac
  if [ ! -e "$obj" ] || [ "$src" -nt "$obj" ] || [ -n "$(find csrc -name '*.hpp' -newer "$obj")" ]; then
    "$cxx" "${flags[@]}" -c "$src" -o "$obj" &
  fi
  objs+=("$obj")
done
wait
"$cxx" "${common[@]}" -fsanitize=fuzzer fuzz/frombytes_fuzzer.cpp "${objs[@]}" -lpthread -ldl \
  -o "$out/frombytes_fuzzer"

seeds="$out/seeds"
if [ ! -d "$seeds" ] || [ tools/fuzz_corpus.py -nt "$seeds" ]; then  # new seeds, new corpus
  rm -rf "$seeds"
  python tools/fuzz_corpus.py "$seeds"
fi
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
for c in "${corpora[@]}"; do
  [ -d "$seeds/$c" ] || { echo "no corpus '$c' (see $seeds)" >&2; exit 2; }
  mkdir -p "$out/corpus/$c"
  echo "== $c: $seconds s"
  # -timeout: a hang is an input taking over 2 s; -rss_limit_mb / -malloc_limit_mb: no input
  # (at most 64 KiB here) may make the loader hold or ask for more than that.
  "$out/frombytes_fuzzer" "$out/corpus/$c" "$seeds/$c" -max_total_time="$seconds" -timeout=2 \
    -rss_limit_mb=2048 -malloc_limit_mb=1024 -max_len=65536 -artifact_prefix="$out/" \
    -print_final_stats=1 2>&1 | grep -E "^==|DONE|stat::(number_of_executed|new_units|peak_rss)|runtime error|ERROR|SUMMARY|Test unit written" || true
  test "${PIPESTATUS[0]}" -eq 0
done
