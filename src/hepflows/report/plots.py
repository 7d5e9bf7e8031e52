"""Figure helpers shared by every report: HEP style, atomic PNG writing, training curves."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display needed; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402
import mplhep  # noqa: E402

from hepflows.io import atomic_path  # noqa: E402


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
