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
    code = main(["demo", "--out", str(tmp_path), "--epochs", "2", "--samples", "3000", "--quiet"])
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
