"""compactnn.runtime: saved graphs run with numpy alone and match the compressed PyTorch
model to float32 rounding, at batch 1 and 64, for every op of the set; what it cannot run
is named when saving; inputs are checked; the runtime imports neither torch nor keras."""
import subprocess
import sys
import threading

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import compactnn.runtime as runtime  # noqa: E402
import compactnn.torch as cnt  # noqa: E402
from compactnn.evaluation import zoo  # noqa: E402
from compactnn.torch.export import CaptureError  # noqa: E402


class Residual(nn.Module):
    """A custom class (not rebuildable from the module tree alone): a residual block."""

    def __init__(self, c=8):
        super().__init__()
        self.c1, self.bn = nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c)
        self.c2 = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        return torch.relu(x + self.c2(torch.relu(self.bn(self.c1(x)))))


class Ops(nn.Module):
    """The rest of the op set: pools with padding, ceil mode and dilation, conv1d, cat,
    constants and scalars, views by x.size(0), squeeze/unsqueeze, softmax on channels."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, stride=(1, 2), padding=(1, 0), dilation=(2, 1))
        self.line = nn.Conv1d(6, 4, 3, padding=1)
        self.head = nn.Linear(16 + 6 + 24, 5)
        self.register_buffer("offset", torch.linspace(-1, 1, 5))

    def forward(self, x):
        F = nn.functional
        y = self.conv(x)                                                         # (N, 6, 6, 4)
        a = F.max_pool2d(y, 3, 2, padding=1, ceil_mode=True)                     # (N, 6, 4, 3)
        b = F.avg_pool2d(y, 2, 1, padding=1, count_include_pad=False)            # (N, 6, 7, 5)
        c = F.avg_pool2d(y, (3, 2), ceil_mode=True, divisor_override=5)          # (N, 6, 2, 2)
        s = F.softmax(a, dim=1) * 2.0 + 0.5 + F.adaptive_avg_pool2d(a, 1)        # broadcast
        line = torch.tanh(self.line(torch.sigmoid(b).flatten(2)))               # (N, 4, 35)
        pooled = F.adaptive_avg_pool2d(line.unsqueeze(2), (1, 4)).squeeze(2)     # (N, 4, 4)
        feats = torch.cat([pooled.reshape(x.size(0), -1),
                           F.adaptive_avg_pool2d(s, 1).flatten(1), c.flatten(1)], dim=1)
        return F.gelu(self.head(feats), approximate="tanh") * self.offset


def compressed(model, **kw):
    model.eval()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    return cnt.compress_model(model, progress=False, **{"prune": 0.5, "k": 16, **kw}).eval()


def check(model, shape, tmp_path, batches=(1, 64)):
    path = tmp_path / "m.cnnm"
    cnt.save(model, path, example_input=torch.randn(3, *shape))
    rt = runtime.load(path)
    assert rt.input_shape == tuple(shape)
    rng = np.random.default_rng(0)
    for batch in batches:
        x = rng.standard_normal((batch, *shape)).astype(np.float32)
        with torch.inference_mode():
            want = model(torch.from_numpy(x)).numpy()
        got = rt(x)
        assert got.dtype == np.float32 and got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
    return rt


def test_a_custom_residual_network(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(inplace=True), Residual(),
                          nn.MaxPool2d(2), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                          nn.Dropout(0.3), nn.Linear(32, 32), nn.GELU(), nn.Sigmoid(),
                          nn.Tanh(), nn.Linear(32, 10), nn.Softmax(-1))
    rt = check(compressed(model, objective="small"), (1, 8, 8), tmp_path)
    ops = {op for _, op, _, _ in rt.describe()}
    assert {"conv2d", "affine", "add", "max_pool2d", "adaptive_avg_pool2d", "flatten",
            "identity", "linear", "gelu", "sigmoid", "tanh", "softmax"} <= ops


def test_every_other_op(tmp_path):
    torch.manual_seed(1)
    check(compressed(Ops(), prune=0.3), (3, 8, 10), tmp_path, batches=(1, 7, 64))


def test_dense_models_run_too(tmp_path):
    torch.manual_seed(2)
    check(Ops().eval(), (3, 8, 10), tmp_path)


@pytest.mark.parametrize("make, shape", [(zoo.lenet_300_100, (1, 28, 28)),
                                         (zoo.lenet5, (1, 28, 28)),
                                         (zoo.vgg_style, (1, 28, 28))],
                         ids=["lenet-300-100", "lenet5", "vgg-style"])
def test_zoo_models(make, shape, tmp_path):
    torch.manual_seed(3)
    check(compressed(make(), prune=0.7, prune_scope="global"), shape, tmp_path)


def test_ccexam_cnn(tmp_path):
    pytest.importorskip("ccexam")
    small = cnt.compress_model(zoo.ccexam_mnist(), prune=0.7, prune_scope="global", k=16,
                               progress=False).eval()
    check(small, (1, 28, 28), tmp_path)


def test_stored_or_fast_forms(tmp_path):
    torch.manual_seed(4)
    model = compressed(zoo.lenet_300_100(), prune=0.7, prune_scope="global", objective="small")
    path = tmp_path / "m.cnnm"
    cnt.save(model, path, example_input=torch.randn(2, 1, 28, 28))
    stored, fast = runtime.load(path, forms="stored"), runtime.load(path)
    kinds = lambda rt: {n: type(m).__name__ for n, m in rt.graph.matrices.items()}
    assert set(kinds(stored).values()) != {"IndexMap"}  # Huffman-coded, as saved
    assert kinds(fast) != kinds(stored)
    x = np.random.default_rng(0).standard_normal((64, 1, 28, 28)).astype(np.float32)
    want = stored(x)
    np.testing.assert_allclose(fast(x), want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
    with pytest.raises(ValueError, match="forms must be one of"):
        runtime.load(path, forms="small")


def test_info_lists_what_the_runtime_re_encodes(tmp_path, capsys):
    from compactnn.cli.main import main
    from compactnn.matrix.formats import form_name

    torch.manual_seed(4)
    model = compressed(zoo.lenet_300_100(), prune=0.7, prune_scope="global", objective="small")
    path = tmp_path / "m.cnnm"
    cnt.save(model, path, example_input=torch.randn(2, 1, 28, 28))
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    stored = runtime.load(path, forms="stored").graph.matrices
    changed = {n: (stored[n], m) for n, m in runtime.load(path).graph.matrices.items()
               if form_name(m) != form_name(stored[n])}
    assert changed and "the runtime re-encodes for speed at load" in out
    for name, (was, m) in changed.items():
        assert (f"  {name}: {form_name(was)} {was.nbytes:,} bytes -> {form_name(m)} "
                f"{m.nbytes:,} bytes") in out


def test_deepdta_two_index_inputs_embeddings_transposes_and_max(tmp_path):
    from compactnn.evaluation import datasets

    torch.manual_seed(4)
    small = compressed(zoo.deepdta(datasets.SMILES_VOCAB, datasets.PROTEIN_VOCAB, filters=8,
                                   embed=16), prune=0.7)
    rng = np.random.default_rng(0)
    make = lambda b: (rng.integers(0, datasets.SMILES_VOCAB, (b, datasets.SMILES_LEN)),  # noqa
                      rng.integers(0, datasets.PROTEIN_VOCAB, (b, datasets.PROTEIN_LEN)))
    path = tmp_path / "dta.cnnm"
    cnt.save(small, path, example_input=tuple(map(torch.from_numpy, make(2))))
    rt = runtime.load(path)
    assert rt.inputs == [((datasets.SMILES_LEN,), "int64"), ((datasets.PROTEIN_LEN,), "int64")]
    ops = {op for _, op, _, _ in rt.describe()}
    assert {"embedding", "permute", "reduce", "cat"} <= ops
    for batch in (1, 64):
        d, p = make(batch)
        with torch.inference_mode():
            want = small((torch.from_numpy(d), torch.from_numpy(p))).numpy()
        got = rt((d, p))
        assert got.shape == (batch,)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
    d, p = make(2)
    with pytest.raises(ValueError, match="2 input"):
        rt(d)
    with pytest.raises(ValueError, match="different batch sizes"):
        rt((d, p[:1]))
    with pytest.raises(TypeError, match="indices"):
        rt((d.astype(np.float32), p))
    negative = d.copy()
    negative[0, 0] = -1
    with pytest.raises(ValueError, match="outside 0"):
        rt((negative, p))
    with pytest.raises(ValueError, match="not a row of the"):
        rt((d + datasets.SMILES_VOCAB, p))
    with pytest.raises(ValueError, match="see .inputs"):
        rt.input_shape


class Channels(nn.Module):
    """Channels-last views and reductions: permute, mean and amax over adjacent dims."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4 + 4 + 16, 2)

    def forward(self, x):
        y = self.conv(x).permute(0, 2, 3, 1)                        # (N, 4, 4, 4)
        pooled, peak = y.mean(dim=(1, 2)), torch.amax(y, dim=(1, 2))  # (N, 4) each
        rows = torch.amax(y, dim=3, keepdim=True).flatten(1)          # (N, 16)
        return self.fc(torch.cat([pooled, peak, rows], 1))


def test_permutes_and_reductions(tmp_path):
    torch.manual_seed(5)
    rt = check(Channels().eval(), (3, 6, 6), tmp_path)
    assert [op for _, op, _, _ in rt.describe()].count("reduce") == 3


def test_plans_share_the_arena_and_threads_agree(tmp_path):
    torch.manual_seed(4)
    model = compressed(nn.Sequential(*[m for _ in range(4) for m in (nn.Linear(64, 64),
                                                                         nn.ReLU())]))
    rt = check(model, (64,), tmp_path)
    plan = rt._plan(64)[0]
    values = sum(int(np.prod(plan.shapes[n["name"]])) for n in rt.graph.nodes) + 64 * 64
    assert plan.arena_size <= 3 * 64 * 64 < values  # a chain needs two live values at a time
    x = np.random.default_rng(5).standard_normal((64, 64)).astype(np.float32)
    want = rt(x, threads=1)
    out = [None] * 4

    def call(i):
        out[i] = rt(x, threads=2)

    workers = [threading.Thread(target=call, args=(i,)) for i in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    for y in out:
        np.testing.assert_array_equal(y, want)


def test_inputs_are_checked(tmp_path):
    torch.manual_seed(6)
    rt = check(compressed(nn.Sequential(nn.Linear(6, 3))), (6,), tmp_path, batches=(2,))
    with pytest.raises(ValueError, match=r"shape \(batch, 6\), got \(2, 5\)"):
        rt(np.zeros((2, 5), np.float32))
    with pytest.raises(ValueError, match="got \\(6,\\)"):
        rt(np.zeros(6, np.float32))
    with pytest.raises(ValueError, match="got \\(0, 6\\)"):
        rt(np.zeros((0, 6), np.float32))
    with pytest.raises(TypeError, match="floating-point"):
        rt(np.zeros((2, 6), np.int64))
    with pytest.raises(ValueError, match="threads"):
        rt(np.zeros((2, 6), np.float32), threads=0)
    np.testing.assert_allclose(rt(np.ones((2, 6))), rt(np.ones((2, 6), np.float32)))


def test_what_the_runtime_cannot_run_is_named(tmp_path):
    class Sorts(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x):
            return torch.sort(self.fc(x), dim=1).values

    with pytest.raises(CaptureError, match=r"aten.sort.*module '\(root\)'.*it runs: "):
        cnt.save(Sorts().eval(), tmp_path / "a.cnnm", example_input=torch.randn(2, 4))
    model = nn.Sequential(nn.Linear(4, 4))
    with pytest.raises(CaptureError, match="model.eval"):
        cnt.save(model.train(), tmp_path / "b.cnnm", example_input=torch.randn(2, 4))
    with pytest.raises(CaptureError, match="floating-point or integer"):
        cnt.save(model.eval(), tmp_path / "c.cnnm", example_input=torch.zeros(2, 4, dtype=bool))
    with pytest.raises(CaptureError, match="different batch sizes"):
        cnt.save(model.eval(), tmp_path / "d.cnnm",
                 example_input=(torch.zeros(2, 4), torch.zeros(3, 4)))
    assert not any(tmp_path.iterdir())  # nothing written


def test_files_without_a_graph(tmp_path):
    torch.manual_seed(7)
    path = tmp_path / "m.cnnm"
    cnt.save(compressed(nn.Sequential(nn.Linear(6, 3))), path)
    with pytest.raises(cn_format_error(), match="holds no graph"):
        runtime.load(path)
    # version-1 files (before graphs) still load in PyTorch
    data = bytearray(path.read_bytes())
    assert data[8:12] == (2).to_bytes(4, "little")
    data[8:12] = (1).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    assert isinstance(cnt.load(path), nn.Module)


def test_graph_files_still_load_in_pytorch(tmp_path):
    torch.manual_seed(8)
    model = compressed(nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(),
                                     nn.Linear(4 * 36, 3)))
    path = tmp_path / "m.cnnm"
    cnt.save(model, path, example_input=torch.randn(2, 1, 8, 8))
    back = cnt.load(path).eval()
    x = torch.randn(5, 1, 8, 8)
    with torch.inference_mode():
        np.testing.assert_array_equal(back(x).numpy(), model(x).numpy())


def cn_format_error():
    import compactnn as cn

    return cn.FormatError


NO_FRAMEWORK = r"""
import sys
import numpy as np
import compactnn.runtime as runtime
rt = runtime.load(sys.argv[1])
y = rt(np.load(sys.argv[2]))
np.save(sys.argv[3], y)
print(sorted(m for m in ("torch", "keras", "tensorflow", "jax") if m in sys.modules))
"""


def test_runs_without_importing_torch(tmp_path):
    torch.manual_seed(9)
    model = compressed(nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(),
                                     nn.Linear(4 * 36, 3)))
    path, x = tmp_path / "m.cnnm", np.random.default_rng(1).random((4, 1, 8, 8), np.float32)
    cnt.save(model, path, example_input=torch.from_numpy(x))
    np.save(tmp_path / "x.npy", x)
    out = subprocess.run([sys.executable, "-c", NO_FRAMEWORK, str(path), str(tmp_path / "x.npy"),
                          str(tmp_path / "y.npy")], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    with torch.inference_mode():
        want = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), want, rtol=1e-5, atol=1e-6)
