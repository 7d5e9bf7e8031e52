"""CaloFlow fidelity and speed: teacher and student against the reference simulator.

For one particle (and geometry), in one run:

1. simulate (if missing) a training set, a held-out reference and a second, independent
   reference with the reference simulator (seeds differ per sample);
2. train flow I, the flow II teacher and the student with the geometry's CPU configuration
   (``hepflows calo train``; an interrupted run resumes);
3. generate as many showers as the reference holds, with the reference's incident energies, from
   the teacher, the student, the student with bfloat16 matrix products (``student-bf16``) and
   that with fused, compiled splines (``student-bf16-compiled``, ``--compile``);
4. evaluate each against the reference (``fast`` classifier preset: low- and high-level AUC, FPD,
   KPD, mean separation power), next to reference-2 against the reference (the floor);
5. time generation per shower at batch sizes 1, 100 and 10,000 for each of those, and for the
   float32 student and the teacher with compiled splines (``student-compiled``,
   ``teacher-compiled``: timed only, their showers equal the eager ones to rounding); students
   take the best of three runs. The teacher is timed once more at batch 1 and 100 sampled the way
   CaloFlow samples a MAF: one full network pass per voxel and block (``teacher-passes``;
   hepflows' teacher steps through MADE's hidden units instead, see docs/caloflow.md). Batch
   10,000 would take about half an hour that way.
   Before the timings, the machine's speed on the student's main matrix product (GFLOP/s in
   float32 and bfloat16) is recorded, so that timings from different machines can be compared.

A rerun on a finished work folder trains nothing and evaluates only what is missing
(``RESULTS.json`` is rewritten after every evaluation, so a stopped call keeps what it finished).

    python bench/caloflow.py --particle e+                       # CaloGAN e+, 100k / 50k / 50k
    python bench/caloflow.py --particle gamma --geometry ds1-photons
    python bench/caloflow.py --particle e+ --timing-only         # re-time a trained run
    python bench/caloflow.py --particle e+ --train 20000 --ref 10000 --epochs 2   # smoke run
    python bench/caloflow.py --particle pi+ --train 5000 --epochs 1 --device cuda \
        --no-evaluate --models student,student-bf16-compiled   # GPU timings (bench/gpu_caloflow.sh)

``--device`` trains, generates and times there (noise is drawn on the CPU, so showers match the
CPU's to rounding); ``--preset gpu`` takes the configuration's larger GPU settings (new runs);
``--no-evaluate`` trains and times only; ``--models`` picks the labels to time.

Results: a table on stdout and ``RESULTS.json`` in the work folder.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from machine import cpu_name

from hepflows.calo.caloflow import STAGES, CaloFlowGenerator, time_per_shower, train_caloflow
from hepflows.calo.evaluate import evaluate_calo
from hepflows.calo.formats import ShowerWriter, read_showers
from hepflows.calo.geometry import get_geometry
from hepflows.calo.simulate import EnergySpectrum, default_spectrum, simulate
from hepflows.flows.layers import MaskedAutoregressive
from hepflows.io import read_json, write_json
from hepflows.timing import matmul_gflops
from hepflows.train import STATE_FILE

SEEDS = {"train": 101, "ref": 202, "ref2": 303}
PUBLISHED_LOW_AUC = {  # CaloFlow teacher / student vs Geant4, unnormalised (results-anchors.md)
    "e+": (0.859, 0.786),
    "gamma": (0.756, 0.758),
    "pi+": (0.649, 0.729),
}


def make_sample(path: Path, geometry: str, particle: str, n: int, seed: int) -> None:
    if path.is_file():
        return
    geo = get_geometry(geometry)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
    energies = EnergySpectrum.parse(default_spectrum(geometry)).sample_mev(n, rng)
    t0 = time.perf_counter()
    with ShowerWriter(path, geo, n_total=n) as writer:
        for batch in simulate(geo, particle, energies, seed=seed, batch_size=2000):
            overflow = batch.leak_lateral if geo.file_format == "calogan" else None
            writer.write(batch.incident, batch.showers, overflow)
    print(f"simulated {n} {particle} -> {path} ({time.perf_counter() - t0:.0f} s)", flush=True)


#: label -> (model, precision of flow II's matrix products, fused compiled splines)
MODELS = {
    "teacher": ("teacher", "float32", False),
    "student": ("student", "float32", False),
    "student-bf16": ("student", "bfloat16", False),
    "student-bf16-compiled": ("student", "bfloat16", True),
    "student-compiled": ("student", "float32", True),
    "teacher-compiled": ("teacher", "float32", True),
}
#: timed, not evaluated: the same showers as their eager label to float32 rounding
#: (tests/flows/test_fused.py), so a second evaluation would only measure the classifier's noise
TIMED_ONLY = ("student-compiled", "teacher-compiled")


#: batch size -> showers timed for the teacher sampled with full network passes
PASSES_SHOWERS = {1: 5, 100: 100}


def epoch_seconds(stage_dir: Path) -> float:
    """Seconds spent in a stage's training epochs (all calls, resumes included)."""
    history = read_json(stage_dir / STATE_FILE, "training state")["history"]
    return float(sum(h["seconds"] for h in history))


def load_model(run: Path, label: str, device: str = "cpu") -> CaloFlowGenerator:
    model, precision, compiled = MODELS[label]
    return CaloFlowGenerator.load(run, model, device, precision=precision, compile=compiled)


def generate_file(run: Path, label: str, reference: Path, out: Path, device: str) -> float:
    gen = load_model(run, label, device)
    e_ref, _, geo = read_showers(reference)
    t0 = time.perf_counter()
    with ShowerWriter(out, geo, n_total=len(e_ref)) as writer:
        for e, s in gen.batches(e_ref, batch_size=10_000, seed=7, progress=True):
            writer.write(e, s)
    return time.perf_counter() - t0


def timing(
    run: Path,
    energy_mev: float,
    labels: list[str],
    device: str,
    out: dict[str, dict[str, float]],
    save: Callable[[], None],
) -> None:
    """ms per shower at batch 1, 100 and 10,000 for each label (and ``teacher-passes``) into
    ``out``, with the share of showers whose flow II sample was drawn again (``redrawn``: a
    briefly trained model redraws more, and each redraw costs time). ``save`` runs after each
    batch size, so a call stopped at a time limit keeps every time it finished."""
    for label in labels:
        model = MODELS[label][0]
        gen = load_model(run, label, device)
        row: dict[str, float] = {}
        out[label], showers = row, 0
        for batch in (1, 100, 10_000):
            # enough showers for a stable time, but no more than ~2 minutes for the teacher
            n = {1: 20 if model == "teacher" else 200, 100: 1000, 10_000: 10_000}[batch]
            if model == "teacher" and batch == 100:
                n = 300
            # students: the best of 3 runs (a single 10,000-shower run varied by ~20%)
            repeats = 1 if model == "teacher" else 3
            row[str(batch)] = 1e3 * time_per_shower(
                gen, batch, energy_mev, repeats=repeats, min_showers=n
            )
            showers += batch + repeats * max(batch, n)  # the warm-up batch, then the runs
            row["redrawn"] = gen.redrawn / showers
            save()
            print(f"  {label} batch {batch}: {row[str(batch)]:.3f} ms/shower", flush=True)
    if "teacher" not in labels:
        return
    gen = load_model(run, "teacher", device)
    for module in [*gen.flow1.modules(), *gen.flow2.modules()]:
        if isinstance(module, MaskedAutoregressive):
            module.stepwise = False
    row = {}
    for batch, n in PASSES_SHOWERS.items():
        row[str(batch)] = 1e3 * time_per_shower(gen, batch, energy_mev, min_showers=n)
        print(f"  teacher-passes batch {batch}: {row[str(batch)]:.3f} ms/shower", flush=True)
        out["teacher-passes"] = row
        save()


def machine_speed(device: str = "cpu") -> dict[str, float | str]:
    """This machine's speed on the student's dominant product, to compare timings across machines.

    The CaloGAN student's MADE output layers are (N x 256) @ (256 x 9,576) products, about 40% of
    its batch-10,000 sampling time on a CPU (session 20's profile); their GFLOP/s in float32 and
    bfloat16 at the benchmark's thread count (or on the GPU), best of up to 5, tell a slow machine
    from slow code. N = 2,000 rows (10,000 until session 22; the rate is the same to a few %) and
    the runs stop once 5 s are spent: a CPU without native bfloat16 runs these products at
    ~1 GFLOP/s (session 23's machine), 10 s per product.
    """
    dev = torch.device(device)
    out: dict[str, float | str] = {"cpu": cpu_name()}
    if dev.type == "cuda":
        out["gpu"] = torch.cuda.get_device_name(dev)
    for name, dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
        rate = matmul_gflops(2_000, 256, 9_576, dtype, dev, repeats=5, budget_s=5.0)
        out[f"matmul_gflops_{name}"] = rate
    return out


def headline(ev) -> dict[str, float]:
    h = ev.headline()
    return {
        "auc_low": h["auc_low"]["value"],
        "auc_low_err": h["auc_low"].get("error"),
        "auc_high": h["auc_high"]["value"],
        "auc_high_err": h["auc_high"].get("error"),
        "fpd_x1e3": h["fpd_x1e3"][0],
        "kpd_x1e3": h["kpd_x1e3"][0],
        "mean_separation_power": h["mean_separation_power"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--particle", required=True, choices=["e+", "gamma", "pi+"])
    parser.add_argument("--geometry", default="calogan")
    parser.add_argument("--train", type=int, default=100_000, help="training showers")
    parser.add_argument("--ref", type=int, default=50_000, help="showers per reference sample")
    parser.add_argument("--epochs", type=int, default=None, help="override every stage's epochs")
    parser.add_argument(
        "--config", default=None, help="JSON overriding configuration keys (new runs only)"
    )
    parser.add_argument("--workdir", default=None, help="default runs/bench-caloflow/GEOM-PART")
    parser.add_argument("--timing-only", action="store_true", help="only re-time a trained run")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (reference: 2)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N (training, timing)")
    parser.add_argument(
        "--preset", default="cpu", choices=["cpu", "gpu"], help="configuration preset (new runs)"
    )
    parser.add_argument(
        "--no-evaluate",
        action="store_true",
        help="train and time only (no reference-2, no generated files, no classifier)",
    )
    parser.add_argument(
        "--models",
        default=",".join(MODELS),
        help=f"comma-separated labels to time (default: all of {', '.join(MODELS)}); "
        "teacher-passes is timed with teacher",
    )
    args = parser.parse_args()
    labels = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = sorted(set(labels) - set(MODELS))
    if unknown or not labels:
        parser.error(f"--models: unknown label(s) {unknown}; known: {', '.join(MODELS)}")
    torch.set_num_threads(args.threads)
    work = Path(args.workdir or f"runs/bench-caloflow/{args.geometry}-{args.particle}")
    work.mkdir(parents=True, exist_ok=True)
    results_path = work / "RESULTS.json"
    results = read_json(results_path, "benchmark results") if results_path.is_file() else {}

    def save() -> None:
        """RESULTS.json as it stands, atomically: a stopped call keeps every evaluation it
        finished, and a rerun skips them."""
        write_json(results_path, results)

    files = {k: work / f"{k}.h5" for k in SEEDS}
    run = work / "run"
    geo = get_geometry(args.geometry)
    mid_energy = float(np.sqrt(np.prod(geo.energy_range_mev)))

    if not args.timing_only:
        for key, seed in SEEDS.items():
            if args.no_evaluate and key != "train":
                continue
            make_sample(
                files[key],
                args.geometry,
                args.particle,
                args.train if key == "train" else args.ref,
                seed,
            )
        fresh = not any((run / n / STATE_FILE).is_file() for n in STAGES)
        t0 = time.perf_counter()
        stages = train_caloflow(
            files["train"],
            run,
            args.geometry,
            stage="all",
            epochs=args.epochs,
            resume=True,
            seed=0,
            device=args.device,
            preset=args.preset,
            config=args.config,
        )
        if fresh:  # every stage trained in this call: its wall time is the whole training's
            results["training_wall_minutes"] = (time.perf_counter() - t0) / 60
        # each stage's own epochs, summed from its training.json: right also for a run folder
        # whose stages were resumed or copied from another run
        results["training_seconds"] = {s.stage: epoch_seconds(run / s.stage) for s in stages}
        results["training_total_minutes"] = sum(results["training_seconds"].values()) / 60
        results["best"] = {s.stage: [s.best_epoch, s.best_val_loss] for s in stages}
        save()
    if not (args.timing_only or args.no_evaluate):
        evaluations = results.setdefault("evaluation", {})
        for label in MODELS:  # a rerun on a finished run evaluates only what is missing
            out = work / f"gen-{label}.h5"
            if label in TIMED_ONLY or (label in evaluations and out.is_file()):
                continue
            seconds = generate_file(run, label, files["ref"], out, args.device)
            results[f"generate_{label}_seconds"] = seconds
            t0 = time.perf_counter()
            evaluations[label] = headline(evaluate_calo(files["ref"], out, args.geometry))
            print(
                f"evaluated {label} ({time.perf_counter() - t0:.0f} s): {evaluations[label]}",
                flush=True,
            )
            save()
        floor = "reference-2 (floor)"
        if floor not in evaluations:
            evaluations[floor] = headline(evaluate_calo(files["ref"], files["ref2"], args.geometry))
            save()
    results["machine"] = machine_speed(args.device)
    results["threads"] = args.threads
    results["device"] = args.device
    results["ms_per_shower"] = {}  # this call's timings only: never mixed with another machine's
    timing(run, mid_energy, labels, args.device, results["ms_per_shower"], save)

    print(f"\nCaloFlow on {args.geometry} {args.particle}: {work}")
    if "evaluation" in results:
        print("| sample | AUC low | AUC high | FPD x1e3 | KPD x1e3 | mean sep. power |")
        print("|---|---|---|---|---|---|")
        for name, r in results["evaluation"].items():
            print(
                f"| {name} | {r['auc_low']:.3f} | {r['auc_high']:.3f} | {r['fpd_x1e3']:.2f} | "
                f"{r['kpd_x1e3']:.3f} | {r['mean_separation_power']:.4f} |"
            )
        if args.particle in PUBLISHED_LOW_AUC and args.geometry == "calogan":
            t, s = PUBLISHED_LOW_AUC[args.particle]
            print(f"published CaloFlow low-level AUC vs Geant4: teacher {t}, student {s}")
    if "training_seconds" in results:
        wall = results.get("training_wall_minutes")
        print(
            f"training on {args.device}: {results['training_total_minutes']:.1f} min of epochs "
            f"{ {k: round(v) for k, v in results['training_seconds'].items()} } s"
            + (f"; {wall:.1f} min wall in one call" if wall else "")
        )
    ms = results["ms_per_shower"]
    labels = [k for k in [*MODELS, "teacher-passes"] if k in ms]
    print(f"\nms per shower on {args.device}, {args.threads} threads")
    m = results["machine"]
    print(
        f"machine: {m['cpu']}{', ' + m['gpu'] if 'gpu' in m else ''}; "
        "the student's output-layer product at "
        f"{m['matmul_gflops_float32']:.0f} GFLOP/s float32, "
        f"{m['matmul_gflops_bfloat16']:.0f} GFLOP/s bfloat16"
    )
    print("| batch | " + " | ".join(labels) + " |")
    print("|---|" + "---|" * len(labels))
    for b in ("1", "100", "10000"):
        cells = [f"{ms[k][b]:.4g}" if b in ms[k] else "not timed" for k in labels]
        print(f"| {b} | " + " | ".join(cells) + " |")
    redrawn = [f"{ms[k]['redrawn']:.1%}" if "redrawn" in ms[k] else "-" for k in labels]
    print("| flow II redrawn | " + " | ".join(redrawn) + " |")
    students = [k for k in labels if k.startswith("student") and "10000" in ms[k]]
    if not students:
        return 0
    fastest = min(students, key=lambda k: ms[k]["10000"])
    for b in ("1", "100", "10000"):
        ratios = [
            f"{ms[k][b] / ms[fastest][b]:.0f}x vs {k}"
            for k in ("teacher", "teacher-compiled", "teacher-passes")
            if k in ms and b in ms[k]
        ]
        print(
            f"{fastest} at batch {b}: {ms[fastest][b]:.4g} ms" + "".join(f", {r}" for r in ratios)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
