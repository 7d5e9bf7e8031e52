"""Training losses of neural importance sampling (neural-importance-sampling.md section 2).

Each loss is an importance-sampled estimator of a divergence D(p || q) between the normalised
target p = f / I and the sampler q, differentiated only through log q at fixed points. The points
may come from an older sampler q_s (buffered training, MadNIS arXiv:2212.06172): every per-point
term is then multiplied by sg(q / q_s), which makes the estimator unbiased for the current q.

Per point, with w = p / q and sg = stop-gradient:

* ``kl``:          sg(w) (sg log p - log q)                   (KL(p || q), i-flow and MadNIS)
* ``variance``:    -sg(w^2) log q                              (gradient of E_q[w^2] = 1 + Var(w),
                                                                 the Pearson chi^2 divergence)
* ``exponential``: sg(w) (sg log p - log q)^2                  (the i-flow paper's benchmark loss)
"""

from __future__ import annotations

import torch
from torch import Tensor

LOSSES = ("kl", "variance", "exponential")


def nis_loss(name: str, log_p: Tensor, log_q: Tensor, log_q_sample: Tensor) -> Tensor:
    """The loss ``name`` for points drawn from q_s (``log_q_sample``), target log-density
    ``log_p`` (constant) and current sampler log-density ``log_q`` (with gradient)."""
    log_p = log_p.detach()
    reweight = torch.exp(log_q.detach() - log_q_sample)  # q / q_s; 1 for fresh samples
    log_w = (log_p - log_q).detach()
    w = torch.exp(log_w)
    if name == "kl":
        per_point = w * (log_p - log_q)
    elif name == "variance":
        per_point = -(w * w) * log_q
    elif name == "exponential":
        per_point = w * (log_p - log_q) ** 2
    else:
        raise ValueError(f"unknown loss {name!r}; expected one of {LOSSES}")
    return torch.mean(reweight * per_point)
