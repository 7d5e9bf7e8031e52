"""Shared by the scripts in bench/: what they print about the machine, and how they time."""

from __future__ import annotations

import math
import platform
import time
from collections.abc import Callable
from pathlib import Path


def cpu_name() -> str:
    """The CPU model as /proc/cpuinfo names it (``platform.processor()`` elsewhere).

    ``platform.processor()`` alone says only ``x86_64`` on Linux, which cannot tell two
    machines' timings apart.
    """
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def best_seconds(
    fn: Callable[[], object],
    repeats: int,
    calls: int = 1,
    budget_s: float = math.inf,
    sync: Callable[[], None] | None = None,
) -> float:
    """Seconds per call of ``fn``: the fastest of ``repeats`` runs of ``calls`` calls each (no
    warm-up: call ``fn`` once first), stopping early once ``budget_s`` seconds are spent. ``sync``
    (e.g. ``torch.cuda.synchronize``) runs before the clock starts and before it stops, so that a
    GPU's queued work is counted."""
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
