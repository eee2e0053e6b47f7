"""`compactnn.report`: one quantized matrix's size in every format, beside the published
bounds and the comparators (scipy CSR/CSC, CER, CSER)."""
from __future__ import annotations

import sys

from ..matrix.checks import finite_matrix
from ..matrix.formats import HAM, HCSR, IndexMap
from . import bounds
from .cer import CER, CSER


def report(W, file=None) -> list[dict]:
    """Print, for one quantized matrix (at most 65536 distinct values), its size in every
    format with psi (bytes over dense float32 bytes), bits per weight and the published
    bound where there is one; returns the rows."""
    file = sys.stdout if file is None else file  # the stdout of the moment
    W = finite_matrix(W)
    n, m = W.shape
    if W.size == 0:
        raise ValueError("report needs a non-empty matrix")
    rows = []

    def add(name, nbytes, bound=None):
        rows.append(dict(format=name, bytes=int(nbytes), psi=nbytes / W.nbytes,
                         bits=8 * nbytes / W.size, bound=bound))

    fmts = {f.__name__: f.from_dense(W) for f in (IndexMap, HAM, HCSR)}
    k, nnz = fmts["IndexMap"].k, fmts["HCSR"].nnz
    add("dense float32", W.nbytes, 1.0)
    add("IndexMap", fmts["IndexMap"].nbytes, bounds.index_map(n, m, k))
    add("HAM", fmts["HAM"].nbytes, bounds.ham(n, m, k))
    add("HCSR (sHAM, rows)", fmts["HCSR"].nbytes, bounds.sham(m, n, k, nnz))
    try:  # 13 bits a stored entry, built for speed: no bound of the paper's applies
        add("HCSR (fixed layout)", fmts["HCSR"].with_layout("fixed").nbytes)
    except ValueError:  # more than 32 values
        pass
    # scipy's CSR and CSC with float32 values and int32 indices
    add("CSR (scipy)", 8 * nnz + 4 * (n + 1), bounds.csr(n, m, nnz))
    add("CSC (scipy)", 8 * nnz + 4 * (m + 1), bounds.csc(n, m, nnz))
    add("CER", CER(W).nbytes)
    add("CSER", CSER(W).nbytes)
    print(f"{n} x {m} matrix, k = {k} distinct values, {nnz} nonzeros "
          f"(density {nnz / W.size:.4f})", file=file)
    print("| format | bytes | psi | bits/weight | bound on psi |", file=file)
    print("|---|---:|---:|---:|---:|", file=file)
    for r in rows:
        b = f"{r['bound']:.4f}" if r["bound"] is not None else ""
        print(f"| {r['format']} | {r['bytes']:,} | {r['psi']:.4f} | {r['bits']:.3f} | {b} |",
              file=file)
    return rows
