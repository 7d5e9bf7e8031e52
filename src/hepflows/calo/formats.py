"""Calorimeter shower files: reading, writing and validating CaloChallenge and CaloGAN HDF5.

Two on-disk formats (``calochallenge-format.md`` sections 1, 2, 7 and 9):

**CaloChallenge** (geometries ``ds1-photons``, ``ds1-pions``, ``ds2``, ``ds3``): two gzip-compressed
datasets, ``incident_energies`` of shape (N, 1) in **MeV** and ``showers`` of shape
(N, n_voxels) in **MeV**, each shower flattened layer-major, alpha-major with r fastest
(368 / 533 / 6480 / 40500 voxels).

**CaloGAN** (geometry ``calogan``): ``energy`` (N, 1) in **GeV** (not MeV!); ``layer_0``
(N, 3, 96), ``layer_1`` (N, 12, 12) and ``layer_2`` (N, 12, 6) in MeV, indexed [x][y];
``overflow`` (N, 3) in MeV (energy outside the 480 mm window, one value per layer). The layers
flatten row-major, in that order, into 504 voxels: flat slices 0-287, 288-431 and 432-503.

In memory everything here is in **MeV**, whatever the file format: incident energies are ``(N,)``
float64 and showers ``(N, n_voxels)`` float32 in the geometry's flat voxel order. Reading converts
CaloGAN's GeV to MeV and flattens its layers; writing does the reverse and always uses the
geometry's own format (``Geometry.file_format``). A CaloChallenge-layout file with 504 voxels is
read as ``calogan`` geometry too.

Every problem a user can cause raises :class:`~hepflows.io.InputError` with a one-line message
naming the file (or the caller's ``where``) and the dataset: a missing dataset, a file that is not
HDF5, wrong shapes (naming the closest geometry when the voxel count matches none), non-floating
dtypes, NaN/Inf, negative voxel energies, incident energies <= 0, and energies in the wrong unit
(detected from the median of sum(shower) / E_inc, about 0.2-1.1 for real showers when both are in
MeV). Big files (a dataset-3 file is several GB) are streamed by :func:`iter_showers`, and the
data checks run chunk by chunk with global row numbers. Writes are atomic
(:func:`hepflows.io.atomic_path`): an error leaves neither a partial file nor a temporary one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import h5py
import numpy as np

from hepflows.calo.geometry import Geometry, geometry_for_voxels, get_geometry
from hepflows.io import InputError, atomic_path

PathLike = str | os.PathLike[str]

CALOCHALLENGE_KEYS = ("incident_energies", "showers")
CALOGAN_KEYS = ("energy", "layer_0", "layer_1", "layer_2", "overflow")

# Median of sum(shower) / E_inc above which the incident energies look like GeV (ratio ~1000),
# and below which the showers look like GeV (ratio ~1e-3). Real showers give about 0.2-1.1.
GEV_INCIDENT_RATIO = 50.0
GEV_SHOWERS_RATIO = 1e-2

_UNIT_SAMPLE = 500  # showers read up front by the streaming readers for the unit check
_READ_BYTES = 64 * 2**20  # chunk size of read_showers' internal reads
_H5_CHUNK_BYTES = 2**20  # target size of one HDF5 storage chunk


@dataclasses.dataclass(frozen=True)
class ShowerFile:
    """Summary of a validated shower file (structure only; no shower data is loaded)."""

    path: Path
    file_format: str  # "calochallenge" or "calogan"
    geometry: Geometry
    n_showers: int


# -- validation of in-memory data --------------------------------------------------------------


def _as_geometry(geometry: str | Geometry) -> Geometry:
    return geometry if isinstance(geometry, Geometry) else get_geometry(geometry)


def _voxel_hint(n_voxels: int) -> str:
    """' (the voxel count of ds2)' or '; N voxels match no known geometry; the closest is ...'."""
    try:
        return f" (the voxel count of {geometry_for_voxels(n_voxels).name})"
    except InputError as exc:
        return f"; {exc}"


def _first(mask: np.ndarray) -> int:
    return int(np.argmax(mask))


def _check_values(
    energies: np.ndarray,
    showers: np.ndarray,
    where: str,
    row_offset: int = 0,
    e_label: str = "incident energies",
    s_label: str = "showers",
    check_units: bool = True,
) -> None:
    """NaN/Inf, E_inc <= 0, negative voxels and (optionally) the unit check; rows are reported
    as ``row_offset + local row``. ``energies`` (N,) and ``showers`` (N, n_voxels) in MeV."""
    bad = ~np.isfinite(energies)
    if bad.any():
        raise InputError(
            f"{where}: {e_label} contain {int(bad.sum())} NaN/Inf values "
            f"(first at row {row_offset + _first(bad)})"
        )
    bad = energies <= 0
    if bad.any():
        i = _first(bad)
        raise InputError(
            f"{where}: {e_label} must be > 0 MeV; {int(bad.sum())} are <= 0 "
            f"(first at row {row_offset + i}: {energies[i]:g})"
        )
    # Row sums in float64 find NaN/Inf rows without a full-size boolean temporary.
    sums = showers.sum(axis=1, dtype=np.float64)
    bad_rows = np.flatnonzero(~np.isfinite(sums))
    if bad_rows.size:
        count = int(np.count_nonzero(~np.isfinite(showers[bad_rows])))
        raise InputError(
            f"{where}: {s_label} contain {count} NaN/Inf values in {bad_rows.size} showers "
            f"(first at row {row_offset + int(bad_rows[0])})"
        )
    if showers.shape[1]:
        mins = showers.min(axis=1)
        neg_rows = np.flatnonzero(mins < 0)
        if neg_rows.size:
            count = int(np.count_nonzero(showers[neg_rows] < 0))
            i = int(neg_rows[0])
            raise InputError(
                f"{where}: {s_label} contain {count} negative voxel energies in {neg_rows.size} "
                f"showers (first at row {row_offset + i}: {mins[i]:.3g} MeV); energies must "
                "be >= 0"
            )
    if check_units:
        _check_units(energies, sums, where, e_label, s_label)


def _check_units(
    energies: np.ndarray, sums: np.ndarray, where: str, e_label: str, s_label: str
) -> None:
    """Error if the median of sum(shower) / E_inc says one of the two arrays is in GeV."""
    use = (sums > 0) & (energies > 0)
    if not use.any():
        return
    ratio = float(np.median(sums[use] / energies[use]))
    if ratio > GEV_INCIDENT_RATIO:
        raise InputError(
            f"{where}: {e_label} look like GeV, not MeV: the median of sum(shower)/E_inc is "
            f"{ratio:.3g} (about 1 when both are in MeV)"
        )
    if ratio < GEV_SHOWERS_RATIO:
        raise InputError(
            f"{where}: {s_label} look like GeV, not MeV (or {e_label} are 1000x too large): the "
            f"median of sum(shower)/E_inc is {ratio:.3g} (about 1 when both are in MeV)"
        )


def _prepare(
    geometry: Geometry,
    incident_energies_mev: np.ndarray,
    showers_mev: np.ndarray,
    overflow_mev: np.ndarray | None,
    where: str,
    row_offset: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Validate and convert: ``(E (N,) float64, showers (N, n_voxels) float32, overflow)``."""
    e = np.asarray(incident_energies_mev)
    s = np.asarray(showers_mev)
    n_vox = geometry.n_voxels
    if s.ndim != 2 or s.shape[1] != n_vox:
        hint = _voxel_hint(s.shape[1]) if s.ndim == 2 else ""
        raise InputError(
            f"{where}: showers have shape {s.shape}; geometry {geometry.name} expects "
            f"(N, {n_vox}){hint}"
        )
    if not (e.ndim == 1 or (e.ndim == 2 and e.shape[1] == 1)):
        raise InputError(
            f"{where}: incident energies have shape {e.shape}; expected (N,) or (N, 1)"
        )
    e = e.reshape(-1)
    if len(e) != len(s):
        raise InputError(
            f"{where}: {len(e)} incident energies but {len(s)} showers; they must match"
        )
    for label, array in (("incident energies", e), ("showers", s)):
        if array.dtype.kind != "f":
            raise InputError(
                f"{where}: {label} have dtype {array.dtype}; expected floating point (MeV)"
            )
    _check_values(e, s, where, row_offset)
    overflow = None
    if overflow_mev is not None and geometry.file_format == "calogan":
        overflow = np.asarray(overflow_mev)
        n_layers = len(geometry.relevant_layers)
        if overflow.shape != (len(s), n_layers) or overflow.dtype.kind != "f":
            raise InputError(
                f"{where}: overflow has shape {overflow.shape} and dtype {overflow.dtype}; "
                f"expected floating point of shape ({len(s)}, {n_layers})"
            )
        bad = ~np.isfinite(overflow) | (overflow < 0)
        if bad.any():
            row = row_offset + int(np.argmax(bad.any(axis=1)))
            raise InputError(
                f"{where}: overflow has {int(bad.sum())} NaN/Inf or negative values "
                f"(first at row {row})"
            )
        overflow = overflow.astype(np.float32, copy=False)
    return e.astype(np.float64, copy=False), s.astype(np.float32, copy=False), overflow


def validate_showers(
    incident_energies_mev: np.ndarray,
    showers_mev: np.ndarray,
    geometry: str | Geometry,
    where: str,
    *,
    row_offset: int = 0,
) -> None:
    """Check in-memory showers against ``geometry``; raise :class:`InputError` on the first problem.

    ``incident_energies_mev`` (N,) or (N, 1) and ``showers_mev`` (N, n_voxels), both in MeV and
    floating point. Checked: shapes (naming the closest geometry for an unknown voxel count), dtype,
    NaN/Inf, E_inc <= 0, negative voxel energies, and units (the median of sum(shower) / E_inc above
    50 means E_inc is in GeV, below 0.01 that the showers are). ``where`` starts every message;
    rows are reported as ``row_offset + row``.
    """
    _prepare(_as_geometry(geometry), incident_energies_mev, showers_mev, None, where, row_offset)


# -- reading -------------------------------------------------------------------------------------


def _open_h5(path: PathLike) -> h5py.File:
    p = Path(path)
    if not p.exists():
        raise InputError(f"shower file not found: {p}")
    if not p.is_file():
        raise InputError(f"{p} is not a file")
    try:
        return h5py.File(p, "r")
    except OSError as exc:
        raise InputError(f"{p} is not a readable HDF5 file ({exc})") from None


def _dataset(h5: h5py.File, path: Path, key: str, found: str) -> h5py.Dataset:
    if key not in h5:
        raise InputError(f"{path}: missing dataset {key!r} (found: {found})")
    ds = h5[key]
    if not isinstance(ds, h5py.Dataset):
        raise InputError(f"{path}: {key!r} is a group, not a dataset")
    if ds.dtype.kind != "f":
        raise InputError(f"{path}: dataset {key!r} has dtype {ds.dtype}; expected floating point")
    return ds


def _energy_rows(ds: h5py.Dataset, path: Path, key: str) -> int:
    if not (len(ds.shape) == 1 or (len(ds.shape) == 2 and ds.shape[1] == 1)):
        raise InputError(f"{path}: dataset {key!r} has shape {ds.shape}; expected (N, 1)")
    return ds.shape[0]


def _inspect(h5: h5py.File, path: Path, geometry: str | Geometry | None) -> ShowerFile:
    """Detect the format and geometry and check keys, dtypes and shapes (no data is read)."""
    found = ", ".join(sorted(h5.keys())) or "nothing"
    wanted = None if geometry is None else _as_geometry(geometry)
    if any(key in h5 for key in CALOCHALLENGE_KEYS):
        e_ds = _dataset(h5, path, "incident_energies", found)
        s_ds = _dataset(h5, path, "showers", found)
        n = _energy_rows(e_ds, path, "incident_energies")
        if len(s_ds.shape) != 2:
            raise InputError(
                f"{path}: dataset 'showers' has shape {s_ds.shape}; expected (N, n_voxels)"
            )
        if s_ds.shape[0] != n:
            raise InputError(
                f"{path}: 'incident_energies' has {n} rows but 'showers' has {s_ds.shape[0]}"
            )
        n_vox = s_ds.shape[1]
        if wanted is None:
            try:
                geo = geometry_for_voxels(n_vox)
            except InputError as exc:
                raise InputError(
                    f"{path}: dataset 'showers' has shape {s_ds.shape}; {exc}"
                ) from None
        elif wanted.n_voxels != n_vox:
            raise InputError(
                f"{path}: dataset 'showers' has {n_vox} voxels per shower but geometry "
                f"{wanted.name} has {wanted.n_voxels}{_voxel_hint(n_vox)}"
            )
        else:
            geo = wanted
        return ShowerFile(path, "calochallenge", geo, n)

    if any(key in h5 for key in CALOGAN_KEYS):
        geo = get_geometry("calogan")
        if wanted is not None and wanted.name != geo.name:
            raise InputError(
                f"{path} is a CaloGAN file (504 voxels) but geometry {wanted.name} was requested"
            )
        n = _energy_rows(_dataset(h5, path, "energy", found), path, "energy")
        for k, layer in enumerate(geo.relevant_layers):
            key = f"layer_{k}"
            ds = _dataset(h5, path, key, found)
            if ds.shape != (n, *layer.shape):
                raise InputError(
                    f"{path}: dataset {key!r} has shape {ds.shape}; expected {(n, *layer.shape)} "
                    f"(CaloGAN layer {k}, with N = {n} rows of 'energy')"
                )
        if "overflow" in h5:  # optional for reading: the showers do not need it
            ds = _dataset(h5, path, "overflow", found)
            expected = (n, len(geo.relevant_layers))
            if ds.shape != expected:
                raise InputError(
                    f"{path}: dataset 'overflow' has shape {ds.shape}; expected {expected}"
                )
        return ShowerFile(path, "calogan", geo, n)

    raise InputError(
        f"{path} is not a shower file: expected datasets 'incident_energies' and 'showers' "
        f"(CaloChallenge) or 'energy' and 'layer_0'..'layer_2' (CaloGAN); found: {found}"
    )


def _labels(info: ShowerFile) -> tuple[str, str]:
    if info.file_format == "calogan":
        return "'energy' (GeV in the file)", "'layer_0'..'layer_2'"
    return "'incident_energies'", "'showers'"


def _read_rows(
    h5: h5py.File, info: ShowerFile, start: int, stop: int
) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``start:stop`` in MeV: ``(E (n,) float64, showers (n, n_voxels) float32)``."""
    n = stop - start
    try:
        if info.file_format == "calochallenge":
            e = np.asarray(h5["incident_energies"][start:stop], dtype=np.float64).reshape(-1)
            s = np.asarray(h5["showers"].astype(np.float32)[start:stop])
        else:
            e = np.asarray(h5["energy"][start:stop], dtype=np.float64).reshape(-1) * 1000.0
            s = np.empty((n, info.geometry.n_voxels), dtype=np.float32)
            for k, layer in enumerate(info.geometry.relevant_layers):
                cells = h5[f"layer_{k}"].astype(np.float32)[start:stop]
                s[:, layer.start : layer.stop] = cells.reshape(n, -1)  # [x][y], row-major
    except OSError as exc:
        raise InputError(
            f"{info.path}: cannot read showers {start}-{stop - 1} (corrupt file? {exc})"
        ) from None
    return e, s


def _check_sample(h5: h5py.File, info: ShowerFile, n_rows: int) -> None:
    """Unit check on the first few hundred showers, before streaming starts."""
    e, s = _read_rows(h5, info, 0, min(n_rows, _UNIT_SAMPLE))
    e_label, s_label = _labels(info)
    _check_values(e, s, str(info.path), 0, e_label, s_label, check_units=True)


def _stream(
    info: ShowerFile, chunk_size: int, n_rows: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    e_label, s_label = _labels(info)
    with _open_h5(info.path) as h5:
        _inspect(h5, info.path, info.geometry)  # the file may have changed since it was opened
        for start in range(0, n_rows, chunk_size):
            stop = min(start + chunk_size, n_rows)
            e, s = _read_rows(h5, info, start, stop)
            _check_values(e, s, str(info.path), start, e_label, s_label, check_units=False)
            yield e, s


def open_showers(path: PathLike, geometry: str | Geometry | None = None) -> ShowerFile:
    """Open a shower file, detect its format and geometry, and check its structure.

    The format comes from the dataset names, the geometry from the voxel count (or, if
    ``geometry`` is given, is checked against it). Keys, shapes and dtypes are validated; the data
    itself is not read (see :func:`iter_showers` / :func:`read_showers`, which check values).
    """
    p = Path(path)
    with _open_h5(p) as h5:
        return _inspect(h5, p, geometry)


def iter_showers(
    path: PathLike, chunk_size: int = 10_000, geometry: str | Geometry | None = None
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Stream a shower file in chunks of at most ``chunk_size`` showers, without loading it all.

    Yields ``(incident_energies_mev (n,) float64, showers_mev (n, n_voxels) float32)``, both in
    MeV for either format. The structure and the units (on the first showers) are checked when
    this is called; NaN/Inf, E_inc <= 0 and negative voxels are checked per chunk, with errors
    naming the row in the file. Memory: one chunk, 4 * chunk_size * n_voxels bytes of showers.
    """
    if chunk_size < 1:
        raise InputError(f"chunk_size must be >= 1, got {chunk_size}")
    p = Path(path)
    with _open_h5(p) as h5:
        info = _inspect(h5, p, geometry)
        _check_sample(h5, info, info.n_showers)
    return _stream(info, chunk_size, info.n_showers)


def read_showers(
    path: PathLike, geometry: str | Geometry | None = None, max_showers: int | None = None
) -> tuple[np.ndarray, np.ndarray, Geometry]:
    """Read a whole shower file (or its first ``max_showers``), validated.

    Returns ``(incident_energies_mev (N,) float64, showers_mev (N, n_voxels) float32,
    geometry)``, in MeV for either format.
    """
    if max_showers is not None and max_showers < 0:
        raise InputError(f"max_showers must be >= 0, got {max_showers}")
    p = Path(path)
    with _open_h5(p) as h5:
        info = _inspect(h5, p, geometry)
        n = info.n_showers if max_showers is None else min(info.n_showers, max_showers)
        _check_sample(h5, info, n)
    energies = np.empty(n, dtype=np.float64)
    showers = np.empty((n, info.geometry.n_voxels), dtype=np.float32)
    chunk = max(1, _READ_BYTES // (4 * info.geometry.n_voxels))
    start = 0
    for e, s in _stream(info, chunk, n):
        energies[start : start + len(e)] = e
        showers[start : start + len(e)] = s
        start += len(e)
    return energies, showers, info.geometry


# -- writing -------------------------------------------------------------------------------------


class ShowerWriter:
    """Write showers batch by batch into one file, atomically.

    ::

        with ShowerWriter("gen.h5", "ds2", n_total=100_000) as writer:
            for e, s in batches:
                writer.write(e, s)  # MeV, (n,) and (n, 6480)

    Each batch is validated like :func:`validate_showers`. The file is written in the geometry's
    format (CaloGAN: ``energy`` in GeV, ``layer_k`` arrays, ``overflow`` zero where not given;
    ``overflow_mev`` is ignored for CaloChallenge geometries, whose format has no overflow) into
    resizable, chunked, gzip-compressed datasets. On a clean exit the temporary file is renamed
    onto ``path``; on an exception, or if ``n_total`` is given and a different number of showers
    was written, it is removed and any existing file at ``path`` is left untouched.
    """

    def __init__(
        self, path: PathLike, geometry: str | Geometry, n_total: int | None = None
    ) -> None:
        self.path = Path(path)
        self.geometry = _as_geometry(geometry)
        if n_total is not None and n_total < 0:
            raise InputError(f"n_total must be >= 0, got {n_total}")
        self.n_total = n_total
        self.n_written = 0
        self._h5: h5py.File | None = None
        self._stack: contextlib.ExitStack | None = None

    def _layout(self) -> list[tuple[str, tuple[int, ...], type]]:
        """(key, shape of one row, dtype) of every dataset in the file."""
        geo = self.geometry
        if geo.file_format == "calogan":
            return [
                ("energy", (1,), np.float64),
                *[
                    (f"layer_{k}", layer.shape, np.float32)
                    for k, layer in enumerate(geo.relevant_layers)
                ],
                ("overflow", (len(geo.relevant_layers),), np.float32),
            ]
        return [("incident_energies", (1,), np.float64), ("showers", (geo.n_voxels,), np.float32)]

    def __enter__(self) -> ShowerWriter:
        if self._stack is not None:
            raise RuntimeError("ShowerWriter is already open")
        try:
            with contextlib.ExitStack() as stack:
                tmp = stack.enter_context(atomic_path(self.path))
                h5 = stack.enter_context(h5py.File(tmp, "w"))
                for key, row, dtype in self._layout():
                    row_bytes = np.dtype(dtype).itemsize * int(np.prod(row))
                    rows = max(1, min(4096, _H5_CHUNK_BYTES // row_bytes))
                    h5.create_dataset(
                        key,
                        shape=(0, *row),
                        maxshape=(None, *row),
                        chunks=(rows, *row),
                        dtype=dtype,
                        compression="gzip",
                    )
                self._stack = stack.pop_all()
        except OSError as exc:
            raise InputError(f"cannot write shower file {self.path} ({exc})") from None
        self._h5 = h5
        self.n_written = 0
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        stack, self._stack, self._h5 = self._stack, None, None
        if stack is None:
            return False
        if exc_type is None and self.n_total is not None and self.n_written != self.n_total:
            error = InputError(
                f"{self.path}: {self.n_written} showers written but n_total is "
                f"{self.n_total}; file not written"
            )
            stack.__exit__(InputError, error, None)
            raise error
        return bool(stack.__exit__(exc_type, exc, tb))

    def write(
        self,
        incident_energies_mev: np.ndarray,
        showers_mev: np.ndarray,
        overflow_mev: np.ndarray | None = None,
    ) -> None:
        """Validate and append a batch: E (n,) or (n, 1) and showers (n, n_voxels), in MeV;
        ``overflow_mev`` (n, 3) in MeV for CaloGAN (zeros if not given)."""
        if self._h5 is None:
            raise RuntimeError("ShowerWriter.write() called outside its 'with' block")
        n = len(np.asarray(showers_mev))
        where = f"writing {self.path} (batch of {n} at file row {self.n_written})"
        self._append(
            *_prepare(self.geometry, incident_energies_mev, showers_mev, overflow_mev, where)
        )

    def _append(self, e: np.ndarray, s: np.ndarray, overflow: np.ndarray | None) -> None:
        """Append validated data (E (n,) float64, showers (n, n_voxels) float32, MeV)."""
        assert self._h5 is not None
        n = len(e)
        if self.n_total is not None and self.n_written + n > self.n_total:
            raise InputError(
                f"{self.path}: writing {n} more showers would exceed n_total = {self.n_total} "
                f"({self.n_written} already written)"
            )
        if n == 0:
            return
        geo = self.geometry
        if geo.file_format == "calogan":
            columns = {"energy": (e / 1000.0)[:, None]}  # the CaloGAN file stores GeV
            for k, layer in enumerate(geo.relevant_layers):
                columns[f"layer_{k}"] = s[:, layer.start : layer.stop].reshape(n, *layer.shape)
            columns["overflow"] = (
                np.zeros((n, len(geo.relevant_layers)), np.float32)
                if overflow is None
                else overflow
            )
        else:
            columns = {"incident_energies": e[:, None], "showers": s}
        a, b = self.n_written, self.n_written + n
        for key, values in columns.items():
            ds = self._h5[key]
            ds.resize(b, axis=0)
            ds[a:b] = values
        self.n_written = b


def write_showers(
    path: PathLike,
    incident_energies_mev: np.ndarray,
    showers_mev: np.ndarray,
    geometry: str | Geometry,
    overflow_mev: np.ndarray | None = None,
) -> Path:
    """Validate, then write showers atomically in the geometry's own format; returns the path.

    ``incident_energies_mev`` (N,) or (N, 1) and ``showers_mev`` (N, n_voxels), in MeV.
    CaloGAN files get ``energy`` in GeV, ``layer_k`` arrays and ``overflow`` (MeV, (N, 3); zeros if
    not given). ``overflow_mev`` is ignored for CaloChallenge geometries. gzip-compressed.
    """
    geo = _as_geometry(geometry)
    e, s, overflow = _prepare(
        geo, incident_energies_mev, showers_mev, overflow_mev, f"showers for {path}"
    )
    with ShowerWriter(path, geo, n_total=len(e)) as writer:
        writer._append(e, s, overflow)
    return writer.path
