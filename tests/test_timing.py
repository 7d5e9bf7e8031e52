"""best_seconds: the fastest run per call, and the time budget stops the runs early."""

import pytest

from hepflows import timing


def test_best_seconds_takes_the_fastest_run_per_call_and_honours_the_budget(monkeypatch) -> None:
    clock = {"t": 0.0}
    durations = iter([3.0, 1.0, 2.0, 5.0, 5.0, 5.0])  # seconds per call of fn, in order
    monkeypatch.setattr(timing.time, "perf_counter", lambda: clock["t"])

    def fn() -> None:
        clock["t"] += next(durations)

    # 3 runs of 2 calls: (3 + 1) / 2, (2 + 5) / 2, (5 + 5) / 2 -> the best is 2 s per call
    assert timing.best_seconds(fn, repeats=3, calls=2) == pytest.approx(2.0)
    durations = iter([4.0, 1.0, 1.0])
    calls = []

    def counted() -> None:
        calls.append(1)
        clock["t"] += next(durations)

    # a 3 s budget: the first run (4 s) spends it, so no second run
    assert timing.best_seconds(counted, repeats=3, budget_s=3.0) == pytest.approx(4.0)
    assert len(calls) == 1
