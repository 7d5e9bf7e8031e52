"""Probability-density distillation of a MAF teacher into an IAF student (CaloFlow II).

Method: ``caloflow-method.md`` (CaloFlow II, arXiv:2110.11377). The teacher T maps data x to latent
z in one pass (its fast direction); the student S maps z to x in one pass (its fast direction):

* data pass: x from the training data, z = T(x), x_hat = S(z); L_x = mean (x_hat - x)^2;
* latent pass: z ~ N(0, 1), x' = S(z), z_hat = T(x'); L_z = mean (z_hat - z)^2;
* loss (1 - beta) L_z + beta L_x, beta = 0.5;
* fully guided: plus the mean squared differences of every intermediate state and of every
  block's conditioner outputs (the raw spline parameters), in both passes. This needs a student
  with the teacher's blocks, permutations and transform (its hidden widths may differ), which
  :func:`check_compatible` verifies.

The teacher is frozen; gradients flow through it (in the latent pass) into the student only.
:func:`student_teacher_kl` is the monitor that picks the student's best epoch.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from hepflows.flows.layers import InverseAutoregressive, MaskedAutoregressive
from hepflows.flows.models import IAF, MAF, check_mirrored


def check_compatible(teacher: MAF, student: IAF) -> None:
    """Raise ValueError unless the student's layers mirror the teacher's (for guided matching)."""
    try:
        check_mirrored(teacher, student)
    except ValueError as exc:
        raise ValueError(f"student and teacher do not match: {exc}") from None


def _teacher_trace(
    teacher: MAF, x: Tensor, context: Tensor | None
) -> tuple[Tensor, list[Tensor], list[Tensor]]:
    """z = T(x), the data-side input of every autoregressive block, and their raw parameters."""
    states, params = [], []
    for layer in teacher.layers:
        if isinstance(layer, MaskedAutoregressive):
            raw = layer.conditioner(x, context)
            states.append(x)
            params.append(raw)
            x, _ = layer.transform.forward(x, raw)
        else:
            x, _ = layer.to_latent(x, context)
    return x, states, params


def _student_trace(
    student: IAF, z: Tensor, context: Tensor | None
) -> tuple[Tensor, list[Tensor], list[Tensor]]:
    """x = S(z) and, in the teacher's block order, each block's data-side output and parameters."""
    states, params = [], []
    for layer in reversed(student.layers):
        if isinstance(layer, InverseAutoregressive):
            raw = layer.conditioner(z, context)
            z, _ = layer.transform.inverse(z, raw)
            states.append(z)
            params.append(raw)
        else:
            z, _ = layer.to_data(z, context)
    return z, states[::-1], params[::-1]


class _SquaredDistance(torch.autograd.Function):
    """Per-sample mean squared difference ``(N,)`` with a two-pass backward (2 d / n times the
    incoming gradient, and its negative). Autograd's chain of sub, pow and mean used five passes
    over each ``(N, P, D)`` parameter tensor; the guided loss has 4 per block."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, a: Tensor, b: Tensor) -> Tensor:  # type: ignore[override]
        d = (a - b).flatten(1)
        ctx.save_for_backward(d)
        ctx.shape = a.shape  # type: ignore[attr-defined]
        return d.square().mean(1)

    @staticmethod
    def backward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx, grad: Tensor
    ) -> tuple[Tensor | None, Tensor | None]:
        (d,) = ctx.saved_tensors  # type: ignore[attr-defined]
        need_a, need_b = ctx.needs_input_grad  # type: ignore[attr-defined]
        g = (d * (grad * (2.0 / d.shape[1]))[:, None]).view(ctx.shape)  # type: ignore[attr-defined]
        return (g if need_a else None), (-g if need_b else None)


def _mse(a: Tensor, b: Tensor) -> Tensor:
    """Per-sample mean squared difference, ``(N,)``."""
    return _SquaredDistance.apply(a, b)


class Distillation:
    """The student's training objective: per-sample distillation losses ``(N,)`` (see module).

    Use as ``Trainer(student, ..., objective=Distillation(teacher), val_objective=
    StudentTeacherKL(teacher))``.
    """

    def __init__(
        self, teacher: MAF, beta: float = 0.5, guided: bool = True, input_limit: float = 50.0
    ) -> None:
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"beta must be in [0, 1], got {beta}")
        self.teacher = teacher.eval().requires_grad_(False)
        self.beta, self.guided = float(beta), bool(guided)
        self.input_limit = float(input_limit)

    def __call__(self, student: IAF, x: Tensor, context: Tensor | None) -> Tensor:
        with torch.no_grad():
            z, t_states, t_params = _teacher_trace(self.teacher, x, context)
        x_hat, s_states, s_params = _student_trace(student, z, context)
        loss = self.beta * _mse(x_hat, x)
        z0 = torch.randn_like(x)
        x_prime, s_states2, s_params2 = _student_trace(student, z0, context)
        # Keep the teacher's input finite (the data live within |x| < 14 in logit space).
        x_prime = x_prime.clamp(-self.input_limit, self.input_limit)
        z_hat, t_states2, t_params2 = _teacher_trace(self.teacher, x_prime, context)
        loss = loss + (1.0 - self.beta) * _mse(z_hat, z0)
        if self.guided:
            # Data pass: the student's state before each block (the first is x_hat, already matched)
            # should be the teacher's.
            for s, t in zip(s_states[1:], t_states[1:], strict=True):
                loss = loss + self.beta * _mse(s, t)
            for s, t in zip(s_params, t_params, strict=True):
                loss = loss + self.beta * _mse(s, t)
            # Latent pass: the teacher, run on the student's sample, should retrace its states.
            for s, t in zip(s_states2[1:], t_states2[1:], strict=True):
                loss = loss + (1.0 - self.beta) * _mse(s, t)
            for s, t in zip(s_params2, t_params2, strict=True):
                loss = loss + (1.0 - self.beta) * _mse(s, t)
        return loss


def _log_normal(z: Tensor) -> Tensor:
    return -0.5 * (z * z).sum(-1) - 0.5 * z.shape[-1] * math.log(2.0 * math.pi)


def student_teacher_kl(
    student: IAF, teacher: MAF, context: Tensor | None, n: int, generator: torch.Generator
) -> Tensor:
    """Per-sample terms of KL(S || T) in nats, ``(n,)``: log p_S(x') - log p_T(x'), x' ~ S.

    log p_S(x') = log N(z) - log|det dx'/dz| and log p_T(x') = log N(T(x')) + log|det dT/dx'|.
    """
    anchor = student._anchor
    z = torch.randn(
        n, student.features, generator=generator, device=anchor.device, dtype=anchor.dtype
    )
    x, logdet_s = student.to_data(z, context)
    z_hat, logdet_t = teacher.to_latent(x, context)
    return (_log_normal(z) - logdet_s) - (_log_normal(z_hat) + logdet_t)


class StudentTeacherKL:
    """Validation objective: KL(S || T) per sample, with the batch's contexts and fixed noise."""

    def __init__(self, teacher: MAF, seed: int = 12345) -> None:
        self.teacher = teacher.eval().requires_grad_(False)
        self.seed = seed

    def __call__(self, student: IAF, x: Tensor, context: Tensor | None) -> Tensor:
        generator = torch.Generator(device=x.device).manual_seed(self.seed + x.shape[0])
        return student_teacher_kl(student, self.teacher, context, x.shape[0], generator)
