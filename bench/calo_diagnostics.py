"""Where does the classifier tell a generated calorimeter sample from its reference?

`hepflows evaluate calo` gives one low-level and one high-level AUC. This script splits them up,
with the same `fast` classifier (``metrics.classifier``) on the same thresholded inputs:

1. ``groups``: the high-level features one kind at a time (layer energies, centroids, widths,
   sparsity, radial moments) and one layer at a time, each with log10 E_inc;
2. ``layers``: the low-level input of one layer at a time, [log10 E_inc, that layer's E_v / E_inc];
3. ``energy``: the full low-level input in incident-energy bins of equal reference counts;
4. ``occupancy`` (no classifier): deposits per shower in each layer (mean, sd, 99th percentile)
   and the share of showers with at least 90% of a layer's voxels lit, the signature of a flow II
   sample that left a layer in the noise band and was renormalised (docs/caloflow.md, session 16);
5. ``smear`` (needs ``--ref2``, an independent sample of the reference's simulator): the
   reference against reference-2 with every voxel multiplied by exp(sigma * N(0, 1)) and each
   layer rescaled to its own energy, i.e. only the voxel-to-voxel texture changed. It puts a
   scale on the low-level AUC: which relative voxel jitter reads as high as the model does.

Smaller samples make a weaker classifier, so AUCs from parts of the data (``energy``) are lower
bounds that read low against the full-sample AUC.

    python bench/calo_diagnostics.py REF.h5 GEN.h5 [GEN2.h5 ...] --ref2 REF2.h5 --seeds 0,1
    python bench/calo_diagnostics.py REF.h5 GEN.h5 --only groups,layers --max-showers 20000

Prints one line per classifier and writes them as JSON lines with ``--json FILE``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from hepflows.calo import features as F
from hepflows.calo.formats import read_showers
from hepflows.calo.geometry import Geometry
from hepflows.io import InputError
from hepflows.metrics.classifier import classifier_test

SECTIONS = ("occupancy", "groups", "layers", "energy", "smear")
Sample = tuple[np.ndarray, np.ndarray]  # incident energies (N,) MeV, thresholded showers MeV


def load(path: str, geometry: Geometry | None, max_showers: int | None) -> tuple[Sample, Geometry]:
    """A shower file, thresholded as ``hepflows evaluate calo`` does."""
    incident, showers, geo = read_showers(path, geometry, max_showers)
    return (incident, F.apply_threshold(showers.astype(np.float64), geo.threshold_mev)), geo


def feature_groups(geo: Geometry) -> dict[str, list[str]]:
    """High-level feature names (``features.high_level_features``) by kind and by layer."""
    relevant = [layer.id for layer in geo.relevant_layers]
    binned = [layer.id for layer in F.binned_layers(geo)]
    groups = {"energies": [f"E_{i}" for i in relevant]}
    for kind in ("x_mean", "y_mean", "x_width", "y_width"):
        if binned:
            groups[kind] = [f"{kind}_{i}" for i in binned]
    for kind in ("sparsity", "r_mean", "r_width"):
        groups[kind] = [f"{kind}_{i}" for i in relevant]
    for i in relevant:
        per_layer = [f"{kind}_{i}" for kind in ("E", "r_mean", "r_width", "sparsity")]
        if i in binned:
            per_layer += [f"{kind}_{i}" for kind in ("x_mean", "y_mean", "x_width", "y_width")]
        groups[f"layer {i}"] = per_layer
    return groups


def group_inputs(
    incident: np.ndarray, features: dict[str, np.ndarray], names: list[str]
) -> np.ndarray:
    """[log10 E_inc, the named high-level features], energies as log10(E + 1e-8)."""
    columns = [np.log10(features[n] + 1e-8) if n.startswith("E_") else features[n] for n in names]
    return np.column_stack([np.log10(incident), *columns])


def smeared(geo: Geometry, sample: Sample, sigma: float, seed: int) -> Sample:
    """Voxels times exp(sigma N(0,1)), each layer rescaled to its unsmeared energy."""
    incident, showers = sample
    rng = np.random.default_rng(seed)
    out = showers * np.exp(sigma * rng.standard_normal(showers.shape))
    for layer in geo.relevant_layers:
        sl = slice(layer.start, layer.stop)
        total = out[:, sl].sum(axis=1)
        out[:, sl] *= np.divide(
            showers[:, sl].sum(axis=1), total, out=np.zeros_like(total), where=total > 0
        )[:, None]
    return incident, out


def occupancy(geo: Geometry, sample: Sample) -> list[dict[str, float]]:
    """Per relevant layer: deposits per shower (mean, sd, 99th percentile) and the share of
    showers with at least 90% of the layer's voxels lit."""
    rows = []
    for layer in geo.relevant_layers:
        hits = np.count_nonzero(sample[1][:, layer.start : layer.stop] > 0, axis=1)
        rows.append({"layer": layer.id, "mean": float(hits.mean()), "sd": float(hits.std()),
                     "q99": float(np.quantile(hits, 0.99)),
                     "mostly_lit": float(np.mean(hits >= 0.9 * layer.n_voxels))})  # fmt: skip
    return rows


def classifiers(
    geo: Geometry, ref: Sample, gen: Sample, sections: list[str], bins: int
) -> Iterator[tuple[str, str, np.ndarray, np.ndarray, tuple[slice, ...]]]:
    """(section, label, reference inputs, generated inputs, voxel blocks) for every classifier."""
    if "groups" in sections:
        fr, fg = (F.high_level_features(geo, *sample) for sample in (ref, gen))  # once per sample
        for label, names in feature_groups(geo).items():
            xr, xg = group_inputs(ref[0], fr, names), group_inputs(gen[0], fg, names)
            yield "groups", label, xr, xg, ()
    if not {"layers", "energy"} & set(sections):
        return
    low = F.classifier_blocks(geo, "low")
    xr, xg = (F.classifier_inputs(geo, *sample, "low") for sample in (ref, gen))
    if "layers" in sections:  # [log10 E_inc, the layer's E_v / E_inc]: columns of the low input
        for layer in geo.relevant_layers:
            cols = np.r_[0, 1 + layer.start : 1 + layer.stop]
            yield (
                "layers",
                f"layer {layer.id}",
                xr[:, cols],
                xg[:, cols],
                (slice(1, 1 + layer.n_voxels),),
            )
    if "energy" in sections:
        shown = np.quantile(ref[0], np.linspace(0.0, 1.0, bins + 1))
        edges = np.concatenate([[-np.inf], shown[1:-1], [np.inf]])
        for k in range(bins):
            in_r = (ref[0] >= edges[k]) & (ref[0] < edges[k + 1])
            in_g = (gen[0] >= edges[k]) & (gen[0] < edges[k + 1])
            label = f"E_inc {shown[k] / 1e3:.3g}-{shown[k + 1] / 1e3:.3g} GeV"
            yield "energy", label, xr[in_r], xg[in_g], low


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("reference")
    parser.add_argument("generated", nargs="*", help="generated files (none: only --ref2's smear)")
    parser.add_argument("--ref2", help="an independent reference sample, for the smear section")
    parser.add_argument("--only", default=",".join(SECTIONS), help="sections, comma-separated")
    parser.add_argument("--seeds", default="0", help="classifier seeds, comma-separated")
    parser.add_argument("--smear", default="0,0.02,0.05,0.2", help="relative voxel jitters")
    parser.add_argument("--energy-bins", type=int, default=4)
    parser.add_argument("--max-showers", type=int, help="use at most this many of each file")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", help="also write one JSON line per classifier here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        sections = [s.strip() for s in args.only.split(",") if s.strip()]
        unknown = sorted(set(sections) - set(SECTIONS))
        if unknown:
            raise InputError(f"--only: unknown sections {unknown} (known: {', '.join(SECTIONS)})")
        seeds = [int(s) for s in args.seeds.split(",")]
        sigmas = [float(s) for s in args.smear.split(",")]
        if args.energy_bins < 1:
            raise InputError(f"--energy-bins must be >= 1, got {args.energy_bins}")
        ref, geo = load(args.reference, None, args.max_showers)
        samples = [(path, load(path, geo, args.max_showers)[0], False) for path in args.generated]
        if "smear" in sections and args.ref2:
            ref2 = load(args.ref2, geo, args.max_showers)[0]
            samples += [
                (f"{args.ref2} x exp({s:g} N)", smeared(geo, ref2, s, 1), True) for s in sigmas
            ]
        elif "smear" in sections:
            print("note: no --ref2, so no smear section", file=sys.stderr)
    except (InputError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rows = []
    if "occupancy" in sections:
        for name, sample in [(args.reference, ref)] + [
            (n, s) for n, s, smear in samples if not smear
        ]:
            for r in occupancy(geo, sample):
                rows.append({"generated": name, "section": "occupancy", **r})
                print(f"{name}  occupancy layer {r['layer']}: deposits {r['mean']:.2f} +- "
                      f"{r['sd']:.2f}, 99% {r['q99']:.0f}; >= 90% of voxels lit "
                      f"{100 * r['mostly_lit']:.2f}%", flush=True)  # fmt: skip
    for name, sample, is_smear in samples:
        if is_smear:
            xr, xg = (F.classifier_inputs(geo, *s, "low") for s in (ref, sample))
            runs = iter([("smear", "low-level", xr, xg, F.classifier_blocks(geo, "low"))])
        else:
            runs = classifiers(geo, ref, sample, sections, args.energy_bins)
        for section, label, xr, xg, blocks in runs:
            t0 = time.perf_counter()
            aucs = [
                classifier_test(xr, xg, "fast", seed=seed, blocks=blocks).auc.value
                for seed in seeds
            ]
            row = {"generated": name, "section": section, "inputs": label, "n_ref": len(xr),
                   "n_gen": len(xg), "auc": [round(a, 4) for a in aucs],
                   "seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip
            rows.append(row)
            shown = " / ".join(f"{a:.3f}" for a in aucs)
            print(f"{name}  {section:7s} {label:28s} AUC {shown}  ({len(xr)} vs {len(xg)})",
                  flush=True)  # fmt: skip
    if args.json:
        out = Path(args.json)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
        tmp.replace(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
