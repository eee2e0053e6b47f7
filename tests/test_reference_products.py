"""The scalar kernels give the same bits on every architecture: their products on fixed
inputs against digests written on x86 (tests/helpers/reference_products.py)."""
import json

import pytest

from helpers.reference_products import PATH, digests

pytestmark = pytest.mark.emulated


def test_scalar_products_match_the_reference_digests():
    want = json.loads(PATH.read_text())
    got = digests()
    assert sorted(got) == sorted(want)
    assert {k for k in got if got[k] != want[k]} == set()
