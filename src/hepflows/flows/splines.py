"""Monotone rational-quadratic splines (Durkan et al. 2019, arXiv:1906.04032).

This module is the one home of the spline math; the transforms only parameterise it.

Layout. Every function here takes the bin axis at dimension ``-2`` and the feature axis at ``-1``:
the K - 1 interior knots have shape ``(..., K - 1, D)`` and inputs ``(..., D)``; the two end knots
are the interval's end points and are never stored. Putting the bins before the features
("bins-major") keeps each bin's values for all features contiguous in memory, so the softmax,
cumulative sums and comparisons below run as wide vectorised passes over ``(N, D)`` planes instead
of short reductions over the last axis.

Shapes are static: the bin is found by counting knots (no ``searchsorted``, no boolean-mask
indexing), values are gathered with :func:`torch.gather` and the end knots substituted with
``where`` on ``(..., D)`` planes, and every input is clamped into the
spline's domain before any division, square root or logarithm, so no branch ever evaluates outside
its domain and gradients stay finite everywhere.

Within bin k, with knots (x_k, y_k), width w_k, height h_k, slope s_k = h_k / w_k, knot derivatives
d_k, d_{k+1} and xi = (x - x_k) / w_k in [0, 1] (eqs. 4 and 5 of arXiv:1906.04032):

    y = y_k + h_k [s xi^2 + d_k xi (1 - xi)] / [s + (d_k + d_{k+1} - 2 s) xi (1 - xi)]
    dy/dx = s^2 [d_{k+1} xi^2 + 2 s xi (1 - xi) + d_k (1 - xi)^2]
            / [s + (d_k + d_{k+1} - 2 s) xi (1 - xi)]^2

and the inverse solves the quadratic a xi^2 + b xi + c = 0 (eqs. 6-8 of the same paper), taking the
root in [0, 1] in whichever of its two algebraic forms avoids cancellation for the sign of b.

Two evaluations of the same map share that in-bin formula (:func:`_within_bin`):
:func:`rational_quadratic_spline` finds the bin by counting and gathers its knots (the fastest in
eager mode, and the one training differentiates); :func:`unrolled_spline_with_tails` selects them
with a chain of ``where`` over the K bins, written for ``torch.compile`` to fuse into one loop
(sampling, :mod:`hepflows.flows.fused`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

#: Smallest bin width and height, as a fraction of the spline's range (keeps slopes bounded).
MIN_BIN_SIZE = 1e-3
#: Smallest knot derivative.
MIN_DERIVATIVE = 1e-3


def _derivative_shift(min_derivative: float) -> float:
    """Offset so that a raw derivative parameter of 0 maps to a derivative of exactly 1."""
    return math.log(math.expm1(1.0 - min_derivative))


def inner_knots_from_raw(
    raw: Tensor, low: float, high: float, min_bin_size: float = MIN_BIN_SIZE
) -> Tensor:
    """Unconstrained bin sizes ``(..., K, D)`` -> the K - 1 interior knots ``(..., K - 1, D)``.

    The end knots are ``low`` and ``high`` exactly and are not stored. Each bin is at least
    ``min_bin_size * (high - low)`` wide; raw values of zero give K equal bins.
    """
    num_bins = raw.shape[-2]
    if min_bin_size * num_bins >= 1.0:
        raise ValueError(f"min_bin_size={min_bin_size} is too large for {num_bins} bins")
    span = high - low
    cumulative = torch.cumsum(torch.softmax(raw, dim=-2)[..., :-1, :], dim=-2)
    floor = torch.arange(1, num_bins, dtype=raw.dtype, device=raw.device).unsqueeze(-1)
    floor = low + min_bin_size * span * floor  # the minimum-size part of each knot, (K - 1, 1)
    return torch.add(floor, cumulative, alpha=(1.0 - min_bin_size * num_bins) * span)


def derivatives_from_raw(raw: Tensor, min_derivative: float = MIN_DERIVATIVE) -> Tensor:
    """Positive knot derivatives from unconstrained values; a raw value of 0 gives exactly 1."""
    return min_derivative + F.softplus(raw + _derivative_shift(min_derivative))


def _bin_values(
    inner: Tensor, k: Tensor, first: float | Tensor, last: float | Tensor
) -> tuple[Tensor, Tensor]:
    """Values at the left and right knot of bin k, from the interior values ``(..., K - 1, D)``.

    ``k`` is ``(..., 1, D)`` in [0, K - 1]; ``first``/``last`` are the values at the end knots
    (scalars or ``(..., D)``), substituted where the bin touches an end.
    """
    top = inner.shape[-2] - 1
    left = torch.gather(inner, -2, (k - 1).clamp_min(0)).squeeze(-2)
    right = torch.gather(inner, -2, k.clamp_max(top)).squeeze(-2)
    k = k.squeeze(-2)
    return torch.where(k == 0, first, left), torch.where(k > top, last, right)


def rational_quadratic_spline(
    inputs: Tensor,
    x_inner: Tensor,
    y_inner: Tensor,
    d_inner: Tensor,
    low: float,
    high: float,
    d_low: float | Tensor = 1.0,
    d_high: float | Tensor = 1.0,
    inverse: bool = False,
    raw_derivatives: bool = False,
) -> tuple[Tensor, Tensor]:
    """Evaluate the monotone rational-quadratic spline on [low, high], or its inverse, element-wise.

    Args:
        inputs: ``(..., D)``; clamped to [low, high] (callers that want identity tails outside
            handle them, see :func:`spline_with_tails`).
        x_inner, y_inner: increasing interior knots, ``(..., K - 1, D)``; the end knots are
            (low, low) and (high, high).
        d_inner: positive derivatives at the interior knots, ``(..., K - 1, D)``.
        d_low, d_high: derivatives at the end knots (scalars, or ``(..., D)``).
        inverse: evaluate x = f^-1(y) instead of y = f(x).
        raw_derivatives: ``d_inner``, ``d_low`` and ``d_high`` hold unconstrained values;
            :func:`derivatives_from_raw` is applied after gathering, to the two values each
            element needs rather than to all K + 1.

    Returns:
        ``(outputs, logabsdet)``, both ``(..., D)``; ``logabsdet`` is log|d output / d input|.
    """
    value = inputs.clamp(low, high)
    search = y_inner if inverse else x_inner
    # Bin index (..., 1, D): count interior knots <= value (a byte count is ~3x cheaper than int64).
    k = (value.unsqueeze(-2) >= search).sum(dim=-2, keepdim=True, dtype=torch.uint8).long()
    x0, x1 = _bin_values(x_inner, k, low, high)
    y0, y1 = _bin_values(y_inner, k, low, high)
    d0, d1 = _bin_values(d_inner, k, d_low, d_high)
    if raw_derivatives:
        d0, d1 = derivatives_from_raw(d0), derivatives_from_raw(d1)
    return _within_bin(value, x0, x1, y0, y1, d0, d1, inverse)


def _within_bin(
    value: Tensor,
    x0: Tensor,
    x1: Tensor,
    y0: Tensor,
    y1: Tensor,
    d0: Tensor,
    d1: Tensor,
    inverse: bool,
) -> tuple[Tensor, Tensor]:
    """The map inside one bin (the equations of the module docstring), element-wise.

    ``value`` lies in the bin [x0, x1] (or [y0, y1] with ``inverse``); d0, d1 are the (positive)
    derivatives at its knots. Returns ``(outputs, log|d output / d input|)``.
    """
    width = x1 - x0
    height = y1 - y0
    slope = height / width
    curvature = d0 + d1 - 2.0 * slope

    if inverse:
        dy = value - y0
        a = height * (slope - d0) + dy * curvature
        b = height * d0 - dy * curvature
        c = -slope * dy
        # Clamp at the smallest normal number, not 0: sqrt's derivative at 0 is infinite, and
        # autograd's 0 (from the clamp) times inf is NaN, which poisoned distillation training.
        root = torch.sqrt((b * b - 4.0 * a * c).clamp_min(torch.finfo(b.dtype).tiny))
        # The root in [0, 1] without cancellation: 2c / (-b - root) when b >= 0, else
        # (root - b) / 2a. The denominators of the branch not taken are replaced by safe values so
        # that `where` never sees (and never back-propagates) an inf or NaN.
        positive = b >= 0.0
        xi_pos = 2.0 * c / torch.where(positive, -b - root, -1.0)
        xi_neg = (root - b) / torch.where(positive, 1.0, 2.0 * a)
        xi = torch.where(positive, xi_pos, xi_neg).clamp(0.0, 1.0)
        outputs = x0 + xi * width
    else:
        xi = ((value - x0) / width).clamp(0.0, 1.0)

    one_minus = 1.0 - xi
    xi_term = xi * one_minus
    denominator = slope + curvature * xi_term
    if not inverse:
        outputs = y0 + height * (slope * xi * xi + d0 * xi_term) / denominator
    numerator = d1 * xi * xi + 2.0 * slope * xi_term + d0 * one_minus * one_minus
    logabsdet = torch.log(slope * slope * numerator / (denominator * denominator))
    return outputs, (-logabsdet if inverse else logabsdet)


def spline_with_tails(
    inputs: Tensor,
    x_inner: Tensor,
    y_inner: Tensor,
    d_inner: Tensor,
    bound: float,
    inverse: bool = False,
    raw_derivatives: bool = False,
) -> tuple[Tensor, Tensor]:
    """Spline on ``[-bound, bound]`` with identity tails outside it (log-det 0 there).

    The end-knot derivatives are 1, so the map is continuously differentiable at the boundary.
    """
    end = 0.0 if raw_derivatives else 1.0  # derivative 1 at both ends (raw value 0)
    outputs, logabsdet = rational_quadratic_spline(
        inputs, x_inner, y_inner, d_inner, -bound, bound, end, end, inverse, raw_derivatives
    )
    inside = (inputs >= -bound) & (inputs <= bound)
    return torch.where(inside, outputs, inputs), torch.where(inside, logabsdet, 0.0)


def _knot_planes(raw: Tensor, low: float, high: float, scale: float) -> list[Tensor]:
    """:func:`inner_knots_from_raw` of ``scale * raw`` ``(N, K, D)``, written as K - 1 ``(N, D)``
    planes from running maxima and sums over the (few) bins: no strided reduction."""
    num_bins = raw.shape[1]
    if MIN_BIN_SIZE * num_bins >= 1.0:
        raise ValueError(f"min_bin_size={MIN_BIN_SIZE} is too large for {num_bins} bins")
    planes = [raw[:, k] * scale for k in range(num_bins)]
    top = planes[0]
    for plane in planes[1:]:
        top = torch.maximum(top, plane)
    weights = [torch.exp(plane - top) for plane in planes]
    total = weights[0]
    for w in weights[1:]:
        total = total + w
    span = high - low
    stretch = (1.0 - MIN_BIN_SIZE * num_bins) * span / total
    knots, running = [], weights[0]
    for k in range(1, num_bins):
        knots.append(low + MIN_BIN_SIZE * span * k + running * stretch)
        running = running + weights[k]
    return knots


def unrolled_spline_with_tails(
    inputs: Tensor,
    raw: Tensor,
    bins: int,
    bound: float,
    bin_scale: float = 1.0,
    inverse: bool = False,
) -> tuple[Tensor, Tensor]:
    """:func:`spline_with_tails` on raw parameters, for :class:`~hepflows.flows.transforms.RQSpline`
    under ``torch.compile``; returns ``(outputs (N, D), log-det summed over features (N,))``.

    ``raw`` is ``(N, 3K - 1, D)``: K raw widths, K raw heights (both multiplied by ``bin_scale``
    before their softmax) and K - 1 raw interior derivatives, in any floating dtype (it is read in
    ``inputs``' dtype, so bfloat16 network outputs need no separate conversion pass).

    The same map as the gather-based :func:`rational_quadratic_spline`, evaluated differently:
    every step is an element-wise operation on ``(N, D)`` planes, with Python loops over the K
    bins (the bin is selected by a chain of ``where``). In eager mode this is slower than the
    gather version (more, smaller operations); traced by ``torch.compile`` the loops unroll and the
    whole spline becomes one fused loop that reads each raw parameter once, several times faster
    on a CPU (see :mod:`hepflows.flows.fused`).
    """
    raw = raw.to(inputs.dtype)
    xs = _knot_planes(raw[:, :bins], -bound, bound, bin_scale)
    ys = _knot_planes(raw[:, bins : 2 * bins], -bound, bound, bin_scale)
    ds = [raw[:, 2 * bins + k] for k in range(bins - 1)]
    value = inputs.clamp(-bound, bound)
    search = ys if inverse else xs
    # Bin k spans knots k and k + 1 (end knots +-bound, raw end derivative 0 = derivative 1).
    x0 = y0 = torch.full_like(value, -bound)
    x1, y1 = xs[0], ys[0]
    d0, d1 = torch.zeros_like(value), ds[0]
    for k in range(bins - 1):
        above = value >= search[k]  # in bin k + 1 or higher
        last = k == bins - 2
        x0 = torch.where(above, xs[k], x0)
        y0 = torch.where(above, ys[k], y0)
        d0 = torch.where(above, ds[k], d0)
        x1 = torch.where(above, bound if last else xs[k + 1], x1)
        y1 = torch.where(above, bound if last else ys[k + 1], y1)
        d1 = torch.where(above, 0.0 if last else ds[k + 1], d1)
    outputs, logabsdet = _within_bin(
        value, x0, x1, y0, y1, derivatives_from_raw(d0), derivatives_from_raw(d1), inverse
    )
    inside = (inputs >= -bound) & (inputs <= bound)
    return torch.where(inside, outputs, inputs), torch.where(inside, logabsdet, 0.0).sum(-1)
