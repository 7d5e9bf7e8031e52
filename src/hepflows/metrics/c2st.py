"""Classifier two-sample test (C2ST) with a gradient-boosted tree classifier, spec §12."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from sklearn.ensemble import HistGradientBoostingClassifier

from hepflows.io import InputError
from hepflows.metrics.results import Value, as_2d, check_int, same_features

# Fewest rows per class after equalising sizes: the 50/50 split must leave both classes in both
# halves.
_MIN_PER_CLASS = 10


def _inputs(targets: ArrayLike, conditions: ArrayLike | None, name: str) -> np.ndarray:
    x = as_2d(targets, name)
    if conditions is None:
        return x
    c = as_2d(conditions, f"{name} conditions")
    if c.shape[0] != x.shape[0]:
        raise InputError(
            f"{name} has {x.shape[0]} rows but its conditions have {c.shape[0]}; they must match"
        )
    return np.concatenate([x, c], axis=1)


def c2st(
    reference: ArrayLike,
    generated: ArrayLike,
    ref_conditions: ArrayLike | None = None,
    gen_conditions: ArrayLike | None = None,
    seed: int = 0,
    max_samples: int | None = None,
) -> Value:
    """Classifier two-sample test, spec §12 (arXiv:1610.06545; FlowSim ``c2st``).

    A scikit-learn ``HistGradientBoostingClassifier`` (default hyper-parameters,
    ``random_state=seed``) learns to separate [targets ‖ conditions] of the reference (label 1)
    from the generated sample (label 0). Both samples are brought to equal size by **truncating
    the larger one to its first rows** (and both to ``max_samples`` rows if given), so pass
    shuffled samples. The rows are shuffled and split 50/50 into train and test halves (half of
    each class in each, so both halves stay balanced). Returns the misclassification rate p on
    the test half ± the binomial error √(p(1 − p)/n_test): 0.5 is ideal, 0 perfectly separable.
    """
    if (ref_conditions is None) != (gen_conditions is None):
        raise InputError("give both ref_conditions and gen_conditions, or neither")
    x_ref = _inputs(reference, ref_conditions, "reference")
    x_gen = _inputs(generated, gen_conditions, "generated")
    same_features(x_ref, x_gen, "reference (with conditions)", "generated (with conditions)")
    n = min(x_ref.shape[0], x_gen.shape[0])
    if max_samples is not None:
        n = min(n, check_int(max_samples, "max_samples", _MIN_PER_CLASS))
    if n < _MIN_PER_CLASS:
        raise InputError(f"c2st needs at least {_MIN_PER_CLASS} rows per sample, got {n}")
    x_ref, x_gen = x_ref[:n], x_gen[:n]

    seed = check_int(seed, "seed", 0)
    rng = np.random.default_rng(seed)
    perm_ref, perm_gen = rng.permutation(n), rng.permutation(n)
    half = n // 2
    x_train = np.concatenate([x_ref[perm_ref[:half]], x_gen[perm_gen[:half]]])
    y_train = np.concatenate([np.ones(half), np.zeros(half)])
    x_test = np.concatenate([x_ref[perm_ref[half:]], x_gen[perm_gen[half:]]])
    y_test = np.concatenate([np.ones(n - half), np.zeros(n - half)])
    order = rng.permutation(y_train.size)  # shuffle the training rows
    x_train, y_train = x_train[order], y_train[order]

    clf = HistGradientBoostingClassifier(random_state=seed)
    clf.fit(x_train, y_train)
    p = float(np.mean(clf.predict(x_test) != y_test))
    return Value(p, float(np.sqrt(p * (1.0 - p) / y_test.size)))
