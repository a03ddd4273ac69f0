"""Test helper: read a simulated landing folder back, each record with its file and line."""
from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from data_prep.units import MEASUREMENTS


@dataclass(frozen=True)
class EventRecord:
    file: str  # relative to the landing folder
    line: int  # 1-based
    envelope: dict
    body: str

    @property
    def enqueued(self) -> datetime:
        return parse_iso(self.envelope["enqueued_time"])


@dataclass(frozen=True)
class HistorianRecord:
    file: str
    line: int
    text: str
    fields: list[str]


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def parse_historian_time(text: str) -> datetime:
    return datetime.strptime(text, "%m/%d/%Y %H:%M:%S").replace(tzinfo=timezone.utc)


def read_plant(landing: Path) -> dict:
    return json.loads((landing / "_manifest" / "plant.json").read_text())


def read_faults(landing: Path) -> list[dict]:
    return [json.loads(line) for line in (landing / "_manifest" / "injected_faults.jsonl").read_text().splitlines()]


def read_events(landing: Path) -> list[EventRecord]:
    out = []
    for path in sorted((landing / "eventhub" / "telemetry").glob("partition=*/*.jsonl")):
        rel = path.relative_to(landing).as_posix()
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            env = json.loads(line)
            out.append(EventRecord(rel, i, env, env["body"]))
    return out


def read_historian(landing: Path) -> list[HistorianRecord]:
    out = []
    for path in sorted((landing / "historian").glob("*.csv")):
        rel = path.relative_to(landing).as_posix()
        lines = path.read_text(encoding="utf-8").splitlines()
        for i, line in enumerate(lines[1:], 2):
            out.append(HistorianRecord(rel, i, line, next(csv.reader([line]))))
    return out


def to_canonical(value: float, measurement: str, unit: str) -> float:
    scale, offset = MEASUREMENTS[measurement]["accepted"][unit]
    return value * scale + offset


def within_limits(value: float, measurement: str) -> bool:
    low, high = MEASUREMENTS[measurement]["limits"]
    return low <= value <= high


def is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_finite_number(value: object) -> bool:
    return is_number(value) and math.isfinite(value)
