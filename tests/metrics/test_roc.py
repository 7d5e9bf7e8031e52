"""ROC points and the log-scale area between ROC curves (spec §11)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hepflows.io import InputError
from hepflows.metrics import area_between_rocs, roc_points


def test_roc_points_every_distinct_score() -> None:
    scores = [0.1, 0.4, 0.35, 0.8]
    labels = [0, 0, 1, 1]
    fpr, tpr = roc_points(scores, labels)
    # thresholds inf, 0.8, 0.4, 0.35, 0.1
    np.testing.assert_allclose(fpr, [0.0, 0.0, 0.5, 0.5, 1.0])
    np.testing.assert_allclose(tpr, [0.0, 0.5, 0.5, 1.0, 1.0])


def test_roc_points_tied_scores_move_together() -> None:
    fpr, tpr = roc_points([3, 3, 2, 1, 1, 1], [1, 0, 1, 1, 0, 0])
    np.testing.assert_allclose(fpr, [0.0, 1 / 3, 1 / 3, 1.0])
    np.testing.assert_allclose(tpr, [0.0, 1 / 3, 2 / 3, 1.0])


def test_abc_identical_inputs_zero() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, size=2000)
    scores = rng.normal(size=2000) + 1.5 * labels
    assert area_between_rocs(scores, labels, scores, labels) == 0.0
    # a monotonic transform of the scores leaves the ROC curve unchanged
    assert area_between_rocs(scores, labels, np.exp(scores), labels) == 0.0


# Reference: positives at 3, 2, 1; negatives at 3, 2, 1, 1.
#   ROC points (FPR, TPR): (1/4, 1/3), (1/2, 2/3), (1, 1).
REF_SCORES = [3, 2, 1, 3, 2, 1, 1]
REF_LABELS = [1, 1, 1, 0, 0, 0, 0]


def test_abc_hand_computed_nearest_neighbour() -> None:
    # Generated: positives at 4, 3, 2, 1; negatives at 4, 3, 2, 2, 1, 1, 1, 1.
    #   ROC points: (1/8, 1/4), (1/4, 1/2), (1/2, 3/4), (1, 1).
    # Nearest generated TPR to the reference TPRs 1/3, 2/3, 1 -> 1/4, 3/4, 1,
    # so generated FPRs 1/8, 1/2, 1 against reference 1/4, 1/2, 1.
    # |ln FPR| differences: ln 2, 0, 0 -> trapezoid over TPR steps of 1/3: ln2 / 6.
    gen_scores = [4, 3, 2, 1, 4, 3, 2, 2, 1, 1, 1, 1]
    gen_labels = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0]
    abc = area_between_rocs(REF_SCORES, REF_LABELS, gen_scores, gen_labels)
    assert abc == pytest.approx(math.log(2) / 6, rel=1e-12)


def test_abc_small_fpr_maps_to_zero() -> None:
    # Generated: positives at 4, 3, 2, 1; negatives at 3, 2, 2, 2, 1, 1, 1, 1.
    #   ROC points: (0, 1/4), (1/8, 1/2), (1/2, 3/4), (1, 1).
    # At reference TPR 1/3 the nearest generated point has FPR 0 -> mapped to 0 (not -inf):
    # differences |ln(1/4) - 0| = ln 4, 0, 0 -> ln4 / 6.
    gen_scores = [4, 3, 2, 1, 3, 2, 2, 2, 1, 1, 1, 1]
    gen_labels = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0]
    abc = area_between_rocs(REF_SCORES, REF_LABELS, gen_scores, gen_labels)
    assert abc == pytest.approx(math.log(4) / 6, rel=1e-12)


def test_abc_tpr_min_cut_and_extrapolation() -> None:
    gen_scores = [4, 3, 2, 1, 4, 3, 2, 2, 1, 1, 1, 1]
    gen_labels = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0]
    # tpr_min = 0.5 keeps reference TPRs 2/3, 1 and generated 3/4, 1: FPRs agree -> 0
    assert area_between_rocs(REF_SCORES, REF_LABELS, gen_scores, gen_labels, tpr_min=0.5) == 0.0
    # tpr_min = 0.3 keeps generated (1/4, 1/2), (1/2, 3/4), (1, 1): the reference TPR 1/3 lies
    # below the first one and takes its FPR 1/4 (= reference) -> 0
    assert area_between_rocs(REF_SCORES, REF_LABELS, gen_scores, gen_labels, tpr_min=0.3) == 0.0
    # same with the generated curve of test_abc_small_fpr_maps_to_zero: kept points
    # (1/8, 1/2), (1/2, 3/4), (1, 1); TPR 1/3 -> FPR 1/8 against 1/4 -> ln2 / 6
    gen_scores = [4, 3, 2, 1, 3, 2, 2, 2, 1, 1, 1, 1]
    abc = area_between_rocs(REF_SCORES, REF_LABELS, gen_scores, gen_labels, tpr_min=0.3)
    assert abc == pytest.approx(math.log(2) / 6, rel=1e-12)


def test_abc_tied_tpr_uses_smallest_fpr() -> None:
    # Generated: positives at 4, 3, 2, 1; negatives at 4.5, 3.5, 3, 2, 1, 1, 1, 1.
    #   ROC points: (1/8, 0), (1/8, 1/4), (1/4, 1/4), (3/8, 1/2), (1/2, 3/4), (1, 1).
    # TPR 1/4 has FPR 1/8 and 1/4; the working point keeps 1/8. Reference TPR 1/3 -> 1/4 -> FPR
    # 1/8 against 1/4: ln 2; TPR 2/3 -> 3/4 -> 1/2 (equal); 1 -> 1 -> ln2 / 6 in total.
    gen_scores = [4, 3, 2, 1, 4.5, 3.5, 3, 2, 1, 1, 1, 1]
    gen_labels = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0]
    abc = area_between_rocs(REF_SCORES, REF_LABELS, gen_scores, gen_labels)
    assert abc == pytest.approx(math.log(2) / 6, rel=1e-12)


def test_abc_shifted_scores_positive() -> None:
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, size=4000)
    ref = rng.normal(size=4000) + 2.0 * labels
    gen = rng.normal(size=4000) + 1.0 * labels  # weaker tagger: larger FPR at every TPR
    assert area_between_rocs(ref, labels, gen, labels) > 0.3


@pytest.mark.parametrize(
    ("scores", "labels", "match"),
    [
        ([0.1, 0.2], [0, 1, 1], "differ in length"),
        ([0.1, 0.2], [0, 2], "0 \\(negative\\) or 1"),
        ([0.1, 0.2], [1, 1], "both positives"),
        ([0.1, np.nan], [0, 1], "NaN"),
        ([[0.1, 0.2]], [0, 1], "1-D"),
    ],
)
def test_roc_bad_input(scores, labels, match) -> None:
    with pytest.raises(InputError, match=match):
        roc_points(scores, labels)
    with pytest.raises(InputError, match=match):
        area_between_rocs([0.1, 0.2], [0, 1], scores, labels)


def test_abc_no_points_above_tpr_min() -> None:
    with pytest.raises(InputError, match="TPR > 1.5"):
        area_between_rocs([0.1, 0.2], [0, 1], [0.1, 0.2], [0, 1], tpr_min=1.5)
