"""`compactnn bench --model FILE`: a compressed model against its dense counterpart."""
from __future__ import annotations

import datetime

import numpy as np

from ..bench.models import format_rows, side_by_side
from ..bench.timing import machine_line
from ..model import file_format
from .inputs import UserError, keras_module, kind, load_torch_whole, torch_module


def bench_model(args) -> int:
    """`compactnn bench --model FILE`: the compressed model against the dense one."""
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

            small = cnt.load(args.model)
            model = cnt.decompress(small)
            shape = shape or file_format.read_meta(args.model)[0].get("input_shape")
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
          f"{machine_line()}")
    print(f"input shape {tuple(shape)}; dense {sizes[0]:,} bytes, compressed {sizes[1]:,} bytes "
          f"(psi {sizes[1] / sizes[0]:.4f}); medians of 5 rounds, dense and compressed in turn\n")
    print(format_rows(rows))
    return 0
