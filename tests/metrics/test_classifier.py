"""The DNN classifier test: 0.5 for identical distributions, near 1 for separable ones."""

import dataclasses

import numpy as np
import pytest
from scipy import stats

from hepflows.io import InputError
from hepflows.metrics.classifier import (
    PRESETS,
    ClassifierPreset,
    classifier_test,
    hanley_mcneil_error,
)

TINY = ClassifierPreset((32, 32), epochs=6, lr=3e-3, batch_size=200)


def test_same_distribution_gives_auc_one_half_within_its_error() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(4000, 5)), rng.normal(size=(4000, 5))
    result = classifier_test(a, b, TINY, seed=1)
    assert abs(result.auc.value - 0.5) < 3 * result.auc.error + 0.01
    assert abs(result.jsd.value) < 0.02


def test_separable_samples_give_auc_near_one() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(3000, 4)), rng.normal(size=(3000, 4)) + np.array([2.0, 0, 0, 0])
    result = classifier_test(a, b, TINY, seed=2)
    optimum = stats.norm.cdf(2.0 / np.sqrt(2.0))  # Bayes-optimal AUC for a 2-sigma mean shift
    assert result.auc.value == pytest.approx(optimum, abs=max(0.015, 2 * result.auc.error))
    assert result.accuracy.value > 0.8 and result.jsd.value > 0.3


def test_conditions_are_used_and_repeats_give_a_spread() -> None:
    """Generated = right marginal, wrong dependence on the condition: only visible with it."""
    rng = np.random.default_rng(2)
    c_ref, c_gen = rng.uniform(-1, 1, (3000, 1)), rng.uniform(-1, 1, (3000, 1))
    x_ref = c_ref + 0.1 * rng.normal(size=(3000, 1))
    x_gen = rng.permutation(x_ref)  # same marginal, no dependence on its condition
    blind = classifier_test(x_ref, x_gen, TINY, seed=3)
    seeing = classifier_test(x_ref, x_gen, TINY, c_ref, c_gen, seed=3, repeats=2)
    assert blind.auc.value < 0.56 and seeing.auc.value > 0.8
    assert seeing.auc.error is not None and seeing.auc.error >= 0


def test_block_scaling_makes_the_auc_independent_of_the_block_unit() -> None:
    """Inputs in a tiny unit train a small network too slowly; rescaled to a fixed RMS per
    block, any unit gives the same inputs and the same AUC."""
    rng = np.random.default_rng(4)
    a = np.abs(rng.normal(size=(3000, 6)))
    b = np.abs(rng.normal(size=(3000, 6))) * np.array([1, 2.0, 1, 1, 1, 1])
    a[:, 0] = b[:, 0] = rng.uniform(0, 1, 3000)  # a column outside the block
    raw = ClassifierPreset((32, 32), epochs=6, lr=3e-3, batch_size=200, standardise=False)
    scaled = dataclasses.replace(raw, block_rms=1.0)
    block = (slice(1, 6),)
    unit, large_unit = np.array([1.0] + [1e-3] * 5), np.array([1.0] + [1e3] * 5)
    tiny = classifier_test(a * unit, b * unit, scaled, seed=5, blocks=block)
    large = classifier_test(a * large_unit, b * large_unit, scaled, seed=5, blocks=block)
    assert tiny.auc.value == pytest.approx(large.auc.value, abs=1e-6)
    assert tiny.auc.value > 0.6
    unscaled = classifier_test(a * unit, b * unit, raw, seed=5, blocks=block)  # no block_rms
    assert unscaled.auc.value < tiny.auc.value - 0.05


def test_columns_outside_the_blocks_are_standardised() -> None:
    """With block scaling and standardising (the ``fast`` preset's choice), a column outside the
    block in any unit and at any offset gives the same AUC: log10 E_inc ~ 3-5 as given beside
    voxel fractions slowed the voxels' learning."""
    assert PRESETS["fast"].standardise and PRESETS["fast"].block_rms is not None
    rng = np.random.default_rng(6)
    a = np.abs(rng.normal(size=(3000, 6)))
    b = np.abs(rng.normal(size=(3000, 6))) * np.array([1, 2.0, 1, 1, 1, 1])
    a[:, 0] = rng.uniform(0, 1, 3000)
    b[:, 0] = rng.uniform(0.1, 1.1, 3000)
    both = dataclasses.replace(TINY, standardise=True, block_rms=1.0)
    block = (slice(1, 6),)
    plain = classifier_test(a, b, both, seed=7, blocks=block)
    shift = np.array([1e3, 1, 1, 1, 1, 1]), np.array([4.0, 0, 0, 0, 0, 0])
    moved = classifier_test(
        a * shift[0] + shift[1], b * shift[0] + shift[1], both, seed=7, blocks=block
    )
    assert moved.auc.value == pytest.approx(plain.auc.value, abs=1e-6)
    assert plain.auc.value > 0.6


def test_hanley_mcneil_error_matches_the_known_value() -> None:
    # AUC 0.5 with 100 + 100: Var = (0.25 + 99 (1/3 - 1/4) * 2) / 1e4
    assert hanley_mcneil_error(0.5, 100, 100) == pytest.approx(((0.25 + 2 * 99 / 12) / 1e4) ** 0.5)


def test_bad_inputs() -> None:
    with pytest.raises(InputError, match="unknown classifier preset"):
        classifier_test(np.zeros((50, 2)), np.zeros((50, 2)), "slow")
    with pytest.raises(InputError, match="NaN"):
        classifier_test(np.full((50, 2), np.nan), np.zeros((50, 2)), TINY)
    with pytest.raises(InputError, match="3 inputs, generated 2"):
        classifier_test(np.zeros((50, 3)), np.zeros((50, 2)), TINY)
    with pytest.raises(InputError, match="column block"):
        classifier_test(np.zeros((50, 3)), np.zeros((50, 3)), TINY, blocks=(slice(3, 5),))
