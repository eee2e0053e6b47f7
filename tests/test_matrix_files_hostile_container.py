"""Hostile matrix files whose checksums are valid, in what every format shares: the header
(magic, version, format id, shape), the section table and the codebook."""
import numpy as np
import pytest

import compactnn as cn
from helpers.files import (ALL, FORMAT_IDS, SECTION_COUNTS, File, expect_format_error, mutated,
                           set_fields, valid_file)

pytestmark = pytest.mark.emulated


# -- header --------------------------------------------------------------------------------
@ALL
@pytest.mark.parametrize(
    "magic", [b"\x89CNN\r\n\x1a\x00", b"\x89PNG\r\n\x1a\n", b"\x00" * 8, b"\x89cnn\r\n\x1a\n"]
)
def test_bad_magic(fmt, magic):
    expect_format_error(mutated(fmt, set_fields(magic=magic)), match="magic")


@ALL
@pytest.mark.parametrize("version", [0, 6, 0xFFFFFFFF])
def test_bad_version(fmt, version):
    expect_format_error(mutated(fmt, set_fields(version=version)), match="version")


@ALL
@pytest.mark.parametrize("format_id", [0, 4, 255, 0xFFFFFFFF])
def test_unknown_format_id(fmt, format_id):
    expect_format_error(mutated(fmt, set_fields(format_id=format_id)), match="format")


@ALL
def test_other_known_format_id(fmt):
    """The sections of one format under the id of another."""
    for other in (1, 2, 3):
        if other == FORMAT_IDS[fmt]:
            continue

        def mutate(f, other=other):
            f.format_id = other
            f.nsections = SECTION_COUNTS[other]

        expect_format_error(mutated(fmt, mutate))


@ALL
@pytest.mark.parametrize(
    "rows,cols",
    [(2**62, 24), (8, 2**62), (2**62, 2**62), (2**64 - 1, 24), (8, 2**64 - 1),
     (2**40 + 1, 1), (1, 2**40 + 1), (2**30, 2**30), (2**40, 2**17)],
)
def test_huge_shape(fmt, rows, cols):
    expect_format_error(mutated(fmt, set_fields(rows=rows, cols=cols)), match="too large")


# -- section table -------------------------------------------------------------------------
@ALL
@pytest.mark.parametrize("delta", [-1, 1, None])
def test_wrong_section_count(fmt, delta):
    def mutate(f):
        f.nsections = 0xFFFFFFFF if delta is None else f.nsections + delta

    expect_format_error(mutated(fmt, mutate), match="section")


@ALL
def test_wrong_section_count_with_matching_sections(fmt):
    """One section dropped, and the count says so."""

    def mutate(f):
        f.sections.pop()
        f.nsections -= 1

    expect_format_error(mutated(fmt, mutate))


@ALL
def test_missing_section(fmt):
    def mutate(f):
        f.sections.pop()

    expect_format_error(mutated(fmt, mutate))


@ALL
def test_extra_section(fmt):
    def mutate(f):
        f.sections.append(b"\x00" * 8)

    expect_format_error(mutated(fmt, mutate), match="trailing")


@ALL
@pytest.mark.parametrize("claim", ["+1", "+8", "+4096", 2**32, 2**63, 2**64 - 1])
def test_section_length_beyond_file(fmt, claim):
    for i in range(SECTION_COUNTS[FORMAT_IDS[fmt]]):

        def mutate(f, i=i):
            rest = sum(len(s) + 12 for s in f.sections[i + 1 :])
            n = len(f.sections[i]) + rest + int(claim[1:]) if isinstance(claim, str) else claim
            f.length_override[i] = n

        expect_format_error(mutated(fmt, mutate))


@ALL
def test_section_length_too_short(fmt):
    for i in range(SECTION_COUNTS[FORMAT_IDS[fmt]]):

        def mutate(f, i=i):
            if f.sections[i]:
                f.length_override[i] = len(f.sections[i]) - 1

        data = mutated(fmt, mutate)
        if data != valid_file(fmt):
            expect_format_error(data)


# -- codebook ------------------------------------------------------------------------------
@ALL
@pytest.mark.parametrize(
    "value", [np.nan, np.inf, -np.inf, "snan"], ids=["nan", "inf", "-inf", "signalling-nan"]
)
def test_codebook_not_finite(fmt, value):
    def mutate(f):
        cb = np.frombuffer(f.sections[0], dtype="<f4").copy()
        if value == "snan":
            cb.view(np.uint32)[-1] = 0x7F800001
        else:
            cb[-1] = value
        f.sections[0] = cb.tobytes()

    expect_format_error(mutated(fmt, mutate), match="finite")


@ALL
def test_codebook_empty(fmt):
    def mutate(f):
        f.sections[0] = b""

    expect_format_error(mutated(fmt, mutate), match="codebook")


@ALL
@pytest.mark.parametrize("size", [65537, 70000])
def test_codebook_too_large(fmt, size):
    def mutate(f):
        f.set_floats(0, np.arange(size, dtype=np.float32))

    expect_format_error(mutated(fmt, mutate), match="codebook")


@ALL
@pytest.mark.parametrize("cut", [1, 2, 3])
def test_codebook_not_multiple_of_4(fmt, cut):
    def mutate(f):
        f.sections[0] = f.sections[0][:-cut]

    expect_format_error(mutated(fmt, mutate), match="codebook")


@ALL
def test_codebook_extra_entry(fmt):
    """One more codebook value than the code lengths (HAM, HCSR) or the packed indices
    (IndexMap: only if the index width changes) were made for."""

    def mutate(f):
        cb = np.frombuffer(f.sections[0], dtype="<f4")
        f.set_floats(0, np.append(cb, np.float32(99.0)))

    data = mutated(fmt, mutate)
    k = len(File(valid_file(fmt)).sections[0]) // 4
    if fmt is cn.IndexMap and (k - 1).bit_length() == k.bit_length():
        m = cn.frombytes(data)  # same index width: a valid matrix with an unused value
        assert m.k == k + 1
    else:
        expect_format_error(data)
