"""Calorimeter geometries: voxel layout, voxel centres, longitudinal structure and materials.

Five geometries (``GEOMETRIES``):

=============== ====== ============ =====================================================
name            voxels  readout      source
=============== ====== ============ =====================================================
``calogan``        504  x, y         CaloGAN (arXiv:1705.02355): 3 layers 3x96, 12x12, 12x6
``ds1-photons``    368  r, alpha     CaloChallenge dataset 1 photons (binning XML)
``ds1-pions``      533  r, alpha     CaloChallenge dataset 1 pions (binning XML)
``ds2``           6480  r, alpha     CaloChallenge dataset 2: 45 layers x 16 alpha x 9 r
``ds3``          40500  r, alpha     CaloChallenge dataset 3: 45 layers x 50 alpha x 18 r
=============== ====== ============ =====================================================

The cylindrical (r, alpha) geometries are parsed from the CaloChallenge binning XMLs shipped with
the package (``calo/data``), following ``calochallenge-format.md`` section 6: layer-major flat
order, alpha-major within a layer with r running fastest; alpha bins equal-width on [-pi, pi).
CaloGAN cells are indexed [x][y] and flattened row-major; a coordinate exactly on a cell edge
belongs to the upper cell.

Each geometry also carries what the reference simulator needs: the depth of every readout layer
in radiation lengths X0 and nuclear interaction lengths lambda_I, and an effective medium
(reference-shower-simulator.md section 1). For CaloGAN and datasets 2/3 these are the spec's
values; for dataset 1 (ATLAS presampler, LAr/Pb accordion and Tile calorimeter) the depths and
medium are an approximation chosen for plausible showers, not a description of ATLAS.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import xml.etree.ElementTree as ET
from importlib import resources

import numpy as np

from hepflows.io import InputError


@dataclasses.dataclass(frozen=True)
class Medium:
    """Effective calorimeter medium (units in the names; GFLASH notation of the spec).

    ``sampling``: use GFLASH's sampling-calorimeter parameterisation (with ``fs`` and ``ehat``);
    ``resolution_c``: stochastic term c of sigma_E/E = c/sqrt(E/GeV) applied as sampling
    fluctuations (0: none, e.g. CaloGAN's total-deposit readout).
    """

    z_eff: float
    x0_mm: float
    critical_energy_mev: float
    moliere_radius_mm: float
    lambda_mm: float
    fs: float
    ehat: float
    sampling: bool
    resolution_c: float
    mip_mev_per_x0: float  # mean MIP deposit per X0 of depth, in the file's energy scale


@dataclasses.dataclass(frozen=True)
class Layer:
    """One readout layer. Empty layers (no voxels) exist in the dataset-1 XMLs."""

    id: int
    start: int  # flat index of the first voxel
    stop: int  # one past the last
    depth_x0: tuple[float, float]  # (front, back) along the axis, radiation lengths
    depth_lambda: tuple[float, float]  # (front, back), interaction lengths
    r_edges_mm: np.ndarray | None = None  # cylindrical layers
    n_alpha: int = 0
    x_edges_mm: np.ndarray | None = None  # cartesian layers
    y_edges_mm: np.ndarray | None = None

    @property
    def n_voxels(self) -> int:
        return self.stop - self.start

    @property
    def cylindrical(self) -> bool:
        return self.r_edges_mm is not None

    @property
    def n_r(self) -> int:
        return 0 if self.r_edges_mm is None else len(self.r_edges_mm) - 1

    @property
    def shape(self) -> tuple[int, int]:
        """``(n_alpha, n_r)`` for cylindrical layers, ``(n_x, n_y)`` for cartesian ones."""
        if self.cylindrical:
            return (self.n_alpha if self.n_r else 0, self.n_r)
        assert self.x_edges_mm is not None and self.y_edges_mm is not None
        return (len(self.x_edges_mm) - 1, len(self.y_edges_mm) - 1)


@dataclasses.dataclass(frozen=True)
class Geometry:
    """A calorimeter readout geometry; see the module docstring for the list."""

    name: str
    particle: str  # the XML `Bin name` (photon, pion, electron) or "any" for CaloGAN
    file_format: str  # "calochallenge" or "calogan"
    layers: tuple[Layer, ...]
    medium: Medium
    threshold_mev: float  # evaluation threshold per voxel
    energy_range_mev: tuple[float, float]
    description: str

    @property
    def n_voxels(self) -> int:
        return self.layers[-1].stop if self.layers else 0

    @property
    def relevant_layers(self) -> tuple[Layer, ...]:
        """Layers that have voxels."""
        return tuple(layer for layer in self.layers if layer.n_voxels > 0)

    @property
    def depth_x0(self) -> float:
        return max(layer.depth_x0[1] for layer in self.relevant_layers)

    @property
    def depth_lambda(self) -> float:
        return max(layer.depth_lambda[1] for layer in self.relevant_layers)

    @functools.cached_property
    def voxel_layer(self) -> np.ndarray:
        """Index into :attr:`layers` of each voxel, ``(n_voxels,)``."""
        return np.concatenate(
            [np.full(layer.n_voxels, i) for i, layer in enumerate(self.layers)]
        ).astype(np.int64)

    @functools.cached_property
    def voxel_centres(self) -> dict[str, np.ndarray]:
        """Voxel centres, each ``(n_voxels,)``: ``x``, ``y`` (mm) always; ``r`` (mm) and
        ``alpha`` (rad) for cylindrical geometries. x = r cos alpha, y = r sin alpha."""
        xs, ys, rs, alphas = [], [], [], []
        for layer in self.relevant_layers:
            if layer.cylindrical:
                assert layer.r_edges_mm is not None
                r = 0.5 * (layer.r_edges_mm[1:] + layer.r_edges_mm[:-1])
                alpha = -math.pi + (np.arange(layer.n_alpha) + 0.5) * 2 * math.pi / layer.n_alpha
                aa, rr = np.meshgrid(alpha, r, indexing="ij")  # alpha outer, r fastest
                rs.append(rr.ravel())
                alphas.append(aa.ravel())
                xs.append((rr * np.cos(aa)).ravel())
                ys.append((rr * np.sin(aa)).ravel())
            else:
                assert layer.x_edges_mm is not None and layer.y_edges_mm is not None
                x = 0.5 * (layer.x_edges_mm[1:] + layer.x_edges_mm[:-1])
                y = 0.5 * (layer.y_edges_mm[1:] + layer.y_edges_mm[:-1])
                xx, yy = np.meshgrid(x, y, indexing="ij")  # [x][y], y fastest
                xs.append(xx.ravel())
                ys.append(yy.ravel())
        out = {"x": np.concatenate(xs), "y": np.concatenate(ys)}
        if rs:
            out["r"], out["alpha"] = np.concatenate(rs), np.concatenate(alphas)
        return out

    def layer_energies(self, showers: np.ndarray) -> np.ndarray:
        """Sum of each relevant layer: ``(N, n_voxels)`` -> ``(N, n_relevant_layers)``."""
        return np.stack(
            [showers[:, layer.start : layer.stop].sum(axis=1) for layer in self.relevant_layers],
            axis=1,
        )


# -- the CaloChallenge XMLs ----------------------------------------------------------------------
_XML_FILES = {
    "ds1-photons": ("binning_dataset_1_photons.xml", "photon", 368),
    "ds1-pions": ("binning_dataset_1_pions.xml", "pion", 533),
    "ds2": ("binning_dataset_2.xml", "electron", 6480),
    "ds3": ("binning_dataset_3.xml", "electron", 40500),
}


def parse_binning_xml(
    text: str, particle: str, source: str = "binning XML"
) -> list[tuple[int, np.ndarray, int]]:
    """Parse a CaloChallenge binning XML: ``[(layer id, r edges in mm, n_alpha), ...]``.

    Layers come in document order; a layer with a single edge has no voxels. Raises
    :class:`InputError` for a malformed file, a missing particle or out-of-order layer ids.
    """
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise InputError(f"{source} is not valid XML ({exc})") from None
    bins = [b for b in root.iter("Bin") if b.get("name") == particle]
    if not bins:
        names = sorted({b.get("name", "?") for b in root.iter("Bin")})
        raise InputError(f"{source} has no <Bin name={particle!r}>; it has {names}")
    layers = []
    for position, node in enumerate(bins[0].iter("Layer")):
        try:
            layer_id = int(node.get("id", ""))
            edges = np.array([float(e) for e in node.get("r_edges", "").split(",") if e.strip()])
            n_alpha = int(node.get("n_bin_alpha", ""))
        except ValueError as exc:
            raise InputError(
                f"{source}: layer {position} has a malformed attribute ({exc})"
            ) from None
        if layer_id != position:
            raise InputError(f"{source}: layer in position {position} has id {layer_id}")
        if len(edges) == 0 or np.any(np.diff(edges) <= 0) or edges[0] != 0.0 or n_alpha < 1:
            raise InputError(f"{source}: layer {layer_id} has invalid r_edges or n_bin_alpha")
        layers.append((layer_id, edges, n_alpha))
    return layers


# Longitudinal structure and media (reference-shower-simulator.md sections 1.1-1.2).
_CALOGAN_MEDIUM = Medium(
    z_eff=69.4, x0_mm=15.6, critical_energy_mev=8.96, moliere_radius_mm=36.9, lambda_mm=375.0,
    fs=2.60, ehat=0.691, sampling=False, resolution_c=0.0,
    mip_mev_per_x0=3.39 * 1.1 / 0.3848,  # 3.39 MeV per 0.3848-X0 cell, x1.1 relativistic rise
)  # fmt: skip
_PAR04_MEDIUM = Medium(  # datasets 2 and 3: W/Si, read out as Si x 1/0.033
    z_eff=72.5, x0_mm=4.22, critical_energy_mev=8.23, moliere_radius_mm=10.9, lambda_mm=116.0,
    fs=2.48, ehat=0.704, sampling=True, resolution_c=0.15,
    mip_mev_per_x0=7.0 / 0.806,  # ~7 MeV per 0.806-X0 layer (2 x 0.116 MeV in Si / 0.033)
)  # fmt: skip
_DS1_MEDIUM = Medium(  # approximation of the ATLAS LAr/Pb barrel (see module docstring)
    z_eff=65.0, x0_mm=20.0, critical_energy_mev=10.0, moliere_radius_mm=45.0, lambda_mm=250.0,
    fs=2.5, ehat=0.70, sampling=True, resolution_c=0.10, mip_mev_per_x0=7.0,
)  # fmt: skip

# Dataset 1 layer depths (approximate): presampler with upstream material, EM strips, middle,
# back, then the three Tile layers. (X0 front, X0 back, lambda front, lambda back)
_DS1_DEPTHS = {
    0: (0.0, 2.0, 0.0, 0.09),
    1: (2.0, 6.4, 0.09, 0.29),
    2: (6.4, 22.4, 0.29, 1.02),
    3: (22.4, 24.4, 1.02, 1.11),
    12: (30.0, 44.0, 1.40, 2.90),
    13: (44.0, 82.0, 2.90, 7.00),
    14: (82.0, 99.0, 7.00, 8.80),
}


def _cylindrical(name: str) -> Geometry:
    filename, particle, expected = _XML_FILES[name]
    text = resources.files("hepflows.calo").joinpath("data", filename).read_text()
    parsed = parse_binning_xml(text, particle, filename)
    layers, offset = [], 0
    for layer_id, edges, n_alpha in parsed:
        n_vox = (len(edges) - 1) * n_alpha
        if name.startswith("ds1"):
            d = _DS1_DEPTHS.get(layer_id, (0.0, 0.0, 0.0, 0.0))
            depth_x0, depth_l = (d[0], d[1]), (d[2], d[3])
        else:  # Par04: 45 layers of 0.806 X0 and 0.0294 lambda_I
            depth_x0 = (0.806 * layer_id, 0.806 * (layer_id + 1))
            depth_l = (0.0294 * layer_id, 0.0294 * (layer_id + 1))
        layers.append(Layer(layer_id, offset, offset + n_vox, depth_x0, depth_l, edges, n_alpha))
        offset += n_vox
    if offset != expected:
        raise InputError(f"{filename} describes {offset} voxels, expected {expected}")
    ds1 = name.startswith("ds1")
    return Geometry(
        name=name,
        particle=particle,
        file_format="calochallenge",
        layers=tuple(layers),
        medium=_DS1_MEDIUM if ds1 else _PAR04_MEDIUM,
        threshold_mev=1.0 if ds1 else 0.5e-3 / 0.033,
        energy_range_mev=(2.0**8, 2.0**22) if ds1 else (1e3, 1e6),
        description=f"CaloChallenge dataset {name[2:]} ({offset} voxels, r x alpha)",
    )


def _calogan() -> Geometry:
    def edges(n: int, width: float) -> np.ndarray:
        return -240.0 + width * np.arange(n + 1)

    spec = [  # (n_x, x width, n_y, y width, X0 span, lambda span)
        (3, 160.0, 96, 5.0, (0.0, 5.77), (0.0, 0.240)),
        (12, 40.0, 12, 40.0, (5.77, 28.08), (0.240, 1.168)),
        (12, 40.0, 6, 80.0, (28.08, 30.79), (1.168, 1.281)),
    ]
    layers, offset = [], 0
    for i, (nx, wx, ny, wy, dx0, dl) in enumerate(spec):
        layers.append(
            Layer(
                i,
                offset,
                offset + nx * ny,
                dx0,
                dl,
                x_edges_mm=edges(nx, wx),
                y_edges_mm=edges(ny, wy),
            )  # fmt: skip
        )
        offset += nx * ny
    return Geometry(
        name="calogan",
        particle="any",
        file_format="calogan",
        layers=tuple(layers),
        medium=_CALOGAN_MEDIUM,
        threshold_mev=0.0,
        energy_range_mev=(1e3, 1e5),
        description="CaloGAN Pb/LAr (504 voxels: 3x96, 12x12, 12x6, x x y)",
    )


GEOMETRIES = ("calogan", "ds1-photons", "ds1-pions", "ds2", "ds3")


@functools.cache
def get_geometry(name: str) -> Geometry:
    """The geometry called ``name`` (one of :data:`GEOMETRIES`)."""
    if name == "calogan":
        return _calogan()
    if name in _XML_FILES:
        return _cylindrical(name)
    raise InputError(f"unknown geometry {name!r}; expected one of {', '.join(GEOMETRIES)}")


def geometry_for_voxels(n_voxels: int) -> Geometry:
    """The geometry with ``n_voxels`` voxels; an error that names the closest one otherwise.

    (Dataset-1 photons and pions differ in voxel count, so the count identifies the geometry.)
    """
    sizes = {name: get_geometry(name).n_voxels for name in GEOMETRIES}
    for name, size in sizes.items():
        if size == n_voxels:
            return get_geometry(name)
    closest = min(sizes, key=lambda k: abs(sizes[k] - n_voxels))
    raise InputError(
        f"{n_voxels} voxels match no known geometry; the closest is {closest} "
        f"({sizes[closest]} voxels)"
    )
