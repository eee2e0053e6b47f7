"""The forms the runtime keeps matrices in (runtime/forms.py): with forms="fast" a Huffman-
coded matrix is re-encoded where the cost model ranks another compressed form much faster,
with the same weights and a bounded size; nothing else changes."""
import numpy as np
import pytest

import compactnn as cn
from compactnn.compression.costs import expected_ns
from compactnn.runtime.forms import SPEEDUP, fastest, in_memory


def weights(rows, cols, density, k, seed=0):
    rng = np.random.default_rng(seed)
    values = rng.standard_normal(k - 1).astype(np.float32)
    W = rng.choice(values, (rows, cols))
    W[rng.random((rows, cols)) >= density] = 0.0
    return W


def test_a_huffman_coded_layer_becomes_an_index_map():
    # ccexam's first linear layer: 128 x 3136, 28% kept, 16 values with zero.  Every
    # measured kernel set models the Index Map at least 1.6x faster than HCSR's lanes.
    m = cn.HCSR.from_dense(weights(128, 3136, 0.28, 16)).with_layout("lanes")
    fast = fastest(m)
    assert isinstance(fast, cn.IndexMap)
    np.testing.assert_array_equal(fast.to_dense(), m.to_dense())
    assert fast.nbytes <= m.nbytes_dense // 4
    assert expected_ns(fast) * SPEEDUP <= expected_ns(m)
    x = np.random.default_rng(1).standard_normal((5, 3136)).astype(np.float32)
    np.testing.assert_allclose(fast.linear(x), m.linear(x), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("fmt, layout, density, k", [
    (cn.HCSR, "rows", 0.1, 8), (cn.HCSR, "lanes", 0.5, 64), (cn.HAM, "lanes", 0.3, 16),
    (cn.HAM, "rows", 0.9, 300), (cn.IndexMap, None, 0.2, 16), (cn.HCSR, "fixed", 0.05, 16),
])
def test_whatever_is_chosen_keeps_the_weights_and_the_bounds(fmt, layout, density, k):
    m = fmt.from_dense(weights(96, 200, density, k))
    if layout:
        m = m.with_layout(layout)
    fast = fastest(m)
    np.testing.assert_array_equal(fast.to_dense(), m.to_dense())
    if fast is not m:
        assert fast.nbytes <= max(m.nbytes, m.nbytes_dense // 4)
        assert expected_ns(fast) * SPEEDUP <= expected_ns(m)


def test_a_form_already_fast_is_kept():
    m = cn.IndexMap.from_dense(weights(64, 256, 0.5, 16))
    assert fastest(m) is m


def test_stored_keeps_the_files_matrices():
    ms = {"a": cn.HCSR.from_dense(weights(128, 3136, 0.28, 16)).with_layout("lanes")}
    assert in_memory(ms, "stored") is ms
    assert isinstance(in_memory(ms, "fast")["a"], cn.IndexMap)
    with pytest.raises(ValueError, match="forms must be one of"):
        in_memory(ms, "quick")
