"""One-dimensional comparisons: separation power, binnings, Wasserstein-1 and the KS test.

Formulas follow ``/work/shared/specs/metrics.md`` §1 (separation power), §3 (binnings) and §8
(W1 and KS).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from hepflows.io import InputError
from hepflows.metrics.results import as_1d, check_float, check_int


def _edges_from(bins: int | ArrayLike, reference: np.ndarray) -> np.ndarray:
    if isinstance(bins, (int, np.integer)) and not isinstance(bins, bool):
        n_bins = check_int(bins, "bins", 1)
        low, high = float(reference.min()), float(reference.max())
        if high <= low:  # constant reference: one unit-wide range around it, as np.histogram does
            low, high = low - 0.5, high + 0.5
        return np.linspace(low, high, n_bins + 1)
    edges = as_1d(bins, "bins (edges)", min_size=2)
    if np.any(np.diff(edges) <= 0):
        raise InputError("bins (edges) must be strictly increasing")
    return edges


def separation_power(reference: ArrayLike, generated: ArrayLike, bins: int | ArrayLike) -> float:
    """Separation power (triangular discrimination) of two 1-D samples, spec §1.

    S = ½ Σ_i (a_i − b_i)² / (a_i + b_i + 1e-16), where a and b are the histograms of the
    reference and generated samples, each normalised to sum 1 over the in-range bins. ``bins`` is
    either a number of equal-width bins spanning the reference's min..max or an array of edges
    (e.g. from :func:`log_edges`); entries outside the edges are dropped before normalising.
    0 means identical histograms, 1 non-overlapping ones (also when no generated entry falls
    inside the edges).
    """
    ref = as_1d(reference, "reference")
    gen = as_1d(generated, "generated")
    edges = _edges_from(bins, ref)
    h_ref, _ = np.histogram(ref, bins=edges)
    h_gen, _ = np.histogram(gen, bins=edges)
    if h_ref.sum() == 0:
        raise InputError(
            f"reference histogram is empty: no entries inside [{edges[0]:.6g}, {edges[-1]:.6g}]"
        )
    if h_gen.sum() == 0:  # nothing of the generated sample where the reference lives
        return 1.0
    a = h_ref / h_ref.sum()
    b = h_gen / h_gen.sum()
    return float(0.5 * np.sum((a - b) ** 2 / (a + b + 1e-16)))


def log_edges(reference: ArrayLike, n_edges: int, low: float) -> np.ndarray:
    """``n_edges`` log-spaced edges from ``low`` to max(reference), spec §3.

    CaloChallenge uses 40 edges (39 bins) for the layer energies E_l and 50 edges (49 bins) for
    the voxel spectrum, with ``low`` = the dataset threshold. If max(reference) <= ``low`` (e.g.
    a layer that never fires), a tiny valid range [low, low·(1 + 1e-6)] is returned instead.
    """
    ref = as_1d(reference, "reference")
    n = check_int(n_edges, "n_edges", 2)
    lo = check_float(low, "low")
    if lo <= 0:
        raise InputError(f"low must be > 0 for log-spaced edges, got {low!r}")
    high = float(ref.max())
    if high <= lo:
        high = lo * (1.0 + 1e-6)
    return np.geomspace(lo, high, n)


def linear_edges(low: float, high: float, n_bins: int) -> np.ndarray:
    """``n_bins`` equal-width bins (``n_bins + 1`` edges) on [low, high], spec §3."""
    lo = check_float(low, "low")
    hi = check_float(high, "high")
    n = check_int(n_bins, "n_bins", 1)
    if hi <= lo:
        raise InputError(f"high must be > low, got low={low!r}, high={high!r}")
    return np.linspace(lo, hi, n + 1)


def wasserstein_1d(reference: ArrayLike, generated: ArrayLike) -> float:
    """Wasserstein-1 distance W1 = ∫ |F_R(t) − F_G(t)| dt of two empirical 1-D samples, spec §8.

    Unequal sample sizes are allowed; equals ``scipy.stats.wasserstein_distance``.
    """
    ref = np.sort(as_1d(reference, "reference"))
    gen = np.sort(as_1d(generated, "generated"))
    grid = np.sort(np.concatenate([ref, gen]))
    widths = np.diff(grid)
    # both empirical CDFs are constant on [grid[k], grid[k+1])
    cdf_ref = np.searchsorted(ref, grid[:-1], side="right") / ref.size
    cdf_gen = np.searchsorted(gen, grid[:-1], side="right") / gen.size
    return float(np.sum(np.abs(cdf_ref - cdf_gen) * widths))


def ks_test(reference: ArrayLike, generated: ArrayLike) -> tuple[float, float]:
    """Two-sample Kolmogorov–Smirnov test, spec §8: (D = sup |F_R − F_G|, two-sided p-value).

    Delegates to ``scipy.stats.ks_2samp`` (exact p-value for small samples, asymptotic otherwise).
    """
    ref = as_1d(reference, "reference")
    gen = as_1d(generated, "generated")
    res = stats.ks_2samp(ref, gen, alternative="two-sided")
    return float(res.statistic), float(res.pvalue)
