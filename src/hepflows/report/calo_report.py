"""Write an evaluation as files: metrics.json, one PNG per compared histogram, average shower
images, and report.html that shows the plots under a table of the headline numbers."""

from __future__ import annotations

import html
import json
from pathlib import Path

from hepflows.calo.evaluate import CaloEvaluation
from hepflows.io import atomic_path
from hepflows.report.calo_plots import plot_average_images
from hepflows.report.plots import plot_comparison


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
