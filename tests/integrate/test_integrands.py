"""Benchmark integrands: truths against Monte Carlo, the spec table, quadrature and physics limits.

Spec ``neural-importance-sampling.md`` sections 4 and 7; arXiv:2001.05486.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import pickle

import numpy as np
import pytest
import torch
from scipy import integrate, special

from hepflows.integrate import physics
from hepflows.integrate.integrands import (
    CIRCLES_TRUTH,
    Integrand,
    circles_quadrature,
    describe_integrands,
    get_integrand,
    integrand_names,
)
from hepflows.io import InputError

N_MC = 2_000_000

# (name, dim, params): every integrand with a truth, at the dimensions the brief asks for.
CASES = [
    ("gauss", 2, {}),
    ("gauss", 4, {}),
    ("camel", 2, {}),
    ("camel", 4, {}),
    ("poly", 18, {}),
    ("annulus", 2, {}),
    ("circles", 2, {}),
    ("ee_mumu", 2, {}),
    ("ee_mumu", 2, {"sqrt_s": 10.0}),
    ("ee_qqg", 2, {}),
    ("ee_qqg", 2, {"y_cut": 0.1}),
]
CASE_IDS = [
    f"{n}-{d}-{'-'.join(f'{k}{v:g}' for k, v in p.items())}".rstrip("-") for n, d, p in CASES
]


def _plain_mc(integrand: Integrand, seed: int) -> tuple[float, float]:
    """Plain Monte Carlo with N_MC uniform float64 points: (estimate, standard error)."""
    gen = torch.Generator().manual_seed(seed)
    chunk = 250_000
    values = torch.cat(
        [
            integrand.function(torch.rand(chunk, integrand.dim, generator=gen, dtype=torch.float64))
            for _ in range(N_MC // chunk)
        ]
    )
    mean = values.mean().item()
    return mean, values.std().item() / math.sqrt(N_MC)


# --------------------------------------------------------------------------- truths


@pytest.mark.parametrize(("name", "dim", "params"), CASES, ids=CASE_IDS)
def test_plain_monte_carlo_agrees_with_truth(name: str, dim: int, params: dict) -> None:
    integrand = get_integrand(name, dim, **params)
    mean, error = _plain_mc(integrand, seed=CASES.index((name, dim, params)) + 17)
    assert integrand.truth is not None
    assert error < 0.01 * integrand.truth  # the comparison below has teeth
    assert abs(mean - integrand.truth) < 4.0 * error, (mean, error, integrand.truth)


@pytest.mark.parametrize(
    ("dim", "gauss", "camel"),
    [(2, 0.999186, 0.981660), (4, 0.998373, 0.963657), (8, 0.996749, 0.928635),
     (16, 0.993509, 0.862363)],
)  # fmt: skip
def test_gauss_and_camel_truths_match_spec_table(dim: int, gauss: float, camel: float) -> None:
    assert get_integrand("gauss", dim).truth == pytest.approx(gauss, abs=5e-7)
    assert get_integrand("camel", dim).truth == pytest.approx(camel, abs=5e-7)


def test_annulus_and_poly_truths_match_spec_table() -> None:
    assert get_integrand("annulus").truth == pytest.approx(0.510509, abs=5e-7)
    assert get_integrand("annulus").truth == pytest.approx(math.pi * (0.45**2 - 0.2**2), rel=1e-15)
    for dim in (1, 18, 54, 96):
        assert get_integrand("poly", dim).truth == pytest.approx(dim / 6.0, rel=1e-15)


def test_circles_truth_is_reproduced_by_two_independent_quadratures() -> None:
    assert CIRCLES_TRUTH == pytest.approx(0.01368478, abs=5e-9)  # i-flow's quadrature value
    assert round(CIRCLES_TRUTH, 7) == 0.0136848  # the spec table
    assert circles_quadrature(epsrel=1e-10) == pytest.approx(CIRCLES_TRUTH, rel=1e-10)

    # Cartesian nested quad with the ridge crossings as break points (independent of the polar one)
    w, r = 250.0, 0.25

    def f(x2: float, x1: float) -> float:
        first = x2**3 * math.exp(-w * abs((x2 - 0.6) ** 2 + (x1 - 0.4) ** 2 - r * r))
        second = (1 - x2) ** 3 * math.exp(-w * abs((x2 - 0.4) ** 2 + (x1 - 0.6) ** 2 - r * r))
        return first + second

    def inner(x1: float) -> float:
        points = []
        for cx, cy in ((0.4, 0.6), (0.6, 0.4)):
            if (d := r * r - (x1 - cx) ** 2) > 0:
                points += [cy - math.sqrt(d), cy + math.sqrt(d)]
        return integrate.quad(f, 0, 1, args=(x1,), points=points or None, epsrel=1e-11, limit=500)[
            0
        ]

    cartesian = integrate.quad(inner, 0, 1, points=[0.15, 0.35, 0.65, 0.85], epsrel=1e-11)[0]
    assert cartesian == pytest.approx(CIRCLES_TRUTH, rel=1e-10)
    assert get_integrand("circles").truth == CIRCLES_TRUTH


def test_functions_match_their_formulas_at_points() -> None:
    alpha = 0.2
    norm = (alpha * math.sqrt(math.pi)) ** -3
    centre = torch.full((1, 3), 0.5, dtype=torch.float64)
    assert get_integrand("gauss", 3).function(centre).item() == pytest.approx(norm, rel=1e-14)
    third = torch.full((1, 3), 1 / 3, dtype=torch.float64)
    camel = 0.5 * norm * (1.0 + math.exp(-3 * (1 / 3) ** 2 / alpha**2))
    assert get_integrand("camel", 3).function(third).item() == pytest.approx(camel, rel=1e-14)
    x = torch.tensor([[0.1, 0.7, 0.5]], dtype=torch.float64)
    assert get_integrand("poly", 3).function(x).item() == pytest.approx(0.09 + 0.21 + 0.25)

    # annulus centred at (1/2, 1/2): not the quarter annulus at the origin
    pts = torch.tensor([[0.5, 0.5], [0.8, 0.5], [0.5, 0.15], [0.96, 0.5], [0.1, 0.1], [0.0, 0.3]])
    expected = [0.0, 1.0, 1.0, 0.0, 0.0, 0.0]
    assert get_integrand("annulus").function(pts.double()).tolist() == expected

    # circles with (1 - x2)^3, not (1 - x2^3)
    x1, x2 = 0.65, 0.6  # on the first ridge
    value = x2**3 + (1 - x2) ** 3 * math.exp(-250 * abs((x2 - 0.4) ** 2 + (x1 - 0.6) ** 2 - 0.0625))
    got = get_integrand("circles").function(torch.tensor([[x1, x2]], dtype=torch.float64))
    assert got.item() == pytest.approx(value, rel=1e-14)


# --------------------------------------------------------------------------- e+e- -> mu+mu-


def test_ee_mumu_truth_equals_quadrature_of_the_integrand() -> None:
    for sqrt_s in (10.0, 91.2, 200.0):
        integrand = get_integrand("ee_mumu", sqrt_s=sqrt_s)

        def f(x2: float, x1: float, fn=integrand.function) -> float:
            return fn(torch.tensor([[x1, x2]], dtype=torch.float64)).item()

        value, _ = integrate.dblquad(f, 0, 1, 0, 1, epsabs=0, epsrel=1e-12)
        assert integrand.unit == "pb"
        assert integrand.truth == pytest.approx(value, rel=1e-10)


def test_ee_mumu_low_energy_limit_is_qed() -> None:
    for sqrt_s in (3.0, 10.0):
        qed = 4 * math.pi * physics.ALPHA**2 / (3 * sqrt_s**2) * physics.GEV2_TO_PB
        assert physics.qed_cross_section(sqrt_s) == pytest.approx(qed, rel=1e-15)
        assert get_integrand("ee_mumu", sqrt_s=sqrt_s).truth == pytest.approx(qed, rel=0.01)
    # 86.8 nb / s[GeV^2] with alpha = 1/137 is the textbook number; here alpha = 1/132.507
    assert physics.qed_cross_section(10.0) == pytest.approx(
        86.8e3 / 100 * (137.036 / 132.507) ** 2, rel=2e-3
    )
    # R = sigma(hadrons) / sigma(mu mu) -> N_c sum Q_q^2 = 11/3 for five flavours
    assert physics.sigma_hadronic(10.0) / physics.sigma_mumu(10.0) == pytest.approx(
        11 / 3, rel=2e-3
    )


def test_ee_mumu_peak_is_about_two_nanobarn() -> None:
    sigma = get_integrand("ee_mumu").truth
    assert sigma is not None and 1.5e3 < sigma < 2.5e3  # pb
    # Breit-Wigner peak 12 pi Gamma_ee Gamma_mumu / (M_Z^2 Gamma_Z^2), tree-level partial width
    sw2 = physics.SIN2_THETA_W
    v, a = -0.5 + 2 * sw2, -0.5
    gamma_ll = physics.ALPHA * physics.M_Z * (v * v + a * a) / (12 * sw2 * (1 - sw2))
    assert gamma_ll == pytest.approx(0.0840, abs=5e-4)  # GeV
    peak = 12 * math.pi * gamma_ll**2 / (physics.M_Z * physics.GAMMA_Z) ** 2 * physics.GEV2_TO_PB
    assert sigma == pytest.approx(peak, rel=0.01)
    # hadronic / leptonic peak ratio (Born R_l ~ 20)
    assert physics.sigma_hadronic(91.2) / sigma == pytest.approx(20.1, abs=0.1)


def test_ee_mumu_forward_backward_asymmetry() -> None:
    def afb(sqrt_s: float) -> float:
        fn = get_integrand("ee_mumu", sqrt_s=sqrt_s).function
        u = torch.linspace(0.0, 1.0, 200_001, dtype=torch.float64)
        x = torch.stack([u, torch.zeros_like(u)], dim=1)
        y = fn(x)
        forward = torch.trapezoid(y[100_000:], u[100_000:])
        backward = torch.trapezoid(y[:100_001], u[:100_001])
        return ((forward - backward) / (forward + backward)).item()

    # on the Z pole A_FB = 3/4 A_e A_mu with A_l = 2 v a / (v^2 + a^2)
    v, a = -0.5 + 2 * physics.SIN2_THETA_W, -0.5
    a_l = 2 * v * a / (v * v + a * a)
    assert afb(physics.M_Z) == pytest.approx(0.75 * a_l**2, abs=1e-3)
    # gamma-Z interference makes A_FB negative below the Z (PETRA: about -0.1 at 35 GeV)
    assert -0.12 < afb(35.0) < -0.07
    assert afb(200.0) > 0.4


def test_mumu_map() -> None:
    u = torch.rand(1000, 2, dtype=torch.float64)
    cos_theta, phi, jac = physics.mumu_map(u)
    assert torch.equal(cos_theta, 2 * u[:, 0] - 1)
    assert torch.allclose(phi, 2 * math.pi * u[:, 1])
    assert torch.all(jac == 4 * math.pi)
    corners = torch.tensor([[0.0, 0.0], [1.0, 1.0]], dtype=torch.float64)
    cos_theta, phi, _ = physics.mumu_map(corners)
    assert cos_theta.tolist() == [-1.0, 1.0] and phi.tolist() == [0.0, 2 * math.pi]


# --------------------------------------------------------------------------- e+e- -> q qbar g


def _in_region(x1: torch.Tensor, x2: torch.Tensor, c: float) -> torch.Tensor:
    return (x1 < 1 - c) & (x2 < 1 - c) & (x1 + x2 > 1 + c)


@pytest.mark.parametrize("y_cut", [0.001, 0.01, 0.1, 0.3])
def test_qqg_map_covers_exactly_the_cut_region(y_cut: float) -> None:
    c = y_cut
    gen = torch.Generator().manual_seed(5)
    u = torch.rand(100_000, 2, generator=gen, dtype=torch.float64)
    x1, x2, jac = physics.qqg_map(u, y_cut)
    assert bool(_in_region(x1, x2, c).all())
    assert bool((jac > 0).all())

    # onto: uniform points of the region pull back into the square and map back to themselves
    p = torch.rand(400_000, 2, generator=gen, dtype=torch.float64)
    p = p[_in_region(p[:, 0], p[:, 1], c)]
    assert len(p) > 100
    v1 = (p[:, 0] - 2 * c) / (1 - 3 * c)
    v2 = (p[:, 1] - (1 + c - p[:, 0])) / (p[:, 0] - 2 * c)
    assert bool(((v1 > 0) & (v1 < 1) & (v2 > 0) & (v2 < 1)).all())
    y1, y2, _ = physics.qqg_map(torch.stack([v1, v2], dim=1), y_cut)
    assert torch.allclose(y1, p[:, 0], atol=1e-12) and torch.allclose(y2, p[:, 1], atol=1e-12)

    # the edges of the square go to the edges of the triangle
    s = torch.linspace(0, 1, 101, dtype=torch.float64)
    edges = [torch.stack(e, dim=1) for e in ((s, 0 * s), (s, 0 * s + 1), (0 * s + 1, s))]
    b1, b2, _ = physics.qqg_map(torch.cat(edges), y_cut)
    on_edge = (
        ((b1 + b2 - (1 + c)).abs() < 1e-12)
        | ((b2 - (1 - c)).abs() < 1e-12)
        | ((b1 - (1 - c)).abs() < 1e-12)
    )
    assert bool(on_edge.all())


@pytest.mark.parametrize("y_cut", [0.01, 0.2])
def test_qqg_jacobian_is_the_area_element(y_cut: float) -> None:
    u = torch.rand(2000, 2, dtype=torch.float64, requires_grad=True)
    x1, x2, jac = physics.qqg_map(u, y_cut)
    g1 = torch.autograd.grad(x1.sum(), u, retain_graph=True)[0]
    g2 = torch.autograd.grad(x2.sum(), u)[0]
    det = g1[:, 0] * g2[:, 1] - g1[:, 1] * g2[:, 0]
    assert torch.allclose(det.abs(), jac.detach(), rtol=1e-12)

    area = (1 - 3 * y_cut) ** 2 / 2  # the triangle with vertices (2c, 1-c), (1-c, 2c), (1-c, 1-c)

    def jacobian(u2: float, u1: float) -> float:
        return physics.qqg_map(torch.tensor([[u1, u2]], dtype=torch.float64), y_cut)[2].item()

    assert integrate.dblquad(jacobian, 0, 1, 0, 1)[0] == pytest.approx(area, rel=1e-12)
    gen = torch.Generator().manual_seed(3)
    jac = physics.qqg_map(torch.rand(N_MC, 2, generator=gen, dtype=torch.float64), y_cut)[2]
    assert jac.mean().item() == pytest.approx(area, abs=4 * jac.std().item() / math.sqrt(N_MC))


@pytest.mark.parametrize("y_cut", [0.001, 0.01, 0.05, 0.1, 0.3])
def test_ee_qqg_truth_equals_quadrature(y_cut: float) -> None:
    c = y_cut
    integrand = get_integrand("ee_qqg", y_cut=y_cut)
    norm = physics.sigma_hadronic(91.2) * (4 / 3) * 0.118 / (2 * math.pi)

    def dsigma(x2: float, x1: float) -> float:  # straight from spec 7.1, independent of the map
        return norm * (x1 * x1 + x2 * x2) / ((1 - x1) * (1 - x2))

    direct, _ = integrate.dblquad(
        dsigma, 2 * c, 1 - c, lambda x1: 1 + c - x1, lambda x1: 1 - c, epsabs=0, epsrel=1e-12
    )
    assert integrand.unit == "pb"
    assert integrand.truth == pytest.approx(direct, rel=1e-8)

    if y_cut < 0.01:
        return  # the same check through the map costs ~1e5 single-point torch calls here

    def mapped(u2: float, u1: float) -> float:
        return integrand.function(torch.tensor([[u1, u2]], dtype=torch.float64)).item()

    through_map, _ = integrate.dblquad(mapped, 0, 1, 0, 1, epsabs=0, epsrel=1e-9)
    assert integrand.truth == pytest.approx(through_map, rel=1e-8)


def test_three_jet_integral_closed_forms() -> None:
    for c in (0.001, 0.01, 0.1, 0.3):
        li2 = special.spence(1 - c / (1 - c))
        jade = (
            2 * math.log(c / (1 - c)) ** 2
            + (3 - 6 * c) * math.log(c / (1 - 2 * c))
            + 2.5
            - 6 * c
            - 4.5 * c * c
            + 4 * li2
            - math.pi**2 / 3
        )
        assert physics.three_jet_integral(c) == pytest.approx(jade, rel=1e-12)
    assert physics.three_jet_integral(0.01) == pytest.approx(27.9406369, rel=1e-8)
    assert physics.sigma_hadronic(91.2) == pytest.approx(42_235, rel=1e-4)  # pb


def test_qqg_matrix_element_in_invariants_matches_energy_fractions() -> None:
    # spec 7.1: s13/s23 + s23/s13 + 2 s12 (s12 + s13 + s23) / (s13 s23) = (x1^2 + x2^2) / (y13 y23)
    x1 = torch.tensor([0.6, 0.9, 0.95], dtype=torch.float64)
    x2 = torch.tensor([0.7, 0.5, 0.2], dtype=torch.float64)
    y23, y13, y12 = 1 - x1, 1 - x2, x1 + x2 - 1
    invariants = y13 / y23 + y23 / y13 + 2 * y12 * (y12 + y13 + y23) / (y13 * y23)
    ratio = physics.qqg_differential(x1, x2) / invariants
    assert torch.allclose(ratio, ratio[0].expand(3), rtol=1e-13)


# --------------------------------------------------------------------------- robustness


@pytest.mark.parametrize(("name", "dim", "params"), CASES, ids=CASE_IDS)
def test_values_non_negative_and_finite_inside_and_at_corners(
    name: str, dim: int, params: dict
) -> None:
    fn = get_integrand(name, dim, **params).function
    corners = torch.tensor(list(itertools.product([0.0, 1.0], repeat=dim)), dtype=torch.float64)
    for x in (torch.rand(10_000, dim, dtype=torch.float64), corners):
        y = fn(x)
        assert y.shape == (len(x),) and y.dtype == torch.float64
        assert bool(torch.isfinite(y).all()) and bool((y >= 0).all())
    # float32 in, float32 out, same values
    x = torch.rand(1000, dim, dtype=torch.float64)
    y32 = fn(x.float())
    assert y32.dtype == torch.float32
    y64 = fn(x)
    if name == "annulus":  # an indicator: rounding can flip points within 1e-7 of the circles
        assert (y32.double() != y64).float().mean() < 0.01
    else:
        assert torch.allclose(y32.double(), y64, rtol=1e-3, atol=1e-4 * y64.abs().max().item())


def test_wrong_point_shape_is_an_input_error() -> None:
    with pytest.raises(InputError, match=r"\(n, 4\)"):
        get_integrand("gauss").function(torch.rand(10, 3, dtype=torch.float64))
    with pytest.raises(InputError, match=r"\(n, 2\)"):
        get_integrand("ee_qqg").function(torch.rand(10, 3, dtype=torch.float64))


@pytest.mark.parametrize(
    ("name", "dim", "params", "message"),
    [
        ("nope", None, {}, "annulus, circles"),
        ("annulus", 3, {}, "dim 2 only"),
        ("circles", 4, {}, "dim 2 only"),
        ("ee_qqg", 5, {}, "dim 2 only"),
        ("gauss", 0, {}, "dim >= 1"),
        ("gauss", 2.5, {}, "dim >= 1"),
        ("gauss", True, {}, "dim >= 1"),
        ("gauss", None, {"alpha": -0.2}, "alpha=0.2"),
        ("gauss", None, {"alpha": 0.0}, "alpha"),
        ("camel", None, {"alpha": "wide"}, "alpha"),
        ("camel", None, {"alpha": float("nan")}, "alpha"),
        ("poly", None, {"alpha": 0.3}, "allowed: none"),
        ("gauss", None, {"beta": 0.3}, "allowed: alpha"),
        ("ee_qqg", None, {"y_cut": 0.0}, "y_cut"),
        ("ee_qqg", None, {"y_cut": 1 / 3}, "< 0.333333"),
        ("ee_qqg", None, {"y_cut": 0.5}, "y_cut"),
        ("ee_qqg", None, {"y_cut": -0.01}, "y_cut"),
        ("ee_mumu", None, {"sqrt_s": -91.2}, "sqrt_s"),
        ("ee_mumu", None, {"sqrt_s": math.inf}, "sqrt_s"),
    ],
)
def test_bad_requests_raise_input_error(name, dim, params, message) -> None:
    with pytest.raises(InputError, match=message):
        get_integrand(name, dim, **params)


def test_physics_functions_validate_directly() -> None:
    u = torch.rand(5, 2, dtype=torch.float64)
    for bad in (0.0, 1 / 3, 0.4):
        with pytest.raises(InputError):
            physics.qqg_map(u, bad)
    with pytest.raises(InputError):
        physics.sigma_mumu(0.0)


def test_registry_api() -> None:
    names = integrand_names()
    assert names == ["gauss", "camel", "poly", "annulus", "circles", "ee_mumu", "ee_qqg"]
    described = dict(describe_integrands())
    assert list(described) == names
    assert "dim >= 1 (default 4)" in described["gauss"] and "alpha=0.2" in described["gauss"]
    assert "default 18" in described["poly"]
    assert "dim 2 only" in described["annulus"]
    assert "y_cut=0.01" in described["ee_qqg"] and "sqrt_s=91.2" in described["ee_qqg"]
    for name in names:
        integrand = get_integrand(name)
        assert integrand.name == name
        assert integrand.truth_source.startswith(("analytic: ", "quadrature: scipy"))
        assert "\n" not in integrand.description
        assert integrand.unit == ("pb" if name.startswith("ee_") else "")
        clone = pickle.loads(pickle.dumps(integrand))  # partials of module functions pickle
        x = torch.rand(7, integrand.dim, dtype=torch.float64)
        assert torch.equal(clone.function(x), integrand.function(x))
        assert torch.equal(integrand(x), integrand.function(x))
    assert get_integrand("gauss").dim == 4 and get_integrand("poly").dim == 18
    assert get_integrand("camel", np.int64(8)).dim == 8
    assert get_integrand("gauss", alpha="0.3").truth == pytest.approx(math.erf(1 / 0.6) ** 4)
    with pytest.raises(dataclasses.FrozenInstanceError):
        get_integrand("gauss").dim = 3  # type: ignore[misc]


def test_functions_stay_on_the_input_device() -> None:
    # the meta device has no data: any constant tensor created on the CPU inside would clash
    for name in integrand_names():
        integrand = get_integrand(name)
        x = torch.empty(5, integrand.dim, dtype=torch.float64, device="meta")
        y = integrand.function(x)
        assert y.device.type == "meta" and y.shape == (5,) and y.dtype == torch.float64


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_functions_on_cuda_match_cpu() -> None:
    for name in integrand_names():
        integrand = get_integrand(name)
        x = torch.rand(1000, integrand.dim, dtype=torch.float64)
        y = integrand.function(x.cuda())
        assert y.is_cuda
        assert torch.allclose(y.cpu(), integrand.function(x), rtol=1e-12, atol=0)
