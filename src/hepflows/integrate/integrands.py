"""Benchmark integrands on the unit hypercube [0, 1]^d with exact or reference integrals.

Spec ``neural-importance-sampling.md`` section 4 (the i-flow benchmarks, equation numbers of
arXiv:2001.05486) and section 7 (two e+e- matrix elements, :mod:`hepflows.integrate.physics`).

- ``gauss`` (any d, eq. 15): (alpha sqrt(pi))^-d exp(-sum (x_i - 1/2)^2 / alpha^2);
  I = erf(1/(2 alpha))^d.
- ``camel`` (any d, eq. 17): (alpha sqrt(pi))^-d / 2 [exp(-sum (x_i - 1/3)^2 / alpha^2)
  + exp(-sum (x_i - 2/3)^2 / alpha^2)]; I = [(erf(1/(3 alpha)) + erf(2/(3 alpha))) / 2]^d.
- ``poly`` (any d, eq. 22): sum (x_i - x_i^2); I = d / 6.
- ``annulus`` (d = 2): 1 if 0.2^2 < (x1 - 1/2)^2 + (x2 - 1/2)^2 < 0.45^2 else 0;
  I = pi (0.45^2 - 0.2^2) = 0.510509.
- ``circles`` (d = 2, eq. 19): x2^3 exp(-w |(x2 - 0.6)^2 + (x1 - 0.4)^2 - r^2|)
  + (1 - x2)^3 exp(-w |(x2 - 0.4)^2 + (x1 - 0.6)^2 - r^2|), w = 250, r = 0.25;
  I = 0.013684776724937954 (quadrature, below).
- ``ee_mumu`` (d = 2): e+e- -> gamma/Z -> mu+mu-, 4 pi dsigma/dOmega in pb over
  (cos theta, phi); I = the analytic Born total cross section.
- ``ee_qqg`` (d = 2): e+e- -> q qbar g with y_ij > y_cut, dsigma/dx1 dx2 times the Jacobian of
  the map onto the cut region, in pb; I = the analytic total (logarithms and a dilogarithm).

Defaults: alpha = 0.2; gauss and camel d = 4, poly d = 18. The annulus is centred at (1/2, 1/2)
(not the quarter annulus at the origin of a third-party port), and circles uses (1 - x2)^3, not the
(1 - x2^3) of early i-flow code (spec section 4 cautions).

The circles reference value is this module's own quadrature (:func:`circles_quadrature`): each term
is integrated in polar coordinates about its circle's centre, the radial integral split at the
ridge rho = r and cut at the square's edge, the angular one split at the four corner directions;
by the symmetry (x1, x2) -> (1 - x1, 1 - x2) the two terms have equal integrals. Nested
``scipy.integrate.quad`` at relative tolerances 1e-8 to 1e-13 all give 0.013684776724937954, and
an independent Cartesian ``quad`` with the ridge crossings as break points agrees to 1e-16
(i-flow's reference: 0.01368478).

Every ``Integrand.function`` maps points ``(n, dim)`` to values ``(n,)`` with torch operations
only, on the input's device and in its dtype (float64 is the intended dtype), and is a
:func:`functools.partial` of a module-level function, so integrands pickle.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import operator
from collections.abc import Callable, Mapping

import torch
from torch import Tensor

from hepflows.integrate import physics
from hepflows.io import InputError

#: Circles width w and radius r (eq. 19 of arXiv:2001.05486).
CIRCLES_W = 250.0
CIRCLES_R = 0.25
#: Inner and outer radius of the annulus, centred at (1/2, 1/2).
ANNULUS_RADII = (0.2, 0.45)
#: Reference integral of circles: :func:`circles_quadrature` at epsrel 1e-13 (see module docs).
CIRCLES_TRUTH = 0.013684776724937954


@dataclasses.dataclass(frozen=True)
class Integrand:
    """A function on [0, 1]^dim with its exact or reference integral.

    ``function`` maps float points ``(n, dim)`` to non-negative values ``(n,)``. ``truth`` is the
    integral over the unit hypercube (``None`` if unknown) and ``truth_source`` says where it comes
    from ("analytic: ..." or "quadrature: ..."). ``unit`` is the unit of the values and of
    ``truth`` ("" for the dimensionless toys, "pb" for the cross sections).
    """

    name: str
    dim: int
    function: Callable[[Tensor], Tensor]
    truth: float | None
    truth_source: str
    description: str
    unit: str = ""

    def __call__(self, x: Tensor) -> Tensor:
        return self.function(x)


# --------------------------------------------------------------------------- the functions


def _check(x: Tensor, dim: int) -> None:
    if x.ndim != 2 or x.shape[1] != dim:
        raise InputError(f"expected points of shape (n, {dim}), got {tuple(x.shape)}")


def _gauss(x: Tensor, alpha: float) -> Tensor:
    d = x.shape[1]
    log_norm = -d * math.log(alpha * math.sqrt(math.pi))
    return torch.exp(log_norm - ((x - 0.5) ** 2).sum(dim=1) / alpha**2)


def _camel(x: Tensor, alpha: float) -> Tensor:
    d = x.shape[1]
    log_norm = -d * math.log(alpha * math.sqrt(math.pi)) - math.log(2.0)
    first = -((x - 1.0 / 3.0) ** 2).sum(dim=1) / alpha**2
    second = -((x - 2.0 / 3.0) ** 2).sum(dim=1) / alpha**2
    return torch.exp(torch.logaddexp(first, second) + log_norm)


def _poly(x: Tensor) -> Tensor:
    return (x * (1.0 - x)).sum(dim=1)


def _annulus(x: Tensor) -> Tensor:
    r_in, r_out = ANNULUS_RADII
    r2 = ((x - 0.5) ** 2).sum(dim=1)
    return ((r2 > r_in**2) & (r2 < r_out**2)).to(x.dtype)


def _circles(x: Tensor) -> Tensor:
    x1, x2 = x[:, 0], x[:, 1]
    w, r2 = CIRCLES_W, CIRCLES_R**2
    first = x2**3 * torch.exp(-w * ((x2 - 0.6) ** 2 + (x1 - 0.4) ** 2 - r2).abs())
    second = (1.0 - x2) ** 3 * torch.exp(-w * ((x2 - 0.4) ** 2 + (x1 - 0.6) ** 2 - r2).abs())
    return first + second


def _checked(function: Callable[..., Tensor], dim: int, x: Tensor, **params: float) -> Tensor:
    _check(x, dim)
    return function(x, **params)


def circles_quadrature(epsrel: float = 1e-13) -> float:
    """Integral of circles over [0, 1]^2 by nested ``scipy.integrate.quad`` (module docstring)."""
    from scipy import integrate  # local: only needed to re-derive CIRCLES_TRUTH

    cx, cy, w, r = 0.4, 0.6, CIRCLES_W, CIRCLES_R

    def rho_max(theta: float) -> float:  # distance from the centre to the square's edge
        c, s = math.cos(theta), math.sin(theta)
        limits = []
        if c > 0.0:
            limits.append((1.0 - cx) / c)
        if c < 0.0:
            limits.append(-cx / c)
        if s > 0.0:
            limits.append((1.0 - cy) / s)
        if s < 0.0:
            limits.append(-cy / s)
        return min(limits)

    def radial(theta: float) -> float:
        s = math.sin(theta)

        def f(rho: float, sign: float) -> float:  # x2^3 exp(-w |rho^2 - r^2|) rho
            return (cy + rho * s) ** 3 * math.exp(sign * w * (rho * rho - r * r)) * rho

        opts = {"epsabs": 0.0, "epsrel": epsrel, "limit": 200}
        inside = integrate.quad(f, 0.0, r, args=(1.0,), **opts)[0]
        outside = integrate.quad(f, r, rho_max(theta), args=(-1.0,), **opts)[0]
        return inside + outside

    corners = sorted(math.atan2(py - cy, px - cx) for px, py in [(1, 1), (0, 1), (0, 0), (1, 0)])
    edges = [-math.pi, *corners, math.pi]
    total = sum(
        integrate.quad(radial, lo, hi, epsabs=0.0, epsrel=epsrel, limit=200)[0]
        for lo, hi in zip(edges[:-1], edges[1:], strict=True)
    )
    return 2.0 * total  # the second term is the first under (x1, x2) -> (1 - x1, 1 - x2)


# --------------------------------------------------------------------------- the builders


def _build_gauss(dim: int, alpha: float) -> Integrand:
    return Integrand(
        name="gauss",
        dim=dim,
        function=functools.partial(_checked, _gauss, dim, alpha=alpha),
        truth=math.erf(1.0 / (2.0 * alpha)) ** dim,
        truth_source="analytic: erf(1/(2 alpha))^d",
        description=f"Gaussian peak at the centre (i-flow eq. 15), d={dim}, alpha={alpha:g}",
    )


def _build_camel(dim: int, alpha: float) -> Integrand:
    one_dim = 0.5 * (math.erf(1.0 / (3.0 * alpha)) + math.erf(2.0 / (3.0 * alpha)))
    return Integrand(
        name="camel",
        dim=dim,
        function=functools.partial(_checked, _camel, dim, alpha=alpha),
        truth=one_dim**dim,
        truth_source="analytic: [(erf(1/(3 alpha)) + erf(2/(3 alpha)))/2]^d",
        description=(
            f"two Gaussian peaks on the diagonal at 1/3 and 2/3 (i-flow eq. 17), d={dim}, "
            f"alpha={alpha:g}"
        ),
    )


def _build_poly(dim: int) -> Integrand:
    return Integrand(
        name="poly",
        dim=dim,
        function=functools.partial(_checked, _poly, dim),
        truth=dim / 6.0,
        truth_source="analytic: d/6",
        description=f"polynomial sum(x_i - x_i^2) (i-flow eq. 22), d={dim}",
    )


def _build_annulus(dim: int) -> Integrand:
    r_in, r_out = ANNULUS_RADII
    return Integrand(
        name="annulus",
        dim=dim,
        function=functools.partial(_checked, _annulus, dim),
        truth=math.pi * (r_out**2 - r_in**2),
        truth_source="analytic: pi (0.45^2 - 0.2^2)",
        description="indicator of the annulus 0.2 < |x - (1/2, 1/2)| < 0.45, d=2",
    )


def _build_circles(dim: int) -> Integrand:
    return Integrand(
        name="circles",
        dim=dim,
        function=functools.partial(_checked, _circles, dim),
        truth=CIRCLES_TRUTH,
        truth_source=(
            "quadrature: scipy.integrate.quad, nested, polar about each centre, rel. tol 1e-13 "
            "(i-flow reference 0.01368478)"
        ),
        description="two sharp weighted circular ridges, w=250, r=0.25 (i-flow eq. 19), d=2",
    )


def _build_ee_mumu(dim: int, sqrt_s: float) -> Integrand:
    return Integrand(
        name="ee_mumu",
        dim=dim,
        function=functools.partial(physics.ee_mumu, sqrt_s=sqrt_s),
        truth=physics.sigma_mumu(sqrt_s),
        truth_source="analytic: Born sigma(e+e- -> gamma/Z -> mu+mu-) = 4 pi alpha^2/(3s) A0",
        description=(
            f"e+e- -> gamma/Z -> mu+mu- at sqrt_s={sqrt_s:g} GeV, (cos theta, phi) flat, d=2"
        ),
        unit="pb",
    )


def _build_ee_qqg(dim: int, y_cut: float, sqrt_s: float) -> Integrand:
    return Integrand(
        name="ee_qqg",
        dim=dim,
        function=functools.partial(physics.ee_qqg, y_cut=y_cut, sqrt_s=sqrt_s),
        truth=physics.sigma_qqg(y_cut, sqrt_s),
        truth_source=(
            "analytic: sigma0 C_F alpha_s/(2 pi) I(y_cut), I in logarithms and dilogarithms"
        ),
        description=(
            f"e+e- -> q qbar g at sqrt_s={sqrt_s:g} GeV, y_ij > y_cut={y_cut:g}, "
            "energy fractions mapped onto the cut region, d=2"
        ),
        unit="pb",
    )


# --------------------------------------------------------------------------- the registry


@dataclasses.dataclass(frozen=True)
class _Param:
    default: float
    low: float  # open interval (low, high)
    high: float = math.inf
    meaning: str = ""

    def text(self, name: str) -> str:
        upper = "" if math.isinf(self.high) else f" and < {self.high:.6g}"
        return f"{name}={self.default:g} (> {self.low:g}{upper}; {self.meaning})"


@dataclasses.dataclass(frozen=True)
class _Entry:
    summary: str
    default_dim: int
    any_dim: bool  # False: only default_dim is allowed
    params: Mapping[str, _Param]
    build: Callable[..., Integrand]

    def dims_text(self) -> str:
        if self.any_dim:
            return f"dim >= 1 (default {self.default_dim})"
        return f"dim {self.default_dim} only"


_ALPHA = _Param(0.2, 0.0, meaning="Gaussian width")
_SQRT_S = _Param(physics.DEFAULT_SQRT_S, 0.0, meaning="collision energy in GeV")
_Y_CUT = _Param(physics.DEFAULT_Y_CUT, 0.0, 1.0 / 3.0, meaning="cut on all y_ij = s_ij/s")

_REGISTRY: dict[str, _Entry] = {
    "gauss": _Entry("Gaussian peak (i-flow eq. 15)", 4, True, {"alpha": _ALPHA}, _build_gauss),
    "camel": _Entry("two Gaussian peaks (i-flow eq. 17)", 4, True, {"alpha": _ALPHA}, _build_camel),
    "poly": _Entry("sum(x_i - x_i^2), I = d/6 (i-flow eq. 22)", 18, True, {}, _build_poly),
    "annulus": _Entry("annulus indicator, radii 0.2 and 0.45", 2, False, {}, _build_annulus),
    "circles": _Entry("two circular ridges (i-flow eq. 19)", 2, False, {}, _build_circles),
    "ee_mumu": _Entry(
        "e+e- -> gamma/Z -> mu+mu- in pb", 2, False, {"sqrt_s": _SQRT_S}, _build_ee_mumu
    ),
    "ee_qqg": _Entry(
        "e+e- -> q qbar g with a y_cut, in pb",
        2,
        False,
        {"y_cut": _Y_CUT, "sqrt_s": _SQRT_S},
        _build_ee_qqg,
    ),
}


def integrand_names() -> list[str]:
    """Names of the built-in integrands, in a fixed order."""
    return list(_REGISTRY)


def describe_integrands() -> list[tuple[str, str]]:
    """``(name, description)`` of every built-in integrand, with its dims and parameters."""
    rows = []
    for name, entry in _REGISTRY.items():
        parts = [entry.summary, entry.dims_text()]
        parts += [param.text(key) for key, param in entry.params.items()]
        rows.append((name, "; ".join(parts)))
    return rows


def _parse_param(name: str, key: str, value: object, spec: _Param) -> float:
    if isinstance(value, bool):
        number = math.nan
    else:
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            number = math.nan
    if not (math.isfinite(number) and spec.low < number < spec.high):
        raise InputError(f"integrand {name!r}: bad value {value!r}; expected {spec.text(key)}")
    return number


def get_integrand(name: str, dim: int | None = None, **params: object) -> Integrand:
    """The built-in integrand ``name`` in ``dim`` dimensions with ``params`` (defaults otherwise).

    Numeric parameters may be given as numbers or numeric strings. An unknown name, a dimension the
    integrand does not allow, an unknown parameter or a value out of range raises
    :class:`InputError` listing the valid choices.
    """
    entry = _REGISTRY.get(name)
    if entry is None:
        raise InputError(
            f"unknown integrand {name!r}; choose one of: {', '.join(integrand_names())}"
        )
    if dim is None:
        dim = entry.default_dim
    else:
        try:
            as_int = -1 if isinstance(dim, bool) else operator.index(dim)
        except TypeError:
            as_int = -1
        if as_int < 1:
            raise InputError(f"integrand {name!r}: bad dim {dim!r}; {entry.dims_text()}")
        dim = as_int
    if not entry.any_dim and dim != entry.default_dim:
        raise InputError(f"integrand {name!r}: dim {dim} not allowed; {entry.dims_text()}")
    unknown = sorted(set(params) - set(entry.params))
    if unknown:
        allowed = ", ".join(entry.params) if entry.params else "none"
        raise InputError(
            f"integrand {name!r}: unknown parameter(s) {', '.join(unknown)}; allowed: {allowed}"
        )
    values = {
        key: _parse_param(name, key, params[key], spec) if key in params else spec.default
        for key, spec in entry.params.items()
    }
    return entry.build(dim, **values)
