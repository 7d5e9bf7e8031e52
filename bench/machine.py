"""What the benchmarks print about the machine they ran on, shared by the scripts in bench/
(they time with :func:`hepflows.timing.best_seconds`)."""

from __future__ import annotations

import platform
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
