#!/usr/bin/env bash
# The emulated test selection on aarch64, under qemu-user: Debian's arm64 Python 3.11 with
# its numpy, pytest and hypothesis unpacked into a sysroot, the extension cross-compiled for
# it with the same flags as a Release build, and the package installed there; the tests
# compare the NEON set with the scalar one.  Emulation proves results, never speed.
# Needs root (apt) and Debian's arm64 packages; about 3 minutes.
#
#     tools/aarch64_tests.sh [DIR] [pytest arguments]   (DIR: the sysroot, default build/aarch64)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(realpath -m "${1:-build/aarch64}")
shift || true
root="$dir/root"

dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64
apt-get update -q >/dev/null
apt-get install -y -q qemu-user g++-aarch64-linux-gnu >/dev/null
# The interpreter, numpy, pytest, hypothesis and the libraries they load.
arm=(gcc-12-base libblas3 libbz2-1.0 libc6 libcom-err2 libcrypt1 libexpat1 libffi8 libgcc-s1
     libgdbm6 libgfortran5 libgomp1 libgssapi-krb5-2 libk5crypto3 libkeyutils1 libkrb5-3
     libkrb5support0 liblapack3 liblzma5 libncursesw6 libnsl2 libpcre2-8-0 libpython3-stdlib
     libpython3.11-dev libpython3.11-minimal libpython3.11-stdlib libpython3.11 libreadline8
     libselinux1 libsqlite3-0 libssl3 libstdc++6 libtinfo6 libtirpc3 libuuid1 python3-numpy
     python3.11-minimal python3.11 python3 zlib1g)
all=(libtirpc-common python3-attr python3-dateutil python3-exceptiongroup python3-hypothesis
     python3-importlib-metadata python3-iniconfig python3-more-itertools python3-packaging
     python3-pkg-resources python3-pluggy python3-py python3-pytest python3-six
     python3-sortedcontainers python3-tomli python3-typing-extensions python3-zipp)
if [ ! -x "$root/usr/bin/python3.11" ]; then
  mkdir -p "$dir/debs" && rm -rf "$root" && mkdir -p "$root"
  (cd "$dir/debs" && apt-get download -q "${arm[@]/%/:arm64}" "${all[@]}" >/dev/null 2>&1)
  for deb in "$dir"/debs/*.deb; do dpkg -x "$deb" "$root"; done
  # the alternatives links that dpkg -x does not make
  ln -sf blas/libblas.so.3 "$root/usr/lib/aarch64-linux-gnu/libblas.so.3"
  ln -sf lapack/liblapack.so.3 "$root/usr/lib/aarch64-linux-gnu/liblapack.so.3"
fi
# An interpreter that other processes can start (the tests start subprocesses): qemu with
# argv[0] set to this script, which Python takes for sys.executable.
py="$root/usr/bin/python3-aarch64"
printf '#!/bin/sh\nexec /usr/bin/qemu-aarch64 -L "%s" -0 "%s" "%s" "$@"\n' \
  "$root" "$py" "$root/usr/bin/python3.11" >"$py"
chmod +x "$py"

# The extension: the core as tools/cross_check.sh compiles it (Release flags, no warning),
# and the bindings.
pybind=$(python -c "import pybind11; print(pybind11.get_include())" 2>/dev/null) ||
  { python -m pip install -q pybind11 && pybind=$(python -c "import pybind11; print(pybind11.get_include())"); }
obj="$dir/obj" && rm -rf "$obj"
tools/cross_check.sh "$obj"
aarch64-linux-gnu-g++ -std=c++17 -O3 -DNDEBUG -fPIC -fvisibility=hidden -ffp-contract=off \
  -Icsrc -I"$pybind" -I"$root/usr/include/python3.11" -idirafter "$root/usr/include" \
  -c csrc/bindings.cpp -o "$obj/bindings.o"
site="$root/usr/lib/python3/dist-packages/compactnn"
rm -rf "$site" && cp -r python/compactnn "$site"
find "$site" -name __pycache__ -prune -exec rm -rf {} +
aarch64-linux-gnu-g++ -shared -o "$site/_core.cpython-311-aarch64-linux-gnu.so" "$obj"/*.o -lpthread

"$py" -c "import compactnn as cn; i = cn.cpu_info(); assert i['arch'] == 'aarch64' and i['isa'] == 'neon', i; print(i)"
# qemu-user 7.2 aborts a child forked from a threaded process ("qemu_plugin_vcpu_init_hook:
# assertion failed"): that one test cannot run under it.
"$py" -m pytest -q -p no:cacheprovider -m emulated \
  --deselect tests/test_parallel.py::test_products_after_fork "$@"
