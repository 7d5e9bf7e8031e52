"""Base distributions of the flows: standard normal on R^D and uniform on [0, 1]^D."""

from __future__ import annotations

import math

import torch
from torch import Tensor


class StandardNormal:
    """Independent N(0, 1) in each of ``features`` dimensions."""

    name = "normal"

    def __init__(self, features: int) -> None:
        self.features = features
        self._log_norm = -0.5 * features * math.log(2.0 * math.pi)

    def log_prob(self, z: Tensor) -> Tensor:
        """Log-density of ``(N, D)`` points, shape ``(N,)``."""
        return self._log_norm - 0.5 * (z * z).sum(-1)

    def sample(self, n: int, like: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """``(n, D)`` draws with the dtype and device of ``like``."""
        shape = (n, self.features)
        return torch.randn(shape, dtype=like.dtype, device=like.device, generator=generator)

    def contains(self, x: Tensor) -> Tensor:
        """The support is all of R^D."""
        return torch.ones(x.shape[:-1], dtype=torch.bool, device=x.device)


class UniformUnit:
    """Uniform on the unit hypercube [0, 1]^D (density 1 inside, 0 outside)."""

    name = "uniform"

    def __init__(self, features: int) -> None:
        self.features = features

    def log_prob(self, z: Tensor) -> Tensor:
        inside = self.contains(z)
        return torch.where(inside, 0.0, -math.inf).to(z.dtype)

    def sample(self, n: int, like: Tensor, generator: torch.Generator | None = None) -> Tensor:
        shape = (n, self.features)
        return torch.rand(shape, dtype=like.dtype, device=like.device, generator=generator)

    def contains(self, x: Tensor) -> Tensor:
        return ((x >= 0.0) & (x <= 1.0)).all(-1)


def build_base(name: str, features: int) -> StandardNormal | UniformUnit:
    """The base distribution called ``name`` (``normal`` or ``uniform``)."""
    if name == "normal":
        return StandardNormal(features)
    if name == "uniform":
        return UniformUnit(features)
    raise ValueError(f"unknown base distribution {name!r}; expected 'normal' or 'uniform'")
