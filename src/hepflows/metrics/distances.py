"""Multivariate sample distances: Fréchet (FD/FGD/FPD), KPD, covariance matching and PRDC.

Formulas follow ``/work/shared/specs/metrics.md``: §5 (FPD), §6 (KPD), §7 (PRDC), §9 (FGD) and
§10 (covariance matching). All functions take (n_samples, n_features) arrays.
"""

from __future__ import annotations

import warnings

import numpy as np
from numpy.typing import ArrayLike
from scipy import linalg, optimize

from hepflows.io import InputError
from hepflows.metrics.results import Value, as_2d, check_int, same_features

# Upper bound on the number of float64 entries in one block of a pairwise matrix (32 MiB).
_BLOCK_ENTRIES = 1 << 22


def _pair(
    reference: ArrayLike, generated: ArrayLike, min_rows: int, names: tuple[str, str]
) -> tuple[np.ndarray, np.ndarray]:
    a = as_2d(reference, names[0], min_rows=min_rows)
    b = as_2d(generated, names[1], min_rows=min_rows)
    same_features(a, b, names[0], names[1])
    return a, b


def _cov(x: np.ndarray) -> np.ndarray:
    """Unbiased (ddof = 1) covariance of an (n, d) array, always as a (d, d) matrix."""
    return np.atleast_2d(np.cov(x, rowvar=False, ddof=1))


def _frechet_from_moments(
    mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray, eps: float = 1e-6
) -> float:
    """‖μ1 − μ2‖² + Tr(Σ1 + Σ2 − 2 (Σ1 Σ2)^½), spec §5 (retry with ε·I added if not finite)."""
    diff = mu1 - mu2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sqrtm warns on singular input; we check finiteness
        covmean = linalg.sqrtm(cov1 @ cov2)
        if not np.all(np.isfinite(covmean)):
            offset = eps * np.eye(cov1.shape[0])
            covmean = linalg.sqrtm((cov1 + offset) @ (cov2 + offset))
    if not np.all(np.isfinite(covmean)):
        raise InputError("Frechet distance: the covariance product has no finite square root")
    covmean = np.real(covmean)
    return float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * np.trace(covmean))


def frechet_distance(x: ArrayLike, y: ArrayLike) -> float:
    """Fréchet distance between Gaussians fitted to two (n, d) samples, spec §5 formula.

    FD = ‖μ_x − μ_y‖² + Tr(Σ_x + Σ_y − 2 (Σ_x Σ_y)^½) with unbiased covariances, the real part of
    ``scipy.linalg.sqrtm`` and a retry with 1e-6·I added to both covariances if the square root is
    not finite. Applied once to the raw samples this is the FGD of spec §9 (biased at finite n).
    """
    a, b = _pair(x, y, 2, ("x", "y"))
    return _frechet_from_moments(a.mean(axis=0), _cov(a), b.mean(axis=0), _cov(b))


def _normalise(reference: np.ndarray, generated: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Divide every feature by max |reference| of that feature (left unscaled if that is 0)."""
    scale = np.max(np.abs(reference), axis=0)
    scale[scale == 0] = 1.0
    return reference / scale, generated / scale


def fpd(
    reference: ArrayLike,
    generated: ArrayLike,
    n_min: int = 20_000,
    n_max: int = 50_000,
    n_points: int = 10,
    n_draws: int = 20,
    seed: int = 42,
    normalise: bool = True,
) -> Value:
    """Fréchet physics distance: FD extrapolated to infinite sample size, spec §5.

    Features are divided by max |reference| per feature (if ``normalise``). At each of
    ``n_points`` sizes N_k = ⌊1/u_k⌋, u_k evenly spaced in [1/n_min, 1/n_max], FD is averaged over
    ``n_draws`` draws of N rows with replacement from each sample; FD(N) = a + b/N is fitted by
    least squares with a, b >= 0 (non-negative least squares). Returns a ± √Var(a), Var(a) from
    the fit covariance s²(AᵀA)⁻¹ with s² = RSS/(n_points − 2), as ``curve_fit`` reports it.
    Rows are drawn with ``numpy.random.default_rng(seed)`` in the same order as JetNet's ``fpd``,
    so the same inputs and settings give the same draws. The fit is the exact constrained
    minimiser; JetNet's ``curve_fit`` (default tolerances, start at a = b = 1) can stop short of
    it, so its intercept may differ from ours by a fraction of the quoted error.

    Small samples: if either sample has fewer than ``n_max`` rows, ``n_max`` is capped at the
    smaller sample size and ``n_min`` at min(n_min, n_max // 2). The CaloChallenge setting is
    ``n_min=10_000``; the default 20,000 is JetNet's.
    """
    ref, gen = _pair(reference, generated, 4, ("reference", "generated"))
    n_min = check_int(n_min, "n_min", 2)
    n_max = check_int(n_max, "n_max", 3)
    n_points = check_int(n_points, "n_points", 3)
    n_draws = check_int(n_draws, "n_draws", 1)
    seed = check_int(seed, "seed", 0)
    if n_min >= n_max:
        raise InputError(f"n_min ({n_min}) must be smaller than n_max ({n_max})")
    n_small = min(ref.shape[0], gen.shape[0])
    if n_small < n_max:
        n_max = n_small
        n_min = min(n_min, n_max // 2)
    if normalise:
        ref, gen = _normalise(ref, gen)

    # floor(1/u) in floating point, as JetNet computes it (so the top size can be n_max - 1);
    # this keeps the draws, and hence the numbers, identical to JetNet's for the same seed
    sizes = np.floor(1.0 / np.linspace(1.0 / n_min, 1.0 / n_max, n_points)).astype(np.int64)
    if np.unique(sizes).size < 2:
        raise InputError(f"fpd: samples too small to vary N (sizes {sizes.tolist()})")

    rng = np.random.default_rng(seed)
    fd_mean = np.empty(n_points)
    for k, size in enumerate(sizes):
        vals = np.empty(n_draws)
        for t in range(n_draws):
            a = ref[rng.integers(0, ref.shape[0], size)]
            b = gen[rng.integers(0, gen.shape[0], size)]
            vals[t] = _frechet_from_moments(a.mean(axis=0), _cov(a), b.mean(axis=0), _cov(b))
        fd_mean[k] = vals.mean()

    # linear model FD = a + b / N; columns scaled to unit norm for conditioning
    design = np.column_stack([np.ones(n_points), 1.0 / sizes])
    norms = np.linalg.norm(design, axis=0)
    scaled = design / norms
    coef_scaled, _ = optimize.nnls(scaled, fd_mean)
    coef = coef_scaled / norms
    resid = fd_mean - design @ coef
    s2 = float(resid @ resid) / (n_points - 2)
    cov_coef = s2 * np.linalg.inv(scaled.T @ scaled) / np.outer(norms, norms)
    return Value(float(coef[0]), float(np.sqrt(max(cov_coef[0, 0], 0.0))))


def _poly_kernel_sum(a: np.ndarray, b: np.ndarray) -> float:
    """Σ_ij (a_i·b_j / d + 1)⁴, computed in row blocks so memory stays bounded."""
    d = a.shape[1]
    step = max(1, _BLOCK_ENTRIES // b.shape[0])
    total = 0.0
    for start in range(0, a.shape[0], step):
        block = a[start : start + step] @ b.T
        block /= d
        block += 1.0
        np.square(block, out=block)
        total += float(np.einsum("ij,ij->", block, block))  # sum of (x.y/d + 1)^4
    return total


def _mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD² with kernel (x·y/d + 1)⁴, spec §6 (diagonal terms i = j removed)."""
    m, n, d = x.shape[0], y.shape[0], x.shape[1]
    diag_x = float(np.sum((np.einsum("ij,ij->i", x, x) / d + 1.0) ** 4))
    diag_y = float(np.sum((np.einsum("ij,ij->i", y, y) / d + 1.0) ** 4))
    kxx = (_poly_kernel_sum(x, x) - diag_x) / (m * (m - 1))
    kyy = (_poly_kernel_sum(y, y) - diag_y) / (n * (n - 1))
    kxy = _poly_kernel_sum(x, y) / (m * n)
    return kxx + kyy - 2.0 * kxy


def kpd(
    reference: ArrayLike,
    generated: ArrayLike,
    batch_size: int = 5_000,
    n_batches: int = 10,
    seed: int = 42,
    normalise: bool = True,
) -> Value:
    """Kernel physics distance: unbiased MMD² with the kernel (x·y/d + 1)⁴, spec §6.

    Features are divided by max |reference| per feature (if ``normalise``). Each of ``n_batches``
    batches draws ``batch_size`` rows with replacement from each sample (capped at the smaller
    sample size); batch t draws with ``numpy.random.default_rng(seed + 1000 t)``, as JetNet's
    ``kpd`` does. Returns the median over batches ± half the 16.275–83.725 percentile range.
    The CaloChallenge setting is ``batch_size=10_000``; the default 5,000 is JetNet's. It can be
    slightly negative when the samples agree.
    """
    ref, gen = _pair(reference, generated, 2, ("reference", "generated"))
    batch_size = check_int(batch_size, "batch_size", 2)
    n_batches = check_int(n_batches, "n_batches", 1)
    seed = check_int(seed, "seed", 0)
    batch_size = min(batch_size, ref.shape[0], gen.shape[0])
    if normalise:
        ref, gen = _normalise(ref, gen)
    vals = np.empty(n_batches)
    for t in range(n_batches):
        rng = np.random.default_rng(seed + 1000 * t)  # per-batch seeds, as in JetNet
        x = ref[rng.integers(0, ref.shape[0], batch_size)]
        y = gen[rng.integers(0, gen.shape[0], batch_size)]
        vals[t] = _mmd2_unbiased(x, y)
    low, high = np.percentile(vals, [16.275, 83.725])
    return Value(float(np.median(vals)), float((high - low) / 2.0))


def covariance_matching(reference: ArrayLike, generated: ArrayLike) -> float:
    """‖Cov_R − Cov_G‖_F with unbiased (N − 1) sample covariances, spec §10. 0 is ideal."""
    ref, gen = _pair(reference, generated, 2, ("reference", "generated"))
    return float(np.linalg.norm(_cov(ref) - _cov(gen), ord="fro"))


def _sq_dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances between the rows of a and b (clipped at 0)."""
    d2 = np.einsum("ij,ij->i", a, a)[:, None] + np.einsum("ij,ij->i", b, b)[None, :]
    d2 -= 2.0 * (a @ b.T)
    return np.maximum(d2, 0.0)


def _kth_nn_sq(x: np.ndarray, k: int) -> np.ndarray:
    """Squared distance from each row of x to its k-th nearest neighbour in x, excluding itself."""
    step = max(1, _BLOCK_ENTRIES // x.shape[0])
    out = np.empty(x.shape[0])
    for start in range(0, x.shape[0], step):
        d2 = _sq_dist(x[start : start + step], x)
        # the point itself is the smallest entry (distance 0), so index k is the k-th neighbour
        out[start : start + step] = np.partition(d2, k, axis=1)[:, k]
    return out


def prdc(
    real: ArrayLike, fake: ArrayLike, k: int = 5, max_samples: int = 10_000, seed: int = 0
) -> dict[str, float]:
    """Precision, recall, density and coverage with k-NN balls, spec §7 (arXiv:2002.09797).

    Euclidean distances, open balls (strict <), radii = distance to the k-th nearest neighbour
    within the point's own sample. Each sample is subsampled without replacement to at most
    ``max_samples`` rows (generator seeded by ``seed``); the N × M distance matrix is processed
    in row blocks, so memory stays bounded. Returns ``{"precision", "recall", "density",
    "coverage"}``.
    """
    k = check_int(k, "k", 1)
    max_samples = check_int(max_samples, "max_samples", k + 1)
    seed = check_int(seed, "seed", 0)
    x, y = _pair(real, fake, k + 1, ("real", "fake"))
    rng = np.random.default_rng(seed)
    if x.shape[0] > max_samples:
        x = x[rng.choice(x.shape[0], max_samples, replace=False)]
    if y.shape[0] > max_samples:
        y = y[rng.choice(y.shape[0], max_samples, replace=False)]

    r_real = _kth_nn_sq(x, k)  # squared radii of the real balls
    r_fake = _kth_nn_sq(y, k)
    n, m = x.shape[0], y.shape[0]
    fake_in_real_ball = np.zeros(m, dtype=bool)  # precision
    n_pairs_in_ball = 0  # density
    real_in_fake_ball = np.zeros(n, dtype=bool)  # recall
    real_covered = np.zeros(n, dtype=bool)  # coverage
    step = max(1, _BLOCK_ENTRIES // m)
    for start in range(0, n, step):
        stop = min(start + step, n)
        d2 = _sq_dist(x[start:stop], y)  # (block of real, all fake)
        inside_real = d2 < r_real[start:stop, None]
        fake_in_real_ball |= inside_real.any(axis=0)
        n_pairs_in_ball += int(np.count_nonzero(inside_real))
        real_in_fake_ball[start:stop] = (d2 < r_fake[None, :]).any(axis=1)
        real_covered[start:stop] = d2.min(axis=1) < r_real[start:stop]
    return {
        "precision": float(fake_in_real_ball.mean()),
        "recall": float(real_in_fake_ball.mean()),
        "density": float(n_pairs_in_ball / (k * m)),
        "coverage": float(real_covered.mean()),
    }
