"""Compression sweeps: a grid of (pruning, quantizer, k for FC and conv layers, retraining)
points over one trained model, each compressed, optionally fine-tuned and evaluated.

Every finished point is appended to a JSON-lines results file at once (flushed and synced),
so a crash loses nothing done and a rerun skips the points already there.  Points run in
parallel processes on this machine, or as Ray tasks (`ray=`: an address, or "local" to start
Ray here).  The baseline is trained once, seeded, and cached on disk.  The configuration is
a TOML file (see `load_config`); `compactnn report` turns the results into tables and plots.
"""
from __future__ import annotations

import concurrent.futures as cf
import datetime
import hashlib
import inspect
import itertools
import json
import multiprocessing
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tomllib

from .._progress import bar

MODELS = ("lenet_300_100", "lenet5", "vgg_style", "deepdta")
# The KIBA sample's datasets and their splits (datasets.kiba_sample): the files' own cold
# split, and a seeded random (warm) split of the same 5,000 pairs.
KIBA = {"kiba_sample": "cold", "kiba_sample_warm": "warm"}
DATASETS = ("fashion_mnist", "mnist_5k", *KIBA)
QUANTIZERS = ("cws", "pws", "uq", "ecsq")
GRID_KEYS = {"prune": float, "prune_conv": float, "prune_scope": str, "prune_steps": int,
             "quantize": str, "k_fc": int, "k_conv": int, "retrain": bool, "objective": str}
SWEEP_DEFAULTS = {"model": None, "dataset": None, "seed": 0, "epochs": 10, "lr": 1e-3,
                  "batch_size": 64, "n_train": 0, "n_test": 0,
                  "cache": "~/.cache/compactnn/baselines", "out": None}
FINETUNE_DEFAULTS = {"epochs": 2, "lr": 1e-4, "retrain": "codebook", "batch_size": 64,
                     "prune_epochs": 2, "prune_lr": 1e-3}


# -- configuration --------------------------------------------------------------------------
def load_config(path) -> dict:
    """A sweep's TOML configuration, checked and completed with defaults:

        [sweep]      model, dataset (required); seed, epochs, lr, batch_size (the baseline's
                     training), n_train / n_test (0: all), cache (baselines), out (results)
        [model]      keyword arguments of the zoo's constructor
        [grid]       lists: prune, prune_conv (the conv layers' own fraction; without it
                     they take `prune`), prune_scope ("layer": each layer's fraction;
                     "global": one threshold over the layers of one fraction), prune_steps
                     (1: at once; more: gradual pruning with training between the steps),
                     quantize (cws, pws, uq, ecsq), k_fc, k_conv, retrain, objective
                     ("small", the default here: sweeps measure size; or "fast")
        [finetune]   epochs, lr, retrain ("codebook" or "weights"), batch_size; prune_epochs,
                     prune_lr: training after each step of gradual pruning

    ValueError names the first thing wrong."""
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"{path}: not valid TOML: {e}") from None
    unknown = set(raw) - {"sweep", "model", "grid", "finetune"}
    if unknown:
        raise ValueError(f"{path}: unknown tables {sorted(unknown)}")
    cfg = {"sweep": _section(raw, "sweep", SWEEP_DEFAULTS),
           "model": dict(raw.get("model", {})),
           "finetune": _section(raw, "finetune", FINETUNE_DEFAULTS)}
    s = cfg["sweep"]
    if s["model"] not in MODELS:
        raise ValueError(f"[sweep] model must be one of {MODELS}, got {s['model']!r}")
    if s["dataset"] not in DATASETS:
        raise ValueError(f"[sweep] dataset must be one of {DATASETS}, got {s['dataset']!r}")
    if (s["model"] == "deepdta") != (s["dataset"] in KIBA):
        raise ValueError(f"deepdta runs on {' or '.join(KIBA)}, the image models on the "
                         "image datasets")
    grid = raw.get("grid", {})
    unknown = set(grid) - set(GRID_KEYS)
    if unknown:
        raise ValueError(f"[grid] unknown keys {sorted(unknown)}; known: {sorted(GRID_KEYS)}")
    cfg["grid"] = {}
    defaults = {"prune": [0.0], "prune_conv": [None], "prune_scope": ["layer"],
                "prune_steps": [1], "quantize": ["cws"], "k_fc": [32], "k_conv": [32],
                "retrain": [False], "objective": ["small"]}
    for key, typ in GRID_KEYS.items():
        if key not in grid:
            cfg["grid"][key] = defaults[key]
            continue
        values = grid[key]
        if not isinstance(values, list) or not values:
            raise ValueError(f"[grid] {key} must be a non-empty list, got {values!r}")
        for v in values:
            ok = isinstance(v, typ) and not (typ is not bool and isinstance(v, bool))
            if typ is float:
                ok = isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < 1
            if not ok:
                raise ValueError(f"[grid] {key} holds {v!r}, not a valid {typ.__name__}")
        cfg["grid"][key] = [float(v) if typ is float else v for v in values]
    if set(cfg["grid"]["objective"]) - {"small", "fast"}:
        raise ValueError("[grid] objective must hold 'small' or 'fast'")
    if set(cfg["grid"]["prune_scope"]) - {"layer", "global"}:
        raise ValueError("[grid] prune_scope must hold 'layer' or 'global'")
    bad = set(cfg["grid"]["quantize"]) - set(QUANTIZERS)
    if bad:
        raise ValueError(f"[grid] quantize must be among {QUANTIZERS}, got {sorted(bad)}")
    if any(n < 1 for n in cfg["grid"]["prune_steps"]):
        raise ValueError("[grid] prune_steps must be at least 1")
    if any(k < 2 or k > 65536 for k in cfg["grid"]["k_fc"] + cfg["grid"]["k_conv"]):
        raise ValueError("[grid] k_fc and k_conv must lie in 2..65536")
    if cfg["finetune"]["retrain"] not in ("codebook", "weights"):
        raise ValueError("[finetune] retrain must be 'codebook' or 'weights'")
    return cfg


def _section(raw: dict, name: str, defaults: dict) -> dict:
    got = raw.get(name, {})
    unknown = set(got) - set(defaults)
    if unknown:
        raise ValueError(f"[{name}] unknown keys {sorted(unknown)}; known: {sorted(defaults)}")
    return {**defaults, **got}


def points(cfg: dict) -> list[dict]:
    """The grid's points in a fixed order (retraining only makes sense with a quantizer or
    pruning, which every point has)."""
    keys = list(GRID_KEYS)
    return [dict(zip(keys, values)) for values in itertools.product(*(cfg["grid"][k] for k in keys))]


def point_key(point: dict) -> str:
    # Points keep the keys they had before prune_steps, prune_conv and objective existed, so
    # that results files written then still resume.
    return json.dumps({k: v for k, v in point.items()
                       if (k, v) not in (("prune_steps", 1), ("prune_conv", None),
                                         ("objective", "small"))},
                      sort_keys=True)


# -- data, models, baselines ----------------------------------------------------------------
@dataclass
class Task:
    kind: str  # "classification" or "regression"
    train: tuple  # (inputs, targets); inputs a tensor or a tuple of tensors
    test: tuple


_tasks: dict[str, Task] = {}  # per process: a worker loads its data once for all its points


def load_task(cfg: dict) -> Task:
    key = json.dumps(cfg["sweep"], sort_keys=True)
    if key not in _tasks:
        _tasks[key] = _read_task(cfg)
    return _tasks[key]


def _read_task(cfg: dict) -> Task:
    import torch

    from . import datasets

    s = cfg["sweep"]
    if s["dataset"] in KIBA:
        parts = datasets.kiba_sample(KIBA[s["dataset"]], seed=0)
        (dtr, ptr, ytr), (dte, pte, yte) = parts["train"], parts["test"]
        train = ((torch.from_numpy(dtr), torch.from_numpy(ptr)), torch.from_numpy(ytr))
        test = ((torch.from_numpy(dte), torch.from_numpy(pte)), torch.from_numpy(yte))
        kind = "regression"
    else:
        if s["dataset"] == "fashion_mnist":
            Xtr, ytr, Xte, yte = datasets.fashion_mnist()
        else:
            Xtr, ytr, Xte, yte = datasets.split(*datasets.mnist_5k(), n_train=4000, seed=0)
        images = lambda X: torch.from_numpy(np.ascontiguousarray(X[:, None], np.float32))  # noqa: E731
        train = (images(Xtr), torch.from_numpy(ytr))
        test = (images(Xte), torch.from_numpy(yte))
        kind = "classification"
    return Task(kind, _head(train, s["n_train"]), _head(test, s["n_test"]))


def _head(pair, n: int):
    """The first n examples (all for n = 0) of (inputs, targets)."""
    if not n:
        return pair
    X, y = pair
    X = tuple(x[:n] for x in X) if isinstance(X, tuple) else X[:n]
    return X, y[:n]


def build_model(cfg: dict):
    import torch

    from . import datasets, zoo

    torch.manual_seed(cfg["sweep"]["seed"])
    name, args = cfg["sweep"]["model"], dict(cfg["model"])
    if name == "deepdta":
        args.setdefault("smiles_vocab", datasets.SMILES_VOCAB)
        args.setdefault("protein_vocab", datasets.PROTEIN_VOCAB)
    try:
        return getattr(zoo, name)(**args)
    except TypeError as e:
        raise ValueError(f"[model] arguments do not fit {name}: {e}") from None


def baseline_path(cfg: dict) -> Path:
    """Where the trained baseline of this configuration's model, data and training is kept:
    its name hashes the configuration, the torch version and the code that reads the data,
    builds and trains the model (`_baseline_code`), so that a change to any of them trains
    a new baseline rather than reusing one the code no longer makes."""
    import torch

    s = cfg["sweep"]
    what = {k: s[k] for k in ("model", "dataset", "seed", "epochs", "lr", "batch_size", "n_train")}
    what["model_args"] = cfg["model"]
    what["torch"] = torch.__version__
    what["code"] = hashlib.sha256(_baseline_code().encode()).hexdigest()
    digest = hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]
    return Path(os.path.expanduser(s["cache"])) / f"{s['model']}-{s['dataset']}-{digest}.pt"


def _baseline_code() -> str:
    """The source of what makes a baseline: the zoo's models and training, the datasets,
    and this module's functions that read the task, build the model and train it."""
    from . import datasets, zoo

    return "".join(inspect.getsource(obj) for obj in
                   (zoo, datasets, _read_task, _head, build_model, trained_baseline))


def trained_baseline(cfg: dict, task: Task, log=print):
    """The baseline model, trained (seeded) on first use and cached."""
    import torch

    from . import zoo

    path = baseline_path(cfg)
    model = build_model(cfg)
    if path.exists():
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return model.eval()
    s = cfg["sweep"]
    log(f"training the {s['model']} baseline on {s['dataset']} ({s['epochs']} epochs) ...")
    zoo.train(model, *task.train, epochs=s["epochs"], lr=s["lr"], batch_size=s["batch_size"],
              seed=s["seed"], loss="ce" if task.kind == "classification" else "mse")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    torch.save(model.state_dict(), tmp)
    os.replace(tmp, path)  # complete or absent, never half written
    return model.eval()


def evaluate(model, task: Task) -> dict:
    """Accuracy in percent, or test MSE and concordance index."""
    import torch

    from . import zoo

    X, y = task.test
    n = len(y)
    outs = []
    with torch.inference_mode():
        for i in range(0, n, 1024):
            xb = tuple(x[i:i + 1024] for x in X) if isinstance(X, tuple) else X[i:i + 1024]
            outs.append(model(xb))
    out = torch.cat(outs).numpy()
    y = y.numpy()
    if task.kind == "classification":
        return {"accuracy": float(100.0 * np.mean(out.argmax(1) == y))}
    return {"mse": float(np.mean((out - y) ** 2)), "ci": float(zoo.concordance_index(y, out))}


def mean_predictor_mse(task: Task) -> float:
    """The test MSE of predicting the training targets' mean for every pair: the score a
    regressor that learned nothing from the inputs reaches."""
    y_train, y_test = task.train[1].numpy(), task.test[1].numpy()
    return float(np.mean((y_test - np.mean(y_train, dtype=np.float64)) ** 2))


# -- one point -------------------------------------------------------------------------------
def run_point(cfg: dict, point: dict, baseline: dict) -> dict:
    """Compress the cached baseline as `point` says, fine-tune if asked, evaluate; the record
    that goes into the results file."""
    import torch

    from ..torch import compress_model, finetune, prune_gradually
    from ..torch.convert import dense_nbytes, layer_rows, model_nbytes
    from ..torch.layers import CompressedModule

    t0 = time.perf_counter()
    task = load_task(cfg)
    model = trained_baseline(cfg, task, log=lambda *a: None)

    conv_prune = point.get("prune_conv")

    def is_conv(mod):
        return "Conv" in type(mod).__name__

    def settings(name, mod):
        if not is_conv(mod):
            return None
        return {"k": point["k_conv"], **({} if conv_prune is None else {"prune": conv_prune})}

    ft = cfg["finetune"]
    loss = torch.nn.CrossEntropyLoss() if task.kind == "classification" else torch.nn.MSELoss()
    if point["prune_steps"] > 1 and max(point["prune"], conv_prune or 0) > 0:
        prune_gradually(model, _batches(task.train, ft["batch_size"], cfg["sweep"]["seed"]),
                        point["prune"], point["prune_steps"], ft["prune_epochs"], loss,
                        ft["prune_lr"], scope=point["prune_scope"],
                        layers=lambda name, mod: conv_prune if is_conv(mod) else None,
                        batch_size=ft["batch_size"], seed=cfg["sweep"]["seed"], progress=False)

    model = compress_model(model, prune=point["prune"], quantize=point["quantize"],
                           k=point["k_fc"], prune_scope=point["prune_scope"], layers=settings,
                           objective=point.get("objective", "small"), progress=False)
    if point["retrain"]:
        finetune(model, _batches(task.train, ft["batch_size"], cfg["sweep"]["seed"]), loss,
                 epochs=ft["epochs"], lr=ft["lr"], retrain=ft["retrain"], progress=False)
    model.eval()
    rows = layer_rows(model)
    layers = []
    mods = {n: m for n, m in model.named_modules() if isinstance(m, CompressedModule)}
    for r in rows:
        entry = {"name": r.name, "kind": r.kind, "format": r.format, "k": r.k,
                 "density": r.density, "psi": r.psi}
        if r.name in mods:
            m = mods[r.name].matrix
            entry["layout"] = getattr(m, "layout", None)
            entry["us"] = _product_us(m)
        layers.append(entry)
    return {
        "model": cfg["sweep"]["model"], "model_args": cfg["model"],
        "dataset": cfg["sweep"]["dataset"],
        "key": point_key(point), "point": point, "kind": task.kind,
        "metrics": evaluate(model, task), "baseline": baseline, "finetune": cfg["finetune"],
        "psi": {"fc": _psi(rows, "Linear"), "conv": _psi(rows, "Conv"),
                "total": model_nbytes(model) / dense_nbytes(model)},
        "layers": layers, "seconds": round(time.perf_counter() - t0, 2),
        # Training sums in another order on another thread count: a point reruns to the
        # same figures on as many threads.
        "threads": torch.get_num_threads(),
        "host": platform.node(), "date": datetime.date.today().isoformat(),
    }


def _batches(train, batch_size: int, seed: int):
    """One shuffled epoch of ((inputs), targets) batches: finetune takes a list of batches
    where the inputs are a tuple (DeepDTA's two sequences), and pairs of arrays otherwise."""
    import torch

    X, y = train
    if not isinstance(X, tuple):
        return (X, y)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    return [(tuple(x[order[i:i + batch_size]] for x in X), y[order[i:i + batch_size]])
            for i in range(0, len(y), batch_size)]


def _psi(rows, kind: str) -> float | None:
    sel = [r for r in rows if kind in r.kind]
    dense = sum(4 * int(np.prod(r.shape)) for r in sel)
    return sum(r.nbytes for r in sel) / dense if dense else None


def _product_us(m) -> float:
    """Median microseconds of one matrix-vector product on one thread."""
    x = np.random.default_rng(0).standard_normal(m.shape[1]).astype(np.float32)
    m.dot(x, threads=1)
    times = []
    for _ in range(7):
        t = time.perf_counter()
        m.dot(x, threads=1)
        times.append(time.perf_counter() - t)
    return round(1e6 * float(np.median(times)), 2)


# -- the sweep -------------------------------------------------------------------------------
def read_results(path, repair: bool = False) -> list[dict]:
    """The records of a results file; a last line cut short by a crash is dropped (and,
    with `repair`, cut from the file, so that appending continues on a line of its own)."""
    path = Path(path)
    if not path.exists():
        return []
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if repair and end < len(data):
        with open(path, "r+b") as f:
            f.truncate(end)
    records = []
    for n, line in enumerate(data[:end].splitlines(), 1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                raise ValueError(f"{path}: line {n} is not a JSON record") from None
    return records


def _append(path: Path, record: dict) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record, sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())


def run(cfg: dict, out, workers: int | None = None, ray: str | None = None,
        progress: bool = True, log=print) -> list[dict]:
    """Run every point of the grid not yet in `out`; returns all records of `out`."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = {r["key"] for r in read_results(out, repair=True)}
    todo = [p for p in points(cfg) if point_key(p) not in done]
    task = load_task(cfg)
    baseline = evaluate(trained_baseline(cfg, task, log=log), task)
    if task.kind == "regression":
        baseline["mean_mse"] = mean_predictor_mse(task)
    log(f"{len(done)} points done, {len(todo)} to run; baseline {baseline}")
    workers = max(1, workers or min(len(todo), _cores()))
    results = _on_ray(ray, cfg, todo, baseline) if ray else _in_processes(workers, cfg, todo, baseline)
    with bar(total=len(todo) + len(done), initial=len(done), desc="sweep", unit="point",
             disable=not progress) as b:
        for record in results:
            _append(out, record)
            b.update()
    return read_results(out)


def _cores() -> int:
    """The cores this process may run on (`taskset` narrows them), which the workers share."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _in_processes(workers: int, cfg, todo, baseline):
    if not todo:
        return
    threads = max(1, _cores() // workers)
    ctx = multiprocessing.get_context("spawn")  # torch and fork do not mix
    with cf.ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                                initargs=(threads,)) as pool:
        futures = [pool.submit(run_point, cfg, p, baseline) for p in todo]
        for f in cf.as_completed(futures):
            yield f.result()


def _on_ray(address: str, cfg, todo, baseline):
    try:
        import ray
    except ImportError:
        raise ImportError("--ray needs Ray: pip install 'ray>=2.9'") from None
    local = address == "local"
    ray.init(address=None if local else address, include_dashboard=False,
             log_to_driver=False, ignore_reinit_error=True)
    try:
        task = ray.remote(num_cpus=1)(run_point)
        pending = [task.remote(cfg, p, baseline) for p in todo]
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            yield ray.get(ready[0])
    finally:
        if local:
            ray.shutdown()
