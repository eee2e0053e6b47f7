"""Seed corpus for the file-loader fuzzer (tools/fuzz.sh): small valid files of every format
and layout, over varied shapes, codebook sizes and densities, one directory per format.

    python tools/fuzz_corpus.py DIR
"""
from __future__ import annotations

import struct
import sys
import zlib
from pathlib import Path

import numpy as np

import compactnn as cn

SHAPES = [(1, 1), (1, 40), (17, 3), (16, 64), (33, 70), (64, 64), (5, 300)]
KS = [1, 2, 5, 16, 128]
DENSITIES = [0.0, 0.05, 0.5, 1.0]


def matrices(rng):
    for rows, cols in SHAPES:
        for k in KS:
            for density in DENSITIES:
                codebook = np.unique(rng.standard_normal(k).astype(np.float32))
                W = rng.choice(codebook, (rows, cols))
                W[rng.random(W.shape) >= density] = 0
                yield f"{rows}x{cols}-k{k}-d{density}", W


def as_version(data: bytes, version: int) -> bytes:
    """A row-layout file as an older `version` writes it: the header's version changed (its
    checksum redone) and the row offsets (the next-to-last section) widened to 8 bytes each
    (version 4 packs them).  Row-layout files of versions 1 and 2 load through the conversion
    to the lane layout."""
    rows = struct.unpack_from("<Q", data, 16)[0]
    nsections = struct.unpack_from("<I", data, 32)[0]
    head = data[:8] + struct.pack("<I", version) + data[12:36]
    out = bytearray(head + struct.pack("<I", zlib.crc32(head)))
    pos = 40
    for i in range(nsections):
        length = struct.unpack_from("<Q", data, pos)[0]
        payload = data[pos + 12 : pos + 12 + length]
        pos += 12 + length
        if i == nsections - 2:
            w = length // (rows + 1)
            payload = b"".join(
                int.from_bytes(payload[j * w : (j + 1) * w], "little").to_bytes(8, "little")
                for j in range(rows + 1)
            )
        out += struct.pack("<QI", len(payload), zlib.crc32(payload)) + payload
    return bytes(out)


def write(out: Path) -> int:
    rng = np.random.default_rng(0)
    count = 0
    for name, W in matrices(rng):
        files = {"index_map": cn.IndexMap.from_dense(W)}
        for fmt, layouts in ((cn.HAM, ("rows", "lanes")), (cn.HCSR, ("rows", "lanes", "fixed"))):
            m = fmt.from_dense(W)
            for layout in layouts:
                try:
                    files[f"{fmt.__name__.lower()}_{layout}"] = m.with_layout(layout)
                except ValueError:  # more values than the lane or fixed layout holds
                    pass
        for kind, m in files.items():
            d = out / kind
            d.mkdir(parents=True, exist_ok=True)
            (d / name).write_bytes(m.tobytes())
            count += 1
            if kind.endswith("_rows"):
                (d / f"{name}-v1").write_bytes(as_version(m.tobytes(), 1))
                count += 1
    return count


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    print(f"{write(Path(sys.argv[1]))} seed files in {sys.argv[1]}")
