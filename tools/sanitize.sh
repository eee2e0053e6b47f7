#!/usr/bin/env bash
# Builds compactnn with sanitizers into a temporary directory and runs tests against it.
#   tools/sanitize.sh address [pytest args]  AddressSanitizer + UndefinedBehaviorSanitizer;
#                                            default: the kernel, format, input, file and
#                                            lane tests, their hardening tier included
#   tools/sanitize.sh thread [pytest args]   ThreadSanitizer; default: the concurrency tests
# The sanitizer runtime must be loaded before Python (LD_PRELOAD), as the interpreter itself
# is not instrumented.  Any report ends the run with a non-zero status.
set -euo pipefail
mode=${1:-}
[ $# -gt 0 ] && shift
cd "$(dirname "$0")/.."
case "$mode" in
  address)
    sanitize=address,undefined runtime=libasan.so
    # Tests whose child processes measure memory or cap their address space are left out:
    # the children inherit the runtime, whose shadow memory distorts both.
    defaults=(tests/test_kernels.py tests/test_formats.py tests/test_inputs.py
              tests/test_matrix_files_*.py tests/test_hcsr_lanes.py tests/test_ham_lanes.py
              tests/test_hcsr_fixed.py tests/test_runtime_ops.py -m "not slow"
              -k "not peak_memory and not huge_cols")
    # Python's own allocations live until exit by design: leak reports would be noise.
    export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:strict_string_checks=1
    export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ;;
  thread)
    sanitize=thread runtime=libtsan.so
    # The OpenMP test runs tasks on PyTorch's uninstrumented libgomp, whose barriers TSan
    # cannot see; the refused-threads test limits address space, which TSan's shadow needs.
    defaults=(tests/test_parallel.py tests/test_matrix_files_*.py tests/test_kernels.py
              tests/test_hcsr_lanes.py tests/test_ham_lanes.py tests/test_hcsr_fixed.py
              -k "thread and not openmp and not refuse")
    export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 ;;
  *) echo "usage: tools/sanitize.sh address|thread [pytest arguments]" >&2; exit 2 ;;
esac
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
python -m pip install -q --no-deps --target "$build" \
  -C cmake.define.COMPACTNN_SANITIZE="$sanitize" -C cmake.build-type=RelWithDebInfo .
export PYTHONPATH="$build" LD_PRELOAD="$(${CXX:-g++} -print-file-name=$runtime) $(${CXX:-g++} -print-file-name=libstdc++.so)"
# (libstdc++ preloaded too: the sanitizer's exception interceptor must find it at start.)
if [ $# -eq 0 ]; then set -- "${defaults[@]}"; fi
# An editable install's import hook would serve the unsanitized module: set it aside.
python - "$build" "$@" <<'PY'
import sys
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in type(f).__module__]
import compactnn
if not compactnn.__file__.startswith(sys.argv[1]):
    sys.exit(f"the sanitized build is not the compactnn imported: {compactnn.__file__}")
import pytest
sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", *sys.argv[2:]]))
PY
