"""Element-wise monotone transforms whose parameters come from a conditioner.

Each transform maps data-side values x to latent-side values z feature by feature, given raw
(unconstrained) parameters of shape ``(N, P, D)``: P parameters for each of the D features, in the
bins-major layout of :mod:`hepflows.flows.splines`. A raw parameter tensor of zeros is the identity
map for every transform here, so a conditioner with a zero-initialised output layer starts as the
identity flow (used for importance sampling, where training starts from the uniform density).

``forward(x, raw) -> (z, logdet)`` and ``inverse(z, raw) -> (x, logdet)`` return the log-det summed
over features, shape ``(N,)``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from hepflows.flows import splines


class ElementwiseTransform(nn.Module):
    """Base class: a family of monotone scalar bijections with ``num_params`` parameters each."""

    num_params: int

    def forward(self, x: Tensor, raw: Tensor) -> tuple[Tensor, Tensor]:  # noqa: D102
        raise NotImplementedError

    def inverse(self, z: Tensor, raw: Tensor) -> tuple[Tensor, Tensor]:  # noqa: D102
        raise NotImplementedError


class Affine(ElementwiseTransform):
    """z = x * exp(a) + b, with the log-scale a soft-clamped to (-scale_bound, scale_bound)."""

    num_params = 2

    def __init__(self, scale_bound: float = 5.0) -> None:
        super().__init__()
        self.scale_bound = float(scale_bound)

    def _log_scale_shift(self, raw: Tensor) -> tuple[Tensor, Tensor]:
        log_scale = self.scale_bound * torch.tanh(raw[:, 0, :] / self.scale_bound)
        return log_scale, raw[:, 1, :]

    def forward(self, x: Tensor, raw: Tensor) -> tuple[Tensor, Tensor]:
        log_scale, shift = self._log_scale_shift(raw)
        return torch.addcmul(shift, x, torch.exp(log_scale)), log_scale.sum(-1)

    def inverse(self, z: Tensor, raw: Tensor) -> tuple[Tensor, Tensor]:
        log_scale, shift = self._log_scale_shift(raw)
        return (z - shift) * torch.exp(-log_scale), -log_scale.sum(-1)


class RQSpline(ElementwiseTransform):
    """Rational-quadratic spline on [-bound, bound] with identity tails (for unbounded data).

    Raw parameters per feature: K widths, K heights and K - 1 interior derivatives (the end knots
    have derivative 1, so the map joins the identity tails smoothly): ``3K - 1``.

    ``bin_scale`` multiplies the raw widths and heights before their softmax. A value below 1
    (nflows uses 1/sqrt(hidden width)) slows the bins' softmax into saturation: without it,
    CaloFlow's teacher collapsed a third of its splines onto one extreme bin within a few epochs.
    """

    def __init__(self, bins: int = 8, bound: float = 5.0, bin_scale: float = 1.0) -> None:
        super().__init__()
        if bins < 2:
            raise ValueError(f"a spline needs at least 2 bins, got {bins}")
        if bound <= 0:
            raise ValueError(f"spline bound must be positive, got {bound}")
        if not bin_scale > 0:
            raise ValueError(f"bin scale must be positive, got {bin_scale}")
        self.bins = int(bins)
        self.bound = float(bound)
        self.bin_scale = float(bin_scale)
        self.num_params = 3 * self.bins - 1
        #: The compiled fused spline, used when no gradient is taken; set by
        #: :func:`hepflows.flows.fused.enable_fused_splines` (None: the eager spline).
        self.fused_fn: Callable | None = None

    def _knots(self, raw: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        k = self.bins
        widths, heights = raw[:, :k], raw[:, k : 2 * k]
        if self.bin_scale != 1.0:
            widths, heights = widths * self.bin_scale, heights * self.bin_scale
        x_inner = splines.inner_knots_from_raw(widths, -self.bound, self.bound)
        y_inner = splines.inner_knots_from_raw(heights, -self.bound, self.bound)
        return x_inner, y_inner, raw[:, 2 * k :]

    def _spline(self, inputs: Tensor, raw: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
        # One element (a batch-1 stepwise MAF step): the compiled call's own overhead is larger
        # than the eager spline (bench/caloflow.py, teacher at batch 1).
        if self.fused_fn is not None and inputs.numel() > 1 and not torch.is_grad_enabled():
            return self.fused_fn(inputs, raw, self.bins, self.bound, self.bin_scale, inverse)
        raw = raw.to(inputs.dtype)  # a no-op unless the conditioner kept a bfloat16 output
        out, logdet = splines.spline_with_tails(
            inputs, *self._knots(raw), self.bound, inverse, raw_derivatives=True
        )
        return out, logdet.sum(-1)

    def forward(self, x: Tensor, raw: Tensor) -> tuple[Tensor, Tensor]:
        return self._spline(x, raw, inverse=False)

    def inverse(self, z: Tensor, raw: Tensor) -> tuple[Tensor, Tensor]:
        return self._spline(z, raw, inverse=True)


class UnitRQSpline(ElementwiseTransform):
    """Rational-quadratic spline mapping [0, 1] onto [0, 1], no tails (for the unit hypercube).

    Raw parameters per feature: K widths, K heights and K + 1 derivatives (the end derivatives are
    free, since nothing lies outside the interval): ``3K + 1``. Inputs outside [0, 1] are clamped;
    densities there are zero and are handled by the flow's support check.
    """

    def __init__(self, bins: int = 16) -> None:
        super().__init__()
        if bins < 2:
            raise ValueError(f"a spline needs at least 2 bins, got {bins}")
        self.bins = int(bins)
        self.num_params = 3 * self.bins + 1

    def _spline(self, inputs: Tensor, raw: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
        k = self.bins
        x_inner = splines.inner_knots_from_raw(raw[:, :k], 0.0, 1.0)
        y_inner = splines.inner_knots_from_raw(raw[:, k : 2 * k], 0.0, 1.0)
        d = raw[:, 2 * k :]  # K + 1 raw derivatives, mapped to positive values after gathering
        out, logdet = splines.rational_quadratic_spline(
            inputs, x_inner, y_inner, d[:, 1:-1], 0.0, 1.0, d[:, 0], d[:, -1], inverse, True
        )
        return out, logdet.sum(-1)

    def forward(self, x: Tensor, raw: Tensor) -> tuple[Tensor, Tensor]:
        return self._spline(x, raw, inverse=False)

    def inverse(self, z: Tensor, raw: Tensor) -> tuple[Tensor, Tensor]:
        return self._spline(z, raw, inverse=True)
