"""Helpers shared by the test modules.  Test modules import them from here (never from
another test module or from conftest.py):

    helpers.matrices     FORMATS, random_quantized, reference_error, bits
    helpers.kernels      ISAS, compare_isas (with conftest's restore_isa fixture)
    helpers.files        the matrix file container parsed and rewritten (File), sample
                         files and matrices, expect_format_error, round-trip checks
    helpers.lanes        sections of a lane-layout file and the lane layouts' checks
    helpers.proc_status  what Linux says of a process (for child processes that measure
                         themselves; they run with tests/ as their working directory)

Nothing here imports more than numpy, pytest and compactnn's matrix API, so that the
tests marked `emulated` can run where only those are installed.
"""
