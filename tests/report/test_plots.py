"""The report's plot range (every filled bin, zoom on narrow features) and training-curve axes."""

import numpy as np
import pytest

from hepflows.report.plots import _draw_history, hep_style, occupied_range


def test_occupied_range_covers_every_filled_bin_with_margin() -> None:
    edges = np.linspace(0.0, 100.0, 101)  # the CaloGAN width binning: 100 bins of 1 mm
    rng = np.random.default_rng(0)
    values = rng.normal(14.0, 1.5, size=10_000)  # a layer-0 width: ~15% of the axis
    counts, _ = np.histogram(values, bins=edges)
    low, high = occupied_range(edges, counts, margin_bins=3)
    assert low == values.min() // 1 - 3
    assert high == values.max() // 1 + 1 + 3
    assert high - low < 30.0


def test_occupied_range_is_clipped_to_the_edges_and_full_when_empty() -> None:
    edges = np.linspace(-1.0, 1.0, 11)
    counts = np.zeros(10)
    assert occupied_range(edges, counts) == (-1.0, 1.0)
    counts[0] = counts[-1] = 5
    assert occupied_range(edges, counts) == (-1.0, 1.0)
    counts[:] = 0
    counts[1] = 1
    assert occupied_range(edges, counts, margin_bins=3) == pytest.approx((-1.0, 0.0))  # bins 0..4


@pytest.mark.parametrize("epochs", [1, 2, 7, 30])
def test_training_curves_tick_whole_epochs_only(epochs: int) -> None:
    import matplotlib.pyplot as plt

    hep_style()
    fig, ax = plt.subplots()
    history = [
        {"epoch": e, "train_loss": 1.0 / e, "val_loss": 1.1 / e} for e in range(1, epochs + 1)
    ]
    _draw_history(ax, history, "", "training", "validation", "NLL")
    fig.canvas.draw()
    low, high = ax.get_xlim()
    ticks = [t for t in ax.get_xticks() if low <= t <= high]
    assert ticks and all(float(t).is_integer() for t in ticks)
    assert low < 1 and high > epochs
    plt.close(fig)
