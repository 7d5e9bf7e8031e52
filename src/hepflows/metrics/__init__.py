"""Fidelity metrics for generated samples: pure functions on NumPy arrays.

Definitions and settings follow ``/work/shared/specs/metrics.md``:

- :mod:`hepflows.metrics.histograms`: separation power (§1), binnings (§3), W1 and KS (§8);
- :mod:`hepflows.metrics.distances`: Fréchet distance / FGD (§5, §9), FPD (§5), KPD (§6),
  PRDC (§7), covariance matching (§10);
- :mod:`hepflows.metrics.roc`: ROC points and the area between ROC curves (§11);
- :mod:`hepflows.metrics.c2st`: classifier two-sample test (§12).

Bad input raises :class:`hepflows.io.InputError` with a one-line message.
"""

from hepflows.metrics.c2st import c2st
from hepflows.metrics.distances import covariance_matching, fpd, frechet_distance, kpd, prdc
from hepflows.metrics.histograms import (
    ks_test,
    linear_edges,
    log_edges,
    separation_power,
    wasserstein_1d,
)
from hepflows.metrics.results import Value
from hepflows.metrics.roc import area_between_rocs, roc_points

__all__ = [
    "Value",
    "area_between_rocs",
    "c2st",
    "covariance_matching",
    "fpd",
    "frechet_distance",
    "kpd",
    "ks_test",
    "linear_edges",
    "log_edges",
    "prdc",
    "roc_points",
    "separation_power",
    "wasserstein_1d",
]
