"""The peers of the benchmark compute the product of the matrix they report (so their
errors and times are theirs), and `compactnn bench --peers` prints their table."""
import builtins
import importlib.util

import numpy as np
import pytest

from compactnn.bench import peers
from compactnn.cli import main

MAKERS = [(peers.torch_int8, 2e-2), (peers.torch_int4, 2e-2), (peers.ort_matmul_nbits, 1e-5),
          (lambda W: peers.ort_matmul_nbits(W, accuracy_level=4), 3e-2),
          (peers.torch_sparse, 1e-5), (peers.mkl_sparse, 1e-5)]


def as_numpy(y, batch):
    y = np.asarray(y.float() if hasattr(y, "float") else y, np.float64)
    return y.reshape(batch, -1) if y.shape[0] == batch or y.ndim == 1 else y.T


@pytest.mark.parametrize("make, tol", MAKERS)
@pytest.mark.parametrize("batch", [1, 5])
def test_peer_multiplies_its_matrix(make, tol, batch):
    rng = np.random.default_rng(0)
    W = rng.standard_normal((96, 256)).astype(np.float32)
    W[np.abs(W) < 0.8] = 0  # sparse enough for the sparse peers; harmless for the others
    X = rng.standard_normal((batch, 256)).astype(np.float32)
    if make is peers.mkl_sparse and importlib.util.find_spec("sparse_dot_mkl") is None:
        pytest.skip("sparse_dot_mkl is not installed (pip install sparse_dot_mkl mkl)")
    p = make(W)
    y = as_numpy(p.run(X), batch)
    ref = X.astype(np.float64) @ p.dense.T.astype(np.float64)
    assert y.shape == ref.shape
    assert np.abs(y - ref).max() <= tol * np.abs(ref).max()
    assert p.bits > 0 and p.dense.shape == W.shape


def test_bits_and_errors_on_gaussian_weights():
    W = np.random.default_rng(1).standard_normal((128, 512)).astype(np.float32)
    int8, int4, nbits = peers.torch_int8(W), peers.torch_int4(W), peers.ort_matmul_nbits(W)
    assert int8.bits == pytest.approx(8 + 16 / 512) and int4.bits == 4.25 and nbits.bits == 5
    assert peers.relative_error(int8.dense, W) < 0.015
    assert 0.05 < peers.relative_error(int4.dense, W) < 0.15
    assert 0.05 < peers.relative_error(nbits.dense, W) < 0.15


def test_a_missing_peer_says_how_to_install_it(monkeypatch):
    real_import = builtins.__import__

    def no_onnx(name, *args, **kw):
        if name.startswith("onnx"):
            raise ImportError(name)
        return real_import(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", no_onnx)
    lines = []
    assert peers.available([peers.ort_matmul_nbits], np.ones((4, 64), np.float32),
                           log=lines.append) == []
    assert lines == ["  (skipped: ONNX Runtime peers need onnx and onnxruntime: "
                     "pip install onnx onnxruntime)"]


def test_bench_prints_the_peer_table(capsys):
    assert main(["bench", "--n", "256", "--no-real", "--quiet", "--peers"]) == 0
    out = capsys.readouterr().out
    table = out[out.index("Peers on the same"):].splitlines()
    rows = [line for line in table if line.startswith("| ") and "---" not in line][1:]
    names = [r.split("|")[1].strip() for r in rows]
    assert names[0] == "numpy float32 (OpenBLAS)" and len(rows) == 11
    assert any(n.startswith("ONNX Runtime") for n in names)
    assert any(n.startswith("compactnn HCSR") for n in names)


def test_mkl_that_cannot_load_says_so(monkeypatch):
    real_import = builtins.__import__

    def unloadable(name, *args, **kw):
        if name.startswith("sparse_dot_mkl"):
            raise ImportError("Unable to load the MKL libraries through libmkl_rt")
        return real_import(name, *args, **kw)

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object())
    monkeypatch.setattr(builtins, "__import__", unloadable)
    with pytest.raises(peers.Missing, match="installed but cannot load MKL's libmkl_rt"):
        peers.mkl_sparse(np.ones((4, 4), np.float32))
