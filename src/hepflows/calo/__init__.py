"""Calorimeter showers: geometries, file formats, the reference simulator.

See :mod:`hepflows.calo.geometry` (voxel layouts and media), :mod:`hepflows.calo.formats`
(CaloChallenge and CaloGAN HDF5 files) and :mod:`hepflows.calo.simulate` (GFLASH-based
reference shower simulator).
"""

from hepflows.calo.geometry import GEOMETRIES, Geometry, Layer, geometry_for_voxels, get_geometry

__all__ = ["GEOMETRIES", "Geometry", "Layer", "geometry_for_voxels", "get_geometry"]
