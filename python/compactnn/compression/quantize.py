"""Weight sharing: replace a matrix's values by a small codebook.

Four quantizers, each returning `Quantized(codebook, indices)` that the formats take
directly (`HAM.from_codebook(*q)`), each able to keep zero exact (pruned weights stay 0 as
a symbol of their own) and to share one codebook between several matrices (pass a list):

- `cws`: k-means (Lloyd from quantile or k-means++ seeds, or exact optimal clustering);
- `pws`: probabilistic rounding between quantile representatives, unbiased;
- `uq`: uniform levels over the range, or a given step;
- `ecsq`: entropy-constrained scalar quantization, for a lambda or a target bit rate.

All work on the sorted values with prefix sums: after one sort an iteration costs
O(k log n), and the final assignment is one `searchsorted`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..matrix.checks import MAX_CODEBOOK, check_finite, real_array

EXACT_MAX_DISTINCT = 4096  # exact k-means runs on at most this many distinct values


@dataclass(frozen=True)
class Quantized:
    """`codebook[indices]` is the quantized matrix; formats take it via `from_codebook`."""

    codebook: np.ndarray  # float32, (k,)
    indices: np.ndarray  # uint32, the matrix's shape

    def to_dense(self) -> np.ndarray:
        return self.codebook[self.indices]

    def __iter__(self):  # Fmt.from_codebook(*q)
        return iter((self.codebook, self.indices))


# -- shared machinery -------------------------------------------------------------------
class _Values:
    """The values to quantize: one or several matrices, with exact zeros set aside."""

    def __init__(self, W, keep_zero: bool):
        self.single = not isinstance(W, (list, tuple))
        mats = [W] if self.single else list(W)
        if not mats:
            raise ValueError("no matrices to quantize")
        arrays = []
        for i, M in enumerate(mats):
            name = "W" if self.single else f"W[{i}]"
            a = np.asarray(real_array(M, name), dtype=np.float64)
            check_finite(a, name)
            arrays.append(a)
        self.arrays = arrays
        self.flat = np.concatenate([a.ravel() for a in arrays])
        self.zero = (self.flat == 0) if keep_zero else np.zeros(self.flat.shape, bool)
        self.has_zero = bool(self.zero.any())
        self.sorted = np.sort(self.flat[~self.zero])

    def centroid_budget(self, k: int) -> int:
        return k - 1 if self.has_zero else k

    def result(self, codebook: np.ndarray, idx: np.ndarray):
        """Quantized per input matrix; the zero symbol appended last when kept."""
        codebook = np.asarray(codebook, np.float32)
        if self.has_zero:
            idx = idx.astype(np.uint32)
            idx[self.zero] = len(codebook)
            codebook = np.append(codebook, np.float32(0))
        if codebook.size == 0:
            codebook = np.zeros(1, np.float32)
        idx = idx.astype(np.uint32, copy=False)
        out, start = [], 0
        for a in self.arrays:
            out.append(Quantized(codebook, idx[start:start + a.size].reshape(a.shape)))
            start += a.size
        return out[0] if self.single else out


def _check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= MAX_CODEBOOK:
        raise ValueError(f"k must be an integer in 1..{MAX_CODEBOOK}, got {k!r}")
    return int(k)


def _budget(vals: _Values, k: int) -> int:
    n = vals.centroid_budget(k)
    if n == 0 and vals.sorted.size:
        raise ValueError("k=1 with keep_zero leaves no symbol for the nonzero weights")
    return n


def _nearest(centroids: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Index of the nearest of sorted `centroids` for each x (ties to the lower)."""
    if len(centroids) <= 1:
        return np.zeros(x.shape, np.uint32)
    return np.searchsorted((centroids[:-1] + centroids[1:]) / 2, x).astype(np.uint32)


def _prefix(s: np.ndarray):
    return np.concatenate(([0.0], np.cumsum(s))), np.concatenate(([0.0], np.cumsum(s * s)))


# -- cws: k-means ---------------------------------------------------------------------------
def cws(W, k: int, *, keep_zero: bool = True, init: str = "quantile", method: str = "lloyd",
        seed: int | None = 0, max_iter: int = 300):
    """k-means weight sharing.

    init: "quantile" (centroids at the means of k equal-count slices of the sorted values)
    or "kmeans++" (seeded D^2 sampling).  method: "lloyd" (iterate to a fixed point: every
    value nearest its centroid, every centroid the mean of its members) or "exact" (the
    optimal clustering by dynamic programming, for up to 4096 distinct values).  Empty
    clusters are re-seeded by splitting the cluster of largest squared error, so k centroids
    survive whenever there are k distinct values.  Deterministic for a given seed.
    """
    k = _check_k(k)
    if init not in ("quantile", "kmeans++"):
        raise ValueError(f"init must be 'quantile' or 'kmeans++', got {init!r}")
    if method not in ("lloyd", "exact"):
        raise ValueError(f"method must be 'lloyd' or 'exact', got {method!r}")
    vals = _Values(W, keep_zero)
    n_c, s = _budget(vals, k), vals.sorted
    if s.size == 0:
        centroids = np.zeros(0)
    elif method == "exact":
        centroids = _kmeans_exact(s, n_c)
    else:
        centroids = _lloyd(s, _seeds(s, n_c, init, seed), max_iter)
    return vals.result(centroids, _nearest(centroids, vals.flat))


def _seeds(s: np.ndarray, k: int, init: str, seed) -> np.ndarray:
    k = min(k, int(np.count_nonzero(np.diff(s))) + 1)
    if init == "quantile":
        edges = np.linspace(0, len(s), k + 1).round().astype(np.int64)
        prefix = np.concatenate(([0.0], np.cumsum(s)))
        return (prefix[edges[1:]] - prefix[edges[:-1]]) / np.maximum(np.diff(edges), 1)
    # k-means++ on a sample of the sorted values (D^2 weighting), deterministic per seed.
    rng = np.random.default_rng(seed)
    sample = s[rng.integers(0, len(s), min(len(s), 100_000))]
    centers = [sample[rng.integers(len(sample))]]
    d2 = (sample - centers[0]) ** 2
    for _ in range(1, k):
        if d2.sum() == 0:
            break
        centers.append(sample[rng.choice(len(sample), p=d2 / d2.sum())])
        d2 = np.minimum(d2, (sample - centers[-1]) ** 2)
    c = np.unique(centers)
    while len(c) < k:  # duplicates in the sample: top up from the quantile seeds
        c = np.unique(np.concatenate((c, _seeds(s, k, "quantile", None))))[:k]
    return np.sort(c)[:k]


def _lloyd(s: np.ndarray, c: np.ndarray, max_iter: int) -> np.ndarray:
    """Lloyd iterations on sorted values from sorted seeds `c`."""
    n, k = len(s), len(c)
    prefix, prefix2 = _prefix(s)
    for _ in range(max_iter):
        cut = np.searchsorted(s, (c[:-1] + c[1:]) / 2, side="right")
        starts, ends = np.concatenate(([0], cut)), np.concatenate((cut, [n]))
        keep = ends > starts
        starts, ends = list(starts[keep]), list(ends[keep])
        while len(starts) < k:  # re-seed emptied clusters
            a, b = np.array(starts), np.array(ends)
            sse = prefix2[b] - prefix2[a] - (prefix[b] - prefix[a]) ** 2 / (b - a)
            sse[s[b - 1] == s[a]] = -1  # a cluster of one value cannot split
            j = int(np.argmax(sse))
            mid = int(np.searchsorted(s, (s[starts[j]] + s[ends[j] - 1]) / 2, side="right"))
            mid = min(max(mid, starts[j] + 1), ends[j] - 1)
            starts.insert(j + 1, mid)
            ends.insert(j, mid)
        a, b = np.array(starts), np.array(ends)
        new = (prefix[b] - prefix[a]) / (b - a)
        if np.array_equal(new, c):
            break
        c = new
    return c


def _kmeans_exact(s: np.ndarray, k: int) -> np.ndarray:
    """Optimal 1-D k-means (minimum total squared error) by dynamic programming over the
    distinct values weighted by their counts: O(k u^2) for u distinct values."""
    u, counts = np.unique(s, return_counts=True)
    if len(u) > EXACT_MAX_DISTINCT:
        raise ValueError(
            f"exact k-means handles at most {EXACT_MAX_DISTINCT} distinct values, got "
            f"{len(u)}: use method='lloyd'"
        )
    k = min(k, len(u))
    w = counts.astype(np.float64)
    W1 = np.concatenate(([0.0], np.cumsum(w)))
    S1 = np.concatenate(([0.0], np.cumsum(w * u)))
    S2 = np.concatenate(([0.0], np.cumsum(w * u * u)))
    m = len(u)
    a = np.arange(m + 1)[:, None]
    b = np.arange(m + 1)[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        cost = S2[b] - S2[a] - (S1[b] - S1[a]) ** 2 / (W1[b] - W1[a])  # cluster u[a:b]
    cost[b <= a] = np.inf
    best = cost[0].copy()  # best[j]: first j values in one cluster
    arg = np.zeros((k, m + 1), np.int64)
    for c in range(1, k):
        total = best[:, None] + cost  # split point a, end b
        arg[c] = np.argmin(total, axis=0)
        best = total[arg[c], np.arange(m + 1)]
    bounds, end = [], m
    for c in range(k - 1, 0, -1):
        start = int(arg[c, end])
        bounds.append((start, end))
        end = start
    bounds.append((0, end))
    return np.array([(S1[e] - S1[b0]) / (W1[e] - W1[b0]) for b0, e in reversed(bounds)])


# -- pws: probabilistic weight sharing ------------------------------------------------------
def pws(W, k: int, *, keep_zero: bool = True, seed: int | None = 0):
    """Probabilistic weight sharing: k representatives at evenly spaced quantiles (the
    minimum and maximum included), each weight rounded to one of the two representatives
    around it with probabilities that make the rounding unbiased: E[q(w)] = w."""
    k = _check_k(k)
    vals = _Values(W, keep_zero)
    n_c, s = _budget(vals, k), vals.sorted
    if s.size == 0:
        return vals.result(np.zeros(0), np.zeros(vals.flat.shape, np.uint32))
    reps = np.unique(np.quantile(s, np.linspace(0, 1, n_c)) if n_c > 1 else [s.mean()])
    if len(reps) == 1:
        return vals.result(reps, np.zeros(vals.flat.shape, np.uint32))
    x = np.clip(vals.flat, reps[0], reps[-1])
    hi = np.clip(np.searchsorted(reps, x, side="right"), 1, len(reps) - 1)
    lo = hi - 1
    p_hi = (x - reps[lo]) / (reps[hi] - reps[lo])
    rng = np.random.default_rng(seed)
    idx = np.where(rng.random(x.shape) < p_hi, hi, lo).astype(np.uint32)
    return vals.result(reps, idx)


# -- uq: uniform quantization -------------------------------------------------------------
def uq(W, k: int | None = None, *, step: float | None = None, keep_zero: bool = True):
    """Uniform quantization: k equally spaced levels from the minimum to the maximum
    weight, or levels at multiples of `step` covering the range; each weight goes to the
    nearest level."""
    if (k is None) == (step is None):
        raise ValueError("give exactly one of k and step")
    vals = _Values(W, keep_zero)
    s = vals.sorted
    if s.size == 0:
        return vals.result(np.zeros(0), np.zeros(vals.flat.shape, np.uint32))
    lo, hi = s[0], s[-1]
    if step is not None:
        if not np.isfinite(step) or step <= 0:
            raise ValueError(f"step must be a positive number, got {step!r}")
        first, last = np.floor(lo / step), np.ceil(hi / step)
        count = int(last - first) + 1
        if count + vals.has_zero > MAX_CODEBOOK:
            raise ValueError(f"step {step} gives {count} levels; at most {MAX_CODEBOOK} fit")
        levels = (first + np.arange(count)) * step
    else:
        n_c = _budget(vals, _check_k(k))
        levels = np.linspace(lo, hi, n_c) if n_c > 1 and hi > lo else np.array([(lo + hi) / 2])
    return vals.result(levels, _nearest(levels, vals.flat))


# -- ecsq: entropy-constrained scalar quantization -----------------------------------------
def ecsq(W, k: int, *, lam: float | None = None, bits: float | None = None,
         keep_zero: bool = True, max_iter: int = 100, history: list | None = None):
    """Entropy-constrained scalar quantization.

    Assigns each weight to the level c minimising |w - c| + lam * (-log2 p_c), then moves
    each level to the median of its members and sets p_c to their share; repeats until the
    assignment stops changing.  The objective (total |w - c| plus lam times the ideal code
    bits) never increases; levels left without members are dropped, so fewer than k may
    remain.  Give `lam`, or `bits` (a target entropy in bits per nonzero weight) to search
    lam by bisection.  `history`, if a list, receives the objective after each iteration.
    """
    k = _check_k(k)
    if (lam is None) == (bits is None):
        raise ValueError("give exactly one of lam and bits")
    vals = _Values(W, keep_zero)
    n_c, s = _budget(vals, k), vals.sorted
    if s.size == 0:
        return vals.result(np.zeros(0), np.zeros(vals.flat.shape, np.uint32))
    fit = _ECSQ(s)
    if lam is not None:
        if not np.isfinite(lam) or lam < 0:
            raise ValueError(f"lam must be a non-negative number, got {lam!r}")
        c, p = fit.run(n_c, float(lam), max_iter, history)
    else:
        if not np.isfinite(bits) or bits <= 0:
            raise ValueError(f"bits must be a positive number, got {bits!r}")
        lam, c, p = fit.for_bits(n_c, float(bits), max_iter)
    return vals.result(c, _ecsq_assign(c, lam * -np.log2(p), vals.flat))


def _envelope(c: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Levels that win somewhere under the cost |x - c_j| + r_j (c sorted), and the
    crossings between neighbouring winners.

    Level j is beaten everywhere by a level left of it iff r_j - c_j >= r_i - c_i, and by
    one right of it iff r_j + c_j >= r_i + c_i; ties go to the lower level."""
    u, v = r - c, r + c
    left_min = np.minimum.accumulate(np.concatenate(([np.inf], u[:-1])))
    right_min = np.minimum.accumulate(np.concatenate((v[1:], [np.inf]))[::-1])[::-1]
    alive = np.flatnonzero((u < left_min) & (v < right_min))
    ca, ra = c[alive], r[alive]
    return alive, (ca[:-1] + ca[1:] + ra[1:] - ra[:-1]) / 2


def _ecsq_assign(c: np.ndarray, r: np.ndarray, x: np.ndarray) -> np.ndarray:
    """argmin_j |x - c_j| + r_j, ties to the lower level."""
    alive, cross = _envelope(c, r)
    return alive[np.searchsorted(cross, x)].astype(np.uint32)


class _ECSQ:
    """ECSQ iterations on sorted values: members of a level are a contiguous run, so an
    iteration costs O(k log n) with prefix sums."""

    def __init__(self, s: np.ndarray):
        self.s, self.n = s, len(s)
        self.prefix = np.concatenate(([0.0], np.cumsum(s)))

    def run(self, k, lam, max_iter, history=None):
        s, n, P = self.s, self.n, self.prefix
        c = _seeds(s, k, "quantile", None)
        p = np.full(len(c), 1.0 / len(c))
        prev_ends = None
        for _ in range(max_iter):
            # values up to a crossing go left, as in _ecsq_assign
            cut = np.searchsorted(s, _envelope(c, lam * -np.log2(p))[1], side="right")
            ends = np.concatenate((cut, [n]))
            starts = np.concatenate(([0], cut))
            keep = ends > starts
            starts, ends = starts[keep], ends[keep]
            if prev_ends is not None and np.array_equal(ends, prev_ends):
                break
            mid = (starts + ends - 1) // 2
            c = s[mid]  # medians
            p = (ends - starts) / n
            if history is not None:
                dist = (c * (mid - starts) - (P[mid] - P[starts])) + (
                    (P[ends] - P[mid]) - c * (ends - mid))
                history.append(float(dist.sum() + lam * ((ends - starts) * -np.log2(p)).sum()))
            prev_ends = ends
        return c, p

    def for_bits(self, k, bits, max_iter):
        def entropy(p):
            return float(-(p * np.log2(p)).sum())

        c, p = self.run(k, 0.0, max_iter)
        if entropy(p) <= bits:
            return 0.0, c, p
        lo, hi = 0.0, 1.0
        while True:  # grow hi until the rate fits (or one level is left)
            c, p = self.run(k, hi, max_iter)
            if entropy(p) <= bits or len(c) == 1:
                break
            lo, hi = hi, hi * 4
        best = (hi, c, p)
        for _ in range(30):
            mid = (lo + hi) / 2
            c, p = self.run(k, mid, max_iter)
            if entropy(p) <= bits:
                hi, best = mid, (mid, c, p)
            else:
                lo = mid
        return best
