"""The command line: help, one-line errors with exit status 2, and a quick demo run."""

import subprocess
import sys
from pathlib import Path

import pytest

from hepflows.cli import main


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hepflows", *args], capture_output=True, text=True, timeout=600
    )


def test_help_lists_the_commands() -> None:
    out = run("--help")
    assert out.returncode == 0 and "demo" in out.stdout
    assert "--epochs" in run("demo", "--help").stdout


def test_every_option_is_documented() -> None:
    """--help explains every argument: a help text, or a fixed list of choices."""
    import argparse

    from hepflows.cli import build_parser

    def undocumented(parser: argparse.ArgumentParser, path: str) -> list[str]:
        missing = []
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    missing += undocumented(sub, f"{path} {name}")
            elif not isinstance(action, argparse._HelpAction) and not (
                action.help or action.choices
            ):
                missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")
        return missing

    assert undocumented(build_parser(), "hepflows") == []


def test_bad_option_is_a_one_line_error() -> None:
    out = run("demo", "--epochs", "0", "--out", "/tmp/never")
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "error" in out.stderr
    assert "Traceback" not in out.stderr
    bad = run("demo", "--epochs", "many")
    assert bad.returncode == 2 and "invalid int value" in bad.stderr
    unwritable = run("demo", "--out", "/proc/hepflows-cannot-write-here", "--epochs", "1")
    assert unwritable.returncode == 2 and "Traceback" not in unwritable.stderr
    assert "/proc/hepflows-cannot-write-here" in unwritable.stderr


def test_demo_runs_and_reports_nll(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code = main(
        ["demo", "ring", "--out", str(tmp_path), "--epochs", "2", "--samples", "3000", "--quiet"]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert "flow NLL" in text and "true NLL" in text
    for name in (
        "ring.png",
        "ring-training.png",
        "ring-flow/model.json",
        "ring-flow/best.safetensors",
    ):
        assert (tmp_path / name).is_file()


def test_calo_simulate_inspect_plot(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "gamma.h5"
    args = [
        "calo",
        "simulate",
        "--geometry",
        "ds1-photons",
        "--particle",
        "gamma",
        "-n",
        "300",
        "--energy",
        "log-uniform:1:100",
        "--seed",
        "3",
        "--out",
        str(out),
        "--quiet",
    ]
    assert main(args) == 0
    assert "wrote 300 gamma showers" in capsys.readouterr().out
    assert main(["calo", "inspect", str(out)]) == 0
    text = capsys.readouterr().out
    assert "geometry ds1-photons" in text and "showers            300" in text
    assert main(["calo", "plot", str(out), "--out", str(tmp_path / "plots")]) == 0
    for suffix in ("average", "longitudinal", "energy-ratio"):
        assert (tmp_path / "plots" / f"gamma-{suffix}.png").stat().st_size > 10_000


def test_calo_errors_are_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not an hdf5 file")
    out = run("calo", "inspect", str(bad))
    assert out.returncode == 2 and "not a readable HDF5 file" in out.stderr
    assert out.stderr.strip().count("\n") == 0
    out = run(
        "calo",
        "simulate",
        "--geometry",
        "ds2",
        "--particle",
        "e+",
        "-n",
        "5",
        "--energy",
        "uniform:5:1",
        "--out",
        str(tmp_path / "x.h5"),
    )
    assert out.returncode == 2 and "energy spec" in out.stderr
    assert not (tmp_path / "x.h5").exists()


def test_evaluate_table_cli(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import h5py
    import numpy as np

    rng = np.random.default_rng(0)
    for name, shift in (("ref", 0.0), ("gen", 0.5)):
        with h5py.File(tmp_path / f"{name}.h5", "w") as f:
            f["pt"] = rng.exponential(30.0, 2000) + shift * 30
            f["eta"] = rng.normal(0, 1.5, 2000)
    args = [
        "evaluate",
        "table",
        str(tmp_path / "ref.h5"),
        str(tmp_path / "gen.h5"),
        "--out",
        str(tmp_path / "out"),
    ]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "pt" in text and "C2ST" in text and "FGD" in text
    assert (tmp_path / "out" / "metrics.json").is_file()
    assert (tmp_path / "out" / "plots" / "pt.png").is_file()
    bad = run(
        "evaluate", "table", str(tmp_path / "ref.h5"), str(tmp_path / "gen.h5"), "--tagger", "btag"
    )
    assert bad.returncode == 2 and "KIND=COLUMN" in bad.stderr


def test_integrate_cli_json_and_events(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import json

    import h5py

    events = tmp_path / "events.h5"
    args = [
        "integrate",
        "gauss",
        "--dim",
        "2",
        "--calls",
        "60000",
        "--batch-size",
        "2000",
        "--unweight",
        "20000",
        "--out",
        str(events),
        "--json",
    ]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"integral", "error", "calls", "truth", "pull", "unweighting_efficiency"} <= set(out)
    assert abs(out["pull"]) < 4 and out["calls"] >= 60000
    with h5py.File(events) as f:
        assert f["x"].shape[1] == 2 and len(f["weight"]) == f["x"].shape[0] > 0
    # VEGAS pre-training from the CLI: its calls count, the estimate stays honest
    grid = ["integrate", "camel", "--dim", "4", "--calls", "100000", "--batch-size", "2000"]
    assert (
        main([*grid, "--grid", "3", "--grid-calls", "5000", "--grid-alpha", "0.3", "--json"]) == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert abs(out["pull"]) < 4 and out["calls"] >= 100000
    assert main([*grid, "--grid", "3", "--grid-alpha", "0"]) == 2
    # a smooth integrand to a precision: the RQMC probe of the untrained sampler is enough
    assert main(["integrate", "poly", "--dim", "6", "--precision", "1e-5", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["sampling"] == "qmc" and out["calls"] == 4096 and abs(out["pull"]) < 4
    assert out["error"] / out["integral"] <= 1e-5
    assert main([*grid, "--sampling", "mc", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["sampling"] == "mc" and out["chi2_dof"] is not None
    assert main(["integrate", "--list"]) == 0
    assert "ee_qqg" in capsys.readouterr().out
    bad = run("integrate", "annulus", "--dim", "3")
    assert bad.returncode == 2 and "dim 2 only" in bad.stderr
