"""Evaluation cost and the fast preset's fidelity to the challenge preset.

1. ``hepflows evaluate calo`` with the ``fast`` preset on 100,000 vs 100,000 CaloGAN e+ showers
   from the reference simulator (two seeds: the reference-vs-reference floor), end to end through
   the command line, report included. Goal (issue 5): under 5 minutes on 2 cores.
2. The classifier presets side by side on a smaller sample where the answer is not 0.5: CaloGAN
   e+ as "reference" against CaloGAN photons as a deliberately wrong "generator" (photons start
   9/7 X0 deeper), low- and high-level inputs, with the time of each. This is the measured case
   that docs/evaluation.md quotes for how closely ``fast`` tracks ``challenge``.

    python bench/metrics.py                         # both parts
    python bench/metrics.py --showers 20000 --challenge-showers 1000   # quicker
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hepflows.calo import features as F
from hepflows.calo.formats import read_showers
from hepflows.metrics.classifier import classifier_test


def simulate(out: Path, particle: str, n: int, seed: int) -> None:
    cmd = [
        sys.executable,
        "-m",
        "hepflows",
        "calo",
        "simulate",
        "--geometry",
        "calogan",
        "--particle",
        particle,
        "-n",
        str(n),
        "--seed",
        str(seed),
        "--out",
        str(out),
        "--quiet",
    ]
    subprocess.run(cmd, check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--showers", type=int, default=100_000)
    parser.add_argument("--challenge-showers", type=int, default=2000)
    parser.add_argument("--presets", nargs="+", default=["fast", "challenge"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        simulate(d / "ref.h5", "e+", args.showers, 1)
        simulate(d / "gen.h5", "e+", args.showers, 2)
        t0 = time.perf_counter()
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "hepflows",
                "evaluate",
                "calo",
                str(d / "ref.h5"),
                str(d / "gen.h5"),
                "--out",
                str(d / "report"),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - t0
        print(
            f"1. hepflows evaluate calo, fast preset, {args.showers} vs {args.showers} CaloGAN e+ "
            f"(independent seeds), full report: {seconds:.0f} s (goal < 300 s: "
            f"{'met' if seconds < 300 else 'NOT met'})"
        )
        print("\n".join("   " + line for line in out.stdout.splitlines() if "report" not in line))

        n = args.challenge_showers
        simulate(d / "e.h5", "e+", n, 3)
        simulate(d / "g.h5", "gamma", n, 4)
        e_ref, s_ref, g = read_showers(d / "e.h5")
        e_gen, s_gen, _ = read_showers(d / "g.h5")
        print(f"\n2. classifier presets, {n} CaloGAN e+ ('reference') vs {n} photons ('generated')")
        print("| inputs | preset    | AUC              | best epoch | seconds |")
        print("|--------|-----------|------------------|------------|---------|")
        for mode in ("high", "low"):
            x_ref = F.classifier_inputs(g, e_ref, s_ref, mode)
            x_gen = F.classifier_inputs(g, e_gen, s_gen, mode)
            for preset in args.presets:
                t0 = time.perf_counter()
                r = classifier_test(
                    x_ref, x_gen, preset, seed=0, blocks=F.classifier_blocks(g, mode)
                )
                print(
                    f"| {mode:6s} | {preset:9s} | {r.auc.value:.4f} +- {r.auc.error:.4f} | "
                    f"{r.best_epoch:10d} | {time.perf_counter() - t0:7.1f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
