"""Shared test settings: deterministic, small thread count (CI has two cores)."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(1234)


def pytest_configure(config: pytest.Config) -> None:
    torch.set_num_threads(2)
