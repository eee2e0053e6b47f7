"""Fixtures shared by the test modules; shared helpers live in tests/helpers/.

Tiers (the markers are described in pyproject.toml): `python -m pytest` runs the fast tier,
every test not marked training, slow or hardening; `-m training`, `-m hardening` and
`-m slow` run those; `-m emulated` runs the kernel, format, file and lane tests that CI runs
again on emulated instruction sets; `-m ""` runs everything."""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")  # keras 3 on the installed backend

import pytest  # noqa: E402

from compactnn import _core  # noqa: E402
from helpers.matrices import FORMATS  # noqa: E402


def pytest_ignore_collect(collection_path, config):
    """With `-m emulated` alone, modules that hold no emulated test are not imported: that
    selection runs where only numpy, pytest and hypothesis are installed (emulated CPUs,
    wheels under test), and their other tests would be deselected anyway."""
    if (config.getoption("markexpr") == "emulated" and collection_path.suffix == ".py"
            and collection_path.name.startswith("test_")):
        return "mark.emulated" not in collection_path.read_text()
    return None


@pytest.fixture(params=FORMATS, ids=lambda f: f.__name__)
def fmt(request):
    return request.param


@pytest.fixture
def restore_isa():
    """Puts the kernel set back after a test that switches it (_core.set_isa)."""
    before = _core.isa()
    yield
    _core.set_isa(before)
