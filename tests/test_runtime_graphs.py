"""Hostile graphs in model files (valid checksums, so that only the graph's own checks stand
between them and the runtime): cycles, dangling inputs, unknown ops, weights of the wrong
shape, huge declared sizes and malformed arguments all raise compactnn.FormatError at load,
and nothing the runtime then runs reads or writes outside its arena."""
import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import compactnn.runtime as runtime  # noqa: E402
import compactnn.torch as cnt  # noqa: E402
from compactnn import FormatError  # noqa: E402
from compactnn.model import file_format  # noqa: E402


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 16, 8), nn.ReLU(),
                          nn.Linear(8, 3))
    small = cnt.compress_model(model.eval(), prune=0.5, k=4, progress=False,
                               objective="small").eval()
    path = tmp_path_factory.mktemp("graphs") / "m.cnnm"
    cnt.save(small, path, example_input=torch.randn(2, 1, 8, 8))
    return file_format.read(path)


def rewrite(saved, tmp_path, change):
    meta, matrices, tensors = copy.deepcopy(saved)
    change(meta["graph"], tensors)
    path = tmp_path / "bad.cnnm"
    file_format.write(path, meta, matrices, tensors)
    return path


def node(graph, op, k=0):
    return [n for n in graph["nodes"] if n["op"] == op][k]


def test_the_untouched_file_runs(saved, tmp_path):
    rt = runtime.load(rewrite(saved, tmp_path, lambda g, t: None))
    assert rt(np.zeros((2, 1, 8, 8), np.float32)).shape == (2, 3)


def _set(key, value, op=None, k=0):
    def change(g, t):
        (node(g, op, k) if op else g)[key] = value
    return change


def _cycle(g, t):
    g["nodes"][0]["inputs"] = [g["nodes"][-1]["name"]]


def _swap_matrices(g, t):
    a, b = node(g, "linear", 0), node(g, "linear", 1)
    a["matrix"], b["matrix"] = b["matrix"], a["matrix"]


def _bias_too_short(g, t):
    t[node(g, "linear")["bias"]] = np.zeros(2, np.float32)


def _int_weights(g, t):
    t[node(g, "affine")["scale"]] = np.zeros(4, np.int32)


def _duplicate(g, t):
    g["nodes"][1]["name"] = g["nodes"][0]["name"]


def _huge_reshape(g, t):
    n = node(g, "flatten")
    n.update(op="reshape", shape=[1 << 20, 1 << 20])
    del n["start"], n["end"]


def _cat_mismatch(g, t):
    relu = node(g, "relu", 0)["name"]
    last = g["nodes"][-1]["name"]
    g["nodes"].append(dict(name="joined", op="cat", inputs=[relu, last], module="", dim=1))
    g["outputs"] = ["joined"]


def _after_relu(**node):
    def change(g, t):
        relu = next(n for n in g["nodes"] if n["op"] == "relu")
        g["nodes"].insert(g["nodes"].index(relu) + 1,
                          dict(name="extra", inputs=[relu["name"]], module="", **node))
    return change


def _table(g, t):
    t["table"] = np.zeros(5, np.float32)
    _after_relu(op="embedding", weight="table")(g, t)


HOSTILE = {
    "not a graph": (lambda g, t: g.clear(), "lacks its inputs"),
    "a cycle": (_cycle, "not an earlier value"),
    "a dangling input": (_set("inputs", ["nowhere"], "relu"), "not an earlier value"),
    "an unknown op": (_set("op", "exec", "relu"), "unknown op 'exec'"),
    "a name twice": (_duplicate, "names a value twice"),
    "an unknown output": (_set("outputs", ["nothing"]), "outputs"),
    "two outputs": (lambda g, t: g.update(outputs=[g["outputs"][0]] * 2), "outputs"),
    "a missing matrix": (_set("matrix", "elsewhere", "linear"), "does not hold"),
    "a missing tensor": (_set("bias", "elsewhere", "linear"), "not a float32 tensor"),
    "integer weights": (_int_weights, "not a float32 tensor"),
    "swapped matrices": (_swap_matrices, "do not fit"),
    "a short bias": (_bias_too_short, "bias of shape"),
    "a huge input": (lambda g, t: g["inputs"][0].update(shape=[None, 1 << 20, 1 << 20]),
                     "larger than the runtime takes"),
    "an input shape with a batch": (lambda g, t: g["inputs"][0].update(shape=[2, 1, 8, 8]),
                                    "is not \\[null"),
    "a huge view": (_huge_reshape, "cannot be viewed"),
    "a zero kernel": (_set("kernel", [0, 2], "max_pool2d"), "kernel"),
    "a malformed kernel": (_set("kernel", [3, 3, 3], "conv2d"), "kernel"),
    "a negative padding": (_set("padding", [-1, 0], "conv2d"), "padding"),
    "a kernel larger than the input": (_set("kernel", [30, 30], "max_pool2d"), "window"),
    "a lost argument": (lambda g, t: node(g, "max_pool2d").pop("stride"), "lacks"),
    "a mismatched concatenation": (_cat_mismatch, "do not concatenate"),
    "an odd gelu": (lambda g, t: g["nodes"].insert(3, dict(
        name="g", op="gelu", inputs=[g["nodes"][2]["name"]], module="", approximate="cubic")),
                    "gelu approximation"),
    "a non-finite scalar": (lambda g, t: g["nodes"].append(dict(
        name="s", op="add", inputs=[g["nodes"][-1]["name"]], module="", constant=None,
        scalar=float("nan"))), "not a finite number"),
    "nodes not a list": (_set("nodes", {"a": 1}), "nodes"),
    "not a permutation": (_after_relu(op="permute", perm=[0, 1, 1, 2]), "not a permutation"),
    "a permutation moving the batch": (_after_relu(op="permute", perm=[1, 0, 2, 3]),
                                       "keeping the batch"),
    "a reduction over the batch": (_after_relu(op="reduce", kind="max", dims=[0],
                                               keepdim=False), "adjacent"),
    "a reduction over dims apart": (_after_relu(op="reduce", kind="mean", dims=[1, 3],
                                                keepdim=False), "adjacent"),
    "an odd reduction": (_after_relu(op="reduce", kind="median", dims=[1], keepdim=False),
                         "malformed"),
    "a flat embedding table": (_table, "embedding table"),
    "an input of another dtype": (lambda g, t: g["inputs"][0].update(dtype="float64"),
                                  "dtype 'float64'"),
    "an input named twice": (lambda g, t: g["inputs"].append(dict(g["inputs"][0])),
                             "named twice"),
    "too many inputs": (lambda g, t: g.update(inputs=[dict(g["inputs"][0], name=f"x{i}")
                                                      for i in range(9)]), "1 to 8 inputs"),
    "a node not an object": (lambda g, t: g["nodes"].insert(0, [1, 2]), "not an object"),
    "a name not a string": (_set("name", 7, "relu"), "name 7"),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_graphs_raise_format_error(saved, tmp_path, case):
    change, match = HOSTILE[case]
    path = rewrite(saved, tmp_path, change)
    with pytest.raises(FormatError, match=match):
        runtime.load(path)
