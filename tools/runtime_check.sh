#!/usr/bin/env bash
# The deployment path of docs/runtime.md, end to end: in the active environment (with
# torch) ccexam's MNIST CNN, the zoo's four models and a residual network of a custom class
# are compressed and saved with their graphs, with inputs and the compressed PyTorch models'
# outputs at batch 1 and 64; then a fresh virtual environment gets `pip install .` alone
# (numpy its only dependency) and runs every file with compactnn.runtime, and ccexam's with
# `compactnn run`, where torch cannot be imported; all must match PyTorch's outputs to
# float32 rounding.
#
#     tools/runtime_check.sh [DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-$(mktemp -d)}
mkdir -p "$dir"
python - "$dir" <<'PY'
import sys, numpy as np, torch
from torch import nn
import compactnn.torch as cnt
from compactnn.evaluation import datasets, zoo
d = sys.argv[1]


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem, self.bn = nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.body, self.head = nn.Conv2d(8, 8, 3, padding=1), nn.Linear(8, 10)

    def forward(self, x):
        h = torch.relu(self.bn(self.stem(x)))
        h = torch.relu(h + self.body(h))
        return self.head(nn.functional.adaptive_avg_pool2d(h, 1).flatten(1))


g = torch.Generator().manual_seed(0)
images = lambda b: torch.randn(b, 1, 28, 28, generator=g)  # noqa: E731
pairs = lambda b: (torch.randint(0, datasets.SMILES_VOCAB, (b, datasets.SMILES_LEN), generator=g),  # noqa: E731
                   torch.randint(0, datasets.PROTEIN_VOCAB, (b, datasets.PROTEIN_LEN), generator=g))
torch.manual_seed(0)
models = {"ccexam": (zoo.ccexam_mnist(), images), "lenet300": (zoo.lenet_300_100(), images),
          "lenet5": (zoo.lenet5(), images), "vgg": (zoo.vgg_style(), images),
          "deepdta": (zoo.deepdta(datasets.SMILES_VOCAB, datasets.PROTEIN_VOCAB), pairs),
          "residual": (Residual(), images)}
for name, (model, make) in models.items():
    small = cnt.compress_model(model.eval(), prune=0.7, prune_scope="global", k=16,
                               progress=False).eval()
    cnt.save(small, f"{d}/{name}.cnnm", example_input=make(2))
    for batch in (1, 64):
        x = make(batch)
        with torch.inference_mode():
            np.save(f"{d}/{name}-{batch}-want.npy", small(x).numpy())
        for i, part in enumerate(x if isinstance(x, tuple) else (x,)):
            np.save(f"{d}/{name}-{batch}-x{i}.npy", part.numpy())
PY
rm -rf "$dir/venv"
python3 -m venv "$dir/venv"
"$dir/venv/bin/python" -m pip install -q .
"$dir/venv/bin/compactnn" run "$dir/ccexam.cnnm" --input "$dir/ccexam-64-x0.npy" -o "$dir/got.npy"
"$dir/venv/bin/python" - "$dir" <<'PY'
import glob, importlib.util, os, sys, numpy as np
import compactnn.runtime as runtime
d = sys.argv[1]
assert importlib.util.find_spec("torch") is None, "torch is installed in the fresh venv"
worst = 0.0
for path in sorted(glob.glob(f"{d}/*.cnnm")):
    name, rt = os.path.basename(path)[:-5], runtime.load(path)
    for batch in (1, 64):
        xs = [np.load(p) for p in sorted(glob.glob(f"{d}/{name}-{batch}-x*.npy"))]
        want = np.load(f"{d}/{name}-{batch}-want.npy")
        got = rt(xs if len(xs) > 1 else xs[0])
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
        worst = max(worst, float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-30)))
    print(f"  {name}: batch 1 and 64 match")
want = np.load(f"{d}/ccexam-64-want.npy")
np.testing.assert_allclose(np.load(f"{d}/got.npy"), want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
assert "torch" not in sys.modules
print(f"runtime_check: every model runs in a venv without torch (largest relative difference "
      f"{worst:.1e}); `compactnn run` too")
PY
