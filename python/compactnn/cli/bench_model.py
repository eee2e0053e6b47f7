"""`compactnn bench --model FILE`: a compressed model against its dense counterpart."""
from __future__ import annotations

import datetime

import numpy as np

from ..bench.models import format_layer_rows, format_rows, side_by_side, torch_layer_times
from ..bench.timing import machine_line
from ..model import file_format
from .inputs import UserError, keras_module, kind, load_torch_whole, torch_module


def bench_model(args) -> int:
    """`compactnn bench --model FILE`: the compressed model against the dense one."""
    what = kind(args.model)
    options = dict(prune=args.prune, quantize=None if args.quantize == "none" else args.quantize,
                   k=args.k, format=args.format, objective=args.objective,
                   prune_scope="global" if args.use_global else "layer", progress=False)
    shape = args.input_shape
    if what == "keras":
        cnk = keras_module()
        model = cnk.load(args.model)
        small = cnk.compress_model(model, **options)
        expected = tuple(model.input_shape[1:])
        shape = shape or expected
        if None in shape:
            raise UserError("the model's input has free sizes: give --input-shape")
        if len(shape) != len(expected) or any(e not in (None, s) for e, s in zip(expected, shape)):
            raise UserError(f"--input-shape {_dims(shape)} does not fit the model, which takes "
                            f"inputs of shape {_dims(expected)} (batch left out)")
        sizes = cnk.model_nbytes(model), cnk.model_nbytes(small)
        make = lambda b: np.random.default_rng(0).standard_normal((b, *shape)).astype("float32")
        dense_run, small_run = model, small
        layer_times = None
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
        layer_times = lambda: torch_layer_times(model, small, make)
        try:
            dense_run(make(1))
        except (RuntimeError, ValueError, IndexError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise UserError(f"the model does not take inputs of shape {_dims(shape)} (batch left "
                            f"out): {_expected_torch_input(model)}; PyTorch said: {first}") from None
    else:
        raise UserError(f"{args.model} is a single compressed matrix; --model takes a model")
    rows = side_by_side(dense_run, small_run, make)
    print(f"compactnn bench --model {args.model}, {datetime.date.today()}: "
          f"{machine_line()}")
    print(f"input shape {tuple(shape)}; dense {sizes[0]:,} bytes, compressed {sizes[1]:,} bytes "
          f"(psi {sizes[1] / sizes[0]:.4f}); medians of 5 rounds, dense and compressed in turn\n")
    print(format_rows(rows))
    if layer_times is not None:
        print("\nPer layer, each alone on the input it gets in the dense model (medians):\n")
        print(format_layer_rows(layer_times()))
    return 0


def _dims(shape) -> str:
    return ",".join("?" if s is None else str(s) for s in shape)


def _expected_torch_input(model) -> str:
    """What the model's first weighted layer takes, as a hint for --input-shape."""
    import torch.nn as nn

    for mod in model.modules():
        if isinstance(mod, nn.Conv2d):
            return f"its first layer is a Conv2d of {mod.in_channels} input channels " \
                   f"(--input-shape {mod.in_channels},H,W)"
        if isinstance(mod, nn.Conv1d):
            return f"its first layer is a Conv1d of {mod.in_channels} input channels " \
                   f"(--input-shape {mod.in_channels},L)"
        if isinstance(mod, nn.Linear):
            return f"its first layer is a Linear of {mod.in_features} inputs"
        if hasattr(mod, "in_channels") and hasattr(mod, "kernel_size"):  # compressed conv
            return f"its first layer is a convolution of {mod.in_channels} input channels"
        if hasattr(mod, "in_features"):
            return f"its first layer takes {mod.in_features} inputs"
    return "see the model's first layer"
