"""Tables and plots of a sweep's results file, regenerated from that file alone.

The table has the paper's form: per model and dataset and per method (quantizer, with or
without pruning, with or without retraining), the smallest whole-network psi reached with
no loss against the dense baseline, the FC and conv psi of that point, and the best
performance any point of the method reached.  No loss: accuracy at most 0.3 points below the
baseline's, or test MSE at most 2% above it and concordance index at most 0.01 below it.
A regression table states its split and, beside the baseline, the MSE of predicting the
training mean, which a baseline that learned anything beats.
"""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from .datasets import KIBA_SPLITS
from .sweep import KIBA, read_results

ACCURACY_LOSS = 0.3  # points
MSE_RISE = 0.02  # relative
CI_LOSS = 0.01


def method(point: dict) -> str:
    pruning = " + gradual pruning" if point.get("prune_steps", 1) > 1 else " + pruning"
    pruned = point["prune"] > 0 or (point.get("prune_conv") or 0) > 0
    name = point["quantize"] + (pruning if pruned else "")
    return name + (" + retraining" if point["retrain"] else "")


def no_loss(record: dict) -> bool:
    m, b = record["metrics"], record["baseline"]
    if "accuracy" in m:
        return m["accuracy"] >= b["accuracy"] - ACCURACY_LOSS
    return m["mse"] <= b["mse"] * (1 + MSE_RISE) and m["ci"] >= b["ci"] - CI_LOSS


def _score(record: dict) -> float:
    """Higher is better: accuracy, or minus the MSE."""
    m = record["metrics"]
    return m["accuracy"] if "accuracy" in m else -m["mse"]


def _metric(record: dict, metrics: dict | None = None) -> str:
    m = record["metrics"] if metrics is None else metrics
    return f"{m['accuracy']:.2f}%" if "accuracy" in m else f"MSE {m['mse']:.4f}, CI {m['ci']:.3f}"


def _point(p: dict) -> str:
    """prune (conv layers' own fraction), scope, k FC, k conv."""
    conv = "" if p.get("prune_conv") is None else f" (conv {p['prune_conv']:g})"
    return f"{p['prune']:g}{conv}, {p.get('prune_scope', 'layer')}, {p['k_fc']}, {p['k_conv']}"


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.2f}%"


def _groups(records: list[dict]) -> list[tuple[str, str, list[dict]]]:
    """The records per model (with its [model] arguments: two widths of one architecture are
    two models) and dataset, as (title, file stem, records)."""
    groups = defaultdict(list)
    for r in records:
        args = json.dumps(r.get("model_args") or {}, sort_keys=True)
        groups[(r["model"], args, r["dataset"])].append(r)
    out = []
    for (model, args, dataset), rs in sorted(groups.items()):
        args = json.loads(args)
        name = model + (" (" + ", ".join(f"{k}={v}" for k, v in args.items()) + ")" if args else "")
        stem = "-".join([model] + [k + "_".join(map(str, v if isinstance(v, list) else [v]))
                                   for k, v in args.items()] + [dataset])
        out.append((f"{name} on {dataset}", stem, rs))
    return out


def _baseline(record: dict, n: int) -> str:
    """The line that introduces a table: the split (of a KIBA dataset), the baseline and,
    for a regression, the MSE of predicting the training mean."""
    b = record["baseline"]
    split = KIBA.get(record["dataset"])
    text = f"Split: {split}, {KIBA_SPLITS[split]}.  " if split else ""
    text += f"Dense baseline: {_metric(record, b)}"
    if "mean_mse" in b:
        text += f" (predicting the training mean: MSE {b['mean_mse']:.4f})"
    text += f"; {n} points."
    if b.get("mse", 0) >= b.get("mean_mse", float("inf")):
        text += ("  The baseline does no better than predicting the training mean: a point "
                 "without loss against it keeps no skill.")
    return text


def table(records: list[dict]) -> str:
    """The markdown results table."""
    lines = []
    for title, _, rs in _groups(records):
        lines += [f"### {title}", "", _baseline(rs[0], len(rs)), "",
                  "| method | best psi, no loss | FC psi | conv psi | its performance | "
                  "its point (prune, scope, k FC, k conv) | best performance | points |",
                  "|---|---:|---:|---:|---|---|---|---:|"]
        by_method = defaultdict(list)
        for r in rs:
            by_method[method(r["point"])].append(r)
        for name, ms in sorted(by_method.items()):
            ok = [r for r in ms if no_loss(r)]
            best = max(ms, key=_score)
            if ok:
                s = min(ok, key=lambda r: r["psi"]["total"])
                p = s["point"]
                cells = [_pct(s["psi"]["total"]), _pct(s["psi"]["fc"]), _pct(s["psi"]["conv"]),
                         _metric(s), _point(p)]
            else:
                cells = ["none", "", "", "", ""]
            lines.append(f"| {name} | " + " | ".join(cells) +
                         f" | {_metric(best)} | {len(ms)} |")
        lines.append("")
    return "\n".join(lines)


def plots(records: list[dict], out_dir) -> list[Path]:
    """PNG plots per model and dataset: psi against the metric per quantizer, and each
    layer's product time against its psi per format.  Returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for title, stem, rs in _groups(records):
        classification = "accuracy" in rs[0]["metrics"]
        fig, ax = plt.subplots(figsize=(6, 4))
        for i, q in enumerate(sorted({r["point"]["quantize"] for r in rs})):
            for retrained, marker in ((False, "x"), (True, "o")):
                sel = [r for r in rs
                       if r["point"]["quantize"] == q and r["point"]["retrain"] == retrained]
                if sel:
                    ys = [r["metrics"]["accuracy" if classification else "mse"] for r in sel]
                    ax.plot([100 * r["psi"]["total"] for r in sel], ys, marker, color=f"C{i}",
                            alpha=0.7, label=q + (", retrained" if retrained else ""))
        base = rs[0]["baseline"]["accuracy" if classification else "mse"]
        ax.axhline(base, color="gray", ls="--", label="dense")
        if "mean_mse" in rs[0]["baseline"]:
            ax.axhline(rs[0]["baseline"]["mean_mse"], color="gray", ls=":",
                       label="training mean")
        _log(ax, "x")
        ax.set_xlabel("psi of the whole network (%)")
        ax.set_ylabel("test accuracy (%)" if classification else "test MSE")
        ax.set_title(title)
        ax.legend(fontsize="small")
        written.append(_save(fig, out_dir / f"{stem}-psi.png"))
        fig, ax = plt.subplots(figsize=(6, 4))
        by_format = defaultdict(list)
        for r in rs:
            for layer in r["layers"]:
                if "us" in layer:
                    by_format[layer["format"]].append((100 * layer["psi"], layer["us"]))
        for fmt, xy in sorted(by_format.items()):
            ax.plot(*zip(*xy), "o", label=fmt, alpha=0.6)
        _log(ax, "x")
        _log(ax, "y")
        ax.set_xlabel("psi of the layer (%)")
        ax.set_ylabel("matrix-vector product, 1 thread (us)")
        ax.set_title(f"{title}: layers")
        ax.legend()
        written.append(_save(fig, out_dir / f"{stem}-time.png"))
    return written


def _log(ax, which: str) -> None:
    """A log scale on axis `which` ("x" or "y") labelled 1, 2, 5, 10, ... (not 2 x 10^0)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    getattr(ax, f"set_{which}scale")("log")
    axis = getattr(ax, f"{which}axis")
    axis.set_major_locator(LogLocator(subs=(1, 2, 5)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_pages(results, out_dir) -> str:
    """Write results.md and the plots into out_dir; returns the table."""
    records = read_results(results)
    if not records:
        raise ValueError(f"{results}: no results")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    text = table(records)
    files = plots(records, out_dir)
    (out_dir / "results.md").write_text(
        text + "\n" + "\n".join(f"![{p.stem}]({p.name})" for p in files) + "\n")
    return text
