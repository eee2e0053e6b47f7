"""Coverage-guided fuzzing of the compressed-model loaders with atheris: any input must load,
or raise FormatError / ValueError; never crash, hang (2 s; 10 s for Keras) or run out of
memory.  Only compactnn's own Python code is instrumented.

--loader torch: compactnn.torch.load on a model file; the head's checksum is recomputed on
each input so that mutations reach the JSON head and the module tree built from it (the
matrices inside are the file loader's, fuzzed by tools/fuzz.sh).  Seeds: small compressed
models saved by compactnn.torch.save.
--loader runtime: compactnn.runtime.load on a model file with a graph (head checksum
recomputed as for torch), then a forward pass at batch 1 and 3 on zeros: mutations reach the
graph's checks and the native executor's.  Seeds: small models saved with their graphs.
--loader keras: compactnn.keras.load on a `.keras` archive whose config.json is the input and
whose weights are a saved compressed model's, so that mutations reach the compressed layers'
configuration and their checks against the stored matrices.

    python tools/fuzz_models.py [--loader torch|runtime|keras] [--seconds 60] [--dir build/fuzz_LOADER]

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

import numpy as np


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


def write_graph_seeds(out: Path) -> None:
    import torch
    from torch import nn

    import compactnn.torch as cnt

    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    models = {
        "mlp": (nn.Sequential(nn.Linear(12, 8), nn.GELU(), nn.Linear(8, 3), nn.Softmax(1)),
                (12,)),
        "cnn": (nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), nn.ReLU(),
                              nn.MaxPool2d(2), nn.AvgPool2d(2, ceil_mode=True),
                              nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(8, 3)),
                (1, 8, 8)),
        "conv1d": (nn.Sequential(nn.Conv1d(2, 3, 3), nn.Tanh(), nn.Flatten(),
                                 nn.Linear(3 * 6, 2), nn.Sigmoid()), (2, 8)),
    }
    class Pair(nn.Module):  # two index inputs: embeddings, a transpose, a max, a concatenation
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Embedding(9, 3), nn.Embedding(7, 3)
            self.conv, self.fc = nn.Conv1d(3, 4, 2), nn.Linear(4 + 3, 2)

        def forward(self, pair):
            a = torch.amax(self.conv(self.a(pair[0]).transpose(1, 2)), dim=2)
            return self.fc(torch.cat([a, self.b(pair[1]).mean(dim=1)], dim=1))

    models["pair"] = (Pair(), None)
    for name, (model, shape) in models.items():
        model.eval()
        x = torch.randn(2, *shape) if shape else (torch.randint(0, 9, (2, 5)),
                                                  torch.randint(0, 7, (2, 4)))
        cnt.save(model, out / f"{name}-dense.cnnm", example_input=x)
        small = cnt.compress_model(model, prune=0.5, k=4, progress=False).eval()
        cnt.save(small, out / f"{name}-small.cnnm", example_input=x)


def write_keras_seed(template: Path, seeds: Path) -> None:
    """A compressed Keras model saved as `template`; its config.json is the seed."""
    import zipfile

    import keras

    import compactnn.keras as cnk

    template.parent.mkdir(parents=True, exist_ok=True)
    seeds.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Conv2D(2, 3),
                              keras.layers.Flatten(), keras.layers.Dense(3, activation="relu"),
                              keras.layers.Dense(2)])
    cnk.compress_model(model, prune=0.5, k=4, progress=False).save(template)
    with zipfile.ZipFile(template) as z:
        (seeds / "config.json").write_bytes(z.read("config.json"))


def keras_writer(template: Path):
    """A function writing `template`'s archive to a path with another config.json (the
    template's members are read once, not per input)."""
    import zipfile

    with zipfile.ZipFile(template) as z:
        members = [(item, z.read(item)) for item in z.infolist()]

    def write(config: bytes, path: str) -> None:
        with zipfile.ZipFile(path, "w") as dst:
            for item, data in members:
                dst.writestr(item, config if item.filename == "config.json" else data)
    return write


def with_head_crc(data: bytes) -> bytes:
    """The input with the checksum its head would have (layout: compactnn/model/file_format.py)."""
    from compactnn.model.file_format import MAGIC, PREFIX

    if len(data) < PREFIX.size or data[:len(MAGIC)] != MAGIC:
        return data
    _, _, head_len, _ = PREFIX.unpack_from(data)
    head = data[PREFIX.size:PREFIX.size + head_len]
    return data[:PREFIX.size - 4] + struct.pack("<I", zlib.crc32(head)) + data[PREFIX.size:]


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
    parser.add_argument("--loader", choices=("torch", "runtime", "keras"), default="torch")
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--dir", help="default build/fuzz_LOADER")
    args = parser.parse_args()
    if args.loader == "keras":
        os.environ.setdefault("KERAS_BACKEND", "torch")

    import atheris

    import compactnn.runtime as runtime
    import compactnn.torch as cnt
    from compactnn.runtime.plan import Plan
    from compactnn import FormatError

    if args.loader == "keras":
        import compactnn.keras as cnk
    instrument_compactnn(atheris)

    work = Path(args.dir or f"build/fuzz_{args.loader}")
    seeds, corpus = work / "seeds", work / "corpus"
    template = work / "template" / "model.keras"
    if not seeds.exists():
        if args.loader == "keras":
            write_keras_seed(template, seeds)
        elif args.loader == "runtime":
            write_graph_seeds(seeds)
        else:
            write_seeds(seeds)
    write_keras = keras_writer(template) if args.loader == "keras" else None
    corpus.mkdir(parents=True, exist_ok=True)
    fd, path = tempfile.mkstemp(suffix=".keras" if args.loader == "keras" else ".cnnm")
    os.close(fd)

    def one(data: bytes) -> None:
        if args.loader == "keras":
            write_keras(data, path)
        else:
            with open(path, "wb") as f:
                f.write(with_head_crc(data))
        try:
            if args.loader == "runtime":
                rt = runtime.load(path)
                if Plan(rt.graph, 3).arena_size <= 1 << 24:  # what a graph may ask: 1 GiB a value
                    for batch in (1, 3):
                        rt([np.zeros((batch, *shape), dtype) for shape, dtype in rt.inputs])
                return
            model = cnt.load(path) if args.loader == "torch" else cnk.load(path)
        except (FormatError, ValueError):
            return
        if args.loader == "torch":
            sum(t.numel() for t in model.state_dict().values())
        else:
            sum(int(np.prod(w.shape)) for w in model.weights)

    atheris.Setup([sys.argv[0], str(corpus), str(seeds), f"-max_total_time={args.seconds}",
                   f"-timeout={10 if args.loader == 'keras' else 2}", "-rss_limit_mb=4096",
                   "-max_len=65536",
                   f"-artifact_prefix={work}/", "-print_final_stats=1"], one)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main())
