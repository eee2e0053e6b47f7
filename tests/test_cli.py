import subprocess
import sys

import pytest

from compactnn.cli import main


def test_demo_prints_every_format():
    out = subprocess.run(
        [sys.executable, "-m", "compactnn", "demo", "--rows", "64", "--cols", "96", "--k", "8"],
        capture_output=True, text=True, check=True,
    ).stdout
    for name in ("numpy float32", "IndexMap", "HAM", "HCSR", "90% pruned, k=8", "dense, k=8"):
        assert name in out
    rows = [line for line in out.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == 1 + 8
    errors = [float(r.split("|")[6]) for r in rows[1:]]
    assert max(errors) < 1e-5


@pytest.mark.parametrize("args", [["demo", "--k", "0"], ["demo", "--prune", "1.5"],
                                  ["demo", "--rows", "x"], ["demo", "--k", "70000"], []])
def test_bad_arguments_exit_with_usage(args, capsys):
    with pytest.raises(SystemExit) as e:
        main(args)
    assert e.value.code == 2
    assert "usage" in capsys.readouterr().err
