"""Fused rational-quadratic splines through ``torch.compile``, for sampling (no gradients).

Why: sampling a spline IAF on a CPU is bound by the spline's element-wise arithmetic, not by the
network's matrix products. In eager mode each of the ~60 operations of
:func:`~hepflows.flows.splines.rational_quadratic_spline` streams an ``(N, 3K - 1, D)`` or
``(N, D)`` tensor through memory. :func:`~hepflows.flows.splines.unrolled_spline_with_tails`
writes the same map as loops over the K bins on ``(N, D)`` planes; compiled by inductor it becomes
one loop that reads each raw parameter once (and converts bfloat16 network outputs as it reads).

:func:`enable_fused_splines` switches the :class:`~hepflows.flows.transforms.RQSpline` transforms
of a model to it. Training is untouched: with gradients the eager, gather-based spline runs. The
first call for each shape and setting compiles (seconds; inductor caches the kernels on disk).
Needs what ``torch.compile`` needs: a C++ compiler on a CPU, triton on a GPU.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from hepflows.flows.conditioners import MADEOutput
from hepflows.flows.layers import _Autoregressive
from hepflows.flows.splines import unrolled_spline_with_tails
from hepflows.flows.transforms import RQSpline

_COMPILED: Callable | None = None


class FusedSplinesUnavailable(RuntimeError):
    """``torch.compile`` could not build the fused spline on this machine."""


def _compiled() -> Callable:
    global _COMPILED
    if _COMPILED is None:
        # Not dynamic=True: with symbolic feature and parameter dimensions the compiled spline
        # was wrong for some elements with torch 2.13 on a CPU (tests/flows/test_fused.py pins
        # this). Only the row dimension is dynamic (fused_spline); the rest specialises: one
        # compile per bins / D / dtype setting.
        _COMPILED = torch.compile(unrolled_spline_with_tails)
    return _COMPILED


def fused_spline(
    inputs: Tensor, raw: Tensor, bins: int, bound: float, bin_scale: float, inverse: bool
) -> tuple[Tensor, Tensor]:
    """The compiled :func:`~hepflows.flows.splines.unrolled_spline_with_tails`, with the row
    dimension marked dynamic so that one kernel serves every batch and chunk size."""
    if inputs.shape[0] > 1:  # a size-1 dimension cannot be dynamic (batch 1 compiles its own)
        torch._dynamo.mark_dynamic(inputs, 0)
        torch._dynamo.mark_dynamic(raw, 0)
    # Feature and parameter dimensions stay static even when a second model (another D or bin
    # count) recompiles: dynamo would otherwise make them dynamic ("automatic dynamic shapes"),
    # the case that computes wrong splines.
    torch._dynamo.mark_static(inputs, 1)
    torch._dynamo.mark_static(raw, 1)
    torch._dynamo.mark_static(raw, 2)
    return _compiled()(inputs, raw, bins, bound, bin_scale, inverse)


def _check(device: torch.device) -> None:
    """Compile and run once on a tiny input, so that a missing compiler fails here, in one line."""
    x = torch.linspace(-1.0, 1.0, 12).view(3, 4)
    try:
        with torch.no_grad():
            raw = torch.zeros(3, 5, 4, device=device)  # 2 bins: zero parameters, the identity
            out, _ = fused_spline(x.to(device), raw, 2, 2.0, 1.0, True)
        if not torch.allclose(out.cpu(), x, atol=1e-6):
            raise FusedSplinesUnavailable("the compiled spline is wrong (not the identity)")
    except FusedSplinesUnavailable:
        raise
    except Exception as exc:  # compiler missing, unsupported backend, ...: say which, in one line
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise FusedSplinesUnavailable(
            f"torch.compile cannot build the fused spline on {device.type} ({first[:200]})"
        ) from exc


def enable_fused_splines(module: nn.Module, on: bool = True, check: bool = True) -> int:
    """Evaluate every :class:`RQSpline` in ``module`` through the fused spline when no gradient is
    taken (``on=False`` restores the eager one). Returns the number of transforms switched.

    Autoregressive layers whose spline is fused also keep their MADE output in the matrix-product
    dtype (see :func:`~hepflows.flows.conditioners.set_matmul_dtype`): the fused spline reads
    bfloat16 parameters directly. With ``check`` the compiler is tried once here and
    :class:`FusedSplinesUnavailable` raised if it does not work.
    """
    splines = [m for m in module.modules() if isinstance(m, RQSpline)]
    if on and check and splines:
        anchor = next(module.parameters(), None)
        _check(anchor.device if anchor is not None else torch.device("cpu"))
    for transform in splines:
        transform.fused_fn = fused_spline if on else None
    for layer in module.modules():
        if isinstance(layer, _Autoregressive) and isinstance(layer.transform, RQSpline):
            output = layer.conditioner.output_layer
            if isinstance(output, MADEOutput):
                output.keep_matmul_dtype = on
    return len(splines)
