"""Digests of the scalar kernels' products on fixed inputs, which every architecture must
reproduce bit for bit (tests/test_reference_products.py; CI runs it on x86 and, under qemu,
on aarch64).  The inputs come from integer arithmetic (no random generator, whose streams
may differ between numpy versions) and are not dyadic, so the digests depend on the order
and rounding of every sum.  After a change that is meant to change the scalar kernels'
results, rewrite the file with

    python tests/helpers/reference_products.py
"""
import hashlib
import json
import pathlib

import numpy as np

import compactnn as cn
from compactnn import _core

PATH = pathlib.Path(__file__).parent.parent / "data" / "scalar_products.json"


def _grid(rows, cols, mod, salt):
    i = np.arange(rows, dtype=np.int64)[:, None]
    j = np.arange(cols, dtype=np.int64)[None, :]
    return (i * 7919 + j * 104729 + salt) % mod


def cases():
    """(name, matrix, x, X) for every format and layout, odd shapes among them."""
    out = []
    for rows, cols in ((37, 130), (130, 64), (1, 300)):
        levels = _grid(rows, cols, 13, rows).astype(np.float32)
        W = ((levels - 6) / np.float32(7)).astype(np.float32)  # 13 values, one of them 0
        sparse = np.where(_grid(rows, cols, 10, 3) < 3, W, np.float32(0)).astype(np.float32)
        x = ((np.arange(cols) * 31 % 17 - 8) / np.float32(9)).astype(np.float32)
        X = ((_grid(cols, 5, 23, 1) - 11) / np.float32(3)).astype(np.float32)
        mats = {"indexmap": cn.IndexMap.from_dense(W)}
        for layout in ("rows", "lanes"):
            mats[f"ham-{layout}"] = cn.HAM.from_dense(W).with_layout(layout)
        for layout in ("rows", "lanes", "fixed"):
            mats[f"hcsr-{layout}"] = cn.HCSR.from_dense(sparse).with_layout(layout)
        for name, m in mats.items():
            out.append((f"{name} {rows}x{cols}", m, x, X))
    return out


def digests():
    """{case: sha256 of dot(x), dot(X) and linear(X.T) on the scalar kernels}."""
    before = _core.isa()
    _core.set_isa("scalar")
    try:
        out = {}
        for name, m, x, X in cases():
            h = hashlib.sha256()
            for y in (m.dot(x), m.dot(X), m.linear(np.ascontiguousarray(X.T))):
                h.update(np.ascontiguousarray(y, dtype="<f4").tobytes())
            out[name] = h.hexdigest()
        return out
    finally:
        _core.set_isa(before)


if __name__ == "__main__":
    PATH.write_text(json.dumps(digests(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {PATH}")
