"""End-to-end shower evaluation: the metrics see what they should, and refuse what they must."""

from pathlib import Path

import numpy as np
import pytest

from hepflows.calo.evaluate import evaluate_calo
from hepflows.calo.formats import write_showers
from hepflows.calo.geometry import get_geometry
from hepflows.calo.simulate import SimulationConfig, simulate_batch
from hepflows.cli import main
from hepflows.io import InputError
from hepflows.metrics.classifier import ClassifierPreset

TINY = ClassifierPreset((32,), epochs=4, lr=3e-3, batch_size=200)


def sample(path: Path, particle: str, n: int, seed: int, geometry: str = "calogan", **cfg) -> Path:
    g = get_geometry(geometry)
    rng = np.random.default_rng(seed)
    energies = 1e3 * rng.uniform(5, 50, n)
    b = simulate_batch(g, particle, energies, rng, SimulationConfig(**cfg))
    write_showers(path, b.incident, b.showers, g)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("eval")
    return {
        "ref": sample(d / "ref.h5", "e+", 2500, 1),
        "same": sample(d / "same.h5", "e+", 2500, 2),
        "photons": sample(d / "gamma.h5", "gamma", 2500, 3),
        "ds2": sample(d / "ds2.h5", "e+", 200, 4, "ds2"),
    }


def test_same_physics_is_indistinguishable_and_different_physics_is_not(files) -> None:
    same = evaluate_calo(files["ref"], files["same"], preset=TINY)
    other = evaluate_calo(files["ref"], files["photons"], preset=TINY)
    for mode in ("low", "high"):
        assert abs(same.classifiers[mode].auc.value - 0.5) < 0.05
        assert other.classifiers[mode].auc.value > 0.6
    assert abs(same.kpd.value) < 3 * same.kpd.error + 1e-4
    assert other.kpd.value > 10 * max(same.kpd.value, 1e-5)
    sep_same = {h.name: h.separation for h in same.histograms}
    sep_other = {h.name: h.separation for h in other.histograms}
    assert sep_other["E_0"] > 10 * sep_same["E_0"]  # photons start deeper: less in layer 0
    names = set(sep_same)
    assert {"E_ratio", "E_tot", "voxel_energy", "x_mean_1", "sparsity_2"} <= names


def test_mismatches_are_refused(files, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="geometries differ"):
        evaluate_calo(files["ref"], files["ds2"], preset=TINY)
    g = get_geometry("calogan")
    rng = np.random.default_rng(5)
    high = simulate_batch(g, "e+", 1e3 * rng.uniform(60, 100, 500), rng)
    write_showers(tmp_path / "high.h5", high.incident, high.showers, g)
    with pytest.raises(InputError, match="incident-energy distributions differ"):
        evaluate_calo(files["ref"], tmp_path / "high.h5", preset=TINY)


def test_cli_writes_the_report(files, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "report"
    args = ["evaluate", "calo", str(files["ref"]), str(files["same"]), "--out", str(out),
            "--max-showers", "1500"]  # fmt: skip
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "AUC low" in text and "FPD" in text and "report.html" in text
    page = (out / "report.html").read_text()
    assert "classifier AUC (low-level)" in page and "average_reference.png" in page
    assert (out / "metrics.json").is_file() and (out / "plots" / "E_ratio.png").is_file()
    assert len(list((out / "plots").glob("*.png"))) == 29  # 27 histograms + 2 average images
