"""Whole models, independent of any framework: per-layer compression plans and the
conversion of convolution kernels to matrices (plan), per-layer size tables (summary), and
the model file that holds compressed matrices, tensors and the module tree (file_format).
The adapters compactnn.torch and compactnn.keras build on these."""
