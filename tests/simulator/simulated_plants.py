"""The small plants the simulator tests run on (configs only; conftest simulates them once)."""
from __future__ import annotations

from datetime import date

from data_prep.simulator import SimulationConfig

# Two live days after one historian day, every fault kind, a drift on day two.
TINY = SimulationConfig(assets=4, days=3, seed=5, bad_fraction=0.05, drift_after=date(2026, 1, 2), historian_days=1)
# Large enough for failures whose whole lead time lies inside the data.
FAILING = SimulationConfig(assets=24, days=10, seed=0, historian_days=4)
