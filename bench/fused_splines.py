"""Fused splines (``hepflows.flows.fused``): the CaloFlow student's sampling, eager vs compiled.

The case: the CaloGAN student's flow II as the CPU configuration builds it (IAF, 504 voxels,
4 context features, 6 blocks, one hidden layer of 256, rational-quadratic splines with 6 bins,
bound 14, bin scale 1/16, "prefix" degrees), no gradients. Its output layers are scaled x3 from
their initialisation so that the splines are far from the identity (the fused loop has no
branches, so its time does not depend on the weights; the eager gather's barely does).

Rows: hepflows eager and fused (``enable_fused_splines``), each with float32 and bfloat16 matrix
products, and zuko's IAF of the same architecture as the peer (bound 14, float32), at batch sizes
1, 100 and 10,000; then the spline alone on one 350-row chunk: ``RQSpline.inverse`` (the eager
gather form), the same under a plain ``torch.compile``, and the unrolled form eager and through
``fused_spline`` (what ``enable_fused_splines`` calls). Each number is the best
of ``--repeats`` runs after a warm-up (which also compiles).

    python bench/fused_splines.py            # ~3 minutes on 2 cores
    python bench/fused_splines.py --threads 1
"""

from __future__ import annotations

import argparse
import functools

import torch
import zuko
from machine import cpu_name
from zuko.flows import Flow as ZukoFlow
from zuko.transforms import MonotonicRQSTransform

from hepflows.flows import IAF, splines
from hepflows.flows.conditioners import set_matmul_dtype
from hepflows.flows.fused import enable_fused_splines, fused_spline
from hepflows.flows.transforms import RQSpline
from hepflows.timing import best_seconds

FEATURES, CONTEXT, BLOCKS, HIDDEN, BINS, BOUND, BIN_SCALE = 504, 4, 6, 256, 6, 14.0, 1 / 16
BATCHES = (1, 100, 10_000)


def student() -> IAF:
    flow = IAF(FEATURES, CONTEXT, blocks=BLOCKS, hidden=[HIDDEN], bins=BINS, bound=BOUND,
               bin_scale=BIN_SCALE, degrees="prefix", seed=0).eval()  # fmt: skip
    with torch.no_grad():
        for layer in flow.layers:
            if hasattr(layer, "conditioner"):
                layer.conditioner.output_layer.weight.mul_(3.0)
    return flow


def zuko_student() -> ZukoFlow:
    univariate = functools.partial(MonotonicRQSTransform, bound=BOUND)
    maf = zuko.flows.MAF(FEATURES, CONTEXT, transforms=BLOCKS, hidden_features=[HIDDEN],
                         univariate=univariate, shapes=[(BINS,), (BINS,), (BINS - 1,)])  # fmt: skip
    return ZukoFlow([t.inv for t in maf.transform.transforms], maf.base).eval()


def best_ms_per_sample(fn, batch: int, repeats: int) -> float:
    """Best wall time per sample (ms) of ``fn(z, c)`` over ``repeats`` runs covering >= 1000
    samples each (batch 1: 200), after one warm-up call."""
    z, c = torch.randn(batch, FEATURES), torch.randn(batch, CONTEXT)
    calls = max(1, (200 if batch == 1 else 1000) // batch)
    fn(z, c)
    return 1e3 * best_seconds(functools.partial(fn, z, c), repeats, calls) / batch


def spline_rows(repeats: int) -> list[tuple[str, float]]:
    """The spline alone, inverse direction, on one (350, 17, 504) chunk of raw parameters."""
    torch.manual_seed(1)
    raw = 2.0 * torch.randn(350, 3 * BINS - 1, FEATURES)
    z = 5.0 * torch.randn(350, FEATURES)

    transform = RQSpline(bins=BINS, bound=BOUND, bin_scale=BIN_SCALE)

    def unrolled(z: torch.Tensor, raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return splines.unrolled_spline_with_tails(z, raw, BINS, BOUND, BIN_SCALE, True)

    def fused(z: torch.Tensor, raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return fused_spline(z, raw, BINS, BOUND, BIN_SCALE, True)

    variants = [
        ("gather, eager (RQSpline.inverse: the training path)", transform.inverse),
        ("gather, torch.compile", torch.compile(transform.inverse)),
        ("unrolled, eager", unrolled),
        ("unrolled, compiled (fused_spline: the --compile path)", fused),
    ]
    rows = []
    for name, fn in variants:
        fn(z, raw)
        rows.append((name, 1e3 * best_seconds(functools.partial(fn, z, raw), repeats, 10)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=2, help="torch threads (reference: 2)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(
        f"torch {torch.__version__}, zuko {zuko.__version__}, {args.threads} threads, "
        f"{cpu_name()}; CaloGAN student flow II, no grad"
    )
    flow, peer = student(), zuko_student()

    def sample(z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return flow.to_data(z, c)[0]

    def sample_zuko(z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return peer(c).transform.inv(z)

    results: dict[str, list[float]] = {}
    with torch.no_grad():
        for label, dtype, fused in (
            ("hepflows eager, float32", None, False),
            ("hepflows eager, bfloat16 products", torch.bfloat16, False),
            ("hepflows fused, float32", None, True),
            ("hepflows fused, bfloat16 products", torch.bfloat16, True),
        ):
            set_matmul_dtype(flow, dtype)
            enable_fused_splines(flow, on=fused)
            results[label] = [best_ms_per_sample(sample, b, args.repeats) for b in BATCHES]
            print(f"  {label}: {results[label]}", flush=True)
        results["zuko IAF, float32"] = [
            best_ms_per_sample(sample_zuko, b, args.repeats) for b in BATCHES
        ]
        print("\nms per sample (flow II sampling only)")
        print("| model | " + " | ".join(f"batch {b}" for b in BATCHES) + " |")
        print("|---|" + "---|" * len(BATCHES))
        for label, row in results.items():
            print(f"| {label} | " + " | ".join(f"{v:.4g}" for v in row) + " |")
        base, peer_row = results["hepflows eager, float32"], results["zuko IAF, float32"]
        for label, row in results.items():
            ratios = ", ".join(
                f"batch {b}: {e / v:.2f}x vs eager f32, {p / v:.2f}x vs zuko"
                for b, e, p, v in zip(BATCHES, base, peer_row, row, strict=True)
            )
            print(f"{label}: {ratios}")
        print("\nspline alone, inverse, one (350, 17, 504) chunk, ms")
        for name, ms in spline_rows(args.repeats):
            print(f"| {name} | {ms:.3f} |")


if __name__ == "__main__":
    main()
