"""The compact matrix formats (IndexMap, HAM, HCSR) over the native core, their files, and
the checks every input passes before it reaches native code."""
from .formats import HAM, HCSR, CompressedMatrix, FormatError, IndexMap, frombytes, load

__all__ = ["CompressedMatrix", "FormatError", "HAM", "HCSR", "IndexMap", "frombytes", "load"]
