"""Conditioners: networks that output the raw parameters of an element-wise transform.

* :class:`MADE` (Germain et al., arXiv:1502.03509): one network whose output for feature i depends
  only on features < i (and on the context), enforced by multiplying dense weights by fixed binary
  masks, so all D parameter sets come from one dense matmul per layer.
* :class:`MLP`: a plain network for coupling layers (sees the untransformed half and the context).

Both return parameters in the bins-major layout ``(N, P, D_out)`` expected by
:mod:`hepflows.flows.transforms`. Context features enter every hidden layer's first projection.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hepflows.timing import matmul_gflops

_ACTIVATIONS = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "elu": nn.ELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "leaky_relu": nn.LeakyReLU,
}


def activation_layer(name: str) -> nn.Module:
    """The activation module called ``name`` (``relu``, ``gelu``, ``elu``, ``silu``, ...)."""
    if name not in _ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; expected one of {sorted(_ACTIVATIONS)}")
    return _ACTIVATIONS[name]()


def _inference_dtype(matmul_dtype: torch.dtype | None, weight: Tensor) -> torch.dtype | None:
    """The dtype a layer's matrix products run in: ``matmul_dtype`` only when no gradient is
    being taken (training always runs in the weights' own dtype)."""
    if matmul_dtype is None or matmul_dtype == weight.dtype:
        return None
    if torch.is_grad_enabled() and weight.requires_grad:
        return None
    return matmul_dtype


def set_matmul_dtype(module: nn.Module, dtype: torch.dtype | None) -> None:
    """Run the masked matrix products of every MADE in ``module`` in ``dtype`` when no gradient is
    taken (None restores the weights' dtype). Inputs are cast to ``dtype`` and outputs back, so
    the rest of the flow (splines, log-dets) keeps its precision. ``torch.bfloat16`` on a CPU with
    AVX-512 BF16 makes these products several times faster at ~3 significant digits."""
    for layer in module.modules():
        if isinstance(layer, (MaskedLinear, MADEOutput)):
            layer.matmul_dtype = dtype


def matmul_speedup(dtype: torch.dtype, device: str | torch.device = "cpu") -> float:
    """How many times faster a (512 x 256) @ (256 x 1024) product, the shape of a MADE layer,
    runs in ``dtype`` than in float32 on ``device`` (best of 3 after a warm-up each).

    Why: reduced-precision products pay only where the hardware has them. A CPU without
    AVX-512 BF16 or AMX runs bfloat16 products emulated, ~50x slower than float32 (session 23's
    machine: 1 against 53 GFLOP/s), which makes ``set_matmul_dtype(..., torch.bfloat16)`` a
    slowdown. Costs milliseconds, ~0.3 s where the products are that slow.
    """
    shape = (512, 256, 1024)
    return matmul_gflops(*shape, dtype, device) / matmul_gflops(*shape, torch.float32, device)


class _CachedWeights(nn.Module):
    """Base of the layers that cache their masked weights for products without gradients.

    The cache is keyed on the weights' version counters, which in-place updates bump, and is also
    dropped whenever the module switches between training and evaluation mode. The second rule
    is needed: PyTorch's fused Adam (``hepflows.train``) updates parameters without bumping their
    versions, so after an epoch of training the key alone would hand validation the weights
    cached at the previous validation (session 24: a teacher's validation NLL stuck near -10
    nats while its training NLL reached -220). A training loop that calls ``model.train()``
    before training, as PyTorch's convention has it, is therefore safe with any optimizer.
    """

    _cache: object | None = None

    def train(self, mode: bool = True) -> _CachedWeights:
        self._cache = None
        return super().train(mode)


class MaskedLinear(_CachedWeights, nn.Linear):
    """A dense layer whose weight is multiplied by a fixed 0/1 mask ``(out, in)``.

    Speed: many masks (all of MADE's, once hidden units are sorted by degree) are *staircases*:
    row r uses only a prefix of the inputs. The rows are stored sorted by the length of that
    prefix and split into ``groups``; each group is multiplied by its own prefix only, which skips
    the all-zero block. For MADE this removes ~40% of the multiply-adds. Outputs come back in the
    original row order, so the layer behaves exactly as ``F.linear(x, weight * mask, bias)``.
    Without gradients the masked, grouped weights are cached (see :class:`_CachedWeights`).
    With gradients (training) the layer is one dense masked product: autograd's backward of each
    group's weight slice allocates and adds a full-size zero gradient, and the thin products are
    less efficient, so grouping made training slower, not faster (``docs/flows.md``).
    """

    def __init__(self, mask: Tensor, bias: bool = True, groups: int = 1) -> None:
        out_features, in_features = mask.shape
        mask = mask.bool()
        cols = torch.arange(1, in_features + 1)
        prefix = (
            (mask * cols).amax(dim=1)
            if in_features
            else torch.zeros(out_features, dtype=torch.long)
        )
        order = torch.sort(prefix, stable=True).indices
        super().__init__(in_features, out_features, bias=bias)
        self.register_buffer("mask", mask[order].to(self.weight.dtype))
        identity = bool(torch.equal(order, torch.arange(out_features)))
        self.register_buffer("row_order", None if identity else torch.argsort(order))
        with torch.no_grad():  # rescale so that the fan-in counts only the connected inputs
            fan_in = self.mask.sum(1, keepdim=True).clamp_min(1.0)
            self.weight.mul_(torch.sqrt(in_features / fan_in))
        sorted_prefix = prefix[order]
        bounds = torch.linspace(0, out_features, max(1, min(groups, out_features)) + 1).long()
        self.groups: list[tuple[int, int, int]] = [  # (first row, end row, inputs used)
            (int(a), int(b), int(sorted_prefix[b - 1]))
            for a, b in zip(bounds[:-1], bounds[1:], strict=True)
            if b > a
        ]
        self._cache: tuple[tuple, list[tuple[Tensor, Tensor | None, int]]] | None = None
        #: Inference-only matrix-product dtype (see :func:`set_matmul_dtype`); None: the weights'.
        self.matmul_dtype: torch.dtype | None = None

    def _grouped_weights(
        self, dtype: torch.dtype | None
    ) -> list[tuple[Tensor, Tensor | None, int]]:
        if torch.is_grad_enabled() and self.weight.requires_grad:
            # training: one dense product (see the class docstring), never cached
            return [(self.weight * self.mask, self.bias, self.in_features)]
        bias_version = None if self.bias is None else self.bias._version
        key = (self.weight._version, self.weight.data_ptr(), self.weight.dtype, bias_version, dtype)
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        masked = self.weight * self.mask
        parts = []
        for a, b, k in self.groups:
            w = masked[a:b, :k]
            bias = None if self.bias is None else self.bias[a:b]
            if dtype is not None:
                w, bias = w.to(dtype), None if bias is None else bias.to(dtype)
            parts.append((w.contiguous(), bias, k))
        self._cache = (key, parts)
        return parts

    def forward(self, x: Tensor) -> Tensor:
        dtype = _inference_dtype(self.matmul_dtype, self.weight)
        parts = self._grouped_weights(dtype)
        h = x if dtype is None else x.to(dtype)
        if len(parts) == 1:
            w, b, k = parts[0]
            out = F.linear(h[..., :k], w, b)
        else:
            out = torch.cat([F.linear(h[..., :k], w, b) for w, b, k in parts], dim=-1)
        out = out if dtype is None else out.to(x.dtype)
        return out if self.row_order is None else out.index_select(-1, self.row_order)

    def dense_weight(self) -> Tensor:
        """The effective ``(out, in)`` weight in the original row order (for tests/inspection)."""
        w = self.weight * self.mask
        return w if self.row_order is None else w[self.row_order]

    def dense_bias(self) -> Tensor:
        """The bias in the original row order (zeros if the layer has none)."""
        b = self.bias if self.bias is not None else self.weight.new_zeros(self.out_features)
        return b if self.row_order is None else b[self.row_order]


class MADEOutput(_CachedWeights):
    """MADE's output layer, writing the bins-major ``(N, P, D)`` parameters directly.

    Output unit ``p * D + i`` (parameter p of feature i) sees the hidden units of degree <= i.
    One matrix product over all rows, reshaped to ``(N, P, D)``: compared with a row-sorted
    :class:`MaskedLinear` this skips the gather that restores bins-major order, which was ~30% of
    a student IAF's sampling time. Splitting the features into staircase groups that skip the
    masked zeros was measured and dropped, both without gradients (CaloGAN student, batch 10,000,
    2 threads, ms per shower with 8 groups -> 1: 0.454 -> 0.450 float32, 0.379 -> 0.353
    bfloat16, 0.275 -> 0.240 fused splines, 0.190 -> 0.176 fused bfloat16) and with them (a
    CaloGAN teacher's training step, 2.65-2.75 -> 3.30 steps/s for 8 groups -> 1 in both MADE
    layers, ``docs/flows.md``): the thin products and, in training, the full-size zero gradient
    autograd builds for every group's weight slice cost more than the skipped multiply-adds.
    """

    def __init__(self, hidden_degree: Tensor, features: int, num_params: int) -> None:
        super().__init__()
        self.features, self.num_params = features, num_params
        width = len(hidden_degree)
        self.weight = nn.Parameter(torch.empty(num_params * features, width))
        self.bias = nn.Parameter(torch.empty(num_params * features))
        feature_of_row = torch.arange(features).repeat(num_params)
        mask = hidden_degree[None, :] <= feature_of_row[:, None]
        self.register_buffer("mask", mask.to(self.weight.dtype))
        fan_in = mask.sum(1, keepdim=True).clamp_min(1).to(torch.float32)
        bound = 1.0 / torch.sqrt(fan_in)  # nn.Linear's default scale, over the connected inputs
        with torch.no_grad():
            self.weight.uniform_(-1.0, 1.0).mul_(bound)
            self.bias.uniform_(-1.0, 1.0).mul_(bound.squeeze(1))
        #: Hidden units any output sees (degrees are sorted; units of degree >= D feed nothing).
        self.used_hidden = int((hidden_degree <= features - 1).sum())
        self._cache: tuple[tuple, tuple[Tensor, Tensor]] | None = None
        #: Inference-only matrix-product dtype (see :func:`set_matmul_dtype`); None: the weights'.
        self.matmul_dtype: torch.dtype | None = None
        #: Return the parameters in ``matmul_dtype`` rather than converting them back (set for a
        #: consumer that converts as it reads: :mod:`hepflows.flows.fused`).
        self.keep_matmul_dtype = False

    def _product_weights(self, dtype: torch.dtype | None) -> tuple[Tensor, Tensor]:
        """Masked ``(P * D, used_hidden)`` weight and bias in ``dtype``; cached when no weight
        gradient is taken (see :class:`_CachedWeights`)."""
        if torch.is_grad_enabled() and (self.weight.requires_grad or self.bias.requires_grad):
            return (self.weight * self.mask)[:, : self.used_hidden], self.bias
        key = (
            self.weight._version, self.weight.data_ptr(), self.weight.dtype, self.bias._version,
            dtype,
        )  # fmt: skip
        if self._cache is None or self._cache[0] != key:
            w = (self.weight * self.mask)[:, : self.used_hidden]
            b = self.bias
            if dtype is not None:
                w, b = w.to(dtype), b.to(dtype)
            self._cache = (key, (w.contiguous(), b.contiguous()))
        return self._cache[1]

    def forward(self, h: Tensor) -> Tensor:
        dtype = _inference_dtype(self.matmul_dtype, self.weight)
        x = h if dtype is None else h.to(dtype)
        w, b = self._product_weights(dtype)
        out = F.linear(x[:, : self.used_hidden], w, b).view(h.shape[0], self.num_params, -1)
        return out if dtype is None or self.keep_matmul_dtype else out.to(h.dtype)

    def dense_weight(self) -> Tensor:
        """The effective ``(P * D, H)`` weight, bins-major rows (for tests and the stepper)."""
        return self.weight * self.mask

    def dense_bias(self) -> Tensor:
        return self.bias


#: Layouts of :func:`hidden_degrees`.
MADE_DEGREES = ("spread", "prefix", "hybrid")


def hidden_degrees(width: int, features: int, degrees: str = "spread") -> Tensor:
    """Sorted degrees (in 0..D-1) of a MADE hidden layer of ``width`` units for D ``features``.

    A unit of degree d sees inputs 0..d-1 (degree 0: only the context). With ``width >= D`` both
    layouts give every degree ``width // D`` or one more unit (D in turn). Narrower layers differ:

    - ``"spread"``: degrees spread evenly over 0..D-1 (``floor(j D / width)``), so every feature
      conditions on its whole prefix, at a granularity of D / width features;
    - ``"prefix"``: degrees 0..width-1, so features beyond the width condition only on the first
      ``width`` inputs. Models saved before ``degrees`` existed use it. For CaloFlow's flow II
      (layers in order, permutations within layers) it left the voxels of CaloGAN's layers 1 and 2
      conditioned on layer 0 alone in every block.
    - ``"hybrid"``: the first half of the units ``prefix`` (degrees 0..width/2 - 1), the other
      half ``spread`` over the remaining degrees: early features keep ``prefix``'s one unit per
      input, and late features still see a coarse version of their whole prefix.
    """
    if degrees not in MADE_DEGREES:
        raise ValueError(f"unknown MADE degrees {degrees!r}; expected one of {MADE_DEGREES}")
    j = torch.arange(width)
    if width >= features or degrees == "prefix":
        return torch.sort(j % features).values
    if degrees == "hybrid":
        fine = width // 2
        rest = torch.arange(width - fine)
        coarse = fine + torch.div(rest * (features - fine), width - fine, rounding_mode="floor")
        return torch.cat([j[:fine], coarse])
    return torch.div(j * features, width, rounding_mode="floor")


class MADE(nn.Module):
    """Masked autoencoder: ``(N, D)`` inputs (+ ``(N, C)`` context) -> ``(N, P, D)`` parameters.

    Input i has degree i + 1; hidden units get degrees in 0..D-1 (:func:`hidden_degrees`; degree
    0 units see only the context) and connect to inputs of degree <= theirs; output parameters of
    feature i connect to hidden units of degree < i + 1. So the parameters of feature i depend on
    features 0..i-1 only. Hidden units are kept sorted by degree, which makes every mask a
    staircase that :class:`MaskedLinear` multiplies in ``groups`` blocks, skipping the zero half.
    """

    def __init__(
        self,
        features: int,
        num_params: int,
        hidden: Sequence[int] = (128,),
        context: int = 0,
        activation: str = "relu",
        dropout: float = 0.0,
        zero_init: bool = False,
        groups: int = 8,
        degrees: str = "spread",
    ) -> None:
        super().__init__()
        if not hidden:
            raise ValueError("MADE needs at least one hidden layer")
        self.features, self.num_params, self.context = features, num_params, context
        in_degree = torch.arange(1, features + 1)
        layers: list[nn.Module] = []
        previous = in_degree
        #: Sorted degrees of each hidden layer (sorted: staircase masks).
        self.hidden_degrees = [hidden_degrees(width, features, degrees) for width in hidden]
        for degree in self.hidden_degrees:
            layers.append(MaskedLinear(degree[:, None] >= previous[None, :], groups=groups))
            previous = degree
        self.hidden_layers = nn.ModuleList(layers)
        self.context_layer = nn.Linear(context, hidden[0], bias=False) if context else None
        # bins-major: unit p * D + i is parameter p of feature i, seeing hidden degrees <= i
        self.output_layer = MADEOutput(previous, features, num_params)
        if zero_init:
            nn.init.zeros_(self.output_layer.weight)
            nn.init.zeros_(self.output_layer.bias)
        self.activation = activation_layer(activation)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        h = self.hidden_layers[0](x)
        if self.context_layer is not None:
            h = h + self.context_layer(context)
        h = self.dropout(self.activation(h))
        for layer in self.hidden_layers[1:]:
            h = self.dropout(self.activation(layer(h)))
        return self.output_layer(h)

    def stepper(self, context: Tensor | None, rows: int, like: Tensor) -> MADEStepper:
        """A :class:`MADEStepper` for ``rows`` inputs (for D-step autoregressive inversion)."""
        return MADEStepper(self, context, rows, like)


class MADEStepper:
    """MADE's outputs feature by feature, each hidden unit computed once (no gradients).

    Inverting an autoregressive layer needs the parameters of feature i after features 0..i-1
    are known. Recomputing the whole network D times costs D full passes; but the parameters of
    feature i only need the hidden units of degree <= i, and of those only the units of degree
    exactly i are new at step i (they are the first to see feature i-1). Computing just those
    brings the cost of all D steps down to about one full pass, in D small matrix products.
    For the CaloGAN teacher (504 voxels, 6 blocks, width 256) whole-shower sampling is 24x faster
    than D full passes at batch 100 and 2x at batch 1, where per-step overhead dominates
    (``bench/caloflow.py``, 2 CPU threads).

    Hidden units are stored sorted by degree (see :class:`MADE`), so "units of degree i" is a
    contiguous slice of every hidden layer. Dropout is not applied (use in evaluation mode).
    """

    def __init__(self, made: MADE, context: Tensor | None, rows: int, like: Tensor) -> None:
        self.made = made
        d = made.features
        self.weights = [
            (layer.dense_weight().detach(), layer.dense_bias().detach())
            for layer in made.hidden_layers
        ]
        # end[l][i]: hidden units of layer l with degree <= i are [0, end[l][i]).
        self.end = [
            torch.searchsorted(degree, torch.arange(d), right=True).tolist()
            for degree in made.hidden_degrees
        ]
        out_w = made.output_layer.dense_weight().detach()
        out_b = made.output_layer.dense_bias().detach()
        self.out_w = out_w.view(made.num_params, d, -1)  # (P, D, H_last), bins-major rows
        self.out_b = out_b.view(made.num_params, d)
        self.hidden = [like.new_zeros(rows, w.shape[0]) for w, _ in self.weights]
        self.context_part = (
            None if made.context_layer is None else made.context_layer(context).detach()
        )

    def params(self, i: int, outputs: Tensor) -> Tensor:
        """Raw parameters ``(N, P, 1)`` of feature i, given ``outputs[:, :i]`` (already final)."""
        made = self.made
        previous = outputs
        for layer, ((w, b), end) in enumerate(zip(self.weights, self.end, strict=True)):
            start = end[i - 1] if i > 0 else 0
            stop = end[i]
            if stop > start:  # units of degree i: they see inputs < i, or units of degree <= i
                cols = i if layer == 0 else self.end[layer - 1][i]
                pre = F.linear(previous[:, :cols], w[start:stop, :cols], b[start:stop])
                if layer == 0 and self.context_part is not None:
                    pre = pre + self.context_part[:, start:stop]
                self.hidden[layer][:, start:stop] = made.activation(pre)
            previous = self.hidden[layer]
        cols = self.end[-1][i]
        raw = F.linear(previous[:, :cols], self.out_w[:, i, :cols], self.out_b[:, i])
        return raw.unsqueeze(-1)


class MLP(nn.Module):
    """Plain conditioner: ``(N, D_in)`` (+ context) -> ``(N, P, D_out)`` parameters."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        num_params: int,
        hidden: Sequence[int] = (128,),
        context: int = 0,
        activation: str = "relu",
        dropout: float = 0.0,
        zero_init: bool = False,
    ) -> None:
        super().__init__()
        if not hidden:
            raise ValueError("MLP needs at least one hidden layer")
        self.out_features, self.num_params = out_features, num_params
        sizes = [in_features + context, *hidden]
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:], strict=True):
            layers += [nn.Linear(a, b), activation_layer(activation)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
        last = nn.Linear(sizes[-1], out_features * num_params)
        if zero_init:
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
        self.net = nn.Sequential(*layers, last)

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        inputs = x if context is None else torch.cat([x, context], dim=-1)
        return self.net(inputs).view(x.shape[0], self.num_params, self.out_features)
