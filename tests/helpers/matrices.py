"""Random quantized matrices and the reference product every format is checked against."""
import numpy as np

import compactnn as cn

FORMATS = [cn.IndexMap, cn.HAM, cn.HCSR]


def random_quantized(rng, n_rows, n_cols, k, density=1.0, skew=0.0):
    """A float32 matrix with at most k distinct values and about `density` nonzeros.

    skew > 0 makes index i about exp(-skew * i) times as likely as index 0.
    """
    codebook = rng.standard_normal(k).astype(np.float32)
    p = np.exp(-skew * np.arange(k))
    idx = rng.choice(k, size=(n_rows, n_cols), p=p / p.sum())
    W = codebook[idx]
    W[rng.random((n_rows, n_cols)) >= density] = 0
    return W


def reference_error(W, x, y):
    """Largest |y - W x| relative to |W| |x|, with W x in float64."""
    W64 = W.astype(np.float64)
    ref = W64 @ x.astype(np.float64)
    scale = np.abs(W64) @ np.abs(x.astype(np.float64)) + 1e-30
    return float(np.max(np.abs(y - ref) / scale)) if ref.size else 0.0


def bits(a: np.ndarray) -> np.ndarray:
    """The float32 bit patterns of a (to compare -0.0 and NaNs exactly)."""
    return np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
