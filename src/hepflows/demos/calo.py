"""The CaloFlow demo: the whole chain on built-in data, as the commands a user would type.

simulate CaloGAN e+ showers with the reference simulator -> train flow I, the MAF teacher and the
IAF student (small settings) -> generate with the student -> ``hepflows evaluate calo`` against
a held-out reference -> ``OUT/report.html``. Each step is run through the command-line entry point
and echoed, so the printout doubles as a recipe.
"""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path

from hepflows.io import write_json

#: Small settings for the demo (the packaged CPU defaults train for ~75 minutes).
DEMO_CONFIG = {
    "flow1": {"epochs": 20},
    "teacher": {"epochs": 6},
    "student": {"epochs": 2},
}


class StepFailed(Exception):
    """A demo step exited non-zero; its one-line error has already been printed."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def _run(argv: list[str]) -> None:
    from hepflows.cli import main

    print("$ hepflows " + shlex.join(argv), flush=True)
    status = main(argv)
    if status != 0:
        raise StepFailed(status)


def run_calo_demo(
    out: str | Path,
    n_train: int = 30_000,
    n_reference: int = 10_000,
    seed: int = 0,
    device: str = "cpu",
    quiet: bool = False,
    epochs: int | None = None,
) -> dict:
    """Run the chain into ``out``; returns the evaluation's headline numbers."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    quiet_flag = ["--quiet"] if quiet else []
    train, reference = folder / "train.h5", folder / "reference.h5"
    generated, run = folder / "generated.h5", folder / "run"
    config = folder / "demo-config.json"
    settings = json.loads(json.dumps(DEMO_CONFIG))
    if epochs is not None:
        for stage in settings.values():
            stage["epochs"] = epochs
    write_json(config, settings)
    t0 = time.perf_counter()
    common = ["--geometry", "calogan", "--particle", "e+"]
    _run(
        [
            "calo",
            "simulate",
            *common,
            "-n",
            str(n_train),
            "--seed",
            str(seed + 1),
            "--out",
            str(train),
            *quiet_flag,
        ]
    )
    _run(
        [
            "calo",
            "simulate",
            *common,
            "-n",
            str(n_reference),
            "--seed",
            str(seed + 2),
            "--out",
            str(reference),
            *quiet_flag,
        ]
    )
    _run(
        [
            "calo",
            "train",
            "--data",
            str(train),
            "--out",
            str(run),
            "--config",
            str(config),
            "--seed",
            str(seed),
            "--device",
            device,
            *quiet_flag,
        ]
    )
    _run(
        [
            "calo",
            "generate",
            str(run),
            "--like",
            str(reference),
            "--model",
            "student",
            "--seed",
            str(seed),
            "--device",
            device,
            "--out",
            str(generated),
            *quiet_flag,
        ]
    )
    _run(
        [
            "evaluate",
            "calo",
            str(reference),
            str(generated),
            "--out",
            str(folder),
            "--device",
            device,
        ]
    )
    metrics = json.loads((folder / "metrics.json").read_text())
    minutes = (time.perf_counter() - t0) / 60
    print(f"\nCaloFlow demo done in {minutes:.1f} min.")
    print(f"  training curves: {run / 'training.png'}")
    print(f"  report:          {folder / 'report.html'}")
    return metrics["headline"]
