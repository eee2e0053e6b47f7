"""Evaluation on real data and models: datasets from installed packages, the model zoo,
compression sweeps over a grid of settings, and the pages (tables, plots) of their results.
Every module imports PyTorch only when a model is built or trained."""
