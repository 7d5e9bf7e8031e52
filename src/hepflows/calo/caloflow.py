"""CaloFlow: p(shower | E_inc) as flow I (layer energies) x flow II (normalised voxels).

Method: ``caloflow-method.md`` (CaloFlow, arXiv:2106.05285; CaloFlow II, arXiv:2110.11377).

* Flow I: a MAF with rational-quadratic splines on logit u-space layer energies, context the
  scaled log incident energy (:mod:`hepflows.calo.preprocess`).
* Flow II teacher: a MAF on the layer-normalised voxel logits, context log E_inc and the log layer
  energies, permutations that stay within each calorimeter layer (alternately reversing and
  shuffling the voxels of every layer; optionally reversing the layers' order in every other
  block, :func:`layer_permutations`), trained by likelihood.
* Flow II student: an IAF with the teacher's blocks and permutations, distilled from the frozen
  teacher (:mod:`hepflows.calo.distill`); the epoch with the lowest KL(student || teacher) is kept.

A run folder holds ``caloflow.json`` (geometry, fitted preprocessing, the configuration used),
one sub-folder per stage (``flow1/``, ``teacher/``, ``student/``; each a :mod:`hepflows.train`
run with checkpoints, ``best.safetensors`` and ``model.json``) and ``training.png``.

Configurations: one JSON file per geometry in ``hepflows/calo/configs/`` with CPU-sized defaults
and, under ``"gpu"``, the published (larger) settings; ``preset="gpu"`` applies them and a user
JSON file can override any key.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from hepflows.calo.distill import Distillation, StudentTeacherKL, check_compatible
from hepflows.calo.geometry import Geometry, get_geometry
from hepflows.calo.preprocess import (
    Preprocessing,
    add_noise,
    check_relevant_layout,
    checked_noise_cut,
    energy_context,
    fit_preprocessing,
    flow1_inputs,
    flow2_context,
    flow2_to_voxels,
    inverse_logit,
    noise_only_layers,
    u_to_layer_energies,
    voxels_to_flow2,
)
from hepflows.flows.conditioners import matmul_speedup, set_matmul_dtype
from hepflows.flows.fused import FusedSplinesUnavailable, enable_fused_splines
from hepflows.flows.models import IAF, MAF, Flow
from hepflows.io import InputError, read_json, write_json
from hepflows.timing import best_seconds
from hepflows.train import STATE_FILE, TrainConfig, Trainer, load_flow

CONFIG_DIR = Path(__file__).parent / "configs"
RUN_FILE = "caloflow.json"
STAGES = ("flow1", "teacher", "student")
#: Flow II's MADE degree layout where a configuration names none (docs/caloflow.md: better
#: low-level AUC than "spread" on CaloGAN).
FLOW2_DEGREES = "prefix"
FLOW2_LAYER_ORDERS = ("depth", "alternate")
RUN_FORMAT = "hepflows-caloflow"


# -- configuration -------------------------------------------------------------------------------
def _merge(base: dict[str, Any], override: dict[str, Any], where: str) -> dict[str, Any]:
    """Deep-merge ``override`` into a copy of ``base``; unknown keys are an error."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if key.startswith("_"):
            continue
        if key not in out:
            raise InputError(f"{where}: unknown setting {key!r} (known: {sorted(out)})")
        if isinstance(out[key], dict):
            if not isinstance(value, dict):
                raise InputError(f"{where}: {key!r} must be an object")
            out[key] = _merge(out[key], value, f"{where}: {key}")
        else:
            out[key] = value
    return out


def load_config(
    geometry: str, preset: str = "cpu", override: str | Path | dict[str, Any] | None = None
) -> dict[str, Any]:
    """The CaloFlow settings for ``geometry``: the packaged defaults, the ``gpu`` preset's
    changes if asked for, then ``override`` (a JSON file or a dict with the same keys)."""
    path = CONFIG_DIR / f"{geometry}.json"
    if not path.is_file():
        known = sorted(p.stem for p in CONFIG_DIR.glob("*.json"))
        raise InputError(f"no CaloFlow configuration for geometry {geometry!r} (known: {known})")
    base = json.loads(path.read_text())
    gpu = base.pop("gpu", {})
    if preset == "gpu":
        base = _merge(base, gpu, f"{path} (gpu preset)")
    elif preset != "cpu":
        raise InputError(f"unknown preset {preset!r}; expected 'cpu' or 'gpu'")
    if override is not None:
        if not isinstance(override, dict):
            override = read_json(Path(override), "CaloFlow configuration")
            if not isinstance(override, dict):
                raise InputError(f"{override}: a JSON object is expected")
        base = _merge(base, override, "configuration override")
    return base


def layer_permutations(
    geometry: Geometry, blocks: int, seed: int, layer_order: str = "depth"
) -> list[list[int]]:
    """The ``blocks - 1`` permutations between flow II's blocks.

    Within every calorimeter layer they alternately reverse the voxel order and apply a fixed
    random shuffle (seeded), as the spec's permutations do; voxels never leave their layer's
    group. ``layer_order`` says in which order the blocks see the layers:

    - ``"depth"``: every block sees them in depth order (the published layout, meant for MADE
      layers at least as wide as the voxel count);
    - ``"alternate"``: odd blocks see them in reverse depth order. A ``prefix`` MADE narrower than
      the voxel count conditions every voxel beyond its width on the first ``width`` inputs
      only, so in depth order the deep layers' voxels never condition on each other; reversing
      the layers in every other block gives each layer's voxels an autoregressive pass.
    """
    if layer_order not in FLOW2_LAYER_ORDERS:
        raise ValueError(
            f"layer_order must be one of {', '.join(FLOW2_LAYER_ORDERS)}; got {layer_order!r}"
        )
    gen = np.random.default_rng(seed)
    layers = [np.arange(layer.start, layer.stop) for layer in geometry.relevant_layers]
    arrangement = np.concatenate(layers)  # original voxel index at each position
    perms = []
    for b in range(1, blocks):
        layers = [part[::-1] if b % 2 == 1 else part[gen.permutation(len(part))] for part in layers]
        reverse = layer_order == "alternate" and b % 2 == 1
        wanted = np.concatenate(layers[::-1] if reverse else layers)
        perms.append(np.argsort(arrangement)[wanted].tolist())
        arrangement = wanted
    return perms


def build_flow1(n_layers: int, cfg: dict[str, Any], seed: int) -> MAF:
    """Flow I: a spline MAF over the L u-space logits given the energy context."""
    return MAF(
        n_layers,
        1,
        blocks=cfg["blocks"],
        hidden=cfg["hidden"],
        bins=cfg["bins"],
        bound=cfg["bound"],
        permutation="random" if n_layers > 1 else "none",
        seed=seed,
    )


def teacher_bin_scale(cfg: dict[str, Any]) -> float:
    """The teacher's spline bin scale: the configured value, or 1/sqrt(last hidden width) when it
    is null (as nflows scales its autoregressive splines). With the unscaled softmax (1.0) a third
    of the CaloGAN teacher's splines collapsed onto one extreme bin within a few epochs, and its
    samples put most of a layer's energy into stray voxels."""
    value, hidden = cfg.get("bin_scale"), cfg["hidden"]
    if value is None and not (isinstance(hidden, (list, tuple)) and hidden):
        raise ValueError(f"hidden must list the hidden widths, got {hidden!r}")
    return 1.0 / math.sqrt(hidden[-1]) if value is None else float(value)


def build_teacher(geometry: Geometry, cfg: dict[str, Any], seed: int) -> MAF:
    """Flow II teacher: a spline MAF over the voxel logits with layer-respecting permutations."""
    blocks = cfg["blocks"]
    return MAF(
        geometry.n_voxels,
        1 + len(geometry.relevant_layers),
        blocks=blocks,
        hidden=cfg["hidden"],
        bins=cfg["bins"],
        bound=cfg["bound"],
        permutation=layer_permutations(geometry, blocks, seed, cfg.get("layer_order", "depth")),
        seed=seed,
        dropout=cfg.get("dropout", 0.0),
        bin_scale=teacher_bin_scale(cfg),
        degrees=cfg.get("degrees", FLOW2_DEGREES),
    )


def build_student(teacher: MAF, cfg: dict[str, Any], seed: int) -> IAF:
    """Flow II student: an IAF with the teacher's blocks, transform and permutations.

    ``cfg["init"]``: ``"teacher"`` starts it with the teacher's MADE weights (needs the teacher's
    hidden widths and degrees): KL(student || teacher) on CaloGAN gamma after 2 epochs 28 nats
    against 219 from the identity (docs/caloflow.md). ``"identity"`` (the default of
    configurations without the key) zero-initialises the output layers: a randomly initialised
    IAF sends some latent points far outside the data's logit range, where the teacher's loss
    overflows and distillation diverged in its first epoch on CaloGAN e+.
    """
    init = cfg.get("init", "identity")
    if init not in ("teacher", "identity"):
        raise ValueError(f"student init must be 'teacher' or 'identity', got {init!r}")
    t = teacher.config
    if init == "teacher" and (
        list(cfg["hidden"]) != list(t["hidden"])
        or cfg.get("degrees", FLOW2_DEGREES) != t.get("degrees", FLOW2_DEGREES)
    ):
        raise ValueError(
            f"student init 'teacher' needs the teacher's hidden widths {t['hidden']} and degrees "
            f"{t.get('degrees', FLOW2_DEGREES)!r}; got {cfg['hidden']} and "
            f"{cfg.get('degrees', FLOW2_DEGREES)!r} (or set init 'identity')"
        )
    student = IAF(
        t["features"],
        t["context"],
        blocks=t["blocks"],
        hidden=cfg["hidden"],
        transform=t["transform"],
        bins=t["bins"],
        bound=t["bound"],
        permutation=t["permutation"],
        seed=seed + 1,
        zero_init=True,
        bin_scale=t.get("bin_scale", 1.0),
        degrees=cfg.get("degrees", FLOW2_DEGREES),
    )
    if init == "teacher":
        student.copy_conditioners(teacher)
    return student


# -- run folder ----------------------------------------------------------------------------------
@dataclasses.dataclass
class RunInfo:
    """The contents of ``caloflow.json``."""

    geometry: str
    preprocessing: Preprocessing
    config: dict[str, Any]
    seed: int
    training_file: str

    def save(self, folder: Path) -> None:
        write_json(
            folder / RUN_FILE,
            {
                "format": RUN_FORMAT,
                "geometry": self.geometry,
                "preprocessing": self.preprocessing.to_json(),
                "config": self.config,
                "seed": self.seed,
                "training_file": self.training_file,
            },
        )

    @classmethod
    def load(cls, folder: Path) -> RunInfo:
        data = read_json(folder / RUN_FILE, "CaloFlow run description")
        if not isinstance(data, dict) or data.get("format") != RUN_FORMAT:
            raise InputError(f"{folder / RUN_FILE} is not a hepflows CaloFlow run description")
        try:
            return cls(
                geometry=str(data["geometry"]),
                preprocessing=Preprocessing.from_json(data["preprocessing"]),
                config=dict(data["config"]),
                seed=int(data["seed"]),
                training_file=str(data.get("training_file", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{folder / RUN_FILE}: invalid run description ({exc})") from None


def _train_config(cfg: dict[str, Any], seed: int, device: str, progress: bool) -> TrainConfig:
    try:
        return TrainConfig(
            epochs=int(cfg["epochs"]),
            batch_size=int(cfg["batch_size"]),
            lr=float(cfg["lr"]),
            schedule=str(cfg.get("schedule", "cosine")),
            val_fraction=0.1,
            patience=None,
            clip_grad=float(cfg.get("clip_grad", 5.0)),
            seed=seed,
            device=device,
            progress=progress,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"invalid training settings ({exc})") from None


def plot_run(folder: Path) -> Path | None:
    """Training curves of every stage trained so far, side by side, as ``training.png``."""
    from hepflows.report.plots import plot_training_stages

    panels = []
    labels = {
        "flow1": ("flow I (layer energies)", "training NLL", "validation NLL", "NLL [nats]"),
        "teacher": ("flow II teacher (MAF)", "training NLL", "validation NLL", "NLL [nats]"),
        "student": (
            "flow II student (IAF)",
            "distillation loss",
            "KL(student || teacher)",
            "loss / KL [nats]",
        ),
    }
    for stage in STAGES:
        state_file = folder / stage / STATE_FILE
        if state_file.is_file():
            history = read_json(state_file, "training state").get("history", [])
            if history:
                title, train_label, val_label, ylabel = labels[stage]
                panels.append((title, history, train_label, val_label, ylabel))
    if not panels:
        return None
    return plot_training_stages(panels, folder / "training.png")


@dataclasses.dataclass
class StageResult:
    stage: str
    best_epoch: int
    best_val_loss: float
    epochs: int
    seconds: float


def train_caloflow(
    data: str | Path,
    out_dir: str | Path,
    geometry: str | None = None,
    stage: str = "all",
    epochs: int | None = None,
    device: str = "cpu",
    resume: bool = False,
    seed: int = 0,
    preset: str = "cpu",
    config: str | Path | dict[str, Any] | None = None,
    max_showers: int | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> list[StageResult]:
    """Train flow I, the flow II teacher and/or the student on a shower file (see module doc).

    ``stage``: ``flow1``, ``teacher`` (alias ``flow2``), ``student`` or ``all``. ``epochs``
    overrides the configured epochs of every stage trained now. The student needs a trained
    teacher in the same folder. A later call on the same folder reuses its preprocessing and
    configuration (the geometry must match); ``resume`` continues interrupted stages.
    """
    from hepflows.calo.formats import read_showers

    stages = _stages(stage)
    out = Path(out_dir)
    e_inc, showers, geo = read_showers(data, geometry, max_showers=max_showers)
    check_relevant_layout(geo)
    if len(e_inc) < 20:
        raise InputError(f"{data}: {len(e_inc)} showers are too few to train on")
    if (out / RUN_FILE).is_file():
        info = RunInfo.load(out)
        if info.geometry != geo.name:
            raise InputError(
                f"{out} holds a run for geometry {info.geometry}, the data are {geo.name}"
            )
        if config is not None or preset != "cpu":
            log(f"note: {out} exists; its saved configuration is used, --config/--preset ignored")
    else:
        cfg = load_config(geo.name, preset, config)
        check_settings(cfg, geo, seed)  # refused before a run folder is written
        pre_cfg = cfg.get("preprocessing", {})
        pre = fit_preprocessing(
            geo,
            e_inc,
            showers,
            u_scale=pre_cfg.get("u_scale"),
            noise_cut_mev=pre_cfg.get("noise_cut_mev"),
            noise_mev=pre_cfg.get("noise_mev"),
            support_clip=bool(pre_cfg.get("support_clip", True)),
        )
        info = RunInfo(geo.name, pre, cfg, seed, str(data))
        out.mkdir(parents=True, exist_ok=True)
        info.save(out)
    inputs = _training_inputs(info, geo, e_inc, showers, stages)
    fresh = {name: _fresh_noise(info.config[name], name) for name in stages}
    if not any(fresh.values()):
        del showers  # the shared noise draw is all any stage needs
    results = []
    for name in stages:
        cfg = dict(info.config[name])
        if epochs is not None:
            cfg["epochs"] = epochs
        flow = "flow1" if name == "flow1" else "flow2"
        epoch_data = None
        if fresh[name]:
            epoch_data = _fresh_noise_inputs(info, geo, e_inc, showers, flow, inputs[flow])
        t0 = time.perf_counter()
        log(f"== {name}: {_describe(cfg)}")
        try:
            trainer = _stage_trainer(name, info, geo, cfg, out, device, progress)
        except InputError:  # already says what and where (e.g. a missing or corrupt teacher)
            raise
        except (KeyError, TypeError, ValueError) as exc:  # a model setting out of range
            raise InputError(f"invalid {name} settings in the configuration ({exc})") from None
        x, c = inputs[flow]
        result = trainer.fit(
            x,
            c,
            resume=resume and (out / name / "checkpoint.safetensors").is_file(),
            epoch_data=epoch_data,
        )
        plot_run(out)
        results.append(
            StageResult(
                name,
                result.best_epoch,
                result.best_val_loss,
                len(result.history),
                time.perf_counter() - t0,
            )
        )
        val_name = "KL(student||teacher)" if name == "student" else "validation NLL"
        log(
            f"   best epoch {result.best_epoch}: {val_name} {result.best_val_loss:.4f} nats "
            f"({time.perf_counter() - t0:.0f} s)"
        )
    return results


def check_settings(cfg: dict[str, Any], geo: Geometry, seed: int = 0) -> None:
    """Raise :class:`InputError` for any stage setting that cannot train, before anything does.

    Every stage's training settings are checked and its model is built once (~1-2 s for
    CaloGAN), so that a bad teacher or student value is refused up front rather than after
    flow I (and the teacher) have trained for minutes or hours.
    """
    teacher = None
    for name in STAGES:
        stage = cfg[name]
        _fresh_noise(stage, name)
        try:
            _train_config(stage, seed, "cpu", False).validate()
            if name == "flow1":
                build_flow1(len(geo.relevant_layers), stage, seed)
            elif name == "teacher":
                teacher = build_teacher(geo, stage, seed)
            else:
                assert teacher is not None
                check_compatible(teacher, build_student(teacher, stage, seed))
                _distillation(teacher, stage)
        except (InputError, KeyError, TypeError, ValueError) as exc:  # a setting out of range
            raise InputError(f"invalid {name} settings in the configuration ({exc})") from None


def _distillation(teacher: MAF, cfg: dict[str, Any]) -> Distillation:
    """The student's objective from its settings (``beta``, ``guided``)."""
    guided = cfg.get("guided", True)
    if not isinstance(guided, bool):
        raise ValueError(f"guided must be true or false, got {guided!r}")
    return Distillation(teacher, beta=float(cfg.get("beta", 0.5)), guided=guided)


def _stages(stage: str) -> tuple[str, ...]:
    if stage == "all":
        return STAGES
    if stage == "flow2":
        return ("teacher",)
    if stage in STAGES:
        return (stage,)
    raise InputError(f"unknown stage {stage!r}; expected flow1, flow2/teacher, student or all")


def _describe(cfg: dict[str, Any]) -> str:
    noise = ", fresh noise every epoch" if cfg.get("fresh_noise") else ""
    epochs = f"{cfg['epochs']} epoch{'' if cfg['epochs'] == 1 else 's'}"
    return f"hidden {cfg['hidden']}, {epochs}, batch {cfg['batch_size']}, lr {cfg['lr']}{noise}"


def _stage_trainer(
    name: str,
    info: RunInfo,
    geo: Geometry,
    cfg: dict[str, Any],
    out: Path,
    device: str,
    progress: bool,
) -> Trainer:
    train_cfg = _train_config(cfg, info.seed, device, progress)
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    callbacks = [lambda trainer, record: plot_run(out)]
    if name == "flow1":
        model: Flow = build_flow1(len(geo.relevant_layers), cfg, info.seed)
        return Trainer(model, train_cfg, folder, callbacks)
    if name == "teacher":
        return Trainer(build_teacher(geo, cfg, info.seed), train_cfg, folder, callbacks)
    teacher_dir = out / "teacher"
    if not (teacher_dir / "best.safetensors").is_file():
        raise InputError(f"the student needs a trained teacher; none in {teacher_dir}")
    teacher = load_flow(teacher_dir, device=device)
    if not isinstance(teacher, MAF):
        raise InputError(f"{teacher_dir} does not hold a MAF teacher")
    student = build_student(teacher, cfg, info.seed)
    check_compatible(teacher, student)
    return Trainer(
        student,
        train_cfg,
        folder,
        callbacks,
        objective=_distillation(teacher, cfg),
        val_objective=StudentTeacherKL(teacher),
    )


def _training_inputs(
    info: RunInfo, geo: Geometry, e_inc: np.ndarray, showers: np.ndarray, stages: tuple[str, ...]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(inputs, context) of flow I and/or flow II, from one draw of the noisy showers that every
    stage shares (the teacher and the student see the same flow II inputs)."""
    noisy = _noisy_showers(info, showers, draw=0)
    out = {}
    if "flow1" in stages:
        out["flow1"] = _flow_inputs(info.preprocessing, geo, e_inc, noisy, "flow1")
    if "teacher" in stages or "student" in stages:
        out["flow2"] = _flow_inputs(info.preprocessing, geo, e_inc, noisy, "flow2")
    return out


def _noisy_showers(info: RunInfo, showers: np.ndarray, draw: int) -> np.ndarray:
    """The showers (MeV) plus noise draw ``draw``: 0 is the run's shared draw, ``e`` >= 1 the
    fresh draw of epoch ``e`` (seeded by the run seed and ``e`` alone, so resumes repeat it)."""
    key = [info.seed, 2] if draw == 0 else [info.seed, 2, draw]
    rng = np.random.default_rng(np.random.SeedSequence(key))
    return add_noise(info.preprocessing, showers, rng)


def _flow_inputs(
    pre: Preprocessing, geo: Geometry, e_inc: np.ndarray, noisy: np.ndarray, flow: str
) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, context) of ``flow`` (``flow1`` or ``flow2``) from noisy showers (MeV)."""
    layer = geo.layer_energies(noisy)
    if flow == "flow1":
        return flow1_inputs(pre, e_inc, layer)
    x = voxels_to_flow2(pre, geo, noisy)
    return x, flow2_context(pre, e_inc, layer).astype(np.float32)


def _fresh_noise(cfg: dict[str, Any], stage: str) -> bool:
    """A stage's ``fresh_noise`` setting (absent in runs made before it existed: False)."""
    value = cfg.get("fresh_noise", False)
    if not isinstance(value, bool):
        raise InputError(f"{stage}: fresh_noise must be true or false, got {value!r}")
    return value


def _fresh_noise_inputs(
    info: RunInfo,
    geo: Geometry,
    e_inc: np.ndarray,
    showers: np.ndarray,
    flow: str,
    shared: tuple[np.ndarray, np.ndarray],
) -> Callable[[int], tuple[np.ndarray, np.ndarray]]:
    """``epoch -> (inputs, context)`` for :meth:`Trainer.fit`'s ``epoch_data``: epoch 0 trains on
    the shared draw, every later epoch on its own noise draw (validation keeps the shared one).

    Why: with one draw the CaloGAN e+ teacher's training NLL ended 10.9 nats below its
    validation NLL (session 17); a flow can learn a fixed draw of the noise by heart, but not
    a new one every epoch. Costs about 3 s per epoch on 100k CaloGAN showers (session 18).
    """

    def epoch_inputs(epoch: int) -> tuple[np.ndarray, np.ndarray]:
        if epoch == 0:
            return shared
        noisy = _noisy_showers(info, showers, draw=epoch)
        return _flow_inputs(info.preprocessing, geo, e_inc, noisy, flow)

    return epoch_inputs


# -- generation ----------------------------------------------------------------------------------
#: Default of :meth:`CaloFlowGenerator.load`'s ``max_redraws``: with 5.6% of showers drawn again
#: (CaloGAN e+ student) ten passes leave none noise only (session 16).
MAX_REDRAWS = 10
#: ``precision`` of :meth:`CaloFlowGenerator.load` -> dtype of flow II's matrix products.
MATMUL_DTYPES: dict[str, torch.dtype | None] = {"float32": None, "bfloat16": torch.bfloat16}


class CaloFlowGenerator:
    """A trained CaloFlow: incident energies (MeV) -> showers (MeV) in the geometry's voxel order.

    >>> gen = CaloFlowGenerator.load("runs/calogan-e+", model="student")  # doctest: +SKIP
    >>> showers = gen.generate(np.full(1000, 50e3))                      # doctest: +SKIP
    """

    def __init__(
        self, info: RunInfo, flow1: Flow, flow2: Flow, model: str, max_redraws: int = MAX_REDRAWS
    ) -> None:
        if max_redraws < 0:
            raise InputError(f"max_redraws must be >= 0, got {max_redraws}")
        self.info, self.flow1, self.flow2, self.model = info, flow1, flow2, model
        self.geometry = get_geometry(info.geometry)
        self.preprocessing = info.preprocessing
        #: Times a flow II sample that leaves a layer noise only is drawn again (0: never).
        self.max_redraws = max_redraws
        #: Since loading: showers whose flow II sample was drawn again, and those still noise
        #: only in a layer after ``max_redraws`` (their layer's energy spreads over its voxels).
        self.redrawn = 0
        self.noise_only_left = 0

    @classmethod
    def load(
        cls,
        run_dir: str | Path,
        model: str = "student",
        device: str = "cpu",
        precision: str = "float32",
        noise_cut_mev: float | None = None,
        compile: bool = False,
        max_redraws: int = MAX_REDRAWS,
    ) -> CaloFlowGenerator:
        """Load flow I and flow II (``teacher`` or ``student``) from a run folder.

        ``noise_cut_mev`` replaces the run's generation cut (generated voxels below it are set to
        0), e.g. to apply a detector's readout threshold.

        ``max_redraws``: a shower whose flow II sample leaves a layer that holds energy with no
        voxel above the cut (:func:`~hepflows.calo.preprocess.noise_only_layers`) gets a new
        flow II sample, up to this many times. Why: renormalising such a layer spreads its
        energy evenly over every voxel; the CaloGAN e+ student did that to the back layer in 5.6%
        of its showers (72 voxels lit where the data have 1-3), and after redraws the layer's
        occupancy matches the data (docs/caloflow.md, session 16). 0 keeps every first draw.

        ``precision="bfloat16"`` runs flow II's MADE matrix products in bfloat16 (splines and
        everything else stay float32): several times faster products on CPUs with AVX-512 BF16,
        at ~3 significant digits in the spline parameters. The teacher's stepwise sampling does not
        use it. Where the device has no native bfloat16 (a CPU without AVX-512 BF16 or AMX runs
        such products ~50x slower) a ``RuntimeWarning`` says so
        (:func:`~hepflows.flows.conditioners.matmul_speedup`).

        ``compile=True`` evaluates both flows' splines through one fused, ``torch.compile``-d loop
        (:mod:`hepflows.flows.fused`): the same showers to float32 rounding; the CaloGAN student
        generates 1.7x faster at batch 10,000 on two cores, 2.1x with bfloat16 (docs/caloflow.md).
        It compiles here, on two showers (seconds; needs a C++ compiler on a CPU), so that the
        first batch is not slow.
        """
        folder = Path(run_dir)
        if model not in ("teacher", "student"):
            raise InputError(f"unknown model {model!r}; expected teacher or student")
        if precision not in MATMUL_DTYPES:
            known = " or ".join(MATMUL_DTYPES)
            raise InputError(f"unknown precision {precision!r}; expected {known}")
        info = RunInfo.load(folder)
        if noise_cut_mev is not None:
            cut = checked_noise_cut(noise_cut_mev)
            pre = dataclasses.replace(info.preprocessing, noise_cut_mev=cut)
            info = dataclasses.replace(info, preprocessing=pre)
        for stage in ("flow1", model):
            if not (folder / stage / "best.safetensors").is_file():
                raise InputError(f"{folder}: no trained {stage} (train it with --stage {stage})")
        flow1 = load_flow(folder / "flow1", device=device)
        flow2 = load_flow(folder / model, device=device)
        set_matmul_dtype(flow2, MATMUL_DTYPES[precision])
        if precision != "float32":
            speedup = matmul_speedup(MATMUL_DTYPES[precision], device)
            # 0.5, not 1: on a GPU these small products are launch bound, ~1x either way, and
            # timing noise must not warn there; emulated bfloat16 reads ~0.02
            if speedup < 0.5:
                warnings.warn(
                    f"{precision} matrix products run {1 / speedup:.0f}x slower than float32 on "
                    f"this {device} (no native {precision}): precision float32 is faster here",
                    RuntimeWarning,
                    stacklevel=2,
                )
        generator = cls(info, flow1, flow2, model, max_redraws)
        if compile:
            try:
                enable_fused_splines(flow1)
                enable_fused_splines(flow2)
            except FusedSplinesUnavailable as exc:
                raise InputError(f"cannot compile the splines: {exc}") from exc
            middle = math.sqrt(math.prod(info.preprocessing.energy_range_mev))
            generator.generate(np.full(2, middle))  # compile now, not in the first batch
        return generator

    @staticmethod
    def _sample(flow: Flow, context: np.ndarray, generator: torch.Generator) -> torch.Tensor:
        """One draw per context row: latent noise from ``generator`` (on the CPU, so a seed
        gives the same showers on any device), pushed through ``flow``; on the flow's device."""
        anchor = flow._anchor
        c = torch.as_tensor(context, dtype=anchor.dtype, device=anchor.device)
        z = torch.randn(len(context), flow.features, generator=generator, dtype=anchor.dtype)
        return flow.to_data(z.to(anchor.device), c)[0]

    def _batch(self, e: np.ndarray, generator: torch.Generator) -> np.ndarray:
        """Showers for incident energies ``e``; flow II's output stays on the flow's device for
        the redraws and the post-processing, and only the float32 showers come back."""
        pre, geo = self.preprocessing, self.geometry
        u_logit = self._sample(self.flow1, energy_context(pre, e), generator).cpu().numpy()
        layers = u_to_layer_energies(pre, e, inverse_logit(u_logit))
        context = flow2_context(pre, e, layers)
        x = self._sample(self.flow2, context, generator)
        energies = torch.as_tensor(layers, device=x.device)
        again = (
            torch.nonzero(noise_only_layers(pre, geo, x, energies)).flatten().cpu()
            if self.max_redraws
            else torch.empty(0, dtype=torch.long)
        )
        self.redrawn += len(again)
        for _ in range(self.max_redraws):  # each pass draws only the showers still noise only
            if not len(again):
                break
            rows = again.to(x.device)
            x[rows] = self._sample(self.flow2, context[again.numpy()], generator)
            again = again[noise_only_layers(pre, geo, x[rows], energies[rows]).cpu()]
        self.noise_only_left += len(again)
        finite = torch.isfinite(x).all(dim=1)
        if not bool(finite.all()):
            raise InputError(
                f"the {self.model} produced non-finite voxels for "
                f"{int((~finite).sum())} of {len(e)} showers; the model is broken"
            )
        return flow2_to_voxels(pre, geo, x, energies).cpu().numpy()

    def _warn_outside_training_range(self, incident_mev: np.ndarray) -> None:
        """RuntimeWarning when incident energies (MeV) lie outside the run's energy range (the
        geometry's, widened to the training data's; ``energy_range_mev`` in caloflow.json): the
        energy context leaves [-1, 1] there and the flows extrapolate, unmeasured."""
        low, high = self.preprocessing.energy_range_mev
        # a relative tolerance: energies written in GeV or float32 land a rounding off the edge
        below, above = incident_mev < low * (1 - 1e-6), incident_mev > high * (1 + 1e-6)
        outside = int((below | above).sum())
        if outside:
            warnings.warn(
                f"{outside} of {len(incident_mev)} incident energies lie outside the run's "
                f"energy range {low / 1e3:.4g}-{high / 1e3:.4g} GeV: the flows extrapolate there "
                "and their showers are not validated",
                RuntimeWarning,
                stacklevel=3,
            )

    def batches(
        self,
        incident_mev: np.ndarray,
        batch_size: int = 10_000,
        seed: int = 0,
        progress: bool = False,
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(incident energies, showers)`` in MeV, ``batch_size`` showers at a time."""
        e = np.asarray(incident_mev, dtype=np.float64).reshape(-1)
        if batch_size < 1:
            raise InputError(f"batch size must be >= 1, got {batch_size}")
        if len(e) and (not np.isfinite(e).all() or (e <= 0).any()):
            raise InputError("incident energies must be finite and positive")
        self._warn_outside_training_range(e)
        generator = torch.Generator().manual_seed(seed)
        with (
            torch.no_grad(),
            tqdm(
                total=len(e), disable=not progress, unit="shower", desc=f"generating ({self.model})"
            ) as bar,
        ):
            for start in range(0, len(e), batch_size):
                part = e[start : start + batch_size]
                yield part, self._batch(part, generator)
                bar.update(len(part))

    def generate(
        self,
        incident_mev: np.ndarray,
        batch_size: int = 10_000,
        seed: int = 0,
        progress: bool = False,
    ) -> np.ndarray:
        """Showers ``(N, n_voxels)`` in MeV for the given incident energies."""
        parts = [s for _, s in self.batches(incident_mev, batch_size, seed, progress)]
        if not parts:
            return np.zeros((0, self.geometry.n_voxels), dtype=np.float32)
        return np.concatenate(parts)


def time_per_shower(
    generator: CaloFlowGenerator,
    batch_size: int,
    energy_mev: float,
    repeats: int = 1,
    min_showers: int | None = None,
) -> float:
    """Wall-clock seconds per shower at ``batch_size`` (after one warm-up batch), the best of
    ``repeats`` runs over ``min_showers`` showers (default: one batch)."""
    n = max(batch_size, min_showers or batch_size)
    e = np.full(n, energy_mev)
    generator.generate(e[:batch_size], batch_size=batch_size)  # warm-up (caches, allocator)
    # generate() returns NumPy, so the GPU's work is done when the clock stops
    return best_seconds(lambda: generator.generate(e, batch_size=batch_size), repeats) / n
