"""The reference simulator reproduces its physics (reference-shower-simulator.md)."""

import math

import numpy as np
import pytest
from scipy import integrate

from hepflows.calo.geometry import get_geometry
from hepflows.calo.simulate import (
    EnergySpectrum,
    SimulationConfig,
    cell_probabilities,
    gflash_lateral,
    gflash_means,
    rectangle_probability,
    simulate,
    simulate_batch,
)
from hepflows.io import InputError


def run(geometry: str, particle: str, e_gev: float, n: int, seed: int = 0, **cfg):
    g = get_geometry(geometry)
    rng = np.random.default_rng(seed)
    return g, simulate_batch(g, particle, np.full(n, 1e3 * e_gev), rng, SimulationConfig(**cfg))


def mean_depth_x0(g, showers: np.ndarray) -> np.ndarray:
    """Energy-weighted mean depth of each shower (layer centres in X0)."""
    centres = np.array([0.5 * sum(layer.depth_x0) for layer in g.relevant_layers])
    per_layer = g.layer_energies(showers)
    return per_layer @ centres / per_layer.sum(1)


def test_gflash_parameters_match_the_spec_check_values() -> None:
    medium = get_geometry("calogan").medium  # homogeneous (total-deposit) mode
    mu_t, s_t, mu_a, s_a, rho = gflash_means(np.array([1.0, 10.0, 100.0]), medium)
    assert np.allclose(np.exp(mu_t), [3.9, 6.2, 8.5], atol=0.06)
    assert np.allclose(s_t, [0.22, 0.13, 0.10], atol=0.01)
    assert np.allclose(np.exp(mu_a), [3.1, 4.3, 5.4], atol=0.06)
    assert np.allclose(s_a, [0.29, 0.18, 0.13], atol=0.01)
    assert np.allclose(rho, [0.60, 0.54, 0.49], atol=0.01)
    r_c, r_t, p = gflash_lateral(np.array(10.0), np.array(1.0), medium)
    assert (float(r_c), float(r_t), float(p)) == pytest.approx((0.12, 0.70, 0.88), abs=0.011)


def test_rectangle_probability_is_the_integral_of_the_lateral_density() -> None:
    radius, a, b = 7.0, 5.0, 12.0
    density = lambda y, x: radius**2 / (math.pi * (x * x + y * y + radius**2) ** 2)  # noqa: E731
    numeric, _ = integrate.dblquad(density, 0.0, a, 0.0, b)
    assert rectangle_probability(np.array(a), np.array(b), np.array(radius)) == pytest.approx(
        numeric, rel=1e-9
    )
    assert rectangle_probability(np.array(1e9), np.array(1e9), np.array(radius)) == pytest.approx(
        0.25
    )
    for name in ("calogan", "ds2"):  # cell probabilities sum to the contained fraction
        layer = get_geometry(name).relevant_layers[1]
        total = cell_probabilities(layer, np.array([1e-3, 20.0])).sum(-1)
        assert total[0] == pytest.approx(1.0, abs=1e-9) and 0.5 < total[1] < 1.0


@pytest.mark.parametrize("e_gev", [1.0, 10.0, 100.0])
def test_depth_of_maximum_follows_the_gflash_formula(e_gev: float) -> None:
    """ds2 (45 layers of 0.806 X0): the mean profile peaks where GFLASH's sampling T says."""
    g, batch = run("ds2", "e+", e_gev, 400, resolution_c=0.0)
    profile = g.layer_energies(batch.showers).mean(0)
    k = int(np.argmax(profile))
    y0, y1, y2 = profile[k - 1 : k + 2]  # parabola through the peak layer and its neighbours
    peak = 0.806 * (k + 0.5 + 0.5 * (y0 - y2) / (y0 - 2 * y1 + y2))
    m = g.medium
    ln_y = math.log(1e3 * e_gev / m.critical_energy_mev)
    t_formula = ln_y - 0.858 - 0.59 / m.fs - 0.53 * (1 - m.ehat)  # T_sam of spec section 2.1
    assert abs(peak - t_formula) < 0.8  # one readout layer


def test_containment_ninety_percent_within_one_moliere_radius() -> None:
    g, batch = run("ds2", "e+", 50.0, 300, resolution_c=0.0)
    layer = g.relevant_layers[0]
    radial = batch.showers.reshape(-1, 45, 16, 9).sum(axis=(0, 1, 2))
    cumulative = np.concatenate([[0.0], np.cumsum(radial)]) / (
        radial.sum() + batch.leak_lateral.sum()
    )
    within = np.interp(g.medium.moliere_radius_mm, layer.r_edges_mm, cumulative)
    assert 0.85 < within < 0.95


def test_resolution_scales_as_c_over_sqrt_e_in_a_sampling_geometry() -> None:
    widths = {}
    for e_gev in (4.0, 64.0):
        _, batch = run("ds2", "e+", e_gev, 600, seed=1, resolution_c=0.15)
        total = batch.showers.sum(1) + batch.leak_lateral.sum(1) + batch.leak_longitudinal
        widths[e_gev] = np.std(total) / np.mean(total)
    assert widths[4.0] * math.sqrt(4.0) == pytest.approx(0.15, rel=0.15)
    assert widths[4.0] / widths[64.0] == pytest.approx(4.0, rel=0.2)


def test_pion_non_interacting_fraction_is_exp_minus_depth_over_lambda() -> None:
    g, batch = run("calogan", "pi+", 20.0, 4000, seed=2)
    expected = math.exp(-g.depth_lambda / 1.1)
    observed = 1.0 - batch.interacted.mean()
    assert abs(observed - expected) < 3 * math.sqrt(expected * (1 - expected) / 4000)
    mip_only = batch.showers[~batch.interacted]
    per_layer = g.layer_energies(mip_only).mean(0)  # MIPs: dE/dx times the layer's depth
    depth = np.array([layer.depth_x0[1] - layer.depth_x0[0] for layer in g.relevant_layers])
    assert np.allclose(per_layer, depth * g.medium.mip_mev_per_x0, rtol=0.03)
    assert np.count_nonzero(mip_only, axis=1).max() == 3  # one on-axis cell per layer


def test_photons_start_deeper_than_positrons() -> None:
    g, e_plus = run("ds2", "e+", 20.0, 1000, seed=3, resolution_c=0.0)
    _, gamma = run("ds2", "gamma", 20.0, 1000, seed=4, resolution_c=0.0)
    shift = mean_depth_x0(g, gamma.showers).mean() - mean_depth_x0(g, e_plus.showers).mean()
    assert shift == pytest.approx(9.0 / 7.0, abs=0.35)  # the pair-production mean free path


@pytest.mark.parametrize("particle", ["e+", "gamma", "pi+"])
def test_energy_is_conserved(particle: str) -> None:
    """CaloGAN reads the total deposit (no sampling fluctuation): deposited + leaked (+ invisible
    for pions) equals the incident energy shower by shower."""
    _, batch = run("calogan", particle, 30.0, 300, seed=5)
    total = (batch.showers.astype(np.float64).sum(1) + batch.leak_lateral.sum(1)
             + batch.leak_longitudinal + batch.invisible)  # fmt: skip
    assert np.allclose(total, batch.incident, rtol=1e-5)
    if particle == "e+":
        assert 0.97 < np.mean(batch.showers.sum(1) / batch.incident) < 1.0  # spec: 0.97-0.99


def test_same_seed_same_showers_and_batches_are_independent() -> None:
    g = get_geometry("ds1-photons")
    e = EnergySpectrum.parse("ladder").sample_mev(50, np.random.default_rng(0))
    a = np.concatenate([b.showers for b in simulate(g, "gamma", e, seed=9, batch_size=20)])
    b = np.concatenate([b.showers for b in simulate(g, "gamma", e, seed=9, batch_size=20)])
    c = np.concatenate([b.showers for b in simulate(g, "gamma", e, seed=10, batch_size=20)])
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert a.shape == (50, 368) and np.all(a >= 0)


def test_energy_spectra() -> None:
    rng = np.random.default_rng(0)
    assert np.all(EnergySpectrum.parse("fixed:10").sample_mev(5, rng) == 1e4)
    u = EnergySpectrum.parse("uniform:1:100").sample_mev(10000, rng)
    assert 1e3 <= u.min() and u.max() <= 1e5 and abs(np.mean(u) - 50.5e3) < 1e3
    lu = EnergySpectrum.parse("log-uniform:1:1000").sample_mev(10000, rng)
    assert abs(np.mean(np.log10(lu / 1e3)) - 1.5) < 0.03
    ladder = EnergySpectrum.parse("ladder").sample_mev(3000, rng)
    assert set(np.log2(ladder).astype(int)) == set(range(8, 23))
    for bad in ("fixed", "uniform:5:1", "gaussian:1:2", "fixed:x"):
        with pytest.raises(InputError, match="energy spec"):
            EnergySpectrum.parse(bad)
