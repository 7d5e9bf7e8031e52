"""Geometries: voxel counts, flat order and centres as in calochallenge-format.md."""

import math

import numpy as np
import pytest

from hepflows.calo.geometry import GEOMETRIES, geometry_for_voxels, get_geometry, parse_binning_xml
from hepflows.io import InputError

EXPECTED = {"calogan": 504, "ds1-photons": 368, "ds1-pions": 533, "ds2": 6480, "ds3": 40500}


@pytest.mark.parametrize("name", GEOMETRIES)
def test_voxel_counts_and_contiguous_layer_slices(name: str) -> None:
    g = get_geometry(name)
    assert g.n_voxels == EXPECTED[name]
    stops = [layer.start for layer in g.layers[1:]]
    assert stops == [layer.stop for layer in g.layers[:-1]]
    for layer in g.relevant_layers:
        assert layer.n_voxels == math.prod(layer.shape)
    assert geometry_for_voxels(EXPECTED[name]).name == name


def test_dataset1_photon_layers_match_the_spec_table() -> None:
    g = get_geometry("ds1-photons")
    slices = [(layer.id, layer.start, layer.stop - 1, layer.shape) for layer in g.relevant_layers]
    assert slices == [(0, 0, 7, (1, 8)), (1, 8, 167, (10, 16)), (2, 168, 357, (10, 19)),
                      (3, 358, 362, (1, 5)), (12, 363, 367, (1, 5))]  # fmt: skip
    pions = get_geometry("ds1-pions")
    assert [layer.id for layer in pions.relevant_layers] == [0, 1, 2, 3, 12, 13, 14]


def test_voxel_centres_follow_the_flat_order() -> None:
    g = get_geometry("ds2")
    c = g.voxel_centres
    index = 144 * 7 + 9 * 3 + 4  # layer 7, alpha bin 3, r bin 4
    assert c["r"][index] == pytest.approx(4.65 * 4.5)
    assert c["alpha"][index] == pytest.approx(-math.pi + 3.5 * 2 * math.pi / 16)
    assert c["x"][index] == pytest.approx(c["r"][index] * math.cos(c["alpha"][index]))
    assert g.voxel_layer[index] == 7
    gan = get_geometry("calogan").voxel_centres
    assert (gan["x"][288 + 5 * 12 + 7], gan["y"][288 + 5 * 12 + 7]) == (-20.0, 60.0)


def test_unknown_counts_name_the_closest_geometry() -> None:
    with pytest.raises(InputError, match="closest is calogan"):
        geometry_for_voxels(500)
    with pytest.raises(InputError, match="unknown geometry"):
        get_geometry("ds4")


def test_bad_xml_gives_clear_errors() -> None:
    with pytest.raises(InputError, match="not valid XML"):
        parse_binning_xml("<Bins><Bin", "photon")
    with pytest.raises(InputError, match="no <Bin name='pion'>"):
        parse_binning_xml('<Bins><Bin name="photon"></Bin></Bins>', "pion")
    with pytest.raises(InputError, match="position 0 has id 3"):
        parse_binning_xml(
            '<Bins><Bin name="p"><Layer id="3" r_edges="0,1" n_bin_alpha="1"/></Bin></Bins>', "p"
        )
    layers = parse_binning_xml(
        '<Bins> <Bin  name="p" ><Layer id="0"  r_edges="0, 1,3 " n_bin_alpha="2" /> </Bin></Bins>',
        "p",
    )
    assert np.array_equal(layers[0][1], [0.0, 1.0, 3.0]) and layers[0][2] == 2
