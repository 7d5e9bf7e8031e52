"""The flow engine: element-wise transforms, conditioners, layers and models.

>>> import torch
>>> from hepflows.flows import MAF
>>> flow = MAF(features=3, context=1, blocks=2, hidden=(32,))
>>> x = flow.sample(5, context=torch.tensor([[0.5], [1.0]]))   # 5 samples per context row
>>> x.shape
torch.Size([5, 2, 3])
"""

from hepflows.flows.layers import (
    Bijection,
    Coupling,
    InverseAutoregressive,
    MaskedAutoregressive,
    Permutation,
)
from hepflows.flows.models import (
    IAF,
    MAF,
    ConditionalDistribution,
    CouplingFlow,
    Flow,
    build_flow,
    coupling_masks,
)
from hepflows.flows.transforms import Affine, ElementwiseTransform, RQSpline, UnitRQSpline

__all__ = [
    "IAF", "MAF", "Affine", "Bijection", "ConditionalDistribution", "Coupling", "CouplingFlow",
    "ElementwiseTransform", "Flow", "InverseAutoregressive", "MaskedAutoregressive", "Permutation",
    "RQSpline", "UnitRQSpline", "build_flow", "coupling_masks",
]  # fmt: skip
