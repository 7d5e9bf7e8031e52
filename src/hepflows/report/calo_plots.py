"""Shower plots: average image per layer, longitudinal profile, E_dep / E_inc (HEP style)."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import LogNorm

from hepflows.calo.geometry import Geometry
from hepflows.report.plots import hep_style, save_figure


def plot_average_images(
    geometry: Geometry, mean_shower_mev: np.ndarray, path: Path, title: str = ""
) -> Path:
    """Mean energy per voxel (MeV), one panel per relevant layer, logarithmic colour scale.

    Cylindrical layers are drawn in polar coordinates (alpha, r); CaloGAN layers as x-y images.
    """
    hep_style()
    layers = geometry.relevant_layers
    cols = min(len(layers), 5)
    rows = math.ceil(len(layers) / cols)
    polar = layers[0].cylindrical
    fig = plt.figure(figsize=(4.2 * cols, 4.2 * rows), layout="constrained")
    positive = mean_shower_mev[mean_shower_mev > 0]
    vmin = max(
        float(positive.min()) if positive.size else 1e-3, 1e-4 * float(mean_shower_mev.max())
    )
    norm = LogNorm(vmin=vmin, vmax=max(float(mean_shower_mev.max()), vmin * 10))
    mesh = None
    for k, layer in enumerate(layers):
        ax = fig.add_subplot(rows, cols, k + 1, projection="polar" if polar else None)
        image = np.clip(mean_shower_mev[layer.start : layer.stop].reshape(layer.shape), vmin, None)
        if polar:
            assert layer.r_edges_mm is not None
            alpha = np.linspace(-math.pi, math.pi, layer.n_alpha + 1)
            mesh = ax.pcolormesh(alpha, layer.r_edges_mm, image.T, norm=norm, cmap="viridis")
            ax.set_yticklabels([])
            ax.set_xticklabels([])
            ax.grid(False)
        else:
            assert layer.x_edges_mm is not None and layer.y_edges_mm is not None
            mesh = ax.pcolormesh(
                layer.y_edges_mm, layer.x_edges_mm, image, norm=norm, cmap="viridis"
            )
            ax.set_xlabel("y [mm]", fontsize=12)
            ax.set_ylabel("x [mm]", fontsize=12)
            ax.tick_params(labelsize=10)
        ax.set_title(f"layer {layer.id}", fontsize=13)
    if mesh is not None:
        fig.colorbar(mesh, ax=fig.axes, shrink=0.8, label="mean energy per voxel [MeV]")
    fig.suptitle(title or f"average shower, {geometry.name}", fontsize=16)
    return save_figure(fig, path)


def plot_longitudinal_profile(
    geometry: Geometry, layer_energies_mev: np.ndarray, path: Path, title: str = ""
) -> Path:
    """Mean energy per layer (points; horizontal bars: the layer's depth span in X0; vertical
    bars: 16-84% of showers) against depth, so thick and thin layers are shown as they are."""
    hep_style()
    spans = np.array([layer.depth_x0 for layer in geometry.relevant_layers])
    centre, half = spans.mean(1), 0.5 * (spans[:, 1] - spans[:, 0])
    mean = layer_energies_mev.mean(0)
    lo, hi = np.percentile(layer_energies_mev, [16, 84], axis=0)
    fig, ax = plt.subplots(figsize=(8, 6))
    ax.errorbar(centre, mean, xerr=half, yerr=[np.maximum(mean - lo, 0), np.maximum(hi - mean, 0)],
                fmt="o", ms=4, capsize=2, label="mean, 16-84% of showers")  # fmt: skip
    ax.set_xlabel("layer depth [X$_0$]")
    ax.set_ylabel("energy per layer [MeV]")
    ax.set_yscale("log")
    ax.legend(fontsize=13)
    ax.set_title(title or f"longitudinal profile, {geometry.name}", fontsize=15)
    return save_figure(fig, path)


def plot_energy_ratio(ratio: np.ndarray, path: Path, title: str = "") -> Path:
    """Histogram of E_dep / E_inc, with its mean and standard deviation in the legend."""
    hep_style()
    fig, ax = plt.subplots(figsize=(8, 6))
    hi = max(1.2, float(np.percentile(ratio, 99.9)) * 1.05)
    ax.hist(ratio, bins=np.linspace(0.0, hi, 101), histtype="step", lw=2,
            label=f"mean {ratio.mean():.3f}, sd {ratio.std():.3f}")  # fmt: skip
    ax.set_xlabel("E$_{dep}$ / E$_{inc}$")
    ax.set_ylabel("showers")
    ax.legend(fontsize=13)
    ax.set_title(title or "deposited / incident energy", fontsize=15)
    return save_figure(fig, path)
