"""Saving and loading matrix files: paths of every kind, argument types, and the atomic
save (an existing file is replaced whole or kept, no temporary file is left, file modes
are as open() makes them)."""
import os
import stat

import numpy as np
import pytest

import compactnn as cn
from helpers.files import ALL, MATRICES, assert_same_matrix, valid_file
from helpers.matrices import FORMATS

pytestmark = pytest.mark.emulated


# -- paths and argument types --------------------------------------------------------------
def test_load_missing_path(tmp_path):
    with pytest.raises(FileNotFoundError):
        cn.load(tmp_path / "does-not-exist.cnn")
    with pytest.raises(FileNotFoundError):
        cn.load(str(tmp_path / "nope" / "deeper.cnn"))


def test_load_invalid_file(tmp_path):
    p = tmp_path / "junk.cnn"
    p.write_bytes(b"hello world")
    with pytest.raises(cn.FormatError):
        cn.load(p)
    p.write_bytes(b"")
    with pytest.raises(cn.FormatError):
        cn.load(p)


@pytest.mark.parametrize("bad", ["", "\x89CNN\r\n\x1a\n", 12, None, 1.5, [1, 2], np.zeros(40)])
def test_frombytes_wrong_type(bad):
    with pytest.raises(TypeError):
        cn.frombytes(bad)


def test_frombytes_str_of_valid_file():
    data = valid_file(cn.HAM)
    with pytest.raises(TypeError):
        cn.frombytes(data.decode("latin-1"))


def test_format_error_is_value_error():
    assert issubclass(cn.FormatError, ValueError)


# -- atomic save ---------------------------------------------------------------------------
def _leftovers(folder, keep):
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


@ALL
def test_save_replaces_existing(fmt, tmp_path):
    path = tmp_path / "w.cnn"
    path.write_bytes(b"old contents that are longer than nothing" * 100)
    m1 = fmt.from_dense(MATRICES["dense_quantized"])
    m1.save(path)
    assert path.read_bytes() == m1.tobytes()
    assert_same_matrix(m1, cn.load(path))
    m2 = fmt.from_dense(MATRICES["k1_nonzero"])
    m2.save(path)  # a shorter file over a longer one
    assert path.read_bytes() == m2.tobytes()
    assert_same_matrix(m2, cn.load(path))
    m2.save(str(path))
    assert path.read_bytes() == m2.tobytes()
    assert _leftovers(tmp_path, {"w.cnn"}) == []


def test_save_many_times_no_temp_files(tmp_path):
    for i, fmt in enumerate(FORMATS * 3):
        fmt.from_dense(MATRICES["sparse90"]).save(tmp_path / f"m{i % 2}.cnn")
    assert _leftovers(tmp_path, {"m0.cnn", "m1.cnn"}) == []


def test_save_relative_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    m = cn.HCSR.from_dense(MATRICES["sparse90"])
    m.save("rel.cnn")
    assert_same_matrix(m, cn.load("rel.cnn"))
    assert _leftovers(tmp_path, {"rel.cnn"}) == []


def test_save_failure_leaves_nothing(tmp_path):
    """Saving onto a directory fails, keeps the directory and leaves no temp file."""
    target = tmp_path / "adir"
    target.mkdir()
    (target / "inside").write_bytes(b"x")
    m = cn.HAM.from_dense(MATRICES["dense_quantized"])
    with pytest.raises(OSError):
        m.save(target)
    assert target.is_dir() and (target / "inside").read_bytes() == b"x"
    assert _leftovers(tmp_path, {"adir"}) == []


def test_save_into_missing_folder(tmp_path):
    m = cn.IndexMap.from_dense(MATRICES["dense_quantized"])
    with pytest.raises(FileNotFoundError):
        m.save(tmp_path / "missing" / "m.cnn")
    assert _leftovers(tmp_path, set()) == []


def test_save_bytes_path(tmp_path):
    """Paths may be bytes, like everywhere in os and open(); load accepts them, save must
    too."""
    m = cn.HCSR.from_dense(MATRICES["sparse90"])
    path = os.fsencode(tmp_path / "b.cnn")
    m.save(path)
    assert_same_matrix(m, cn.load(path))
    assert _leftovers(tmp_path, {"b.cnn"}) == []


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_save_file_mode(tmp_path):
    """save() creates files like open() does (mode 0o666 & ~umask), and replacing a file
    does not make it private: the temp file of an atomic save must not leak mkstemp's
    0o600 into the result."""
    old_umask = os.umask(0o022)
    try:
        m = cn.HAM.from_dense(MATRICES["dense_quantized"])
        new = tmp_path / "new.cnn"
        m.save(new)
        existing = tmp_path / "existing.cnn"
        existing.write_bytes(b"old")
        os.chmod(existing, 0o644)
        m.save(existing)
        modes = {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in (new, existing)}
        assert modes == {"new.cnn": "0o644", "existing.cnn": "0o644"}
    finally:
        os.umask(old_umask)


def test_save_keeps_old_file_when_write_fails(tmp_path, monkeypatch):
    """If writing the new contents fails, the old file is untouched and no temp file
    remains."""
    path = tmp_path / "w.cnn"
    old = cn.HAM.from_dense(MATRICES["k1_nonzero"])
    old.save(path)
    before = path.read_bytes()

    m = cn.HAM.from_dense(MATRICES["dense_quantized"])
    real_replace = os.replace

    def failing_replace(src, dst):
        raise OSError("simulated failure")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="simulated"):
        m.save(path)
    monkeypatch.setattr(os, "replace", real_replace)
    assert path.read_bytes() == before
    assert _leftovers(tmp_path, {"w.cnn"}) == []
