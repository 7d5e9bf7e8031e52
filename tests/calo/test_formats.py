"""Shower files: CaloChallenge and CaloGAN round trips, on-disk layout, streaming, validation."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from hepflows.calo.formats import (
    ShowerWriter,
    iter_showers,
    open_showers,
    read_showers,
    validate_showers,
    write_showers,
)
from hepflows.calo.geometry import GEOMETRIES, get_geometry
from hepflows.io import InputError


def fake_showers(
    name: str, n: int, seed: int = 0, occupancy: float = 0.3
) -> tuple[np.ndarray, np.ndarray]:
    """Sparse non-negative showers (MeV) with a total of 50-100 % of E_inc, E_inc log-uniform
    in the geometry's energy range."""
    geo = get_geometry(name)
    rng = np.random.default_rng(seed)
    lo, hi = geo.energy_range_mev
    e = np.exp(rng.uniform(np.log(lo), np.log(hi), n))
    s = rng.exponential(size=(n, geo.n_voxels)) * (rng.random((n, geo.n_voxels)) < occupancy)
    s[:, 0] += 1.0  # no empty shower
    s *= (e * rng.uniform(0.5, 1.0, n) / s.sum(axis=1))[:, None]
    return e, s.astype(np.float32)


def raw_file(path: Path, **datasets: np.ndarray) -> Path:
    """An HDF5 file with exactly these datasets, bypassing the writer's validation."""
    with h5py.File(path, "w") as f:
        for key, value in datasets.items():
            f.create_dataset(key, data=value)
    return path


# -- round trips and on-disk layout --------------------------------------------------------------


@pytest.mark.parametrize("name", GEOMETRIES)
def test_round_trip_every_geometry(tmp_path: Path, name: str) -> None:
    geo = get_geometry(name)
    n = 3 if name == "ds3" else 40
    e, s = fake_showers(name, n)
    path = write_showers(tmp_path / f"{name}.h5", e, s, name)
    assert path == tmp_path / f"{name}.h5"
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{name}.h5"]  # no temp file left

    info = open_showers(path)
    assert (info.file_format, info.geometry.name, info.n_showers) == (geo.file_format, name, n)
    assert open_showers(path, geometry=name).geometry.name == name

    e2, s2, geo2 = read_showers(path)
    assert geo2.name == name
    assert e2.dtype == np.float64 and s2.dtype == np.float32
    assert s2.shape == (n, geo.n_voxels)
    np.testing.assert_allclose(e2, e, rtol=1e-12)
    np.testing.assert_array_equal(s2, s)


def test_calochallenge_file_layout(tmp_path: Path) -> None:
    e, s = fake_showers("ds1-pions", 12)
    path = write_showers(tmp_path / "p.h5", e[:, None], s, "ds1-pions")  # (N, 1) accepted too
    with h5py.File(path) as f:
        assert sorted(f.keys()) == ["incident_energies", "showers"]
        assert f["incident_energies"].shape == (12, 1)
        assert f["showers"].shape == (12, 533)
        assert f["showers"].compression == "gzip"
        np.testing.assert_array_equal(f["incident_energies"][:, 0], e)  # MeV


def test_calogan_file_layout_units_and_voxel_order(tmp_path: Path) -> None:
    geo = get_geometry("calogan")
    e = np.array([1000.0, 2000.0, 50_000.0])
    s = np.zeros((3, 504), np.float32)
    s[0, 288 + 5 * 12 + 7] = 700.0  # layer_1, x = 5, y = 7
    s[1, 1 * 96 + 40] = 1500.0  # layer_0, x = 1, y = 40
    s[2, 432 + 11 * 6 + 5] = 30_000.0  # layer_2, x = 11, y = 5 (the last voxel, 503)
    overflow = np.array([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]])
    path = write_showers(tmp_path / "g.h5", e, s, "calogan", overflow_mev=overflow)

    with h5py.File(path) as f:
        assert sorted(f.keys()) == ["energy", "layer_0", "layer_1", "layer_2", "overflow"]
        np.testing.assert_allclose(f["energy"][:], (e / 1000.0)[:, None])  # GeV on disk
        for k, layer in enumerate(geo.relevant_layers):
            assert f[f"layer_{k}"].shape == (3, *layer.shape)
        assert [f[f"layer_{k}"].shape[1:] for k in range(3)] == [(3, 96), (12, 12), (12, 6)]
        layer_0, layer_1, layer_2 = (f[f"layer_{k}"][:] for k in range(3))
        np.testing.assert_array_equal(f["overflow"][:], overflow)
    assert layer_1[0, 5, 7] == 700.0 and layer_0[1, 1, 40] == 1500.0
    assert layer_2[2, 11, 5] == 30_000.0
    total = sum(layer.sum() for layer in (layer_0, layer_1, layer_2))
    assert total == s.sum()  # nothing else is set

    e2, s2, _ = read_showers(path)
    np.testing.assert_allclose(e2, e, rtol=1e-12)  # back in MeV
    np.testing.assert_array_equal(s2, s)


def test_calogan_overflow_defaults_to_zeros(tmp_path: Path) -> None:
    e, s = fake_showers("calogan", 5)
    path = write_showers(tmp_path / "g.h5", e, s, get_geometry("calogan"))
    with h5py.File(path) as f:
        np.testing.assert_array_equal(f["overflow"][:], np.zeros((5, 3)))


def test_calochallenge_layout_with_504_voxels_reads_as_calogan_geometry(tmp_path: Path) -> None:
    e, s = fake_showers("calogan", 4)
    path = raw_file(tmp_path / "c.h5", incident_energies=e[:, None], showers=s)
    info = open_showers(path)
    assert (info.file_format, info.geometry.name) == ("calochallenge", "calogan")


# -- chunked writing and reading -----------------------------------------------------------------


@pytest.mark.parametrize("name", ["ds1-photons", "calogan"])
def test_writer_in_chunks_equals_one_write(tmp_path: Path, name: str) -> None:
    e, s = fake_showers(name, 100, seed=1)
    write_showers(tmp_path / "one.h5", e, s, name)
    with ShowerWriter(tmp_path / "chunks.h5", name, n_total=100) as writer:
        for a, b in [(0, 30), (30, 30), (30, 65), (65, 100)]:  # includes an empty batch
            writer.write(e[a:b], s[a:b])
        assert not (tmp_path / "chunks.h5").exists()  # only renamed into place on exit
    assert writer.n_written == 100
    with h5py.File(tmp_path / "one.h5") as f1, h5py.File(tmp_path / "chunks.h5") as f2:
        assert sorted(f1.keys()) == sorted(f2.keys())
        for key in f1:
            assert f1[key].shape == f2[key].shape
            np.testing.assert_array_equal(f1[key][:], f2[key][:])


def test_writer_exception_leaves_nothing(tmp_path: Path) -> None:
    e, s = fake_showers("ds1-photons", 20)
    with pytest.raises(RuntimeError, match="boom"):
        with ShowerWriter(tmp_path / "out.h5", "ds1-photons") as writer:
            writer.write(e[:10], s[:10])
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_writer_failure_keeps_the_old_file(tmp_path: Path) -> None:
    e, s = fake_showers("ds1-photons", 20)
    path = write_showers(tmp_path / "out.h5", e, s, "ds1-photons")
    bad = s.copy()
    bad[3, 7] = np.nan
    with pytest.raises(InputError, match="NaN"):
        with ShowerWriter(path, "ds1-photons") as writer:
            writer.write(e[:10], s[:10])
            writer.write(e[10:], bad[10:])  # fine
            writer.write(e, bad)  # NaN: the with block fails
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.h5"]
    np.testing.assert_array_equal(read_showers(path)[1], s)  # old content intact


def test_writer_checks_n_total(tmp_path: Path) -> None:
    e, s = fake_showers("ds1-photons", 10)
    with pytest.raises(InputError, match="9 showers written but n_total is 10"):
        with ShowerWriter(tmp_path / "out.h5", "ds1-photons", n_total=10) as writer:
            writer.write(e[:9], s[:9])
    with pytest.raises(InputError, match="exceed n_total"):
        with ShowerWriter(tmp_path / "out.h5", "ds1-photons", n_total=5) as writer:
            writer.write(e, s)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["ds1-pions", "calogan"])
def test_iter_showers_chunks_match_read_showers(tmp_path: Path, name: str) -> None:
    e, s = fake_showers(name, 30, seed=2)
    path = write_showers(tmp_path / "x.h5", e, s, name)
    chunks = list(iter_showers(path, chunk_size=7))
    assert [len(ce) for ce, _ in chunks] == [7, 7, 7, 7, 2]
    assert all(cs.shape == (len(ce), s.shape[1]) for ce, cs in chunks)
    e_all, s_all, _ = read_showers(path)
    np.testing.assert_array_equal(np.concatenate([c[0] for c in chunks]), e_all)
    np.testing.assert_array_equal(np.concatenate([c[1] for c in chunks]), s_all)
    np.testing.assert_array_equal(s_all, s)

    e10, s10, _ = read_showers(path, max_showers=10)
    np.testing.assert_array_equal(s10, s[:10])
    np.testing.assert_array_equal(e10, e_all[:10])


# -- validation: files ---------------------------------------------------------------------------


def test_missing_key(tmp_path: Path) -> None:
    e, _ = fake_showers("ds1-photons", 5)
    path = raw_file(tmp_path / "m.h5", incident_energies=e[:, None])
    with pytest.raises(InputError, match=r"m\.h5: missing dataset 'showers' \(found: incident"):
        open_showers(path)
    path = raw_file(tmp_path / "g.h5", energy=e[:, None] / 1000, layer_0=np.zeros((5, 3, 96)))
    with pytest.raises(InputError, match="missing dataset 'layer_1'"):
        read_showers(path)
    path = raw_file(tmp_path / "other.h5", x=np.zeros(3))
    with pytest.raises(InputError, match="not a shower file.*found: x"):
        open_showers(path)


def test_corrupt_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "garbage.h5"
    path.write_bytes(np.random.default_rng(3).bytes(4096))
    with pytest.raises(InputError, match=r"garbage\.h5 is not a readable HDF5 file"):
        open_showers(path)
    with pytest.raises(InputError, match="not found"):
        read_showers(tmp_path / "nope.h5")


def test_wrong_voxel_count_names_closest_geometry(tmp_path: Path) -> None:
    e, s = fake_showers("calogan", 4)
    path = raw_file(tmp_path / "v.h5", incident_energies=e[:, None], showers=s[:, :500])
    with pytest.raises(InputError, match=r"v\.h5.*'showers'.*500 voxels.*closest is calogan"):
        open_showers(path)
    with pytest.raises(InputError, match="closest is calogan"):
        validate_showers(e, s[:, :500], "calogan", "batch")


def test_wrong_geometry_requested(tmp_path: Path) -> None:
    e, s = fake_showers("ds1-photons", 4)
    path = write_showers(tmp_path / "p.h5", e, s, "ds1-photons")
    with pytest.raises(InputError, match="368 voxels.*geometry ds2 has 6480.*ds1-photons"):
        open_showers(path, geometry="ds2")
    e, s = fake_showers("calogan", 4)
    path = write_showers(tmp_path / "g.h5", e, s, "calogan")
    with pytest.raises(InputError, match="CaloGAN file.*ds1-pions was requested"):
        read_showers(path, geometry="ds1-pions")


def test_bad_shapes_in_files(tmp_path: Path) -> None:
    e, s = fake_showers("ds1-photons", 10)
    path = raw_file(tmp_path / "n.h5", incident_energies=e[:8, None], showers=s)
    with pytest.raises(InputError, match="'incident_energies' has 8 rows but 'showers' has 10"):
        open_showers(path)
    e, _ = fake_showers("calogan", 2)
    layers = {"layer_0": np.zeros((2, 3, 96)), "layer_1": np.zeros((2, 12, 11))}
    path = raw_file(tmp_path / "g.h5", energy=e[:, None] / 1e3, **layers)
    with pytest.raises(
        InputError, match=r"'layer_1' has shape \(2, 12, 11\); expected \(2, 12, 12"
    ):
        open_showers(path)


def test_integer_dtype_in_file(tmp_path: Path) -> None:
    e, s = fake_showers("ds1-photons", 5)
    path = raw_file(tmp_path / "i.h5", incident_energies=e[:, None], showers=s.astype(np.int32))
    with pytest.raises(InputError, match="'showers' has dtype int32; expected floating"):
        open_showers(path)


def test_nan_and_negative_in_file_report_the_global_row(tmp_path: Path) -> None:
    e, s = fake_showers("ds1-photons", 30)
    bad = s.copy()
    bad[23, 100] = np.nan
    path = raw_file(tmp_path / "nan.h5", incident_energies=e[:, None], showers=bad)
    with pytest.raises(InputError, match=r"nan\.h5: 'showers' contain 1 NaN/Inf.*row 23"):
        for _ in iter_showers(path, chunk_size=10):
            pass
    with pytest.raises(InputError, match="row 23"):
        read_showers(path)
    bad = s.copy()
    bad[17, 5] = -2.0
    bad[29, 6] = -1e-9  # any negative value is an error
    path = raw_file(tmp_path / "neg.h5", incident_energies=e[:, None], showers=bad)
    with pytest.raises(
        InputError, match=r"2 negative voxel energies in 2 showers \(first at row 17"
    ):
        read_showers(path)


def test_calogan_energy_stored_in_mev_is_caught(tmp_path: Path) -> None:
    e, s = fake_showers("calogan", 20)
    path = write_showers(tmp_path / "g.h5", e, s, "calogan")
    with h5py.File(path, "r+") as f:
        f["energy"][:] = f["energy"][:] * 1000.0  # wrongly in MeV
    with pytest.raises(InputError, match="'energy'.*1000x too large"):
        read_showers(path)


# -- validation: arrays --------------------------------------------------------------------------


def test_validate_accepts_good_showers() -> None:
    for name in ("calogan", "ds1-photons", "ds2"):
        e, s = fake_showers(name, 20)
        validate_showers(e, s, name, "test")
        validate_showers(e[:, None], s.astype(np.float64), get_geometry(name), "test")


def test_validate_nan_inf_and_energy_errors() -> None:
    e, s = fake_showers("ds1-photons", 20)
    bad = s.copy()
    bad[4, 1] = np.inf
    bad[9, 2] = np.nan
    bad[9, 3] = np.nan
    expected = r"^batch: showers contain 3 NaN/Inf values in 2 showers \(first at row 4\)"
    with pytest.raises(InputError, match=expected):
        validate_showers(e, bad, "ds1-photons", "batch")
    with pytest.raises(InputError, match="row 104"):
        validate_showers(e, bad, "ds1-photons", "batch", row_offset=100)
    bad_e = e.copy()
    bad_e[6] = np.nan
    with pytest.raises(InputError, match="incident energies contain 1 NaN/Inf.*row 6"):
        validate_showers(bad_e, s, "ds1-photons", "batch")
    bad_e[6] = 0.0
    with pytest.raises(InputError, match=r"must be > 0 MeV; 1 are <= 0 \(first at row 6"):
        validate_showers(bad_e, s, "ds1-photons", "batch")


def test_validate_negative_energy() -> None:
    e, s = fake_showers("ds2", 10)
    bad = s.copy()
    bad[2, 100] = -0.5
    with pytest.raises(InputError, match=r"1 negative voxel energies.*row 2.*-0\.5 MeV"):
        validate_showers(e, bad, "ds2", "batch")


def test_validate_detects_gev() -> None:
    e, s = fake_showers("ds1-photons", 50)
    with pytest.raises(InputError, match="incident energies look like GeV"):
        validate_showers(e / 1000.0, s, "ds1-photons", "batch")
    with pytest.raises(InputError, match="showers look like GeV"):
        validate_showers(e, s / 1000.0, "ds1-photons", "batch")


def test_validate_shape_and_dtype_errors() -> None:
    e, s = fake_showers("ds2", 5)
    expected = r"shape \(5, 6480\); geometry calogan expects \(N, 504\).*voxel count of ds2"
    with pytest.raises(InputError, match=expected):
        validate_showers(e, s, "calogan", "batch")
    with pytest.raises(InputError, match=r"5 incident energies but 4 showers"):
        validate_showers(e, s[:4], "ds2", "batch")
    with pytest.raises(InputError, match="incident energies have shape"):
        validate_showers(np.stack([e, e], axis=1), s, "ds2", "batch")
    with pytest.raises(InputError, match="showers have dtype int64; expected floating"):
        validate_showers(e, s.astype(np.int64), "ds2", "batch")
    with pytest.raises(InputError, match="incident energies have dtype int64"):
        validate_showers(e.astype(np.int64), s, "ds2", "batch")
    with pytest.raises(InputError, match="unknown geometry"):
        validate_showers(e, s, "ds4", "batch")


def test_write_rejects_bad_data_and_leaves_no_file(tmp_path: Path) -> None:
    e, s = fake_showers("calogan", 10)
    with pytest.raises(InputError, match="GeV"):
        write_showers(tmp_path / "g.h5", e / 1000.0, s, "calogan")
    with pytest.raises(InputError, match="overflow has shape"):
        write_showers(tmp_path / "g.h5", e, s, "calogan", overflow_mev=np.zeros((10, 2)))
    with pytest.raises(InputError, match="overflow has 3 NaN/Inf or negative"):
        write_showers(tmp_path / "g.h5", e, s, "calogan", overflow_mev=-np.eye(10, 3))
    assert list(tmp_path.iterdir()) == []
