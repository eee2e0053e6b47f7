"""The command line: demo, compress, info and bench --model, and its error paths (one line
on stderr, exit status 2, no traceback)."""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

import compactnn as cn
import compactnn.torch as cnt
from compactnn.cli import main


def run_cli(*args):
    """The command through its entry point, in a process of its own."""
    env = dict(os.environ, KERAS_BACKEND="torch")
    return subprocess.run([sys.executable, "-m", "compactnn", *args], capture_output=True,
                          text=True, env=env, timeout=600)


def run_main(capsys, *args):
    """The command in this process (saves importing torch and Keras again per command)."""
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, out.out, out.err)


def test_matrix_demo_prints_every_format():
    out = run_cli("demo", "--matrix", "--rows", "64", "--cols", "96", "--k", "8")
    assert out.returncode == 0, out.stderr
    for name in ("numpy float32", "IndexMap", "HAM", "HCSR", "90% pruned, k=8", "dense, k=8"):
        assert name in out.stdout
    rows = [line for line in out.stdout.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == 1 + 8
    errors = [float(r.split("|")[6]) for r in rows[1:]]
    assert max(errors) < 1e-5


@pytest.mark.training
def test_network_demo():
    """The README's main command: a CNN trained on real digits, pruned gradually and
    compressed, then fine-tuned, in PyTorch and in Keras, each within 0.3 points of its
    dense model at under a tenth of its bytes."""
    out = run_cli("demo")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "PyTorch: trained" in text and "Keras (torch backend): trained" in text
    parts = text.split("Keras (torch backend): trained")
    for part in parts:  # compressed, then codebooks fine-tuned
        rows = [[c.strip() for c in line.split("|")[1:-1]] for line in part.splitlines()
                if line.startswith("| dense float32") or line.startswith("| compressed")]
        assert len(rows) == 3
        dense = float(rows[0][1].rstrip("%"))
        assert dense > 95 and float(rows[0][3]) == 1.0 and float(rows[0][4]) > 0
        for row in rows[1:]:
            assert float(row[1].rstrip("%")) >= dense - 0.3, row
            assert float(row[3]) < 0.1 and float(row[4]) > 0  # psi, latency


@pytest.fixture(scope="module")
def whole_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "dense.pt"
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 5))
    torch.save(model, path)
    return path


def test_compress_info_and_bench(whole_model, tmp_path, capsys):
    out_path = tmp_path / "small.cnnm"
    out = run_main(capsys, "compress", str(whole_model), "-o", str(out_path), "--prune", "0.5",
                  "--k", "8", "--global", "--input-shape", "1,8,8")
    assert out.returncode == 0, out.stderr
    assert "| whole model |" in out.stdout and out_path.exists()
    small = cnt.load(out_path)
    assert isinstance(small[0], cnt.CompressedConv2d) and small[3].matrix.k <= 8
    info = run_main(capsys, "info", str(out_path))
    assert info.returncode == 0, info.stderr
    assert "| 0 | Conv2d | 4x1x3x3 |" in info.stdout and "| 3 | Linear | 5x144 |" in info.stdout
    bench = run_main(capsys, "bench", "--model", str(out_path))
    assert bench.returncode == 0, bench.stderr
    whole, layers = bench.stdout.split("Per layer")
    rows = [line for line in whole.splitlines() if line.startswith(("| 1 |", "| 64 |"))]
    assert "speed-up (dense / compressed)" in whole
    assert len(rows) == 2 and all(float(r.split("|")[4].strip().rstrip("x")) > 0 for r in rows)
    per_layer = [line.split("|")[1:-1] for line in layers.splitlines()
                 if line.startswith(("| 1 |", "| 64 |"))]
    assert [(r[0].strip(), r[1].strip()) for r in per_layer] == [
        ("1", "0"), ("1", "3"), ("64", "0"), ("64", "3")]
    assert all(float(r[3]) > 0 and float(r[4]) > 0 for r in per_layer)


def test_compress_stores_the_graph_and_run_runs_it(whole_model, tmp_path, capsys):
    out_path = tmp_path / "small.cnnm"
    assert run_main(capsys, "compress", str(whole_model), "-o", str(out_path), "--k", "8",
                    "--input-shape", "1,8,8").returncode == 0
    info = run_main(capsys, "info", str(out_path))
    assert "graph for `compactnn run` (4 nodes; inputs (batch, 1, 8, 8) float32)" in info.stdout
    assert "conv2d" in info.stdout and "(5,)" in info.stdout
    x = np.random.default_rng(0).random((3, 1, 8, 8), np.float32)
    np.save(tmp_path / "x.npy", x)
    out = run_main(capsys, "run", str(out_path), "--input", str(tmp_path / "x.npy"), "-o",
                   str(tmp_path / "y.npy"), "--threads", "1")
    assert out.returncode == 0, out.stderr
    assert "float32 array of shape (3, 5)" in out.stdout
    with torch.inference_mode():
        want = cnt.load(out_path)(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), want, rtol=1e-5, atol=1e-6)
    stored = run_main(capsys, "run", str(out_path), "--input", str(tmp_path / "x.npy"), "-o",
                      str(tmp_path / "y2.npy"), "--forms", "stored")
    assert stored.returncode == 0, stored.stderr
    np.testing.assert_allclose(np.load(tmp_path / "y2.npy"), want, rtol=1e-5, atol=1e-6)
    printed = run_main(capsys, "run", str(out_path), "--input", str(tmp_path / "x.npy"))
    assert printed.returncode == 0 and printed.stdout.count("[") == 4  # (3, 5) printed
    np.save(tmp_path / "bad.npy", x[:, :, :4])
    assert "shape (batch, 1, 8, 8), got (3, 1, 4, 8)" in error_line(run_main(
        capsys, "run", str(out_path), "--input", str(tmp_path / "bad.npy")))
    assert "not a numpy array file" in error_line(run_main(
        capsys, "run", str(out_path), "--input", str(out_path)))
    no_graph = tmp_path / "plain.cnnm"
    assert run_main(capsys, "compress", str(whole_model), "-o", str(no_graph)).returncode == 0
    assert "holds no graph" in error_line(run_main(
        capsys, "run", str(no_graph), "--input", str(tmp_path / "x.npy")))


def test_info_on_a_matrix_file(tmp_path):
    path = tmp_path / "m.cnn"
    cn.IndexMap.from_dense(np.ones((3, 4), np.float32)).save(path)
    out = run_cli("info", str(path))
    assert out.returncode == 0 and "IndexMap 3x4" in out.stdout


def test_keras_compress(tmp_path, capsys):
    import keras

    model = keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Conv2D(3, 3),
                              keras.layers.Flatten(), keras.layers.Dense(4)])
    src, dst = tmp_path / "m.keras", tmp_path / "small.keras"
    model.save(src)
    out = run_main(capsys, "compress", str(src), "-o", str(dst), "--k", "4")
    assert out.returncode == 0, out.stderr
    assert "CompressedConv2D" not in out.stdout and "| Conv2D |" in out.stdout
    info = run_main(capsys, "info", str(dst))
    assert info.returncode == 0 and "| whole model |" in info.stdout
    wrong = run_main(capsys, "compress", str(src), "-o", str(tmp_path / "small.cnnm"))
    assert wrong.returncode == 2 and ".keras" in wrong.stderr


def error_line(out):
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    return lines[0]


def test_user_mistakes_give_one_line(whole_model, tmp_path, capsys):
    assert "no such file" in error_line(run_main(capsys, "compress", str(tmp_path / "nope.pt"),
                                                "-o", str(tmp_path / "x")))
    text = tmp_path / "notes.txt"
    text.write_text("not a model")
    assert "not a PyTorch model" in error_line(run_main(capsys, "compress", str(text), "-o",
                                                       str(tmp_path / "x")))
    state = tmp_path / "state.pt"
    torch.save(nn.Linear(2, 2).state_dict(), state)
    assert "state dict" in error_line(run_main(capsys, "compress", str(state), "-o", str(tmp_path / "x")))
    assert "not a compactnn file" in error_line(run_main(capsys, "info", str(text)))
    assert "is a directory" in error_line(run_main(capsys, "info", str(tmp_path)))
    assert "--input-shape" in error_line(run_main(capsys, "bench", "--model", str(whole_model)))
    bad = tmp_path / "bad.cnnm"
    bad.write_bytes(b"CNNMODEL" + b"\0" * 30)
    assert "model file" in error_line(run_main(capsys, "info", str(bad)))
    assert "no such file" in error_line(run_main(capsys, "bench", "--model", str(tmp_path / "nope")))


def test_input_shape_that_does_not_fit_the_model(whole_model, capsys):
    assert main(["bench", "--model", str(whole_model), "--input-shape", "3,8,8"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not take inputs of shape 3,8,8" in err[0]
    assert "Conv2d of 1 input channels (--input-shape 1,H,W)" in err[0]


def test_keras_input_shape_that_does_not_fit_the_model(tmp_path, capsys):
    import keras

    model = keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(4)])
    model.save(tmp_path / "m.keras")
    assert main(["bench", "--model", str(tmp_path / "m.keras"), "--input-shape", "6,6,3"]) == 2
    err = capsys.readouterr().err
    assert "--input-shape 6,6,3 does not fit the model" in err and "shape 6,6,1" in err


def test_help_names_every_command(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    commands = ("demo", "compress", "info", "run", "bench", "sweep", "report")
    assert f"`compactnn {' | '.join(commands)}`" in " ".join(out.split())
    assert all(f"\n    {c} " in out for c in commands)
    assert "speed-up" in out


@pytest.mark.parametrize("args", [["demo", "--k", "0"], ["demo", "--prune", "1.5"],
                                  ["demo", "--rows", "x"], ["demo", "--k", "70000"], [],
                                  ["compress", "m.pt"], ["compress", "m.pt", "-o", "x",
                                                          "--quantize", "kmeans"],
                                  ["bench", "--model", "m.pt", "--input-shape", "1,x"]])
def test_bad_arguments_exit_with_usage(args, capsys):
    with pytest.raises(SystemExit) as e:
        main(args)
    assert e.value.code == 2
    assert "usage" in capsys.readouterr().err
