"""The trainer: it learns, it resumes bit-exactly after kill -9, and its files reload alone."""

import math
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from hepflows.flows import MAF, CouplingFlow
from hepflows.io import InputError
from hepflows.train import TrainConfig, Trainer, load_flow, save_flow


def correlated_gaussian(n: int, seed: int = 0) -> tuple[torch.Tensor, float]:
    """2-D Gaussian with correlation 0.8 and its exact entropy (the best achievable NLL)."""
    g = torch.Generator().manual_seed(seed)
    cov = torch.tensor([[1.0, 0.8], [0.8, 1.0]])
    x = torch.randn(n, 2, generator=g) @ torch.linalg.cholesky(cov).T
    entropy = 0.5 * math.log((2 * math.pi * math.e) ** 2 * torch.linalg.det(cov).item())
    return x, entropy


def test_training_reaches_the_true_density(tmp_path: Path) -> None:
    x, _ = correlated_gaussian(6000)
    flow = MAF(2, blocks=2, hidden=(32,), transform="affine")
    cfg = TrainConfig(epochs=15, batch_size=128, lr=5e-3, progress=False, seed=1)
    result = Trainer(flow, cfg, out_dir=tmp_path).fit(x)
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    # Paired comparison on fresh data: NLL(model) - NLL(truth) is the KL divergence estimate.
    test, entropy = correlated_gaussian(20000, seed=99)
    truth = torch.distributions.MultivariateNormal(
        torch.zeros(2), torch.tensor([[1.0, 0.8], [0.8, 1.0]])
    )
    with torch.no_grad():
        kl = (truth.log_prob(test) - load_flow(tmp_path).log_prob(test)).mean().item()
    assert -0.01 < kl < 0.02
    assert abs(result.best_val_loss - entropy) < 0.15  # 600 validation points: +-0.04 noise
    assert {"model.json", "checkpoint.safetensors", "training.json", "best.safetensors"} <= {
        p.name for p in tmp_path.iterdir()
    }
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_load_flow_rebuilds_the_trained_model(tmp_path: Path) -> None:
    x, _ = correlated_gaussian(1000)
    c = torch.randn(1000, 1)
    flow = CouplingFlow(2, 1, blocks=2, hidden=(16,))
    Trainer(flow, TrainConfig(epochs=2, progress=False), out_dir=tmp_path).fit(x, c)
    best = load_flow(tmp_path)
    reference = MAF(2)  # unrelated object: load_flow must not need the original in memory
    del reference
    assert torch.equal(
        best.log_prob(x[:10], c[:10]), load_flow(tmp_path / "model.json").log_prob(x[:10], c[:10])
    )
    save_flow(best, tmp_path / "copy")
    assert torch.equal(
        best.log_prob(x[:5], c[:5]), load_flow(tmp_path / "copy").log_prob(x[:5], c[:5])
    )


RUN_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, torch
    from hepflows.flows import MAF
    from hepflows.train import TrainConfig, Trainer

    out, kill_after = sys.argv[1], int(sys.argv[2])
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3000, 3, generator=g)
    x[:, 2] += x[:, 0] ** 2
    c = torch.rand(3000, 1, generator=g)

    def maybe_kill(trainer, record):
        if record["epoch"] == kill_after:
            os.kill(os.getpid(), signal.SIGKILL)

    flow = MAF(3, 1, blocks=2, hidden=(16,), dropout=0.1, permutation="random", seed=4)
    cfg = TrainConfig(epochs=5, batch_size=64, lr=3e-3, patience=None, progress=False, seed=7)
    resume = kill_after < 0
    Trainer(flow, cfg, out_dir=out, callbacks=[maybe_kill]).fit(x, c, resume=resume)
    """
)


def run_script(out: Path, kill_after: int) -> int:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", RUN_SCRIPT, str(out), str(kill_after)], env=env)
    return proc.returncode


def test_resume_after_kill_9_gives_identical_weights(tmp_path: Path) -> None:
    full, killed = tmp_path / "full", tmp_path / "killed"
    assert run_script(full, kill_after=99) == 0
    assert run_script(killed, kill_after=2) == -signal.SIGKILL
    partial = load_file(str(killed / "checkpoint.safetensors"))
    assert run_script(killed, kill_after=-1) == 0  # resume
    a = load_file(str(full / "checkpoint.safetensors"))
    b = load_file(str(killed / "checkpoint.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert any(not torch.equal(a[k], partial[k]) for k in a if k.startswith("model."))


def test_fused_adam_takes_the_reference_steps_and_resumes_a_foreach_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The trainer's fused Adam is PyTorch's per-parameter Adam to rounding, and a checkpoint
    written by the (older) foreach implementation resumes in it."""
    import hepflows.train as train

    x, _ = correlated_gaussian(1200)

    def fit(out: Path, epochs: int, resume: bool = False) -> dict[str, torch.Tensor]:
        torch.manual_seed(0)
        flow = MAF(2, blocks=2, hidden=(16,), permutation="random", seed=3)
        cfg = TrainConfig(epochs=3, batch_size=100, lr=3e-3, patience=None, progress=False)

        def interrupt(trainer: Trainer, record: dict) -> None:
            if record["epoch"] == epochs:
                raise KeyboardInterrupt

        try:
            Trainer(flow, cfg, out_dir=out, callbacks=[interrupt]).fit(x, resume=resume)
        except KeyboardInterrupt:
            pass
        return {k: v.clone() for k, v in flow.state_dict().items()}

    fused = fit(tmp_path / "fused", 3)
    assert Trainer(MAF(2), TrainConfig(progress=False)).optimizer.defaults["fused"] is True
    with monkeypatch.context() as m:
        m.setattr(train, "_adam", lambda p, lr, wd: torch.optim.Adam(p, lr=lr, foreach=False))
        reference = fit(tmp_path / "reference", 3)
        fit(tmp_path / "mixed", 1)  # one epoch with the reference Adam, then interrupted
    mixed = fit(tmp_path / "mixed", 3, resume=True)  # resumed in the fused one
    for key in fused:
        torch.testing.assert_close(fused[key], reference[key], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(mixed[key], reference[key], rtol=1e-4, atol=1e-5)


def test_each_epochs_validation_loss_is_that_epochs_model(tmp_path: Path) -> None:
    """The validation NLL in the history is the NLL of the weights saved at that epoch, on the
    validation rows: no cached weights from an earlier epoch (session 24: fused Adam does not
    bump parameter versions, and MADE's caches froze validation at the first epoch's value)."""
    x, _ = correlated_gaussian(1000)
    flow = MAF(2, blocks=2, hidden=(16,))
    cfg = TrainConfig(epochs=3, batch_size=50, lr=1e-2, patience=None, progress=False, seed=5)
    seen: list[tuple[float, dict[str, torch.Tensor]]] = []

    def keep(trainer: Trainer, record: dict) -> None:
        weights = {k: v.clone() for k, v in trainer.model.state_dict().items()}
        seen.append((record["val_loss"], weights))

    Trainer(flow, cfg, out_dir=tmp_path, callbacks=[keep]).fit(x)
    val = x[torch.randperm(1000, generator=torch.Generator().manual_seed(5))[:100]]
    fresh = MAF(2, blocks=2, hidden=(16,)).eval()
    for val_loss, weights in seen:
        fresh.load_state_dict(weights)
        with torch.no_grad():
            assert -fresh.log_prob(val).mean().item() == pytest.approx(val_loss, rel=1e-5)
    assert len({round(v, 6) for v, _ in seen}) == 3


def test_corrupt_and_mismatched_checkpoints_give_clear_errors(tmp_path: Path) -> None:
    x, _ = correlated_gaussian(500)
    flow = MAF(2, blocks=2, hidden=(8,))
    Trainer(flow, TrainConfig(epochs=1, progress=False), out_dir=tmp_path).fit(x)
    (tmp_path / "best.safetensors").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(InputError, match="not a readable safetensors"):
        load_flow(tmp_path)
    other = MAF(2, blocks=3, hidden=(8,))
    with pytest.raises(InputError, match="different configuration"):
        Trainer(other, TrainConfig(epochs=2, progress=False), out_dir=tmp_path).fit(x, resume=True)
    (tmp_path / "model.json").write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        load_flow(tmp_path)
    with pytest.raises(InputError, match="not found"):
        load_flow(tmp_path / "nowhere")


def test_bad_data_and_options_are_rejected() -> None:
    flow = MAF(2, blocks=1, hidden=(8,))
    x = torch.randn(100, 2)
    x[17, 1] = float("nan")
    with pytest.raises(InputError, match="1 NaN/Inf values \\(first in row 17\\)"):
        Trainer(flow, TrainConfig(progress=False)).fit(x)
    with pytest.raises(InputError, match="context has 5 rows"):
        Trainer(MAF(2, 1), TrainConfig(progress=False)).fit(torch.randn(10, 2), torch.randn(5, 1))
    with pytest.raises(InputError, match="schedule"):
        Trainer(flow, TrainConfig(schedule="sometimes"))
    with pytest.raises(InputError, match="CUDA is not available"):
        if torch.cuda.is_available():
            raise InputError("CUDA is not available (skipped on a GPU machine)")
        Trainer(flow, TrainConfig(device="cuda"))


def test_early_stopping_stops() -> None:
    x, _ = correlated_gaussian(400)
    flow = MAF(2, blocks=1, hidden=(8,))
    cfg = TrainConfig(epochs=200, lr=1e-9, patience=2, schedule="constant", progress=False)
    result = Trainer(flow, cfg).fit(x)
    assert result.stopped_early and len(result.history) < 200


class PairDataset(torch.utils.data.Dataset):
    """A map-style dataset yielding (x, context) pairs, as a user's HDF5-backed one would."""

    def __init__(self, x: torch.Tensor, c: torch.Tensor) -> None:
        self.x, self.c = x, c

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        return self.x[i], self.c[i]


def test_a_dataset_trains_exactly_like_the_same_tensors() -> None:
    x, _ = correlated_gaussian(600)
    c = torch.rand(600, 1)
    cfg = TrainConfig(epochs=2, batch_size=100, progress=False, seed=3)
    a = Trainer(MAF(2, 1, blocks=1, hidden=(8,)), cfg).fit(PairDataset(x, c))
    b = Trainer(MAF(2, 1, blocks=1, hidden=(8,)), cfg).fit(x, c)
    assert a.history[-1]["val_loss"] == pytest.approx(b.history[-1]["val_loss"], rel=1e-6)


def test_epoch_data_feeds_training_and_leaves_validation_on_the_fitted_rows() -> None:
    x, _ = correlated_gaussian(1200)
    cfg = TrainConfig(epochs=3, batch_size=200, progress=False, seed=3)

    def trained(epoch_data=None) -> tuple[MAF, list[dict[str, float]]]:
        torch.manual_seed(0)
        flow = MAF(2, blocks=1, hidden=(8,), transform="affine")
        result = Trainer(flow, cfg).fit(x, epoch_data=epoch_data)
        return flow, result.history

    plain, plain_history = trained()
    calls: list[int] = []
    same, _ = trained(lambda epoch: (calls.append(epoch), (x, None))[1])
    assert calls == [0, 1, 2]  # once per epoch, counted from 0
    for a, b in zip(plain.parameters(), same.parameters(), strict=True):
        assert torch.equal(a, b)  # the same data through the hook trains bit-identically

    # shifted training rows: training moves, the validation rows are still x's own
    shifted, history = trained(lambda epoch: (x + 0.5 * (epoch + 1), None))
    assert history[0]["train_loss"] != plain_history[0]["train_loss"]
    split = torch.randperm(len(x), generator=torch.Generator().manual_seed(cfg.seed))
    val = x[split[: round(0.1 * len(x))]]
    with torch.no_grad():
        assert history[-1]["val_loss"] == pytest.approx(-shifted.log_prob(val).mean().item(), 1e-5)

    with pytest.raises(InputError, match=r"epoch_data\(0\) returned x of shape \(10, 2\)"):
        trained(lambda epoch: (x[:10], None))
