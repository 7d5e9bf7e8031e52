"""Toy conditional densities with exact log-densities, for demos and tests.

:func:`ring_sample` / :func:`ring_log_prob`: a ring in the plane whose radius is the context.
Radius r ~ N(c, width^2) truncated to r > 0, angle uniform, so

    p(x, y | c) = N(r; c, width) / (2 pi r Phi(c / width)),   r = sqrt(x^2 + y^2),

which integrates to one over the plane (the 1/r is the Jacobian of polar coordinates).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def ring_sample(
    radius: Tensor, width: float = 0.1, generator: torch.Generator | None = None
) -> Tensor:
    """One point ``(N, 2)`` on the ring of each radius in ``radius`` ``(N,)`` or ``(N, 1)``."""
    c = radius.reshape(-1).double()
    u = torch.rand(c.shape, generator=generator, dtype=torch.float64)
    v = torch.rand(c.shape, generator=generator, dtype=torch.float64)
    low = torch.special.ndtr(-c / width)  # P(r < 0) before truncation
    r = c + width * torch.special.ndtri(low + u * (1.0 - low))  # inverse-CDF of the truncation
    phi = 2.0 * math.pi * v
    return torch.stack([r * torch.cos(phi), r * torch.sin(phi)], dim=1).to(radius.dtype)


def ring_log_prob(x: Tensor, radius: Tensor, width: float = 0.1) -> Tensor:
    """Exact log-density of :func:`ring_sample` at ``x`` ``(N, 2)`` for radii ``(N,)``."""
    c = radius.reshape(-1).double()
    r = torch.linalg.vector_norm(x.double(), dim=1)
    log_normal = -0.5 * ((r - c) / width) ** 2 - math.log(width * math.sqrt(2.0 * math.pi))
    log_norm = torch.log(torch.special.ndtr(c / width))
    return (log_normal - torch.log(2.0 * math.pi * r) - log_norm).to(x.dtype)
