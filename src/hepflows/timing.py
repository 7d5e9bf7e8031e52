"""Wall-clock timing of repeated work, for the speed figures the package and bench/ report."""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable

import torch


def best_seconds(
    fn: Callable[[], object],
    repeats: int,
    calls: int = 1,
    budget_s: float = math.inf,
    device: str | torch.device | None = None,
) -> float:
    """Seconds per call of ``fn``: the fastest of ``repeats`` runs of ``calls`` calls each,
    stopping early once ``budget_s`` seconds are spent. No warm-up: call ``fn`` once first.

    The best run, not the mean: other work on the machine only ever adds time. On a CUDA
    ``device`` the GPU is synchronised before the clock starts and before it stops, so that
    queued kernels are counted.
    """
    dev = torch.device(device) if device is not None else None
    sync = (lambda: torch.cuda.synchronize(dev)) if dev is not None and dev.type == "cuda" else None
    best, spent = math.inf, 0.0
    for _ in range(repeats):
        if sync:
            sync()
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        if sync:
            sync()
        elapsed = time.perf_counter() - t0
        best, spent = min(best, elapsed / calls), spent + elapsed
        if spent > budget_s:
            break
    return best


def matmul_gflops(
    m: int,
    k: int,
    n: int,
    dtype: torch.dtype,
    device: str | torch.device = "cpu",
    repeats: int = 3,
    budget_s: float = math.inf,
) -> float:
    """GFLOP/s of an ``(m x k) @ (k x n)`` product in ``dtype`` on ``device``: the best of
    ``repeats`` after a warm-up on at most 200 rows (where a dtype is emulated, one full product
    can take seconds). Tells a slow machine from slow code, and whether a dtype pays here."""
    dev = torch.device(device)
    a = torch.randn(m, k, device=dev).to(dtype)
    w = torch.randn(k, n, device=dev).to(dtype)
    torch.mm(a[:200], w)  # warm-up
    product = functools.partial(torch.mm, a, w)
    seconds = best_seconds(product, repeats, budget_s=budget_s, device=dev)
    return 2.0 * m * k * n / max(seconds, 1e-12) / 1e9
