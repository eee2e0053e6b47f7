"""The model file: named compressed matrices and tensors with a JSON description.

Layout (little-endian):

    magic     8 bytes  b"CNNMODEL"
    version   u32      2 (1: files without a graph, still read)
    head_len  u32      bytes of the JSON head
    head_crc  u32      CRC-32 of the JSON head
    head      JSON     {"meta": {...}, "entries": [entry, ...]}; meta may hold "graph", the
                       network for compactnn.runtime (runtime/graph.py), since version 2
    data      the entries' bytes, back to back in the order listed

entry: {"name", "kind": "matrix" | "tensor", "offset", "nbytes", "crc32"} and, for tensors,
"dtype" and "shape".  Matrices are `CompressedMatrix.tobytes()` (their own container,
checked again by `frombytes`).  Nothing in the file is code: reading it never imports or
runs anything named in it.  A file that does not follow this layout exactly raises
FormatError, and nothing bigger than the file itself is allocated on its word.
"""
from __future__ import annotations

import json
import mmap
import os
import struct
import zlib

import numpy as np

from ..matrix.files import atomic_write
from ..matrix.formats import CompressedMatrix, FormatError, frombytes

MAGIC = b"CNNMODEL"
VERSION = 2
READABLE = (1, 2)
PREFIX = struct.Struct("<8sIII")
MAX_HEAD = 64 << 20
DTYPES = ("float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool")


def write(path, meta: dict, matrices: dict[str, CompressedMatrix],
          tensors: dict[str, np.ndarray]) -> None:
    """Write atomically: an existing file is replaced only once the new one is complete."""
    entries, blobs, offset = [], [], 0
    for name, m in matrices.items():
        blob = m.tobytes()
        entries.append(dict(name=name, kind="matrix"))
        blobs.append(blob)
    for name, t in tensors.items():
        t = np.asarray(t)
        t = t if t.flags.c_contiguous else t.copy()  # (ascontiguousarray makes 0-d 1-d)
        if t.dtype.name not in DTYPES:
            raise TypeError(f"tensor {name!r} has dtype {t.dtype}; the model file holds "
                            f"{', '.join(DTYPES)}")
        entries.append(dict(name=name, kind="tensor", dtype=t.dtype.name, shape=list(t.shape)))
        blobs.append(t.tobytes())
    if len({e["name"] for e in entries}) != len(entries):
        raise ValueError("matrix and tensor names must be distinct")
    for e, blob in zip(entries, blobs):
        e.update(offset=offset, nbytes=len(blob), crc32=zlib.crc32(blob))
        offset += len(blob)
    head = json.dumps(dict(meta=meta, entries=entries), separators=(",", ":")).encode()
    prefix = PREFIX.pack(MAGIC, VERSION, len(head), zlib.crc32(head))
    atomic_write(path, [prefix, head, *blobs])


def read(path) -> tuple[dict, dict[str, CompressedMatrix], dict[str, np.ndarray]]:
    """(meta, matrices, tensors) from a file written by `write`; FormatError if invalid.
    The data is mapped, not read into memory: each entry is copied once, into what it
    becomes, so loading adds no more to the resident set than the model's own bytes."""
    with open(os.fspath(path), "rb") as f:
        size = os.fstat(f.fileno()).st_size
        meta, entries, start = _read_head(f, size)
        if start == size:  # nothing to map
            return meta, {}, {}
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            view = memoryview(mapped)
            try:
                matrices, tensors = _entries(view, entries, start)
            finally:
                view.release()
    return meta, matrices, tensors


def _entries(view: memoryview, entries: list[dict], start: int):
    matrices, tensors = {}, {}
    for e in entries:
        name, blob = e["name"], view[start + e["offset"]:start + e["offset"] + e["nbytes"]]
        try:
            if e["kind"] == "tensor":
                array = np.empty(e["shape"], e["dtype"])
                copy = array.reshape(-1).view(np.uint8)
                copy[:] = blob
                ok = zlib.crc32(copy) == e["crc32"]  # checked on the copy it keeps
            else:
                ok = zlib.crc32(blob) == e["crc32"]
            if not ok:
                raise FormatError(f"model file: entry {name!r} fails its checksum")
            if e["kind"] == "tensor":
                tensors[name] = array
            else:
                try:
                    matrices[name] = frombytes(blob)
                except FormatError as err:
                    raise FormatError(f"model file: matrix {name!r}: {err}") from None
        finally:
            blob.release()
    return matrices, tensors


def read_meta(path) -> tuple[dict, list[dict]]:
    """The JSON head only: (meta, entries), checked as `read` checks it."""
    with open(os.fspath(path), "rb") as f:
        meta, entries, _ = _read_head(f, os.fstat(f.fileno()).st_size)
    return meta, entries


def _read_head(f, size: int):
    prefix = f.read(PREFIX.size)
    if len(prefix) < PREFIX.size or prefix[:8] != MAGIC:
        raise FormatError("not a compactnn model file (bad magic)")
    _, version, head_len, head_crc = PREFIX.unpack(prefix)
    if version not in READABLE:
        raise FormatError(f"model file version {version} is not supported (this reads "
                          f"{', '.join(map(str, READABLE))})")
    if head_len > min(MAX_HEAD, size - PREFIX.size):
        raise FormatError(f"model file head of {head_len} bytes does not fit the file")
    head = f.read(head_len)
    if zlib.crc32(head) != head_crc:
        raise FormatError("model file head fails its checksum")
    try:
        doc = json.loads(head.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise FormatError(f"model file head is not valid JSON: {e}") from None
    except RecursionError:
        raise FormatError("model file head is nested too deeply") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("meta"), dict) \
            or not isinstance(doc.get("entries"), list):
        raise FormatError("model file head lacks its meta and entries")
    data_start = PREFIX.size + head_len
    entries = [_check_entry(e, i) for i, e in enumerate(doc["entries"])]
    end = 0
    for e in entries:
        if e["offset"] != end:
            raise FormatError(f"model file: entry {e['name']!r} does not follow the one "
                              "before it")
        end += e["nbytes"]
    if data_start + end != size:
        raise FormatError(f"model file holds {size} bytes, its head describes "
                          f"{data_start + end}")
    if len({e["name"] for e in entries}) != len(entries):
        raise FormatError("model file: entry names repeat")
    return doc["meta"], entries, data_start


def _check_entry(e, i: int) -> dict:
    def is_count(v):
        return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 1 << 62

    ok = isinstance(e, dict) and isinstance(e.get("name"), str) \
        and e.get("kind") in ("matrix", "tensor") \
        and all(is_count(e.get(key)) for key in ("offset", "nbytes")) \
        and is_count(e.get("crc32")) and e["crc32"] < 1 << 32
    if ok and e["kind"] == "tensor":
        shape = e.get("shape")
        ok = e.get("dtype") in DTYPES and isinstance(shape, list) and len(shape) <= 16 \
            and all(is_count(s) for s in shape) \
            and int(np.prod(shape, dtype=object)) * np.dtype(e["dtype"]).itemsize == e["nbytes"]
    if not ok:
        raise FormatError(f"model file: entry {i} is malformed")
    return e
