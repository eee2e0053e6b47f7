#!/usr/bin/env bash
# The deployment path of docs/runtime.md, end to end: in the active environment (with
# torch) ccexam's MNIST CNN is compressed and saved with its graph, with a batch of inputs
# and the compressed PyTorch model's outputs; then a fresh virtual environment gets
# `pip install .` alone (numpy its only dependency) and runs the file with `compactnn run`
# and with compactnn.runtime, where torch cannot be imported; both must match PyTorch's
# outputs to float32 rounding.
#
#     tools/runtime_check.sh [DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-$(mktemp -d)}
mkdir -p "$dir"
python - "$dir" <<'PY'
import sys, numpy as np, torch
import compactnn.torch as cnt
from compactnn.evaluation import zoo
d = sys.argv[1]
small = cnt.compress_model(zoo.ccexam_mnist(), prune=0.7, prune_scope="global", k=16,
                           progress=False).eval()
x = torch.randn(64, 1, 28, 28, generator=torch.Generator().manual_seed(0))
cnt.save(small, f"{d}/ccexam.cnnm", example_input=x[:2])
with torch.inference_mode():
    np.save(f"{d}/want.npy", small(x).numpy())
np.save(f"{d}/x.npy", x.numpy())
np.save(f"{d}/x1.npy", x[:1].numpy())
PY
rm -rf "$dir/venv"
python3 -m venv "$dir/venv"
"$dir/venv/bin/python" -m pip install -q .
"$dir/venv/bin/compactnn" run "$dir/ccexam.cnnm" --input "$dir/x.npy" -o "$dir/got.npy"
"$dir/venv/bin/compactnn" run "$dir/ccexam.cnnm" --input "$dir/x1.npy" -o "$dir/got1.npy"
"$dir/venv/bin/python" - "$dir" <<'PY'
import importlib.util, sys, numpy as np
import compactnn.runtime as runtime
d = sys.argv[1]
assert importlib.util.find_spec("torch") is None, "torch is installed in the fresh venv"
want = np.load(f"{d}/want.npy")
tol = dict(rtol=1e-5, atol=1e-5 * np.abs(want).max())
np.testing.assert_allclose(np.load(f"{d}/got.npy"), want, **tol)
np.testing.assert_allclose(np.load(f"{d}/got1.npy"), want[:1], **tol)
np.testing.assert_allclose(runtime.load(f"{d}/ccexam.cnnm")(np.load(f"{d}/x.npy")), want, **tol)
print(f"runtime_check: ccexam's CNN runs in a venv without torch, batch 1 and 64, "
      f"matching PyTorch (largest difference {np.abs(np.load(f'{d}/got.npy') - want).max():.2e})")
PY
