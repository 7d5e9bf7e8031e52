"""Separation power, binnings, W1 and KS (spec §1, §3, §8), and the Value container."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from hepflows.io import InputError
from hepflows.metrics import (
    Value,
    ks_test,
    linear_edges,
    log_edges,
    separation_power,
    wasserstein_1d,
)


def test_separation_power_identical_is_zero() -> None:
    x = np.random.default_rng(0).normal(size=5000)
    assert separation_power(x, x, 50) == 0.0
    assert separation_power(x, x.copy()[::-1], linear_edges(-3, 3, 30)) == 0.0


def test_separation_power_disjoint_is_one() -> None:
    rng = np.random.default_rng(1)
    ref = rng.uniform(0.0, 1.0, size=1000)
    gen = rng.uniform(2.0, 3.0, size=700)
    assert separation_power(ref, gen, linear_edges(0.0, 3.0, 30)) == pytest.approx(1.0, abs=1e-12)


def test_separation_power_hand_computed_three_bins() -> None:
    edges = np.array([0.0, 1.0, 2.0, 3.0])
    ref = [0.5, 0.6, 1.5, 2.5]  # counts (2, 1, 1) -> (1/2, 1/4, 1/4)
    gen = [0.5, 1.5, 2.2, 2.8]  # counts (1, 1, 2) -> (1/4, 1/4, 1/2)
    # ½ [ (1/4)² / (3/4) + 0 + (1/4)² / (3/4) ] = 1/12
    assert separation_power(ref, gen, edges) == pytest.approx(1.0 / 12.0, rel=1e-12)
    # entries outside the edges are dropped before normalising: same value
    gen_out = gen + [-5.0, 3.5, 100.0]
    ref_out = ref + [-0.1, 7.0]
    assert separation_power(ref_out, gen_out, edges) == pytest.approx(1.0 / 12.0, rel=1e-12)


def test_separation_power_int_bins_span_reference_range() -> None:
    rng = np.random.default_rng(2)
    ref = rng.normal(size=2000)
    gen = rng.normal(0.3, 1.5, size=1500)  # has entries beyond the reference range: dropped
    edges = np.linspace(ref.min(), ref.max(), 21)
    expected = separation_power(ref, gen[(gen >= ref.min()) & (gen <= ref.max())], edges)
    assert separation_power(ref, gen, 20) == pytest.approx(expected, rel=1e-12)
    assert 0.0 < expected < 1.0


def test_separation_power_empty_histograms() -> None:
    # nothing generated where the reference lives: maximally separated, not an error
    assert separation_power([0.5, 0.7], [5.0, 6.0], [0.0, 1.0, 2.0]) == 1.0
    with pytest.raises(InputError, match="reference histogram is empty"):
        separation_power([5.0], [0.5], [0.0, 1.0])


@pytest.mark.parametrize(
    ("ref", "gen", "bins", "match"),
    [
        (np.ones((3, 2)), [1.0], 3, "1-D"),
        ([1.0, np.nan], [1.0], 3, "NaN"),
        ([1.0, 2.0], [np.inf], 3, "NaN or infinite"),
        ([], [1.0], 3, "at least 1"),
        ([1.0, 2.0], [1.0], [0.0, 2.0, 1.0], "strictly increasing"),
        ([1.0, 2.0], [1.0], 0, ">= 1"),
    ],
)
def test_separation_power_bad_input(ref, gen, bins, match) -> None:
    with pytest.raises(InputError, match=match):
        separation_power(ref, gen, bins)


def test_log_edges() -> None:
    ref = np.array([0.3, 5.0, 1000.0, 20.0])
    edges = log_edges(ref, 40, 0.1)
    assert edges.shape == (40,)
    assert edges[0] == pytest.approx(0.1) and edges[-1] == pytest.approx(1000.0)
    ratios = edges[1:] / edges[:-1]
    np.testing.assert_allclose(ratios, (1000.0 / 0.1) ** (1 / 39), rtol=1e-10)
    # a layer that never exceeds the threshold still gives valid, increasing edges
    tiny = log_edges(np.zeros(10), 50, 0.01515)
    assert tiny.shape == (50,) and np.all(np.diff(tiny) > 0) and tiny[0] == pytest.approx(0.01515)
    assert separation_power(np.full(5, 0.01515), np.full(3, 0.01515), tiny) == 0.0
    with pytest.raises(InputError, match="low must be > 0"):
        log_edges(ref, 10, 0.0)
    with pytest.raises(InputError, match="n_edges"):
        log_edges(ref, 1, 0.1)


def test_linear_edges() -> None:
    edges = linear_edges(-30, 30, 100)
    assert edges.shape == (101,)
    np.testing.assert_allclose(np.diff(edges), 0.6)
    with pytest.raises(InputError, match="high must be > low"):
        linear_edges(1.0, 1.0, 5)
    with pytest.raises(InputError, match="n_bins"):
        linear_edges(0.0, 1.0, 0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_wasserstein_matches_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=317)
    y = rng.gamma(2.0, size=1203) - 1.0
    assert wasserstein_1d(x, y) == pytest.approx(stats.wasserstein_distance(x, y), rel=1e-12)
    # with ties (integer-valued samples)
    a = rng.integers(0, 10, size=50).astype(float)
    b = rng.integers(2, 12, size=77).astype(float)
    assert wasserstein_1d(a, b) == pytest.approx(stats.wasserstein_distance(a, b), rel=1e-12)


def test_wasserstein_known_values() -> None:
    assert wasserstein_1d([0.0, 1.0], [0.0, 1.0]) == 0.0
    assert wasserstein_1d([0.0, 1.0, 2.0], [5.0, 6.0, 7.0]) == pytest.approx(5.0)  # a shift
    assert wasserstein_1d([0.0], [1.0, 3.0]) == pytest.approx(2.0)  # 0.5*1 + 0.5*3


@pytest.mark.parametrize("sizes", [(40, 55), (600, 1500)])
def test_ks_matches_scipy(sizes: tuple[int, int]) -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=sizes[0])
    y = rng.normal(0.2, 1.1, size=sizes[1])
    d, p = ks_test(x, y)
    ref = stats.ks_2samp(x, y)
    assert d == pytest.approx(ref.statistic, rel=1e-12)
    assert p == pytest.approx(ref.pvalue, rel=1e-10)
    # D is the largest CDF difference, evaluated by brute force at every sample point
    grid = np.concatenate([x, y])
    cdf_x = (x[None, :] <= grid[:, None]).mean(axis=1)
    cdf_y = (y[None, :] <= grid[:, None]).mean(axis=1)
    assert d == pytest.approx(np.max(np.abs(cdf_x - cdf_y)), rel=1e-12)


def test_ks_bad_input() -> None:
    with pytest.raises(InputError, match="generated"):
        ks_test([1.0, 2.0], [[1.0, 2.0]])


def test_value_str_and_dict() -> None:
    v = Value(0.0123, 0.0004)
    assert str(v) == "0.0123 +- 0.0004"
    assert str(Value(0.0123)) == "0.0123"
    d = Value(np.float64(0.5), np.float64(0.01)).as_dict()
    assert d == {"value": 0.5, "error": 0.01}
    assert type(d["value"]) is float and type(d["error"]) is float
    assert json.loads(json.dumps(Value(1.5).as_dict())) == {"value": 1.5, "error": None}
    with pytest.raises(AttributeError):
        v.value = 1.0  # type: ignore[misc]
    assert math.isclose(Value(2.0, 0.5).value, 2.0)
