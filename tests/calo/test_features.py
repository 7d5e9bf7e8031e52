"""High-level shower features, binnings and classifier inputs (metrics.md sections 2-4)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hepflows.calo.features import (
    CALOGAN_LOG_FLOOR_MEV,
    apply_threshold,
    binned_layers,
    classifier_blocks,
    classifier_inputs,
    feature_edges,
    fpd_features,
    high_level_features,
    ratio_per_energy_windows,
    voxel_edges,
)
from hepflows.calo.geometry import GEOMETRIES, get_geometry
from hepflows.io import InputError


def weighted_moments(values: list[float], weights: list[float]) -> tuple[float, float]:
    """Plain-Python mean and width sqrt(<v^2> - <v>^2) of values weighted by energies."""
    total = sum(weights)
    mean = sum(v * w for v, w in zip(values, weights, strict=True)) / total
    second = sum(v * v * w for v, w in zip(values, weights, strict=True)) / total
    return mean, math.sqrt(max(0.0, second - mean * mean))


def random_showers(name: str, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    g = get_geometry(name)
    rng = np.random.default_rng(seed)
    showers = rng.exponential(20.0, size=(n, g.n_voxels)) * (rng.random((n, g.n_voxels)) < 0.3)
    incident = 2.0 ** rng.integers(8, 23, size=n).astype(float)
    return incident, apply_threshold(showers, g.threshold_mev)


# -- hand-made showers ---------------------------------------------------------------------------
def test_ds2_hand_made_shower() -> None:
    g = get_geometry("ds2")
    shower = np.zeros((1, g.n_voxels))
    # layer 5: alpha bin 2, r bin 1 -> 3 MeV; alpha bin 10, r bin 4 -> 1 MeV
    shower[0, 144 * 5 + 9 * 2 + 1] = 3.0
    shower[0, 144 * 5 + 9 * 10 + 4] = 1.0
    # layer 7: alpha bin 0, r bin 0 -> 2 MeV
    shower[0, 144 * 7 + 0] = 2.0
    f = high_level_features(g, np.array([10.0]), shower)

    r1, r2 = 1.5 * 4.65, 4.5 * 4.65
    a1 = -math.pi + 2.5 * 2 * math.pi / 16
    a2 = -math.pi + 10.5 * 2 * math.pi / 16
    x1, y1 = r1 * math.cos(a1), r1 * math.sin(a1)
    x2, y2 = r2 * math.cos(a2), r2 * math.sin(a2)

    assert f["E_tot"][0] == pytest.approx(6.0)
    assert f["E_ratio"][0] == pytest.approx(0.6)
    assert f["E_5"][0] == pytest.approx(4.0)
    assert f["E_7"][0] == pytest.approx(2.0)
    assert f["E_0"][0] == 0.0
    # by hand: <r> = (3 * 6.975 + 20.925) / 4; two-point width = |r2 - r1| sqrt(p (1 - p))
    assert f["r_mean_5"][0] == pytest.approx((3 * 6.975 + 20.925) / 4)
    assert f["r_width_5"][0] == pytest.approx(13.95 * math.sqrt(0.75 * 0.25))
    x_mean, x_width = weighted_moments([x1, x2], [3.0, 1.0])
    y_mean, y_width = weighted_moments([y1, y2], [3.0, 1.0])
    assert f["x_mean_5"][0] == pytest.approx(x_mean)
    assert f["y_mean_5"][0] == pytest.approx(y_mean)
    assert f["x_width_5"][0] == pytest.approx(x_width)
    assert f["y_width_5"][0] == pytest.approx(y_width)
    assert f["x_width_5"][0] == pytest.approx(abs(x2 - x1) * math.sqrt(0.1875))
    assert f["sparsity_5"][0] == pytest.approx(1 - 2 / 144)
    # a single voxel: mean at its centre, zero width
    assert f["r_mean_7"][0] == pytest.approx(0.5 * 4.65)
    assert f["x_mean_7"][0] == pytest.approx(2.325 * math.cos(-math.pi + math.pi / 16))
    assert f["y_mean_7"][0] == pytest.approx(2.325 * math.sin(-math.pi + math.pi / 16))
    assert f["r_width_7"][0] == pytest.approx(0.0, abs=1e-6)
    assert f["sparsity_7"][0] == pytest.approx(1 - 1 / 144)
    # an empty layer: everything 0 except sparsity 1
    assert (f["r_mean_0"][0], f["x_width_0"][0], f["sparsity_0"][0]) == (0.0, 0.0, 1.0)
    expected_keys = {"E_tot", "E_ratio"} | {
        f"{k}_{i}"
        for i in range(45)
        for k in ("E", "r_mean", "r_width", "sparsity", "x_mean", "y_mean", "x_width", "y_width")
    }
    assert set(f) == expected_keys
    assert all(v.shape == (1,) for v in f.values())


def test_calogan_hand_made_shower() -> None:
    g = get_geometry("calogan")
    shower = np.zeros((1, g.n_voxels))
    # layer 1 (12 x 12 cells of 40 mm from -240): cell [5][6] centre (-20, 20), [7][6] (60, 20)
    shower[0, 288 + 12 * 5 + 6] = 2.0
    shower[0, 288 + 12 * 7 + 6] = 1.0
    # layer 0 (3 x 96, 160 x 5 mm): cell [1][48] centre (0, 2.5)
    shower[0, 96 * 1 + 48] = 0.5
    f = high_level_features("calogan", np.array([[7.0]]), shower)

    assert f["E_tot"][0] == pytest.approx(3.5)
    assert f["E_ratio"][0] == pytest.approx(0.5)
    assert (f["E_0"][0], f["E_1"][0], f["E_2"][0]) == pytest.approx((0.5, 3.0, 0.0))
    assert f["x_mean_1"][0] == pytest.approx(20.0 / 3.0)
    assert f["y_mean_1"][0] == pytest.approx(20.0)
    assert f["x_width_1"][0] == pytest.approx(80.0 * math.sqrt(2.0 / 9.0))
    assert f["y_width_1"][0] == pytest.approx(0.0, abs=1e-6)
    r_mean, r_width = weighted_moments([math.sqrt(800.0), math.sqrt(4000.0)], [2.0, 1.0])
    assert f["r_mean_1"][0] == pytest.approx(r_mean)
    assert f["r_width_1"][0] == pytest.approx(r_width)
    assert f["sparsity_1"][0] == pytest.approx(1 - 2 / 144)
    assert f["x_mean_0"][0] == pytest.approx(0.0, abs=1e-12)
    assert f["y_mean_0"][0] == pytest.approx(2.5)
    assert f["r_mean_0"][0] == pytest.approx(2.5)
    assert f["sparsity_0"][0] == pytest.approx(1 - 1 / 288)
    assert f["sparsity_2"][0] == 1.0
    assert [layer.id for layer in binned_layers("calogan")] == [0, 1, 2]


def test_ds1_photons_layer0_has_no_xy_features() -> None:
    g = get_geometry("ds1-photons")
    shower = np.zeros((1, g.n_voxels))
    shower[0, 1] = 5.0  # layer 0 r bin 1: centre 7.5 mm
    shower[0, 3] = 15.0  # r bin 3: centre 40 mm
    f = high_level_features(g, np.array([40.0]), shower)
    assert f["E_0"][0] == pytest.approx(20.0)
    assert f["E_ratio"][0] == pytest.approx(0.5)
    assert f["r_mean_0"][0] == pytest.approx((5 * 7.5 + 15 * 40) / 20)  # 31.875
    assert f["r_width_0"][0] == pytest.approx(32.5 * math.sqrt(0.25 * 0.75))
    assert f["sparsity_0"][0] == pytest.approx(0.75)
    xy_keys = sorted(k for k in f if k.startswith(("x_", "y_")))
    assert xy_keys == sorted(f"{k}_{i}" for k in ("x_mean", "y_mean", "x_width", "y_width")
                             for i in (1, 2))  # fmt: skip
    assert [layer.id for layer in binned_layers(g)] == [1, 2]
    assert [layer.id for layer in binned_layers("ds1-pions")] == [1, 2, 12, 13]
    assert len(binned_layers("ds2")) == 45


def test_vectorised_features_match_a_per_shower_loop() -> None:
    g = get_geometry("ds1-pions")
    incident, showers = random_showers("ds1-pions", 5)
    showers[2] = 0.0  # one empty shower
    f = high_level_features(g, incident, showers)
    c = g.voxel_centres
    for n in range(len(showers)):
        assert f["E_tot"][n] == pytest.approx(showers[n].sum())
        for layer in g.relevant_layers:
            e = showers[n, layer.start : layer.stop]
            if e.sum() == 0:
                assert f[f"r_mean_{layer.id}"][n] == 0.0
                continue
            for coord in ("r", "x", "y") if layer.n_alpha > 1 else ("r",):
                mean, width = weighted_moments(list(c[coord][layer.start : layer.stop]), list(e))
                assert f[f"{coord}_mean_{layer.id}"][n] == pytest.approx(mean, abs=1e-9)
                assert f[f"{coord}_width_{layer.id}"][n] == pytest.approx(width, rel=1e-6)
            assert f[f"sparsity_{layer.id}"][n] == pytest.approx(1 - np.mean(e > 0))


@pytest.mark.parametrize("name", GEOMETRIES)
def test_empty_shower_gives_finite_features(name: str) -> None:
    g = get_geometry(name)
    showers = np.zeros((2, g.n_voxels), dtype=np.float32)
    f = high_level_features(g, np.array([1e3, 2e3]), showers)
    assert all(np.all(np.isfinite(v)) for v in f.values())
    assert f["E_tot"].tolist() == [0.0, 0.0]
    assert all(f[f"sparsity_{layer.id}"].tolist() == [1.0, 1.0] for layer in g.relevant_layers)
    for mode in ("low", "low-normed", "high"):
        assert np.all(np.isfinite(classifier_inputs(g, np.array([1e3, 2e3]), showers, mode)))


# -- thresholding --------------------------------------------------------------------------------
def test_apply_threshold_zeroes_exactly_the_values_below() -> None:
    showers = np.array([[0.5, 1.0, 1.5, -2.0], [0.999, 3.0, 0.0, 1.0000001]])
    out = apply_threshold(showers, 1.0)
    np.testing.assert_array_equal(out, [[0.0, 1.0, 1.5, 0.0], [0.0, 3.0, 0.0, 1.0000001]])
    assert showers[0, 0] == 0.5  # the input is not modified
    ds2 = get_geometry("ds2").threshold_mev
    assert apply_threshold(np.array([[0.015, 0.016]]), ds2).tolist() == [[0.0, 0.016]]


# -- classifier inputs ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "high_dim"),
    [("ds1-photons", 30), ("ds1-pions", 46), ("ds2", 362), ("ds3", 362), ("calogan", 26)],
)
def test_classifier_input_dimensions(name: str, high_dim: int) -> None:
    g = get_geometry(name)
    incident, showers = random_showers(name, 3, seed=1)
    n_rel = len(g.relevant_layers)
    dims = {"low": 1 + g.n_voxels, "low-normed": 1 + g.n_voxels + n_rel, "high": high_dim}
    for mode, d in dims.items():
        x = classifier_inputs(g, incident, showers, mode)
        assert x.shape == (3, d)
        assert x.dtype == np.float64
        np.testing.assert_allclose(x[:, 0], np.log10(incident))
    fpd = fpd_features(g, incident, showers)
    np.testing.assert_allclose(fpd, classifier_inputs(g, incident, showers, "cls-high")[:, 1:])
    low = classifier_inputs(g, incident, showers, "low")
    (voxels,) = classifier_blocks(g, "cls-low")
    np.testing.assert_allclose(low[:, voxels], showers / incident[:, None])
    assert classifier_blocks(g, "low-normed") == (voxels,) and classifier_blocks(g, "high") == ()


def test_low_and_low_normed_values() -> None:
    g = get_geometry("ds1-photons")
    incident, showers = random_showers("ds1-photons", 4, seed=2)
    showers[1, 168:358] = 0.0  # layer 2 empty in shower 1
    low = classifier_inputs(g, incident, showers, "low")
    np.testing.assert_allclose(low[:, 1:], showers / incident[:, None])
    normed = classifier_inputs(g, incident, showers, "low-normed")
    e_layers = g.layer_energies(showers)
    for k, layer in enumerate(g.relevant_layers):
        sums = normed[:, 1 + layer.start : 1 + layer.stop].sum(axis=1)
        has_energy = e_layers[:, k] > 0
        np.testing.assert_allclose(sums[has_energy], 1.0)
        assert np.all(sums[~has_energy] == 0.0)
    np.testing.assert_allclose(normed[:, 1 + g.n_voxels :], np.log10(e_layers + 1e-8))
    assert e_layers[1, 2] == 0.0  # the all-zero branch above was exercised


def test_high_vector_order() -> None:
    g = get_geometry("ds1-photons")
    incident, showers = random_showers("ds1-photons", 3, seed=3)
    f = high_level_features(g, incident, showers)
    expected = (
        [np.log10(incident)]
        + [np.log10(f[f"E_{i}"] + 1e-8) for i in (0, 1, 2, 3, 12)]
        + [f[f"{k}_{i}"] / 100 for k in ("x_mean", "y_mean", "x_width", "y_width") for i in (1, 2)]
        + [np.log10(f["E_tot"] + 1e-8)]
        + [f[f"sparsity_{i}"] for i in (0, 1, 2, 3, 12)]
        + [f[f"r_mean_{i}"] / 100 for i in (0, 1, 2, 3, 12)]
        + [f[f"r_width_{i}"] / 100 for i in (0, 1, 2, 3, 12)]
    )
    np.testing.assert_allclose(
        classifier_inputs(g, incident, showers, "high"), np.column_stack(expected)
    )


def test_input_errors() -> None:
    g = get_geometry("ds2")
    good = np.zeros((2, g.n_voxels))
    with pytest.raises(InputError, match="mode"):
        classifier_inputs(g, np.ones(2), good, "medium")
    with pytest.raises(InputError, match="shape"):
        high_level_features(g, np.ones(2), np.zeros((2, 100)))
    with pytest.raises(InputError, match="shape"):
        high_level_features(g, np.ones(2), np.zeros(g.n_voxels))
    with pytest.raises(InputError, match=r"\(N,\) or \(N, 1\)"):
        high_level_features(g, np.ones((2, 2)), good)
    with pytest.raises(InputError, match="match"):
        high_level_features(g, np.ones(3), good)
    with pytest.raises(InputError, match="positive"):
        classifier_inputs(g, np.array([1.0, 0.0]), good, "low")
    with pytest.raises(InputError, match="unknown feature"):
        feature_edges(g, "E_layer", np.ones(3))
    with pytest.raises(InputError, match="no feature"):
        feature_edges("ds1-photons", "x_mean_0", np.ones(3))
    with pytest.raises(InputError, match="shape"):
        voxel_edges(g, np.zeros((2, 5)))


# -- binnings ------------------------------------------------------------------------------------
def test_feature_edges_follow_the_spec_table() -> None:
    ratio = feature_edges("ds2", "E_ratio", np.array([0.9, 1.0]))
    assert len(ratio) == 101
    assert (ratio[0], ratio[-1]) == (0.5, 1.5)

    g = get_geometry("ds2")
    e_l = feature_edges(g, "E_3", np.array([0.0, 5.0, 2500.0]))
    assert len(e_l) == 40  # 40 edges, 39 bins
    assert e_l[0] == pytest.approx(g.threshold_mev)
    assert e_l[-1] == pytest.approx(2500.0)
    np.testing.assert_allclose(np.diff(np.log(e_l)), np.log(2500.0 / g.threshold_mev) / 39)

    def span(name: str, geometry: str = "ds1-pions") -> tuple[float, float, int]:
        edges = feature_edges(geometry, name, np.ones(2))
        return float(edges[0]), float(edges[-1]), len(edges)

    assert span("x_mean_12") == (-500.0, 500.0, 101)
    assert span("y_width_13") == (0.0, 400.0, 101)
    assert span("x_mean_1") == (-100.0, 100.0, 101)
    assert span("r_mean_14") == (0.0, 1500.0, 101)
    assert span("r_width_3") == (0.0, 500.0, 101)
    assert span("x_mean_7", "ds2") == (-30.0, 30.0, 101)
    assert span("x_width_7", "ds3") == (0.0, 30.0, 101)
    assert span("r_mean_0", "ds2") == (0.0, 42.0, 101)
    assert span("r_width_44", "ds2") == (0.0, 20.0, 101)
    assert span("sparsity_12") == (0.0, 1.0, 21)
    assert span("x_mean_0", "calogan") == (-100.0, 100.0, 101)
    assert span("r_mean_2", "calogan") == (0.0, 240.0, 101)

    # No threshold (CaloGAN): log bins start at the smallest positive reference value, but never
    # below CALOGAN_LOG_FLOOR_MEV.
    calogan_e = feature_edges("calogan", "E_0", np.array([0.0, 2.0, 40.0]))
    assert calogan_e[0] == pytest.approx(2.0) and calogan_e[-1] == pytest.approx(40.0)
    tiny = feature_edges("calogan", "E_0", np.array([0.0, 1e-6, 40.0]))
    assert tiny[0] == pytest.approx(CALOGAN_LOG_FLOOR_MEV)
    e_tot = feature_edges("ds1-photons", "E_tot", np.array([0.0, 300.0, 9000.0]))
    assert (len(e_tot), e_tot[0], e_tot[-1]) == (40, pytest.approx(300.0), pytest.approx(9000.0))
    empty = feature_edges("ds1-photons", "E_12", np.zeros(4))  # degenerate reference
    assert len(empty) == 40 and np.all(np.diff(empty) > 0)


def test_voxel_edges() -> None:
    g = get_geometry("ds1-photons")
    showers = np.zeros((2, g.n_voxels))
    showers[1, 10] = 1234.0
    edges = voxel_edges(g, showers)
    assert len(edges) == 50
    assert edges[0] == pytest.approx(1.0)
    assert edges[-1] == pytest.approx(1234.0)
    np.testing.assert_allclose(np.diff(np.log(edges)), np.log(1234.0) / 49)
    calogan = np.zeros((1, 504))
    calogan[0, :3] = [0.5, 7.0, 20.0]
    assert voxel_edges("calogan", calogan)[0] == pytest.approx(0.5)


def test_ratio_per_energy_windows() -> None:
    incident = np.array([256.0, 4096.0, 4096.0, 2.0**22, 300.0])
    photons = ratio_per_energy_windows("ds1-photons", incident[:, None])
    assert len(photons) == 15
    label, mask, edges = photons[4]  # E_inc in [2^12, 2^13)
    assert label == "Einc_4096-8192MeV"
    assert mask.tolist() == [False, True, True, False, False]
    assert (len(edges), edges[0], edges[-1]) == (21, 0.9, 1.1)
    mask0, edges3 = photons[0][1], photons[3][2]
    assert mask0.tolist() == [True, False, False, False, True]
    assert (edges3[0], edges3[-1]) == (0.4, 1.4)
    assert photons[14][1].tolist() == [False, False, False, True, False]
    pions = ratio_per_energy_windows("ds1-pions", incident)
    assert (pions[4][2][0], pions[4][2][-1], len(pions[4][2])) == (0.4, 1.4, 21)
    assert ratio_per_energy_windows("ds2", incident) == []
    assert ratio_per_energy_windows("calogan", incident) == []
