"""CaloFlow preprocessing: every map inverts exactly, and the constants do what the spec says."""

import dataclasses

import numpy as np
import pytest

from hepflows.calo.geometry import get_geometry
from hepflows.calo.preprocess import (
    ALPHA,
    CUT_MAX_FACTOR,
    CUT_MIN_FACTOR,
    CUT_QUANTILE,
    Preprocessing,
    add_noise,
    default_noise_cut,
    energy_context,
    fit_preprocessing,
    flow2_context,
    flow2_to_voxels,
    inverse_logit,
    layer_energies_to_u,
    logit,
    noise_only_layers,
    u_to_layer_energies,
    voxel_fraction_max,
    voxels_to_flow2,
)
from hepflows.io import InputError

GEO = get_geometry("calogan")


def showers(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    e_inc = rng.uniform(1e3, 1e5, n)
    s = rng.exponential(1.0, (n, GEO.n_voxels)) * (rng.random((n, GEO.n_voxels)) < 0.3)
    s *= (0.95 * e_inc / s.sum(1).clip(1e-9))[:, None]
    s[0, GEO.layers[2].start : GEO.layers[2].stop] = 0.0  # an empty last layer
    s[1, : GEO.layers[0].stop] = 0.0  # an empty first layer
    return e_inc, s.astype(np.float32)


def test_logit_round_trip_and_range() -> None:
    x = np.array([0.0, 1e-9, 0.3, 1.0 - 1e-9, 1.0])
    assert np.allclose(inverse_logit(logit(x)), x, atol=1e-12)
    assert np.isfinite(logit(x)).all()
    assert logit(np.array([0.0]))[0] == pytest.approx(np.log(ALPHA / (1 - ALPHA)))


def test_u_space_round_trip_with_empty_layers() -> None:
    e_inc, s = showers(200)
    pre = fit_preprocessing(GEO, e_inc, s)
    layers = GEO.layer_energies(s).astype(np.float64)
    layers[5] = 0.0  # a shower with no energy at all
    u = layer_energies_to_u(pre, e_inc, layers)
    assert (u >= 0).all() and (u <= 1).all()
    back = u_to_layer_energies(pre, e_inc, u)
    assert np.allclose(back, layers, rtol=1e-10, atol=1e-9)
    # and through the logit, as flow I sees it
    assert np.allclose(
        u_to_layer_energies(pre, e_inc, inverse_logit(logit(u))), layers, rtol=1e-4, atol=1e-3
    )


def test_u_scale_keeps_u0_below_one() -> None:
    e_inc, s = showers(100)
    s[3] *= 1.5  # a shower depositing more than its incident energy
    pre = fit_preprocessing(GEO, e_inc, s)
    u0 = layer_energies_to_u(pre, e_inc, GEO.layer_energies(s))[:, 0]
    assert pre.u_scale >= 1.0 and u0.max() < 1.0
    assert fit_preprocessing(GEO, e_inc, s, u_scale=4.65).u_scale == 4.65


def test_energy_context_maps_the_range_onto_minus_one_one() -> None:
    pre = fit_preprocessing(GEO, *showers(20))
    low, high = pre.energy_range_mev
    c = energy_context(pre, np.array([low, np.sqrt(low * high), high]))
    assert np.allclose(c.ravel(), [-1.0, 0.0, 1.0])
    ctx = flow2_context(pre, np.array([5e4]), np.array([[1e4, 3e4, 0.0]]))
    assert ctx.shape == (1, 4)
    assert ctx[0, 3] == pytest.approx((np.log10(1e-8) + 4) / 4)  # empty layer: the log floor


def test_voxel_round_trip_recovers_the_shower() -> None:
    e_inc, s = showers(50)
    pre = fit_preprocessing(GEO, e_inc, s)
    noisy = add_noise(pre, s, np.random.default_rng(1))
    assert (noisy > s).all() and (noisy - s).max() < pre.noise_cut_mev
    x = voxels_to_flow2(pre, GEO, noisy)
    assert x.dtype == np.float32 and np.isfinite(x).all()
    back = flow2_to_voxels(pre, GEO, x, GEO.layer_energies(s))
    assert ((back == 0) == (s < pre.noise_cut_mev)).mean() > 0.999  # zeros stay zero
    big = s > 10 * pre.noise_cut_mev
    # the 1 keV noise stays in (it is removed only below the cut)
    assert np.allclose(back[big], s[big], rtol=1e-3, atol=pre.noise_cut_mev)
    # every layer sums to its energy (up to the cut of sub-keV voxels)
    assert np.allclose(GEO.layer_energies(back), GEO.layer_energies(s), rtol=1e-3, atol=1e-2)


def test_noise_level_sets_the_noise_and_the_cut() -> None:
    e_inc, s = showers(50)
    pre = fit_preprocessing(GEO, e_inc, s, noise_mev=0.1)
    assert pre.noise_cut_mev == pytest.approx(default_noise_cut(GEO, s, 0.1))
    assert 0.1 <= pre.noise_cut_mev <= CUT_MAX_FACTOR * 0.1
    noisy = add_noise(pre, s, np.random.default_rng(2))
    assert 0.09 < (noisy - s).max() < 0.1 and (noisy >= s).all()
    assert fit_preprocessing(GEO, e_inc, s, noise_mev=0.1, noise_cut_mev=0.5).noise_cut_mev == 0.5
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(InputError, match="voxel noise"):
            fit_preprocessing(GEO, e_inc, s, noise_mev=bad)
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(InputError, match="noise cut"):
            fit_preprocessing(GEO, e_inc, s, noise_cut_mev=bad)


def test_default_cut_sits_below_the_real_deposits_and_above_the_noise() -> None:
    rng = np.random.default_rng(3)
    hits = rng.random((2000, GEO.n_voxels)) < 0.2
    noise = 1e-3  # MeV
    # real deposits from 0.2 MeV up: the cut goes to its ceiling, 10x the noise
    s = np.where(hits, rng.uniform(0.2, 50.0, hits.shape), 0.0)
    assert default_noise_cut(GEO, s, noise) == pytest.approx(CUT_MAX_FACTOR * noise)
    # a tenth of the deposits at 6-8 keV: the cut stays at the 1e-3 quantile, above the floor
    small = rng.random(hits.shape) < 0.1
    s2 = np.where(hits, np.where(small, rng.uniform(6e-3, 8e-3, hits.shape), s), 0.0)
    cut = default_noise_cut(GEO, s2, noise)
    assert cut == pytest.approx(np.quantile(s2[s2 > 0], CUT_QUANTILE))
    assert 6e-3 <= cut < 6.1e-3
    # deposits down to and below the noise (CaloGAN pi+): never below the floor, 5x the noise's
    # edge, where flow II's smeared noise ends; a readout threshold wins
    assert CUT_MIN_FACTOR * noise == pytest.approx(5e-3)
    assert default_noise_cut(GEO, s * 1e-5, noise) == pytest.approx(CUT_MIN_FACTOR * noise)
    tiny = np.where(small, s * 1e-7, s)
    assert default_noise_cut(GEO, tiny, noise) == pytest.approx(CUT_MIN_FACTOR * noise)
    assert default_noise_cut(get_geometry("ds1-photons"), s[:, :368], noise) == 1.0
    assert default_noise_cut(GEO, np.zeros((5, GEO.n_voxels)), noise) == pytest.approx(
        CUT_MIN_FACTOR * noise
    )


def test_support_clip_caps_voxels_beyond_the_training_maximum() -> None:
    e_inc, s = showers(200)
    pre = fit_preprocessing(GEO, e_inc, s)
    vmax = np.asarray(pre.voxel_max)
    first = GEO.layers[0]
    block = s[:, first.start : first.stop].astype(np.float64)
    total = block.sum(1, keepdims=True)
    share = np.divide(block, total, out=np.zeros_like(block), where=total > 0)
    assert np.allclose(vmax[first.start : first.stop], share.max(0), atol=1e-6)
    assert vmax.shape == (GEO.n_voxels,) and ((vmax >= 0) & (vmax <= 1)).all()
    assert voxel_fraction_max(GEO, s, chunk=7) == list(vmax)  # chunking changes nothing
    # a generated shower with 60% of layer 0 in voxel 5, whose training maximum is far lower
    layers = np.array([[1e4, 2e4, 50.0]])
    fractions = np.full((1, GEO.n_voxels), 1e-3)
    fractions[0, 5] = 0.6
    x = logit(fractions)
    clipped = flow2_to_voxels(pre, GEO, x, layers)
    free = flow2_to_voxels(dataclasses.replace(pre, voxel_max=None), GEO, x, layers)
    assert np.allclose(GEO.layer_energies(clipped), layers, rtol=1e-5)  # energies kept
    assert np.allclose(GEO.layer_energies(free), layers, rtol=1e-5)
    layer0 = fractions[0, first.start : first.stop] / fractions[0, first.start : first.stop].sum()
    capped = np.minimum(layer0, vmax[first.start : first.stop])
    expected = capped[5] / capped.sum()  # capped, then renormalised once
    assert free[0, 5] / layers[0, 0] == pytest.approx(layer0[5], rel=1e-4)
    assert clipped[0, 5] / layers[0, 0] == pytest.approx(expected, rel=1e-4)
    assert expected < 0.5 * layer0[5]
    # old runs without the key load unchanged, with the clip off
    data = pre.to_json()
    del data["voxel_max"]
    assert Preprocessing.from_json(data).voxel_max is None
    assert Preprocessing.from_json(pre.to_json()) == pre


def test_noise_only_layers_finds_layers_left_in_the_noise_band() -> None:
    e_inc, s = showers(50)
    pre = fit_preprocessing(GEO, e_inc, s)
    cut = pre.noise_cut_mev
    back = GEO.layers[2]
    layers = np.array([[1e4, 2e4, 8.0]] * 4)
    layers[3, 2] = 0.5 * cut  # a back layer below the cut: nothing to resolve
    fractions = np.full((4, GEO.n_voxels), 1e-9)
    fractions[:, GEO.layers[0].start + 3] = fractions[:, GEO.layers[1].start + 7] = 0.9
    fractions[0, back.start + 5] = 0.9  # a deposit: fine
    fractions[1, back.start + 5] = 0.9 * cut / 8.0  # largest voxel just below the cut: noise only
    fractions[2, back.start :] = 1e-5  # all 72 in the noise band
    x = logit(fractions)
    assert noise_only_layers(pre, GEO, x, layers).tolist() == [False, True, True, False]
    # what the generator avoids: renormalising a noise-only layer lights all of it
    out = flow2_to_voxels(pre, GEO, x, layers)
    assert np.allclose(out[2, back.start : back.stop], 8.0 / 72, rtol=1e-5)
    assert (out[0, back.start : back.stop] > 0).sum() == 1


def _flow2_to_voxels_in_numpy(pre: Preprocessing, x: np.ndarray, layers: np.ndarray) -> np.ndarray:
    """An independent NumPy float64 version of the map (the one hepflows used until session 23)."""
    v = 1.0 / (1.0 + np.exp(-x.astype(np.float64)))
    v = np.clip((v - ALPHA) / (1.0 - 2.0 * ALPHA), 0.0, 1.0)
    for cap in (None, pre.voxel_max):
        if cap is not None:
            v = np.minimum(v, np.asarray(cap))
        for layer in GEO.relevant_layers:
            part = v[:, layer.start : layer.stop]
            sums = part.sum(1, keepdims=True)
            v[:, layer.start : layer.stop] = part / np.where(sums > 0, sums, 1.0)  # parts >= 0
    for l, layer in enumerate(GEO.relevant_layers):
        v[:, layer.start : layer.stop] *= layers[:, l : l + 1]
    v[v < pre.noise_cut_mev] = 0.0
    return v.astype(np.float32)


def test_generation_maps_match_numpy_and_take_tensors() -> None:
    """flow2_to_voxels (torch, float64) equals an independent NumPy version to the last float32
    digit; tensors in give tensors out, the same values, for the generator on any device."""
    import torch

    e_inc, s = showers(200)
    pre = fit_preprocessing(GEO, e_inc, s)
    rng = np.random.default_rng(4)
    x = rng.normal(-6.0, 4.0, (200, GEO.n_voxels)).astype(np.float32)
    x[3, GEO.layers[2].start : GEO.layers[2].stop] = -14.0  # a back layer in the noise band
    layers = GEO.layer_energies(s) + 1.0
    out = flow2_to_voxels(pre, GEO, x, layers)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    np.testing.assert_allclose(out, _flow2_to_voxels_in_numpy(pre, x, layers), rtol=1e-6)
    as_tensor = flow2_to_voxels(pre, GEO, torch.from_numpy(x), torch.from_numpy(layers))
    assert isinstance(as_tensor, torch.Tensor) and np.array_equal(as_tensor.numpy(), out)
    flags = noise_only_layers(pre, GEO, x, layers)
    assert flags.dtype == bool and flags[3]
    same = noise_only_layers(pre, GEO, torch.from_numpy(x), torch.from_numpy(layers))
    assert np.array_equal(same.numpy(), flags)
    assert np.array_equal(inverse_logit(torch.from_numpy(x)).numpy(), inverse_logit(x))
