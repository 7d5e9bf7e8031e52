"""Randomised quasi-Monte Carlo: unbiased replicates, an honest error, and a real variance gain."""

import math

import numpy as np
import pytest
import torch

from hepflows.integrate import Integrator
from hepflows.integrate.integrator import PROBE_CALLS
from hepflows.integrate.qmc import replicate_estimate, scrambled_sobol
from hepflows.io import InputError


def test_scrambled_sobol_points_are_uniform_reproducible_and_balanced() -> None:
    gen = torch.Generator().manual_seed(3)
    z = scrambled_sobol(1024, 5, gen, "cpu", torch.float64)
    assert z.shape == (1024, 5) and z.dtype == torch.float64
    assert torch.all((z >= 0) & (z < 1))
    # a (t, m, s)-net in base 2: every axis has exactly one point per interval of width 1/1024
    cells = torch.floor(z * 1024).long()
    for axis in range(5):
        assert torch.equal(torch.sort(cells[:, axis]).values, torch.arange(1024))
    again = scrambled_sobol(1024, 5, torch.Generator().manual_seed(3), "cpu", torch.float64)
    assert torch.equal(z, again)
    other = scrambled_sobol(1024, 5, gen, "cpu", torch.float64)  # the next scrambling differs
    assert not torch.equal(z, other)


def test_replicate_estimate_is_the_standard_error_of_the_replicate_means() -> None:
    means = np.array([1.0, 1.2, 0.9, 1.1])
    mean, err = replicate_estimate(means, np.full(4, 100))
    assert mean == pytest.approx(1.05)
    assert err == pytest.approx(means.std(ddof=1) / 2)
    with pytest.raises(InputError, match="at least 2"):
        replicate_estimate(np.array([1.0]), np.array([10]))


def test_qmc_is_unbiased_and_beats_independent_points_on_a_smooth_integrand() -> None:
    """poly in 6D (I = 1) with the uniform (untrained) sampler: 200 RQMC estimates average to the
    truth, their quoted error matches their scatter, and the variance is >100x below MC's."""
    integ = Integrator(lambda x: (x - x * x).sum(1), 6, seed=1)  # each term integrates to 1/6
    qmc = [integ.integrate(2048, iterations=8, sampling="qmc") for _ in range(200)]
    mc = [integ.integrate(2048, iterations=8, sampling="mc") for _ in range(200)]
    values = np.array([r.integral for r in qmc])
    scatter = values.std(ddof=1)
    assert abs(values.mean() - 1.0) < 3 * scatter / math.sqrt(len(values))
    quoted = np.sqrt(np.mean([r.error**2 for r in qmc]))
    assert 0.8 < quoted / scatter < 1.25  # the error is honest
    mc_scatter = np.array([r.integral for r in mc]).std(ddof=1)
    assert (mc_scatter / scatter) ** 2 > 100


def test_bad_sampling_names_get_a_clear_error() -> None:
    integ = Integrator(lambda x: x.sum(1), 2, seed=0)
    with pytest.raises(InputError, match="unknown sampling 'sobol'"):
        integ.integrate(100, sampling="sobol")
    with pytest.raises(InputError, match="at least 2 iterations"):
        integ.integrate(100, iterations=1)


def test_run_to_a_precision_skips_training_when_the_untrained_sampler_suffices() -> None:
    integ = Integrator(lambda x: (x - x * x).sum(1), 8, seed=2)  # poly, I = 8/6
    result = integ.run(precision=1e-4)
    assert not integ.history and result.calls == PROBE_CALLS == result.evaluation_calls
    assert result.relative_error <= 1e-4 and abs(result.pull(8 / 6)) < 4
