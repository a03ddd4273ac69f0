"""What the plant's instruments report: measurement per ISA prefix, reported units, decimals.

Canonical units, accepted units and physical limits come from :mod:`data_prep.units` (the table in
``docs/landing_formats.md``), so the simulator's good readings and silver's checks share one truth.
Here: converting a canonical series into the unit a device is configured to report, and the units
that do *not* belong to a measurement (for wrong-unit faults).
"""
from __future__ import annotations

import numpy as np

from data_prep.units import MEASUREMENTS

# ISA first letters -> measurement (TI temperature indicator, PI pressure, FI flow, VI vibration,
# II current, SI speed).
MEASUREMENT_BY_PREFIX: dict[str, str] = {
    "TI": "temperature",
    "PI": "pressure",
    "FI": "flow",
    "VI": "vibration",
    "II": "current",
    "SI": "speed",
}

# Resolution a transmitter reports at, per unit: a degF reading has one decimal, an in/s reading
# needs four to carry the same information as mm/s with two.
REPORT_DECIMALS: dict[str, int] = {
    "degC": 1, "degF": 1, "K": 2,
    "barg": 2, "psi": 1, "kPa": 1,
    "m3/h": 1, "mm/s": 2, "in/s": 4, "A": 1, "rpm": 0,
}

# Units seen on mislabelled records besides those of other measurements.
_STRAY_UNITS = ("kg", "%", "kW", "ppm", "Nm3", "V", "Hz")


def canonical_unit(measurement: str) -> str:
    return MEASUREMENTS[measurement]["unit"]


def physical_limits(measurement: str) -> tuple[float, float]:
    low, high = MEASUREMENTS[measurement]["limits"]
    return float(low), float(high)


def to_reported(values: np.ndarray, measurement: str, unit: str) -> np.ndarray:
    """Canonical values expressed in ``unit`` (inverse of silver's ``canonical = v * scale + offset``)."""
    accepted = MEASUREMENTS[measurement]["accepted"]
    if unit not in accepted:
        raise ValueError(f"unit {unit!r} is not a {measurement} unit ({', '.join(accepted)})")
    scale, offset = accepted[unit]
    return (values - offset) / scale


def foreign_units(measurement: str) -> tuple[str, ...]:
    """Units that do not belong to ``measurement``: what a wrong-unit record carries."""
    accepted = set(MEASUREMENTS[measurement]["accepted"])
    others = [u for spec in MEASUREMENTS.values() for u in spec["accepted"] if u not in accepted]
    return tuple(dict.fromkeys([*others, *_STRAY_UNITS]))
