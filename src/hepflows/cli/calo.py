"""``hepflows calo``: simulate, inspect and plot calorimeter shower files."""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from hepflows.io import InputError


def register(sub: argparse._SubParsersAction) -> None:
    calo = sub.add_parser("calo", help="calorimeter showers: simulate, inspect, plot")
    verbs = calo.add_subparsers(dest="verb", metavar="VERB", required=True)

    sim = verbs.add_parser(
        "simulate",
        help="simulate showers with the reference (GFLASH-based) simulator",
        description=(
            "Simulate showers with the reference simulator and write them in the geometry's "
            "file format (CaloChallenge: MeV; CaloGAN: energy in GeV, cells in MeV). Energies on "
            "the command line are in GeV."
        ),
    )
    sim.add_argument(
        "--geometry", required=True, choices=["calogan", "ds1-photons", "ds1-pions", "ds2", "ds3"]
    )
    sim.add_argument("--particle", required=True, choices=["e+", "gamma", "pi+"])
    sim.add_argument("-n", type=int, required=True, help="number of showers")
    sim.add_argument(
        "--energy",
        default=None,
        help="fixed:E | uniform:A:B | log-uniform:A:B (GeV) | ladder; default: the geometry's "
        "range (CaloGAN uniform:1:100, ds1 ladder, ds2/ds3 log-uniform:1:1000)",
    )
    sim.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    sim.add_argument("--batch-size", type=int, default=1000, help="showers per batch (memory)")
    sim.add_argument("--out", required=True, help="output HDF5 file")
    sim.add_argument("--quiet", action="store_true", help="no progress bar")
    sim.set_defaults(run=run_simulate)

    ins = verbs.add_parser("inspect", help="detect format and geometry, validate, summarise")
    ins.add_argument("file", help="shower file (CaloChallenge or CaloGAN HDF5)")
    ins.add_argument("--geometry", default=None, help="expected geometry (default: detect)")
    ins.set_defaults(run=run_inspect)

    plot = verbs.add_parser("plot", help="average shower images, longitudinal profile, E ratio")
    plot.add_argument("file", help="shower file (CaloChallenge or CaloGAN HDF5)")
    plot.add_argument("--out", required=True, help="output folder for the PNGs")
    plot.add_argument("--geometry", default=None, help="expected geometry (default: detect)")
    plot.add_argument("--max-showers", type=int, default=100_000, help="showers to read")
    plot.set_defaults(run=run_plot)

    train = verbs.add_parser(
        "train",
        help="train CaloFlow (flow I, MAF teacher, IAF student) on a shower file",
        description=(
            "Train CaloFlow on a CaloChallenge/CaloGAN shower file: flow I (layer energies), the "
            "flow II teacher (MAF, likelihood) and the student (IAF, distilled from the teacher). "
            "Settings come from the geometry's configuration file (hepflows/calo/configs/; "
            "--preset gpu for the published sizes; --config FILE to override keys). Each stage "
            "writes checkpoints every epoch and keeps its best epoch; RUN/training.png shows the "
            "curves."
        ),
    )
    train.add_argument("--data", required=True, help="training shower file (HDF5)")
    train.add_argument("--geometry", default=None, help="geometry (default: detect from file)")
    train.add_argument("--out", required=True, help="run folder")
    train.add_argument(
        "--stage",
        default="all",
        choices=["flow1", "flow2", "teacher", "student", "all"],
        help="what to train (default: %(default)s; flow2 = teacher)",
    )
    train.add_argument("--epochs", type=int, default=None, help="override the configured epochs")
    train.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    train.add_argument("--resume", action="store_true", help="continue interrupted stages")
    train.add_argument(
        "--seed", type=int, default=0, help="seed of the models and batches (default: 0)"
    )
    train.add_argument(
        "--preset",
        default="cpu",
        choices=["cpu", "gpu"],
        help="configuration sizes (default: %(default)s)",
    )
    train.add_argument("--config", default=None, help="JSON file overriding configuration keys")
    train.add_argument("--max-showers", type=int, default=None, help="use the first N showers")
    train.add_argument("--quiet", action="store_true", help="no progress bars")
    train.set_defaults(run=run_train)

    gen = verbs.add_parser(
        "generate",
        help="generate showers with a trained CaloFlow",
        description=(
            "Generate showers from a trained CaloFlow run into a file of the geometry's format. "
            "Incident energies from --energy (GeV spectrum) or --like REFERENCE (its energies, "
            "in order)."
        ),
    )
    gen.add_argument("run_dir", metavar="RUN", help="run folder from `hepflows calo train`")
    gen.add_argument(
        "-n",
        type=int,
        default=None,
        help="number of showers (default with --like: all of the reference's)",
    )
    source = gen.add_mutually_exclusive_group()
    source.add_argument(
        "--energy",
        default=None,
        help="fixed:E | uniform:A:B | log-uniform:A:B (GeV) | ladder "
        "(default: the geometry's range)",
    )
    source.add_argument("--like", default=None, help="take incident energies from this file")
    gen.add_argument(
        "--model",
        default="student",
        choices=["teacher", "student"],
        help="flow II to sample: the fast IAF student or the MAF teacher (default: student)",
    )
    gen.add_argument(
        "--batch-size",
        type=int,
        default=10_000,
        help="showers per batch: memory against speed (default: 10000)",
    )
    gen.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the latent noise; reproducible for a given batch size (default: 0)",
    )
    gen.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    gen.add_argument(
        "--precision",
        default="float32",
        choices=["float32", "bfloat16"],  # the keys of caloflow.MATMUL_DTYPES (imported lazily)
        help="dtype of flow II's network matrix products (bfloat16: faster on CPUs with "
        "AVX-512 BF16 and on GPUs; splines stay float32)",
    )
    gen.add_argument(
        "--compile",
        action="store_true",
        help="evaluate the splines as one fused, torch.compile-d loop: the same showers to float32 "
        "rounding, 1.7x faster at batch 10,000 (2.1x with --precision bfloat16) for the CaloGAN "
        "student on 2 cores; compiles for seconds first and needs a C++ compiler",
    )
    gen.add_argument(
        "--noise-cut",
        type=float,
        default=None,
        metavar="MEV",
        help="set generated voxels below MEV to 0 (default: the run's cut, see caloflow.json)",
    )
    gen.add_argument(
        "--max-redraws",
        type=int,
        default=10,  # caloflow.MAX_REDRAWS (imported lazily)
        metavar="N",
        help="draw flow II again, up to N times, for a shower that leaves a layer holding energy "
        "with no voxel above the noise cut (else that energy spreads evenly over the layer); "
        "0: keep every first draw (default: 10)",
    )
    gen.add_argument("--out", required=True, help="output HDF5 file")
    gen.add_argument("--quiet", action="store_true", help="no progress bar")
    gen.set_defaults(run=run_generate)


def _default_spectrum(geometry: str) -> str:
    from hepflows.calo.simulate import default_spectrum

    return default_spectrum(geometry)


def run_simulate(args: argparse.Namespace) -> int:
    from hepflows.calo.formats import ShowerWriter
    from hepflows.calo.geometry import get_geometry
    from hepflows.calo.simulate import EnergySpectrum, simulate

    if args.n < 1:
        raise InputError(f"-n must be >= 1, got {args.n}")
    geometry = get_geometry(args.geometry)
    spectrum = EnergySpectrum.parse(args.energy or _default_spectrum(args.geometry))
    rng = np.random.default_rng(np.random.SeedSequence([args.seed, 1]))
    energies = spectrum.sample_mev(args.n, rng)
    out = Path(args.out)
    t0 = time.perf_counter()
    ratio_sum = 0.0
    with ShowerWriter(out, geometry, n_total=args.n) as writer:
        for batch in simulate(
            geometry,
            args.particle,
            energies,
            seed=args.seed,
            batch_size=args.batch_size,
            progress=not args.quiet,
        ):
            overflow = batch.leak_lateral if geometry.file_format == "calogan" else None
            writer.write(batch.incident, batch.showers, overflow)
            ratio_sum += float((batch.showers.sum(1) / batch.incident).sum())
    seconds = time.perf_counter() - t0
    print(
        f"wrote {args.n} {args.particle} showers ({geometry.name}, {geometry.n_voxels} voxels) to "
        f"{out} in {seconds:.1f} s ({args.n / seconds:.0f} showers/s); "
        f"mean E_dep/E_inc = {ratio_sum / args.n:.3f}"
    )
    return 0


def _summarise(path: str, geometry: str | None) -> dict:
    from hepflows.calo.formats import iter_showers, open_showers

    info = open_showers(path, geometry)
    n, ratio_sum, ratio_sq, zeros = 0, 0.0, 0.0, 0
    e_min, e_max = np.inf, -np.inf
    layer_sum = None
    for energies, showers in iter_showers(path, geometry=info.geometry.name):
        ratio = showers.sum(1) / energies
        ratio_sum += float(ratio.sum())
        ratio_sq += float((ratio * ratio).sum())
        zeros += int(np.count_nonzero(showers == 0))
        e_min, e_max = min(e_min, float(energies.min())), max(e_max, float(energies.max()))
        per_layer = info.geometry.layer_energies(showers).sum(0)
        layer_sum = per_layer if layer_sum is None else layer_sum + per_layer
        n += len(energies)
    mean = ratio_sum / n
    return {
        "info": info,
        "n": n,
        "e_range_gev": (e_min / 1e3, e_max / 1e3),
        "ratio": (mean, max(ratio_sq / n - mean * mean, 0.0) ** 0.5),
        "sparsity": zeros / (n * info.geometry.n_voxels),
        "layer_means": layer_sum / n,
    }


def run_inspect(args: argparse.Namespace) -> int:
    s = _summarise(args.file, args.geometry)
    info = s["info"]
    g = info.geometry
    print(f"{args.file}: {info.file_format} format, geometry {g.name} ({g.description})")
    print(f"  showers            {s['n']}")
    print(f"  incident energy    {s['e_range_gev'][0]:.4g} - {s['e_range_gev'][1]:.4g} GeV")
    print(f"  E_dep / E_inc      {s['ratio'][0]:.4f} +- {s['ratio'][1]:.4f} (mean +- sd)")
    print(f"  sparsity           {s['sparsity']:.3f} (fraction of voxels with zero energy)")
    layers = ", ".join(
        f"{layer.id}: {m:.4g}" for layer, m in zip(g.relevant_layers, s["layer_means"], strict=True)
    )
    print(f"  mean MeV per layer {layers}")
    print("  validation         passed (keys, shapes, dtypes, finite, non-negative, units)")
    return 0


def run_plot(args: argparse.Namespace) -> int:
    from hepflows.calo.formats import read_showers
    from hepflows.report.calo_plots import (
        plot_average_images,
        plot_energy_ratio,
        plot_longitudinal_profile,
    )

    energies, showers, geometry = read_showers(args.file, args.geometry, args.max_showers)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = Path(args.file).stem
    paths = [
        plot_average_images(
            geometry,
            showers.mean(0),
            out / f"{name}-average.png",
            f"average shower: {name} ({geometry.name})",
        ),
        plot_longitudinal_profile(
            geometry,
            geometry.layer_energies(showers),
            out / f"{name}-longitudinal.png",
            f"profile: {name}",
        ),
        plot_energy_ratio(
            showers.sum(1) / energies, out / f"{name}-energy-ratio.png", f"E_dep / E_inc: {name}"
        ),
    ]
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def run_train(args: argparse.Namespace) -> int:
    from hepflows.calo.caloflow import train_caloflow

    if args.epochs is not None and args.epochs < 1:
        raise InputError(f"--epochs must be >= 1, got {args.epochs}")
    results = train_caloflow(
        args.data,
        args.out,
        args.geometry,
        stage=args.stage,
        epochs=args.epochs,
        device=args.device,
        resume=args.resume,
        seed=args.seed,
        preset=args.preset,
        config=args.config,
        max_showers=args.max_showers,
        progress=not args.quiet,
    )
    total = sum(r.seconds for r in results)
    print(
        f"trained {', '.join(r.stage for r in results)} in {total:.0f} s; "
        f"curves: {Path(args.out) / 'training.png'}"
    )
    return 0


@contextlib.contextmanager
def _warnings_as_notes() -> Iterator[None]:
    """Print the warnings raised inside (RuntimeWarnings every time) as one ``note:`` line each
    on stderr, not as Python's two-line warnings: bfloat16 on a CPU without it, energies outside
    the run's range."""

    def note(message: Warning | str, *_: object, **__: object) -> None:
        print(f"note: {message}", file=sys.stderr, flush=True)

    with warnings.catch_warnings():
        warnings.simplefilter("always", RuntimeWarning)
        warnings.showwarning = note
        yield


def run_generate(args: argparse.Namespace) -> int:
    from hepflows.calo.caloflow import CaloFlowGenerator
    from hepflows.calo.formats import ShowerWriter, read_showers
    from hepflows.calo.simulate import EnergySpectrum

    t0 = time.perf_counter()
    with _warnings_as_notes():
        gen = CaloFlowGenerator.load(
            args.run_dir,
            args.model,
            args.device,
            args.precision,
            args.noise_cut,
            args.compile,
            args.max_redraws,
        )
    if args.compile and not args.quiet:
        seconds = time.perf_counter() - t0
        print(f"loaded the model and compiled its fused splines in {seconds:.1f} s")
    geometry = gen.geometry
    if args.like is not None:
        energies, _, ref_geo = read_showers(args.like, max_showers=args.n)
        if ref_geo.name != geometry.name:
            raise InputError(f"{args.like} is {ref_geo.name}, the model is {geometry.name}")
        if args.n is not None and len(energies) < args.n:
            raise InputError(f"{args.like} holds only {len(energies)} showers, -n is {args.n}")
    else:
        if args.n is None or args.n < 1:
            raise InputError("-n N (>= 1) is required unless --like gives the energies")
        spectrum = EnergySpectrum.parse(args.energy or _default_spectrum(geometry.name))
        rng = np.random.default_rng(np.random.SeedSequence([args.seed, 3]))
        energies = spectrum.sample_mev(args.n, rng)
    if args.batch_size < 1:
        raise InputError(f"--batch-size must be >= 1, got {args.batch_size}")
    t0 = time.perf_counter()
    with _warnings_as_notes(), ShowerWriter(args.out, geometry, n_total=len(energies)) as writer:
        for e, s in gen.batches(energies, args.batch_size, args.seed, progress=not args.quiet):
            writer.write(e, s)
    seconds = time.perf_counter() - t0
    print(
        f"wrote {len(energies)} showers ({args.model}, {geometry.name}) to {args.out} in "
        f"{seconds:.1f} s: {len(energies) / seconds:.0f} showers/s "
        f"({1e3 * seconds / len(energies):.3f} ms per shower, batch {args.batch_size}, "
        f"{args.precision}{', compiled' if args.compile else ''})"
    )
    if gen.redrawn:
        share = 100 * gen.redrawn / len(energies)
        print(
            f"flow II drawn again for {gen.redrawn} showers ({share:.2f}%) that left a layer "
            f"noise only; {gen.noise_only_left} still were after {gen.max_redraws} redraws"
        )
    return 0
