"""Measurements: canonical unit, accepted units with their conversion, physical limits.

Silver holds every reading in its measurement's canonical unit; ``source_unit`` keeps what the
device reported. A unit outside a measurement's accepted list is a wrong-unit fault, not a
conversion. Limits are physical (what the instrument can possibly read), not process alarms.
"""
from __future__ import annotations

# measurement -> canonical unit, physical limits in that unit, {accepted unit: (scale, offset)}
# with canonical = value * scale + offset.
MEASUREMENTS: dict[str, dict] = {
    "temperature": {"unit": "degC", "limits": (-50.0, 1200.0),
                    "accepted": {"degC": (1.0, 0.0), "degF": (5.0 / 9.0, -160.0 / 9.0), "K": (1.0, -273.15)}},
    "pressure": {"unit": "barg", "limits": (-1.0, 250.0),
                 "accepted": {"barg": (1.0, 0.0), "psi": (0.0689476, 0.0), "kPa": (0.01, 0.0)}},
    "flow": {"unit": "m3/h", "limits": (0.0, 10000.0), "accepted": {"m3/h": (1.0, 0.0)}},
    "vibration": {"unit": "mm/s", "limits": (0.0, 100.0), "accepted": {"mm/s": (1.0, 0.0), "in/s": (25.4, 0.0)}},
    "current": {"unit": "A", "limits": (0.0, 2000.0), "accepted": {"A": (1.0, 0.0)}},
    "speed": {"unit": "rpm", "limits": (0.0, 30000.0), "accepted": {"rpm": (1.0, 0.0)}},
}


def conversion_rows() -> list[tuple[str, str, str, float, float, float, float]]:
    """(measurement, source unit, canonical unit, scale, offset, low limit, high limit) per accepted unit."""
    return [
        (m, unit, spec["unit"], scale, offset, *spec["limits"])
        for m, spec in MEASUREMENTS.items()
        for unit, (scale, offset) in spec["accepted"].items()
    ]


def to_canonical(value: float, measurement: str, unit: str) -> float:
    """Convert one reading; ValueError naming the unit if it does not belong to the measurement."""
    spec = MEASUREMENTS.get(measurement)
    if spec is None:
        raise ValueError(f"unknown measurement {measurement!r}")
    if unit not in spec["accepted"]:
        raise ValueError(f"unit {unit!r} is not a {measurement} unit ({', '.join(spec['accepted'])})")
    scale, offset = spec["accepted"][unit]
    return value * scale + offset
