"""The compressed matrix formats: IndexMap, HAM and HCSR.

Each is a thin Python class over a native object of compactnn._core; they share one
interface (`CompressedMatrix`), modelled on numpy and scipy.sparse.
"""
from __future__ import annotations

import os

import numpy as np

from .. import _core
from .checks import (
    check_codebook_size,
    check_finite,
    codebook_and_indices,
    finite_matrix,
    float32_input,
    real_array,
)
from .files import atomic_write

FormatError = _core.FormatError
_FLOAT32 = np.dtype(np.float32)


class CompressedMatrix:
    """A read-only 2-D float32 matrix stored compactly; products run on the compact form."""

    __slots__ = ("_c", "__weakref__")
    _build = None  # native constructor from (codebook, indices)
    _registry: dict[int, type] = {}

    def __init__(self, core):
        if not isinstance(core, _core.Matrix):
            raise TypeError(
                f"use {type(self).__name__}.from_dense, .from_codebook or compactnn.load "
                "to create a matrix"
            )
        self._c = core

    def __init_subclass__(cls, format_id: int, **kw):
        super().__init_subclass__(**kw)
        CompressedMatrix._registry[format_id] = cls

    # -- construction -----------------------------------------------------------------
    @classmethod
    def from_dense(cls, W):
        """Store a 2-D matrix that holds few (at most 65536) distinct values.

        The matrix is taken as float32; `to_dense()` gives it back bit for bit.
        """
        return cls.from_codebook(*codebook_and_indices(finite_matrix(W)))

    @classmethod
    def from_codebook(cls, codebook, indices, layout: str = "auto"):
        """The matrix `codebook[indices]`: k float32 values and a 2-D array of indices.
        `layout` (HAM, HCSR): see with_layout."""
        codebook = float32_input(codebook, "codebook")
        if codebook.ndim != 1 or not 1 <= len(codebook) <= 65536:
            if codebook.ndim == 1:
                check_codebook_size(len(codebook), "the codebook")
            raise ValueError(
                f"codebook must be 1-D with 1..65536 values, got shape {codebook.shape}"
            )
        check_finite(codebook, "codebook")
        idx = np.asarray(indices)
        if idx.dtype.kind not in "iub":
            raise TypeError(f"indices must be integers, got dtype {idx.dtype}")
        if idx.ndim != 2:
            raise ValueError(f"indices must be 2-D, got {idx.ndim}-D with shape {idx.shape}")
        if idx.size and (idx.min() < 0 or idx.max() >= len(codebook)):
            bad = int(idx.min()) if idx.min() < 0 else int(idx.max())
            raise ValueError(f"index {bad} is outside the codebook of size {len(codebook)}")
        return cls._from_parts(codebook, np.ascontiguousarray(idx, dtype=np.uint32), layout)

    @classmethod
    def _from_parts(cls, codebook: np.ndarray, idx: np.ndarray, layout: str = "auto"):
        return cls(cls._build(codebook, idx, layout))

    # -- properties -----------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int]:
        return (self._c.rows, self._c.cols)

    @property
    def ndim(self) -> int:
        return 2

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.float32)

    @property
    def size(self) -> int:
        return self._c.rows * self._c.cols

    @property
    def nnz(self) -> int:
        """Entries that are not zero (HCSR: stored entries, as scipy.sparse counts them)."""
        return self._c.nnz

    @property
    def codebook(self) -> np.ndarray:
        return self._c.codebook

    @property
    def k(self) -> int:
        return len(self._c.codebook)

    @property
    def nbytes(self) -> int:
        """Every byte a product needs: streams, offsets, code tables and codebook."""
        return self._c.nbytes

    @property
    def nbytes_dense(self) -> int:
        return 4 * self.size

    @property
    def psi(self) -> float:
        """nbytes over the bytes of the dense float32 matrix (nan for an empty matrix)."""
        return self.nbytes / self.nbytes_dense if self.size else float("nan")

    @property
    def bits_per_weight(self) -> float:
        return 8 * self.nbytes / self.size if self.size else float("nan")

    def info(self) -> dict:
        """Layout details of this format (code sizes, stream bits), for inspection."""
        return dict(self._c.info())

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self.shape[0]}x{self.shape[1]}, k={self.k}, "
            f"nnz={self.nnz}, {self.nbytes} bytes, psi={self.psi:.4f}>"
        )

    # -- products -----------------------------------------------------------------
    def dot(self, x, out=None, threads=None):
        """W @ x for x of shape (n_cols,) -> (n_rows,) or (n_cols, B) -> (n_rows, B).

        `threads`: how many threads split the rows (default: compactnn.set_num_threads,
        all cores unless set); the result does not depend on it."""
        if not (type(x) is np.ndarray and x.dtype == _FLOAT32):  # (skipped for the usual x)
            x = real_array(x, "x")
        n_rows, n_cols = self.shape
        if x.ndim not in (1, 2):
            raise ValueError(f"x must be 1-D or 2-D, got {x.ndim}-D with shape {x.shape}")
        if x.shape[0] != n_cols:
            raise ValueError(
                f"shapes {self.shape} and {x.shape} not aligned: "
                f"{n_cols} (dim 1) != {x.shape[0]} (dim 0)"
            )
        out_shape = (n_rows,) + x.shape[1:]
        if out is None:  # a new output overlaps nothing
            y = np.empty(out_shape, np.float32)
            if not (x.dtype == _FLOAT32 and x.flags.c_contiguous):
                x = float32_input(x, "x")
        else:
            y = _output(out, out_shape)
            x = _input_for(x, y)
        if x.ndim == 1:
            self._c.matvec(x, y, 0 if threads is None else _threads(threads))
        else:
            self._c.matmat(x, y, 0 if threads is None else _threads(threads))
        return y

    def linear(self, X, out=None, threads=None):
        """X @ W.T for batch-major X of shape (B, n_cols) -> (B, n_rows), like
        torch.nn.functional.linear without bias."""
        X = real_array(X, "X")
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D (batch, n_cols), got shape {X.shape}")
        if X.shape[1] != self.shape[1]:
            raise ValueError(
                f"X of shape {X.shape} does not match a weight matrix of shape {self.shape}: "
                f"{X.shape[1]} != {self.shape[1]}"
            )
        y = _output(out, (X.shape[0], self.shape[0]))
        self._c.linear(_input_for(X, y), y, _threads(threads))
        return y

    def __matmul__(self, x):
        if isinstance(x, CompressedMatrix):
            return NotImplemented
        return self.dot(x)

    # -- conversions -----------------------------------------------------------------
    def to_dense(self) -> np.ndarray:
        """The matrix as a float32 array, bit for bit what it was built from."""
        out = np.empty(self.shape, np.float32)
        self._c.to_dense(out)
        return out

    toarray = to_dense

    def to_codebook(self) -> tuple[np.ndarray, np.ndarray]:
        """(codebook, indices) with codebook[indices] == to_dense(); a zero is appended to
        the codebook when the matrix has implicit zeros but no zero value."""
        codebook = self.codebook
        zeros = np.flatnonzero(codebook.view(np.uint32) == 0)
        if len(zeros):
            zero_index = int(zeros[0])
        elif self.nnz < self.size and isinstance(self, HCSR):
            zero_index = len(codebook)
            codebook = np.append(codebook, np.float32(0))
            check_codebook_size(len(codebook), "the matrix with its implicit zero")
        else:
            zero_index = 0
        idx = np.empty(self.shape, np.uint32)
        self._c.to_indices(idx, zero_index)
        return codebook, idx

    def to(self, fmt):
        """This matrix in another format (a class: IndexMap, HAM or HCSR)."""
        if not (isinstance(fmt, type) and issubclass(fmt, CompressedMatrix)):
            raise TypeError(f"to() takes a format class such as compactnn.HAM, got {fmt!r}")
        if type(self) is fmt:
            return self
        return fmt._from_parts(*self.to_codebook())

    # -- files -----------------------------------------------------------------
    def tobytes(self) -> bytes:
        return self._c.tobytes()

    def save(self, path) -> None:
        """Write to `path` atomically: an existing file is replaced only once the new one
        is complete.  The file gets the permissions a new file would (or keeps the old
        file's)."""
        atomic_write(path, [self.tobytes()])

    def __reduce__(self):
        return (frombytes, (self.tobytes(),))

    # Read-only, so copies may share it (a model's deepcopy does not duplicate its weights).
    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self


class IndexMap(CompressedMatrix, format_id=1):
    """Codebook of k float32 values and a packed ceil(log2 k)-bit index per entry."""

    __slots__ = ()
    _build = staticmethod(_core.index_map)

    @classmethod
    def _from_parts(cls, codebook: np.ndarray, idx: np.ndarray, layout: str = "auto"):
        if layout != "auto":
            raise ValueError(f"IndexMap has one layout, not {layout!r}")
        return cls(cls._build(codebook, idx))


class HAM(CompressedMatrix, format_id=2):
    """Huffman Address Map: every entry's codebook index, canonical Huffman coded."""

    __slots__ = ()
    _build = staticmethod(_core.ham)

    @property
    def layout(self) -> str:
        """'lanes' (16 rows decoded side by side with SIMD, all at the same column; chosen
        wherever it serves: at most 128 distinct values in use, fewer than 2^31 columns, codes
        capped at 7 bits costing at most 2% more than the row layout's, and on fewer than
        2^18 entries only if smaller) or 'rows' (one row at a time)."""
        return self._c.info()["layout"]

    def with_layout(self, layout: str):
        """The same matrix in layout 'lanes', 'rows' or 'auto' (the one chosen on
        construction); ValueError where the lane layout cannot hold it."""
        codebook, idx = self.to_codebook()
        return type(self)(_core.ham(codebook, idx, layout))


class HCSR(CompressedMatrix, format_id=3):
    """Sparse HAM in row orientation: stored entries only, one Huffman-coded
    (column gap, value) symbol each."""

    __slots__ = ()

    _build = staticmethod(_core.hcsr_dense)  # entries of +0.0 become implicit

    @classmethod
    def from_scipy(cls, A):
        """From any scipy.sparse matrix or array; duplicates are summed, explicit zeros
        dropped."""
        import scipy.sparse as sp

        if not sp.issparse(A):
            raise TypeError(f"from_scipy needs a scipy.sparse matrix, got {type(A).__name__}")
        if A.ndim != 2:
            raise ValueError(f"from_scipy needs a 2-D matrix, got shape {A.shape}")
        csr = sp.csr_array(A)  # a view of a CSR input's arrays: copied below only if changed
        if not csr.has_canonical_format:
            csr = csr.copy()
            csr.sum_duplicates()
        data = float32_input(csr.data, "the matrix values")
        check_finite(data, "the matrix values")
        indptr, indices = csr.indptr, csr.indices
        keep = data.view(np.uint32) != 0  # explicit +0.0 entries become implicit
        if not keep.all():
            indptr = np.concatenate(([0], np.cumsum(keep)))[indptr]
            data, indices = data[keep], indices[keep]
        del keep
        codebook, vidx = codebook_and_indices(data)
        return cls(
            _core.hcsr(csr.shape[0], csr.shape[1], codebook, indptr.astype(np.uint64),
                       indices.astype(np.uint64), vidx)
        )

    @property
    def layout(self) -> str:
        """'lanes' (16 rows decoded side by side with SIMD; chosen wherever it serves: at most
        128 distinct stored values, fewer than 2^31 columns, column gaps below 2^24, and on
        fewer than 16384 entries only if smaller), 'rows' (one row at a time) or 'fixed'
        (about 13 bits a stored entry, no Huffman code: the fastest products, on request
        only; codebooks of at most 32 values with +0.0 among them, 31 without)."""
        return self._c.info()["layout"]

    def with_layout(self, layout: str):
        """The same matrix in layout 'lanes', 'rows', 'fixed' or 'auto' (the one chosen on
        construction); ValueError where the lane or fixed layout cannot hold it."""
        indptr, cols, vidx = self._c.csr_arrays()
        return type(self)(
            _core.hcsr(
                self.shape[0], self.shape[1], self.codebook, indptr.view(np.uint64),
                cols.view(np.uint64), vidx, layout,
            )
        )

    def to_scipy(self):
        """The matrix as a scipy.sparse.csr_array with float32 data."""
        import scipy.sparse as sp

        indptr, cols, vidx = self._c.csr_arrays()
        return sp.csr_array((self.codebook[vidx], cols, indptr), shape=self.shape)


def form_name(m: CompressedMatrix) -> str:
    """m's format and layout as compress's `format=` takes them: "indexmap", "hcsr-fixed"."""
    name = type(m).__name__.lower()
    return name if isinstance(m, IndexMap) else f"{name}-{m.layout}"


def _threads(threads) -> int:
    """0 (the default) or a positive thread count."""
    if threads is None:
        return 0
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
    return int(min(threads, 1024))


def _output(out, shape):
    if out is None:
        return np.empty(shape, np.float32)
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy array, got {type(out).__name__}")
    if out.dtype != np.float32:
        raise TypeError(f"out must have dtype float32, got {out.dtype}")
    if out.shape != shape:
        raise ValueError(f"out has shape {out.shape}, the result has shape {shape}")
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError("out must be C-contiguous and writeable")
    return out


def _input_for(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """x as contiguous float32, copied when it overlaps the output."""
    x32 = float32_input(x, "x")
    if np.may_share_memory(x32, out):
        x32 = x32.copy()
    return x32


def frombytes(data) -> CompressedMatrix:
    """Rebuild a matrix from `tobytes()` output; FormatError if the bytes are not valid."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"frombytes needs bytes, got {type(data).__name__}")
    core = _core.frombytes(memoryview(data).cast("B"))
    return CompressedMatrix._registry[core.format_id](core)


def load(path) -> CompressedMatrix:
    """Read a matrix written by `save`; FormatError if the file is not valid."""
    with open(os.fspath(path), "rb") as f:
        return frombytes(f.read())
