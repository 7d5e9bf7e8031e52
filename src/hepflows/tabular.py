"""Columnar data (HDF5, Parquet, ROOT) and its evaluation: ``hepflows evaluate table``.

Files:

* HDF5 (``.h5``, ``.hdf5``): one-dimensional datasets in the file's root (or in the group given
  as ``path.h5:group``), each a column; or a single compound (structured) dataset.
* Parquet (``.parquet``, ``.pq``): via pyarrow.
* ROOT (``.root``): the branches of the file's first TTree or RNTuple (or ``path.root:name``),
  via uproot.

Evaluation (metrics.md sections 1, 8-12) of the chosen target columns: per column the
Wasserstein-1 distance, the Kolmogorov-Smirnov statistic and p-value, and the separation power
(100 equal bins over the reference's 0.1-99.9 percentile range); over all targets the Frechet
Gaussian distance (FGD, raw targets, no extrapolation), covariance matching and a C2ST on
[targets || conditions]; and, when tagger columns and a flavour column are named, the area between
the reference's and the generated sample's ROC curves (ABC) per tagger. Light jets are those with
|flavour| not in {4, 5}; b-taggers use |flavour| == 5 as signal, c-taggers |flavour| == 4.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from hepflows.io import InputError
from hepflows.metrics import (
    area_between_rocs,
    c2st,
    covariance_matching,
    frechet_distance,
    ks_test,
    linear_edges,
    wasserstein_1d,
)
from hepflows.metrics.comparison import Histogram, compare


def _split_path(path: str | Path) -> tuple[Path, str | None]:
    text = str(path)
    head, sep, tail = text.rpartition(":")
    if sep and Path(head).suffix.lower() in (".h5", ".hdf5", ".root") and "/" not in tail[:1]:
        return Path(head), tail or None
    return Path(text), None


def read_columns(path: str | Path, columns: list[str] | None = None) -> dict[str, np.ndarray]:
    """Read columns as float64 arrays; ``columns`` None reads every numeric column."""
    file, inner = _split_path(path)
    if not file.is_file():
        raise InputError(f"file not found: {file}")
    suffix = file.suffix.lower()
    try:
        if suffix in (".h5", ".hdf5"):
            data = _read_hdf5(file, inner)
        elif suffix in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            present = set(pq.read_schema(file).names)
            wanted = None if columns is None else [c for c in columns if c in present]
            table = pq.read_table(file, columns=wanted)
            data = {name: table.column(name).to_numpy() for name in table.column_names}
        elif suffix == ".root":
            data = _read_root(file, inner, columns)
        else:
            raise InputError(
                f"{file}: unknown table format {suffix!r} (use .h5, .parquet or .root)"
            )
    except InputError:
        raise
    except Exception as exc:  # corrupt files surface as many library-specific exceptions
        raise InputError(
            f"{file} could not be read as a table ({type(exc).__name__}: {exc})"
        ) from None
    numeric = {k: np.asarray(v, dtype=np.float64) for k, v in data.items()
               if np.asarray(v).dtype.kind in "fiub" and np.asarray(v).ndim == 1}  # fmt: skip
    if columns is None:
        if not numeric:
            raise InputError(f"{file}: no numeric one-dimensional columns found")
        return numeric
    missing = [c for c in columns if c not in numeric]
    if missing:
        raise InputError(f"{file}: missing column(s) {missing}; found {sorted(numeric)[:20]}")
    return {c: numeric[c] for c in columns}


def _read_hdf5(file: Path, group: str | None) -> dict[str, np.ndarray]:
    with h5py.File(file, "r") as h5:
        node = h5[group] if group else h5
        datasets = {k: v for k, v in node.items() if isinstance(v, h5py.Dataset)}
        if len(datasets) == 1:
            (ds,) = datasets.values()
            if ds.dtype.names:  # one compound dataset: its fields are the columns
                arr = ds[()]
                return {name: arr[name] for name in ds.dtype.names}
        return {k: v[()] for k, v in datasets.items() if v.ndim == 1}


def _read_root(file: Path, tree: str | None, columns: list[str] | None) -> dict[str, np.ndarray]:
    import uproot

    with uproot.open(file) as f:
        if tree is None:
            trees = [k for k, c in f.classnames().items() if c in ("TTree", "ROOT::RNTuple")]
            if not trees:
                raise InputError(f"{file}: no TTree or RNTuple found")
            tree = trees[0].split(";")[0]
        node = f[tree]
        names = set(node.keys())
        wanted = None if columns is None else [c for c in columns if c in names]
        return {k: np.asarray(v) for k, v in node.arrays(wanted, library="np").items()}


@dataclasses.dataclass
class TableEvaluation:
    """Per-column and global metrics of :func:`evaluate_table`."""

    columns: list[str]
    per_column: dict[str, dict[str, float]]
    global_metrics: dict[str, Any]
    histograms: list[Histogram]

    def as_dict(self) -> dict[str, Any]:
        return {"columns": self.per_column, **self.global_metrics}


def evaluate_table(
    reference: str | Path,
    generated: str | Path,
    columns: list[str] | None = None,
    conditions: list[str] | None = None,
    taggers: dict[str, str] | None = None,
    flavour: str | None = None,
    seed: int = 0,
) -> TableEvaluation:
    """Compare the target ``columns`` of two tables (see the module docstring).

    Args:
        columns: target columns (default: every numeric column of the reference except the
            conditions, the flavour and the taggers).
        conditions: condition columns, appended to the C2ST inputs.
        taggers: ``{"b": column, "c": column}`` tagger scores for the ABC.
        flavour: the true-flavour column (needed with ``taggers``).
    """
    conditions = list(conditions or [])
    taggers = dict(taggers or {})
    if taggers and flavour is None:
        raise InputError("ABC needs the flavour column (--flavour) as well as the tagger columns")
    extra = conditions + list(taggers.values()) + ([flavour] if flavour else [])
    ref_all = read_columns(
        reference, None if columns is None else list(dict.fromkeys(columns + extra))
    )
    if columns is None:
        columns = [c for c in ref_all if c not in extra]
    if not columns:
        raise InputError("no target columns to compare")
    gen_all = read_columns(generated, list(dict.fromkeys(columns + extra)))
    for name, arr in list(ref_all.items()) + list(gen_all.items()):
        if not np.all(np.isfinite(arr)):
            raise InputError(f"column {name!r} contains NaN or Inf values")
    ref = np.column_stack([ref_all[c] for c in columns])
    gen = np.column_stack([gen_all[c] for c in columns])

    per_column, histograms = {}, []
    for i, name in enumerate(columns):
        lo, hi = np.percentile(ref[:, i], [0.1, 99.9])
        if hi <= lo:
            lo, hi = lo - 0.5, hi + 0.5
        h = compare(name, ref[:, i], gen[:, i], linear_edges(lo, hi, 100))
        histograms.append(h)
        d, p = ks_test(ref[:, i], gen[:, i])
        per_column[name] = {"w1": wasserstein_1d(ref[:, i], gen[:, i]), "ks_statistic": d,
                            "ks_pvalue": p, "separation_power": h.separation}  # fmt: skip
    cond_ref = np.column_stack([ref_all[c] for c in conditions]) if conditions else None
    cond_gen = np.column_stack([gen_all[c] for c in conditions]) if conditions else None
    result = c2st(ref, gen, cond_ref, cond_gen, seed=seed)
    glob: dict[str, Any] = {
        "fgd": frechet_distance(ref, gen),
        "covariance_matching": covariance_matching(ref, gen),
        "c2st_misclassification": result.as_dict(),
    }
    if taggers:
        assert flavour is not None
        glob["abc"] = {}
        for kind, column in taggers.items():
            code = {"b": 5, "c": 4}.get(kind)
            if code is None:
                raise InputError(f"tagger kind must be b or c, got {kind!r}")
            arrays = []
            for data in (ref_all, gen_all):
                flav = np.abs(data[flavour])
                keep = (flav == code) | ~np.isin(flav, (4, 5))
                arrays += [data[column][keep], (flav[keep] == code).astype(int)]
            glob["abc"][kind] = area_between_rocs(*arrays)
    return TableEvaluation(columns, per_column, glob, histograms)
