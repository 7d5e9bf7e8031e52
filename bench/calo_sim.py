"""Reference shower simulator throughput (showers per second) on this machine.

Rows: each geometry x particle at 1, 10 and 100 GeV (fixed energies, batch 1000, simulation only,
no file writing), then the two goals of issue 4 measured end to end through the CLI path
(simulation + gzip HDF5 writing):

* 100,000 CaloGAN e+ showers, uniform 1-100 GeV, in under 2 minutes;
* dataset 2 at no less than 200 showers/s (log-uniform 1 GeV - 1 TeV, e+).

There is no peer to run in the same process (Geant4 cannot run here); the spec's estimate for
Geant4 on CaloGAN is about 1.8 s per shower (reference-shower-simulator.md section 5, from memory).

    python bench/calo_sim.py            # full table
    python bench/calo_sim.py --quick    # 200 showers per row, goals at 10% size
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from hepflows.calo.formats import ShowerWriter
from hepflows.calo.geometry import GEOMETRIES, get_geometry
from hepflows.calo.simulate import PARTICLES, EnergySpectrum, simulate


def rate(geometry: str, particle: str, energies_mev: np.ndarray, out: Path | None = None) -> float:
    g = get_geometry(geometry)
    t0 = time.perf_counter()
    if out is None:
        for _ in simulate(g, particle, energies_mev, seed=0, batch_size=1000):
            pass
    else:
        with ShowerWriter(out, g, n_total=len(energies_mev)) as writer:
            for b in simulate(g, particle, energies_mev, seed=0, batch_size=1000):
                writer.write(b.incident, b.showers, b.leak_lateral if g.name == "calogan" else None)
    return len(energies_mev) / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("-n", type=int, default=1000, help="showers per table row")
    args = parser.parse_args()
    n = 200 if args.quick else args.n
    print(f"showers per second, simulation only, batch 1000, {n} showers per row")
    print(
        f"| {'geometry':11s} | {'particle':8s} | {'1 GeV':>8s} | {'10 GeV':>8s} | {'100 GeV':>8s} |"
    )
    print("|-------------|----------|----------|----------|----------|")
    for geometry in GEOMETRIES:
        m = max(20, n // 10) if geometry == "ds3" else n
        for particle in PARTICLES:
            rates = [rate(geometry, particle, np.full(m, 1e3 * e)) for e in (1, 10, 100)]
            print(
                f"| {geometry:11s} | {particle:8s} | "
                + " | ".join(f"{r:8.0f}" for r in rates)
                + " |",
                flush=True,
            )

    rng = np.random.default_rng(0)
    scale = 0.1 if args.quick else 1.0
    with tempfile.TemporaryDirectory() as tmp:
        n_gan = int(100_000 * scale)
        e = EnergySpectrum.parse("uniform:1:100").sample_mev(n_gan, rng)
        t0 = time.perf_counter()
        r = rate("calogan", "e+", e, Path(tmp) / "calogan.h5")
        seconds = time.perf_counter() - t0
        goal = 120.0 * scale
        print(
            f"\nCaloGAN e+ 1-100 GeV, {n_gan} showers with writing: {seconds:.1f} s "
            f"({r:.0f}/s); goal < {goal:.0f} s: {'met' if seconds < goal else 'NOT met'}"
        )
        n_ds2 = int(10_000 * scale)
        e = EnergySpectrum.parse("log-uniform:1:1000").sample_mev(n_ds2, rng)
        r = rate("ds2", "e+", e, Path(tmp) / "ds2.h5")
        print(
            f"dataset 2 e+ 1 GeV-1 TeV, {n_ds2} showers with writing: {r:.0f}/s; "
            f"goal >= 200/s: {'met' if r >= 200 else 'NOT met'}"
        )


if __name__ == "__main__":
    main()
