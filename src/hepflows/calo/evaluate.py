"""``hepflows evaluate calo``: every fidelity metric of a generated shower file vs a reference.

Steps (metrics.md): both samples thresholded at the geometry's evaluation threshold; the
CaloChallenge high-level features histogrammed with the official binnings and compared by
separation power (plus the voxel-energy spectrum and, for dataset 1, E_tot/E_inc per incident
energy window); the DNN classifier test on low-level and high-level inputs; FPD and KPD on the
high-level features with the CaloChallenge settings (N_min 10,000, KPD batches of 10,000, capped at
the sample size). Files with different geometries, or whose incident energies do not follow the
same distribution, are refused: every histogram would be distorted.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from hepflows.calo import features as F
from hepflows.calo.formats import open_showers, read_showers
from hepflows.calo.geometry import Geometry
from hepflows.io import InputError
from hepflows.metrics import Value, fpd, kpd, prdc
from hepflows.metrics.classifier import ClassifierResult, classifier_test
from hepflows.metrics.comparison import Histogram, compare


@dataclasses.dataclass
class CaloEvaluation:
    """All results of :func:`evaluate_calo` (energies in MeV)."""

    geometry: Geometry
    n_showers: int
    histograms: list[Histogram]
    classifiers: dict[str, ClassifierResult]
    fpd: Value
    kpd: Value
    prdc: dict[str, float]
    mean_reference: np.ndarray
    mean_generated: np.ndarray
    notes: list[str]

    def headline(self) -> dict[str, Any]:
        seps = [h.separation for h in self.histograms]
        worst = max(self.histograms, key=lambda h: h.separation)
        out: dict[str, Any] = {f"auc_{k}": v.auc.as_dict() for k, v in self.classifiers.items()}
        out.update(
            fpd_x1e3=(
                1e3 * self.fpd.value,
                None if self.fpd.error is None else 1e3 * self.fpd.error,
            ),
            kpd_x1e3=(
                1e3 * self.kpd.value,
                None if self.kpd.error is None else 1e3 * self.kpd.error,
            ),
            mean_separation_power=float(np.mean(seps)),
            worst_separation_power={"feature": worst.name, "value": worst.separation},
        )
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "geometry": self.geometry.name,
            "showers_per_sample": self.n_showers,
            "headline": self.headline(),
            "classifier": {k: v.as_dict() for k, v in self.classifiers.items()},
            "fpd": self.fpd.as_dict(),
            "kpd": self.kpd.as_dict(),
            "prdc": self.prdc,
            "separation_power": {h.name: h.separation for h in self.histograms},
            "notes": self.notes,
        }


def evaluate_calo(
    reference_path: str | Path,
    generated_path: str | Path,
    geometry: str | None = None,
    preset: str = "fast",
    classifier_modes: tuple[str, ...] = ("low", "high"),
    max_showers: int | None = None,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = False,
) -> CaloEvaluation:
    """Compare a generated shower file with a reference one; see the module docstring."""
    ref_info = open_showers(reference_path, geometry)
    gen_info = open_showers(generated_path, geometry)
    if ref_info.geometry.name != gen_info.geometry.name:
        raise InputError(
            f"geometries differ: {reference_path} is {ref_info.geometry.name}, "
            f"{generated_path} is {gen_info.geometry.name}"
        )
    g = ref_info.geometry
    e_ref, s_ref, _ = read_showers(reference_path, g, max_showers)
    e_gen, s_gen, _ = read_showers(generated_path, g, max_showers)
    notes = []
    n = min(len(e_ref), len(e_gen))
    if len(e_ref) != len(e_gen):
        notes.append(f"samples truncated to the smaller size, {n} showers each")
        e_ref, s_ref, e_gen, s_gen = e_ref[:n], s_ref[:n], e_gen[:n], s_gen[:n]
    ks = stats.ks_2samp(e_ref, e_gen)
    if ks.pvalue < 1e-3 and ks.statistic > 0.02:
        raise InputError(
            f"incident-energy distributions differ (KS D = {ks.statistic:.3f}, "
            f"p = {ks.pvalue:.1e}): generate with the reference's incident energies"
        )
    s_ref = F.apply_threshold(s_ref, g.threshold_mev)
    s_gen = F.apply_threshold(s_gen, g.threshold_mev)

    hl_ref = F.high_level_features(g, e_ref, s_ref)
    hl_gen = F.high_level_features(g, e_gen, s_gen)
    histograms = [
        compare(name, hl_ref[name], hl_gen[name], F.feature_edges(g, name, hl_ref[name]))
        for name in hl_ref
    ]
    gen_windows = {label: mask for label, mask, _ in F.ratio_per_energy_windows(g, e_gen)}
    for label, mask, edges in F.ratio_per_energy_windows(g, e_ref):  # dataset 1 only
        gen_mask = gen_windows[label]
        if mask.any() and gen_mask.any():
            name = f"E_ratio_{label}"
            histograms.append(
                compare(name, hl_ref["E_ratio"][mask], hl_gen["E_ratio"][gen_mask], edges)
            )
    vox_edges = F.voxel_edges(g, s_ref)
    histograms.append(compare("voxel_energy", s_ref[s_ref > 0], s_gen[s_gen > 0], vox_edges))

    classifiers = {}
    for mode in classifier_modes:
        x_ref = F.classifier_inputs(g, e_ref, s_ref, mode)
        x_gen = F.classifier_inputs(g, e_gen, s_gen, mode)
        blocks = F.classifier_blocks(g, mode)
        classifiers[mode] = classifier_test(
            x_ref, x_gen, preset, seed=seed, device=device, progress=progress, blocks=blocks
        )
    f_ref, f_gen = F.fpd_features(g, e_ref, s_ref), F.fpd_features(g, e_gen, s_gen)
    fpd_value = fpd(f_ref, f_gen, n_min=10_000, n_max=50_000, seed=42)
    kpd_value = kpd(f_ref, f_gen, batch_size=10_000, seed=42)
    # PRDC on log10 voxel energies with zeros at 0.1 MeV (metrics.md section 7); the subsample
    # keeps the pairwise-distance work near 2e11 multiply-adds whatever the voxel count.
    n_prdc = int(min(10_000, np.sqrt(2e11 / g.n_voxels)))
    prdc_values = prdc(_log_voxels(s_ref), _log_voxels(s_gen), k=5, max_samples=n_prdc, seed=seed)
    notes.append(f"PRDC on {min(n, n_prdc)} showers per sample (log10 voxel energies)")
    return CaloEvaluation(
        g, n, histograms, classifiers, fpd_value, kpd_value, prdc_values,
        s_ref.mean(0), s_gen.mean(0), notes,
    )  # fmt: skip


def _log_voxels(showers: np.ndarray) -> np.ndarray:
    return np.log10(np.where(showers > 0, showers, 0.1))
