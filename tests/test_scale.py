"""Scale: an HCSR matrix of more than 2^31 entries (50,000 x 50,000) with 25 million
nonzeros, built from CSR arrays, round-tripped through a file and multiplied against scipy.
Slow (15 s here, 2-3 GB): `python -m pytest -m slow tests/test_scale.py`."""
import os
import subprocess
import sys

import pytest

SCALE = r"""
import os, sys, tempfile
import numpy as np
import scipy.sparse as sp
import compactnn as cn
from helpers.proc_status import peak_added, reset_peak

n, per_row = 50_000, 500  # 1% dense; 2.5e9 entries > 2^31
rng = np.random.default_rng(0)
codebook = np.linspace(-1, 1, 16, dtype=np.float32)
codebook = codebook[codebook != 0]
# one column in each of 500 bins of 100: sorted, distinct, spread over every column
indices = np.empty(n * per_row, np.int32)
for r0 in range(0, n, 5000):
    block = np.arange(per_row) * (n // per_row) + rng.integers(0, n // per_row, (5000, per_row))
    indices[r0 * per_row:(r0 + 5000) * per_row] = block.ravel()
data = codebook[rng.integers(0, len(codebook), n * per_row)]
indptr = np.arange(n + 1, dtype=np.int64) * per_row
A = sp.csr_array((data, indices, indptr), shape=(n, n))
csr_bytes = data.nbytes + indices.nbytes + indptr.nbytes

before = reset_peak()
m = cn.HCSR.from_scipy(A)
added = peak_added(before)
assert m.shape == (n, n) and m.nnz == n * per_row and m.size > 2**31
print(f"build added {added / csr_bytes:.2f}x the CSR input; output {m.nbytes / csr_bytes:.2f}x",
      file=sys.stderr)
assert added <= 4 * csr_bytes + m.nbytes, (added, csr_bytes, m.nbytes)  # 2.9x measured

x = rng.standard_normal(n).astype(np.float32)
ref = A @ x.astype(np.float64)
with tempfile.TemporaryDirectory() as d:
    path = os.path.join(d, "big.cnn")
    m.save(path)
    back = cn.load(path)
assert back.tobytes() == m.tobytes()
for mat in (m, back):
    for threads in (1, 2):
        y = mat.dot(x, threads=threads)
        err = np.abs(y - ref).max() / np.abs(ref).max()
        assert err < 1e-5, err
back_csr = back.to_scipy()
assert (back_csr.indptr == indptr).all() and (back_csr.indices == indices).all()
assert (back_csr.data == data).all()
print("OK")
"""


@pytest.mark.slow
def test_hcsr_beyond_2_31_entries():
    r = subprocess.run([sys.executable, "-c", SCALE], capture_output=True, text=True, timeout=1200,
                       cwd=os.path.dirname(__file__))
    assert r.returncode == 0 and r.stdout.strip() == "OK", r.stderr[-3000:]
    print(r.stderr)
