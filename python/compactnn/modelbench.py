"""Latency of a compressed model against its dense counterpart, measured side by side."""
from __future__ import annotations

from typing import Callable

import numpy as np

from .bench import median_time


def side_by_side(dense: Callable, compressed: Callable, make_input: Callable,
                 batches=(1, 64), rounds: int = 5, budget: float = 0.3) -> list[dict]:
    """For each batch size: the median over `rounds` of each model's median time, the two
    measured in turn (so slow phases of a noisy machine hit both), and the median of the
    per-round ratios compressed / dense."""
    rows = []
    for b in batches:
        x = make_input(b)
        dense(x), compressed(x)  # warm up: first calls allocate and start threads
        t_dense, t_ours, ratios = [], [], []
        for _ in range(rounds):
            td = median_time(lambda: dense(x), budget=budget)
            tc = median_time(lambda: compressed(x), budget=budget)
            t_dense.append(td)
            t_ours.append(tc)
            ratios.append(tc / td)
        rows.append(dict(batch=b, dense_ms=1e3 * float(np.median(t_dense)),
                         ours_ms=1e3 * float(np.median(t_ours)),
                         ratio=float(np.median(ratios))))
    return rows


def format_rows(rows: list[dict]) -> str:
    lines = ["| batch | dense ms | compressed ms | compressed / dense |", "|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['batch']} | {r['dense_ms']:.3f} | {r['ours_ms']:.3f} | "
                     f"{r['ratio']:.3g}x |")
    return "\n".join(lines)


def bench_model(args) -> int:
    """`compactnn bench --model FILE`: the compressed model against the dense one."""
    import datetime

    from . import bench
    from .model_files import UserError, keras_module, kind, load_torch_whole, torch_module

    what = kind(args.model)
    options = dict(prune=args.prune, quantize=None if args.quantize == "none" else args.quantize,
                   k=args.k, format=args.format,
                   prune_scope="global" if args.use_global else "layer", progress=False)
    shape = args.input_shape
    if what == "keras":
        cnk = keras_module()
        model = cnk.load(args.model)
        small = cnk.compress_model(model, **options)
        shape = shape or tuple(model.input_shape[1:])
        if None in shape:
            raise UserError("the model's input has free sizes: give --input-shape")
        sizes = cnk.model_nbytes(model), cnk.model_nbytes(small)
        make = lambda b: np.random.default_rng(0).standard_normal((b, *shape)).astype("float32")
        dense_run, small_run = model, small
    elif what in ("torch", "model"):
        if what == "torch":
            cnt, model = load_torch_whole(args.model)
            small = cnt.compress_model(model, **options)
        else:
            cnt = torch_module()
            from . import modelfile

            small = cnt.load(args.model)
            model = cnt.decompress(small)
            shape = shape or modelfile.read_meta(args.model)[0].get("input_shape")
        if not shape:
            raise UserError("give --input-shape (one input's shape, e.g. 1,28,28)")
        import torch

        sizes = cnt.model_nbytes(model), cnt.model_nbytes(small)
        make = lambda b: torch.randn(b, *shape, generator=torch.Generator().manual_seed(0))

        def inference(m):
            def run(x):
                with torch.inference_mode():
                    return m(x)
            return run

        dense_run, small_run = inference(model), inference(small)
    else:
        raise UserError(f"{args.model} is a single compressed matrix; --model takes a model")
    rows = side_by_side(dense_run, small_run, make)
    print(f"compactnn bench --model {args.model}, {datetime.date.today()}: "
          f"{bench.machine_line()}")
    print(f"input shape {tuple(shape)}; dense {sizes[0]:,} bytes, compressed {sizes[1]:,} bytes "
          f"(psi {sizes[1] / sizes[0]:.4f}); medians of 5 rounds, dense and compressed in turn\n")
    print(format_rows(rows))
    return 0
