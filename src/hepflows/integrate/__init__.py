"""Neural importance sampling: integrate and unweight with flows on the unit hypercube.

See :class:`~hepflows.integrate.integrator.Integrator` and the built-in integrands in
:mod:`hepflows.integrate.integrands` (i-flow arXiv:2001.05486, MadNIS arXiv:2212.06172).
"""

from hepflows.integrate.integrator import (
    IntegrationResult,
    Integrator,
    UnweightingResult,
    bootstrap_efficiency,
    make_sampler,
    write_events,
)

__all__ = [
    "IntegrationResult", "Integrator", "UnweightingResult", "bootstrap_efficiency",
    "make_sampler", "write_events",
]  # fmt: skip
