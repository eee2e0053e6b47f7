"""compactnn.torch.save / load: round trips, custom classes, and hostile model files."""
import json
import struct
import tracemalloc
import zlib

import numpy as np
import pytest
import torch
from torch import nn

import compactnn as cn
import compactnn.torch as cnt
from compactnn.model import file_format


def stack():
    return nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv1d(6, 6, 1) if False else nn.Identity(),
        nn.Flatten(), nn.Linear(6 * 8 * 8, 20), nn.ReLU(), nn.Linear(20, 10, bias=False),
    ).eval()


class Custom(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(3, 5, 3, padding=1)
        self.head = nn.Linear(5 * 12, 4)

    def forward(self, x):
        return self.head(torch.relu(self.conv(x)).flatten(1))


@pytest.fixture
def small():
    model = stack()
    with torch.no_grad():
        model[1].running_mean.uniform_(-1, 1)
    return cnt.compress_model(model, prune=0.5, k=16, progress=False,
                              layers={"8": "dense"})


def outputs(model, x):
    with torch.inference_mode():
        return model(x)


def test_round_trip_of_a_standard_stack(small, tmp_path):
    path = tmp_path / "m.cnnm"
    cnt.save(small, path)
    back = cnt.load(path)
    x = torch.randn(3, 1, 16, 16)
    assert torch.equal(outputs(back, x), outputs(small, x))
    assert cnt.model_nbytes(back) == cnt.model_nbytes(small)
    assert type(back[8]) is nn.Linear and back[8].bias is None
    assert isinstance(back[6], cnt.CompressedLinear)
    assert back[6].plan == small[6].plan and not back.training
    assert torch.equal(back[1].running_mean, small[1].running_mean)
    assert not any(t.is_meta for t in back.state_dict().values())


def test_custom_class_needs_its_architecture(tmp_path):
    model = Custom().eval()
    small = cnt.compress_model(model, prune=0.3, k=8, progress=False)
    path = tmp_path / "c.cnnm"
    cnt.save(small, path)
    with pytest.raises(ValueError, match="pass model="):
        cnt.load(path)
    x = torch.randn(2, 3, 12)
    for arch in (Custom, Custom()):
        back = cnt.load(path, model=arch)
        assert isinstance(back, Custom)
        assert torch.equal(outputs(back, x), outputs(small, x))
    with pytest.raises(ValueError, match="no module 'conv'"):
        cnt.load(path, model=lambda: nn.Sequential(nn.Linear(60, 4)))
    with pytest.raises(TypeError, match="model="):
        cnt.load(path, model=3)


def test_loading_makes_no_dense_copy(tmp_path):
    """A 2048 x 2048 layer (16 MiB dense) loads with far less than that allocated by numpy
    or Python: the architecture is built on the meta device, the matrices directly."""
    model = nn.Sequential(nn.Linear(2048, 2048), nn.ReLU(), nn.Linear(2048, 10))
    small = cnt.compress_model(model, prune=0.95, k=16, progress=False)
    path = tmp_path / "big.cnnm"
    cnt.save(small, path)
    del model
    tracemalloc.start()
    back = cnt.load(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 2048 * 2048 * 4 / 8
    for mod in back.modules():
        for t in list(mod.parameters(recurse=False)) + list(mod.buffers(recurse=False)):
            assert t.numel() < 2048 * 2048


def write_raw(path, meta, entries_blobs):
    """A model file built by hand, with valid checksums."""
    entries, blobs, offset = [], [], 0
    for entry, blob in entries_blobs:
        entries.append(dict(entry, offset=offset, nbytes=len(blob), crc32=zlib.crc32(blob)))
        blobs.append(blob)
        offset += len(blob)
    meta = meta if isinstance(meta, str) else json.dumps(meta)  # str: JSON text as it is
    head = ('{"meta": %s, "entries": %s}' % (meta, json.dumps(entries))).encode()
    data = struct.pack("<8sIII", b"CNNMODEL", 1, len(head), zlib.crc32(head)) + head
    path.write_bytes(data + b"".join(blobs))


@pytest.mark.hardening
def test_every_truncation_and_flip_is_a_format_error(small, tmp_path):
    path = tmp_path / "m.cnnm"
    cnt.save(small, path)
    data = path.read_bytes()
    bad = tmp_path / "bad.cnnm"
    rng = np.random.default_rng(0)
    cuts = sorted(set(rng.integers(0, len(data), 60).tolist()) | {0, 7, 8, 20, len(data) - 1})
    for cut in cuts:
        bad.write_bytes(data[:cut])
        with pytest.raises(cn.FormatError):
            cnt.load(bad)
    for pos in rng.integers(0, len(data), 60):
        flipped = bytearray(data)
        flipped[pos] ^= 1 << int(rng.integers(8))
        bad.write_bytes(bytes(flipped))
        with pytest.raises(cn.FormatError):
            cnt.load(bad)
    bad.write_bytes(data + b"\0")
    with pytest.raises(cn.FormatError, match="holds"):
        cnt.load(bad)


def linear_node(args=None):
    return {"type": "torch.nn.Linear", "args": args or {"in_features": 2, "out_features": 2,
                                                        "bias": False}, "children": []}


def tensor(name, arr):
    arr = np.asarray(arr)
    return dict(name=name, kind="tensor", dtype=arr.dtype.name, shape=list(arr.shape)), \
        arr.tobytes()


HOSTILE = {
    "wrong framework": (dict(framework="keras", root=linear_node()), []),
    "no root": (dict(framework="torch"), []),
    "bad args": (dict(framework="torch", root=linear_node({"in_features": -1,
                                                           "out_features": 2})), []),
    "object args": (dict(framework="torch", root=linear_node({"in_features": {"a": 1}})), []),
    "missing tensor": (dict(framework="torch", root=linear_node()), []),
    "wrong shape": (dict(framework="torch", root=linear_node()),
                    [tensor("weight", np.zeros((3, 2), np.float32))]),
    "int weight": (dict(framework="torch", root=linear_node()),
                   [tensor("weight", np.zeros((2, 2), np.int32))]),
    "extra tensor": (dict(framework="torch", root=linear_node()),
                     [tensor("weight", np.zeros((2, 2), np.float32)),
                      tensor("other", np.zeros(1, np.float32))]),
    "compressed without matrix": (dict(framework="torch", root={
        "type": "compactnn.CompressedLinear", "args": {}}), []),
    "bad child": (dict(framework="torch", root={
        "type": "torch.nn.Sequential", "args": {}, "children": [["forward", linear_node()]]}),
        []),
    "malformed child": (dict(framework="torch", root={
        "type": "torch.nn.Sequential", "args": {}, "children": [3]}), []),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_files_with_valid_checksums(case, tmp_path):
    meta, parts = HOSTILE[case]
    path = tmp_path / "h.cnnm"
    write_raw(path, meta, parts)
    with pytest.raises(cn.FormatError):
        cnt.load(path)


def test_deeply_nested_tree_is_a_format_error(tmp_path):
    depth = 5000
    node = ('{"type": "torch.nn.Sequential", "args": {}, "children": [["0", ' * depth
            + json.dumps(linear_node()) + "]]}" * depth)
    path = tmp_path / "deep.cnnm"
    write_raw(path, '{"framework": "torch", "root": %s}' % node, [])
    with pytest.raises(cn.FormatError):
        cnt.load(path)


def test_classes_outside_torch_nn_are_never_imported(tmp_path):
    path = tmp_path / "os.cnnm"
    write_raw(path, dict(framework="torch", root={"type": "os.system", "args": {}}), [])
    with pytest.raises(ValueError, match="pass model="):
        cnt.load(path)
    write_raw(path, dict(framework="torch", root={"type": "torch.nn.functional.relu",
                                                  "args": {}}), [])
    with pytest.raises(ValueError, match="pass model="):
        cnt.load(path)


def test_entries_must_be_consistent(tmp_path):
    path = tmp_path / "e.cnnm"
    meta = dict(framework="torch", root=linear_node())
    good = tensor("weight", np.zeros((2, 2), np.float32))
    for change in (dict(dtype="object"), dict(shape=[2, 3]), dict(shape=[-1]),
                   dict(kind="code"), dict(name=5)):
        write_raw(path, meta, [(dict(good[0], **change), good[1])])
        with pytest.raises(cn.FormatError, match="malformed"):
            file_format.read(path)
    write_raw(path, meta, [good, good])
    with pytest.raises(cn.FormatError, match="repeat"):
        file_format.read(path)
    matrix = cn.IndexMap.from_dense(np.ones((2, 2), np.float32)).tobytes()
    write_raw(path, meta, [(dict(name="m", kind="matrix"), matrix[:-1])])
    with pytest.raises(cn.FormatError, match="matrix 'm'"):
        file_format.read(path)


def test_not_a_model_file(tmp_path):
    path = tmp_path / "x.cnnm"
    path.write_bytes(b"hello world, this is not a model file at all")
    with pytest.raises(cn.FormatError, match="magic"):
        cnt.load(path)
    cn.IndexMap.from_dense(np.ones((2, 2), np.float32)).save(path)
    with pytest.raises(cn.FormatError, match="magic"):
        cnt.load(path)
