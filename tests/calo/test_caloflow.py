"""CaloFlow end to end on a tiny sample: configuration, permutations, training stages, resume,
generation (layer sums, units, reproducibility) and the command line."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from hepflows.calo.caloflow import (
    CaloFlowGenerator,
    RunInfo,
    _fresh_noise_inputs,
    _noisy_showers,
    _training_inputs,
    layer_permutations,
    load_config,
    train_caloflow,
)
from hepflows.calo.formats import read_showers, write_showers
from hepflows.calo.geometry import get_geometry
from hepflows.calo.preprocess import logit
from hepflows.calo.simulate import simulate
from hepflows.cli import main
from hepflows.io import InputError

TINY = {
    "flow1": {"blocks": 2, "hidden": [16], "epochs": 2, "batch_size": 128},
    "teacher": {"blocks": 2, "hidden": [16], "bins": 4, "epochs": 1, "batch_size": 128},
    "student": {"hidden": [16], "epochs": 1, "batch_size": 128},
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("caloflow")
    geo = get_geometry("calogan")
    energies = np.random.default_rng(0).uniform(1e3, 1e5, 400)
    batch = next(simulate(geo, "e+", energies, seed=1, batch_size=400))
    data = write_showers(folder / "train.h5", batch.incident, batch.showers, geo)
    run = folder / "run"
    train_caloflow(data, run, stage="all", config=TINY, progress=False, log=lambda _: None)
    return data, run


def test_config_presets_and_overrides(tmp_path: Path) -> None:
    cpu, gpu = load_config("calogan"), load_config("calogan", "gpu")
    assert gpu["teacher"]["hidden"] == [512] and cpu["teacher"]["hidden"] != [512]
    assert load_config("calogan", override={"teacher": {"epochs": 3}})["teacher"]["epochs"] == 3
    with pytest.raises(InputError, match="unknown setting 'epoch'"):
        load_config("calogan", override={"teacher": {"epoch": 3}})
    with pytest.raises(InputError, match="no CaloFlow configuration"):
        load_config("atlas")
    for name in ("calogan", "ds1-photons", "ds1-pions", "ds2", "ds3"):
        assert load_config(name)["teacher"]["blocks"] >= 2
        # every geometry names every setting, so any of them can be overridden (e.g. the
        # student's init on ds1, which a missing key used to refuse as "unknown")
        for stage in ("flow1", "teacher", "student", "preprocessing"):
            assert set(load_config(name)[stage]) == set(cpu[stage]), (name, stage)
    ds1 = load_config("ds1-photons", override={"student": {"init": "teacher", "hidden": [256]}})
    assert ds1["student"]["init"] == "teacher"


def test_permutations_stay_within_layers() -> None:
    geo = get_geometry("ds1-photons")
    perms = layer_permutations(geo, 5, seed=3)
    assert len(perms) == 4
    for b, perm in enumerate(perms):
        perm = np.asarray(perm)
        assert sorted(perm) == list(range(geo.n_voxels))
        for layer in geo.relevant_layers:
            part = perm[layer.start : layer.stop]
            assert part.min() == layer.start and part.max() == layer.stop - 1
            if b % 2 == 0:
                assert (part == np.arange(layer.stop - 1, layer.start - 1, -1)).all()


def test_alternate_layer_order_reverses_the_layers_in_odd_blocks() -> None:
    geo = get_geometry("calogan")
    perms = layer_permutations(geo, 6, seed=3, layer_order="alternate")
    starts = [layer.start for layer in geo.relevant_layers]
    sizes = [layer.stop - layer.start for layer in geo.relevant_layers]
    arrangement = np.arange(geo.n_voxels)  # original voxel at each position, block by block
    for b, perm in enumerate(perms, start=1):
        assert sorted(perm) == list(range(geo.n_voxels))
        arrangement = arrangement[np.asarray(perm)]
        layer_of = np.searchsorted(starts, arrangement, side="right") - 1
        order = [0, 1, 2] if b % 2 == 0 else [2, 1, 0]
        expected = np.repeat(order, [sizes[i] for i in order])
        assert (layer_of == expected).all()  # whole layers, in depth order or reversed
    # depth order keeps the published layout
    assert layer_permutations(geo, 6, seed=3) == layer_permutations(geo, 6, 3, "depth")
    with pytest.raises(ValueError, match="layer_order"):
        layer_permutations(geo, 6, seed=3, layer_order="random")


def test_run_folder_and_training_curves(trained: tuple[Path, Path]) -> None:
    _, run = trained
    info = RunInfo.load(run)
    assert info.geometry == "calogan" and info.preprocessing.u_scale >= 1.0
    for stage in ("flow1", "teacher", "student"):
        assert (run / stage / "best.safetensors").is_file()
    assert (run / "training.png").stat().st_size > 10_000
    history = json.loads((run / "student" / "training.json").read_text())["history"]
    assert np.isfinite(history[-1]["val_loss"])  # the KL monitor


@pytest.mark.parametrize("model", ["teacher", "student"])
def test_generation_respects_energies_and_seed(trained: tuple[Path, Path], model: str) -> None:
    _, run = trained
    gen = CaloFlowGenerator.load(run, model)
    e = np.array([2e3, 5e4, 9e4] * 10)
    a = gen.generate(e, batch_size=7, seed=3)
    b = gen.generate(e, batch_size=30, seed=3)
    assert a.shape == (30, 504) and a.dtype == np.float32
    assert (a >= 0).all() and np.isfinite(a).all()
    assert not np.array_equal(a, gen.generate(e, batch_size=30, seed=4))
    # seeded: the same showers whatever the batch size? No: noise is drawn per batch, so only
    # the same batch size reproduces exactly.
    assert np.array_equal(b, gen.generate(e, batch_size=30, seed=3))
    # no voxel below the noise cut survives, and the deposit is bounded by f x E_inc
    cut = gen.preprocessing.noise_cut_mev
    assert ((a == 0) | (a >= cut)).all()
    assert (a.sum(1) <= gen.preprocessing.u_scale * e * (1 + 1e-5)).all()


class _StubFlow:
    """A flow II stand-in: a draw whose first latent is negative leaves the back layer in the
    noise band (every share 1e-9); any other draw puts 90% of each layer in one voxel."""

    def __init__(self, geometry) -> None:
        self._anchor, self.features, self.geometry, self.rows = torch.zeros(()), 504, geometry, []

    def to_data(self, z: torch.Tensor, context: torch.Tensor) -> tuple[torch.Tensor]:
        self.rows.append(len(z))
        shares = np.full((len(z), self.features), 1e-9)
        for layer in self.geometry.relevant_layers:
            shares[:, layer.start + 1] = 0.9
        back = self.geometry.relevant_layers[-1]
        shares[(z[:, 0] < 0).numpy(), back.start + 1] = 1e-9
        return (torch.as_tensor(logit(shares)),)


def test_generator_draws_noise_only_layers_again(trained: tuple[Path, Path]) -> None:
    _, run = trained
    e = np.full(400, 5e4)  # flow I gives the back layer far more than the 10 keV cut
    counts = {}
    for redraws in (0, 10):
        gen = CaloFlowGenerator.load(run, "student", max_redraws=redraws)
        gen.flow2 = stub = _StubFlow(gen.geometry)
        showers = gen.generate(e, batch_size=200, seed=1)
        back = gen.geometry.relevant_layers[-1]
        counts[redraws] = (showers[:, back.start : back.stop] > 0).sum(1)
        if not redraws:
            assert gen.redrawn == gen.noise_only_left == 0 and stub.rows == [200, 200]
        else:
            # each pass draws only the rows still noise only: about half, a quarter, ...
            assert 150 < gen.redrawn < 250 and gen.noise_only_left == 0
            assert stub.rows[0] == 200 and stub.rows[1] < 130 and stub.rows[2] < stub.rows[1]
    # without redraws about half the back layers are spread over their voxels (all 72 but those
    # the support clip caps at 0: never hit in the tiny training set); with them none
    spread = counts[0] > 1
    assert 150 < spread.sum() < 250 and (counts[0][~spread] == 1).all()
    assert counts[0][spread].min() > 10
    assert set(counts[10]) == {1}
    with pytest.raises(InputError, match="max_redraws"):
        CaloFlowGenerator.load(run, "student", max_redraws=-1)


def test_resume_of_a_finished_run_is_a_no_op(trained: tuple[Path, Path]) -> None:
    data, run = trained
    before = (run / "teacher" / "best.safetensors").read_bytes()
    results = train_caloflow(
        data, run, stage="teacher", resume=True, progress=False, log=lambda _: None
    )
    assert results[0].epochs == 1
    assert (run / "teacher" / "best.safetensors").read_bytes() == before


def test_cli_generate_and_errors(trained: tuple[Path, Path], tmp_path: Path) -> None:
    data, run = trained
    out = tmp_path / "gen.h5"
    assert (
        main(
            [
                "calo",
                "generate",
                str(run),
                "--like",
                str(data),
                "-n",
                "50",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    e, s, geo = read_showers(out)
    e_ref, _, _ = read_showers(data, max_showers=50)
    assert geo.name == "calogan" and s.shape == (50, 504)
    assert np.allclose(e, e_ref)
    assert (
        main(
            [
                "calo",
                "generate",
                str(run),
                "-n",
                "20",
                "--energy",
                "fixed:10",
                "--model",
                "teacher",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    assert np.allclose(read_showers(out)[0], 1e4)
    # bfloat16 matrix products: close to the float32 showers of the same seed, not equal
    args = ["calo", "generate", str(run), "-n", "20", "--energy", "fixed:10", "--quiet"]
    fast = tmp_path / "bf16.h5"
    assert main([*args, "--out", str(out)]) == 0
    assert main([*args, "--precision", "bfloat16", "--out", str(fast)]) == 0
    s32, s16 = read_showers(out)[1], read_showers(fast)[1]
    assert not np.array_equal(s32, s16)
    assert np.allclose(s16.sum(1), s32.sum(1), rtol=1e-3)  # flow I is unchanged
    # a higher noise cut zeroes exactly the voxels below it, the rest unchanged (without
    # redraws: which layers count as noise only depends on the cut)
    cut, base = tmp_path / "cut.h5", tmp_path / "base.h5"
    assert main([*args, "--max-redraws", "0", "--out", str(base)]) == 0
    assert main([*args, "--max-redraws", "0", "--noise-cut", "5", "--out", str(cut)]) == 0
    s0, s_cut = read_showers(base)[1], read_showers(cut)[1]
    assert np.array_equal(s_cut, np.where(s0 < 5.0, 0.0, s0))
    # errors: one line, status 2, nothing written
    bad = tmp_path / "bad.h5"
    assert main(["calo", "generate", str(tmp_path), "-n", "5", "--out", str(bad)]) == 2
    assert main(["calo", "generate", str(run), "--out", str(bad)]) == 2
    assert main([*args, "--noise-cut", "nan", "--out", str(bad)]) == 2
    assert main([*args, "--max-redraws", "-1", "--out", str(bad)]) == 2
    assert (
        main(["calo", "generate", str(run), "--like", str(data), "-n", "100000", "--out", str(bad)])
        == 2
    )
    assert (
        main(
            ["calo", "train", "--data", str(tmp_path / "missing.h5"), "--out", str(tmp_path / "r")]
        )
        == 2
    )
    assert not bad.exists()


@pytest.mark.parametrize("model", ["student", "teacher"])
def test_cli_generate_compiled_gives_the_same_showers(
    trained: tuple[Path, Path], tmp_path: Path, model: str, monkeypatch
) -> None:
    """--compile (fused splines) changes float32 rounding only: the same voxels to 1e-3 relative
    (the generation cut may flip a voxel that sits on it), and the same layer energies."""
    _, run = trained
    args = ["calo", "generate", str(run), "-n", "40", "--energy", "fixed:10", "--quiet"]
    args += ["--model", model]
    eager, fused = tmp_path / "eager.h5", tmp_path / "fused.h5"
    assert main([*args, "--out", str(eager)]) == 0
    assert main([*args, "--compile", "--out", str(fused)]) == 0
    a, b = read_showers(eager)[1], read_showers(fused)[1]
    assert np.allclose(a.sum(1), b.sum(1), rtol=1e-4)
    close = np.isclose(a, b, rtol=1e-3, atol=1e-3)
    assert close.mean() > 0.999
    # no working compiler: one line, status 2, nothing written
    import hepflows.flows.fused as fused_module

    def broken(*_args, **_kwargs):
        raise RuntimeError("InvalidCxxCompiler: No working C++ compiler found")

    monkeypatch.setattr(fused_module, "_COMPILED", broken)
    bad = tmp_path / "bad.h5"
    assert main([*args, "--compile", "--out", str(bad)]) == 2
    assert not bad.exists()


@pytest.mark.parametrize(
    ("stage", "bad", "message"),
    [
        ("teacher", {"degrees": "bogus"}, "invalid teacher settings.*unknown MADE degrees"),
        ("teacher", {"hidden": []}, "invalid teacher settings.*hidden widths"),
        ("teacher", {"epochs": 0}, "invalid teacher settings.*epochs must be >= 1"),
        ("student", {"beta": 2}, "invalid student settings.*beta must be in"),
        ("student", {"guided": "yes"}, "invalid student settings.*guided must be true or false"),
        ("student", {"init": "teacher", "hidden": [8]}, "invalid student settings.*init 'teacher'"),
    ],
)
def test_a_bad_later_stage_setting_is_refused_before_anything_trains(
    trained: tuple[Path, Path], tmp_path: Path, stage: str, bad: dict, message: str
) -> None:
    """A wrong teacher or student value used to surface only once flow I had trained."""
    data, _ = trained
    config = {name: dict(values) for name, values in TINY.items()}
    config[stage].update(bad)
    logged: list[str] = []
    with pytest.raises(InputError, match=message):
        train_caloflow(data, tmp_path / "r", config=config, progress=False, log=logged.append)
    assert not (tmp_path / "r").exists() and logged == []


def test_student_without_teacher_is_refused(trained: tuple[Path, Path], tmp_path: Path) -> None:
    data, _ = trained
    with pytest.raises(InputError, match="^the student needs a trained teacher"):
        train_caloflow(
            data, tmp_path / "r", stage="student", config=TINY, progress=False, log=lambda _: None
        )
    # a corrupt teacher is named as such, not as a bad student setting
    corrupt = tmp_path / "corrupt"
    shutil.copytree(trained[1], corrupt)
    (corrupt / "teacher" / "best.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(InputError, match="^.*teacher/best.safetensors is not a readable"):
        train_caloflow(
            data, corrupt, stage="student", resume=True, progress=False, log=lambda _: None
        )
    with pytest.raises(InputError, match="geometry"):
        train_caloflow(
            data, tmp_path / "r", geometry="ds1-photons", progress=False, log=lambda _: None
        )
    bad = {**TINY, "teacher": {**TINY["teacher"], "degrees": "random"}}
    with pytest.raises(InputError, match="invalid teacher settings.*unknown MADE degrees"):
        train_caloflow(
            data, tmp_path / "r2", stage="teacher", config=bad, progress=False, log=lambda _: None
        )


def test_other_geometry_with_empty_layers(tmp_path: Path) -> None:
    """Dataset-1 pions: 7 layers of which some have no voxels in the XML; the chain still runs."""
    geo = get_geometry("ds1-pions")
    energies = 2.0 ** np.random.default_rng(1).integers(10, 16, 200).astype(float)
    batch = next(simulate(geo, "pi+", energies, seed=2, batch_size=200))
    data = write_showers(tmp_path / "pions.h5", batch.incident, batch.showers, geo)
    tiny = {k: dict(v, epochs=1) for k, v in TINY.items()}
    train_caloflow(data, tmp_path / "run", config=tiny, progress=False, log=lambda _: None)
    gen = CaloFlowGenerator.load(tmp_path / "run", "student")
    showers = gen.generate(np.full(10, 2.0**14), seed=0)
    assert showers.shape == (10, geo.n_voxels)
    assert gen.flow1.features == len(geo.relevant_layers)
    assert ((showers == 0) | (showers >= gen.preprocessing.noise_cut_mev)).all()


def test_teacher_bin_scale_defaults_to_one_over_sqrt_width() -> None:
    from hepflows.calo.caloflow import build_student, build_teacher, load_config

    geo = get_geometry("calogan")
    cfg = load_config("calogan", "cpu", None)
    teacher = build_teacher(geo, cfg["teacher"], 0)
    width = cfg["teacher"]["hidden"][-1]
    assert teacher.config["bin_scale"] == pytest.approx(width**-0.5)
    student = build_student(teacher, cfg["student"], 0)
    assert student.config["bin_scale"] == teacher.config["bin_scale"]  # same spline semantics
    fixed = build_teacher(geo, {**cfg["teacher"], "bin_scale": 1.0}, 0)
    assert fixed.config["bin_scale"] == 1.0


def test_student_init_teacher_starts_from_the_teacher_s_conditioners() -> None:
    from hepflows.calo.caloflow import build_student, build_teacher, load_config

    geo = get_geometry("calogan")
    cfg = load_config("calogan", "cpu", None)
    teacher_cfg = {**cfg["teacher"], "blocks": 2, "hidden": [32]}
    teacher = build_teacher(geo, teacher_cfg, 0)
    student_cfg = {**cfg["student"], "hidden": [32], "init": "teacher"}
    student = build_student(teacher, student_cfg, 0)
    layers = zip(student.layers, teacher.layers, strict=True)
    pairs = [(s.conditioner, t.conditioner) for s, t in layers if hasattr(s, "conditioner")]
    assert len(pairs) == 2
    for s, t in pairs:
        theirs = t.state_dict()
        for name, mine in s.state_dict().items():
            assert torch.equal(mine, theirs[name]), name
    identity = build_student(teacher, {**student_cfg, "init": "identity"}, 0)
    assert not identity.layers[-1].conditioner.output_layer.weight.any()  # zero-initialised
    with pytest.raises(ValueError, match=r"needs the teacher's hidden widths \[32\]"):
        build_student(teacher, {**student_cfg, "hidden": [16]}, 0)
    with pytest.raises(ValueError, match="'teacher' or 'identity'"):
        build_student(teacher, {**student_cfg, "init": "random"}, 0)


def test_fresh_noise_redraws_only_the_noise_of_each_epoch(trained: tuple[Path, Path]) -> None:
    data, run = trained
    info = RunInfo.load(run)
    e_inc, showers, geo = read_showers(data)
    shared = _training_inputs(info, geo, e_inc, showers, ("teacher",))["flow2"]
    epoch_inputs = _fresh_noise_inputs(info, geo, e_inc, showers, "flow2", shared)
    assert epoch_inputs(0) is shared  # epoch 0 trains on the draw the validation rows keep
    x1, c1 = epoch_inputs(1)
    x1_again, _ = epoch_inputs(1)
    x2, _ = epoch_inputs(2)
    np.testing.assert_array_equal(x1, x1_again)  # seeded by the epoch: resumes repeat it
    assert not np.allclose(x1, shared[0]) and not np.allclose(x1, x2)
    np.testing.assert_array_equal(c1[:, 0], shared[1][:, 0])  # log E_inc does not move
    # what moved is the noise alone: each draw is the showers plus U[0, noise x 100 GeV) per voxel
    noise_mev = info.preprocessing.noise * 100e3
    for draw in (0, 1):
        added = _noisy_showers(info, showers, draw) - showers
        assert added.min() >= 0.0 and added.max() < noise_mev
        assert abs(added.mean() / (noise_mev / 2) - 1) < 0.01


def test_fresh_noise_changes_training_from_the_second_epoch_only(
    trained: tuple[Path, Path], tmp_path: Path
) -> None:
    data, _ = trained
    histories = {}
    for fresh in (False, True):
        config = json.loads(json.dumps(TINY))
        config["teacher"].update(epochs=2, fresh_noise=fresh)
        run = tmp_path / f"fresh-{fresh}"
        train_caloflow(
            data, run, stage="teacher", config=config, progress=False, log=lambda _: None
        )
        histories[fresh] = json.loads((run / "teacher" / "training.json").read_text())["history"]
    fixed, fresh_h = histories[False], histories[True]
    assert fixed[0]["train_loss"] == fresh_h[0]["train_loss"]  # epoch 1: the shared draw
    assert fixed[0]["val_loss"] == fresh_h[0]["val_loss"]
    assert fixed[1]["train_loss"] != fresh_h[1]["train_loss"]  # epoch 2: its own draw
    with pytest.raises(InputError, match="fresh_noise must be true or false"):
        train_caloflow(
            data,
            tmp_path / "bad",
            stage="teacher",
            config={"teacher": {"fresh_noise": "yes"}},
            progress=False,
            log=lambda _: None,
        )
    assert not (tmp_path / "bad").exists()


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@needs_cuda
@pytest.mark.parametrize(
    ("model", "precision", "compiled", "rtol"),
    [
        ("teacher", "float32", False, 1e-3),
        ("student", "float32", False, 1e-3),
        ("student", "bfloat16", True, 3e-2),
    ],
)
def test_generation_on_cuda_matches_the_cpu(
    trained: tuple[Path, Path], model: str, precision: str, compiled: bool, rtol: float
) -> None:
    """The latent noise is drawn on the CPU, so a seed gives the same showers on a GPU, to the
    rounding of the devices' products (bfloat16 products round to ~3 digits)."""
    _, run = trained
    e = np.array([2e3, 5e4, 9e4] * 10)
    showers = {}
    for device in ("cpu", "cuda"):
        gen = CaloFlowGenerator.load(
            run, model, device, precision=precision, compile=compiled, max_redraws=0
        )
        assert gen.flow2._anchor.device.type == device
        showers[device] = gen.generate(e, batch_size=16, seed=3)
    a, b = showers["cpu"], showers["cuda"]
    assert np.allclose(a.sum(1), b.sum(1), rtol=rtol)
    # the generation cut may flip a voxel that sits on it
    assert np.isclose(a, b, rtol=rtol, atol=1e-3).mean() > 0.99


@needs_cuda
def test_training_on_cuda_follows_the_cpu(trained: tuple[Path, Path], tmp_path: Path) -> None:
    """Initial weights and batch order come from CPU generators, so flow I and the teacher train
    along the same path on a GPU (to rounding); the student's latent pass draws its noise on the
    device, so only its KL's size is compared. The GPU's checkpoints load on the CPU."""
    data, cpu_run = trained
    gpu_run = tmp_path / "gpu"
    train_caloflow(
        data, gpu_run, stage="all", config=TINY, device="cuda", progress=False, log=lambda _: None
    )
    # 1e-3: Adam's first steps move each weight by ~lr x sign(gradient), so rounding can flip a
    # few near-zero gradients' steps between the devices
    for stage, rtol in (("flow1", 1e-3), ("teacher", 1e-3), ("student", 0.5)):
        losses = [
            json.loads((run / stage / "training.json").read_text())["history"][-1]["val_loss"]
            for run in (cpu_run, gpu_run)
        ]
        assert np.isclose(*losses, rtol=rtol), (stage, losses)
    showers = CaloFlowGenerator.load(gpu_run, "student").generate(np.full(20, 5e4), seed=1)
    assert np.isfinite(showers).all() and (showers.sum(1) > 0).all()


def test_bfloat16_where_it_is_slow_is_noted(
    trained: tuple[Path, Path], tmp_path: Path, monkeypatch, capsys
) -> None:
    """On a device whose bfloat16 products are slower than float32 (a CPU without AVX-512 BF16),
    loading says so: a RuntimeWarning from Python, one note line from the command line."""
    import hepflows.calo.caloflow as caloflow

    _, run = trained
    monkeypatch.setattr(caloflow, "matmul_speedup", lambda dtype, device: 0.02)
    with pytest.warns(RuntimeWarning, match="run 50x slower than float32 on this cpu"):
        CaloFlowGenerator.load(run, "student", precision="bfloat16")
    args = ["calo", "generate", str(run), "-n", "5", "--quiet", "--precision", "bfloat16"]
    assert main([*args, "--out", str(tmp_path / "a.h5")]) == 0
    err = capsys.readouterr().err
    assert err.count("note: bfloat16 matrix products run 50x slower") == 1
    monkeypatch.setattr(caloflow, "matmul_speedup", lambda dtype, device: 3.0)
    assert main([*args, "--out", str(tmp_path / "b.h5")]) == 0
    assert "note:" not in capsys.readouterr().err


def test_energies_outside_the_training_range_are_noted(
    trained: tuple[Path, Path], tmp_path: Path, capsys
) -> None:
    """The flows extrapolate beyond the run's energy range (CaloGAN: 1-100 GeV): Python gets a
    RuntimeWarning counting the energies outside, the command line one note line; the edges of
    the range (to rounding) and energies inside it pass silently."""
    import warnings

    _, run = trained
    gen = CaloFlowGenerator.load(run, "student")
    with pytest.warns(RuntimeWarning, match="2 of 4 incident energies lie outside the run's"):
        gen.generate(np.array([5e2, 5e4, 5e4, 2e6]))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        gen.generate(np.array([1e3 * (1 - 1e-8), 5e4, 1e5 * (1 + 1e-8)]))
    args = ["calo", "generate", str(run), "-n", "5", "--quiet"]
    assert main([*args, "--energy", "fixed:500", "--out", str(tmp_path / "a.h5")]) == 0
    err = capsys.readouterr().err
    assert err.count("note: 5 of 5 incident energies lie outside the run's energy range 1-100") == 1
    assert read_showers(tmp_path / "a.h5")[1].shape == (5, 504)
    assert main([*args, "--energy", "fixed:50", "--out", str(tmp_path / "b.h5")]) == 0
    assert "note:" not in capsys.readouterr().err
