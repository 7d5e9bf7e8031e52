"""Result container for metrics with an uncertainty, and shared input checks.

Every metric validates its inputs with the helpers below, so a bad array (wrong number of
dimensions, mismatched feature counts, NaN/Inf, too few rows) raises :class:`InputError` with a
one-line message that names the argument and the problem.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from hepflows.io import InputError


@dataclasses.dataclass(frozen=True)
class Value:
    """A metric value with an optional uncertainty (where the spec defines one)."""

    value: float
    error: float | None = None

    def __str__(self) -> str:
        """``"0.0123 +- 0.0004"``, or ``"0.0123"`` when there is no error."""
        if self.error is None:
            return f"{self.value:.4g}"
        return f"{self.value:.4g} +- {self.error:.2g}"

    def as_dict(self) -> dict[str, float | None]:
        """``{"value": ..., "error": ...}`` with plain Python floats, ready for JSON."""
        return {
            "value": float(self.value),
            "error": None if self.error is None else float(self.error),
        }


def _finite(arr: np.ndarray, name: str) -> None:
    if not np.all(np.isfinite(arr)):
        n_bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise InputError(f"{name} contains {n_bad} NaN or infinite value(s)")


def as_1d(x: Any, name: str, min_size: int = 1) -> np.ndarray:
    """Return ``x`` as a finite 1-D float64 array with at least ``min_size`` entries."""
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} is not a numeric array ({exc})") from None
    if arr.ndim != 1:
        raise InputError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size < min_size:
        raise InputError(f"{name} needs at least {min_size} entries, got {arr.size}")
    _finite(arr, name)
    return arr


def as_2d(x: Any, name: str, min_rows: int = 1) -> np.ndarray:
    """Return ``x`` as a finite (n, d) float64 array with ``n >= min_rows`` and ``d >= 1``."""
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} is not a numeric array ({exc})") from None
    if arr.ndim != 2:
        raise InputError(f"{name} must be 2-D (samples, features), got shape {arr.shape}")
    if arr.shape[1] < 1:
        raise InputError(f"{name} has no features (shape {arr.shape})")
    if arr.shape[0] < min_rows:
        raise InputError(f"{name} needs at least {min_rows} samples, got {arr.shape[0]}")
    _finite(arr, name)
    return arr


def same_features(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    """Raise :class:`InputError` unless two (n, d) arrays have the same number of features."""
    if a.shape[1] != b.shape[1]:
        raise InputError(
            f"{name_a} has {a.shape[1]} features but {name_b} has {b.shape[1]}; they must match"
        )


def check_int(value: Any, name: str, minimum: int) -> int:
    """Return ``value`` as an int, raising :class:`InputError` if it is not an int >= minimum."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InputError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise InputError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_float(value: Any, name: str) -> float:
    """Return ``value`` as a finite float, raising :class:`InputError` otherwise."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(out):
        raise InputError(f"{name} must be finite, got {value!r}")
    return out
