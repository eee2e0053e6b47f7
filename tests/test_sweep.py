"""compactnn sweep and report: configuration errors, a tiny grid end to end, a sweep killed
mid-point and resumed, a two-point grid on a local Ray instance, and the report rebuilt
from the results file alone."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from compactnn.evaluation import results_pages, sweep, zoo
from compactnn.evaluation.datasets import kiba_sample
from compactnn.cli import main

TINY = """
[sweep]
model = "lenet_300_100"
dataset = "mnist_5k"
epochs = 1
n_train = 600
n_test = 300
cache = "{cache}"

[grid]
prune = {prune}
quantize = ["cws"]
k_fc = [16]
retrain = [false]

[finetune]
epochs = 1
"""


def write_config(tmp_path, prune=(0.0, 0.5), name="tiny.toml", **extra):
    text = TINY.format(cache=tmp_path / "cache", prune=list(prune))
    for section, lines in extra.items():
        text += f"\n[{section}]\n{lines}\n"
    path = tmp_path / name
    path.write_text(text)
    return path


def check_records(records, n):
    assert len(records) == n and len({r["key"] for r in records}) == n
    for r in records:
        assert 0 <= r["metrics"]["accuracy"] <= 100 and r["baseline"]["accuracy"] > 50
        assert 0 < r["psi"]["total"] < 1 and 0 < r["psi"]["fc"] < 1 and r["psi"]["conv"] is None
        assert [layer["kind"] for layer in r["layers"]] == ["Linear"] * 3
        assert all(layer["us"] > 0 and layer["format"] in ("IndexMap", "HAM", "HCSR")
                   for layer in r["layers"])


# -- configuration -----------------------------------------------------------------------------
@pytest.mark.parametrize("change, match", [
    (("lenet_300_100", "resnet"), "model must be one of"),
    (('"mnist_5k"', '"cifar"'), "dataset must be one of"),
    (('"mnist_5k"', '"kiba_sample"'), "deepdta runs on kiba_sample or kiba_sample_warm"),
    (('quantize = ["cws"]', 'quantize = ["kmeans"]'), "quantize must be among"),
    (('quantize = ["cws"]', 'quantize = "cws"'), "must be a non-empty list"),
    (("k_fc = [16]", "k_fc = [1]"), "2..65536"),
    (("k_fc = [16]", "k_fc = [16.5]"), "not a valid int"),
    (("retrain = [false]", "retrain = [0]"), "not a valid bool"),
    (("retrain = [false]", "retrian = [false]"), "unknown keys"),
    (("epochs = 1\nn_train", "epoch = 1\nn_train"), "unknown keys"),
    (("[finetune]", "[finetune]\nretrain = 'all'"), "retrain must be"),
    (("retrain = [false]", "retrain = [false]\nprune_scope = ['model']"), "prune_scope must"),
    (("[grid]", "[grids]"), "unknown tables"),
    (("retrain = [false]", "retrain = [false]\nprune_steps = [0]"), "prune_steps must be"),
    (("retrain = [false]", "retrain = [false]\nprune_conv = [1.0]"), "prune_conv holds 1.0"),
    (("[sweep]", "[sweep"), "not valid TOML"),
])
def test_config_errors(tmp_path, change, match):
    path = write_config(tmp_path)
    path.write_text(path.read_text().replace(*change, 1))
    with pytest.raises(ValueError, match=match):
        sweep.load_config(path)


def test_grid_points(tmp_path):
    cfg = sweep.load_config(write_config(tmp_path, prune=(0.0, 0.5, 0.9)))
    pts = sweep.points(cfg)
    assert [p["prune"] for p in pts] == [0.0, 0.5, 0.9]
    assert all(p["k_conv"] == 32 and p["quantize"] == "cws" for p in pts)
    assert len({sweep.point_key(p) for p in pts}) == 3
    # one-shot points keep the keys of results files written before prune_steps existed
    assert all(p["prune_steps"] == 1 and "prune_steps" not in sweep.point_key(p) for p in pts)
    assert "prune_steps" in sweep.point_key({**pts[0], "prune_steps": 3})
    assert all(p["prune_conv"] is None and "prune_conv" not in sweep.point_key(p) for p in pts)
    assert '"prune_conv": 0.0' in sweep.point_key({**pts[0], "prune_conv": 0.0})


def gradual_point(tmp_path, grid: str, model: str = "lenet_300_100") -> dict:
    """The record of the one point of a 90% gradual-pruning grid (`grid`: more [grid] lines),
    with one epoch per pruning step."""
    path = write_config(tmp_path, prune=(0.9,))
    path.write_text(path.read_text().replace('"lenet_300_100"', f'"{model}"')
                    .replace("retrain = [false]", "retrain = [false]\n" + grid)
                    .replace("[finetune]\n", "[finetune]\nprune_epochs = 1\n"))
    cfg = sweep.load_config(path)
    (point,) = sweep.points(cfg)
    task = sweep.load_task(cfg)
    return sweep.run_point(cfg, point, sweep.evaluate(sweep.trained_baseline(cfg, task), task))


@pytest.mark.training
def test_gradual_pruning_point(tmp_path):
    record = gradual_point(tmp_path, "prune_steps = [3]")
    check_records([record], 1)
    assert record["point"]["prune_steps"] == 3
    dens = [layer["density"] for layer in record["layers"]]
    assert all(d <= 0.11 for d in dens), dens  # 90% of each layer's weights are gone
    assert results_pages.method(record["point"]) == "cws + gradual pruning"


@pytest.mark.training
def test_conv_layers_pruned_apart(tmp_path):
    """prune_conv gives the conv layers their own fraction (here none) in gradual pruning and
    in compression; the FC layers share the global threshold."""
    record = gradual_point(tmp_path, 'prune_steps = [2]\nprune_conv = [0.0]\n'
                           'prune_scope = ["global"]', model="lenet5")
    dens = {layer["kind"]: [] for layer in record["layers"]}
    for layer in record["layers"]:
        dens[layer["kind"]].append(layer["density"])
    assert min(dens["Conv2d"]) > 0.9, dens  # a trained conv weight is seldom exactly 0
    fc_params = [400 * 120, 120 * 84, 84 * 10]
    kept = sum(d * n for d, n in zip(dens["Linear"], fc_params)) / sum(fc_params)
    assert abs(kept - 0.1) < 0.005, dens
    assert "(conv 0)" in results_pages.table([record])


@pytest.mark.training
def test_a_point_does_not_depend_on_the_points_before_it(tmp_path):
    """Worker processes run several points each: a point seeds torch's global generator
    (build_model; dropout draws from it), so what it draws does not depend on what ran
    before it, and its record says on how many threads it ran."""
    import torch

    cfg = sweep.load_config(write_config(tmp_path, prune=(0.5,)))
    (point,) = sweep.points(cfg)
    task = sweep.load_task(cfg)
    baseline = sweep.evaluate(sweep.trained_baseline(cfg, task), task)
    after = []
    for before in (0, 1000):
        torch.rand(before)  # what another point would have drawn
        record = sweep.run_point(cfg, point, baseline)
        after.append((record["metrics"], record["psi"], torch.rand(4).tolist()))
        assert record["threads"] == torch.get_num_threads()
    assert after[0] == after[1]


# -- baselines --------------------------------------------------------------------------------
def test_baseline_key_follows_the_training_code(tmp_path, monkeypatch):
    """A baseline is cached under a name that hashes the code making it, so that a change to
    the training, the model or the data trains a new one instead of reusing a stale one."""
    cfg = sweep.load_config(write_config(tmp_path))
    path = sweep.baseline_path(cfg)
    assert sweep.baseline_path(cfg) == path and path.parent == tmp_path / "cache"
    original = sweep.build_model

    def build_model(cfg):  # another body: another recipe
        return original(cfg).float()

    monkeypatch.setattr(sweep, "build_model", build_model)
    assert sweep.baseline_path(cfg) != path
    monkeypatch.undo()
    getsource = sweep.inspect.getsource
    monkeypatch.setattr(sweep.inspect, "getsource",
                        lambda obj: getsource(obj) + ("#" if obj is zoo else ""))
    assert sweep.baseline_path(cfg) != path  # an edit of the zoo's module
    monkeypatch.undo()
    assert sweep.baseline_path(cfg) == path


def test_kiba_datasets_and_the_mean_predictor(tmp_path):
    text = write_config(tmp_path).read_text().replace('"lenet_300_100"', '"deepdta"')
    cfgs = {}
    for dataset in sweep.KIBA:
        path = tmp_path / f"{dataset}.toml"
        path.write_text(text.replace('"mnist_5k"', f'"{dataset}"'))
        cfgs[dataset] = sweep.load_config(path)
    # the splits are two datasets, and two baselines
    assert sweep.baseline_path(cfgs["kiba_sample"]) != sweep.baseline_path(cfgs["kiba_sample_warm"])
    task = sweep.load_task(cfgs["kiba_sample_warm"])
    assert task.kind == "regression" and len(task.train[1]) == 600 and len(task.test[1]) == 300
    warm = kiba_sample("warm")
    assert np.array_equal(task.test[1].numpy(), warm["test"][2][:300])
    y_train, y_test = warm["train"][2][:600], warm["test"][2][:300]
    assert sweep.mean_predictor_mse(task) == pytest.approx(
        np.mean((y_test - y_train.mean()) ** 2), rel=1e-5)


# -- runs --------------------------------------------------------------------------------------
@pytest.mark.training
def test_sweep_then_report_from_the_file_alone(tmp_path, capsys):
    cfg_path = write_config(tmp_path)
    out = tmp_path / "results.jsonl"
    assert main(["sweep", str(cfg_path), "-o", str(out), "--workers", "2", "--quiet"]) == 0
    records = sweep.read_results(out)
    check_records(records, 2)
    # the baseline was trained once, by the sweep's process, and cached for the workers
    assert len(list((tmp_path / "cache").glob("lenet_300_100-mnist_5k-*.pt"))) == 1
    # a rerun finds everything done
    assert main(["sweep", str(cfg_path), "-o", str(out), "--quiet"]) == 0
    assert sweep.read_results(out) == records

    elsewhere = tmp_path / "copy"
    elsewhere.mkdir()
    shutil.copy(out, elsewhere / "r.jsonl")
    shutil.rmtree(tmp_path / "cache")
    capsys.readouterr()
    assert main(["report", str(elsewhere / "r.jsonl")]) == 0
    text = capsys.readouterr().out
    assert "### lenet_300_100 on mnist_5k" in text and "| cws |" in text
    assert "| cws + pruning |" in text
    report_dir = elsewhere / "r-report"
    md = (report_dir / "results.md").read_text()
    assert md.startswith("### lenet_300_100 on mnist_5k")
    for png in ("lenet_300_100-mnist_5k-psi.png", "lenet_300_100-mnist_5k-time.png"):
        assert (report_dir / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"({png})" in md


def test_report_table_picks_the_smallest_lossless_point():
    base = {"accuracy": 90.0}

    def rec(prune, psi, acc):
        point = {"prune": prune, "quantize": "uq", "k_fc": 8, "k_conv": 32, "retrain": False}
        return {"model": "m", "dataset": "d", "key": json.dumps(point), "point": point,
                "metrics": {"accuracy": acc}, "baseline": base,
                "psi": {"total": psi, "fc": psi / 2, "conv": None}, "layers": []}

    records = [rec(0.5, 0.05, 89.8), rec(0.9, 0.02, 89.6), rec(0.95, 0.01, 85.0),
               rec(0.0, 0.10, 90.5)]
    text = results_pages.table(records)
    row = next(line for line in text.splitlines() if line.startswith("| uq + pruning |"))
    assert "| 5.00% | 2.50% | - | 89.80% | 0.5, layer, 8, 32 | 89.80% | 3 |" in row
    row = next(line for line in text.splitlines() if line.startswith("| uq |"))
    assert "| 10.00% |" in row and "| 90.50% | 1 |" in row


def test_report_of_a_regression_states_split_mean_predictor_and_ci():
    """A regression point is lossless at most 2% above the baseline's MSE and 0.01 below its
    concordance index; the table names the split and the MSE of predicting the mean."""
    base = {"mse": 0.40, "ci": 0.750, "mean_mse": 0.55}

    def rec(prune, psi, mse, ci):
        point = {"prune": prune, "quantize": "cws", "k_fc": 16, "k_conv": 32, "retrain": True}
        return {"model": "deepdta", "dataset": "kiba_sample_warm", "key": json.dumps(point),
                "point": point, "metrics": {"mse": mse, "ci": ci}, "baseline": base,
                "psi": {"total": psi, "fc": psi, "conv": psi}, "layers": []}

    records = [rec(0.8, 0.05, 0.40, 0.745), rec(0.9, 0.03, 0.405, 0.735),
               rec(0.95, 0.02, 0.41, 0.75)]
    assert [results_pages.no_loss(r) for r in records] == [True, False, False]
    text = results_pages.table(records)
    assert "### deepdta on kiba_sample_warm" in text
    assert ("Split: warm, a seeded random split of the 5,000 pairs" in text
            and "Dense baseline: MSE 0.4000, CI 0.750 (predicting the training mean: "
                "MSE 0.5500); 3 points." in text)
    row = next(line for line in text.splitlines() if line.startswith("| cws + pruning"))
    assert "| 5.00% |" in row and "| MSE 0.4000, CI 0.745 | 0.8, layer, 16, 32 |" in row
    assert "no better than predicting" not in text
    cold = results_pages.table([{**records[0], "dataset": "kiba_sample",
                                 "baseline": {**base, "mse": 0.60}}])
    assert "Split: cold, the files' own split: the test pairs share no drug" in cold
    assert "The baseline does no better than predicting the training mean" in cold


def test_report_separates_widths_of_one_model(tmp_path):
    """Records of one architecture at two widths ([model] arguments) are two tables and two
    sets of plots; records without arguments (older files) keep the plain title."""
    def rec(args, acc):
        point = {"prune": 0.5, "quantize": "cws", "k_fc": 8, "k_conv": 16, "retrain": True}
        r = {"model": "lenet5", "dataset": "fashion_mnist", "key": json.dumps(point),
             "point": point, "metrics": {"accuracy": acc}, "baseline": {"accuracy": 90.0},
             "psi": {"total": 0.03, "fc": 0.02, "conv": 0.1},
             "layers": [{"format": "HCSR", "psi": 0.02, "us": 3.0}]}
        if args is not None:
            r["model_args"] = args
        return r

    records = [rec({"channels": [20, 50], "fc": [500], "padding": 0}, 91.0), rec({}, 89.0),
               rec(None, 88.0)]
    text = results_pages.table(records)
    assert "### lenet5 (channels=[20, 50], fc=[500], padding=0) on fashion_mnist" in text
    assert text.count("### lenet5 on fashion_mnist") == 1  # {} and no arguments: one model
    names = sorted(p.name for p in results_pages.plots(records, tmp_path))
    assert names == ["lenet5-channels20_50-fc500-padding0-fashion_mnist-psi.png",
                     "lenet5-channels20_50-fc500-padding0-fashion_mnist-time.png",
                     "lenet5-fashion_mnist-psi.png", "lenet5-fashion_mnist-time.png"]


@pytest.mark.training
def test_regression_sweep_records_the_mean_predictor_and_does_not_collapse(tmp_path):
    text = write_config(tmp_path, prune=(0.95,)).read_text()
    for old, new in (('"lenet_300_100"', '"deepdta"'), ('"mnist_5k"', '"kiba_sample_warm"'),
                     ("n_train = 600", "n_train = 128"), ("n_test = 300", "n_test = 64")):
        text = text.replace(old, new)
    path = tmp_path / "deepdta.toml"
    path.write_text(text + "\n[model]\nfilters = 4\nembed = 8\nprotein_kernel = 4\n")
    cfg = sweep.load_config(path)
    [record] = sweep.run(cfg, tmp_path / "r.jsonl", workers=1, progress=False,
                         log=lambda *a: None)
    b, m = record["baseline"], record["metrics"]
    assert b["mean_mse"] == pytest.approx(sweep.mean_predictor_mse(sweep.load_task(cfg)))
    assert 0 < b["mse"] < 2 * b["mean_mse"] and 0 <= b["ci"] <= 1
    # one-shot 95% pruning without retraining: near the mean, not near 0 (MSE above 100)
    assert m["mse"] < 2 * b["mean_mse"] and 0 <= m["ci"] <= 1


@pytest.mark.training
def test_killed_sweep_resumes(tmp_path):
    """Kill the sweep (and its workers) once a point is written, cut its last line short as
    a crash mid-write would, and rerun: every point ends up in the file exactly once and
    the points done before the kill stay as they were.  Twenty points, watched every 10 ms:
    a fast CPU ran four in one poll of 200 ms, so the sweep ended before the kill."""
    prune = [round(0.05 * i, 2) for i in range(20)]
    cfg_path = write_config(tmp_path, prune=prune)
    out = tmp_path / "results.jsonl"
    cmd = [sys.executable, "-m", "compactnn", "sweep", str(cfg_path), "-o", str(out),
           "--workers", "1", "--quiet"]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while not (out.exists() and out.read_bytes().count(b"\n") >= 1):
            assert proc.poll() is None, "the sweep ended before it was killed"
            assert time.monotonic() < deadline, "no point finished in 240 s"
            time.sleep(0.01)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    before = out.read_bytes().splitlines(keepends=True)
    assert 1 <= len(before) < len(prune)
    with open(out, "ab") as f:
        f.write(b'{"key": "cut sho')
    assert main(["sweep", str(cfg_path), "-o", str(out), "--quiet"]) == 0
    after = out.read_bytes().splitlines(keepends=True)
    assert after[:len(before)] == before
    check_records(sweep.read_results(out), len(prune))


@pytest.mark.training
def test_two_points_on_local_ray(tmp_path):
    cfg = sweep.load_config(write_config(tmp_path))
    out = tmp_path / "ray.jsonl"
    records = sweep.run(cfg, out, ray="local", progress=False, log=lambda *a: None)
    check_records(records, 2)


def test_report_of_no_results(tmp_path):
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(ValueError, match="no results"):
        results_pages.write_pages(tmp_path / "empty.jsonl", tmp_path / "out")
    assert main(["report", str(tmp_path / "empty.jsonl")]) == 2
