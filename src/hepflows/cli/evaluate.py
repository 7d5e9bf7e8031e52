"""``hepflows evaluate``: fidelity metrics and reports for shower files and columnar data."""

from __future__ import annotations

import argparse
import json
import time


def register(sub: argparse._SubParsersAction) -> None:
    ev = sub.add_parser("evaluate", help="fidelity metrics and reports (calo showers, tables)")
    verbs = ev.add_subparsers(dest="verb", metavar="VERB", required=True)

    calo = verbs.add_parser(
        "calo",
        help="compare a generated shower file with a reference",
        description=(
            "Threshold both samples, compute the CaloChallenge high-level features and their "
            "separation powers, the DNN classifier AUC on low- and high-level inputs, FPD and KPD;"
            " write metrics.json, one PNG per histogram, average showers and report.html."
        ),
    )
    calo.add_argument("reference", help="reference shower file (e.g. Geant4 or the simulator)")
    calo.add_argument("generated", help="generated shower file of the same geometry")
    calo.add_argument("--geometry", default=None, help="expected geometry (default: detect)")
    calo.add_argument("--preset", default="fast", choices=["fast", "challenge"],
                      help="classifier preset: fast (2 x 256, voxel block rescaled to RMS "
                           "0.05, other columns standardised; minutes on a CPU) or challenge "
                           "(the official 3 x 2048 float64 network on raw inputs; hours on a "
                           "CPU) "
                           "(default: %(default)s)")  # fmt: skip
    calo.add_argument("--out", default="evaluation", help="output folder (default: %(default)s)")
    calo.add_argument("--max-showers", type=int, default=None, help="use at most this many")
    calo.add_argument(
        "--seed", type=int, default=0, help="seed of the classifiers and PRDC (default: 0)"
    )
    calo.add_argument(
        "--device", default="cpu", help="classifier device: cpu, cuda or cuda:N (default: cpu)"
    )
    calo.add_argument("--json", action="store_true", help="print metrics.json to stdout")
    calo.set_defaults(run=run_calo)

    table = verbs.add_parser(
        "table",
        help="compare columns of two tables (HDF5, Parquet, ROOT)",
        description=(
            "Per column: W1, KS and separation power; over the targets: FGD, covariance matching"
            " and C2ST; ABC per tagger when --tagger and --flavour are given. Files: .h5 (1-D "
            "datasets or one compound dataset; FILE.h5:group), .parquet, .root (first TTree, or "
            "FILE.root:tree)."
        ),
    )
    table.add_argument("reference", help="reference table (FILE.h5[:group], .parquet, .root)")
    table.add_argument("generated", help="generated table with the same columns")
    table.add_argument("--columns", nargs="+", default=None, help="target columns (default: all)")
    table.add_argument("--condition", nargs="+", default=None, help="condition columns")
    table.add_argument("--tagger", nargs="+", default=None, metavar="KIND=COLUMN",
                       help="tagger score columns, e.g. b=btag c=ctag")  # fmt: skip
    table.add_argument("--flavour", default=None, help="true-flavour column (for --tagger)")
    table.add_argument("--out", default=None, help="folder for metrics.json and plots")
    table.add_argument("--seed", type=int, default=0, help="seed of the C2ST (default: 0)")
    table.add_argument("--json", action="store_true", help="print metrics.json to stdout")
    table.set_defaults(run=run_table)


def run_calo(args: argparse.Namespace) -> int:
    from hepflows.calo.evaluate import evaluate_calo
    from hepflows.report.calo_report import write_calo_report

    t0 = time.perf_counter()
    result = evaluate_calo(
        args.reference, args.generated, args.geometry, args.preset,
        max_showers=args.max_showers, seed=args.seed, device=args.device, progress=not args.json,
    )  # fmt: skip
    report = write_calo_report(result, args.out, f"{args.generated} vs {args.reference}")
    seconds = time.perf_counter() - t0
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
        return 0
    head = result.headline()
    print(f"{result.geometry.name}: {result.n_showers} showers per sample ({seconds:.0f} s)")
    for key, v in head.items():
        if key.startswith("auc_"):
            print(f"  AUC {key[4:]:<11s} {v['value']:.4f} +- {v['error']:.4f}")
    print(f"  FPD x 1e3       {head['fpd_x1e3'][0]:.4g} +- {head['fpd_x1e3'][1]:.2g}")
    print(f"  KPD x 1e3       {head['kpd_x1e3'][0]:.4g} +- {head['kpd_x1e3'][1]:.2g}")
    worst = head["worst_separation_power"]
    print(f"  separation power: mean {head['mean_separation_power']:.4f}, "
          f"worst {worst['value']:.4f} ({worst['feature']})")  # fmt: skip
    for note in result.notes:
        print(f"  note: {note}")
    print(f"  report: {report}")
    return 0


def run_table(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hepflows.io import InputError, write_json
    from hepflows.report.plots import plot_comparison
    from hepflows.tabular import evaluate_table

    taggers = {}
    for item in args.tagger or []:
        kind, sep, column = item.partition("=")
        if not sep or not column:
            raise InputError(f"--tagger expects KIND=COLUMN (e.g. b=btag), got {item!r}")
        taggers[kind] = column
    result = evaluate_table(args.reference, args.generated, args.columns, args.condition,
                            taggers, args.flavour, args.seed)  # fmt: skip
    if args.out:
        out = Path(args.out)
        write_json(out / "metrics.json", result.as_dict())
        for h in result.histograms:
            plot_comparison(h, out / "plots" / f"{h.name}.png")
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
        return 0
    print(f"{'column':20s} {'W1':>10s} {'KS D':>8s} {'KS p':>9s} {'sep. power':>10s}")
    for name, m in result.per_column.items():
        print(f"{name:20s} {m['w1']:10.4g} {m['ks_statistic']:8.4f} {m['ks_pvalue']:9.2g} "
              f"{m['separation_power']:10.4f}")  # fmt: skip
    g = result.global_metrics
    c = g["c2st_misclassification"]
    print(f"FGD {g['fgd']:.4g}; covariance matching {g['covariance_matching']:.4g}; "
          f"C2ST misclassification {c['value']:.4f} +- {c['error']:.4f} (0.5 ideal)")  # fmt: skip
    for kind, value in g.get("abc", {}).items():
        print(f"ABC ({kind}-tagger, log FPR) {value:.4g}")
    if args.out:
        print(f"wrote {Path(args.out) / 'metrics.json'} and {len(result.histograms)} plots")
    return 0
