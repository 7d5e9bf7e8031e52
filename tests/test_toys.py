"""The toy ring: its exact density is normalised and matches its sampler."""

import numpy as np
import torch
from scipy import stats

from hepflows.toys import ring_log_prob, ring_sample


def test_ring_density_integrates_to_one() -> None:
    m, half = 1200, 2.6
    g = -half + (torch.arange(m, dtype=torch.float64) + 0.5) * (2 * half / m)
    grid = torch.cartesian_prod(g, g)
    for radius in (0.3, 1.0, 2.0):  # 0.3 with width 0.1: the r > 0 truncation matters
        c = torch.full((len(grid),), radius, dtype=torch.float64)
        integral = ring_log_prob(grid, c).exp().sum().item() * (2 * half / m) ** 2
        assert abs(integral - 1.0) < 2e-3


def test_ring_sampler_matches_the_density() -> None:
    gen = torch.Generator().manual_seed(0)
    c = torch.full((20000, 1), 0.8, dtype=torch.float64)
    x = ring_sample(c, 0.1, gen).numpy()
    r = np.hypot(x[:, 0], x[:, 1])
    assert stats.kstest(r, stats.truncnorm(-8.0, np.inf, loc=0.8, scale=0.1).cdf).pvalue > 0.01
    angle = np.arctan2(x[:, 1], x[:, 0])
    assert stats.kstest(angle, stats.uniform(-np.pi, 2 * np.pi).cdf).pvalue > 0.01
