"""ROC curves and the log-scale area between two ROC curves (ABC), spec §11."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy import integrate, interpolate
from sklearn.metrics import roc_curve

from hepflows.io import InputError
from hepflows.metrics.results import as_1d, check_float


def _scores_labels(
    scores: ArrayLike, labels: ArrayLike, prefix: str
) -> tuple[np.ndarray, np.ndarray]:
    s = as_1d(scores, f"{prefix}scores")
    y = as_1d(labels, f"{prefix}labels")
    if s.size != y.size:
        raise InputError(
            f"{prefix}scores ({s.size}) and {prefix}labels ({y.size}) differ in length"
        )
    if not np.all((y == 0) | (y == 1)):
        raise InputError(f"{prefix}labels must be 0 (negative) or 1 (positive)")
    if y.min() == y.max():
        raise InputError(f"{prefix}labels need both positives (1) and negatives (0)")
    return s, y.astype(np.int64)


def roc_points(scores: ArrayLike, labels: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """(FPR, TPR) at every distinct score (plus the (0, 0) start), spec §11 step 1.

    ``labels`` are 1 for positives (e.g. b jets) and 0 for negatives (light jets); a higher score
    means more signal-like. Uses ``sklearn.metrics.roc_curve`` without dropping points.
    """
    s, y = _scores_labels(scores, labels, "")
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    return fpr, tpr


def _log_fpr(fpr: np.ndarray) -> np.ndarray:
    """ln FPR, with FPR < 1e-6 mapped to 0 (spec §11 step 4, as FlowSim does)."""
    out = np.zeros_like(fpr)
    ok = fpr >= 1e-6
    out[ok] = np.log(fpr[ok])
    return out


def _working_points(fpr: np.ndarray, tpr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One point per distinct TPR, with the smallest FPR reaching it (FPR is non-decreasing)."""
    tpr_unique, first = np.unique(tpr, return_index=True)
    return fpr[first], tpr_unique


def area_between_rocs(
    ref_scores: ArrayLike,
    ref_labels: ArrayLike,
    gen_scores: ArrayLike,
    gen_labels: ArrayLike,
    tpr_min: float = 0.2,
) -> float:
    """Area between the reference and generated ROC curves on a log FPR scale, spec §11.

    1. ROC points of each sample (:func:`roc_points`); 2. keep points with TPR > ``tpr_min`` in
    each curve; 3. nearest-neighbour interpolation of the generated FPR at the reference TPR
    points (extrapolating at the ends); 4. ℓ = ln FPR, with FPR < 1e-6 mapped to 0 (this maps
    FPR = 0 onto FPR = 1; kept to reproduce FlowSim); 5. ABC = trapezoid integral of
    |ℓ_R − ℓ_G| over the reference TPR points. 0 is ideal.

    Thresholds that only add negatives give several points with the same TPR, which makes a
    nearest-neighbour lookup in TPR ambiguous. After step 2 each curve therefore keeps one point
    per distinct TPR, the one with the smallest FPR (the working point at that efficiency); with
    this, identical inputs give exactly 0. FlowSim interpolates the tied points as they come, so
    on curves with many ties its numbers can differ slightly.
    """
    tpr_min = check_float(tpr_min, "tpr_min")
    s_r, y_r = _scores_labels(ref_scores, ref_labels, "ref_")
    s_g, y_g = _scores_labels(gen_scores, gen_labels, "gen_")
    fpr_r, tpr_r, _ = roc_curve(y_r, s_r, drop_intermediate=False)
    fpr_g, tpr_g, _ = roc_curve(y_g, s_g, drop_intermediate=False)
    keep_r = tpr_r > tpr_min
    keep_g = tpr_g > tpr_min
    if not keep_r.any() or not keep_g.any():
        raise InputError(f"no ROC points with TPR > {tpr_min} in the reference or generated curve")
    fpr_r, tpr_r = _working_points(fpr_r[keep_r], tpr_r[keep_r])
    fpr_g, tpr_g = _working_points(fpr_g[keep_g], tpr_g[keep_g])
    if tpr_g.size == 1:  # interp1d needs two points; a single point is constant everywhere
        fpr_g_at_r = np.full_like(tpr_r, fpr_g[0])
    else:
        nearest = interpolate.interp1d(
            tpr_g, fpr_g, kind="nearest", bounds_error=False, fill_value="extrapolate"
        )
        fpr_g_at_r = nearest(tpr_r)
    diff = np.abs(_log_fpr(fpr_r) - _log_fpr(fpr_g_at_r))
    return float(integrate.trapezoid(diff, tpr_r))
