"""Sensor physics per asset: what every tag reads at every step, in canonical units.

Per asset type a healthy operating point is modulated by the unit's load, the heater set point,
the site's air temperature (daily cycle plus weather), slow process wander and transmitter noise.
Degradation episodes add their failure mode's signature as they develop (slowly at first, steeply
towards the failure); while the asset is down, rotating and flow readings drop at once and
temperatures decay towards ambient, then recover after the restart. Arrays in, arrays out.
"""
from __future__ import annotations

import numpy as np

from data_prep.simulator.asset_history import AssetHistory, DegradationEpisode
from data_prep.simulator.measurements import physical_limits
from data_prep.simulator.plant import Asset, Site
from data_prep.simulator.timegrid import TimeGrid

# Shape of a developing fault: exp growth, ~5 % of the full signature halfway, 100 % at failure.
SIGNATURE_STEEPNESS = 4.0

# Transmitter noise per role: (absolute sd, sd relative to the nominal value).
NOISE = {
    "bearing_temp": (0.3, 0.0), "vibration": (0.08, 0.0), "discharge_pressure": (0.0, 0.004),
    "flow": (0.0, 0.008), "motor_current": (0.0, 0.006), "speed": (0.0, 0.001),
    "inlet_temp": (0.4, 0.0), "outlet_temp": (0.4, 0.0), "dp": (0.0, 0.015),
    "tube_skin_temp": (1.5, 0.0), "fuel_pressure": (0.0, 0.01), "fuel_flow": (0.0, 0.01),
}
_FLOOR = {"temperature": -45.0, "pressure": -0.5, "flow": 0.0, "vibration": 0.02, "current": 0.0, "speed": 0.0}
TEMPERATURE_ROLES = frozenset({"bearing_temp", "inlet_temp", "outlet_temp", "tube_skin_temp"})

# How fast temperatures fall while stopped and recover after a restart (hours), per asset type.
_COOLDOWN_HOURS = {"pump": 1.0, "compressor": 1.5, "heat_exchanger": 1.5, "furnace": 4.0}
_WARMUP_HOURS = {"pump": 0.5, "compressor": 0.75, "heat_exchanger": 0.75, "furnace": 1.5}


def signature_shape(progress: np.ndarray) -> np.ndarray:
    k = SIGNATURE_STEEPNESS
    return (np.exp(k * progress) - 1.0) / (np.exp(k) - 1.0)


def wander(rng: np.random.Generator, grid: TimeGrid, knot_hours: float, sd: float) -> np.ndarray:
    """Slow random variation: normal knots every ``knot_hours``, interpolated to the grid."""
    n_knots = int(np.ceil(grid.days * 24 / knot_hours)) + 2
    knots = rng.normal(0.0, sd, n_knots)
    return np.interp(grid.hours / knot_hours, np.arange(n_knots), knots)


def ambient_temperature(site: Site, grid: TimeGrid, rng: np.random.Generator) -> np.ndarray:
    """Air temperature at a site: a daily cycle peaking mid-afternoon plus passing weather."""
    hod = grid.hours % 24.0
    daily = 4.0 * np.sin(2.0 * np.pi * (hod - 9.0) / 24.0)
    return site.ambient_mean_c + daily + wander(rng, grid, 12.0, 2.5)


def running_factors(history: AssetHistory, grid: TimeGrid, asset_type: str) -> tuple[np.ndarray, np.ndarray]:
    """(fast, slow) in [0, 1]: 1 running, 0 stopped. ``fast`` switches at once (flows, current,
    speed); ``slow`` decays exponentially while stopped and recovers after restart (temperatures)."""
    n = grid.n_steps
    steps = np.arange(n, dtype=float)
    fast = np.ones(n)
    slow = np.ones(n)
    tau_down = _COOLDOWN_HOURS[asset_type] * grid.steps_per_hour
    tau_up = _WARMUP_HOURS[asset_type] * grid.steps_per_hour
    for start, end, _ in history.down_intervals():
        s, e = max(start, 0), min(end, n)
        if e <= 0 or s >= n:
            continue
        fast[s:e] = 0.0
        level = slow[s - 1] if s > 0 else 1.0
        elapsed = steps[s:e] - start  # the stop may have begun before the period
        slow[s:e] = level * np.exp(-elapsed / tau_down)
        if e < n:
            at_restart = level * np.exp(-(end - start) / tau_down)
            slow[e:] = 1.0 - (1.0 - at_restart) * np.exp(-(steps[e:] - end) / tau_up)
    return fast, slow


def _effects(episodes: tuple[DegradationEpisode, ...], asset: Asset, grid: TimeGrid) -> tuple[dict, dict]:
    """Per role: additive offset and multiplicative factor arrays from all episodes."""
    steps = np.arange(grid.n_steps)
    add: dict[str, np.ndarray] = {}
    mul: dict[str, np.ndarray] = {}
    for ep in episodes:
        shape = signature_shape(ep.progress(steps))
        for role, kind, magnitude in ep.effects:
            if kind == "add":
                add[role] = add.get(role, 0.0) + magnitude * shape
            elif kind == "mul":
                mul[role] = mul.get(role, 1.0) * (1.0 + magnitude * shape)
            elif kind == "toward":  # exchanger losing duty: outlet creeps towards inlet
                gap = asset.params["inlet_temp"] - asset.params[role]
                add[role] = add.get(role, 0.0) + magnitude * gap * shape
            else:
                raise ValueError(f"unknown signature kind {kind!r} on {asset.asset_id}")
    return add, mul


def _healthy(asset: Asset, grid: TimeGrid, load: np.ndarray, heater_sp: np.ndarray | None,
             ambient_dev: np.ndarray, rng: np.random.Generator) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray | float]]:
    """(running values, values when stopped) per role, before degradation and noise."""
    p = asset.params
    w = lambda hours, sd: wander(rng, grid, hours, sd)  # noqa: E731
    lo = load * (1.0 + w(3.0, 0.01))
    kind = asset.asset_type
    if kind == "pump":
        run = {
            "flow": p["flow"] * lo / 0.9 * (1.0 + w(1.0, 0.01)),
            "discharge_pressure": p["discharge_pressure"] * (1.097 - 0.12 * lo**2) * (1.0 + w(2.0, 0.004)),
            "motor_current": p["motor_current"] * (0.415 + 0.65 * lo),
            "bearing_temp": p["bearing_temp"] + 8.0 * (lo - 0.9) + 0.3 * ambient_dev + w(4.0, 0.8),
            "vibration": p["vibration"] * (0.865 + 0.15 * lo) * (1.0 + w(2.0, 0.05)),
        }
        idle = {"flow": 0.0, "discharge_pressure": p["suction_pressure"], "motor_current": 0.0,
                "bearing_temp": None, "vibration": 0.08}
    elif kind == "compressor":
        run = {
            "speed": p["speed"] * (0.91 + 0.1 * lo) * (1.0 + w(2.0, 0.003)),
            "flow": p["flow"] * lo / 0.9 * (1.0 + w(1.0, 0.01)),
            "discharge_pressure": p["discharge_pressure"] * (0.865 + 0.15 * lo) * (1.0 + w(2.0, 0.005)),
            "motor_current": p["motor_current"] * (0.46 + 0.6 * lo),
            "bearing_temp": p["bearing_temp"] + 6.0 * (lo - 0.9) + 0.25 * ambient_dev + w(4.0, 0.8),
            "vibration": p["vibration"] * (0.91 + 0.1 * lo) * (1.0 + w(2.0, 0.05)),
        }
        idle = {"speed": 0.0, "flow": 0.0, "discharge_pressure": p["suction_pressure"], "motor_current": 0.0,
                "bearing_temp": None, "vibration": 0.1}
    elif kind == "heat_exchanger":
        run = {
            "flow": p["flow"] * lo / 0.9 * (1.0 + w(1.0, 0.015)),
            "inlet_temp": p["inlet_temp"] + 6.0 * (lo - 0.9) + w(3.0, 1.5),
            "outlet_temp": p["outlet_temp"] + 0.35 * ambient_dev + 12.0 * (lo - 0.9) + w(3.0, 1.0),
            "dp": p["dp"] * (lo / 0.9) ** 1.8 * (1.0 + w(2.0, 0.02)),
        }
        idle = {"flow": 0.0, "dp": 0.01, "inlet_temp": None, "outlet_temp": None}
    elif kind == "furnace":
        sp = heater_sp if heater_sp is not None else np.full(grid.n_steps, p["outlet_temp"])
        fuel = (p["fuel_flow"] * lo / 0.9 * (1.0 + (sp - p["outlet_temp"]) / 300.0) * (1.0 - 0.003 * ambient_dev)
                * (1.0 + w(1.0, 0.01)))
        run = {
            "outlet_temp": sp + w(2.0, 0.6),
            "tube_skin_temp": sp + (p["tube_skin_temp"] - p["outlet_temp"]) + 15.0 * (lo - 0.9) + w(6.0, 2.0),
            "fuel_flow": fuel,
            "fuel_pressure": p["fuel_pressure"] * (fuel / p["fuel_flow"]) ** 2 * (1.0 + w(2.0, 0.01)),
        }
        idle = {"fuel_flow": 0.0, "fuel_pressure": 0.03, "outlet_temp": None, "tube_skin_temp": None}
    else:
        raise ValueError(f"unknown asset type {kind!r}")
    return run, idle


def simulate_asset_signals(asset: Asset, history: AssetHistory, grid: TimeGrid, load: np.ndarray,
                           heater_sp: np.ndarray | None, ambient: np.ndarray, ambient_mean: float,
                           rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Canonical readings of every tag of ``asset`` (by tag name) at every grid step.

    ``load`` and ``heater_sp`` are per step; readings stay inside the physical limits.
    """
    ambient_dev = ambient - ambient_mean
    run, idle = _healthy(asset, grid, load, heater_sp, ambient_dev, rng)
    add, mul = _effects(history.episodes, asset, grid)
    fast, slow = running_factors(history, grid, asset.asset_type)
    # Stopped equipment settles near air temperature; a furnace's refractory stays warmer.
    settle = ambient + (30.0 if asset.asset_type == "furnace" else 6.0)
    out: dict[str, np.ndarray] = {}
    for tag in asset.tags:
        role = tag.role
        value = run[role] * mul.get(role, 1.0) + add.get(role, 0.0)
        stopped = settle if idle[role] is None else idle[role]
        r = slow if role in TEMPERATURE_ROLES else fast
        value = stopped + r * (value - stopped)
        absolute, relative = NOISE[role]
        sd = absolute + relative * tag.nominal * np.maximum(r, 0.02)
        value = value + rng.normal(0.0, 1.0, grid.n_steps) * sd
        # Good readings keep clear of the physical limits: crossing them is reserved for faults.
        _, high = physical_limits(tag.measurement)
        out[tag.tag] = np.clip(value, _FLOOR[tag.measurement], 0.98 * high)
    return out
