"""Randomised quasi-Monte Carlo (RQMC) points for the sampler's latent space.

The flow sampler maps a uniform latent point z in [0, 1)^d to x with weight w(z) = f(x)/q(x), so
I = integral of w over the latent unit cube. A trained flow makes w nearly flat and smooth, which
is where low-discrepancy points beat independent ones: the error of a scrambled Sobol' net falls
faster than 1/sqrt(n) for smooth w (Owen, "Scrambled net variance for integrals of smooth
functions", Ann. Stat. 25 (1997) 1541), and for any square-integrable w its variance is o(1/n).
Heavy-tailed weights gain little (camel in 16 dimensions: nothing, docs/benchmarks.md). This is
the flow analogue of vegas's stratified sampling.

Each scrambling is an independent random replicate whose estimate is unbiased, so R replicates
give an unbiased mean and an honest error: the standard deviation of the R replicate means over
sqrt(R) (R - 1 degrees of freedom; with R = 16 a +-2 sigma interval covers about 94%).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch
from scipy.stats import qmc

from hepflows.io import InputError

SAMPLINGS = ("qmc", "mc")
MAX_SOBOL_DIM = 21201  # the direction numbers scipy ships (Joe & Kuo)


def check_sampling(sampling: str) -> str:
    """``sampling`` if it names a known scheme, else a one-line error."""
    if sampling not in SAMPLINGS:
        raise InputError(f"unknown sampling {sampling!r}; expected one of {', '.join(SAMPLINGS)}")
    return sampling


def scrambled_sobol(
    n: int, dim: int, generator: torch.Generator, device: str | torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """The first ``n`` points of a freshly scrambled Sobol' sequence in [0, 1)^dim, ``(n, dim)``.

    The scrambling seed is drawn from ``generator``, so runs repeat with the integrator's seed.
    Sizes that are powers of two keep the net's balance (and the best variance); other sizes stay
    unbiased, so scipy's balance warning is silenced.
    """
    if dim > MAX_SOBOL_DIM:
        raise InputError(f"quasi-Monte Carlo supports dim <= {MAX_SOBOL_DIM}, got {dim}; use mc")
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))
    engine = qmc.Sobol(dim, scramble=True, seed=np.random.default_rng(seed))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        points = engine.random(n)
    return torch.as_tensor(points, dtype=dtype, device=device)


def replicate_estimate(means: np.ndarray, sizes: np.ndarray) -> tuple[float, float]:
    """Pooled estimate and its error from independent replicate means (RQMC): the size-weighted
    mean and sqrt(sum_r s_r^2 (m_r - mean)^2 / (R - 1)) with s_r the replicate's share."""
    if len(means) < 2:
        raise InputError("quasi-Monte Carlo needs at least 2 independent replicates")
    share = sizes / sizes.sum()
    mean = float((share * means).sum())
    r = len(means)
    var = float((share**2 * (means - mean) ** 2).sum()) * r / (r - 1)
    return mean, math.sqrt(var)
