"""Command line: `compactnn demo` (also `python -m compactnn demo`)."""
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
    args = parser.parse_args(argv)
    if getattr(args, "k", 0) > 65536:
        parser.error("--k must be at most 65536")
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
