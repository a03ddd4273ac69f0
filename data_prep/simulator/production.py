"""Hourly production per process unit: crude slate, operator settings, throughput, yield, quality.

Feed quality follows each site's crude slate (a blend of two crudes per cargo, switching every few
days, with a tank-blending transition); after the drift date the sites buy a heavier, sourer slate.
Operators move each setting in small steps towards campaign targets, never outside the unit's
``SAFE_ENVELOPES`` entry and never by more than its ``max_step``. Yield and quality follow
:func:`expected_yield_quality`, a smooth nonlinear response with an interior yield optimum and
physically signed effects, plus laboratory noise. Assets that are down cut their unit's throughput.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from data_prep.simulator.asset_history import AssetHistory
from data_prep.simulator.plant import SAFE_ENVELOPES, UNIT_TYPES, Plant, ProcessUnit
from data_prep.simulator.timegrid import TimeGrid

# Crude assays: (API gravity, sulfur wt%).
CRUDES_BEFORE_DRIFT: dict[str, tuple[float, float]] = {
    "Brent": (38.3, 0.37), "Forties": (40.3, 0.56), "WTI Midland": (42.0, 0.20), "Arab Light": (33.4, 1.80),
    "Urals": (31.3, 1.50), "Johan Sverdrup": (28.0, 0.80), "Azeri Light": (35.0, 0.15), "CPC Blend": (45.3, 0.55),
}
CRUDES_AFTER_DRIFT: dict[str, tuple[float, float]] = {
    "Arab Medium": (30.2, 2.60), "Arab Heavy": (27.7, 2.90), "Basrah Medium": (29.0, 2.90), "Kirkuk": (33.9, 2.30),
    "Maya": (21.8, 3.40), "Western Canadian Select": (20.5, 3.50),
}
CARGO_HOURS = (60.0, 120.0)
BLEND_HOURS = 12  # tank switch: properties move linearly to the new cargo over this many hours

# Share of unit throughput lost while one asset of the type is down (spares and bypasses
# carry the rest).
THROUGHPUT_CUT = {"pump": 0.10, "compressor": 0.25, "heat_exchanger": 0.08, "furnace": 0.35}
MIN_LOAD = 0.4

# Output decimals per MES column.
FEED_DECIMALS = {
    "feed_api_gravity": 1, "feed_sulfur_wt_pct": 3, "feed_ccr_wt_pct": 2, "feed_nitrogen_ppm": 0,
    "feed_n_plus_2a_vol_pct": 1,
}


def _decimals(resolution: float) -> int:
    return max(0, -int(np.floor(np.log10(resolution) + 1e-9)))


def setting_decimals(unit_type: str, setting: str) -> int:
    return _decimals(SAFE_ENVELOPES[unit_type][setting]["resolution"])


def mes_columns() -> list[str]:
    """The MES header: fixed columns, then settings, feeds and qualities of every unit type."""
    settings = list(dict.fromkeys(s for ut in UNIT_TYPES for s in SAFE_ENVELOPES[ut]))
    feeds = list(dict.fromkeys(f for spec in UNIT_TYPES.values() for f in spec.feeds))
    qualities = list(dict.fromkeys(spec.quality for spec in UNIT_TYPES.values()))
    return ["unit_id", "ts", "throughput_m3h", *settings, *feeds, "yield_pct", *qualities]


def column_decimals() -> dict[str, int]:
    out = {"throughput_m3h": 1, "yield_pct": 2, **FEED_DECIMALS}
    for ut, spec in UNIT_TYPES.items():
        out[spec.quality] = spec.quality_decimals
        for s in SAFE_ENVELOPES[ut]:
            out[s] = setting_decimals(ut, s)
    return out


# ---------------------------------------------------------------------------------------------
# The process response (the truth a production-configuration model tries to learn)
# ---------------------------------------------------------------------------------------------


def expected_yield_quality(unit_type: str, settings: dict[str, np.ndarray], feeds: dict[str, np.ndarray],
                           load: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Noise-free (yield_pct, quality) of a unit type for settings, feed properties and load (0..1).

    Signs follow the physics: a hotter CDU furnace lifts distillate yield up to an optimum that a
    heavier crude moves up, but makes the diesel heavier (T95 up); more reflux sharpens the cut;
    a hotter hydrotreater desulfurises exponentially (Arrhenius) while cracking away liquid;
    a hotter reformer raises octane and costs yield.
    """
    s, f = settings, feeds
    if unit_type == "crude_distillation":
        t, r, p = s["furnace_outlet_temp_c"], s["reflux_ratio"], s["column_pressure_barg"]
        api, sulfur = f["feed_api_gravity"], f["feed_sulfur_wt_pct"]
        t_opt = 366.0 + 0.25 * (33.0 - api)
        fractionation = 1.0 - np.exp(-(r - 1.0) / 0.9)
        yld = (22.0 + 0.75 * api + 6.0 * np.exp(-(((t - t_opt) / 18.0) ** 2)) - 3.0 + 2.5 * fractionation
               - 2.2 * (p - 1.2) - 0.6 * (sulfur - 1.0) - 3.0 * (load - 0.9))
        quality = 348.0 + 0.45 * (t - 360.0) - 7.0 * fractionation + 2.5 * (p - 1.2) + 0.35 * (33.0 - api)
        return yld, quality
    if unit_type == "fluid_catalytic_cracking":
        t, c, tp = s["riser_outlet_temp_c"], s["catalyst_oil_ratio"], s["feed_preheat_temp_c"]
        api, ccr = f["feed_api_gravity"], f["feed_ccr_wt_pct"]
        t_opt = 528.0 - 3.0 * (ccr - 1.0)  # resid-rich feeds overcrack sooner
        yld = (38.0 + 0.6 * (api - 22.0) - 1.8 * (ccr - 1.0) + 10.0 * np.exp(-(((t - t_opt) / 22.0) ** 2))
               + 4.0 * (1.0 - np.exp(-(c - 3.0) / 2.5)) - 0.008 * (tp - 250.0) - 2.0 * (load - 0.9))
        ron = 91.0 + 0.10 * (t - 520.0) + 0.25 * (c - 6.5) - 0.15 * (api - 22.0) + 0.2 * (ccr - 1.0)
        return yld, ron
    if unit_type == "hydrotreater":
        t, h2, p = s["reactor_inlet_temp_c"], s["h2_oil_ratio_nm3_m3"], s["reactor_pressure_barg"]
        sulfur, nitrogen = f["feed_sulfur_wt_pct"], f["feed_nitrogen_ppm"]
        arrhenius = np.exp(14400.0 * (1.0 / (345.0 + 273.15) - 1.0 / (t + 273.15)))
        k = (6.0 * arrhenius * (p / 55.0) ** 0.8 * (h2 / 300.0) ** 0.3
             * (1.25 / (1.0 + nitrogen / 1000.0)) / np.maximum(load / 0.9, 0.3) ** 0.8)
        product_sulfur = np.maximum(sulfur * 10000.0 * np.exp(-k), 0.5)  # analyser floor 0.5 ppm
        yld = (97.0 + 1.6 * (1.0 - np.exp(-(t - 310.0) / 20.0)) - 0.0009 * (t - 320.0) ** 2
               + 0.3 * (1.0 - np.exp(-(h2 - 100.0) / 150.0)) - 0.4 * (sulfur - 0.5) - 0.5 * (load - 0.9))
        return yld, product_sulfur
    if unit_type == "catalytic_reforming":
        t, p, h = s["reactor_inlet_temp_c"], s["reactor_pressure_barg"], s["h2_hc_molar_ratio"]
        n2a = f["feed_n_plus_2a_vol_pct"]
        yld = (80.0 + 0.25 * (n2a - 50.0) - 0.30 * (p - 12.0) + 5.0 * np.exp(-(((t - 490.0) / 25.0) ** 2))
               - 0.08 * (t - 480.0) - 0.25 * (h - 4.5) ** 2 - 1.0 * (load - 0.9))
        ron = 88.0 + 0.28 * (t - 480.0) + 0.06 * (n2a - 50.0) - 0.08 * (p - 12.0)
        return yld, ron
    raise ValueError(f"unknown unit type {unit_type!r}")


# Laboratory repeatability per quality, as (absolute, relative) standard deviation.
_LAB_NOISE = {
    "crude_distillation": (0.8, 0.0), "fluid_catalytic_cracking": (0.15, 0.0),
    "hydrotreater": (0.0, 0.05), "catalytic_reforming": (0.2, 0.0),
}


def feeds_from_crude(unit_type: str, api: np.ndarray, sulfur: np.ndarray) -> dict[str, np.ndarray]:
    """Each unit's feed properties from the site crude: lighter crude, lighter and cleaner cuts."""
    if unit_type == "crude_distillation":
        return {"feed_api_gravity": api, "feed_sulfur_wt_pct": sulfur}
    if unit_type == "fluid_catalytic_cracking":  # vacuum gas oil
        return {"feed_api_gravity": 0.35 * api + 10.0, "feed_ccr_wt_pct": 0.3 + 0.12 * np.maximum(45.0 - api, 0.0)}
    if unit_type == "hydrotreater":  # straight-run diesel
        return {"feed_sulfur_wt_pct": 0.6 * sulfur + 0.05, "feed_nitrogen_ppm": 60.0 + 18.0 * np.maximum(45.0 - api, 0.0)}
    if unit_type == "catalytic_reforming":  # heavy naphtha
        return {"feed_n_plus_2a_vol_pct": 30.0 + 1.4 * np.maximum(45.0 - api, 0.0), "feed_api_gravity": 0.5 * api + 40.0}
    raise ValueError(f"unknown unit type {unit_type!r}")


# ---------------------------------------------------------------------------------------------
# Simulation
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cargo:
    site_id: str
    start_hour: int
    crudes: tuple[str, str]
    fraction: float  # share of the first crude
    api: float
    sulfur: float


@dataclass(frozen=True)
class ProductionResult:
    records: pd.DataFrame  # hourly, one row per unit: every MES column, NaN where not applicable
    load: dict[str, np.ndarray]  # unit_id -> hourly throughput / capacity (noise-free)
    heater_setpoint: dict[str, np.ndarray]  # unit_id -> hourly heater set point, where units have one
    cargoes: tuple[Cargo, ...]


def _crude_slate(site_id: str, n_hours: int, drift_hour: int | None,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, list[Cargo]]:
    """Hourly crude API and sulfur of one site, and the cargoes that made them."""
    cargoes: list[Cargo] = []
    api = np.empty(n_hours)
    sulfur = np.empty(n_hours)
    hour = 0
    prev: tuple[float, float] | None = None
    while hour < n_hours:
        drifted = drift_hour is not None and hour >= drift_hour
        library = CRUDES_AFTER_DRIFT if drifted else CRUDES_BEFORE_DRIFT
        names = sorted(library)
        a, b = (names[i] for i in rng.choice(len(names), size=2, replace=False))
        frac = round(float(rng.uniform(0.3, 0.7)), 2)
        c_api = frac * library[a][0] + (1 - frac) * library[b][0]
        c_sulfur = frac * library[a][1] + (1 - frac) * library[b][1]
        end = hour + int(rng.uniform(*CARGO_HOURS))
        if drift_hour is not None and hour < drift_hour < end:
            end = drift_hour  # the new slate starts on the drift date
        end = min(end, n_hours)
        cargoes.append(Cargo(site_id, hour, (a, b), frac, round(c_api, 2), round(c_sulfur, 3)))
        api[hour:end] = c_api
        sulfur[hour:end] = c_sulfur
        if prev is not None:
            ramp = np.linspace(0.0, 1.0, BLEND_HOURS + 1)[1:][: end - hour]
            api[hour:hour + len(ramp)] = prev[0] + (c_api - prev[0]) * ramp
            sulfur[hour:hour + len(ramp)] = prev[1] + (c_sulfur - prev[1]) * ramp
        prev = (c_api, c_sulfur)
        hour = end
    return api, sulfur, cargoes


def _snap(value: float, env: dict[str, float]) -> float:
    res = env["resolution"]
    snapped = min(max(round(value / res) * res, env["min"]), env["max"])
    return round(snapped, 6)


def operator_setpoints(env: dict[str, float], n_hours: int, rng: np.random.Generator) -> np.ndarray:
    """Hourly set points of one setting: campaigns towards random targets in the envelope, moved in
    steps of at most ``max_step`` on the resolution grid (what a careful operator does)."""
    res, max_step = env["resolution"], env["max_step"]
    span = env["max"] - env["min"]
    sp = _snap(env["nominal"] + rng.uniform(-0.25, 0.25) * span, env)
    target = sp
    out = np.empty(n_hours)
    for h in range(n_hours):
        if rng.random() < 1.0 / 30.0:  # a new campaign roughly every day and a bit
            target = float(rng.uniform(env["min"], env["max"]))
        gap = target - sp
        if abs(gap) >= res and rng.random() < 0.3:
            step = min(abs(gap), float(rng.uniform(res, max_step)))
            step = max(res, np.floor(step / res + 1e-9) * res)
            sp = _snap(sp + np.sign(gap) * step, env)
        out[h] = sp
    return out


def _planned_load(n_hours: int, rng: np.random.Generator) -> np.ndarray:
    """The planner's rate target (fraction of capacity), changed every one to three days."""
    out = np.empty(n_hours)
    hour, level = 0, float(rng.uniform(0.85, 0.98))
    while hour < n_hours:
        end = min(n_hours, hour + int(rng.uniform(24, 72)))
        new = float(rng.uniform(0.82, 1.0))
        ramp = np.clip(np.arange(end - hour) / 6.0, 0.0, 1.0)  # operators ramp over ~6 h
        out[hour:end] = level + (new - level) * ramp
        level = new
        hour = end
    return out


def _down_fraction(history: AssetHistory, grid: TimeGrid, n_hours: int) -> np.ndarray:
    """Per hour, the fraction of it the asset was down."""
    down = np.zeros(grid.n_steps)
    for start, end, _ in history.down_intervals():
        down[max(start, 0):max(min(end, grid.n_steps), 0)] = 1.0
    return down.reshape(n_hours, grid.steps_per_hour).mean(axis=1)


def simulate_production(plant: Plant, grid: TimeGrid, histories: dict[str, AssetHistory],
                        drift_hour: int | None, rng: np.random.Generator) -> ProductionResult:
    """Hourly MES records of every unit over the grid."""
    n_hours = grid.days * 24
    slates: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    cargoes: list[Cargo] = []
    for site in plant.sites:
        api, sulfur, site_cargoes = _crude_slate(site.site_id, n_hours, drift_hour, rng)
        slates[site.site_id] = (api, sulfur)
        cargoes.extend(site_cargoes)

    columns = mes_columns()
    hour_ts = [t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in
               pd.date_range(grid.start_dt, periods=n_hours, freq="h")]
    frames = []
    loads: dict[str, np.ndarray] = {}
    heater: dict[str, np.ndarray] = {}
    for unit in plant.units:
        spec = UNIT_TYPES[unit.unit_type]
        load = _unit_load(unit, plant, grid, histories, n_hours, rng)
        loads[unit.unit_id] = load
        settings = {name: operator_setpoints(env, n_hours, rng) for name, env in SAFE_ENVELOPES[unit.unit_type].items()}
        if spec.heater_setting is not None:
            heater[unit.unit_id] = settings[spec.heater_setting]
        api, sulfur = slates[unit.site_id]
        true_feeds = feeds_from_crude(unit.unit_type, api, sulfur)
        yld, quality = expected_yield_quality(unit.unit_type, settings, true_feeds, load)
        absolute, relative = _LAB_NOISE[unit.unit_type]
        quality = quality * (1.0 + rng.normal(0.0, relative, n_hours)) + rng.normal(0.0, absolute, n_hours)
        yld = yld + rng.normal(0.0, 0.25, n_hours)
        # Lab results for feed carry their own repeatability.
        feeds = {k: v * (1.0 + rng.normal(0.0, 0.005, n_hours)) for k, v in true_feeds.items()}
        frame = pd.DataFrame({c: np.full(n_hours, np.nan) for c in columns[2:]})
        frame["throughput_m3h"] = unit.capacity_m3h * load * (1.0 + rng.normal(0.0, 0.004, n_hours))
        for name, values in {**settings, **feeds}.items():
            frame[name] = values
        frame["yield_pct"] = yld
        frame[spec.quality] = quality
        frame.insert(0, "ts", hour_ts)
        frame.insert(0, "unit_id", unit.unit_id)
        frame.insert(0, "hour", np.arange(n_hours))
        frames.append(frame)
    records = pd.concat(frames, ignore_index=True).sort_values(["hour", "unit_id"], kind="stable")
    return ProductionResult(records.reset_index(drop=True), loads, heater, tuple(cargoes))


def _unit_load(unit: ProcessUnit, plant: Plant, grid: TimeGrid, histories: dict[str, AssetHistory],
               n_hours: int, rng: np.random.Generator) -> np.ndarray:
    load = _planned_load(n_hours, rng)
    for asset in plant.assets:
        if asset.unit_id == unit.unit_id:
            load = load * (1.0 - THROUGHPUT_CUT[asset.asset_type] * _down_fraction(histories[asset.asset_id], grid, n_hours))
    return np.maximum(load, MIN_LOAD)
