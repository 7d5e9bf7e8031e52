"""CaloFlow's preprocessing: showers (MeV) <-> the unbounded inputs and contexts of its two flows.

Method and constants: ``caloflow-method.md`` (CaloFlow, arXiv:2106.05285; CaloFlow II,
arXiv:2110.11377). Everything here is a pure, vectorised, invertible map on arrays; the values that
depend on the training data (the u-space constant f) live in :class:`Preprocessing`, which is saved
with a trained model as JSON.

* Both flows see the showers with uniform noise in [0, 1e-8 x 100 GeV] = [0, 1 keV) added to
  every voxel (:func:`add_noise`); layer energies are sums of the noisy voxels, so none is 0.
* Flow I (layer energies E_1..E_L given E_inc): "u-space"
  u_0 = sum_l E_l / (f E_inc), u_l = E_l / sum_{j >= l} E_j (l = 1..L-1), clamped to [0, 1] and
  mapped to logit(alpha + (1 - 2 alpha) u). Context: the scaled log incident energy.
* Flow II (voxels given the layer energies): the noisy voxels, each layer normalised to sum 1,
  logit with alpha = 1e-6. Context:
  the scaled log incident energy and (log10(E_l / 100 GeV + 1e-8) + 4) / 4 for each layer.
* Generation runs the maps backwards: logits -> u -> E_l; logits -> normalised voxels, each layer
  renormalised (each share capped at its training maximum, the support clip) and rescaled to its
  E_l, and voxels below the noise cut set to zero. A sample that leaves a layer with energy in the
  noise band (:func:`noise_only_layers`) is drawn again by the generator.

Units: showers and energies in MeV in memory (as :mod:`hepflows.calo.formats` returns them).

The generation direction (:func:`inverse_logit`, :func:`flow2_to_voxels`,
:func:`noise_only_layers`) takes NumPy arrays or tensors: one torch implementation, run where the
input lives, so a generator on a GPU post-processes there (NumPy in, NumPy out otherwise).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from hepflows.calo.geometry import Geometry, get_geometry
from hepflows.io import InputError

#: Energy unit of flow II's inputs: 100 GeV in MeV (CaloFlow works in units of 100 GeV).
ENERGY_UNIT_MEV = 1e5
#: Upper edge of the uniform noise added to every voxel, in units of 100 GeV (1 keV).
NOISE = 1e-8
#: The logit's offset: x -> logit(alpha + (1 - 2 alpha) x) keeps 0 and 1 finite.
ALPHA = 1e-6
#: Offset inside log10(E_l / 100 GeV + LAYER_LOG_FLOOR) for flow II's context.
LAYER_LOG_FLOOR = 1e-8
#: The default generation cut lies between CUT_MIN_FACTOR and CUT_MAX_FACTOR times the noise's
#: edge (why: :func:`default_noise_cut`) ...
CUT_MIN_FACTOR = 5.0
CUT_MAX_FACTOR = 10.0
#: ... at this quantile of the training set's non-zero voxel energies (so it removes at most this
#: fraction of the real deposits above the floor).
CUT_QUANTILE = 1e-3


def logit(x: np.ndarray, alpha: float = ALPHA) -> np.ndarray:
    """logit(alpha + (1 - 2 alpha) x) for x in [0, 1] (clamped), float64 arithmetic."""
    v = alpha + (1.0 - 2.0 * alpha) * np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0)
    return np.log(v) - np.log1p(-v)


def _tensor(a: np.ndarray | Tensor) -> tuple[Tensor, bool]:
    """``a`` as a tensor on its own device (NumPy shared, not copied), and whether it came as
    NumPy (so the result goes back as NumPy)."""
    if isinstance(a, Tensor):
        return a, False
    return torch.from_numpy(np.asarray(a)), True


def _float64(a: np.ndarray | Tensor) -> tuple[Tensor, bool]:
    """:func:`_tensor` in float64 (no copy where it already is)."""
    t, numpy_in = _tensor(a)
    return t.to(torch.float64), numpy_in


def _inverse_logit(y: Tensor, alpha: float) -> Tensor:
    return torch.sigmoid(y).sub_(alpha).div_(1.0 - 2.0 * alpha).clamp_(0.0, 1.0)


def inverse_logit(y: np.ndarray | Tensor, alpha: float = ALPHA) -> np.ndarray | Tensor:
    """The inverse of :func:`logit`, clamped to [0, 1]; float64 arithmetic."""
    t, numpy_in = _float64(y)
    v = _inverse_logit(t, alpha)
    return v.numpy() if numpy_in else v


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """The fitted constants of the preprocessing of one geometry (saved as JSON with a model).

    Attributes:
        geometry: the hepflows geometry name.
        energy_range_mev: (low, high) incident energies that map to context -1 and +1.
        u_scale: the constant f > 0 of u_0 = sum E_l / (f E_inc).
        noise: upper edge of the uniform voxel noise, in units of 100 GeV.
        noise_cut_mev: generated voxels below this (MeV) are set to 0.
        voxel_max: each voxel's largest fraction of its layer's energy in the training showers
            (the support clip, :func:`flow2_to_voxels`); None switches the clip off.
    """

    geometry: str
    energy_range_mev: tuple[float, float]
    u_scale: float
    noise: float = NOISE
    noise_cut_mev: float = NOISE * ENERGY_UNIT_MEV
    voxel_max: tuple[float, ...] | None = None

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["energy_range_mev"] = list(self.energy_range_mev)
        out["voxel_max"] = None if self.voxel_max is None else list(self.voxel_max)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Preprocessing:
        try:
            pre = cls(
                geometry=str(data["geometry"]),
                energy_range_mev=(
                    float(data["energy_range_mev"][0]),
                    float(data["energy_range_mev"][1]),
                ),
                u_scale=float(data["u_scale"]),
                noise=float(data["noise"]),
                noise_cut_mev=float(data["noise_cut_mev"]),
                voxel_max=(
                    None
                    if data.get("voxel_max") is None
                    else tuple(float(v) for v in data["voxel_max"])
                ),
            )
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise InputError(f"invalid preprocessing description ({exc})") from None
        if pre.voxel_max is not None:
            n_voxels = get_geometry(pre.geometry).n_voxels
            if len(pre.voxel_max) != n_voxels:
                raise InputError(
                    f"support clip has {len(pre.voxel_max)} voxels, geometry {pre.geometry} has "
                    f"{n_voxels}"
                )
        return pre


def fit_preprocessing(
    geometry: Geometry,
    incident_mev: np.ndarray,
    showers_mev: np.ndarray,
    u_scale: float | None = None,
    noise_cut_mev: float | None = None,
    noise_mev: float | None = None,
    support_clip: bool = True,
) -> Preprocessing:
    """Constants for a training set.

    ``u_scale`` (f) defaults to 1.05 x the largest deposited-to-incident ratio of the data (at
    least 1), so u_0 < 1 for every training shower; the spec's published values (2.42, 6.93) were
    chosen the same way for the CaloChallenge files. ``noise_mev`` is the upper edge of the voxel
    noise (default the spec's 1 keV). ``noise_cut_mev`` defaults to :func:`default_noise_cut`.
    ``support_clip`` records each voxel's largest layer fraction in the data
    (:func:`voxel_fraction_max`) for the generation's support clip.
    """
    e_inc = np.asarray(incident_mev, dtype=np.float64)
    deposited = showers_mev.sum(axis=1, dtype=np.float64)
    ratio = float(np.max(deposited / e_inc)) if len(e_inc) else 1.0
    if u_scale is None:
        u_scale = max(1.0, 1.05 * ratio)
    if u_scale <= 0:
        raise InputError(f"u-space constant f must be positive, got {u_scale}")
    low, high = geometry.energy_range_mev
    lo = min(low, float(e_inc.min())) if len(e_inc) else low
    hi = max(high, float(e_inc.max())) if len(e_inc) else high
    if noise_mev is None:
        noise_mev = NOISE * ENERGY_UNIT_MEV
    if not (math.isfinite(noise_mev) and noise_mev > 0):
        raise InputError(f"voxel noise must be a positive energy in MeV, got {noise_mev}")
    if noise_cut_mev is None:
        noise_cut_mev = default_noise_cut(geometry, showers_mev, noise_mev)
    noise_cut_mev = checked_noise_cut(noise_cut_mev)
    noise = noise_mev / ENERGY_UNIT_MEV
    voxel_max = tuple(voxel_fraction_max(geometry, showers_mev)) if support_clip else None
    return Preprocessing(
        geometry.name, (lo, hi), float(u_scale), noise, float(noise_cut_mev), voxel_max
    )


def voxel_fraction_max(
    geometry: Geometry, showers_mev: np.ndarray, chunk: int = 10_000
) -> list[float]:
    """Each voxel's largest share of its layer's energy over the showers (0 where never hit),
    computed in chunks of showers to bound the memory on large geometries."""
    out = np.zeros(geometry.n_voxels)
    for start in range(0, len(showers_mev), chunk):
        share = layer_shares(geometry, showers_mev[start : start + chunk])
        out = np.maximum(out, share.max(axis=0, initial=0.0))
    return [float(v) for v in out]


def checked_noise_cut(mev: float) -> float:
    """``mev`` as a float, or InputError unless it is a finite energy >= 0."""
    if not (math.isfinite(mev) and mev >= 0):
        raise InputError(f"noise cut must be an energy >= 0 in MeV, got {mev}")
    return float(mev)


def default_noise_cut(
    geometry: Geometry, showers_mev: np.ndarray, noise_mev: float, max_showers: int = 20_000
) -> float:
    """The generation cut (MeV) for a training set: the geometry's readout threshold, or, if
    larger, the CUT_QUANTILE quantile of the non-zero voxel energies (of the first ``max_showers``
    showers) clipped to [CUT_MIN_FACTOR x noise, CUT_MAX_FACTOR x noise].

    Why not the noise's edge itself: flow II smears the noise band of the empty voxels a little
    upwards, and on CaloGAN e+ (whose real deposits start near 0.2 MeV) a cut at 1 keV left a
    fifth of layer 2's voxels at 1-10 keV where the data have none; the sparsity features then
    dominated every metric. A cut below the data's smallest real deposits removes only that leak;
    the quantile keeps the cut down where a training set does have deposits just above the floor.
    The floor: deposits below a few times the noise's edge cannot be told from the smeared noise
    (CaloGAN pi+ has real deposits down to 1e-10 MeV, so the quantile alone put its cut at the
    edge, 1 keV, and the leak at 1-2 keV outnumbered layer 0's real voxels four to one; with a
    5 keV cut the teacher's high-level AUC went 0.967 -> 0.731, see docs/caloflow.md).
    """
    sample = np.asarray(showers_mev[:max_showers])
    deposits = sample[sample > 0]
    quantile = float(np.quantile(deposits, CUT_QUANTILE)) if deposits.size else noise_mev
    cut = min(max(quantile, CUT_MIN_FACTOR * noise_mev), CUT_MAX_FACTOR * noise_mev)
    return float(max(cut, geometry.threshold_mev))


def energy_context(pre: Preprocessing, incident_mev: np.ndarray) -> np.ndarray:
    """Incident energy -> log10 scaled linearly onto [-1, 1] over the energy range, ``(N, 1)``."""
    low, high = (math.log10(v) for v in pre.energy_range_mev)
    log_e = np.log10(np.asarray(incident_mev, dtype=np.float64))
    span = max(high - low, 1e-12)
    return (2.0 * (log_e - low) / span - 1.0).reshape(-1, 1)


def layer_energies_to_u(
    pre: Preprocessing, incident_mev: np.ndarray, layer_mev: np.ndarray
) -> np.ndarray:
    """Layer energies ``(N, L)`` -> u ``(N, L)`` in [0, 1] (see the module docstring).

    Where nothing is left for layers l.. (sum_{j >= l} E_j = 0) u_l is set to 0: any value gives
    the same energies.
    """
    e = np.asarray(layer_mev, dtype=np.float64)
    total = e.sum(axis=1)
    remaining = np.cumsum(e[:, ::-1], axis=1)[:, ::-1]  # sum_{j >= l} E_j
    u = np.empty_like(e)
    u[:, 0] = total / (pre.u_scale * np.asarray(incident_mev, dtype=np.float64))
    with np.errstate(invalid="ignore", divide="ignore"):
        u[:, 1:] = np.where(remaining[:, :-1] > 0, e[:, :-1] / remaining[:, :-1], 0.0)
    return np.clip(u, 0.0, 1.0)


def u_to_layer_energies(pre: Preprocessing, incident_mev: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Inverse of :func:`layer_energies_to_u`: u ``(N, L)`` -> layer energies ``(N, L)``, MeV."""
    u = np.clip(np.asarray(u, dtype=np.float64), 0.0, 1.0)
    remaining = u[:, 0] * pre.u_scale * np.asarray(incident_mev, dtype=np.float64)
    layers = np.empty_like(u)
    for l in range(1, u.shape[1]):  # a loop over the (few) layers, vectorised over showers
        layers[:, l - 1] = u[:, l] * remaining
        remaining = remaining - layers[:, l - 1]
    layers[:, -1] = remaining
    return np.clip(layers, 0.0, None)


def flow1_inputs(
    pre: Preprocessing, incident_mev: np.ndarray, layer_mev: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Flow I's training pairs: (logit u ``(N, L)``, context ``(N, 1)``), float32."""
    u = layer_energies_to_u(pre, incident_mev, layer_mev)
    return logit(u).astype(np.float32), energy_context(pre, incident_mev).astype(np.float32)


def flow2_context(
    pre: Preprocessing, incident_mev: np.ndarray, layer_mev: np.ndarray
) -> np.ndarray:
    """Flow II's context ``(N, 1 + L)``: scaled log E_inc and the shifted log layer energies."""
    logs = np.log10(np.asarray(layer_mev, dtype=np.float64) / ENERGY_UNIT_MEV + LAYER_LOG_FLOOR)
    return np.concatenate([energy_context(pre, incident_mev), (logs + 4.0) / 4.0], axis=1)


def _normalised(geometry: Geometry, values: Tensor) -> Tensor:
    """Each layer of ``values`` ``(N, n_voxels)`` (>= 0) divided by its sum (0 where the sum is
    0, and outside the relevant layers).

    One division per layer on its slice (a loop over the few layers, vectorised over showers),
    without a per-voxel copy of the sums.
    """
    out = torch.zeros_like(values)
    for layer in geometry.relevant_layers:
        part = values[:, layer.start : layer.stop]
        sums = part.sum(dim=1, keepdim=True)
        torch.div(part, torch.where(sums > 0, sums, 1.0), out=out[:, layer.start : layer.stop])
    return out


def layer_shares(geometry: Geometry, showers_mev: np.ndarray) -> np.ndarray:
    """Each voxel's share of its layer's energy, ``(N, n_voxels)`` float64 (0 in empty layers)."""
    return _normalised(geometry, _float64(showers_mev)[0]).numpy()


def add_noise(pre: Preprocessing, showers_mev: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Showers plus uniform noise in [0, noise x 100 GeV) per voxel, MeV, float64.

    Both flows train on the noisy showers: the noise spreads flow II's zero voxels, and it keeps
    every layer energy positive, so flow I's u_l never sits exactly at 0 or 1 (an empty last layer
    would otherwise put a point mass at u = 1, where a flow's likelihood is unbounded).
    """
    v = np.asarray(showers_mev, dtype=np.float64)
    return v + rng.uniform(0.0, pre.noise * ENERGY_UNIT_MEV, size=v.shape)


def voxels_to_flow2(pre: Preprocessing, geometry: Geometry, noisy_mev: np.ndarray) -> np.ndarray:
    """Noisy showers ``(N, n_voxels)`` MeV (:func:`add_noise`) -> flow II's inputs: each layer
    normalised to sum 1, then logit; float32."""
    return logit(layer_shares(geometry, noisy_mev)).astype(np.float32)


def flow2_to_voxels(
    pre: Preprocessing,
    geometry: Geometry,
    x: np.ndarray | Tensor,
    layer_mev: np.ndarray | Tensor,
) -> np.ndarray | Tensor:
    """Flow II's outputs ``(N, n_voxels)`` and layer energies ``(N, L)`` MeV -> showers in MeV.

    Each layer's normalised voxels are renormalised to sum 1; with ``pre.voxel_max`` (the support
    clip) each share is capped at its voxel's largest share in the training data and the layer
    renormalised once more (so a capped share can end somewhat above its cap when the layer's
    other voxels are small); then rescaled to its energy, and voxels below ``noise_cut_mev`` set to
    zero (float32 result). Why the clip: a few percent of a flow's showers put a large share of a
    layer into one voxel that never held so much in the data (on CaloGAN e+, layer 0's energy
    centroid at up to 104 mm against at most 2.6 mm); those outliers dominated FPD and KPD.

    float64 arithmetic in torch, on the device of ``x`` (a tensor result there; NumPy in, NumPy
    out): 10,000 CaloGAN showers in 0.113 s on two cores against 0.238 s for the NumPy version it
    replaced, with identical showers (session 23).
    """
    t, numpy_in = _float64(x)
    v = _normalised(geometry, _inverse_logit(t, ALPHA))
    if pre.voxel_max is not None:
        cap = torch.as_tensor(pre.voxel_max, dtype=v.dtype, device=v.device)
        v = _normalised(geometry, torch.minimum(v, cap))
    energy = torch.as_tensor(layer_mev, dtype=v.dtype, device=v.device)
    for l, layer in enumerate(geometry.relevant_layers):  # each layer rescaled to its energy
        v[:, layer.start : layer.stop] *= energy[:, l : l + 1]
    v.masked_fill_(v < pre.noise_cut_mev, 0.0)
    out = v.to(torch.float32)
    return out.numpy() if numpy_in else out


def noise_only_layers(
    pre: Preprocessing,
    geometry: Geometry,
    x: np.ndarray | Tensor,
    layer_mev: np.ndarray | Tensor,
) -> np.ndarray | Tensor:
    """Which of flow II's outputs ``(N, n_voxels)`` leave a layer holding at least the noise cut
    with no voxel above it, ``(N,)`` bool: every voxel's energy at the flow's own normalisation
    (its share times E_l) is below ``noise_cut_mev``, so the layer is noise only.

    :func:`flow2_to_voxels` would renormalise such a layer and spread E_l evenly over all its
    voxels (on CaloGAN e+, 72 back-layer voxels at 0.02-0.5 MeV where the data hold 1-3
    deposits); the generator draws those showers' flow II sample again instead
    (:class:`~hepflows.calo.caloflow.CaloFlowGenerator`, ``max_redraws``).
    """
    t, numpy_in = _tensor(x)
    energy = torch.as_tensor(layer_mev, dtype=torch.float64, device=t.device)
    out = torch.zeros(len(t), dtype=torch.bool, device=t.device)
    for l, layer in enumerate(geometry.relevant_layers):
        e = energy[:, l]
        # relevant layers have voxels; the inverse logit is monotonic: the largest share is that
        # of the largest logit
        top = t[:, layer.start : layer.stop].amax(dim=1).to(torch.float64)
        out |= (e >= pre.noise_cut_mev) & (_inverse_logit(top, ALPHA) * e < pre.noise_cut_mev)
    return out.numpy() if numpy_in else out


def check_relevant_layout(geometry: Geometry) -> None:
    """Flow II assumes the relevant layers tile the voxel axis in order (true for every geometry
    hepflows knows); refuse anything else rather than mis-assign voxels."""
    position = 0
    for layer in geometry.relevant_layers:
        if layer.start != position:
            raise InputError(f"geometry {geometry.name}: layers do not tile the voxel axis")
        position = layer.stop
    if position != geometry.n_voxels:
        raise InputError(f"geometry {geometry.name}: layers do not cover all voxels")
