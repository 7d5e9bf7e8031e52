"""Classifier two-sample test with the CaloChallenge DNN protocol (metrics.md section 4).

Train a network to tell the reference (label 1) from the generated sample (label 0); the AUC on
held-out data is "the ultimate metric": 0.5 means indistinguishable, 1 perfectly separable.

Protocol (arXiv:2410.21611, CaloChallenge ``evaluate.py`` as described in the spec):

1. Each class is shuffled and split into train / test / validation (fractions 0.6 / 0.2 / 0.2 of
   the smaller class by default, or fixed counts); both classes get equal sizes.
2. BCE-with-logits training with Adam; after every epoch the accuracy on the **test** split
   (threshold 0.5) is measured, the best epoch kept, and training stops early at test accuracy 1.
3. Isotonic regression fitted on the test split maps the network's probabilities to calibrated
   ones (outputs clipped to [1e-6, 1 - 1e-6]).
4. On the **validation** split: ROC AUC of the calibrated probabilities, accuracy, and
   JSD = (ln 2 - BCE) / ln 2 (1: separable, 0: indistinguishable).

Presets:

* ``challenge``: the published network, input -> 3 x [2048, LeakyReLU] -> 1, Adam lr 2e-4,
  batch 1000, 50 epochs, float64 as in the official script, inputs as given.
* ``fast``: sized for a 2-core CPU: 2 x [256, LeakyReLU], Adam lr 5e-4, batch 256, 50 epochs,
  float32. Column blocks the caller names (``blocks``, e.g. the voxel energy fractions) are each
  multiplied by one number that brings the RMS of the block's training-split entries to 0.05;
  every other column is standardised (training-split mean and standard deviation). Why the
  blocks: on CaloGAN (voxel-fraction RMS 0.017) this small network often failed to learn the
  voxels in 50 epochs, and its low-level AUC depended on the seed (0.71 / 0.51 / 0.68 on one
  file); at RMS 0.05 it reads 0.80 for every seed. At RMS 0.3 and above it learns too fast and
  loses 0.01-0.04. One number per block keeps the voxels' relative sizes: per-column
  standardising of voxels was tried and rejected, as it amplifies nearly-always-empty voxels
  (0.06 below ``challenge`` in low-level AUC). Why the other columns: used as given (log10 E_inc
  ~ 3-5 beside voxels of RMS 0.05; log10 E_l down to -8 among the high-level features) they held
  the network back: low-level AUCs read 0.005-0.04 and high-level ones 0.05-0.1 below what it
  sees with them standardised, with the floor unchanged (``docs/evaluation.md``). How closely
  ``fast`` tracks ``challenge`` is measured there too.

The AUC's uncertainty is the Hanley-McNeil standard error for the validation split sizes; with
``repeats > 1`` the splits are redrawn and the result is mean +- standard deviation over repeats,
as published tables report.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import roc_auc_score
from torch import nn
from tqdm.auto import tqdm

from hepflows.io import InputError
from hepflows.metrics.results import Value, as_2d


@dataclasses.dataclass(frozen=True)
class ClassifierPreset:
    """Network and training settings of the classifier test."""

    hidden: tuple[int, ...]
    epochs: int
    lr: float
    batch_size: int = 1000
    dtype: torch.dtype = torch.float32
    standardise: bool = True
    """z-score every column outside the rescaled blocks (all columns if ``block_rms`` is None)."""
    block_rms: float | None = None
    """Multiply each caller-named column block by one number to this training-split RMS."""


PRESETS = {
    "challenge": ClassifierPreset((2048, 2048, 2048), 50, 2e-4, 1000, torch.float64, False),
    "fast": ClassifierPreset((256, 256), 50, 5e-4, 256, torch.float32, True, block_rms=0.05),
}


@dataclasses.dataclass(frozen=True)
class ClassifierResult:
    """AUC, accuracy and JSD on the validation split (Values carry their uncertainties)."""

    auc: Value
    accuracy: Value
    jsd: Value
    best_epoch: int
    n_train: int
    n_validation: int

    def as_dict(self) -> dict:
        return {
            "auc": self.auc.as_dict(),
            "accuracy": self.accuracy.as_dict(),
            "jsd": self.jsd.as_dict(),
            "best_epoch": self.best_epoch,
            "n_train_per_class": self.n_train,
            "n_validation_per_class": self.n_validation,
        }


def _network(d: int, hidden: tuple[int, ...]) -> nn.Module:
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(d, width), nn.LeakyReLU()]
        d = width
    layers.append(nn.Linear(d, 1))
    return nn.Sequential(*layers)


def hanley_mcneil_error(auc: float, n_pos: int, n_neg: int) -> float:
    """Standard error of an AUC (Hanley & McNeil 1982) for n_pos positives, n_neg negatives."""
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    var = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc * auc) + (n_neg - 1) * (q2 - auc * auc)) / (
        n_pos * n_neg
    )
    return math.sqrt(max(var, 0.0))


def _check(x: np.ndarray, name: str) -> np.ndarray:
    """(N, d) float64 inputs; a 1-D array is one feature. Validation as for every metric."""
    x = np.asarray(x)
    return as_2d(x[:, None] if x.ndim == 1 else x, name)


def classifier_test(
    reference: np.ndarray,
    generated: np.ndarray,
    preset: str | ClassifierPreset = "fast",
    ref_conditions: np.ndarray | None = None,
    gen_conditions: np.ndarray | None = None,
    split: tuple[int, int, int] | None = None,
    repeats: int = 1,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = False,
    blocks: tuple[slice, ...] = (),
) -> ClassifierResult:
    """Run the DNN classifier test of reference (label 1) vs generated (label 0).

    Args:
        reference, generated: ``(N, d)`` inputs (e.g. ``calo.features.classifier_inputs``).
        preset: ``fast``, ``challenge`` or a :class:`ClassifierPreset`.
        ref_conditions, gen_conditions: optional ``(N, c)`` condition columns appended to the
            inputs (conditional generators are then judged at matching conditions).
        split: per-class (train, test, validation) counts; default 60/20/20 % of the smaller class.
        repeats: independent trainings with redrawn splits; > 1 reports mean +- std.
        blocks: column ranges that hold one quantity in one unit (e.g. voxel energy fractions,
            ``calo.features.classifier_blocks``); a preset with ``block_rms`` rescales each to
            that RMS over its training-split entries (and standardises only the columns outside
            them). Ignored by presets without it.
    """
    if isinstance(preset, str) and preset not in PRESETS:
        raise InputError(f"unknown classifier preset {preset!r}; expected one of {sorted(PRESETS)}")
    cfg = PRESETS[preset] if isinstance(preset, str) else preset
    ref, gen = _check(reference, "reference"), _check(generated, "generated")
    if (ref_conditions is None) != (gen_conditions is None):
        raise InputError("give conditions for both samples or for neither")
    if ref_conditions is not None:
        ref = np.hstack([ref, _check(ref_conditions, "reference conditions")])
        gen = np.hstack([gen, _check(gen_conditions, "generated conditions")])
    if ref.shape[1] != gen.shape[1]:
        raise InputError(f"reference has {ref.shape[1]} inputs, generated {gen.shape[1]}")
    n = min(len(ref), len(gen))
    if split is None:
        n_train, n_test = int(0.6 * n), int(0.2 * n)
        split = (n_train, n_test, n - n_train - n_test)
    if min(split) < 10 or sum(split) > n:
        raise InputError(f"split {split} does not fit {n} samples per class (min 10 per part)")
    d = ref.shape[1]
    for block in blocks:
        if not isinstance(block, slice) or len(range(*block.indices(d))) == 0:
            raise InputError(f"column block {block!r} is not a non-empty slice of {d} inputs")
    results = [
        _one_run(ref, gen, cfg, split, seed + r, torch.device(device), progress, tuple(blocks))
        for r in range(repeats)
    ]
    if repeats == 1:
        return results[0]
    aucs = np.array([r.auc.value for r in results])
    accs = np.array([r.accuracy.value for r in results])
    jsds = np.array([r.jsd.value for r in results])
    return ClassifierResult(
        Value(float(aucs.mean()), float(aucs.std(ddof=1))),
        Value(float(accs.mean()), float(accs.std(ddof=1))),
        Value(float(jsds.mean()), float(jsds.std(ddof=1))),
        int(np.median([r.best_epoch for r in results])),
        split[0],
        split[2],
    )


def _one_run(
    ref: np.ndarray,
    gen: np.ndarray,
    cfg: ClassifierPreset,
    split: tuple[int, int, int],
    seed: int,
    device: torch.device,
    progress: bool,
    blocks: tuple[slice, ...] = (),
) -> ClassifierResult:
    rng = np.random.default_rng(seed)
    n_train, n_test, n_val = split
    parts = []
    for data, label in ((ref, 1.0), (gen, 0.0)):
        idx = rng.permutation(len(data))
        bounds = np.cumsum([0, n_train, n_test, n_val])
        parts.append(
            [
                (data[idx[a:b]], np.full(b - a, label))
                for a, b in zip(bounds[:-1], bounds[1:], strict=True)
            ]
        )
    train, test, val = (
        [np.concatenate(z) for z in zip(*(p[k] for p in parts), strict=True)] for k in range(3)
    )
    in_block = np.zeros(ref.shape[1], dtype=bool)
    for block in blocks if cfg.block_rms is not None else ():
        in_block[block] = True
        rms = float(np.sqrt(np.mean(np.square(train[0][:, block]))))
        if rms > 0:
            for part in (train, test, val):
                part[0][:, block] *= cfg.block_rms / rms
    if cfg.standardise and not in_block.all():
        free = ~in_block
        mean, std = train[0][:, free].mean(0), train[0][:, free].std(0)
        std[std == 0] = 1.0
        for part in (train, test, val):
            part[0][:, free] = (part[0][:, free] - mean) / std

    def tensor(a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(a, dtype=cfg.dtype, device=device)

    xt, yt = tensor(train[0]), tensor(train[1])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = _network(xt.shape[1], cfg.hidden).to(device=device, dtype=cfg.dtype)
        optimizer = torch.optim.Adam(net.parameters(), lr=cfg.lr)
        loss_fn = nn.BCEWithLogitsLoss()
        best_acc, best_epoch, best_state = -1.0, 0, None
        gen_t = torch.Generator().manual_seed(seed)
        for epoch in tqdm(range(cfg.epochs), disable=not progress, desc="classifier", leave=False):
            net.train()
            order = torch.randperm(len(xt), generator=gen_t).to(device)
            for start in range(0, len(xt), cfg.batch_size):
                batch = order[start : start + cfg.batch_size]
                optimizer.zero_grad(set_to_none=True)
                loss_fn(net(xt[batch]).squeeze(1), yt[batch]).backward()
                optimizer.step()
            acc = float(((_predict(net, test[0], cfg, device) > 0.5) == (test[1] > 0.5)).mean())
            if acc > best_acc:
                best_acc, best_epoch = acc, epoch + 1
                best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            if acc >= 1.0:
                break
    assert best_state is not None
    net.load_state_dict(best_state)
    iso = IsotonicRegression(y_min=1e-6, y_max=1 - 1e-6, out_of_bounds="clip")
    iso.fit(_predict(net, test[0], cfg, device), test[1])
    p = np.clip(iso.predict(_predict(net, val[0], cfg, device)), 1e-6, 1 - 1e-6)
    y = val[1]
    auc = float(roc_auc_score(y, p))
    accuracy = float(((p > 0.5) == (y > 0.5)).mean())
    bce = float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    jsd = (math.log(2) - bce) / math.log(2)
    n_half = n_val
    return ClassifierResult(
        Value(auc, hanley_mcneil_error(auc, n_half, n_half)),
        Value(accuracy, math.sqrt(accuracy * (1 - accuracy) / (2 * n_half))),
        Value(jsd, None),
        best_epoch,
        n_train,
        n_val,
    )


@torch.no_grad()
def _predict(
    net: nn.Module, x: np.ndarray, cfg: ClassifierPreset, device: torch.device
) -> np.ndarray:
    net.eval()
    out = [
        torch.sigmoid(net(torch.as_tensor(x[i : i + 10000], dtype=cfg.dtype, device=device)))
        .squeeze(1)
        .double()
        .cpu()
        .numpy()
        for i in range(0, len(x), 10000)
    ]
    return np.concatenate(out)
