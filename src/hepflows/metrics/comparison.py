"""A compared one-dimensional distribution: shared edges, both samples' counts, separation power.

Shared by every evaluation (showers, tables) and by the report plots.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from hepflows.metrics.histograms import separation_power


@dataclasses.dataclass
class Histogram:
    """Counts of the reference and the generated sample on the same edges."""

    name: str
    edges: np.ndarray
    reference: np.ndarray
    generated: np.ndarray
    separation: float


def compare(
    name: str, reference: np.ndarray, generated: np.ndarray, edges: np.ndarray
) -> Histogram:
    """Histogram both samples on ``edges`` and compute their separation power (metrics.md §1)."""
    return Histogram(
        name,
        np.asarray(edges, dtype=np.float64),
        np.histogram(reference, edges)[0],
        np.histogram(generated, edges)[0],
        separation_power(reference, generated, edges),
    )
