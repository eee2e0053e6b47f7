"""Damaged matrix files: every truncation, random corruption and bit flip, trailing bytes and
junk raise FormatError (the checksums catch them), and a buffer rewritten while it loads
gives what passed the checksum or an error."""
import numpy as np
import pytest

import compactnn as cn
from helpers.files import FORMAT_IDS, MAGIC, expect_format_error, valid_file
from helpers.matrices import FORMATS

pytestmark = pytest.mark.emulated


# -- truncation ----------------------------------------------------------------------------
@pytest.mark.hardening
@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.__name__)
def test_every_truncation_raises(fmt):
    data = valid_file(fmt)
    cn.frombytes(data)  # the whole file is fine
    for i in range(len(data)):
        with pytest.raises(cn.FormatError) as exc:
            cn.frombytes(data[:i])
        assert str(exc.value), f"empty message for a truncation to {i} bytes"


@pytest.mark.hardening
@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.__name__)
def test_truncated_empty_matrix_raises(fmt):
    data = fmt.from_dense(np.zeros((0, 3), np.float32)).tobytes()
    for i in range(len(data)):
        with pytest.raises(cn.FormatError):
            cn.frombytes(data[:i])


# -- corruption ----------------------------------------------------------------------------
@pytest.mark.hardening
@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.__name__)
def test_random_byte_corruption_raises(fmt):
    data = valid_file(fmt)
    rng = np.random.default_rng(FORMAT_IDS[fmt])
    for trial in range(300):
        bad = bytearray(data)
        n = int(rng.integers(1, 4))
        where = rng.choice(len(data), size=n, replace=False)
        for p in where:
            bad[p] ^= int(rng.integers(1, 256))  # a nonzero xor: the byte changes
        with pytest.raises(cn.FormatError) as exc:
            cn.frombytes(bytes(bad))
        assert str(exc.value), f"trial {trial}: empty message (bytes {sorted(where)})"


@pytest.mark.hardening
@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.__name__)
def test_single_bit_flips_raise(fmt):
    data = valid_file(fmt)
    for p in range(len(data)):
        for bit in (0, 7):
            bad = bytearray(data)
            bad[p] ^= 1 << bit
            with pytest.raises(cn.FormatError):
                cn.frombytes(bytes(bad))


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("extra", [b"\x00", b"\x00" * 8, b"garbage!", b"\x00" * 12])
def test_trailing_bytes_raise(fmt, extra):
    data = valid_file(fmt)
    expect_format_error(data + extra, match="trailing")


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.__name__)
def test_appended_file_raises(fmt):
    data = valid_file(fmt)
    expect_format_error(data + data)


@pytest.mark.parametrize("data", [b"", b"\x00" * 40, MAGIC, MAGIC + b"\x00" * 32, b"x" * 1000])
def test_junk_raises(data):
    expect_format_error(data)


# -- a buffer changed while it loads -------------------------------------------------------
@pytest.mark.hardening
def test_checksum_is_checked_on_the_bytes_kept():
    """A buffer rewritten while it loads (another thread, a file mapped while rewritten):
    what loads is always what passed the checksum.  The codebook section of a 256x256 HCSR
    with codebook 1..65536 has one byte flipped back and forth; every load must either fail
    its checksum or give the exact original codebook."""
    import threading

    rng = np.random.default_rng(0)
    codebook = np.arange(1, 65537, dtype=np.float32)
    m = cn.HCSR.from_codebook(codebook, rng.integers(0, 65536, (256, 256)))
    data = bytearray(m.tobytes())
    stop = threading.Event()

    def flip():
        while not stop.is_set():
            data[52] ^= 1

    t = threading.Thread(target=flip)
    t.start()
    try:
        for _ in range(300):
            try:
                back = cn.frombytes(data)
            except cn.FormatError:
                continue
            np.testing.assert_array_equal(back.codebook, codebook)
    finally:
        stop.set()
        t.join()
