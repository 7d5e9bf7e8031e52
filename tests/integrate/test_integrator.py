"""The integrator's estimates are honest: coverage, unbiasedness, normalised q, exact marginals."""

import math
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from scipy import stats
from scipy.special import erf

from hepflows.integrate import Integrator, write_events
from hepflows.integrate.integrator import Plateau, training_pays_off
from hepflows.io import InputError

ALPHA = 0.2


def gauss(x: torch.Tensor) -> torch.Tensor:
    d = x.shape[1]
    return (ALPHA * math.sqrt(math.pi)) ** (-d) * torch.exp(-((x - 0.5) ** 2).sum(1) / ALPHA**2)


def gauss_truth(d: int) -> float:
    return erf(1 / (2 * ALPHA)) ** d


@pytest.mark.parametrize("sampling, iterations", [("mc", 5), ("qmc", 16)])
def test_two_sigma_intervals_cover_the_truth_at_the_stated_rate(sampling, iterations) -> None:
    """20 seeds on gauss in 4D: the +-2 sigma interval must contain the truth in >= 17, for
    independent points and for scrambled Sobol' replicates (t with 15 dof: 94% expected)."""
    truth, covered = gauss_truth(4), 0
    for seed in range(20):
        integ = Integrator(gauss, 4, batch_size=1000, seed=seed)
        integ.train(15)
        result = integ.integrate(20000, iterations=iterations, sampling=sampling)
        assert result.sampling == sampling
        covered += abs(result.integral - truth) <= 2 * result.error
        assert result.calls == 15 * 1000 + 20000
    assert covered >= 17


def test_uniform_sampler_is_unbiased_and_has_density_one() -> None:
    """Untrained (zero-initialised) flow = uniform sampler: q == 1 and E[estimate] = I."""
    integ = Integrator(lambda x: (x - x * x).sum(1), 3, seed=0)  # poly, I = d/6
    x = torch.rand(1000, 3, dtype=torch.float64)
    assert torch.allclose(
        integ.flow.log_prob(x), torch.zeros(1000, dtype=torch.float64), atol=1e-12
    )
    for sampling in ("mc", "qmc"):
        estimates = np.array(
            [integ.integrate(256, iterations=2, sampling=sampling).integral for _ in range(300)]
        )
        assert abs(estimates.mean() - 0.5) < 3 * estimates.std(ddof=1) / math.sqrt(300)


def test_trained_sampler_integrates_to_one_and_learns_the_shape() -> None:
    integ = Integrator(gauss, 2, batch_size=2000, seed=3)
    integ.train(40)
    m = 400
    g = (torch.arange(m, dtype=torch.float64) + 0.5) / m
    grid = torch.cartesian_prod(g, g)
    with torch.no_grad():
        q = integ.flow.log_prob(grid).exp()
    assert abs(q.mean().item() - 1.0) < 1e-3
    first, last = integ.history[0]["relative_spread"], integ.history[-1]["relative_spread"]
    assert last < 0.5 * first  # the weights have become much flatter


def test_unweighted_events_reproduce_the_analytic_marginal(tmp_path: Path) -> None:
    integ = Integrator(gauss, 2, batch_size=2000, seed=4)
    integ.train(40)
    result = integ.unweight(100_000, seed=1)
    assert 0 < result.efficiency <= result.efficiency_bootstrap <= 1
    marginal = stats.truncnorm(-0.5 / (ALPHA / math.sqrt(2)), 0.5 / (ALPHA / math.sqrt(2)),
                               loc=0.5, scale=ALPHA / math.sqrt(2))  # fmt: skip
    for axis in (0, 1):
        assert stats.kstest(result.events[:, axis], marginal.cdf).pvalue > 0.01
    path = write_events(tmp_path / "events.h5", result.events, result.weights)
    with h5py.File(path) as f:
        assert f["x"].shape == result.events.shape and np.all(f["weight"][()] == 1.0)


def test_max_weight_quantile_reports_overweights_and_stays_unbiased() -> None:
    integ = Integrator(gauss, 2, batch_size=1000, seed=5)
    integ.train(10)
    result = integ.unweight(50_000, max_weight_quantile=0.99, seed=2)
    assert 0.005 < result.overweight_fraction < 0.02
    assert np.any(result.weights > 1.0)  # over-weight events carry w / w_max


def test_buffered_training_reuses_samples() -> None:
    plain = Integrator(gauss, 4, batch_size=1000, seed=6)
    plain.train(20)
    buffered = Integrator(gauss, 4, batch_size=1000, seed=6, buffer_steps=3)
    buffered.train(20)
    assert plain.calls == buffered.calls == 20_000
    assert buffered.history[-1]["relative_spread"] < plain.history[-1]["relative_spread"]
    r = buffered.integrate(40000)
    assert abs(r.pull(gauss_truth(4))) < 4


@pytest.mark.parametrize("sampling", ["mc", "qmc"])
def test_run_to_a_precision_and_numpy_integrands(sampling) -> None:
    integ = Integrator(lambda x: np.prod(2 * x, axis=1), 3, batch_size=1000, seed=7)  # NumPy f
    result = integ.run(precision=3e-3, eval_batch=20000, max_calls=2_000_000, sampling=sampling)
    assert result.relative_error <= 3e-3 and abs(result.pull(1.0)) < 4
    if sampling == "mc":
        assert result.chi2_dof is not None and 0 <= result.q_value <= 1
    else:  # independent replicates, no per-batch error: no chi2, at least 10 replicates
        assert result.chi2_dof is None and len(result.batch_estimates) >= 10


@pytest.mark.parametrize(
    "f,match",
    [
        (lambda x: torch.where(x[:, 0] > 0.5, float("nan"), 1.0), "NaN/Inf value"),
        (lambda x: x[:, 0] - 0.5, "negative value"),
        (lambda x: torch.ones(x.shape[0], 2), "shape"),
        (lambda x: x[:, 6], "failed on a batch of shape"),
        (lambda x: torch.zeros(x.shape[0]), "zero on all"),
    ],
)
def test_bad_integrands_get_clear_errors(f, match) -> None:
    integ = Integrator(f, 4, batch_size=100)
    with pytest.raises(InputError, match=match):
        integ.train(1)


def test_nan_error_names_a_point() -> None:
    integ = Integrator(lambda x: torch.where(x[:, 0] > 0.5, float("inf"), 1.0), 2, batch_size=500)
    with pytest.raises(InputError, match=r"e\.g\. f\(\[0\.[5-9]"):
        integ.train(1)


def test_save_and_load(tmp_path: Path) -> None:
    integ = Integrator(gauss, 3, batch_size=500, seed=8)
    integ.train(5)
    integ.save(tmp_path / "sampler")
    again = Integrator.load(tmp_path / "sampler", gauss)
    x = torch.rand(10, 3, dtype=torch.float64)
    assert torch.allclose(integ.flow.log_prob(x), again.flow.log_prob(x))
    assert again.calls == integ.calls


def test_training_stop_rules() -> None:
    """Plateau: 3 rounds without a 2% gain on the best spread; pay-off: (s/r)^2 <= calls."""
    rule = Plateau()
    assert not any(rule(s) for s in (10.0, 9.0, 8.0))  # improving
    assert [rule(s) for s in (7.95, 8.1, 7.9)] == [False, False, True]
    assert training_pays_off(0.1, 1e-3, 10_000) and not training_pays_off(0.1, 1e-3, 9_999)


def test_training_rounds_respect_the_budget() -> None:
    integ = Integrator(gauss, 2, batch_size=100, seed=9)
    spreads = list(integ.training_rounds(2_500, steps=10))
    assert len(spreads) == 2 and integ.calls == 2_000 and len(integ.history) == 20
    assert spreads[0] == np.median([h["relative_spread"] for h in integ.history[:10]])
