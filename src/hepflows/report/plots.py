"""Figure helpers shared by every report: HEP style, atomic PNG writing, training curves, and the
reference-vs-generated histogram comparison (calorimeter and tabular reports)."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display needed; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402
import mplhep  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from hepflows.io import atomic_path  # noqa: E402
from hepflows.metrics.comparison import Histogram  # noqa: E402


def hep_style() -> None:
    """Use the CMS-like mplhep style (ticks inside, large labels) for all following figures."""
    plt.style.use(mplhep.style.CMS)


def save_figure(fig: plt.Figure, path: str | os.PathLike[str], dpi: int = 110) -> Path:
    """Write ``fig`` as PNG atomically and close it; returns the path."""
    out = Path(path)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return out


def _draw_history(
    ax: plt.Axes,
    history: Sequence[dict[str, float]],
    title: str,
    train_label: str,
    val_label: str,
    ylabel: str,
) -> None:
    epochs = [h["epoch"] for h in history]
    train = [h["train_loss"] for h in history]
    val = [h["val_loss"] for h in history]
    ax.plot(epochs, train, "o-", ms=3, label=train_label)
    ax.plot(epochs, val, "s-", ms=3, label=val_label)
    if val:
        best = min(range(len(val)), key=val.__getitem__)
        ax.axvline(epochs[best], color="grey", ls=":", label=f"best epoch {epochs[best]}")
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10]))  # no epoch 1.2
    if len(set(epochs)) == 1:  # one epoch: matplotlib would pad it to 0.96 ... 1.04
        ax.set_xlim(epochs[0] - 1, epochs[0] + 1)
    ax.set_ylabel(ylabel)
    later = [v for v in train[1:] + val[1:] if math.isfinite(v)]
    first = [v for v in train[:1] + val[:1] if math.isfinite(v)]
    if later and first:
        # a first epoch far above the rest would flatten the curve: keep the later epochs in view
        low, high = min(later), max(later)
        span = max(high - low, 1e-12)
        if max(first) > high + 2 * span:
            ax.set_ylim(low - 0.1 * span, high + 1.0 * span)
            ax.annotate("epoch 1 above the frame", (0.5, 0.97), xycoords="axes fraction",
                        ha="center", va="top", fontsize=11, color="grey")  # fmt: skip
    if title:
        ax.set_title(title, fontsize=16)
    ax.legend(fontsize=13)


def plot_training_history(
    history: Sequence[dict[str, float]], path: str | os.PathLike[str], title: str = ""
) -> Path:
    """Training and validation loss (nats per sample) against epoch, best epoch marked."""
    hep_style()
    fig, ax = plt.subplots(figsize=(8, 6))
    _draw_history(ax, history, title, "training", "validation", "negative log-likelihood [nats]")
    return save_figure(fig, path)


def plot_training_stages(
    stages: Sequence[tuple[str, Sequence[dict[str, float]], str, str, str]],
    path: str | os.PathLike[str],
) -> Path:
    """One panel per training stage: ``(title, history, train label, val label, y label)``."""
    hep_style()
    fig, axes = plt.subplots(
        1, len(stages), figsize=(7 * len(stages), 6), squeeze=False, layout="constrained"
    )
    for ax, (title, history, train_label, val_label, ylabel) in zip(axes[0], stages, strict=True):
        _draw_history(ax, history, title, train_label, val_label, ylabel)
    return save_figure(fig, path)


def occupied_range(
    edges: np.ndarray, counts: np.ndarray, margin_bins: int = 3
) -> tuple[float, float]:
    """The x range to show: the bins where ``counts`` is non-zero, widened by ``margin_bins`` on
    each side (clipped to the edges). A histogram with no entries shows its full range.

    Binnings can be fixed in advance (the CaloChallenge feature ranges, per dataset and layer), so
    a feature can occupy a tenth of its axis; zooming the plot leaves the bins, and so the
    separation power, unchanged.
    """
    filled = np.flatnonzero(np.asarray(counts) > 0)
    if filled.size == 0:
        return float(edges[0]), float(edges[-1])
    first = max(int(filled[0]) - margin_bins, 0)
    last = min(int(filled[-1]) + 1 + margin_bins, len(edges) - 1)
    return float(edges[first]), float(edges[last])


def plot_comparison(h: Histogram, path: Path) -> Path:
    """Reference vs generated (densities) with separation power in the legend, ratio below; the
    x axis shows the occupied bins (:func:`occupied_range`)."""
    hep_style()
    fig, (ax, rx) = plt.subplots(
        2, 1, figsize=(7, 6.5), sharex=True, gridspec_kw={"height_ratios": [3, 1], "hspace": 0.05}
    )
    ref = h.reference / max(h.reference.sum(), 1)
    gen = h.generated / max(h.generated.sum(), 1)
    ax.stairs(ref, h.edges, lw=2, label="reference")
    ax.stairs(gen, h.edges, lw=2, ls="--", label=f"generated (sep. power {h.separation:.4f})")
    ax.set_ylabel("fraction of entries", fontsize=14)
    ax.legend(fontsize=11, loc="best")
    ax.tick_params(labelsize=11)
    log_x = h.edges[0] > 0 and h.edges[-1] / h.edges[0] > 100
    if log_x:
        ax.set_xscale("log")
    ax.set_xlim(*occupied_range(h.edges, h.reference + h.generated))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(ref > 0, gen / ref, np.nan)
    rx.stairs(ratio, h.edges, lw=1.5, color="k")
    rx.axhline(1.0, color="grey", lw=1, ls=":")
    rx.set_ylim(0.5, 1.5)
    rx.set_ylabel("gen / ref", fontsize=12)
    rx.set_xlabel(h.name, fontsize=14)
    rx.tick_params(labelsize=11)
    return save_figure(fig, path, dpi=80)
