"""``hepflows integrate``: train a flow sampler on a built-in integrand, integrate, unweight."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "integrate",
        help="integrate a built-in integrand with a normalizing-flow sampler",
        description=(
            "Train a bounded-spline coupling flow on the integrand (i-flow / MadNIS), then "
            "estimate the integral from fresh points of the frozen flow (scrambled Sobol' "
            "replicates unless --sampling mc). Prints the estimate +- its error, the truth and "
            "pull where known, chi2/dof and Q across the evaluation batches (mc), the integrand "
            "calls spent, and the unweighting efficiencies."
        ),
    )
    p.add_argument("name", nargs="?", help="integrand (see --list)")
    p.add_argument("--list", action="store_true", help="list the built-in integrands")
    p.add_argument("--dim", type=int, default=None, help="dimension (where the integrand allows)")
    p.add_argument("--loss", default="kl", choices=["kl", "variance", "exp", "exponential"])
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--calls", type=int, default=None, help="total integrand calls")
    budget.add_argument("--precision", type=float, default=None, help="target relative error")
    p.add_argument("--batch-size", type=int, default=5000, help="points per training step")
    p.add_argument(
        "--grid",
        type=int,
        default=None,
        metavar="N",
        help="VEGAS pre-training: adapt a per-axis grid for N iterations before the flow trains "
        "on top of it (0: off; default: the library's)",
    )
    p.add_argument(
        "--grid-calls", type=int, default=None, help="points per grid iteration (4 x batch size)"
    )
    p.add_argument("--grid-alpha", type=float, default=None, help="grid damping (0.5, as vegas)")
    p.add_argument(
        "--sampling",
        default="qmc",
        choices=["qmc", "mc"],
        help="evaluation points: qmc maps independently scrambled Sobol' nets through the flow "
        "(error from the replicates' spread; usually far smaller for the same calls), mc draws "
        "independent points (error from the weights' spread, chi2/dof and Q across batches). "
        "Training and unweighting always use independent points. Default: qmc",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of training and sampling (default: 0)")
    p.add_argument(
        "--unweight",
        type=int,
        default=None,
        metavar="N",
        help="also draw N weighted points and unweight them",
    )
    p.add_argument(
        "--max-weight-quantile",
        type=float,
        default=None,
        help="w_max as this quantile of the weights (e.g. 0.999); over-weights kept",
    )
    p.add_argument("--out", default=None, help="HDF5 file for the unweighted events")
    p.add_argument("--save", default=None, help="folder to save the trained sampler")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from hepflows.integrate import Integrator, write_events
    from hepflows.integrate.integrands import describe_integrands, get_integrand
    from hepflows.integrate.integrator import grid_options
    from hepflows.io import InputError

    if args.list:
        for name, text in describe_integrands():
            print(f"{name:10s} {text}")
        return 0
    if not args.name:
        raise InputError("name an integrand (hepflows integrate --list shows them)")
    if args.out and not args.unweight:
        raise InputError("--out writes unweighted events: give --unweight N too")
    integrand = get_integrand(args.name, args.dim)
    calls = args.calls if args.calls or args.precision else 2_000_000
    loss = "exponential" if args.loss == "exp" else args.loss
    grid = grid_options(args.grid, args.grid_calls, args.grid_alpha)
    integ = Integrator(
        integrand.function,
        integrand.dim,
        loss=loss,
        batch_size=args.batch_size,
        seed=args.seed,
        device=args.device,
        **grid,
    )
    result = integ.run(
        calls=None if args.precision else calls,
        precision=args.precision,
        sampling=args.sampling,
        progress=not args.json,
    )
    unweighted = None
    if args.unweight:
        unweighted = integ.unweight(args.unweight, args.max_weight_quantile, seed=args.seed)
        if args.out:
            write_events(args.out, unweighted.events, unweighted.weights)
    if args.save:
        integ.save(args.save)
    truth = integrand.truth
    pull = None if truth is None else result.pull(truth)
    if args.json:
        out = {
            "integrand": integrand.name,
            "dim": integrand.dim,
            "loss": loss,
            "sampling": result.sampling,
            "integral": result.integral,
            "error": result.error,
            "calls": integ.calls,
            "truth": truth,
            "pull": pull,
            "chi2_dof": result.chi2_dof,
            "q": result.q_value,
            "unweighting_efficiency": None if unweighted is None else unweighted.efficiency,
            "unweighting_efficiency_bootstrap": None
            if unweighted is None
            else unweighted.efficiency_bootstrap,
        }
        print(json.dumps(out))
        return 0
    unit = f" {integrand.unit}" if integrand.unit else ""
    print(f"{integrand.name} (dim {integrand.dim}, loss {loss}):")
    print(
        f"  integral   {result.integral:.8g} +- {result.error:.3g}{unit} "
        f"(relative {result.relative_error:.2e})"
    )
    if truth is not None:
        print(f"  truth      {truth:.8g}{unit}   pull {pull:+.2f}")
    if result.sampling == "qmc":
        print(
            f"  sampling   {len(result.batch_estimates)} scrambled Sobol' replicates "
            "(error from their spread)"
        )
    if result.chi2_dof is not None:
        print(
            f"  chi2/dof   {result.chi2_dof:.2f} over {len(result.batch_estimates)} batches, "
            f"Q = {result.q_value:.3f}"
        )
    print(f"  calls      {integ.calls} ({result.evaluation_calls} for the final estimate)")
    if unweighted is not None:
        print(
            f"  unweighting: {len(unweighted.events)} events from {unweighted.trials}; "
            f"efficiency {unweighted.efficiency:.4f} (<w>/max w), "
            f"{unweighted.efficiency_bootstrap:.4f} (bootstrap median, n={args.batch_size})"
        )
        if unweighted.overweight_fraction:
            print(
                f"  over-weight fraction {unweighted.overweight_fraction:.2e} "
                f"(w_max at quantile {args.max_weight_quantile})"
            )
        if args.out:
            print(f"  events: {args.out}")

    return 0
