"""Measurements: timing helpers, the matrix-product benchmark against numpy and
scipy.sparse (`compactnn bench`), compressed against dense models side by side, and the
peers users would otherwise pick (PyTorch int8/int4, ONNX Runtime, MKL sparse)."""
