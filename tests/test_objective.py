"""The size/speed objective: the greedy choice on given numbers, and the forms it keeps for
given layers under each kernel set's cost model (pinned: the model is written down, so the
choice depends only on the layer and the kernel set)."""
import numpy as np
import pytest
import torch
from torch import nn

import compactnn.torch as cnt
from compactnn import _core
from compactnn.compression.costs import COSTS, expected_ns, kind, table
from compactnn.compression.objective import pick
from compactnn.compression.pipeline import candidates, choose
from compactnn.matrix.formats import form_name


def test_pick_small_and_fast_on_numbers():
    one = [[(100, 10.0), (110, 5.0), (120, 1.0)]]
    assert pick(one, "small") == [0]
    assert pick(one, "fast") == [1]  # 120 is more than 15% over 100
    assert pick(one, "fast", margin=0.2) == [2]
    assert pick([[(100, 10.0), (90, 20.0), (90, 5.0)]], "fast") == [2]  # free moves first
    # Two layers share the budget (15% of 1100 = 165 bytes): the better time per byte wins.
    two = [[(1000, 100.0), (1100, 50.0)], [(100, 10.0), (250, 1.0)]]
    assert pick(two, "fast") == [1, 0]
    two[0][1] = (1100, 99.0)  # now saving 9 on layer 2 per 150 bytes is better; then no room
    assert pick(two, "fast") == [0, 1]
    # Ties go to the earlier option, whatever the order of equal options.
    assert pick([[(100, 5.0), (100, 5.0)]], "fast") == [0]
    with pytest.raises(ValueError, match="objective"):
        pick(one, "quick")


def layer(shape, prune, k, seed=0):
    W = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    return candidates(W, prune, "cws", k, "auto", "fast")


@pytest.mark.parametrize("shape, prune, k, isa, fast, small", [
    ((360, 2048), 0.9, 31, "avx2", "hcsr-lanes", "hcsr-lanes"),  # others over 15% larger
    ((360, 2048), 0.0, 16, "avx2", "indexmap", "ham-lanes"),
    ((360, 2048), 0.0, 16, "avx512", "indexmap", "ham-lanes"),
    ((64, 288), 0.5, 16, "avx2", "hcsr-rows", "ham-rows"),  # small: rows without tables
    ((128, 3136), 0.7, 16, "avx2", "ham-lanes", "hcsr-lanes"),
    ((128, 3136), 0.7, 16, "scalar", "hcsr-lanes", "hcsr-lanes"),
    ((2048, 2048), 0.99, 31, "avx2", "hcsr-fixed", "hcsr-lanes"),
    ((2048, 2048), 0.99, 31, "scalar", "hcsr-fixed", "hcsr-lanes"),
    ((2048, 2048), 0.99, 31, "avx512", "hcsr-fixed", "hcsr-lanes"),
    ((32, 9), 0.3, 16, "avx2", "indexmap", "indexmap"),
])
def test_forms_kept_for_given_layers(shape, prune, k, isa, fast, small):
    forms = layer(shape, prune, k)
    smallest = choose(forms, "small", isa)
    assert form_name(smallest) == small
    m = choose(forms, "fast", isa)
    assert form_name(m) == fast and m.nbytes <= 1.15 * smallest.nbytes
    faster = [f for f in forms if f.nbytes <= 1.15 * smallest.nbytes
              and expected_ns(f, isa=isa) < expected_ns(m, isa=isa)]
    assert not faster


def test_cost_model_covers_every_form_and_kernel_set():
    for isa in _core.supported_isas():
        costs = table(isa)
        assert set(costs) == set(COSTS["avx2"])
    assert set(COSTS) == {"scalar", "avx2", "avx512"}
    assert all(set(c) == set(COSTS["avx2"]) for c in COSTS.values())
    kinds = {kind(m) for shape, prune, k in [((40, 256), 0.5, 16), ((40, 256), 0, 64),
                                             ((1024, 1024), 0.0, 16), ((256, 1024), 0.5, 16)]
             for m in layer(shape, prune, k)}
    assert kinds | {"dense", "indexmap8"} == set(COSTS["avx2"])
    assert table("neon") is COSTS["scalar"]  # unmeasured: the scalar model stands in
    with pytest.raises(ValueError, match="no cost model"):
        table("sse9")


@pytest.mark.usefixtures("restore_isa")
def test_a_model_keeps_small_layers_dense_within_the_margin():
    """On the scalar set's model a tiny first layer is cheaper dense (no per-call cost of a
    compact form is saved) and the whole model stays within 15% of its smallest size."""
    _core.set_isa("scalar")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.Flatten(),
                          nn.Linear(8 * 26 * 26, 256), nn.ReLU(), nn.Linear(256, 10)).eval()
    small = cnt.compress_model(model, prune=0.9, k=16, objective="small", progress=False)
    fast = cnt.compress_model(model, prune=0.9, k=16, progress=False)
    assert cnt.model_nbytes(fast) <= 1.15 * cnt.model_nbytes(small)
    assert type(fast[0]) is nn.Conv2d and isinstance(small[0], cnt.CompressedModule)
    assert torch.equal(fast[0].weight, model[0].weight)  # kept dense: weights unchanged
    assert isinstance(fast[3], cnt.CompressedLinear)
    np.testing.assert_array_equal(fast[3].matrix.to_dense(), small[3].matrix.to_dense())
