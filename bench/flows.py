"""Flow-engine throughput at CaloFlow size, against zuko's equivalent architectures, in one run.

The case (issue 2): 504 features, 4 context features, 8 blocks, MADE / coupling conditioners with
one hidden layer of 512 (and a second row set with two), rational-quadratic splines with 8 bins
(bound 5, as zuko's default) and affine transforms, batch 10,000, float32, no gradients.

For each row it prints samples per second for hepflows and for zuko, and their ratio. Because
hepflows evaluates large batches in row chunks (``Flow.chunk_size``), the table also shows zuko
fed the same chunks by hand, so the share of the speed-up that comes from chunking is visible.
Each number is the best of ``--repeats`` timed runs after a warm-up; runs alternate between the
libraries so that a slow phase of the machine hits both.

    python bench/flows.py                 # full table (~15 minutes on 2 cores)
    python bench/flows.py --quick         # batch 2,000, one repeat, one-hidden-layer rows only
    python bench/flows.py --json out.json # also write the table as JSON
"""

from __future__ import annotations

import argparse
import functools
import json
from collections.abc import Callable

import torch
import zuko
from machine import cpu_name
from zuko.distributions import DiagNormal
from zuko.flows import Flow as ZukoFlow
from zuko.flows import GeneralCouplingTransform, UnconditionalDistribution
from zuko.transforms import MonotonicAffineTransform, MonotonicRQSTransform

from hepflows.flows import IAF, MAF, CouplingFlow, coupling_masks
from hepflows.timing import best_seconds

FEATURES, CONTEXT, BLOCKS, BINS = 504, 4, 8, 8


def ours(kind: str, transform: str, hidden: tuple[int, ...]):
    common = dict(blocks=BLOCKS, hidden=hidden, transform=transform, bins=BINS, bound=5.0)
    if kind == "MAF":
        return MAF(FEATURES, CONTEXT, permutation="reverse", **common)
    if kind == "IAF":
        return IAF(FEATURES, CONTEXT, permutation="reverse", **common)
    return CouplingFlow(FEATURES, CONTEXT, masks="halves", **common)


def _univariate(transform: str) -> tuple[Callable, list[tuple[int, ...]]]:
    if transform == "spline":
        return MonotonicRQSTransform, [(BINS,), (BINS,), (BINS - 1,)]
    return MonotonicAffineTransform, [(), ()]


def zuko_equivalent(kind: str, transform: str, hidden: tuple[int, ...]):
    univariate, shapes = _univariate(transform)
    if kind in ("MAF", "IAF"):
        maf = zuko.flows.MAF(
            FEATURES,
            CONTEXT,
            transforms=BLOCKS,
            hidden_features=list(hidden),
            univariate=univariate,
            shapes=shapes,
        )
        if kind == "MAF":
            return maf
        # zuko's IAF: the inverse of each autoregressive transform, so sampling is one pass.
        return ZukoFlow([t.inv for t in maf.transform.transforms], maf.base)
    base = UnconditionalDistribution(
        DiagNormal, torch.zeros(FEATURES), torch.ones(FEATURES), buffer=True
    )
    transforms = [
        GeneralCouplingTransform(  # zuko's mask marks the conditioning (untransformed) half
            FEATURES,
            CONTEXT,
            mask=~m,
            univariate=univariate,
            shapes=shapes,
            hidden_features=list(hidden),
        )
        for m in coupling_masks(FEATURES, BLOCKS, "halves")
    ]
    return ZukoFlow(transforms, base)


def operations(kind: str, model, library: str, chunk: int | None):
    """The timed call: density (log_prob) or sampling, one sample per context row."""

    def chunked(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]):
        def run(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
            if chunk is None:
                return fn(x, c)
            return torch.cat(
                [fn(x[i : i + chunk], c[i : i + chunk]) for i in range(0, len(x), chunk)]
            )

        return run

    if library == "hepflows":
        log_prob = lambda x, c: model.log_prob(x, c)  # noqa: E731
        sample = lambda x, c: model.sample(1, c)[0]  # noqa: E731
    else:
        log_prob = chunked(lambda x, c: model(c).log_prob(x))
        sample = chunked(lambda x, c: model(c).sample())
    return log_prob if kind.endswith("log_prob") else sample


ROWS = [
    ("MAF", "log_prob"),
    ("IAF", "sample"),
    ("CouplingFlow", "sample"),
    ("CouplingFlow", "log_prob"),
]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch", type=int, default=10000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="batch 2000, 1 repeat, 1 hidden layer")
    parser.add_argument("--json", help="write the results to this JSON file")
    args = parser.parse_args()
    if args.quick:
        args.batch, args.repeats = 2000, 1
    hidden_sets = [(512,)] if args.quick else [(512,), (512, 512)]

    torch.manual_seed(0)
    x = torch.randn(args.batch, FEATURES)
    c = torch.randn(args.batch, CONTEXT)
    print(
        f"torch {torch.__version__}, zuko {zuko.__version__}, {torch.get_num_threads()} threads, "
        f"{cpu_name()}; batch {args.batch}, float32, no grad"
    )
    header = (
        f"| {'operation':26s} | {'transform':9s} | {'hidden':9s} | {'hepflows /s':>11s} | "
        f"{'zuko /s':>9s} | {'ratio':>6s} | {'zuko chunked /s':>15s} | {'ratio':>6s} |"
    )
    print(header)
    print("|" + "|".join("-" * (len(p)) for p in header.split("|")[1:-1]) + "|")
    results = []
    with torch.no_grad():
        for hidden in hidden_sets:
            for transform in ("spline", "affine"):
                for kind, op in ROWS:
                    mine = ours(kind, transform, hidden).eval()
                    peer = zuko_equivalent(kind, transform, hidden).eval()
                    name = f"{kind}.{op}"
                    f_ours = operations(name, mine, "hepflows", None)
                    f_zuko = operations(name, peer, "zuko", None)
                    f_zuko_chunked = operations(name, peer, "zuko", mine.chunk_size)
                    for f in (f_ours, f_zuko, f_zuko_chunked):  # warm-up on a small batch
                        f(x[:500], c[:500])
                    t_ours, t_zuko, t_zc = [], [], []
                    for _ in range(args.repeats):
                        # interleaved, so that a slow spell of the machine hits all three
                        for t, f in ((t_ours, f_ours), (t_zuko, f_zuko), (t_zc, f_zuko_chunked)):
                            t.append(best_seconds(functools.partial(f, x, c), 1))
                    rate = [args.batch / min(t) for t in (t_ours, t_zuko, t_zc)]
                    row = {
                        "operation": name,
                        "transform": transform,
                        "hidden": list(hidden),
                        "hepflows_per_s": rate[0],
                        "zuko_per_s": rate[1],
                        "zuko_chunked_per_s": rate[2],
                        "ratio": rate[0] / rate[1],
                        "ratio_vs_chunked": rate[0] / rate[2],
                    }
                    results.append(row)
                    print(
                        f"| {name:26s} | {transform:9s} | {'x'.join(map(str, hidden)):9s} | "
                        f"{rate[0]:11.0f} | {rate[1]:9.0f} | {row['ratio']:5.2f}x | "
                        f"{rate[2]:15.0f} | {row['ratio_vs_chunked']:5.2f}x |",
                        flush=True,
                    )
    slowest = min(r["ratio"] for r in results)
    print(
        f"\nslowest row vs zuko: {slowest:.2f}x ({'no row slower' if slowest >= 1 else 'SLOWER'})"
    )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"batch": args.batch, "repeats": args.repeats, "rows": results}, fh, indent=2)


if __name__ == "__main__":
    main()
