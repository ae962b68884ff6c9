"""PyTorch bridge: weight-noise parametrizations and Hessian-Aware SGD (no top-level numba)."""
