"""CaloChallenge high-level shower features, histogram binnings and classifier inputs.

Definitions follow ``metrics.md`` sections 2 (features), 3 (binnings) and 4 (classifier inputs),
which transcribe the official CaloChallenge evaluation (``CaloChallenge/homepage``,
arXiv:2410.21611); the coordinate convention is ``calochallenge-format.md`` sections 2 and 6.

Features, per shower and per layer l with voxel energies E_v and centres (r_v, x_v, y_v):

- ``E_tot`` = sum of all E_v; ``E_ratio`` = E_tot / E_inc;
- ``E_{id}`` = E_l = sum of E_v over the layer (relevant layers: those with voxels);
- ``r_mean_{id}`` = <r>_l = sum r_v E_v / (E_l + 1e-16);
  ``r_width_{id}`` = sqrt(max(0, <r^2>_l - <r>_l^2)), <r^2>_l = sum r_v^2 E_v / (E_l + 1e-16);
- ``x_mean_{id}``, ``y_mean_{id}``, ``x_width_{id}``, ``y_width_{id}``: the same with
  x_v = r_v cos(alpha_v) (the official code's "eta") and y_v = r_v sin(alpha_v) ("phi"), only for
  the layers of :func:`binned_layers`;
- ``sparsity_{id}`` = 1 - (fraction of the layer's voxels with E_v > 0).

Thresholding (every voxel below the dataset threshold set to exactly 0, in both samples, before
anything else) is done by :func:`apply_threshold`; every other function here takes showers that
are already thresholded and does not threshold again.

CaloGAN (not part of the CaloChallenge; choices of this module, not of the spec):

- cells are cartesian; x_v, y_v are the cell centres and r_v = sqrt(x_v^2 + y_v^2); all three
  layers get x/y features;
- the data have no threshold, so the lower edge of every log-spaced binning (layer energies, voxel
  energies) is the smallest positive reference value, but at least
  :data:`CALOGAN_LOG_FLOOR_MEV` = 1e-3 MeV (1 keV, far below any deposit that matters);
- linear ranges (100 bins each), for a 480 x 480 mm window centred on the beam:
  x/y means [-100, 100] mm, x/y widths [0, 100] mm, r mean and r width [0, 240] mm.
"""

from __future__ import annotations

import re

import numpy as np

from hepflows.calo.geometry import Geometry, Layer, get_geometry
from hepflows.io import InputError

__all__ = [
    "CALOGAN_LOG_FLOOR_MEV",
    "CLASSIFIER_MODES",
    "apply_threshold",
    "binned_layers",
    "classifier_blocks",
    "classifier_inputs",
    "feature_edges",
    "fpd_features",
    "high_level_features",
    "ratio_per_energy_windows",
    "voxel_edges",
]

#: Lower edge of the log-spaced binnings for a geometry without a threshold (CaloGAN), in MeV.
CALOGAN_LOG_FLOOR_MEV = 1e-3

#: Modes of :func:`classifier_inputs` (a ``cls-`` prefix, as in metrics.md, is also accepted).
CLASSIFIER_MODES = ("low", "low-normed", "high")

_EPS_MOMENT = 1e-16  # denominators of the moments and of the layer-normalised voxels
_EPS_LOG = 1e-8  # inside log10 of layer and total energies (classifier inputs)

# Linear histogram ranges of metrics.md section 3: (feature kind) -> (low, high), 100 bins each.
_DS23_RANGES = {
    "x_mean": (-30.0, 30.0),
    "y_mean": (-30.0, 30.0),
    "x_width": (0.0, 30.0),
    "y_width": (0.0, 30.0),
    "r_mean": (0.0, 42.0),
    "r_width": (0.0, 20.0),
}
_DS1_OUTER_RANGES = {  # x/y: layers 12, 13; r: layers 12, 13, 14 (Tile)
    "x_mean": (-500.0, 500.0),
    "y_mean": (-500.0, 500.0),
    "x_width": (0.0, 400.0),
    "y_width": (0.0, 400.0),
    "r_mean": (0.0, 1500.0),
    "r_width": (0.0, 1500.0),
}
_DS1_INNER_RANGES = {
    "x_mean": (-100.0, 100.0),
    "y_mean": (-100.0, 100.0),
    "x_width": (0.0, 100.0),
    "y_width": (0.0, 100.0),
    "r_mean": (0.0, 500.0),
    "r_width": (0.0, 500.0),
}
_CALOGAN_RANGES = {  # this module's choice (module docstring)
    "x_mean": (-100.0, 100.0),
    "y_mean": (-100.0, 100.0),
    "x_width": (0.0, 100.0),
    "y_width": (0.0, 100.0),
    "r_mean": (0.0, 240.0),
    "r_width": (0.0, 240.0),
}
# DS1 layers that take the "outer" ranges: x/y features 12, 13 (Tile, alpha-binned); r 12, 13, 14
_DS1_OUTER_XY, _DS1_OUTER_R = {12, 13}, {12, 13, 14}

_FEATURE_NAME = re.compile(r"^(E|r_mean|r_width|sparsity|x_mean|y_mean|x_width|y_width)_(\d+)$")


# -- helpers -------------------------------------------------------------------------------------
def _geometry(geometry: Geometry | str) -> Geometry:
    return get_geometry(geometry) if isinstance(geometry, str) else geometry


def _kind(geometry: Geometry) -> str:
    """'ds1', 'ds23' or 'calogan'; an :class:`InputError` for anything else."""
    if geometry.name.startswith("ds1"):
        return "ds1"
    if geometry.name in ("ds2", "ds3"):
        return "ds23"
    if geometry.file_format == "calogan":
        return "calogan"
    raise InputError(f"no feature binnings are defined for geometry {geometry.name!r}")


def _check_showers(geometry: Geometry, showers: np.ndarray, what: str = "showers") -> np.ndarray:
    showers = np.asarray(showers)
    if showers.ndim != 2 or showers.shape[1] != geometry.n_voxels:
        raise InputError(
            f"{what} must have shape (N, {geometry.n_voxels}) for geometry {geometry.name}, "
            f"got {showers.shape}"
        )
    if not (np.issubdtype(showers.dtype, np.floating) or np.issubdtype(showers.dtype, np.integer)):
        raise InputError(f"{what} must be a real numeric array, got dtype {showers.dtype}")
    return showers


def _check_inputs(
    geometry: Geometry, incident_mev: np.ndarray, showers_mev: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Validate shapes; returns (incident as float64 (N,), showers (N, n_voxels), not copied)."""
    showers = _check_showers(geometry, showers_mev)
    incident = np.asarray(incident_mev)
    if incident.ndim == 2 and incident.shape[1] == 1:
        incident = incident[:, 0]
    if incident.ndim != 1:
        raise InputError(f"incident energies must have shape (N,) or (N, 1), got {incident.shape}")
    if len(incident) != len(showers):
        raise InputError(
            f"{len(incident)} incident energies for {len(showers)} showers; they must match"
        )
    incident = incident.astype(np.float64, copy=False)
    if not np.all(np.isfinite(incident) & (incident > 0)):
        raise InputError("incident energies must be finite and positive (MeV)")
    return incident, showers


def _layer_coordinates(geometry: Geometry) -> dict[str, np.ndarray]:
    """Centres x, y, r (mm) of every voxel; r = sqrt(x^2 + y^2) for cartesian geometries."""
    centres = geometry.voxel_centres
    x, y = centres["x"], centres["y"]
    r = centres["r"] if "r" in centres else np.hypot(x, y)
    return {"x": x, "y": y, "r": r}


def _is_binned(layer: Layer) -> bool:
    return layer.n_voxels > 0 and (not layer.cylindrical or layer.n_alpha > 1)


def _log_edges(low: float, reference_max: float, n_edges: int) -> np.ndarray:
    """``n_edges`` log-spaced edges from ``low`` to ``reference_max`` (to 10 x ``low`` when the
    reference maximum is not above ``low``, e.g. an all-empty reference)."""
    high = reference_max if np.isfinite(reference_max) and reference_max > low else 10.0 * low
    return np.logspace(np.log10(low), np.log10(high), n_edges)


def _log_floor(geometry: Geometry, reference: np.ndarray | None = None) -> float:
    """Lower edge of log binnings: the evaluation threshold (spec). Without a threshold
    (CaloGAN), the smallest positive reference value, but not below CALOGAN_LOG_FLOOR_MEV."""
    if geometry.threshold_mev > 0:
        return geometry.threshold_mev
    if reference is not None:
        positive = reference[reference > 0]
        if positive.size:
            return max(CALOGAN_LOG_FLOOR_MEV, float(positive.min()))
    return CALOGAN_LOG_FLOOR_MEV


# -- public API ----------------------------------------------------------------------------------
def apply_threshold(showers_mev: np.ndarray, threshold_mev: float) -> np.ndarray:
    """A copy of ``showers_mev`` with every voxel below ``threshold_mev`` set to exactly 0.

    metrics.md: applied to **both** the reference and the generated sample before any feature,
    histogram or classifier input. Values equal to the threshold are kept.
    """
    showers = np.array(showers_mev, copy=True)
    showers[showers < threshold_mev] = 0
    return showers


def binned_layers(geometry: Geometry | str) -> tuple[Layer, ...]:
    """Layers that get x/y ("eta/phi") centre and width features.

    Cylindrical geometries: the alpha-binned layers (n_alpha > 1): DS1 photons 1, 2; DS1 pions
    1, 2, 12, 13; DS2/3 all 45. CaloGAN (cartesian): all three layers.
    """
    geometry = _geometry(geometry)
    return tuple(layer for layer in geometry.relevant_layers if _is_binned(layer))


def high_level_features(
    geometry: Geometry | str, incident_mev: np.ndarray, showers_mev: np.ndarray
) -> dict[str, np.ndarray]:
    """The high-level features of every shower (metrics.md section 2), each an ``(N,)`` array.

    Keys: ``E_tot``, ``E_ratio``; per relevant layer ``E_{id}``, ``r_mean_{id}``,
    ``r_width_{id}``, ``sparsity_{id}``; per layer of :func:`binned_layers` ``x_mean_{id}``,
    ``y_mean_{id}``, ``x_width_{id}``, ``y_width_{id}``. ``showers_mev`` ``(N, n_voxels)`` must
    already be thresholded (:func:`apply_threshold`); ``incident_mev`` is ``(N,)`` or ``(N, 1)``.
    An empty layer gives means and widths of 0 (the 1e-16 in the denominators).
    """
    geometry = _geometry(geometry)
    incident, showers = _check_inputs(geometry, incident_mev, showers_mev)
    coords = _layer_coordinates(geometry)
    per_layer: dict[str, np.ndarray] = {}
    e_tot = np.zeros(len(showers))
    for layer in geometry.relevant_layers:
        sl = slice(layer.start, layer.stop)
        binned = _is_binned(layer)
        names = ("r", "x", "y") if binned else ("r",)
        # columns: 1, v, v^2 for each coordinate v -> energy-weighted sums in one product
        columns = [np.ones(layer.n_voxels)]
        for name in names:
            v = coords[name][sl]
            columns += [v, v * v]
        sums = showers[:, sl] @ np.stack(columns, axis=1)
        e_layer = sums[:, 0]
        denominator = e_layer + _EPS_MOMENT
        e_tot += e_layer
        per_layer[f"E_{layer.id}"] = e_layer
        for k, name in enumerate(names):
            mean = sums[:, 1 + 2 * k] / denominator
            second = sums[:, 2 + 2 * k] / denominator
            per_layer[f"{name}_mean_{layer.id}"] = mean
            per_layer[f"{name}_width_{layer.id}"] = np.sqrt(np.maximum(0.0, second - mean * mean))
        per_layer[f"sparsity_{layer.id}"] = 1.0 - np.count_nonzero(
            showers[:, sl] > 0, axis=1
        ) / float(layer.n_voxels)
    return {"E_tot": e_tot, "E_ratio": e_tot / incident, **per_layer}


def feature_edges(geometry: Geometry | str, name: str, reference_values: np.ndarray) -> np.ndarray:
    """Histogram edges of feature ``name`` (a key of :func:`high_level_features`), metrics.md
    section 3.

    - ``E_ratio``: 100 bins on [0.5, 1.5];
    - ``E_{id}``: 40 log-spaced **edges** (39 bins) from the threshold (CaloGAN:
      :data:`CALOGAN_LOG_FLOOR_MEV`) to the maximum of ``reference_values``;
    - ``E_tot`` (not histogrammed by the official code; this module's choice): 40 log-spaced edges
      from the smallest positive reference value (at least the threshold / floor) to the
      reference maximum;
    - means and widths: 100 bins on the dataset- and layer-dependent linear ranges of the table
      (CaloGAN: the ranges of the module docstring);
    - ``sparsity_{id}``: 20 bins on [0, 1].

    ``reference_values`` (the feature on the reference sample) is only used by the log-spaced
    binnings. If its maximum is not above the lower edge, the upper edge is 10 x the lower one.
    """
    geometry = _geometry(geometry)
    kind = _kind(geometry)
    if name == "E_ratio":
        return np.linspace(0.5, 1.5, 101)
    if name == "E_tot":
        values = np.asarray(reference_values, dtype=np.float64).ravel()
        values = values[np.isfinite(values)]
        floor = _log_floor(geometry)
        positive = values[values > 0]
        low = max(floor, float(positive.min())) if positive.size else floor
        return _log_edges(low, float(values.max()) if values.size else 0.0, 40)
    match = _FEATURE_NAME.match(name)
    if match is None:
        raise InputError(f"unknown feature {name!r}")
    feature, layer_id = match.group(1), int(match.group(2))
    layers = binned_layers(geometry) if feature[0] in "xy" else geometry.relevant_layers
    if layer_id not in {layer.id for layer in layers}:
        raise InputError(f"geometry {geometry.name} has no feature {name!r}")
    if feature == "E":
        values = np.asarray(reference_values, dtype=np.float64).ravel()
        values = values[np.isfinite(values)]
        return _log_edges(
            _log_floor(geometry, values), float(values.max()) if values.size else 0.0, 40
        )
    if feature == "sparsity":
        return np.linspace(0.0, 1.0, 21)
    if kind == "ds23":
        low, high = _DS23_RANGES[feature]
    elif kind == "calogan":
        low, high = _CALOGAN_RANGES[feature]
    elif layer_id in (_DS1_OUTER_R if feature[0] == "r" else _DS1_OUTER_XY):
        low, high = _DS1_OUTER_RANGES[feature]
    else:
        low, high = _DS1_INNER_RANGES[feature]
    return np.linspace(low, high, 101)


def voxel_edges(geometry: Geometry | str, reference_showers: np.ndarray) -> np.ndarray:
    """50 log-spaced edges (49 bins) for the pooled voxel-energy spectrum (metrics.md section 3):
    from the threshold (CaloGAN: :data:`CALOGAN_LOG_FLOOR_MEV`) to the largest voxel energy of the
    thresholded reference showers ``(N, n_voxels)`` (10 x the lower edge if none is above it)."""
    geometry = _geometry(geometry)
    showers = _check_showers(geometry, reference_showers, "reference showers")
    vmax = float(showers.max()) if showers.size else 0.0
    if np.isnan(vmax) or np.isinf(vmax):
        raise InputError("reference showers contain non-finite values")
    return _log_edges(_log_floor(geometry, showers), vmax, 50)


def ratio_per_energy_windows(
    geometry: Geometry | str, incident_mev: np.ndarray
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """E_tot/E_inc histograms per incident-energy window (metrics.md section 3; dataset 1 only).

    For i = 0..14, window i is E_inc in [2^(8+i), 2^(9+i)) MeV; each entry is
    ``(label, mask over the showers, edges)``, the label e.g. ``"Einc_4096-8192MeV"``, the edges
    20 bins on [0.4, 1.4], except DS1 photons with i > 3 (E_inc >= 2^12 MeV): 20 bins on
    [0.9, 1.1]. All 15 windows are returned, even empty ones. Any other geometry gives [].
    """
    geometry = _geometry(geometry)
    if not geometry.name.startswith("ds1"):
        return []
    incident = np.asarray(incident_mev, dtype=np.float64)
    if incident.ndim == 2 and incident.shape[1] == 1:
        incident = incident[:, 0]
    if incident.ndim != 1:
        raise InputError(f"incident energies must have shape (N,) or (N, 1), got {incident.shape}")
    windows = []
    for i in range(15):
        low, high = 2.0 ** (8 + i), 2.0 ** (9 + i)
        mask = (incident >= low) & (incident < high)
        if geometry.name == "ds1-photons" and i > 3:
            edges = np.linspace(0.9, 1.1, 21)
        else:
            edges = np.linspace(0.4, 1.4, 21)
        windows.append((f"Einc_{2 ** (8 + i)}-{2 ** (9 + i)}MeV", mask, edges))
    return windows


def _high_columns(
    geometry: Geometry, incident: np.ndarray, showers: np.ndarray
) -> list[np.ndarray]:
    """The ``cls-high`` vector without log10 E_inc, as a list of ``(N,)`` columns."""
    f = high_level_features(geometry, incident, showers)
    relevant = [layer.id for layer in geometry.relevant_layers]
    binned = [layer.id for layer in binned_layers(geometry)]
    columns = [np.log10(f[f"E_{i}"] + _EPS_LOG) for i in relevant]
    for feature in ("x_mean", "y_mean", "x_width", "y_width"):
        columns += [f[f"{feature}_{i}"] / 100.0 for i in binned]
    columns.append(np.log10(f["E_tot"] + _EPS_LOG))
    columns += [f[f"sparsity_{i}"] for i in relevant]
    columns += [f[f"r_mean_{i}"] / 100.0 for i in relevant]
    columns += [f[f"r_width_{i}"] / 100.0 for i in relevant]
    return columns


def _mode_key(mode: str) -> str:
    """A classifier mode without its optional ``cls-`` prefix, checked."""
    key = mode[4:] if isinstance(mode, str) and mode.startswith("cls-") else mode
    if key not in CLASSIFIER_MODES:
        raise InputError(
            f"unknown classifier mode {mode!r}; expected one of {', '.join(CLASSIFIER_MODES)}"
        )
    return key


def classifier_inputs(
    geometry: Geometry | str, incident_mev: np.ndarray, showers_mev: np.ndarray, mode: str
) -> np.ndarray:
    """Input vectors of the CaloChallenge classifier (metrics.md section 4), float64 ``(N, d)``.

    Showers must already be thresholded (:func:`apply_threshold`). ``mode`` (optionally prefixed
    ``cls-``):

    - ``"low"``: [log10 E_inc, E_v / E_inc for every voxel]; d = 1 + n_voxels;
    - ``"low-normed"``: [log10 E_inc, E_v / (E_l + 1e-16) for every voxel (E_l of its layer),
      log10(E_l + 1e-8) per relevant layer]; d = 1 + n_voxels + n_relevant_layers. The voxels and
      E_l both come from the thresholded showers: the official script's re-read of unthresholded
      voxels is deliberately **not** reproduced;
    - ``"high"``: [log10 E_inc, log10(E_l + 1e-8) per relevant layer, x_mean/100 per binned
      layer, then y_mean/100, x_width/100, y_width/100 (each over the binned layers),
      log10(E_tot + 1e-8), sparsity, r_mean/100, r_width/100 (each over the relevant layers)];
      d = 30 (DS1 photons), 46 (DS1 pions), 362 (DS2/3), 26 (CaloGAN).
    """
    geometry = _geometry(geometry)
    key = _mode_key(mode)
    incident, showers = _check_inputs(geometry, incident_mev, showers_mev)
    log_incident = np.log10(incident)
    if key == "high":
        return np.column_stack([log_incident, *_high_columns(geometry, incident, showers)])
    n, n_vox = showers.shape
    relevant = geometry.relevant_layers
    extra = len(relevant) if key == "low-normed" else 0
    out = np.empty((n, 1 + n_vox + extra), dtype=np.float64)
    out[:, 0] = log_incident
    if key == "low":
        np.divide(showers, incident[:, None], out=out[:, 1 : 1 + n_vox])
        return out
    for k, layer in enumerate(relevant):
        block = showers[:, layer.start : layer.stop]
        e_layer = block.sum(axis=1, dtype=np.float64)
        np.divide(
            block, (e_layer + _EPS_MOMENT)[:, None], out=out[:, 1 + layer.start : 1 + layer.stop]
        )
        out[:, 1 + n_vox + k] = np.log10(e_layer + _EPS_LOG)
    return out


def classifier_blocks(geometry: Geometry | str, mode: str) -> tuple[slice, ...]:
    """Column ranges of :func:`classifier_inputs` that hold one quantity in one unit: the voxel
    fractions of ``"low"`` and ``"low-normed"``; none for ``"high"``. The ``fast`` classifier
    preset rescales each range by one number (``metrics.classifier.classifier_test``)."""
    geometry = _geometry(geometry)
    key = _mode_key(mode)
    return () if key == "high" else (slice(1, 1 + geometry.n_voxels),)


def fpd_features(
    geometry: Geometry | str, incident_mev: np.ndarray, showers_mev: np.ndarray
) -> np.ndarray:
    """Features of the Fréchet / kernel physics distances (metrics.md section 5): the ``"high"``
    classifier vector without its leading log10 E_inc column, float64 ``(N, d - 1)``."""
    geometry = _geometry(geometry)
    incident, showers = _check_inputs(geometry, incident_mev, showers_mev)
    return np.column_stack(_high_columns(geometry, incident, showers))
