"""Coverage-guided fuzzing of the compressed PyTorch model loader (compactnn.torch.load) with
atheris: any input must load, or raise FormatError / ValueError; never crash, hang (2 s) or
run out of memory.  The head's checksum is recomputed on each input so that mutations reach
the JSON head and the module tree built from it (the matrices inside are the file loader's,
fuzzed by tools/fuzz.sh).  Seeds: small compressed models saved by compactnn.torch.save.

    python tools/fuzz_models.py [--seconds 60] [--dir build/fuzz_models]

Needs `pip install atheris`.  A finding is written to DIR/crash-* (or timeout-*, oom-*);
the run then fails.
"""
from __future__ import annotations

import argparse
import os
import struct
import sys
import tempfile
import zlib
from pathlib import Path


def write_seeds(out: Path) -> None:
    import torch
    from torch import nn

    import compactnn.torch as cnt

    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    models = {
        "mlp": nn.Sequential(nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 3)),
        "cnn": nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 4 * 4, 3)),
        "conv1d": nn.Sequential(nn.Conv1d(2, 3, 3), nn.Flatten(), nn.Linear(3 * 6, 2)),
    }
    for name, model in models.items():
        cnt.save(model, out / f"{name}-dense.cnnm")
        for prune, k in ((0.0, 4), (0.7, 2)):
            small = cnt.compress_model(model, prune=prune, k=k, progress=False)
            cnt.save(small, out / f"{name}-p{prune}-k{k}.cnnm")


def with_head_crc(data: bytes) -> bytes:
    """The input with the checksum its head would have (layout: compactnn/modelfile.py)."""
    if len(data) < 20 or data[:8] != b"CNNMODEL":
        return data
    head_len = struct.unpack_from("<I", data, 12)[0]
    head = data[20:20 + head_len]
    return data[:16] + struct.pack("<I", zlib.crc32(head)) + data[20:]


def instrument_compactnn(atheris) -> int:
    """Coverage for compactnn's own Python code only (torch's would take minutes to
    instrument), whatever loader imported it (an editable install's hook is not seen by
    atheris.instrument_imports): every function and method of its modules, patched in place."""
    import inspect

    done = set()
    for name, module in list(sys.modules.items()):
        if not name.startswith("compactnn"):
            continue
        for obj in list(vars(module).values()):
            members = vars(obj).values() if inspect.isclass(obj) else [obj]
            for f in members:
                f = getattr(f, "__func__", f)  # static and class methods
                if inspect.isfunction(f) and f.__module__ == name and f not in done:
                    atheris.instrument_func(f)
                    done.add(f)
    return len(done)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--dir", default="build/fuzz_models")
    args = parser.parse_args()

    import atheris

    import compactnn.torch as cnt
    from compactnn import FormatError

    instrument_compactnn(atheris)

    work = Path(args.dir)
    seeds, corpus = work / "seeds", work / "corpus"
    if not seeds.exists():
        write_seeds(seeds)
    corpus.mkdir(parents=True, exist_ok=True)
    fd, path = tempfile.mkstemp(suffix=".cnnm")
    os.close(fd)

    def one(data: bytes) -> None:
        with open(path, "wb") as f:
            f.write(with_head_crc(data))
        try:
            model = cnt.load(path)
        except (FormatError, ValueError):
            return
        sum(t.numel() for t in model.state_dict().values())

    atheris.Setup([sys.argv[0], str(corpus), str(seeds), f"-max_total_time={args.seconds}",
                   "-timeout=2", "-rss_limit_mb=4096", "-max_len=65536",
                   f"-artifact_prefix={work}/", "-print_final_stats=1"], one)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main())
