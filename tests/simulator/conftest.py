"""Simulated landing folders shared by the simulator tests (each simulated once per session)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

# Helpers sit beside the tests; make them importable whatever pytest's import mode.
sys.path.insert(0, str(Path(__file__).parent))

from simulated_plants import FAILING, TINY  # noqa: E402

from data_prep.simulator import simulate  # noqa: E402


@pytest.fixture(scope="session")
def tiny_landing(tmp_path_factory) -> Path:
    landing = tmp_path_factory.mktemp("tiny") / "landing"
    simulate(landing, TINY)
    return landing


@pytest.fixture(scope="session")
def failing_landing(tmp_path_factory) -> Path:
    landing = tmp_path_factory.mktemp("failing") / "landing"
    simulate(landing, FAILING)
    return landing
