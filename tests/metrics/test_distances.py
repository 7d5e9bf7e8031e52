"""Fréchet distance / FGD, FPD, KPD, covariance matching and PRDC (spec §5, §6, §7, §9, §10).

FPD and KPD are checked against independent re-derivations written here (explicit loops,
eigenvalue-based matrix square-root trace, ``scipy.optimize.curve_fit``) that use the documented
random draws, and, when ``jetnet`` is importable, against ``jetnet.evaluation``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import optimize, stats

import hepflows.metrics.distances as dist
from hepflows.io import InputError
from hepflows.metrics import covariance_matching, fpd, frechet_distance, kpd, prdc


def _exact_moments(rng: np.random.Generator, n: int, mean: np.ndarray, cov: np.ndarray):
    """n rows whose sample mean and (ddof=1) sample covariance are exactly ``mean`` and ``cov``."""
    z = rng.normal(size=(n, mean.size))
    z -= z.mean(axis=0)
    z = z @ np.linalg.inv(np.linalg.cholesky(np.cov(z, rowvar=False))).T  # whitened exactly
    return mean + z @ np.linalg.cholesky(cov).T


def _rotation(d: int, seed: int) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(d, d)))
    return q


# ---------------------------------------------------------------- Fréchet distance (FD, FGD)


def test_frechet_mean_shift_equal_covariance() -> None:
    rng = np.random.default_rng(0)
    shift = np.array([1.0, -0.5, 0.25])
    x = rng.normal(size=(50_000, 3))
    y = rng.normal(size=(50_000, 3)) + shift
    assert frechet_distance(x, y) == pytest.approx(shift @ shift, rel=0.03)  # 1.3125
    assert abs(frechet_distance(x, x)) < 1e-10


def test_frechet_diagonal_covariances_statistical() -> None:
    rng = np.random.default_rng(1)
    s1, s2 = np.array([1.0, 4.0, 0.25]), np.array([2.25, 1.0, 1.0])
    shift = np.array([1.0, -0.5, 0.25])
    x = rng.normal(size=(60_000, 3)) * np.sqrt(s1)
    y = rng.normal(size=(60_000, 3)) * np.sqrt(s2) + shift
    expected = np.sum((np.sqrt(s1) - np.sqrt(s2)) ** 2) + shift @ shift  # 1.5 + 1.3125
    assert frechet_distance(x, y) == pytest.approx(expected, rel=0.03)


def test_frechet_exact_moments_commuting_and_general() -> None:
    rng = np.random.default_rng(2)
    d = 4
    q = _rotation(d, 3)
    a, b = np.array([1.0, 4.0, 0.25, 2.0]), np.array([2.25, 1.0, 1.0, 0.5])
    mu1, mu2 = np.zeros(d), np.array([0.5, 1.0, -1.0, 0.0])
    cov1, cov2 = q @ np.diag(a) @ q.T, q @ np.diag(b) @ q.T  # commuting: closed form
    x = _exact_moments(rng, 500, mu1, cov1)
    y = _exact_moments(rng, 800, mu2, cov2)
    expected = np.sum((np.sqrt(a) - np.sqrt(b)) ** 2) + np.sum((mu1 - mu2) ** 2)
    assert frechet_distance(x, y) == pytest.approx(expected, rel=1e-9)

    # non-commuting: Tr (S1 S2)^½ = Tr (S1^½ S2 S1^½)^½, via symmetric eigendecompositions
    m = rng.normal(size=(d, d))
    cov2 = m @ m.T + 0.5 * np.eye(d)
    y = _exact_moments(rng, 800, mu2, cov2)
    w, v = np.linalg.eigh(cov1)
    root1 = v @ np.diag(np.sqrt(w)) @ v.T
    tr_root = np.sum(np.sqrt(np.linalg.eigvalsh(root1 @ cov2 @ root1)))
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(cov1) + np.trace(cov2) - 2 * tr_root
    assert frechet_distance(x, y) == pytest.approx(expected, rel=1e-9)


def test_frechet_singular_covariance_is_finite() -> None:
    rng = np.random.default_rng(4)
    x = np.zeros((200, 3))
    x[:, 0] = rng.normal(size=200)  # two constant features: rank-1 covariance
    y = x + np.array([0.0, 1.0, 2.0])
    assert frechet_distance(x, y) == pytest.approx(5.0, abs=1e-5)


@pytest.mark.parametrize(
    ("x", "y", "match"),
    [
        (np.ones(10), np.ones((10, 1)), "2-D"),
        (np.ones((10, 2)), np.ones((10, 3)), "features"),
        (np.ones((1, 2)), np.ones((10, 2)), "at least 2"),
        (np.full((10, 2), np.nan), np.ones((10, 2)), "NaN"),
    ],
)
def test_frechet_bad_input(x, y, match) -> None:
    with pytest.raises(InputError, match=match):
        frechet_distance(x, y)


# ---------------------------------------------------------------- FPD


def _fpd_rederived(ref, gen, n_min, n_max, n_points, n_draws, seed, normalise=True):
    """Spec §5 re-derived: loops, eigenvalue trace of (Σ_R Σ_G)^½, and curve_fit."""
    ref = np.asarray(ref, float)
    gen = np.asarray(gen, float)
    if normalise:
        scale = np.abs(ref).max(axis=0)
        scale[scale == 0] = 1
        ref, gen = ref / scale, gen / scale
    sizes = [int(1 / u) for u in np.linspace(1 / n_min, 1 / n_max, n_points)]
    rng = np.random.default_rng(seed)
    means = []
    for n in sizes:
        fds = []
        for _ in range(n_draws):
            a = ref[rng.integers(0, len(ref), n)]
            b = gen[rng.integers(0, len(gen), n)]
            ca, cb = np.cov(a.T), np.cov(b.T)
            tr_root = np.sum(np.sqrt(np.abs(np.linalg.eigvals(ca @ cb))))
            dmu = a.mean(0) - b.mean(0)
            fds.append(dmu @ dmu + np.trace(ca) + np.trace(cb) - 2 * tr_root)
        means.append(np.mean(fds))
    inv_n = 1 / np.array(sizes, float)
    p0 = [max(min(means), 1e-12), max((means[0] - means[-1]) / (inv_n[0] - inv_n[-1]), 1e-12)]
    params, pcov = optimize.curve_fit(
        lambda t, a, b: a + b * t,
        inv_n,
        np.array(means),
        p0=p0,
        bounds=([0, 0], [np.inf, np.inf]),
        xtol=1e-15,
        ftol=1e-15,
        gtol=1e-15,
    )
    return params[0], np.sqrt(pcov[0, 0])


@pytest.mark.parametrize(("shift", "normalise"), [(0.0, True), (0.15, True), (0.3, False)])
def test_fpd_matches_rederivation(shift: float, normalise: bool) -> None:
    rng = np.random.default_rng(5)
    ref = rng.gamma(2.0, size=(3000, 4))
    gen = rng.gamma(2.0, size=(2500, 4)) + shift
    kw = dict(n_min=400, n_max=1600, n_points=6, n_draws=4, seed=11)
    got = fpd(ref, gen, normalise=normalise, **kw)
    value, error = _fpd_rederived(ref, gen, normalise=normalise, **kw)
    assert got.value == pytest.approx(value, rel=1e-5, abs=1e-9)
    assert got.error == pytest.approx(error, rel=1e-4)


def test_fpd_same_distribution_consistent_with_zero_and_shift_positive() -> None:
    rng = np.random.default_rng(6)
    ref = rng.normal(size=(4000, 3))
    same = rng.normal(size=(4000, 3))
    shifted = rng.normal(size=(4000, 3)) + np.array([0.5, 0.0, 0.0])
    kw = dict(n_min=800, n_max=3200, n_draws=5, normalise=False)
    v0 = fpd(ref, same, **kw)
    assert v0.value >= 0.0 and v0.error > 0.0
    assert v0.value < 3 * v0.error + 2e-3
    v1 = fpd(ref, shifted, **kw)
    assert v1.value > 10 * v1.error
    # the extrapolation removes the finite-N bias: close to FD of the two samples' moments
    assert v1.value == pytest.approx(frechet_distance(ref, shifted), abs=4 * v1.error + 0.01)
    assert v1.value == pytest.approx(0.25, rel=0.15)


def test_fpd_caps_sizes_for_small_samples() -> None:
    rng = np.random.default_rng(7)
    ref = rng.normal(size=(300, 2))
    gen = rng.normal(size=(500, 2))
    # default n_min=20k, n_max=50k -> n_max = 300, n_min = 150
    capped = fpd(ref, gen, n_draws=2)
    explicit = fpd(ref, gen, n_min=150, n_max=300, n_draws=2)
    assert capped == explicit


def test_fpd_bad_input() -> None:
    x = np.ones((100, 2))
    with pytest.raises(InputError, match="n_min"):
        fpd(x, x, n_min=50, n_max=50)
    with pytest.raises(InputError, match="features"):
        fpd(x, np.ones((100, 3)))
    with pytest.raises(InputError, match="at least 4"):
        fpd(np.ones((3, 2)), x)
    with pytest.raises(InputError, match="n_points"):
        fpd(x, x, n_points=2)


# ---------------------------------------------------------------- KPD


def _mmd2_double_loop(x: np.ndarray, y: np.ndarray) -> float:
    """Spec §6 unbiased MMD² written out term by term."""
    d = x.shape[1]

    def k(u, v):
        return (np.dot(u, v) / d + 1.0) ** 4

    m, n = len(x), len(y)
    kxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kyy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    kxy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return kxx + kyy - 2 * kxy


def test_mmd2_matches_double_loop_and_kernel_mean_form() -> None:
    rng = np.random.default_rng(8)
    x = rng.normal(size=(12, 3))
    y = rng.normal(0.3, 1.2, size=(9, 3))
    expected = _mmd2_double_loop(x, y)
    assert dist._mmd2_unbiased(x, y) == pytest.approx(expected, rel=1e-12)
    # kernel-mean form: mean of off-diagonal entries of the full kernel matrices
    kxx = (x @ x.T / 3 + 1) ** 4
    kyy = (y @ y.T / 3 + 1) ** 4
    kxy = (x @ y.T / 3 + 1) ** 4
    off = (kxx.sum() - np.trace(kxx)) / (12 * 11) + (kyy.sum() - np.trace(kyy)) / (9 * 8)
    assert dist._mmd2_unbiased(x, y) == pytest.approx(off - 2 * kxy.mean(), rel=1e-12)


def test_kernel_sum_blocking_is_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(9)
    x, y = rng.normal(size=(37, 5)), rng.normal(size=(23, 5))
    full = dist._mmd2_unbiased(x, y)
    monkeypatch.setattr(dist, "_BLOCK_ENTRIES", 50)  # 2-row blocks
    assert dist._mmd2_unbiased(x, y) == pytest.approx(full, rel=1e-12)


def test_kpd_matches_rederivation() -> None:
    rng = np.random.default_rng(10)
    ref = rng.gamma(2.0, size=(40, 3))
    gen = rng.gamma(2.2, size=(30, 3))
    got = kpd(ref, gen, batch_size=15, n_batches=7, seed=5)
    scale = np.abs(ref).max(axis=0)
    vals = []
    for t in range(7):  # documented draws: batch t uses default_rng(seed + 1000 t)
        r = np.random.default_rng(5 + 1000 * t)
        x = ref[r.integers(0, 40, 15)] / scale
        y = gen[r.integers(0, 30, 15)] / scale
        vals.append(_mmd2_double_loop(x, y))
    assert got.value == pytest.approx(np.median(vals), rel=1e-10)
    half_range = stats.iqr(vals, rng=(16.275, 83.725)) / 2
    assert got.error == pytest.approx(half_range, rel=1e-10)


def test_kpd_same_distribution_consistent_with_zero_and_shift_positive() -> None:
    rng = np.random.default_rng(11)
    ref = rng.normal(size=(3000, 3))
    same = rng.normal(size=(3000, 3))
    shifted = rng.normal(size=(3000, 3)) + np.array([0.5, 0.0, 0.0])
    v0 = kpd(ref, same, batch_size=1000)
    assert abs(v0.value) < 3 * v0.error + 1e-4
    v1 = kpd(ref, shifted, batch_size=1000)
    assert v1.value > 5 * v1.error and v1.value > 10 * abs(v0.value)


def test_kpd_batch_size_capped_at_sample_size() -> None:
    rng = np.random.default_rng(12)
    ref, gen = rng.normal(size=(50, 2)), rng.normal(size=(80, 2))
    assert kpd(ref, gen) == kpd(ref, gen, batch_size=50)


def test_kpd_bad_input() -> None:
    with pytest.raises(InputError, match="NaN"):
        kpd(np.array([[1.0, np.inf], [0.0, 1.0]]), np.ones((5, 2)))
    with pytest.raises(InputError, match="batch_size"):
        kpd(np.ones((5, 2)), np.ones((5, 2)), batch_size=1)


def test_fpd_kpd_match_jetnet() -> None:
    jetnet_eval = pytest.importorskip("jetnet.evaluation")
    rng = np.random.default_rng(13)
    ref = rng.gamma(2.0, size=(5000, 6))
    gen = rng.gamma(2.0, size=(5000, 6)) + 0.1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        j_val, j_err = jetnet_eval.fpd(
            ref, gen, min_samples=1000, max_samples=4000, num_batches=5, num_points=10, seed=7
        )
    ours = fpd(ref, gen, n_min=1000, n_max=4000, n_draws=5, n_points=10, seed=7)
    # same draws; JetNet's curve_fit stops at default tolerances, so allow a fraction of the error
    assert ours.value == pytest.approx(j_val, abs=0.5 * ours.error)
    assert ours.error == pytest.approx(j_err, rel=0.3)
    k_val, k_err = jetnet_eval.kpd(ref, gen, num_batches=10, batch_size=1500, seed=3)
    ours = kpd(ref, gen, batch_size=1500, n_batches=10, seed=3)
    assert ours.value == pytest.approx(k_val, rel=1e-9)
    assert ours.error == pytest.approx(k_err, rel=1e-9)


# ---------------------------------------------------------------- covariance matching


def test_covariance_matching_hand_computation() -> None:
    ref = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0]])
    gen = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]])
    # ref: var 4/3 each, cov 0.  gen: var 1 each, cov 1.
    # difference [[1/3, -1], [-1, 1/3]] -> sqrt(2/9 + 2)
    assert covariance_matching(ref, gen) == pytest.approx(np.sqrt(2 / 9 + 2), rel=1e-12)
    assert covariance_matching(ref, ref + 5.0) == pytest.approx(0.0, abs=1e-12)


def test_covariance_matching_loops() -> None:
    rng = np.random.default_rng(14)
    ref, gen = rng.normal(size=(30, 3)), rng.normal(size=(25, 3)) * 1.5

    def cov(a):
        n, d = a.shape
        mu = [sum(a[r, i] for r in range(n)) / n for i in range(d)]
        return [
            [
                sum((a[r, i] - mu[i]) * (a[r, j] - mu[j]) for r in range(n)) / (n - 1)
                for j in range(d)
            ]
            for i in range(d)
        ]

    c1, c2 = cov(ref), cov(gen)
    expected = sum((c1[i][j] - c2[i][j]) ** 2 for i in range(3) for j in range(3)) ** 0.5
    assert covariance_matching(ref, gen) == pytest.approx(expected, rel=1e-12)


# ---------------------------------------------------------------- PRDC


def _prdc_brute(x: np.ndarray, y: np.ndarray, k: int) -> dict[str, float]:
    """Spec §7 formulas with explicit distance loops."""
    dxx = np.array([[np.linalg.norm(a - b) for b in x] for a in x])
    dyy = np.array([[np.linalg.norm(a - b) for b in y] for a in y])
    dxy = np.array([[np.linalg.norm(a - b) for b in y] for a in x])
    r_x = np.array([np.sort(np.delete(row, i))[k - 1] for i, row in enumerate(dxx)])
    r_y = np.array([np.sort(np.delete(row, i))[k - 1] for i, row in enumerate(dyy)])
    n, m = len(x), len(y)
    precision = np.mean([any(dxy[i, j] < r_x[i] for i in range(n)) for j in range(m)])
    recall = np.mean([any(dxy[i, j] < r_y[j] for j in range(m)) for i in range(n)])
    density = sum(dxy[i, j] < r_x[i] for i in range(n) for j in range(m)) / (k * m)
    coverage = np.mean([dxy[i].min() < r_x[i] for i in range(n)])
    return {"precision": precision, "recall": recall, "density": density, "coverage": coverage}


def test_prdc_matches_brute_force(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(15)
    x = rng.normal(size=(60, 2))
    y = rng.normal(0.4, 1.3, size=(45, 2))
    expected = _prdc_brute(x, y, 3)
    got = prdc(x, y, k=3)
    for key, val in expected.items():
        assert got[key] == pytest.approx(val, abs=1e-12), key
    assert 0.0 < got["precision"] < 1.0 and 0.0 < got["coverage"] < 1.0
    monkeypatch.setattr(dist, "_BLOCK_ENTRIES", 100)  # force many row blocks
    assert prdc(x, y, k=3) == got


def test_prdc_identical_and_disjoint() -> None:
    rng = np.random.default_rng(16)
    x = rng.normal(size=(500, 3))
    same = prdc(x, x.copy())
    assert same["precision"] == 1.0 and same["recall"] == 1.0 and same["coverage"] == 1.0
    assert same["density"] == pytest.approx(1.0, abs=0.05)
    far = prdc(x, rng.normal(size=(400, 3)) + 100.0)
    assert far == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}
    # two samples of one distribution: all four near 1
    close = prdc(x, rng.normal(size=(500, 3)))
    assert close["precision"] > 0.85 and close["recall"] > 0.85 and close["coverage"] > 0.85


def test_prdc_subsamples() -> None:
    rng = np.random.default_rng(17)
    x, y = rng.normal(size=(300, 2)), rng.normal(size=(200, 2))
    got = prdc(x, y, k=4, max_samples=120, seed=3)
    r = np.random.default_rng(3)
    xs = x[r.choice(300, 120, replace=False)]
    ys = y[r.choice(200, 120, replace=False)]
    expected = _prdc_brute(xs, ys, 4)
    for key, val in expected.items():
        assert got[key] == pytest.approx(val, abs=1e-12), key


def test_prdc_bad_input() -> None:
    with pytest.raises(InputError, match="at least 6"):
        prdc(np.ones((5, 2)), np.ones((10, 2)))
    with pytest.raises(InputError, match="features"):
        prdc(np.ones((10, 2)), np.ones((10, 3)))
