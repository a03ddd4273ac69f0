"""The DCS alarm and event journal: limit alarms, trips, maintenance, system events, operator notes.

Limit alarms come from the measured values crossing each tag's configured limits (HI at the
normal maximum, HIHI where configured, LO where configured) with a deadband, so a noisy value at
the limit does not chatter; they activate (ACT), are acknowledged by the operator (ACK) and
return to normal (RTN). Limit alarms of equipment out of service for preventive maintenance are
shelved. Trips and maintenance add equipment/system lines; operators add free-text notes, some of
them about the smells and noises that come before a failure.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from data_prep.simulator.asset_history import OUTCOME_FAILURE, AssetHistory
from data_prep.simulator.plant import Asset, Plant, Tag
from data_prep.simulator.production import ProductionResult
from data_prep.simulator.timegrid import TimeGrid, millis_text

DEADBAND_SHARE = 0.05  # of the normal range
ACK_PROBABILITY = 0.85
ACK_DELAY_S = (20, 480)

_MESSAGES = {
    "bearing_temp": "bearing temperature", "vibration": "vibration", "discharge_pressure": "discharge pressure",
    "flow": "flow", "motor_current": "motor current", "speed": "speed", "inlet_temp": "inlet temperature",
    "outlet_temp": "outlet temperature", "dp": "differential pressure", "tube_skin_temp": "tube skin temperature",
    "fuel_pressure": "fuel gas pressure", "fuel_flow": "fuel gas flow",
}
_EQUIPMENT_ROLES = frozenset({"bearing_temp", "vibration", "motor_current", "speed"})

# What field operators notice before a failure, per (asset type, failure code); {eq} is the
# equipment as the operator happened to write it.
_WARNING_NOTES = {
    ("pump", "BEARING"): ("field round: {eq} sounds noisy, bearing housing hot to touch, maintenance informed",
                          "{eq} grinding noise from the drive end bearing, asked reliability to take vibration readings"),
    ("pump", "SEAL_LEAK"): ("small leak at the seal of {eq}, drip tray filling, seal pot level dropping",
                            "{eq} seal leaking, product smell near the pump, area roped off"),
    ("pump", "IMPELLER"): ("{eq} not making its usual head, discharge pressure drifting down",),
    ("compressor", "BEARING"): ("{eq} lube oil return temperature up on the drive end journal, vibration trending up",),
    ("compressor", "FOULING"): ("{eq} needs more speed for the same throughput, online wash requested",),
    ("compressor", "SEAL_LEAK"): ("{eq} primary seal vent flow high, seal gas panel alarming intermittently",),
    ("heat_exchanger", "FOULING"): ("{eq} performance falling off, outlet temperature creeping up, cleaning to be planned",
                                    "{eq} dP rising steadily over the last days"),
    ("heat_exchanger", "TUBE_LEAK"): ("suspect tube leak on {eq}, sample from the cooling side looks hazy",),
    ("furnace", "COKING"): ("{eq} hot spots seen through the peep holes on the radiant tubes, skin temps rising",
                            "IR survey on {eq}: tube skin temperatures above last month, coking suspected"),
    ("furnace", "BURNER"): ("{eq} burners flickering, flame pattern uneven, fuel gas pressure high",
                            "{eq} two burners with lazy flames, tips probably plugged"),
}
_STOP_NOTES = {
    "pump": "{eq} tripped, spare started, unit rate reduced, CM work order raised ({what} suspected)",
    "compressor": "{eq} tripped, unit rate reduced, CM work order raised ({what} suspected)",
    "heat_exchanger": "{eq} taken out of service, bypass opened, CM work order raised ({what})",
    "furnace": "{eq} tripped on the burner management system, unit rate cut, CM work order raised ({what} suspected)",
}
_TRIP_TEXT = {
    "pump": ("motor_current", "EQUIPMENT", "CRITICAL", "Motor trip"),
    "compressor": ("motor_current", "EQUIPMENT", "CRITICAL", "Compressor trip"),
    "heat_exchanger": ("flow", "EQUIPMENT", "HIGH", "Exchanger isolated"),
    "furnace": ("fuel_flow", "SAFETY", "CRITICAL", "Heater trip - burner management system"),
}


@dataclass(frozen=True)
class _Line:
    ms: int  # since the grid start
    text: str


def _structured(ms: int, start, pri: str, cls: str, tag: str, state: str, message: str) -> _Line:
    when = start + timedelta(milliseconds=ms)
    return _Line(ms, f"{millis_text(when)} | PRI={pri} | CLASS={cls} | TAG={tag} | STATE={state} | {message}")


def _note(ms: int, start, text: str) -> _Line:
    return _Line(ms, f"{millis_text(start + timedelta(milliseconds=ms))} {text}")


def latched(on: np.ndarray, off: np.ndarray) -> np.ndarray:
    """True from each ``on`` sample until the next ``off`` sample (alarm hysteresis)."""
    idx = np.arange(len(on))
    last_on = np.maximum.accumulate(np.where(on, idx, -1))
    last_off = np.maximum.accumulate(np.where(off, idx, -1))
    return last_on > last_off


def _limit_alarms(tag: Tag, values: np.ndarray, shelved: np.ndarray, grid: TimeGrid,
                  rng: np.random.Generator) -> list[_Line]:
    step_ms = grid.step_minutes * 60_000
    start = grid.start_dt
    band = DEADBAND_SHARE * (tag.normal_max - tag.normal_min)
    what = _MESSAGES[tag.role]
    cls = "EQUIPMENT" if tag.role in _EQUIPMENT_ROLES else "PROCESS"
    limits = [(tag.normal_max, +1, "HIGH", f"High {what}", cls)]
    if tag.high_high is not None:
        hihi_cls = "SAFETY" if tag.role == "tube_skin_temp" else cls
        limits.append((tag.high_high, +1, "CRITICAL", f"High high {what}", hihi_cls))
    if tag.low_alarm:
        limits.append((tag.normal_min, -1, "MEDIUM", f"Low {what}", cls))
    lines: list[_Line] = []
    for limit, sign, pri, message, klass in limits:
        if sign > 0:
            state = latched(values > limit, values < limit - band)
        else:
            state = latched(values < limit, values > limit + band)
        state &= ~shelved
        change = np.diff(state.astype(np.int8), prepend=np.int8(0))
        for step in np.flatnonzero(change).tolist():
            ms = step * step_ms + int(rng.integers(0, 60_000))
            if change[step] > 0:
                lines.append(_structured(ms, start, pri, klass, tag.historian_tag, "ACT", message))
                if rng.random() < ACK_PROBABILITY:
                    ack = ms + int(rng.integers(*ACK_DELAY_S)) * 1000
                    lines.append(_structured(ack, start, pri, klass, tag.historian_tag, "ACK", message))
            else:
                lines.append(_structured(ms, start, pri, klass, tag.historian_tag, "RTN", message))
    return lines


def _equipment_spelling(asset: Asset, rng: np.random.Generator) -> str:
    """Operators write equipment numbers every which way."""
    number = asset.equipment.split("-")[1]
    letter = asset.equipment[0]
    options = (asset.equipment, f"{letter}{number}", f"{asset.asset_type.replace('_', ' ')} {number}",
               f"{asset.unit_id} {asset.equipment}", asset.asset_name.lower())
    return options[int(rng.integers(len(options)))]


def _asset_lines(asset: Asset, history: AssetHistory, grid: TimeGrid, rng: np.random.Generator) -> list[_Line]:
    """Trips, maintenance and operator notes about one asset."""
    step_ms = grid.step_minutes * 60_000
    end_ms = grid.n_steps * step_ms
    start = grid.start_dt
    role, cls, pri, message = _TRIP_TEXT[asset.asset_type]
    trip_tag = asset.tag_by_role(role).historian_tag
    lines: list[_Line] = []
    for f in history.failures:
        ms = f.failed_step * step_ms + int(rng.integers(0, 5_000))
        lines.append(_structured(ms, start, pri, cls, trip_tag, "ACT", message))
        lines.append(_structured(ms + int(rng.integers(15, 120)) * 1000, start, pri, cls, trip_tag, "ACK", message))
        eq = _equipment_spelling(asset, rng)
        what = f.failure_code.lower().replace("_", " ")
        lines.append(_note(ms + int(rng.integers(5 * 60_000, 40 * 60_000)), start,
                           _STOP_NOTES[asset.asset_type].format(eq=eq, what=what)))
        restart_ms = f.restart_step * step_ms
        if restart_ms < end_ms:
            lines.append(_structured(restart_ms + int(rng.integers(0, 60_000)), start, pri, cls, trip_tag, "RTN", message))
            lines.append(_note(restart_ms + int(rng.integers(10 * 60_000, 50 * 60_000)), start,
                               f"{_equipment_spelling(asset, rng)} back in service after repair, running normal"))
    for m in history.maintenance:
        if m.start_step >= 0:
            lines.append(_structured(m.start_step * step_ms, start, "LOW", "SYSTEM", trip_tag, "ACT",
                                     "Out of service for preventive maintenance"))
        if m.end_step * step_ms < end_ms:
            lines.append(_structured(m.end_step * step_ms + int(rng.integers(0, 60_000)), start, "LOW", "SYSTEM",
                                     trip_tag, "RTN", "Returned to service"))
    for ep in history.episodes:
        # A field operator notices most failures-to-be when they are well developed.
        if ep.outcome != OUTCOME_FAILURE or rng.random() > 0.7:
            continue
        step = ep.onset_step + int(ep.lead_steps * rng.uniform(0.65, 0.92))
        if 0 <= step < min(ep.end_step, grid.n_steps):
            templates = _WARNING_NOTES[(asset.asset_type, ep.failure_code)]
            text = templates[int(rng.integers(len(templates)))].format(eq=_equipment_spelling(asset, rng))
            lines.append(_note(step * step_ms + int(rng.integers(0, 300_000)), start, text))
    return lines


def _site_lines(plant: Plant, site_id: str, grid: TimeGrid, production: ProductionResult,
                running: dict[str, np.ndarray], rng: np.random.Generator) -> list[_Line]:
    """Shift handover notes twice a day and the odd controller communication glitch."""
    start = grid.start_dt
    step_ms = grid.step_minutes * 60_000
    assets = [a for a in plant.assets if a.site_id == site_id]
    units = [u for u in plant.units if u.site_id == site_id]
    records = production.records
    throughput = {u.unit_id: records.loc[records["unit_id"] == u.unit_id, "throughput_m3h"].to_numpy() for u in units}
    lines: list[_Line] = []
    for day in range(grid.days):
        for hour, shift in ((6, "night"), (18, "day")):
            h = day * 24 + hour
            step = h * grid.steps_per_hour
            up = sum(int(running[a.asset_id][step]) for a in assets)
            rates = ", ".join(f"{u.unit_id} {throughput[u.unit_id][h]:.0f} m3/h" for u in units)
            ms = h * 3_600_000 + int(rng.integers(0, 15 * 60_000))
            lines.append(_note(ms, start, f"shift handover ({shift} shift) {site_id}: {up} of {len(assets)} "
                                          f"monitored machines running; rates {rates}"))
        if rng.random() < 0.4 and assets:
            asset = assets[int(rng.integers(len(assets)))]
            tag = asset.tags[int(rng.integers(len(asset.tags)))].historian_tag
            ms = day * 86_400_000 + int(rng.integers(0, 86_400_000))
            lines.append(_structured(ms, start, "MEDIUM", "SYSTEM", tag, "ACT", "Controller communication failure"))
            lines.append(_structured(ms + int(rng.integers(5, 120)) * 1000, start, "MEDIUM", "SYSTEM", tag, "RTN",
                                     "Controller communication failure"))
    return [line for line in lines if line.ms < grid.n_steps * step_ms]


def alarm_journal(plant: Plant, grid: TimeGrid, measured: np.ndarray, histories: dict[str, AssetHistory],
                  production: ProductionResult, rng: np.random.Generator) -> dict[date, list[str]]:
    """Journal lines per day, in time order. ``measured`` holds canonical values, one row per tag in
    plant order (asset by asset, tag by tag)."""
    lines: list[_Line] = []
    running: dict[str, np.ndarray] = {}
    row = 0
    for asset in plant.assets:
        history = histories[asset.asset_id]
        shelved = np.zeros(grid.n_steps, dtype=bool)
        up = np.ones(grid.n_steps, dtype=bool)
        for s, e, reason in history.down_intervals():
            lo, hi = max(s, 0), max(min(e, grid.n_steps), 0)
            up[lo:hi] = False
            if reason == "PM":
                shelved[lo:hi] = True
        running[asset.asset_id] = up
        for tag in asset.tags:
            lines.extend(_limit_alarms(tag, measured[row], shelved, grid, rng))
            row += 1
        lines.extend(_asset_lines(asset, history, grid, rng))
    for site in plant.sites:
        lines.extend(_site_lines(plant, site.site_id, grid, production, running, rng))

    end_ms = grid.n_steps * grid.step_minutes * 60_000
    by_day: dict[date, list[str]] = {d: [] for d in grid.day_dates()}
    days = grid.day_dates()
    for line in sorted((ln for ln in lines if 0 <= ln.ms < end_ms), key=lambda ln: (ln.ms, ln.text)):
        by_day[days[line.ms // 86_400_000]].append(line.text)
    return by_day
