"""Bijective layers: a conditioner plus an element-wise transform, or a fixed permutation.

Every layer maps data-side values to latent-side values with ``to_latent(x, context)`` and back
with ``to_data(z, context)``; both return ``(output, logdet)`` where ``logdet`` is
log|det d output / d input|, shape ``(N,)``. Inputs are ``(N, D)``, context ``(N, C)`` or None.

Autoregressive layers come in the two directions of Papamakarios et al. (arXiv:1705.07057) and
Kingma et al. (arXiv:1606.04934). Both use the same element-wise map x_i -> z_i = tau(x_i; theta_i);
they differ in what the conditioner sees:

* ``MaskedAutoregressive`` (MAF): theta_i = MADE(x_<i). Density (data -> latent) in one pass,
  sampling (latent -> data) in D sequential passes.
* ``InverseAutoregressive`` (IAF): theta_i = MADE(z_<i). Sampling in one pass, density in D passes.

Because the element-wise map is shared, an IAF student with the same block structure as a MAF
teacher has intermediate states and conditioner outputs that are directly comparable (CaloFlow II
distillation, arXiv:2110.11377).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from hepflows.flows.conditioners import MADE, MLP
from hepflows.flows.transforms import ElementwiseTransform


class Bijection(nn.Module):
    """Base class for a flow layer."""

    #: Transform parameters this layer produces per input row (sizes its temporaries).
    params_per_row: int = 0

    def to_latent(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def to_data(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        raise NotImplementedError


class Permutation(Bijection):
    """A fixed reordering of the features: z = x[:, perm]. Log-det 0."""

    def __init__(self, permutation: Tensor | Sequence[int]) -> None:
        super().__init__()
        perm = torch.as_tensor(permutation, dtype=torch.long)
        if not torch.equal(torch.sort(perm).values, torch.arange(len(perm))):
            raise ValueError("permutation must contain each index 0..D-1 exactly once")
        self.register_buffer("permutation", perm)
        self.register_buffer("inverse_permutation", torch.argsort(perm))

    def to_latent(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return x[:, self.permutation], x.new_zeros(x.shape[0])

    def to_data(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return z[:, self.inverse_permutation], z.new_zeros(z.shape[0])


class _Autoregressive(Bijection):
    #: Invert feature by feature with :class:`~hepflows.flows.conditioners.MADEStepper` when no
    #: gradients are needed. ``False`` forces the D full passes of the original MAF sampling,
    #: kept as the reference the stepper is checked and timed against (``bench/caloflow.py``).
    stepwise: bool = True

    def __init__(
        self,
        features: int,
        transform: ElementwiseTransform,
        hidden: Sequence[int],
        context: int = 0,
        activation: str = "relu",
        dropout: float = 0.0,
        zero_init: bool = False,
        degrees: str = "spread",
    ) -> None:
        super().__init__()
        self.features = features
        self.transform = transform
        self.params_per_row = features * transform.num_params
        self.conditioner = MADE(
            features, transform.num_params, hidden, context, activation, dropout, zero_init,
            degrees=degrees,
        )  # fmt: skip

    def _one_pass(
        self, inputs: Tensor, conditioned_on: Tensor, context: Tensor | None, inverse: bool
    ):
        raw = self.conditioner(conditioned_on, context)
        if inverse:
            return self.transform.inverse(inputs, raw)
        return self.transform.forward(inputs, raw)

    def _sequential(self, inputs: Tensor, context: Tensor | None, inverse: bool):
        """The slow direction: feature i needs the outputs of features 0..i-1 first.

        Without gradients, feature by feature with :class:`~hepflows.flows.conditioners.MADEStepper`
        (about one network pass in total). With gradients (or ``stepwise = False``), D full
        passes (after pass i the outputs of features 0..i are exact), which autograd can
        differentiate.
        """
        if torch.is_grad_enabled() or not self.stepwise:
            outputs = torch.zeros_like(inputs)
            logdet = inputs.new_zeros(inputs.shape[0])
            for _ in range(self.features):
                outputs, logdet = self._one_pass(inputs, outputs, context, inverse)
            return outputs, logdet
        apply = self.transform.inverse if inverse else self.transform.forward
        stepper = self.conditioner.stepper(context, inputs.shape[0], inputs)
        outputs = torch.empty_like(inputs)
        logdet = inputs.new_zeros(inputs.shape[0])
        for i in range(self.features):
            out, ld = apply(inputs[:, i : i + 1], stepper.params(i, outputs))
            outputs[:, i : i + 1] = out
            logdet += ld
        return outputs, logdet


class MaskedAutoregressive(_Autoregressive):
    """MAF layer: z_i = tau(x_i; MADE(x_<i)). Fast density, D-pass sampling."""

    def to_latent(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return self._one_pass(x, x, context, inverse=False)

    def to_data(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return self._sequential(z, context, inverse=True)


class InverseAutoregressive(_Autoregressive):
    """IAF layer: x_i = tau^-1(z_i; MADE(z_<i)). Fast sampling, D-pass density."""

    def to_latent(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return self._sequential(x, context, inverse=False)

    def to_data(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return self._one_pass(z, z, context, inverse=True)


class Coupling(Bijection):
    """Coupling layer (Dinh et al., arXiv:1605.08803): transform the features where ``mask`` is
    True, conditioned on the others (and the context). Both directions in one pass."""

    def __init__(
        self,
        mask: Tensor | Sequence[bool],
        transform: ElementwiseTransform,
        hidden: Sequence[int],
        context: int = 0,
        activation: str = "relu",
        dropout: float = 0.0,
        zero_init: bool = False,
    ) -> None:
        super().__init__()
        mask = torch.as_tensor(mask, dtype=torch.bool)
        if mask.all() or not mask.any():
            raise ValueError("a coupling mask must transform some features and keep others")
        self.register_buffer("transformed", torch.nonzero(mask).squeeze(1))
        self.register_buffer("identity", torch.nonzero(~mask).squeeze(1))
        # Two contiguous halves (the default masks): slices are views, so no gather/scatter.
        self.split: int | None = None
        n_id = int((~mask).sum())
        if bool((~mask[:n_id]).all()):
            self.split, self.identity_first = n_id, True
        elif bool(mask[: len(mask) - n_id].all()):
            self.split, self.identity_first = len(mask) - n_id, False
        self.params_per_row = int(mask.sum()) * transform.num_params
        self.transform = transform
        self.conditioner = MLP(
            len(self.identity), len(self.transformed), transform.num_params,
            hidden, context, activation, dropout, zero_init,
        )  # fmt: skip

    def _couple(self, inputs: Tensor, context: Tensor | None, inverse: bool):
        apply = self.transform.inverse if inverse else self.transform.forward
        if self.split is not None:
            first, second = inputs[:, : self.split], inputs[:, self.split :]
            kept, part = (first, second) if self.identity_first else (second, first)
            out, logdet = apply(part, self.conditioner(kept, context))
            pieces = (kept, out) if self.identity_first else (out, kept)
            return torch.cat(pieces, dim=1), logdet
        raw = self.conditioner(inputs[:, self.identity], context)
        out, logdet = apply(inputs[:, self.transformed], raw)
        return inputs.index_copy(1, self.transformed, out), logdet

    def to_latent(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return self._couple(x, context, inverse=False)

    def to_data(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return self._couple(z, context, inverse=True)
