"""``hepflows demo``: the main job on built-in data (run by ``make demo``)."""

from __future__ import annotations

import argparse

from hepflows.io import InputError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="run a whole job on built-in data (default: the CaloFlow chain)",
        description=(
            "calo (default): simulate CaloGAN e+ showers, train CaloFlow (flow I, MAF teacher, "
            "IAF student; small settings), generate, evaluate against a held-out reference and "
            "write OUT/report.html (~10 minutes on 2 CPU cores). ring: train a conditional "
            "spline coupling flow on a 2-D ring and compare its NLL with the exact one."
        ),
    )
    p.add_argument(
        "job",
        nargs="?",
        default="calo",
        choices=["calo", "ring"],
        help="which demo (default: %(default)s)",
    )
    p.add_argument("--out", default="demo", help="output folder (default: %(default)s)")
    p.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="epochs (ring default 40; calo: every stage, default 20/6/2)",
    )
    p.add_argument(
        "--samples",
        type=int,
        default=None,
        help="training samples (default: ring 30000, calo 30000 showers)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if (args.epochs is not None and args.epochs < 1) or (
        args.samples is not None and args.samples < 100
    ):
        raise InputError("--epochs must be >= 1 and --samples >= 100")
    if args.job == "calo":
        from hepflows.demos.calo import StepFailed, run_calo_demo

        try:
            run_calo_demo(
                args.out,
                n_train=args.samples or 30_000,
                seed=args.seed,
                device=args.device,
                quiet=args.quiet,
                epochs=args.epochs,
            )
        except StepFailed as failed:  # the step printed its own one-line error
            return failed.status
        return 0
    from hepflows.demos.ring import run_ring_demo

    r = run_ring_demo(
        args.out,
        n_train=args.samples or 30_000,
        epochs=args.epochs or 40,
        seed=args.seed,
        device=args.device,
        progress=not args.quiet,
    )
    print("conditional ring (radius = context), 20,000 fresh test points:")
    print(f"  flow NLL  {r.flow_nll:8.4f} nats")
    print(f"  true NLL  {r.true_nll:8.4f} nats")
    gap = r.flow_nll - r.true_nll
    print(
        f"  KL(p||q) ~ {gap:.4f} +- {r.flow_nll_error:.4f} nats"
        f"  (trained in {r.train_seconds:.0f} s)"
    )
    print(f"  plots: {r.plot}, {r.training_plot}; model: {r.run_dir}/")
    return 0
