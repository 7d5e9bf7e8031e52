"""The VEGAS grid: an exact bijection of the unit hypercube whose adaptation learns marginals."""

import math
from pathlib import Path

import pytest
import torch

from hepflows.integrate import Integrator
from hepflows.integrate.grid import VegasGrid
from hepflows.io import InputError


def peak(x: torch.Tensor, centre: float = 0.3, width: float = 0.05) -> torch.Tensor:
    """A normalised Gaussian per axis (its tails beyond [0, 1] are negligible)."""
    z = (x - centre) / width
    return torch.exp(-0.5 * (z * z).sum(1)) / (width * math.sqrt(2 * math.pi)) ** x.shape[1]


def adapted_grid(dim: int = 3, iterations: int = 6, seed: int = 0) -> VegasGrid:
    gen = torch.Generator().manual_seed(seed)
    grid = VegasGrid(dim, bins=32)
    for _ in range(iterations):
        y = torch.rand(20000, dim, generator=gen, dtype=torch.float64)
        x, log_jac = grid.to_x(y)
        grid.adapt(y, peak(x) * log_jac.exp())
    return grid


def test_grid_maps_are_inverse_with_the_brute_force_jacobian() -> None:
    grid = adapted_grid()
    assert (grid.widths > 0).all() and torch.allclose(grid.widths.sum(1), torch.ones(3).double())
    y = torch.rand(500, 3, dtype=torch.float64)
    x, log_jac = grid.to_x(y)
    back, log_jac_back = grid.to_y(x)
    assert torch.allclose(back, y, atol=1e-12) and torch.allclose(log_jac_back, log_jac)
    # log|dx/dy| against central differences, axis by axis (the map is separable)
    h = 1e-7
    brute = torch.zeros(500, dtype=torch.float64)
    for axis in range(3):
        step = torch.zeros(3, dtype=torch.float64)
        step[axis] = h
        up, down = grid.to_x((y + step).clamp(0, 1))[0], grid.to_x((y - step).clamp(0, 1))[0]
        inside = ((y[:, axis] > h) & (y[:, axis] < 1 - h)).double()
        brute += torch.log((up - down)[:, axis] / (2 * h)) * inside
    # points within h of an interval boundary see two slopes; all others match to 1e-6
    assert (brute - log_jac).abs().lt(1e-6).float().mean() > 0.99


def test_adapted_grid_captures_a_separable_peak() -> None:
    """Uniform y through the adapted grid: the weight spread falls from ~30 to below 1, and the
    density of x, 1/|dx/dy|, integrates to 1 (its mean under uniform x is 1)."""
    grid = adapted_grid(iterations=8)
    y = torch.rand(50000, 3, dtype=torch.float64)
    x, log_jac = grid.to_x(y)
    w = peak(x) * log_jac.exp()
    assert w.std() / w.mean() < 1.0
    assert abs(w.mean().item() - 1.0) < 4 * (w.std() / math.sqrt(len(w))).item()
    uniform_x = torch.rand(200000, 3, dtype=torch.float64)
    q = torch.exp(-grid.to_y(uniform_x)[1])
    assert abs(q.mean().item() - 1.0) < 4 * (q.std() / math.sqrt(len(q))).item()


def test_integrator_with_grid_pretraining_is_normalised_unbiased_and_saved(
    tmp_path: Path,
) -> None:
    integ = Integrator(peak, 2, batch_size=1000, grid_iterations=5, seed=4)
    first = Integrator(peak, 2, batch_size=1000, grid_iterations=5, seed=4)
    first.train(1)  # training starts with the pre-training
    assert first.grid_adapted == 5 and first.calls == 5 * 4000 + 1000
    integ.pretrain_grid()
    assert integ.calls == 5 * 4000 and integ.grid_adapted == 5
    untrained = integ.integrate(20000, iterations=4)
    integ.train(20)
    m = 1000
    g = (torch.arange(m, dtype=torch.float64) + 0.5) / m
    with torch.no_grad():
        q = integ.log_prob(torch.cartesian_prod(g, g)).exp()
    assert abs(q.mean().item() - 1.0) < 2e-3  # q integrates to 1 on the unit square
    result = integ.integrate(40000, iterations=4)
    for r in (untrained, result):
        assert abs(r.integral - 1.0) < 4 * r.error
    # the grid alone already brings the spread of this separable peak down (uniform: ~30)
    assert untrained.error * math.sqrt(20000) < 1.0
    integ.save(tmp_path / "s")
    again = Integrator.load(tmp_path / "s", peak)
    x = torch.rand(50, 2, dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(integ.log_prob(x), again.log_prob(x))
    assert again.grid_adapted == 5 and again.grid.alpha == integ.grid.alpha


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"grid_iterations": -1}, "grid iterations"),
        ({"grid_iterations": 2, "grid_bins": 1}, "2 bins"),
        ({"grid_iterations": 2, "grid_calls": 10}, "grid calls"),
        ({"grid_iterations": 2, "grid_alpha": 0.0}, "damping"),
    ],
)
def test_bad_grid_options_get_clear_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(InputError, match=match):
        Integrator(peak, 2, **kwargs)
