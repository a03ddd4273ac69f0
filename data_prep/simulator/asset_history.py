"""Reliability history per asset: degradation episodes, failures, preventive maintenance.

A renewal process on the step grid. After each reset (repair or preventive maintenance) every
failure mode of the asset type draws an exponential time to onset; a started degradation develops
over the mode's lead time and ends in a failure unless preventive maintenance (calendar based,
random phase) comes first and resets all wear. A failure stops the asset for the mode's downtime,
after which the repair also resets all wear. The process starts well before the simulated period
so that some assets are already degrading on the first day, as on a real plant.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from data_prep.simulator.plant import ASSET_TYPES, FAILURE_MODES, Asset
from data_prep.simulator.timegrid import TimeGrid

WARMUP_DAYS = 40.0

OUTCOME_FAILURE = "failure"
OUTCOME_PM = "preventive_maintenance"
OUTCOME_OTHER_REPAIR = "reset_by_other_repair"
OUTCOME_ONGOING = "ongoing"


@dataclass(frozen=True)
class DegradationEpisode:
    """One failure mode developing on one asset, from onset until it stopped developing."""

    asset_id: str
    failure_code: str
    onset_step: int  # negative: began before the simulated period
    lead_steps: int  # onset to the failure it would reach
    end_step: int  # the failure, the maintenance that reset it, or past the period end
    outcome: str
    effects: tuple[tuple[str, str, float], ...]  # (role, kind, magnitude at full development)

    def progress(self, steps: np.ndarray) -> np.ndarray:
        """0 before onset, rising linearly to 1 at the would-be failure, 0 once the episode ended."""
        p = np.clip((steps - self.onset_step) / max(self.lead_steps, 1), 0.0, 1.0)
        return np.where((steps >= self.onset_step) & (steps < self.end_step), p, 0.0)


@dataclass(frozen=True)
class Failure:
    asset_id: str
    failure_code: str
    onset_step: int
    failed_step: int
    restart_step: int  # may lie beyond the period: still down at the end


@dataclass(frozen=True)
class Maintenance:
    asset_id: str
    start_step: int
    end_step: int
    kind: str = "PM"


@dataclass(frozen=True)
class AssetHistory:
    asset_id: str
    episodes: tuple[DegradationEpisode, ...]
    failures: tuple[Failure, ...]
    maintenance: tuple[Maintenance, ...]

    def down_intervals(self) -> list[tuple[int, int, str]]:
        """(first step down, first step running again, "failure" | "PM"), in time order."""
        spans = [(f.failed_step, f.restart_step, "failure") for f in self.failures]
        spans += [(m.start_step, m.end_step, m.kind) for m in self.maintenance]
        return sorted(spans)


def _draw_effects(asset: Asset, mode_index: int, rng: np.random.Generator) -> tuple[tuple[str, str, float], ...]:
    mode = FAILURE_MODES[asset.asset_type][mode_index]
    return tuple((e.role, e.kind, round(float(rng.uniform(e.low, e.high)), 4)) for e in mode.signature)


def simulate_asset_history(asset: Asset, grid: TimeGrid, rng: np.random.Generator) -> AssetHistory:
    """Failures, maintenance and degradation of one asset over the grid (steps may start < 0)."""
    modes = FAILURE_MODES[asset.asset_type]
    atype = ASSET_TYPES[asset.asset_type]
    spd = grid.steps_per_day
    horizon = grid.n_steps
    t = -grid.steps_for_days(WARMUP_DAYS)
    pm_every = grid.steps_for_days(atype.pm_interval_days)
    pm_next = t + int(rng.uniform(0.1, 1.0) * pm_every)
    episodes: list[DegradationEpisode] = []
    failures: list[Failure] = []
    maintenance: list[Maintenance] = []

    while t < horizon:
        onsets = [t + int(rng.exponential(m.mean_days_to_onset) * spd) for m in modes]
        leads = [max(1, int(rng.uniform(*m.lead_days) * spd)) for m in modes]
        effects = [_draw_effects(asset, i, rng) for i in range(len(modes))]
        fails = [o + lead for o, lead in zip(onsets, leads)]
        first = int(np.argmin(fails))
        pm_next = max(pm_next, t)

        def close(end: int, outcome_of: Callable[[int], str]) -> None:
            """Every mode that had started by ``end`` stops developing there."""
            for i, mode in enumerate(modes):
                if onsets[i] < end:
                    outcome = outcome_of(i)
                    # An ongoing episode keeps developing past the end of the period.
                    stop = fails[i] if outcome == OUTCOME_ONGOING else end
                    episodes.append(DegradationEpisode(
                        asset.asset_id, mode.code, onsets[i], leads[i], stop, outcome, effects[i]))

        if pm_next <= fails[first] and pm_next < horizon:
            hours = rng.uniform(*atype.pm_hours)
            end = pm_next + max(1, int(round(hours * grid.steps_per_hour)))
            close(pm_next, lambda i: OUTCOME_PM)
            maintenance.append(Maintenance(asset.asset_id, pm_next, end))
            t = end
            pm_next += pm_every
        elif fails[first] < horizon:
            failed = fails[first]
            hours = rng.uniform(*modes[first].downtime_hours)
            restart = failed + max(1, int(round(hours * grid.steps_per_hour)))
            close(failed, lambda i: OUTCOME_FAILURE if i == first else OUTCOME_OTHER_REPAIR)
            failures.append(Failure(asset.asset_id, modes[first].code, onsets[first], failed, restart))
            t = restart
            while pm_next < t:  # a PM that fell inside the repair is skipped, not stacked
                pm_next += pm_every
        else:
            close(horizon, lambda i: OUTCOME_ONGOING)
            break

    return AssetHistory(
        asset_id=asset.asset_id,
        episodes=tuple(sorted((e for e in episodes if e.end_step > 0),
                              key=lambda e: (e.onset_step, e.failure_code))),
        failures=tuple(f for f in failures if f.failed_step >= 0),
        maintenance=tuple(m for m in maintenance if m.end_step > 0),
    )
