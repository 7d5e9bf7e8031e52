"""Write an evaluation as files: metrics.json, one PNG per compared histogram, average shower
images, and report.html that shows the plots under a table of the headline numbers."""

from __future__ import annotations

import html
import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from hepflows.calo.evaluate import CaloEvaluation
from hepflows.io import atomic_path
from hepflows.metrics.comparison import Histogram
from hepflows.report.calo_plots import plot_average_images
from hepflows.report.plots import hep_style, save_figure


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


def _fmt(value: float, error: float | None) -> str:
    return f"{value:.4g}" if error is None else f"{value:.4g} &plusmn; {error:.2g}"


def write_calo_report(result: CaloEvaluation, out_dir: str | Path, title: str) -> Path:
    """Write metrics.json, plots and report.html into ``out_dir``; returns the HTML path."""
    out = Path(out_dir)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "metrics.json") as tmp:
        tmp.write_text(json.dumps(result.as_dict(), indent=2) + "\n")
    images = []
    for h in result.histograms:
        images.append(plot_comparison(h, out / "plots" / f"{h.name}.png").relative_to(out))
    g = result.geometry
    avg = [
        plot_average_images(g, result.mean_reference, out / "plots" / "average_reference.png",
                            "average shower: reference"),
        plot_average_images(g, result.mean_generated, out / "plots" / "average_generated.png",
                            "average shower: generated"),
    ]  # fmt: skip
    head = result.headline()
    rows = [
        f"<tr><td>classifier AUC ({k}-level)</td><td>{_fmt(v['value'], v['error'])}</td></tr>"
        for k, v in ((k[4:], head[k]) for k in head if k.startswith("auc_"))
    ]
    rows += [
        f"<tr><td>FPD &times; 10<sup>3</sup></td><td>{_fmt(*head['fpd_x1e3'])}</td></tr>",
        f"<tr><td>KPD &times; 10<sup>3</sup></td><td>{_fmt(*head['kpd_x1e3'])}</td></tr>",
        "<tr><td>precision / recall / density / coverage</td><td>"
        + " / ".join(
            f"{result.prdc[k]:.3f}" for k in ("precision", "recall", "density", "coverage")
        )
        + "</td></tr>",
        f"<tr><td>mean separation power ({len(result.histograms)} histograms)</td>"
        f"<td>{head['mean_separation_power']:.4f}</td></tr>",
        f"<tr><td>worst separation power</td><td>{head['worst_separation_power']['value']:.4f} "
        f"({html.escape(head['worst_separation_power']['feature'])})</td></tr>",
    ]
    worst_first = sorted(
        zip(result.histograms, images, strict=True), key=lambda p: -p[0].separation
    )
    figures = "\n".join(
        f'<figure><img src="{img}" loading="lazy"><figcaption>{html.escape(h.name)}: '
        f"{h.separation:.4f}</figcaption></figure>"
        for h, img in worst_first
    )
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in result.notes)
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; }} td {{ border: 1px solid #ccc; padding: 4px 10px; }}
.grid {{ display: flex; flex-wrap: wrap; gap: 8px; }}
figure {{ margin: 0; width: 360px; }} figure img {{ width: 100%; }}
.pair img {{ width: 49%; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p>Geometry {html.escape(g.name)}, {result.n_showers} showers per sample, voxels below
{g.threshold_mev:.4g} MeV set to 0 in both samples. AUC 0.5 and separation power 0 are ideal.</p>
<table>{"".join(rows)}</table>
<ul>{notes}</ul>
<h2>Average showers</h2>
<div class="pair"><img src="{avg[0].relative_to(out)}"><img src="{avg[1].relative_to(out)}"></div>
<h2>Feature distributions (worst separation power first)</h2>
<div class="grid">
{figures}
</div>
</body></html>
"""
    with atomic_path(out / "report.html") as tmp:
        tmp.write_text(page)
    return out / "report.html"
