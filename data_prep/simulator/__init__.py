"""The deterministic refinery simulator: a plant's source-system files for a landing folder.

``simulate(landing, SimulationConfig(...))`` writes everything ``docs/landing_formats.md`` lists;
``refinery simulate`` is its command (:mod:`data_prep.simulator.command`). Plant specs other code
may import live in :mod:`data_prep.simulator.plant` (``SAFE_ENVELOPES`` among them).
"""
from data_prep.simulator.plant import SAFE_ENVELOPES
from data_prep.simulator.simulation import SimulationConfig, SimulationSummary, simulate

__all__ = ["SAFE_ENVELOPES", "SimulationConfig", "SimulationSummary", "simulate"]
