"""A separable adaptive grid on the unit hypercube: the VEGAS map (Lepage 1978; vegas 6.4.1), used
as a fixed pre-mapping under the flow (MadNIS's "VEGAS pre-training", arXiv:2212.06172).

Each axis is cut into ``bins`` intervals of adapted widths, all equally probable: y in [0, 1]
falls into interval i = floor(y N) and maps linearly onto it,

    x = e_i + (y N - i) w_i,      dx/dy = N w_i,

so the density of x is 1 / (N w_i) per axis, piecewise constant. :meth:`VegasGrid.adapt` moves the
edges so that every interval carries the same share of the damped per-interval mean of w^2
(w = f / q, the importance weight), Lepage's rule; a few iterations of it capture the marginals of
a separable integrand exactly, which is where VEGAS is strong. A flow on the grid's y-space then
only has to learn what the grid cannot: the correlations.
"""

from __future__ import annotations

import torch
from torch import Tensor


class VegasGrid:
    """Per-axis adaptive grid ``y -> x`` on [0, 1]^dim (see the module docstring).

    Args:
        dim: number of axes.
        bins: intervals per axis (MadNIS pre-training: 64).
        alpha: damping exponent of the adaptation (vegas: 0.5; 0 would freeze the grid).
    """

    def __init__(
        self,
        dim: int,
        bins: int = 64,
        alpha: float = 0.5,
        dtype: torch.dtype = torch.float64,
        device: str | torch.device = "cpu",
    ) -> None:
        if bins < 2:
            raise ValueError(f"a grid needs at least 2 bins per axis, got {bins}")
        if not 0.0 < alpha <= 2.0:
            raise ValueError(f"grid damping alpha must be in (0, 2], got {alpha}")
        self.dim, self.bins, self.alpha = int(dim), int(bins), float(alpha)
        edges = torch.linspace(0.0, 1.0, bins + 1, dtype=dtype, device=device)
        self.edges = edges.repeat(dim, 1)  # (dim, bins + 1), each row from 0 to 1

    @property
    def widths(self) -> Tensor:
        return self.edges[:, 1:] - self.edges[:, :-1]

    def to(self, device: str | torch.device, dtype: torch.dtype) -> VegasGrid:
        self.edges = self.edges.to(device, dtype)
        return self

    def _bins_of(self, y: Tensor) -> Tensor:
        return (y * self.bins).floor().long().clamp(0, self.bins - 1)

    def _intervals(self, i: Tensor) -> tuple[Tensor, Tensor]:
        """Left edge and width of interval ``i`` ``(n, dim)`` on each axis."""
        axis = torch.arange(self.dim, device=i.device)
        return self.edges[axis, i], self.widths[axis, i]

    def to_x(self, y: Tensor) -> tuple[Tensor, Tensor]:
        """``y`` ``(n, dim)`` -> ``(x, log|dx/dy|)``, shapes ``(n, dim)`` and ``(n,)``."""
        i = self._bins_of(y)
        low, width = self._intervals(i)
        x = low + (y * self.bins - i) * width
        return x.clamp(0.0, 1.0), torch.log(self.bins * width).sum(-1)

    def to_y(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The inverse map: ``x`` ``(n, dim)`` -> ``(y, log|dx/dy|)``."""
        inner = self.edges[:, 1:-1].contiguous()  # (dim, bins - 1)
        i = torch.searchsorted(inner, x.T.contiguous(), right=True).T  # (n, dim)
        low, width = self._intervals(i)
        y = (i + (x - low) / width) / self.bins
        return y.clamp(0.0, 1.0), torch.log(self.bins * width).sum(-1)

    def adapt(self, y: Tensor, w: Tensor) -> None:
        """Move the edges towards equal shares of mean(w^2) per interval, from points ``y``
        ``(n, dim)`` with importance weights ``w`` ``(n,)`` (vegas's smoothing and damping)."""
        i = self._bins_of(y).T  # (dim, n)
        w2 = (w * w).to(self.edges.dtype).expand(self.dim, -1)
        sums = torch.zeros(self.dim, self.bins, dtype=self.edges.dtype, device=y.device)
        counts = torch.zeros_like(sums)
        sums.scatter_add_(1, i, w2)
        counts.scatter_add_(1, i, torch.ones_like(w2))
        mean = torch.where(counts > 0, sums / counts.clamp_min(1.0), 0.0)
        # Smooth with neighbours (weights 1, 6, 1; 7, 1 at the ends) and normalise per axis.
        smooth = 6.0 * mean
        smooth[:, 1:] += mean[:, :-1]
        smooth[:, :-1] += mean[:, 1:]
        smooth[:, 0] += mean[:, 0]
        smooth[:, -1] += mean[:, -1]
        total = smooth.sum(1, keepdim=True)
        flat = total[:, 0] <= 0  # no weight seen on this axis: leave it
        share = smooth / total.clamp_min(torch.finfo(smooth.dtype).tiny)
        # Damping: ((1 - r) / log(1 / r))^alpha tempers the move (r -> 0 stays finite).
        r = share.clamp(1e-300, 1.0 - 1e-15)
        damped = torch.where(share > 0, ((1.0 - r) / torch.log(1.0 / r)) ** self.alpha, 0.0)
        damped = torch.where(flat[:, None], 1.0, damped)
        # New edges: equal shares of the damped mass, which is uniform within each old interval.
        cumulative = torch.cat([torch.zeros_like(damped[:, :1]), damped.cumsum(1)], dim=1)
        targets = torch.linspace(0.0, 1.0, self.bins + 1, dtype=damped.dtype, device=y.device)
        targets = targets[1:-1].expand(self.dim, -1) * cumulative[:, -1:]
        j = torch.searchsorted(cumulative[:, 1:-1].contiguous(), targets.contiguous(), right=True)
        mass = damped.gather(1, j)
        frac = (targets - cumulative.gather(1, j)) / mass.clamp_min(1e-300)
        inner = self.edges.gather(1, j) + frac.clamp(0.0, 1.0) * self.widths.gather(1, j)
        self.edges = torch.cat([self.edges[:, :1], inner, self.edges[:, -1:]], dim=1)

    def state(self) -> list[list[float]]:
        """The edges as nested lists (JSON)."""
        return self.edges.cpu().tolist()

    @classmethod
    def from_state(cls, edges: list[list[float]], alpha: float = 0.5) -> VegasGrid:
        t = torch.tensor(edges, dtype=torch.float64)
        if t.ndim != 2 or t.shape[1] < 3 or not bool((t[:, 1:] > t[:, :-1]).all()):
            raise ValueError("grid edges must be increasing rows of at least 3 values")
        grid = cls(t.shape[0], t.shape[1] - 1, alpha)
        grid.edges = t
        return grid
