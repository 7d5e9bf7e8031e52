"""Two e+e- matrix elements as integrands on [0, 1]^2, with exact total cross sections (pb).

Spec ``neural-importance-sampling.md`` section 7; the integrands follow the i-flow benchmarks of
arXiv:2001.05486 (Gao, Isaacson, Krause). Everything is tree level, massless and unpolarised.

Electroweak input (spec section 7.2, the madnis-tf parameter set):

    M_Z = 91.188 GeV,  Gamma_Z = 2.441404 GeV,  M_W = 80.419 GeV,  alpha = 1/132.507,
    sin^2 theta_W = 1 - M_W^2 / M_Z^2 = 0.22224...,  1 GeV^-2 = 0.3893794e9 pb.

**Born e+e- -> gamma/Z -> f fbar** (the standard s-channel formula, as in the tutorial of Hoeche,
arXiv:1411.4085). With c = cos theta the angle between e- and f, s = sqrt_s^2,

    dsigma/dOmega = alpha^2 / (4 s) N_c [A0 (1 + c^2) + A1 c]
    A0 = Q_f^2 - 2 Q_f v_e v_f chi1 + (a_e^2 + v_e^2)(a_f^2 + v_f^2) chi2
    A1 = -4 Q_f a_e a_f chi1 + 8 a_e v_e a_f v_f chi2
    chi1 = kappa s (s - M_Z^2) / [(s - M_Z^2)^2 + Gamma_Z^2 M_Z^2]
    chi2 = kappa^2 s^2 / [(s - M_Z^2)^2 + Gamma_Z^2 M_Z^2],  kappa = 1 / (4 sin^2 th_W cos^2 th_W)
    v_f = T3_f - 2 Q_f sin^2 theta_W,  a_f = T3_f   (electron: Q = -1, T3 = -1/2)

(fixed-width Breit-Wigner; Q_f in units of the positron charge, the electron charge already
absorbed in the signs). The c term integrates to zero, so sigma = 4 pi alpha^2 / (3 s) N_c A0; far
below the Z it tends to the QED value 4 pi alpha^2 / (3 s) N_c Q_f^2, and on the peak to
12 pi Gamma_ee Gamma_ff / (M_Z^2 Gamma_Z^2) (2.10 nb for mu+mu- at 91.2 GeV with these inputs).

**e+e- -> q qbar g** (spec 7.1). In energy fractions x_i = 2 E_i / sqrt_s (quark 1, antiquark 2,
gluon 3, x1 + x2 + x3 = 2) the O(alpha_s) real-emission cross section is

    dsigma / dx1 dx2 = sigma0 C_F alpha_s / (2 pi) (x1^2 + x2^2) / ((1 - x1)(1 - x2)),

with alpha_s = 0.118 and C_F = 4/3. The unpolarised |M|^2 depends only on the invariants
y_ij = s_ij / s (y_23 = 1 - x1, y_13 = 1 - x2, y_12 = x1 + x2 - 1 for massless partons); the other
three variables of the 5-dimensional three-body phase space are the orientation angles of the event
plane, on which the integrand is flat, so they are integrated out and the phase space reduces to
the two energy fractions. The infrared cut y_ij > y_cut for all pairs leaves the triangle

    x1 < 1 - y_cut,  x2 < 1 - y_cut,  x1 + x2 > 1 + y_cut       (non-empty for 0 < y_cut < 1/3).

sigma0 is the full gamma/Z Born cross section e+e- -> q qbar of the formula above, summed over the
five light flavours (u, d, s, c, b massless, N_c = 3) at the same sqrt_s: 42.2 nb at 91.2 GeV.

The total three-jet cross section is sigma0 C_F alpha_s / (2 pi) I(y_cut), where, with
a = 1 - x1, b = 1 - x2, c = y_cut, K = 1 - c, U = 1 - 2c, t0 = c / K,

    I(c) = 2 (J1 + J2)
    J1 = ln(K/c) ln(U/c) + Li2(t0) - Li2(1 - t0)
    J2 = -(1 + c)(U ln(U/c) - U + c) - (U^2/2 ln(U/c) - U^2/4 + c^2/4)

(the integrand is symmetric, so I = 2 * integral of (1 - a)^2 / (a b); the b integral gives a
logarithm and the a integral one dilogarithm). This is the familiar O(alpha_s) three-jet rate of
JADE-type algorithms, 2 ln^2(c/(1-c)) + (3 - 6c) ln(c/(1-2c)) + 5/2 - 6c - 9c^2/2
+ 4 Li2(c/(1-c)) - pi^2/3, written differently; I(0.01) = 27.9406.
"""

from __future__ import annotations

import math

import torch
from scipy import special
from torch import Tensor

from hepflows.io import InputError

#: Z mass in GeV.
M_Z = 91.188
#: Z width in GeV.
GAMMA_Z = 2.441404
#: W mass in GeV.
M_W = 80.419
#: Electromagnetic coupling.
ALPHA = 1.0 / 132.507
#: Weak mixing angle, on-shell definition.
SIN2_THETA_W = 1.0 - M_W**2 / M_Z**2
#: Conversion: 1 GeV^-2 in pb.
GEV2_TO_PB = 0.3893794e9
#: Strong coupling for e+e- -> q qbar g.
ALPHA_S = 0.118
#: Colour factor of the quark-gluon vertex.
C_F = 4.0 / 3.0
#: Number of quark colours.
N_C = 3

#: (charge Q, weak isospin T3) of the electron and of the five massless quark flavours.
ELECTRON = (-1.0, -0.5)
MUON = (-1.0, -0.5)
QUARKS = {
    "d": (-1.0 / 3.0, -0.5),
    "u": (2.0 / 3.0, 0.5),
    "s": (-1.0 / 3.0, -0.5),
    "c": (2.0 / 3.0, 0.5),
    "b": (-1.0 / 3.0, -0.5),
}

#: Default collision energy in GeV.
DEFAULT_SQRT_S = 91.2
#: Default jet-resolution cut of e+e- -> q qbar g.
DEFAULT_Y_CUT = 0.01


def check_sqrt_s(sqrt_s: float) -> float:
    """Return ``sqrt_s`` as a float; :class:`InputError` unless it is finite and positive."""
    value = float(sqrt_s)
    if not (math.isfinite(value) and value > 0.0):
        raise InputError(f"sqrt_s must be a positive energy in GeV, got {sqrt_s!r}")
    return value


def check_y_cut(y_cut: float) -> float:
    """Return ``y_cut`` as a float; :class:`InputError` unless 0 < y_cut < 1/3."""
    value = float(y_cut)
    if not (math.isfinite(value) and 0.0 < value < 1.0 / 3.0):
        raise InputError(
            f"y_cut must lie in the open interval (0, 1/3) (otherwise the three-jet region is "
            f"empty or infrared divergent), got {y_cut!r}"
        )
    return value


def born_coefficients(sqrt_s: float, charge: float, t3: float) -> tuple[float, float]:
    """``(A0, A1)`` of e+e- -> gamma/Z -> f fbar, dimensionless.

    dsigma/dOmega = alpha^2 / (4 s) N_c [A0 (1 + c^2) + A1 c] in GeV^-2, c = cos theta.

    ``charge`` is Q_f in units of the positron charge and ``t3`` the weak isospin T3_f of the
    left-handed f (module docstring for the formula).
    """
    s = check_sqrt_s(sqrt_s) ** 2
    sw2 = SIN2_THETA_W
    kappa = 1.0 / (4.0 * sw2 * (1.0 - sw2))
    denominator = (s - M_Z**2) ** 2 + GAMMA_Z**2 * M_Z**2
    chi1 = kappa * s * (s - M_Z**2) / denominator
    chi2 = kappa**2 * s**2 / denominator
    q_e, t3_e = ELECTRON
    v_e, a_e = t3_e - 2.0 * q_e * sw2, t3_e
    v_f, a_f = t3 - 2.0 * charge * sw2, t3
    a0 = charge**2 - 2.0 * charge * v_e * v_f * chi1 + (a_e**2 + v_e**2) * (a_f**2 + v_f**2) * chi2
    a1 = -4.0 * charge * a_e * a_f * chi1 + 8.0 * a_e * v_e * a_f * v_f * chi2
    return a0, a1


def born_cross_section(sqrt_s: float, charge: float, t3: float, colours: int = 1) -> float:
    """Total Born cross section e+e- -> gamma/Z -> f fbar in pb: 4 pi alpha^2/(3 s) N_c A0."""
    a0, _ = born_coefficients(sqrt_s, charge, t3)
    s = float(sqrt_s) ** 2
    return 4.0 * math.pi * ALPHA**2 / (3.0 * s) * colours * a0 * GEV2_TO_PB


def qed_cross_section(sqrt_s: float) -> float:
    """Pure-photon e+e- -> mu+mu- cross section 4 pi alpha^2 / (3 s) in pb."""
    s = check_sqrt_s(sqrt_s) ** 2
    return 4.0 * math.pi * ALPHA**2 / (3.0 * s) * GEV2_TO_PB


def sigma_mumu(sqrt_s: float = DEFAULT_SQRT_S) -> float:
    """Total e+e- -> gamma/Z -> mu+mu- cross section in pb (the ``ee_mumu`` truth)."""
    return born_cross_section(sqrt_s, *MUON)


def sigma_hadronic(sqrt_s: float = DEFAULT_SQRT_S) -> float:
    """sigma0: Born e+e- -> gamma/Z -> q qbar in pb, summed over u, d, s, c, b with N_c = 3."""
    return sum(born_cross_section(sqrt_s, q, t3, N_C) for q, t3 in QUARKS.values())


def three_jet_integral(y_cut: float = DEFAULT_Y_CUT) -> float:
    """I(y_cut): the integral of (x1^2 + x2^2) / ((1 - x1)(1 - x2)) over the cut region, exactly."""
    c = check_y_cut(y_cut)
    k, u = 1.0 - c, 1.0 - 2.0 * c
    t0 = c / k
    log_u = math.log(u / c)

    def li2(z: float) -> float:  # scipy's spence(z) is the dilogarithm Li2(1 - z)
        return float(special.spence(1.0 - z))

    j1 = math.log(k / c) * log_u + li2(t0) - li2(1.0 - t0)
    j2 = -(1.0 + c) * (u * log_u - u + c) - (u * u / 2.0 * log_u - u * u / 4.0 + c * c / 4.0)
    return 2.0 * (j1 + j2)


def sigma_qqg(y_cut: float = DEFAULT_Y_CUT, sqrt_s: float = DEFAULT_SQRT_S) -> float:
    """Total e+e- -> q qbar g cross section with y_ij > y_cut, in pb (the ``ee_qqg`` truth)."""
    return sigma_hadronic(sqrt_s) * C_F * ALPHA_S / (2.0 * math.pi) * three_jet_integral(y_cut)


def _check_points(u: Tensor) -> None:
    if u.ndim != 2 or u.shape[1] != 2:
        raise InputError(f"expected points of shape (n, 2), got {tuple(u.shape)}")


def mumu_map(u: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Map [0, 1]^2 onto the sphere: cos theta = 2 u1 - 1, phi = 2 pi u2; Jacobian 4 pi.

    Returns ``(cos_theta, phi, jacobian)``, each of shape ``(n,)``, on ``u``'s device and dtype.
    """
    _check_points(u)
    cos_theta = 2.0 * u[:, 0] - 1.0
    phi = (2.0 * math.pi) * u[:, 1]
    return cos_theta, phi, torch.full_like(cos_theta, 4.0 * math.pi)


def ee_mumu(x: Tensor, sqrt_s: float = DEFAULT_SQRT_S) -> Tensor:
    """4 pi dsigma/dOmega(e+e- -> mu+mu-) in pb at the points ``x`` ``(n, 2)`` of [0, 1]^2.

    Its integral over the square is :func:`sigma_mumu` (the map is :func:`mumu_map`).
    """
    a0, a1 = born_coefficients(sqrt_s, *MUON)
    scale = ALPHA**2 / (4.0 * float(sqrt_s) ** 2) * GEV2_TO_PB
    cos_theta, _, jacobian = mumu_map(x)
    return jacobian * scale * (a0 * (1.0 + cos_theta**2) + a1 * cos_theta)


def qqg_map(u: Tensor, y_cut: float = DEFAULT_Y_CUT) -> tuple[Tensor, Tensor, Tensor]:
    """Map [0, 1]^2 onto the three-jet region x1, x2 < 1 - y_cut, x1 + x2 > 1 + y_cut.

    x1 = 2 c + (1 - 3 c) u1 runs over [2c, 1 - c]; given x1, x2 = (1 + c - x1) + (x1 - 2 c) u2 runs
    over [1 + c - x1, 1 - c]. The Jacobian |d(x1, x2)/d(u1, u2)| = (1 - 3c)(x1 - 2c) is positive
    in the interior of the square and integrates to the area (1 - 3c)^2 / 2 of the triangle.
    Returns ``(x1, x2, jacobian)``, each ``(n,)``, on ``u``'s device and dtype.
    """
    _check_points(u)
    c = check_y_cut(y_cut)
    x1 = 2.0 * c + (1.0 - 3.0 * c) * u[:, 0]
    width = x1 - 2.0 * c
    x2 = (1.0 + c - x1) + width * u[:, 1]
    return x1, x2, (1.0 - 3.0 * c) * width


def qqg_differential(x1: Tensor, x2: Tensor, sqrt_s: float = DEFAULT_SQRT_S) -> Tensor:
    """dsigma / dx1 dx2 of e+e- -> q qbar g in pb (no cut applied here)."""
    norm = sigma_hadronic(sqrt_s) * C_F * ALPHA_S / (2.0 * math.pi)
    return norm * (x1**2 + x2**2) / ((1.0 - x1) * (1.0 - x2))


def ee_qqg(x: Tensor, y_cut: float = DEFAULT_Y_CUT, sqrt_s: float = DEFAULT_SQRT_S) -> Tensor:
    """dsigma/dx1 dx2 times the Jacobian of :func:`qqg_map`, in pb, at ``x`` ``(n, 2)``.

    Its integral over the square is :func:`sigma_qqg`.
    """
    x1, x2, jacobian = qqg_map(x, y_cut)
    return qqg_differential(x1, x2, sqrt_s) * jacobian
