"""Figure helpers shared by every report: HEP style, atomic PNG writing, training curves."""

from __future__ import annotations

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


def plot_training_history(
    history: Sequence[dict[str, float]], path: str | os.PathLike[str], title: str = ""
) -> Path:
    """Training and validation loss (nats per sample) against epoch, best epoch marked."""
    hep_style()
    epochs = [h["epoch"] for h in history]
    train = [h["train_loss"] for h in history]
    val = [h["val_loss"] for h in history]
    fig, ax = plt.subplots(figsize=(8, 6))
    ax.plot(epochs, train, "o-", ms=3, label="training")
    ax.plot(epochs, val, "s-", ms=3, label="validation")
    best = min(range(len(val)), key=val.__getitem__)
    ax.axvline(epochs[best], color="grey", ls=":", label=f"best epoch {epochs[best]}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("negative log-likelihood [nats]")
    if title:
        ax.set_title(title, fontsize=16)
    ax.legend(fontsize=14)
    return save_figure(fig, path)
