"""Reference shower simulator: GFLASH electromagnetic showers and a documented pi+ model.

Physics: ``reference-shower-simulator.md`` (GFLASH, Grindhammer & Peters hep-ex/0001020; the
hadronic model of its section 3). Everything is vectorised over a batch of showers; there is no
Python loop over showers, spots or voxels (only over the few readout layers).

How a shower is made (per batch of B showers):

1. **Longitudinal.** Each shower draws its own GFLASH profile parameters (T, alpha) with
   correlated log-normal fluctuations (sampling or homogeneous formulas, as the geometry's medium
   says). The depth is cut into segments (the readout layers, subdivided to at most
   ``segment_x0`` radiation lengths); the energy of a segment is E times the gamma-profile
   probability in it (``scipy.special.gammainc``). Photons start at t0 ~ Exp(9/7 X0).
2. **Spots.** A segment holds n = max(1, floor(N_S * dP_spot)) equal-energy spots (N_S and the
   spot depth profile from GFLASH).
3. **Lateral.** The radial density is the GFLASH two-component form
   f(r) = p 2r Rc^2/(r^2+Rc^2)^2 + (1-p) 2r Rt^2/(r^2+Rt^2)^2, its parameters evaluated at the
   segment's mid-depth. Instead of throwing each spot, the probability of every cell is computed
   exactly from the profile's closed-form integrals (radially: r^2/(r^2+R^2); over a rectangle,
   see :func:`rectangle_probability`) and the spot counts per cell are drawn from a multinomial
   (with one extra category for energy outside the readout). This is the same distribution as
   throwing the spots one by one, at a cost independent of the energy.
4. **Fluctuations.** Optionally gamma-distributed spot energies and sampling fluctuations
   (sigma_E/E = c/sqrt(E/GeV), applied per cell as a gamma draw with the spot energy in GeV).
5. **Pions.** First interaction at z ~ Exp(lambda_pi = 1.1 lambda_I); before it a MIP deposit
   (Moyal fluctuations) in the on-axis cell of each layer; at it the energy splits into an EM
   fraction (2-4 photons, Dirichlet(1) shares, each a GFLASH photon shower) and a hadronic part
   that loses an invisible fraction and deposits with a gamma profile in lambda_I and a broad
   lateral profile with exponential spot energies.

All energies in the output are MeV; energy outside the readout (behind it, beside it, in
dead material, invisible) is reported per shower in :class:`Batch`.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterator

import numpy as np
from scipy.special import gammainc
from tqdm.auto import tqdm

from hepflows.calo.geometry import Geometry, Layer, Medium
from hepflows.io import InputError

PARTICLES = ("e+", "gamma", "pi+")
PHOTON_MEAN_FREE_PATH_X0 = 9.0 / 7.0


# -- incident-energy spectra ---------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class EnergySpectrum:
    """Incident energies: ``fixed:E``, ``uniform:A:B``, ``log-uniform:A:B`` (GeV) or ``ladder``
    (the dataset-1 values 2^8 ... 2^22 MeV, equally often)."""

    kind: str
    low_gev: float = 0.0
    high_gev: float = 0.0

    @classmethod
    def parse(cls, text: str) -> EnergySpectrum:
        parts = text.strip().split(":")
        kind = parts[0]
        try:
            values = [float(v) for v in parts[1:]]
        except ValueError:
            raise InputError(f"energy spec {text!r}: numbers expected after the kind") from None
        if kind == "ladder" and not values:
            return cls("ladder")
        if kind == "fixed" and len(values) == 1 and values[0] > 0:
            return cls("fixed", values[0], values[0])
        if kind in ("uniform", "log-uniform") and len(values) == 2 and 0 < values[0] < values[1]:
            return cls(kind, values[0], values[1])
        raise InputError(
            f"energy spec {text!r} not understood; use fixed:E, uniform:A:B, log-uniform:A:B "
            "(GeV, 0 < A < B) or ladder"
        )

    def sample_mev(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n incident energies in MeV."""
        if self.kind == "fixed":
            return np.full(n, 1e3 * self.low_gev)
        if self.kind == "uniform":
            return 1e3 * rng.uniform(self.low_gev, self.high_gev, n)
        if self.kind == "log-uniform":
            return 1e3 * np.exp(rng.uniform(math.log(self.low_gev), math.log(self.high_gev), n))
        return 2.0 ** rng.integers(8, 23, n).astype(np.float64)


def default_spectrum(geometry: str) -> str:
    """The incident-energy spectrum of a geometry's public datasets, as an EnergySpectrum text:
    CaloGAN uniform in 1-100 GeV, dataset 1 the 2^8..2^22 MeV ladder, datasets 2/3 log-uniform
    in 1-1000 GeV."""
    if geometry == "calogan":
        return "uniform:1:100"
    if geometry.startswith("ds1"):
        return "ladder"
    return "log-uniform:1:1000"


# -- settings ------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class SimulationConfig:
    """Tuning knobs (reference-shower-simulator.md section 4), with the spec's defaults.

    Attributes:
        spot_scale: multiplies the number of spots (granularity and fluctuations).
        spot_energy_shape: gamma shape of spot energies (None: equal-energy spots).
        resolution_c: sampling term c; None takes the geometry's (0 for CaloGAN's total
            deposit, 0.15 for the W/Si datasets).
        segment_x0: longest longitudinal segment (X0) over which lateral parameters are constant.
        pion_lambda_factor: lambda_pi / lambda_I (sets the non-interaction probability).
        em_fraction_k: f_em mean = 1 - (E/GeV)^(k-1).
        em_fraction_sd: standard deviation of f_em.
        invisible_fraction: mean invisible fraction of the hadronic energy (e/h ~ 1.5).
    """

    spot_scale: float = 1.0
    spot_energy_shape: float | None = None
    resolution_c: float | None = None
    segment_x0: float = 1.0
    pion_lambda_factor: float = 1.1
    em_fraction_k: float = 0.85
    em_fraction_sd: float = 0.12
    invisible_fraction: float = 0.35


@dataclasses.dataclass
class Batch:
    """Showers of one batch; energies in MeV.

    ``showers`` (B, n_voxels); ``incident`` (B,); ``leak_longitudinal`` (behind the calorimeter or
    in dead material between layers), ``leak_lateral`` (outside the readout, per relevant layer,
    (B, n_layers); CaloGAN's overflow), ``invisible`` (nuclear binding etc., pions only) and
    ``interacted`` (pions: whether a hadronic interaction happened inside; True otherwise).
    """

    showers: np.ndarray
    incident: np.ndarray
    leak_longitudinal: np.ndarray
    leak_lateral: np.ndarray
    invisible: np.ndarray
    interacted: np.ndarray


# -- GFLASH parameterisation ---------------------------------------------------------------------
@dataclasses.dataclass
class _Profiles:
    """Per-source GFLASH longitudinal parameters (arrays of shape (S,))."""

    t_max: np.ndarray  # T, depth of the maximum (X0)
    alpha: np.ndarray
    beta: np.ndarray
    spot_alpha: np.ndarray
    spot_beta: np.ndarray
    alpha_mean: np.ndarray  # exp(mu_alpha), for the shower-age variable tau


def gflash_means(e_gev: np.ndarray, medium: Medium) -> tuple[np.ndarray, ...]:
    """(mu_T, sigma_T, mu_alpha, sigma_alpha, rho) of ln T and ln alpha (spec section 2.1)."""
    ln_y = np.log(np.maximum(1e3 * e_gev / medium.critical_energy_mev, 1.0001))
    z = medium.z_eff
    mu_t_hom = np.log(np.maximum(ln_y - 0.812, 0.1))
    mu_a_hom = np.log(np.maximum(0.81 + (0.458 + 2.26 / z) * ln_y, 0.1))
    if medium.sampling:
        mu_t = np.log(
            np.maximum(np.exp(mu_t_hom) - 0.55 / medium.fs - 0.69 * (1 - medium.ehat), 0.1)
        )
        mu_a = np.log(np.maximum(np.exp(mu_a_hom) - 0.476 / medium.fs, 0.1))
        sigma_t = 1.0 / np.maximum(-2.5 + 1.25 * ln_y, 0.1)
        sigma_a = 1.0 / np.maximum(-0.82 + 0.79 * ln_y, 0.1)
        rho = 0.784 - 0.023 * ln_y
    else:
        mu_t, mu_a = mu_t_hom, mu_a_hom
        sigma_t = 1.0 / np.maximum(-1.4 + 1.26 * ln_y, 0.1)
        sigma_a = 1.0 / np.maximum(-0.58 + 0.86 * ln_y, 0.1)
        rho = 0.705 - 0.023 * ln_y
    return mu_t, np.minimum(sigma_t, 0.5), mu_a, np.minimum(sigma_a, 0.5), rho


def _draw_profiles(e_gev: np.ndarray, medium: Medium, rng: np.random.Generator) -> _Profiles:
    mu_t, s_t, mu_a, s_a, rho = gflash_means(e_gev, medium)
    z1, z2 = rng.standard_normal((2, len(e_gev)))
    a, b = np.sqrt((1 + rho) / 2), np.sqrt((1 - rho) / 2)
    t_max = np.maximum(np.exp(mu_t + s_t * (a * z1 + b * z2)), 1.0)
    alpha = np.maximum(np.exp(mu_a + s_a * (a * z1 - b * z2)), 1.1)
    beta = (alpha - 1.0) / t_max
    z = medium.z_eff
    if medium.sampling:
        t_s, a_s = t_max * (0.813 + 0.0019 * z), alpha * (0.844 + 0.0026 * z)
    else:
        t_s, a_s = t_max * (0.698 + 0.00212 * z), alpha * (0.639 + 0.00334 * z)
    a_s = np.maximum(a_s, 1.1)
    # alpha-bar enters the shower age as abar/(abar - 1): guard it like alpha (>= 1.1), which
    # matters for showers near the critical energy (e.g. pi0 photons in hadronic showers).
    return _Profiles(t_max, alpha, beta, a_s, (a_s - 1.0) / t_s, np.maximum(np.exp(mu_a), 1.1))


def gflash_lateral(
    e_gev: np.ndarray, tau: np.ndarray, medium: Medium
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(R_C, R_T, p) in Moliere radii at shower age ``tau`` (spec section 2.2)."""
    z, ln_e = medium.z_eff, np.log(e_gev)
    tau = np.clip(tau, 0.0, 20.0)  # beyond ~20 the profile holds no energy; avoids overflow
    r_c = 0.0251 + 0.00319 * ln_e + (0.1162 - 0.000381 * z) * tau
    k1, k4 = 0.659 - 0.00309 * z, 0.3585 + 0.0421 * ln_e
    r_t = k1 * (np.exp(-2.59 * (tau - 0.645)) + np.exp(k4 * (tau - 0.645)))
    p1, p2, p3 = 2.632 - 0.00094 * z, 0.401 + 0.00187 * z, 1.313 - 0.0686 * ln_e
    u = (p2 - tau) / p3
    p = p1 * np.exp(u - np.exp(u))
    if medium.sampling:
        r_c = r_c - 0.0203 * (1 - medium.ehat) + 0.0397 * np.exp(-tau) / medium.fs
        r_t = r_t - 0.14 * (1 - medium.ehat) - 0.495 * np.exp(-tau) / medium.fs
        p = p + (1 - medium.ehat) * (0.348 - 0.642 * np.exp(-((tau - 1) ** 2)) / medium.fs)
    return np.maximum(r_c, 1e-3), np.maximum(r_t, 1e-3), np.clip(p, 0.0, 1.0)


def spot_count(e_gev: np.ndarray, medium: Medium, c: float) -> np.ndarray:
    """Number of GFLASH spots N_S of a shower of energy E."""
    if medium.sampling and c > 0:
        return 10.3 / c * e_gev**0.959
    return 93.0 * math.log(medium.z_eff) * e_gev**0.876


# -- lateral cell probabilities ------------------------------------------------------------------
def rectangle_probability(a: np.ndarray, b: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """P(0 <= X <= a, 0 <= Y <= b) for the 2-D density R^2 / (pi (x^2 + y^2 + R^2)^2), whose
    radial form is 2 r R^2 / (r^2 + R^2)^2 (the GFLASH lateral profile). Signed in a and b.

    Closed form (checked by differentiating twice):
    (1/2pi) [a/sqrt(R^2+a^2) atan(b/sqrt(R^2+a^2)) + b/sqrt(R^2+b^2) atan(a/sqrt(R^2+b^2))].
    """
    sa = np.sqrt(radius * radius + a * a)
    sb = np.sqrt(radius * radius + b * b)
    return (a / sa * np.arctan(b / sa) + b / sb * np.arctan(a / sb)) / (2.0 * math.pi)


def cell_probabilities(layer: Layer, radius_mm: np.ndarray) -> np.ndarray:
    """Probability of each cell of ``layer`` for a profile of radius R centred on the axis.

    ``radius_mm``: any shape (...); returns (..., n_voxels) in the layer's flat order.
    """
    r = radius_mm[..., None]
    if layer.cylindrical:
        assert layer.r_edges_mm is not None
        e2 = layer.r_edges_mm**2
        radial = np.diff(e2 / (e2 + r * r), axis=-1)  # (..., n_r)
        return np.tile(radial / layer.n_alpha, layer.n_alpha)  # alpha-major, r fastest
    assert layer.x_edges_mm is not None and layer.y_edges_mm is not None
    a = layer.x_edges_mm[:, None]
    b = layer.y_edges_mm[None, :]
    q = rectangle_probability(a, b, r[..., None])  # (..., n_x + 1, n_y + 1)
    cells = q[..., 1:, 1:] - q[..., :-1, 1:] - q[..., 1:, :-1] + q[..., :-1, :-1]
    return cells.reshape(*radius_mm.shape, -1)


def axis_cell(layer: Layer) -> int:
    """Flat index (within the layer) of the cell that holds the shower axis."""
    if layer.cylindrical:
        return (layer.n_alpha // 2) * layer.n_r  # r bin 0, the alpha bin starting at 0
    assert layer.x_edges_mm is not None and layer.y_edges_mm is not None
    kx = int(np.searchsorted(layer.x_edges_mm, 0.0, side="right")) - 1  # edge -> upper cell
    ky = int(np.searchsorted(layer.y_edges_mm, 0.0, side="right")) - 1
    return kx * (len(layer.y_edges_mm) - 1) + ky


# -- segments ------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class _Segments:
    x0_lo: np.ndarray
    x0_hi: np.ndarray
    lam_lo: np.ndarray
    lam_hi: np.ndarray
    layer: np.ndarray  # index into geometry.relevant_layers


def _segments(geometry: Geometry, max_x0: float) -> _Segments:
    parts = []
    for i, layer in enumerate(geometry.relevant_layers):
        (x_lo, x_hi), (l_lo, l_hi) = layer.depth_x0, layer.depth_lambda
        n = max(1, math.ceil((x_hi - x_lo) / max_x0 - 1e-9))
        f = np.linspace(0.0, 1.0, n + 1)
        xs, ls = x_lo + f * (x_hi - x_lo), l_lo + f * (l_hi - l_lo)
        parts += [(xs[j], xs[j + 1], ls[j], ls[j + 1], i) for j in range(n)]
    a = np.array(parts)
    return _Segments(a[:, 0], a[:, 1], a[:, 2], a[:, 3], a[:, 4].astype(np.int64))


def _lambda_to_x0(geometry: Geometry, lam: np.ndarray) -> np.ndarray:
    """Depth in X0 at a depth in lambda_I, interpolating through the layer boundaries."""
    pts = sorted({(0.0, 0.0)} | {(lay.depth_lambda[k], lay.depth_x0[k])
                                  for lay in geometry.relevant_layers for k in (0, 1)})  # fmt: skip
    ls, xs = np.array(pts).T
    slope_end = (xs[-1] - xs[-2]) / max(ls[-1] - ls[-2], 1e-9)
    return np.where(lam <= ls[-1], np.interp(lam, ls, xs), xs[-1] + (lam - ls[-1]) * slope_end)


# -- deposition ----------------------------------------------------------------------------------
class _Deposit:
    """Accumulates (source, segment) energies into voxels by multinomial spot counting."""

    def __init__(self, geometry: Geometry, segments: _Segments, batch: int, c: float,
                 spot_shape: float | None, rng: np.random.Generator) -> None:  # fmt: skip
        self.g, self.seg, self.c, self.spot_shape, self.rng = geometry, segments, c, spot_shape, rng
        self.showers = np.zeros((batch, geometry.n_voxels))
        self.lateral = np.zeros((batch, len(geometry.relevant_layers)))

    def add(
        self,
        parent: np.ndarray,  # (S,) shower index of each source
        energy_mev: np.ndarray,  # (S, G) energy of each source in each segment
        spots: np.ndarray,  # (S, G) integer spot counts
        radii_mm: list[np.ndarray],  # components: (S, G) radii
        weights: list[np.ndarray],  # components: (S, G) weights summing to 1
        exponential_spots: bool = False,
    ) -> None:
        for li, layer in enumerate(self.g.relevant_layers):
            cols = np.nonzero(self.seg.layer == li)[0]
            e = energy_mev[:, cols]
            rows = np.nonzero((e > 0).any(axis=1))[0]
            if len(rows) == 0:
                continue
            e, n = e[rows], spots[rows][:, cols]
            prob = sum(w[rows][:, cols][..., None] * cell_probabilities(layer, r[rows][:, cols])
                       for r, w in zip(radii_mm, weights, strict=True))  # fmt: skip
            outside = np.clip(1.0 - prob.sum(-1, keepdims=True), 0.0, 1.0)
            pvals = np.concatenate([prob, outside], axis=-1)
            pvals /= pvals.sum(-1, keepdims=True)
            counts = self.rng.multinomial(n, pvals)  # (S', G_l, cells + 1)
            spot_e = np.divide(e, n, out=np.zeros_like(e), where=n > 0)[..., None]
            if exponential_spots or self.spot_shape is not None:
                # Fluctuating spot energies, renormalised per (source, segment) so that they
                # move energy between cells without creating or destroying any.
                k = 1.0 if exponential_spots else float(self.spot_shape)
                draw = self.rng.gamma(counts * k, 1.0)
                total = draw.sum(-1, keepdims=True)
                dep = (
                    np.divide(draw, total, out=np.zeros_like(draw), where=total > 0) * e[..., None]
                )
            else:
                dep = counts * spot_e
            if self.c > 0:  # sampling fluctuations, in GeV: Gamma(E/c^2, c^2) has sd c sqrt(E)
                c2_mev = self.c**2 * 1e3
                dep = self.rng.gamma(dep / c2_mev, 1.0) * c2_mev
            cell_e = dep.sum(axis=1)  # sum over the layer's segments: (S', cells + 1)
            p = parent[rows]
            np.add.at(self.showers[:, layer.start : layer.stop], p, cell_e[:, :-1])
            np.add.at(self.lateral[:, li], p, cell_e[:, -1])


def _em_sources(
    e_mev: np.ndarray, t0: np.ndarray, medium: Medium, seg: _Segments, cfg: SimulationConfig,
    c: float, rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray], list[np.ndarray], np.ndarray]:  # fmt: skip
    """Segment energies, spot counts and lateral components of GFLASH EM showers."""
    e_gev = e_mev / 1e3
    prof = _draw_profiles(e_gev, medium, rng)
    lo = np.maximum(seg.x0_lo[None, :] - t0[:, None], 0.0)
    hi = np.maximum(seg.x0_hi[None, :] - t0[:, None], 0.0)
    a, b = prof.alpha[:, None], prof.beta[:, None]
    frac = gammainc(a, b * hi) - gammainc(a, b * lo)
    energy = e_mev[:, None] * frac
    sa, sb = prof.spot_alpha[:, None], prof.spot_beta[:, None]
    spot_frac = gammainc(sa, sb * hi) - gammainc(sa, sb * lo)
    n_spots = cfg.spot_scale * spot_count(e_gev, medium, c)[:, None] * spot_frac
    spots = np.where(energy > 0, np.maximum(1, np.floor(n_spots)), 0).astype(np.int64)
    mid = 0.5 * (lo + hi)
    tau = mid * (b / a) * prof.alpha_mean[:, None] / (prof.alpha_mean[:, None] - 1.0)
    r_c, r_t, p = gflash_lateral(np.broadcast_to(e_gev[:, None], tau.shape), tau, medium)
    rm = medium.moliere_radius_mm
    behind = e_mev - energy.sum(1)  # beyond the last layer or in dead material between layers
    return energy, spots, [r_c * rm, r_t * rm], [p, 1.0 - p], behind


def _moyal(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Standard Moyal draws (-ln of a chi^2_1 variable); mean gamma_E + ln 2."""
    z = rng.standard_normal(shape)
    return -np.log(np.maximum(z * z, 1e-300))


def simulate_batch(
    geometry: Geometry,
    particle: str,
    energies_mev: np.ndarray,
    rng: np.random.Generator,
    config: SimulationConfig = SimulationConfig(),
) -> Batch:
    """Simulate one batch of showers of ``particle`` with the given incident energies (MeV)."""
    if particle not in PARTICLES:
        raise InputError(f"unknown particle {particle!r}; expected one of {', '.join(PARTICLES)}")
    e = np.asarray(energies_mev, dtype=np.float64)
    if e.ndim != 1 or np.any(~np.isfinite(e)) or np.any(e <= 0):
        raise InputError("incident energies must be a 1-D array of positive finite MeV values")
    medium = geometry.medium
    c = medium.resolution_c if config.resolution_c is None else config.resolution_c
    seg = _segments(geometry, config.segment_x0)
    b = len(e)
    dep = _Deposit(geometry, seg, b, c, config.spot_energy_shape, rng)
    leak_long = np.zeros(b)
    invisible = np.zeros(b)
    interacted = np.ones(b, dtype=bool)
    idx = np.arange(b)

    if particle in ("e+", "gamma"):
        t0 = np.zeros(b) if particle == "e+" else rng.exponential(PHOTON_MEAN_FREE_PATH_X0, b)
        energy, spots, radii, weights, behind = _em_sources(e, t0, medium, seg, config, c, rng)
        dep.add(idx, energy, spots, radii, weights)
        leak_long += behind
    else:
        leak_long, invisible, interacted = _pions(geometry, e, seg, config, c, dep, rng)

    return Batch(dep.showers.astype(np.float32), e, leak_long, dep.lateral, invisible, interacted)


def _pions(
    geometry: Geometry, e: np.ndarray, seg: _Segments, cfg: SimulationConfig, c: float,
    dep: _Deposit, rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    medium, b = geometry.medium, len(e)
    depth_l = geometry.depth_lambda
    z_int = rng.exponential(cfg.pion_lambda_factor, b)  # in lambda_I
    interacted = z_int < depth_l

    # MIP deposits before the interaction (whole depth if none), on the axis, Moyal fluctuations.
    layers = geometry.relevant_layers
    lam_lo = np.array([lay.depth_lambda[0] for lay in layers])
    lam_hi = np.array([lay.depth_lambda[1] for lay in layers])
    x0_len = np.array([lay.depth_x0[1] - lay.depth_x0[0] for lay in layers])
    covered = np.clip((z_int[:, None] - lam_lo) / np.maximum(lam_hi - lam_lo, 1e-12), 0.0, 1.0)
    mean_mip = covered * x0_len * medium.mip_mev_per_x0  # (B, L)
    mip = mean_mip * np.maximum(1.0 + 0.1 * (_moyal(rng, mean_mip.shape) - 1.2704), 0.0)
    for li, layer in enumerate(layers):
        dep.showers[:, layer.start + axis_cell(layer)] += mip[:, li]
    e_left = np.maximum(e - mip.sum(1), 0.0)
    leak_long = np.where(interacted, 0.0, e_left)  # a non-interacting pion leaves the back
    invisible = np.zeros(b)

    rows = np.nonzero(interacted)[0]
    if len(rows) == 0:
        return leak_long, invisible, interacted
    e_i, z_i = e_left[rows], z_int[rows]
    e_gev = np.maximum(e_i / 1e3, 1e-3)
    # EM fraction ~ Beta(mean 1 - E^(k-1), sd), then 2-4 photons with Dirichlet(1) shares.
    mean = np.clip(1.0 - e_gev ** (cfg.em_fraction_k - 1.0), 0.05, 0.95)
    sd = np.minimum(cfg.em_fraction_sd, 0.9 * np.sqrt(mean * (1 - mean)))
    nu = mean * (1 - mean) / sd**2 - 1.0
    f_em = rng.beta(mean * nu, (1 - mean) * nu)
    n_gamma = rng.integers(2, 5, len(rows))
    shares = rng.exponential(1.0, (len(rows), 4)) * (np.arange(4)[None, :] < n_gamma[:, None])
    shares /= shares.sum(1, keepdims=True)
    photon_e = (f_em * e_i)[:, None] * shares
    keep = photon_e > 0
    parent = np.repeat(rows, 4)[keep.ravel()]
    pe = photon_e[keep]
    start = np.repeat(_lambda_to_x0(geometry, z_i), 4)[keep.ravel()]
    t0 = start + rng.exponential(PHOTON_MEAN_FREE_PATH_X0, len(pe))
    energy, spots, radii, weights, behind = _em_sources(pe, t0, medium, seg, cfg, c, rng)
    dep.add(parent, energy, spots, radii, weights)
    np.add.at(leak_long, parent, behind)

    # Hadronic part: invisible fraction, gamma profile in lambda_I from z_int, broad lateral.
    f_inv = np.clip(rng.normal(cfg.invisible_fraction, 0.1, len(rows)), 0.0, 0.8)
    e_had = (1.0 - f_em) * e_i
    invisible[rows] = e_had * f_inv
    e_vis = e_had * (1.0 - f_inv)
    ln_e = np.log(np.maximum(e_gev, 1.0))
    jitter = rng.multivariate_normal([0.0, 0.0], [[0.04, 0.02], [0.02, 0.04]], len(rows))
    shape = np.maximum((0.786 + 0.427 * ln_e) * np.exp(jitter[:, 0]), 1.01)
    rate = 0.978 * np.exp(jitter[:, 1])
    lo = np.maximum(seg.lam_lo[None, :] - z_i[:, None], 0.0)
    hi = np.maximum(seg.lam_hi[None, :] - z_i[:, None], 0.0)
    frac = gammainc(shape[:, None], rate[:, None] * hi) - gammainc(
        shape[:, None], rate[:, None] * lo
    )
    energy_h = e_vis[:, None] * frac
    leak_long[rows] += e_vis - energy_h.sum(1)
    n_h = np.maximum(50.0, 80.0 * ln_e + 50.0)
    spots_h = np.where(energy_h > 0, np.maximum(1, np.floor(n_h[:, None] * frac)), 0).astype(
        np.int64
    )
    s_e = np.maximum(0.02, 0.35 - 0.071 * ln_e)
    xi = rng.lognormal(0.0, 0.4, len(rows))
    x_mid = 0.5 * (lo + hi)
    radius = medium.lambda_mm * (0.12 + s_e[:, None] * x_mid) * xi[:, None]
    dep.add(rows, energy_h, spots_h, [radius], [np.ones_like(radius)], exponential_spots=True)
    return leak_long, invisible, interacted


def simulate(
    geometry: Geometry,
    particle: str,
    energies_mev: np.ndarray,
    seed: int = 0,
    batch_size: int = 1000,
    config: SimulationConfig = SimulationConfig(),
    progress: bool = False,
) -> Iterator[Batch]:
    """Simulate showers for every incident energy, batch by batch (bounded memory).

    The same seed and batch size give the same showers. Yields :class:`Batch` objects in order.
    """
    if batch_size < 1:
        raise InputError(f"batch size must be >= 1, got {batch_size}")
    e = np.asarray(energies_mev, dtype=np.float64)
    seeds = np.random.SeedSequence(seed).spawn(max(1, math.ceil(len(e) / batch_size)))
    with tqdm(total=len(e), disable=not progress, unit="shower", desc=f"{particle} showers") as bar:
        for i, start in enumerate(range(0, len(e), batch_size)):
            chunk = e[start : start + batch_size]
            yield simulate_batch(geometry, particle, chunk, np.random.default_rng(seeds[i]), config)
            bar.update(len(chunk))


def parse_particle(name: str) -> str:
    """Normalise a particle name (``e+``, ``positron``, ``gamma``, ``photon``, ``pi+``...)."""
    aliases = {"e+": "e+", "positron": "e+", "electron": "e+", "e-": "e+", "gamma": "gamma",
               "photon": "gamma", "pi+": "pi+", "pion": "pi+", "pi-": "pi+"}  # fmt: skip
    key = re.sub(r"\s+", "", name.lower())
    if key not in aliases:
        raise InputError(f"unknown particle {name!r}; expected e+, gamma or pi+")
    return aliases[key]
