"""Bad records on purpose: how each fault kind turns a good reading into a bad one.

Kinds (``docs/landing_formats.md``): ``malformed_json`` (truncated body), ``missing_field`` (a
required field dropped), ``wrong_type`` (value as a non-numeric string or a bool),
``impossible_value`` (outside the physical limits), ``non_finite`` (NaN or Infinity token),
``exact_duplicate`` (the same body sent again later), ``late_event`` (ts over 6 h before receipt),
``unknown_asset`` (asset not in the registry), ``future_timestamp`` (ts over 1 h after receipt),
``wrong_unit`` (a unit foreign to the tag's measurement). The historian gets the kinds that make
sense for a CSV export. Functions here build the bad text; the exporters place it and record
where it went.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from data_prep.simulator.measurements import canonical_unit, foreign_units, physical_limits

EVENT_FAULT_KINDS: tuple[str, ...] = (
    "malformed_json", "missing_field", "wrong_type", "impossible_value", "non_finite",
    "exact_duplicate", "late_event", "unknown_asset", "future_timestamp", "wrong_unit",
)
# A CSV line has no enqueued time (so no late or future arrival) and no JSON to break.
HISTORIAN_FAULT_KINDS: tuple[str, ...] = (
    "missing_field", "wrong_type", "impossible_value", "non_finite", "exact_duplicate", "unknown_asset", "wrong_unit",
)
# Faults in the historian export are rarer than on the live wire, relative to --bad-fraction.
HISTORIAN_FAULT_SHARE = 0.25

REQUIRED_EVENT_FIELDS = ("asset_id", "tag", "ts", "value", "unit")
LATE_MIN_MS = 6 * 3600 * 1000 + 60_000  # clearly past the documented 6 h
LATE_MAX_MS = 30 * 3600 * 1000
FUTURE_MIN_S = 3600 + 300
FUTURE_MAX_S = 48 * 3600
DUPLICATE_DELAY_MS = (1_000, 20 * 60 * 1000)


def allocate_fault_counts(bad_fraction: float, records: int, kinds: tuple[str, ...],
                          rng: np.random.Generator) -> dict[str, int]:
    """How many bad records of each kind for ``records`` records: ``bad_fraction`` of them, split at
    random over ``kinds`` but with at least one of each whenever the fraction is positive."""
    if bad_fraction <= 0 or records <= 0:
        return {k: 0 for k in kinds}
    total = max(int(round(bad_fraction * records)), len(kinds))
    extra = rng.multinomial(total - len(kinds), [1.0 / len(kinds)] * len(kinds))
    return {k: 1 + int(n) for k, n in zip(kinds, extra)}


@dataclass(frozen=True)
class Reading:
    """A good reading as a device would send it."""

    asset_id: str
    tag: str
    ts: str
    value: float
    unit: str
    measurement: str
    decimals: int
    quality: str | None  # None: the device leaves the optional field out


def event_body(reading: Reading, **override: object) -> str:
    """The JSON body of a reading (json.dumps spelling, the same as good bodies), with overrides;
    an override of ``...`` (Ellipsis) drops the field."""
    body: dict[str, object] = {
        "asset_id": reading.asset_id, "tag": reading.tag, "ts": reading.ts,
        "value": round(reading.value, reading.decimals), "unit": reading.unit,
    }
    if reading.quality is not None:
        body["quality"] = reading.quality
    for key, value in override.items():
        if value is Ellipsis:
            body.pop(key, None)
        else:
            body[key] = value
    return json.dumps(body)


def impossible_value(measurement: str, rng: np.random.Generator) -> float:
    """A canonical value no instrument of the measurement can read: below or above its limits."""
    low, high = physical_limits(measurement)
    if rng.random() < 0.5:
        return round(low - 1.0 - float(rng.uniform(0.05, 2.0)) * max(abs(low), 0.1 * high), 1)
    return round(high * float(rng.uniform(1.5, 10.0)), 1)


def wrong_type_value(value: float, decimals: int, rng: np.random.Generator) -> object:
    """A value of the wrong JSON type: a decimal-comma string, another non-numeric string, or a bool."""
    draw = rng.random()
    if draw < 0.5:
        return f"{value:.{max(decimals, 1)}f}".replace(".", ",")
    if draw < 0.75:
        return bool(rng.random() < 0.5)
    return ["n/a", "ERR", "---", "OVERRANGE"][int(rng.integers(4))]


def non_finite_value(rng: np.random.Generator) -> float:
    return [float("nan"), float("inf"), float("-inf")][int(rng.integers(3))]


def wrong_unit(measurement: str, rng: np.random.Generator) -> str:
    units = foreign_units(measurement)
    return units[int(rng.integers(len(units)))]


def unknown_asset_id(asset_id: str, known: set[str], rng: np.random.Generator) -> str:
    """An id shaped like a real one that the registry does not hold (a device nobody registered)."""
    unit, letter, number = asset_id.split("-")
    for _ in range(1000):
        candidate = f"{unit}-{letter}-{int(number) + int(rng.integers(500, 600))}"
        if rng.random() < 0.3:
            candidate = f"XX{int(rng.integers(1, 10))}-{letter}-{int(rng.integers(100, 999))}"
        if candidate not in known:
            return candidate
    raise RuntimeError(f"could not invent an unknown asset id near {asset_id}")


def corrupt_event(kind: str, reading: Reading, known_assets: set[str],
                  rng: np.random.Generator) -> tuple[str, str, str]:
    """(body, partition key, detail) of a bad event made from a good reading.

    ``late_event``, ``future_timestamp`` and ``exact_duplicate`` are shaped by the exporter (they
    change arrival or repeat a body); everything else is built here.
    """
    key = reading.asset_id
    if kind == "malformed_json":
        good = event_body(reading)
        cut = int(rng.integers(5, len(good) - 1))
        return good[:cut], key, f"body truncated after {cut} of {len(good)} characters"
    if kind == "missing_field":
        name = REQUIRED_EVENT_FIELDS[int(rng.integers(len(REQUIRED_EVENT_FIELDS)))]
        return event_body(reading, **{name: ...}), key, f"required field {name!r} dropped"
    if kind == "wrong_type":
        value = wrong_type_value(reading.value, reading.decimals, rng)
        return event_body(reading, value=value), key, f"value {json.dumps(value)} is not a number"
    if kind == "impossible_value":
        value = impossible_value(reading.measurement, rng)
        unit = canonical_unit(reading.measurement)
        low, high = physical_limits(reading.measurement)
        return (event_body(reading, value=value, unit=unit), key,
                f"{value} {unit} is outside the physical limits [{low}, {high}] of {reading.measurement}")
    if kind == "non_finite":
        value = non_finite_value(rng)
        return event_body(reading, value=value), key, f"value {json.dumps(value)} is not finite"
    if kind == "unknown_asset":
        other = unknown_asset_id(reading.asset_id, known_assets, rng)
        return event_body(reading, asset_id=other), other, f"asset {other} is not in the device registry"
    if kind == "wrong_unit":
        unit = wrong_unit(reading.measurement, rng)
        return event_body(reading, unit=unit), key, f"unit {unit!r} is not a {reading.measurement} unit"
    raise ValueError(f"fault kind {kind!r} is not built from a single reading")


def corrupt_historian_fields(kind: str, fields: list[str], measurement: str, decimals: int,
                             known_tags: set[str], rng: np.random.Generator) -> tuple[list[str], str]:
    """(fields, detail) of a bad historian line from a good one's TagName, TimeStamp, Value,
    EngUnits, Quality."""
    tag_name, stamp, value, unit, quality = fields
    if kind == "missing_field":
        which = int(rng.integers(4))
        names = ("TagName", "TimeStamp", "Value", "EngUnits")
        out = list(fields)
        out[which] = ""
        return out, f"field {names[which]} is empty"
    if kind == "wrong_type":
        text = wrong_type_value(float(value), decimals, rng)
        text = str(text).upper() if isinstance(text, bool) else str(text)
        return [tag_name, stamp, text, unit, quality], f"Value {text!r} is not a number"
    if kind == "impossible_value":
        bad = impossible_value(measurement, rng)
        canon = canonical_unit(measurement)
        return [tag_name, stamp, f"{bad}", canon, quality], f"{bad} {canon} is outside the physical limits of {measurement}"
    if kind == "non_finite":
        text = ["NaN", "Inf", "-Inf", "Infinity", "nan"][int(rng.integers(5))]
        return [tag_name, stamp, text, unit, quality], f"Value {text} is not finite"
    if kind == "unknown_asset":
        area, equipment, loop = tag_name.split(".")
        other = tag_name
        while other in known_tags:
            other = f"{area}.{equipment[0]}{int(equipment[1:]) + int(rng.integers(500, 600))}.{loop}"
        return [other, stamp, value, unit, quality], f"tag {other} belongs to no registered asset"
    if kind == "wrong_unit":
        bad_unit = wrong_unit(measurement, rng)
        return [tag_name, stamp, value, bad_unit, quality], f"unit {bad_unit!r} is not a {measurement} unit"
    raise ValueError(f"fault kind {kind!r} does not apply to a historian line")
