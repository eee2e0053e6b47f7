"""The Python examples of the README and the user guide run as written, each block on its
own (its own imports and data, in a fresh namespace), as a reader pastes them."""
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def blocks(page: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", (ROOT / page).read_text(), re.S)


def run_each(page: str, tmp_path, monkeypatch) -> None:
    found = blocks(page)
    assert found, f"{page} has no python block"
    for i, block in enumerate(found):
        where = tmp_path / f"block{i}"
        where.mkdir()
        monkeypatch.chdir(where)
        exec(compile(block, f"{page}, python block {i + 1}", "exec"), {"__name__": "__main__"})


def test_readme_examples_run(tmp_path, monkeypatch):
    assert len(blocks("README.md")) >= 2
    run_each("README.md", tmp_path, monkeypatch)
    assert (tmp_path / "block0" / "layer.cnn").exists()
    assert (tmp_path / "block1" / "model.cnnm").exists()


@pytest.mark.training  # the guide's model examples compress and fine-tune networks
def test_user_guide_examples_run(tmp_path, monkeypatch):
    run_each("docs/usage.md", tmp_path, monkeypatch)
