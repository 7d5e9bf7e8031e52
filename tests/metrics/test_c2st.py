"""Classifier two-sample test (spec §12)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from hepflows.io import InputError
from hepflows.metrics import Value, c2st


def test_c2st_same_distribution_is_half() -> None:
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(3000, 3))
    gen = rng.normal(size=(3000, 3))
    res = c2st(ref, gen)
    assert isinstance(res, Value)
    assert res.error == pytest.approx(math.sqrt(res.value * (1 - res.value) / 3000), rel=1e-12)
    assert abs(res.value - 0.5) < 3 * res.error


def test_c2st_different_distributions_below_half() -> None:
    rng = np.random.default_rng(1)
    ref = rng.normal(size=(3000, 2))
    gen = rng.normal(size=(3000, 2)) + np.array([1.0, 0.0])
    res = c2st(ref, gen)
    bayes = stats.norm.cdf(-0.5)  # best possible error for a unit shift: 0.309
    assert res.value < 0.5 - 10 * res.error
    assert bayes - 3 * res.error < res.value < bayes + 0.05


def test_c2st_uses_conditions() -> None:
    # same target marginal, wrong dependence on the condition: only visible with conditions
    rng = np.random.default_rng(2)
    c_ref, c_gen = rng.normal(size=(3000, 1)), rng.normal(size=(3000, 1))
    ref = c_ref + 0.3 * rng.normal(size=(3000, 1))
    gen = -c_gen + 0.3 * rng.normal(size=(3000, 1))
    without = c2st(ref, gen)
    with_cond = c2st(ref, gen, ref_conditions=c_ref, gen_conditions=c_gen)
    assert abs(without.value - 0.5) < 3.5 * without.error
    assert with_cond.value < 0.2


def test_c2st_equalises_sizes_and_is_deterministic() -> None:
    rng = np.random.default_rng(3)
    ref = rng.normal(size=(1000, 2))
    gen = rng.normal(size=(1500, 2)) + 2.0
    res = c2st(ref, gen, seed=4)
    assert res == c2st(ref, gen[:1000], seed=4)  # the larger sample is truncated
    assert res == c2st(ref, gen, seed=4)
    assert res.error == pytest.approx(math.sqrt(res.value * (1 - res.value) / 1000), rel=1e-12)
    capped = c2st(ref, gen, seed=4, max_samples=400)
    assert capped == c2st(ref[:400], gen[:400], seed=4)
    assert capped.error == pytest.approx(
        math.sqrt(capped.value * (1 - capped.value) / 400), rel=1e-12
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(ref_conditions=np.ones((20, 1))), "both"),
        (dict(ref_conditions=np.ones((19, 1)), gen_conditions=np.ones((20, 1))), "rows"),
        (dict(ref_conditions=np.ones((20, 1)), gen_conditions=np.ones((20, 2))), "features"),
        (dict(max_samples=3), "max_samples"),
    ],
)
def test_c2st_bad_input(kwargs, match) -> None:
    with pytest.raises(InputError, match=match):
        c2st(np.ones((20, 2)), np.ones((20, 2)), **kwargs)


def test_c2st_too_few_or_bad_rows() -> None:
    with pytest.raises(InputError, match="at least 10"):
        c2st(np.ones((5, 2)), np.ones((20, 2)))
    with pytest.raises(InputError, match="NaN"):
        c2st(np.full((20, 2), np.nan), np.ones((20, 2)))
    with pytest.raises(InputError, match="2-D"):
        c2st(np.ones(20), np.ones((20, 1)))
