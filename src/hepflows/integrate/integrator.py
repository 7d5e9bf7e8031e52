"""Flow-based importance sampling on the unit hypercube (i-flow arXiv:2001.05486, MadNIS
arXiv:2212.06172).

A coupling flow with bounded rational-quadratic splines and i-flow masks learns q(x) ~ f(x)/I,
starting from the uniform density (zero-initialised last layers). Training draws points from the
flow itself, optionally re-using stored (x, f(x), q(x)) for several steps (buffered training).

How the final number is made: :meth:`Integrator.integrate` draws fresh points from the **frozen**
flow in ``iterations`` equal batches, an unbiased estimate for any q. With ``sampling="qmc"`` (the
default) each batch maps a freshly scrambled Sobol' net through the flow (:mod:`.qmc`); the batches
are independent replicates, I is their mean and sigma the spread of their means over sqrt(R). With
``sampling="mc"`` the points are independent: I = mean(f/q), sigma = std(f/q)/sqrt(n), and the
batches' estimates give chi^2/dof and Q as vegas reports them (a small Q flags a sampler that
misses part of the integrand; RQMC batches have no error of their own, so no chi^2). The
training steps' estimates are **not** combined into the result: weighting early, badly trained
steps by their (under-estimated) inverse variances biases the result (the i-flow paper's Camel-16
ended at pull -34). :meth:`Integrator.training_estimate` gives that combination for reference only.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import stats
from tqdm.auto import tqdm

from hepflows.flows import MAF, CouplingFlow, Flow
from hepflows.integrate.grid import VegasGrid
from hepflows.integrate.losses import LOSSES, nis_loss
from hepflows.integrate.qmc import check_sampling, replicate_estimate, scrambled_sobol
from hepflows.io import InputError, atomic_path, read_json, write_json

Function = Callable[[Any], Any]
PROBE_CALLS = 16 * 256  # RQMC probe of an untrained sampler: 16 replicates of 256 points


@dataclasses.dataclass(frozen=True)
class IntegrationResult:
    """An integral estimate with its Monte-Carlo error and the cost that produced it."""

    integral: float
    error: float
    calls: int  # integrand calls in total (training included)
    evaluation_calls: int  # calls of the final, frozen-sampler estimate
    chi2_dof: float | None  # across the evaluation batches (independent points only)
    q_value: float | None
    batch_estimates: list[tuple[float, float]]  # (estimate, error); error NaN for RQMC batches
    sampling: str = "mc"  # "qmc": scrambled Sobol' replicates; "mc": independent points

    @property
    def relative_error(self) -> float:
        return self.error / abs(self.integral) if self.integral else math.inf

    def pull(self, truth: float) -> float:
        return (self.integral - truth) / self.error if self.error > 0 else math.inf


@dataclasses.dataclass(frozen=True)
class UnweightingResult:
    """Unweighted events by accept/reject, and the two efficiencies of the spec (section 3)."""

    events: np.ndarray  # (n_accepted, dim)
    weights: np.ndarray  # 1 for ordinary events; w/w_max > 1 for over-weight events kept
    efficiency: float  # plain: mean(w) / max(w) over the sample
    efficiency_bootstrap: float  # arXiv:2001.10028: mean of means / median of maxima
    max_weight: float  # the w_max used for accept/reject
    overweight_fraction: float  # share of events with w > w_max (0 without a quantile)
    trials: int


class Integrator:
    """Integrate and unweight ``f`` on [0, 1]^dim with a normalizing-flow sampler.

    Args:
        f: batch function, ``(n, dim)`` points -> ``(n,)`` non-negative values; it receives a
            float64 torch tensor (or a NumPy array if it rejects tensors) and may return either.
        dim: the dimension.
        loss: ``kl`` (default), ``variance`` or ``exponential`` (see :mod:`.losses`).
        batch_size: points per training step.
        lr: Adam learning rate (i-flow: 1e-3), ``clip``: gradient-norm clip (i-flow: 10).
        bins, hidden, blocks: the sampler (i-flow benchmark: 16 bins, 4 x 32). ``blocks`` None
            uses the 2*ceil(log2 dim) i-flow masks.
        buffer_steps: extra optimisation steps on each stored batch (0: fresh points every step).
        grid_iterations: VEGAS pre-training (MadNIS): adapt a separable grid (:mod:`.grid`) for
            this many iterations of ``grid_calls`` uniform points before the flow trains; the
            flow then samples the grid's y-space, so it starts from the VEGAS density and only
            learns the correlations. 0 switches the grid off (the pure i-flow sampler).
        grid_bins, grid_calls: intervals per axis (64, as MadNIS) and points per grid iteration
            (default 4 x ``batch_size``).
        grid_alpha: the grid's damping exponent (vegas: 0.5). Smaller values adapt more slowly
            and keep separated peaks that a few early points would otherwise hide (camel in 16
            dimensions needs 0.2 with 50k points per iteration; see docs/integrate.md).
        seed, device, dtype: reproducibility and placement (float64 by default, as i-flow).
    """

    def __init__(
        self,
        f: Function,
        dim: int,
        loss: str = "kl",
        batch_size: int = 5000,
        lr: float = 1e-3,
        clip: float = 10.0,
        bins: int = 16,
        hidden: tuple[int, ...] = (32, 32, 32, 32),
        blocks: int | None = None,
        buffer_steps: int = 0,
        grid_iterations: int = 0,
        grid_bins: int = 64,
        grid_calls: int | None = None,
        grid_alpha: float = 0.5,
        seed: int = 0,
        device: str = "cpu",
        dtype: torch.dtype = torch.float64,
    ) -> None:
        if dim < 1:
            raise InputError(f"dim must be >= 1, got {dim}")
        if loss not in LOSSES:
            raise InputError(f"unknown loss {loss!r}; expected one of {', '.join(LOSSES)}")
        if batch_size < 2:
            raise InputError(f"batch size must be >= 2, got {batch_size}")
        self.f, self.dim, self.loss = f, dim, loss
        self.batch_size, self.buffer_steps = batch_size, buffer_steps
        self.device = torch.device(device)
        self.flow = make_sampler(dim, bins, hidden, blocks, seed).to(self.device, dtype)
        if grid_iterations < 0:
            raise InputError(f"grid iterations must be >= 0, got {grid_iterations}")
        grid_calls = 4 * batch_size if grid_calls is None else grid_calls
        if grid_iterations and grid_bins < 2:
            raise InputError(f"the grid needs at least 2 bins per axis, got {grid_bins}")
        if grid_iterations and not 0.0 < grid_alpha <= 2.0:
            raise InputError(f"grid damping alpha must be in (0, 2], got {grid_alpha}")
        if grid_iterations and grid_calls < 2 * grid_bins:
            raise InputError(
                f"grid calls per iteration must be >= {2 * grid_bins}, got {grid_calls}"
            )
        self.grid = (
            VegasGrid(dim, grid_bins, grid_alpha, dtype=dtype, device=self.device)
            if grid_iterations
            else None
        )
        self.grid_iterations, self.grid_calls, self.grid_adapted = grid_iterations, grid_calls, 0
        self.config = {
            "dim": dim,
            "loss": loss,
            "batch_size": batch_size,
            "lr": lr,
            "clip": clip,
            "bins": bins,
            "hidden": list(hidden),
            "blocks": blocks,
            "buffer_steps": buffer_steps,
            "grid_iterations": grid_iterations,
            "grid_bins": grid_bins,
            "grid_calls": grid_calls,
            "grid_alpha": grid_alpha,
            "seed": seed,
        }
        self.optimizer = torch.optim.Adam(self.flow.parameters(), lr=lr)
        self.clip = clip
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self.calls = 0
        self.history: list[dict[str, float]] = []
        self._numpy_f: bool | None = None

    # -- the integrand -------------------------------------------------------------------------
    def evaluate(self, x: torch.Tensor) -> torch.Tensor:
        """f at ``x`` ``(n, dim)``, validated: shape, finite, non-negative. Counts the calls."""
        values = self._call(x)
        n = x.shape[0]
        if values.shape != (n,):
            if values.shape == (n, 1):
                values = values[:, 0]
            else:
                raise InputError(
                    f"integrand gave shape {tuple(values.shape)} for {n} points, expected ({n},)"
                )
        bad = ~torch.isfinite(values)
        negative = values < 0
        for mask, what in ((bad, "NaN/Inf"), (negative, "negative")):
            if mask.any():
                i = int(torch.nonzero(mask)[0])
                example = ", ".join(f"{v:.6g}" for v in x[i].tolist())
                raise InputError(
                    f"integrand returned {int(mask.sum())} {what} value(s) in a batch of {n}, "
                    f"e.g. f([{example}]) = {values[i].item()}"
                )
        self.calls += n
        return values

    def _call(self, x: torch.Tensor) -> torch.Tensor:
        attempts = [False, True] if self._numpy_f is None else [self._numpy_f]
        error: Exception | None = None
        for as_numpy in attempts:
            try:
                arg = x.detach().cpu().numpy() if as_numpy else x.detach()
                out = self.f(arg)
                values = torch.as_tensor(np.asarray(out) if as_numpy else out)
                self._numpy_f = as_numpy
                return values.to(device=x.device, dtype=x.dtype)
            except InputError:
                raise
            except Exception as exc:  # noqa: BLE001 - report the user's function's failure
                error = exc
        raise InputError(
            f"integrand failed on a batch of shape {tuple(x.shape)} (dim {self.dim}): "
            f"{type(error).__name__}: {error}"
        )

    # -- training ------------------------------------------------------------------------------
    def train(self, steps: int, progress: bool = False) -> list[dict[str, float]]:
        """``steps`` optimisation steps on points drawn from the flow (plus buffered re-use),
        after the VEGAS pre-training if it is configured and not done yet (it assumes the flow
        is still the identity)."""
        self.pretrain_grid(progress)
        bar = tqdm(range(steps), disable=not progress, desc=f"training ({self.loss})", unit="step")
        for _ in bar:
            with torch.no_grad():
                x, log_q_sample, y, log_jac = self._draw(self.batch_size)
            fx = self.evaluate(x)
            w = fx / torch.exp(log_q_sample)
            estimate, error = float(w.mean()), float(w.std() / math.sqrt(len(w)))
            if estimate <= 0:
                raise InputError(
                    f"integrand is zero on all {len(w)} sampled points; cannot train a sampler"
                )
            log_p = torch.log(torch.clamp(fx / estimate, min=1e-16))
            for _ in range(1 + self.buffer_steps):
                log_q = self.flow.log_prob(y) - log_jac
                loss = nis_loss(self.loss, log_p, log_q, log_q_sample)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.flow.parameters(), self.clip)
                self.optimizer.step()
            record = {
                "loss": float(loss.detach()),
                "estimate": estimate,
                "error": error,
                "relative_spread": error * math.sqrt(len(w)) / abs(estimate),
                "calls": self.calls,
            }
            self.history.append(record)
            bar.set_postfix(
                estimate=f"{estimate:.6g}", rel_spread=f"{record['relative_spread']:.3f}"
            )
        return self.history

    def training_estimate(self, skip: int = 0) -> tuple[float, float]:
        """Inverse-variance combination of the training steps (after ``skip``): biased by early
        steps; shown for comparison with i-flow's protocol, not used for results."""
        rows = [h for h in self.history[skip:] if h["error"] > 0]
        if not rows:
            raise InputError("no training steps to combine")
        weights = np.array([1 / h["error"] ** 2 for h in rows])
        values = np.array([h["estimate"] for h in rows])
        return float((weights * values).sum() / weights.sum()), float(weights.sum() ** -0.5)

    def _draw(
        self, n: int, sampling: str = "mc"
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``n`` points of the sampler: x, log q(x), the flow's y and log|dx/dy| of the grid.
        ``sampling="qmc"`` maps one scrambled Sobol' net through the flow instead of independent
        uniform latent points (the flow's base is uniform on the unit cube, log density 0)."""
        if sampling == "qmc":
            z = scrambled_sobol(n, self.dim, self.generator, self.device, torch.float64)
            y, log_det = self.flow.to_data(z)
            log_q_y = self.flow.base.log_prob(z) - log_det
        else:
            y, log_q_y = self.flow.sample_and_log_prob(n, generator=self.generator)
        if self.grid is None:
            return y, log_q_y, y, torch.zeros_like(log_q_y)
        x, log_jac = self.grid.to_x(y)
        return x, log_q_y - log_jac, y, log_jac

    def pretrain_grid(self, progress: bool = False) -> None:
        """VEGAS pre-training: the grid's remaining adaptation iterations on uniform y (where the
        flow is still the identity, its density is the grid's; afterwards the grid is frozen)."""
        if self.grid is None:
            return
        for _ in range(self.grid_adapted, self.grid_iterations):
            y = torch.rand(
                self.grid_calls, self.dim, generator=self.generator,
                device=self.device, dtype=self.grid.edges.dtype,
            )  # fmt: skip
            x, log_jac = self.grid.to_x(y)
            w = self.evaluate(x) * torch.exp(log_jac)
            mean = float(w.mean())
            if progress:
                spread = float(w.std()) / mean if mean > 0 else math.inf
                print(f"  grid iteration {self.grid_adapted + 1}: estimate {mean:.6g}, "
                      f"weight spread {spread:.4f}")  # fmt: skip
            if mean <= 0:
                raise InputError(
                    f"integrand is zero on all {len(w)} grid points; cannot adapt the grid"
                )
            self.grid.adapt(y, w)
            self.grid_adapted += 1

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log q(x) of the sampler at points ``x`` ``(n, dim)`` of the unit hypercube."""
        if self.grid is None:
            return self.flow.log_prob(x)
        y, log_jac = self.grid.to_y(x)
        return self.flow.log_prob(y) - log_jac

    # -- integration ---------------------------------------------------------------------------
    @torch.no_grad()
    def sample(
        self, n: int, sampling: str = "mc"
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``n`` points from the frozen sampler: (x, f(x), q(x)); weights are f/q. ``sampling``
        "mc" draws independent points, "qmc" one scrambled Sobol' net (unbiased, correlated)."""
        x, log_q, _, _ = self._draw(n, check_sampling(sampling))
        return x, self.evaluate(x), torch.exp(log_q)

    @torch.no_grad()
    def _weights(self, n: int, sampling: str) -> np.ndarray:
        """Weights f/q of ``n`` fresh points (``sampling`` already checked by the caller)."""
        x, log_q, _, _ = self._draw(n, sampling)
        return (self.evaluate(x) / torch.exp(log_q)).cpu().numpy()

    def integrate(self, n: int, iterations: int = 16, sampling: str = "qmc") -> IntegrationResult:
        """Estimate the integral from ``n`` fresh points of the frozen sampler, drawn in
        ``iterations`` batches: independent scrambled Sobol' replicates (``"qmc"``, the default)
        or independent points (``"mc"``); see the module doc."""
        check_sampling(sampling)
        if iterations < 2 or n < 2 * iterations:
            raise InputError(
                f"need at least 2 iterations of 2 points, got n={n}, iterations={iterations}"
            )
        sizes = [n // iterations + (1 if i < n % iterations else 0) for i in range(iterations)]
        weights = [self._weights(size, sampling) for size in sizes]
        return _pooled_result(weights, self.calls, sampling)

    def run(
        self,
        calls: int | None = None,
        precision: float | None = None,
        train_fraction: float = 0.5,
        eval_batch: int = 100_000,
        max_calls: int = 50_000_000,
        sampling: str = "qmc",
        progress: bool = False,
    ) -> IntegrationResult:
        """One call: train, then evaluate until a call budget or a relative precision is met.

        With ``calls``: ``train_fraction`` of the budget trains (stopping early once the weight
        spread stops improving), the rest evaluates in 16 batches. With ``precision``: training
        as above on half of ``max_calls`` at most, then evaluation batches until the pooled
        relative error reaches ``precision`` (or ``max_calls`` is spent); with qmc an untrained
        sampler is first probed with ``PROBE_CALLS`` calls, and training is skipped when that
        already reaches ``precision`` (a smooth integrand). Batches are sized for
        about 10 (mc) or 40 (qmc, whose error usually falls faster) to the target from the
        trained spread; qmc stops no earlier than 10 replicates, so that its error is trustworthy.
        """
        check_sampling(sampling)
        if (calls is None) == (precision is None):
            raise InputError("give exactly one of calls or precision")
        if calls is not None:
            self._train_until_plateau(int(calls * train_fraction), progress)
            return self.integrate(max(calls - self.calls, 32), iterations=16, sampling=sampling)
        if not 0 < precision < 1:
            raise InputError(f"precision must be a relative error in (0, 1), got {precision}")
        if sampling == "qmc" and not self.history:
            # Smooth integrands (poly) need no training at all: RQMC on the untrained sampler
            # may already be precise enough, for a fraction of one training round's calls.
            probe = self.integrate(PROBE_CALLS, iterations=16, sampling="qmc")
            if progress:
                print(f"  untrained sampler: relative error {probe.relative_error:.2e} "
                      f"from {PROBE_CALLS} calls")  # fmt: skip
            if probe.relative_error <= precision:
                return probe
        spread = self._train_until_plateau(int(max_calls * train_fraction), progress, precision)
        share, least = (10, 2) if sampling == "mc" else (40, 10)
        batch = int(min(eval_batch, max(1024, (spread / precision) ** 2 / share)))
        if sampling == "qmc":  # a power of two keeps the Sobol' net balanced
            batch = 2 ** round(math.log2(batch))
        weights: list[np.ndarray] = []
        while True:
            weights.append(self._weights(batch, sampling))
            if len(weights) < least:
                continue
            result = _pooled_result(weights, self.calls, sampling)
            if result.relative_error <= precision or self.calls >= max_calls:
                return result

    def _train_until_plateau(
        self, budget: int, progress: bool, precision: float | None = None
    ) -> float:
        """Train in rounds of 10 steps while the relative weight spread s improves by > 2%.

        With a target ``precision`` r, also stop once (s/r)^2, the calls the frozen sampler then
        needs, is no more than the calls training has spent: more training would not pay.
        Returns the last measured spread.
        """
        plateau, spread = Plateau(), math.inf
        for spread in self.training_rounds(budget, progress=progress):
            if progress:
                print(f"  trained {len(self.history)} steps, {self.calls} calls, "
                      f"weight spread {spread:.4f}")  # fmt: skip
            if precision is not None and training_pays_off(spread, precision, self.calls):
                break
            if plateau(spread):
                break
        return spread

    def training_rounds(
        self, budget: int, steps: int = 10, progress: bool = False
    ) -> Iterator[float]:
        """Train in rounds of ``steps`` steps (after any pending VEGAS pre-training) while the
        next round fits in ``budget`` calls; yield each round's median relative weight spread.
        The caller decides when to stop (plateau, pay-off, or the whole budget)."""
        self.pretrain_grid(progress)
        while self.calls + steps * self.batch_size <= budget:
            self.train(steps)
            yield float(np.median([h["relative_spread"] for h in self.history[-steps:]]))

    # -- unweighting ---------------------------------------------------------------------------
    def unweight(
        self, n: int, max_weight_quantile: float | None = None, seed: int = 0
    ) -> UnweightingResult:
        """Accept/reject ``n`` sampled points against w_max = max(w) (or the given quantile of w,
        keeping over-weight events with weight w/w_max so the sample stays unbiased)."""
        x, fx, q = self.sample(n)
        w = (fx / q).cpu().numpy()
        if not np.any(w > 0):
            raise InputError("all sampled weights are zero; nothing to unweight")
        w_max = (
            float(w.max())
            if max_weight_quantile is None
            else float(np.quantile(w, max_weight_quantile))
        )
        rng = np.random.default_rng(seed)
        accept = rng.random(len(w)) * w_max < w
        events = x.cpu().numpy()[accept]
        weights = np.maximum(w[accept] / w_max, 1.0)
        return UnweightingResult(
            events,
            weights,
            float(w.mean() / w.max()),
            bootstrap_efficiency(w, self.batch_size, rng),
            w_max,
            float(np.mean(w > w_max)),
            n,
        )

    # -- persistence ---------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Save the sampler (safetensors + model.json, as any hepflows flow) and the settings."""
        from hepflows.train import save_flow

        out = save_flow(self.flow, path)
        state = {**self.config, "calls": self.calls, "grid_adapted": self.grid_adapted}
        if self.grid is not None:
            state["grid_edges"] = self.grid.state()
        write_json(out / "integrator.json", state)
        return out

    @classmethod
    def load(cls, path: str | Path, f: Function, device: str = "cpu") -> Integrator:
        """Rebuild a saved integrator for integrand ``f``."""
        from hepflows.train import load_flow

        cfg = read_json(Path(path) / "integrator.json", "integrator settings")
        calls = cfg.pop("calls", 0)
        adapted = cfg.pop("grid_adapted", 0)
        edges = cfg.pop("grid_edges", None)
        try:
            new = cls(f, device=device, **cfg)
            if new.grid is not None:
                if edges is None:
                    raise ValueError("the grid's edges are missing")
                new.grid = VegasGrid.from_state(edges, new.grid.alpha).to(new.device, torch.float64)
                if new.grid.dim != new.dim:
                    raise ValueError(f"the grid has {new.grid.dim} axes, dim is {new.dim}")
                new.grid_adapted = int(adapted)
        except (TypeError, ValueError) as exc:
            raise InputError(f"{path}: invalid integrator settings ({exc})") from None
        new.flow = load_flow(path, device=device).to(torch.float64)
        new.optimizer = torch.optim.Adam(new.flow.parameters(), lr=cfg["lr"])
        new.calls = calls
        return new


class Plateau:
    """Stop rule for training rounds: true once the weight spread has not improved on its best by
    more than ``gain`` (2%) for ``patience`` (3) rounds in a row."""

    def __init__(self, gain: float = 0.02, patience: int = 3) -> None:
        self.gain, self.patience = gain, patience
        self.best, self.stale = math.inf, 0

    def __call__(self, spread: float) -> bool:
        if spread < (1 - self.gain) * self.best:
            self.best, self.stale = spread, 0
        else:
            self.stale += 1
        return self.stale >= self.patience


def training_pays_off(spread: float, precision: float, calls: int) -> bool:
    """More training no longer pays once (s/r)^2, the independent-point evaluation calls a
    sampler of weight spread s needs for a relative error r, is no more than the ``calls`` already
    spent (RQMC usually needs fewer, so the rule errs on the side of training)."""
    return (spread / precision) ** 2 <= calls


def grid_options(
    iterations: int | None, calls: int | None = None, alpha: float | None = None
) -> dict[str, Any]:
    """:class:`Integrator` keyword arguments for the VEGAS-grid options that are set (None keeps
    the Integrator's default); shared by the CLI and the benchmark."""
    values = {"grid_iterations": iterations, "grid_calls": calls, "grid_alpha": alpha}
    return {key: value for key, value in values.items() if value is not None}


def make_sampler(
    dim: int,
    bins: int = 16,
    hidden: tuple[int, ...] = (32, 32, 32, 32),
    blocks: int | None = None,
    seed: int = 0,
) -> Flow:
    """The i-flow sampler: bounded-spline couplings with i-flow masks, zero-initialised (uniform
    start); a one-dimensional problem gets a single autoregressive spline."""
    if dim == 1:
        return MAF(
            1,
            blocks=1,
            hidden=hidden,
            transform="unit-spline",
            bins=bins,
            zero_init=True,
            seed=seed,
        )
    masks = "iflow" if blocks is None else "halves"
    return CouplingFlow(
        dim,
        blocks=blocks or 2,
        hidden=hidden,
        transform="unit-spline",
        bins=bins,
        masks=masks,
        permutation="none" if blocks is None else "random",
        zero_init=True,
        seed=seed,
    )


def _pooled_result(weights: list[np.ndarray], calls: int, sampling: str) -> IntegrationResult:
    """Pool evaluation batches of weights f/q: all points together (mc; chi^2 and Q across the
    batches) or the batches as independent RQMC replicates (qmc; see :mod:`.qmc`)."""
    n = sum(len(w) for w in weights)
    if sampling == "qmc":
        means = np.array([w.mean() for w in weights])
        integral, error = replicate_estimate(means, np.array([len(w) for w in weights]))
        batches = [(float(m), math.nan) for m in means]
        return IntegrationResult(integral, error, calls, n, None, None, batches, "qmc")
    batches = [(float(w.mean()), float(w.std(ddof=1) / math.sqrt(len(w)))) for w in weights]
    w = np.concatenate(weights)
    integral = float(w.mean())
    error = float(w.std(ddof=1) / math.sqrt(len(w)))
    chi2_dof = q_value = None
    if len(batches) > 1:
        values = np.array([b[0] for b in batches])
        errors = np.array([b[1] for b in batches])
        if np.all(errors > 0):
            chi2 = float(np.sum(((values - integral) / errors) ** 2))
            dof = len(batches) - 1
            chi2_dof, q_value = chi2 / dof, float(stats.chi2.sf(chi2, dof))
    return IntegrationResult(integral, error, calls, n, chi2_dof, q_value, batches, "mc")


def bootstrap_efficiency(
    w: np.ndarray, n: int, rng: np.random.Generator, replicas: int = 1000, pool_factor: int = 50
) -> float:
    """Unweighting efficiency of arXiv:2001.10028: from a pool of up to pool_factor * n weights,
    ``replicas`` resamples of size n; mean over replicas of mean(w) / median of max(w)."""
    pool = w[: pool_factor * n]
    n = max(2, min(n, len(pool) // pool_factor)) if len(pool) < pool_factor * n else n
    idx = rng.integers(0, len(pool), size=(replicas, n))
    draws = pool[idx]
    return float(draws.mean(axis=1).mean() / np.median(draws.max(axis=1)))


def write_events(path: str | Path, events: np.ndarray, weights: np.ndarray) -> Path:
    """Unweighted events to HDF5: ``x`` (n, dim) in [0,1]^dim and ``weight`` (n,), atomically."""
    import h5py

    out = Path(path)
    with atomic_path(out) as tmp:
        with h5py.File(tmp, "w") as h5:
            h5.create_dataset("x", data=events, compression="gzip")
            h5.create_dataset("weight", data=weights, compression="gzip")
    return out
