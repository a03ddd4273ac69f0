"""Telemetry out of the simulator: the historian CSV export and the live Event Hubs log.

The earlier days leave as ``historian/<YYYY-MM-DD>.csv`` (one reading per line, sorted by time
then tag); the later days as events in ``eventhub/telemetry`` written through
:class:`~data_prep.event_log.LocalEventLog`, one ``send_batch`` per day of enqueued time. Good
events arrive 0-30 s after their timestamp, in order of arrival. With a bad fraction, a share of
records is replaced by (or, for duplicates, joined by) bad ones built in :mod:`faults`, and each
bad record's file and 1-based line is returned for ``_manifest/injected_faults.jsonl``.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np

from data_prep.event_log import EventData, LocalEventLog, partition_for
from data_prep.simulator import faults as F
from data_prep.simulator.measurements import REPORT_DECIMALS
from data_prep.simulator.plant import Plant
from data_prep.simulator.timegrid import TimeGrid

HISTORIAN_HEADER = "TagName,TimeStamp,Value,EngUnits,Quality"
HUB = "telemetry"
PARTITIONS = 4
MAX_NETWORK_DELAY_MS = 29_950  # good events are enqueued within 30 s of their timestamp
MIN_NETWORK_DELAY_MS = 50
UNCERTAIN_SHARE = 0.0003  # historian interpolated/substituted values flagged by the source
DUPLICATE_LINE_GAP = (1, 300)  # a duplicated historian line reappears this many lines later
DAY_MS = 86_400_000

_FMT = {d: f"%.{d}f" for d in range(8)}


@dataclass(frozen=True)
class TagTable:
    """Every tag of the plant in one order (row order of the value arrays)."""

    asset_ids: tuple[str, ...]
    tags: tuple[str, ...]
    historian_tags: tuple[str, ...]
    measurements: tuple[str, ...]
    reported_units: tuple[str, ...]
    decimals: tuple[int, ...]
    sends_quality: tuple[bool, ...]

    @classmethod
    def from_plant(cls, plant: Plant) -> "TagTable":
        rows = [(a, t) for a in plant.assets for t in a.tags]
        return cls(
            asset_ids=tuple(a.asset_id for a, _ in rows),
            tags=tuple(t.tag for _, t in rows),
            historian_tags=tuple(t.historian_tag for _, t in rows),
            measurements=tuple(t.measurement for _, t in rows),
            reported_units=tuple(t.reported_unit for _, t in rows),
            decimals=tuple(REPORT_DECIMALS[t.reported_unit] for _, t in rows),
            sends_quality=tuple(a.sends_quality for a, _ in rows),
        )

    def __len__(self) -> int:
        return len(self.tags)

    def reading(self, t: int, ts: str, value: float) -> F.Reading:
        return F.Reading(self.asset_ids[t], self.tags[t], ts, float(value), self.reported_units[t],
                         self.measurements[t], self.decimals[t], "good" if self.sends_quality[t] else None)


def _fault_record(kind: str, source: str, path: Path, landing: Path, line: int, detail: str) -> dict:
    return {"kind": kind, "source": source, "file": path.relative_to(landing).as_posix(), "line": int(line),
            "detail": detail}


def _csv_line(fields: list[str]) -> str:
    """Fields joined as CSV, quoting only the fields that need it (a decimal comma, a quote)."""
    out = []
    for f in fields:
        if any(c in f for c in ',"\n'):
            f = '"' + f.replace('"', '""') + '"'
        out.append(f)
    return ",".join(out)


# ---------------------------------------------------------------------------------------------
# Historian
# ---------------------------------------------------------------------------------------------


def write_historian(landing: Path, table: TagTable, values: np.ndarray, grid: TimeGrid, n_days: int,
                    bad_fraction: float, rng: np.random.Generator) -> tuple[list[Path], int, list[dict]]:
    """Write the first ``n_days`` of readings as historian CSVs; (files, data lines, faults)."""
    if n_days <= 0:
        return [], 0, []
    folder = landing / "historian"
    folder.mkdir(parents=True, exist_ok=True)
    spd, n_tags = grid.steps_per_day, len(table)
    order = sorted(range(n_tags), key=lambda t: table.historian_tags[t])
    stamps = grid.historian_strings()
    known_tags = set(table.historian_tags)
    per_day = spd * n_tags

    total = n_days * per_day
    counts = F.allocate_fault_counts(bad_fraction * F.HISTORIAN_FAULT_SHARE, total, F.HISTORIAN_FAULT_KINDS, rng)
    n_bad = sum(counts.values())
    chosen = rng.choice(total, size=min(n_bad, total), replace=False) if n_bad else np.empty(0, dtype=np.int64)
    kinds = [k for k, n in counts.items() for _ in range(n)][: len(chosen)]
    by_day: dict[int, dict[int, str]] = {}
    for idx, kind in zip(chosen.tolist(), kinds):
        by_day.setdefault(idx // per_day, {})[idx % per_day] = kind

    files, n_lines, records = [], 0, []
    for day, day_date in enumerate(grid.day_dates()[:n_days]):
        s0 = day * spd
        block = values[:, s0:s0 + spd]
        texts = [[_FMT[table.decimals[t]] % v for v in block[t].tolist()] for t in range(n_tags)]
        fields = [(table.historian_tags[t], table.reported_units[t], t) for t in order]
        lines = [f"{h},{stamps[s0 + k]},{texts[t][k]},{u},Good" for k in range(spd) for h, u, t in fields]
        for local in rng.choice(len(lines), size=int(rng.binomial(len(lines), UNCERTAIN_SHARE)), replace=False).tolist():
            lines[local] = lines[local][: -len("Good")] + "Uncertain"

        marks: dict[int, tuple[str, str]] = {}
        inserts: dict[int, list[tuple[str, str, str]]] = {}
        for local, kind in sorted(by_day.get(day, {}).items()):
            t = order[local % n_tags]
            if kind == "exact_duplicate":
                after = min(len(lines) - 1, local + int(rng.integers(*DUPLICATE_LINE_GAP)))
                inserts.setdefault(after, []).append((lines[local], kind, f"copy of line {local + 2}"))
            else:
                bad, detail = F.corrupt_historian_fields(kind, lines[local].split(","), table.measurements[t],
                                                         table.decimals[t], known_tags, rng)
                lines[local] = _csv_line(bad)
                marks[local] = (kind, detail)

        path = folder / f"{day_date.isoformat()}.csv"
        out = [HISTORIAN_HEADER]
        for i, line in enumerate(lines):
            out.append(line)
            if i in marks:
                records.append(_fault_record(marks[i][0], "historian", path, landing, len(out), marks[i][1]))
            for copy, kind, detail in inserts.get(i, ()):
                out.append(copy)
                records.append(_fault_record(kind, "historian", path, landing, len(out), detail))
        path.write_text("\n".join(out) + "\n", encoding="utf-8")
        files.append(path)
        n_lines += len(out) - 1
    return files, n_lines, records


# ---------------------------------------------------------------------------------------------
# Live events
# ---------------------------------------------------------------------------------------------


@dataclass
class _BadEvent:
    kind: str
    body: str | None  # None: the good body (late events and duplicates carry it unchanged)
    key: str | None  # partition key when it is not the tag's asset
    detail: str


def write_event_log(landing: Path, table: TagTable, values: np.ndarray, grid: TimeGrid, live_start: int,
                    bad_fraction: float, rng: np.random.Generator) -> tuple[list[Path], int, list[dict]]:
    """Send the readings from step ``live_start`` on as events; (segments, events, faults)."""
    n_tags = len(table)
    live_steps = grid.n_steps - live_start
    n_live = live_steps * n_tags
    if n_live <= 0:
        return [], 0, []
    step_ms = grid.step_minutes * 60_000
    iso = grid.iso_strings()
    # Event id e <-> (step live_start + e // n_tags, tag e % n_tags).
    ids = np.arange(n_live, dtype=np.int64)
    enq = (live_start + ids // n_tags) * step_ms + rng.integers(MIN_NETWORK_DELAY_MS, MAX_NETWORK_DELAY_MS + 1, n_live)

    def reading(e: int) -> F.Reading:
        t, s = e % n_tags, live_start + e // n_tags
        return table.reading(t, iso[s], round(float(values[t, s]), table.decimals[t]))

    counts = F.allocate_fault_counts(bad_fraction, n_live, F.EVENT_FAULT_KINDS, rng)
    n_bad = min(sum(counts.values()), n_live)
    chosen = rng.choice(n_live, size=n_bad, replace=False).tolist() if n_bad else []
    kinds = [k for k, n in counts.items() for _ in range(n)][:n_bad]
    known_assets = set(table.asset_ids)
    bad: dict[int, _BadEvent] = {}
    dup_sources: list[int] = []
    for e, kind in zip(chosen, kinds):
        r = reading(e)
        if kind == "exact_duplicate":
            dup_sources.append(e)  # the original stays good; its copy is the bad record
        elif kind == "late_event":
            enq[e] += int(rng.integers(F.LATE_MIN_MS, F.LATE_MAX_MS))
            bad[e] = _BadEvent(kind, None, None, "")  # detail once the arrival is final
        elif kind == "future_timestamp":
            shift = int(rng.integers(F.FUTURE_MIN_S, F.FUTURE_MAX_S))
            shift += 7 if shift % (step_ms // 1000) == 0 else 0  # off the sample grid: no collision
            when = grid.time_at(live_start + e // n_tags) + timedelta(seconds=shift)
            ts = when.strftime("%Y-%m-%dT%H:%M:%SZ")
            bad[e] = _BadEvent(kind, F.event_body(r, ts=ts), None,
                               f"ts {ts} is {shift / 3600:.2f} h after the reading was sent")
        else:
            body, key, detail = F.corrupt_event(kind, r, known_assets, rng)
            bad[e] = _BadEvent(kind, body, key if key != r.asset_id else None, detail)

    # Copies of good events, sent again a little later as new events.
    n_dup = len(dup_sources)
    dup_src = np.array(dup_sources, dtype=np.int64)
    dup_enq = enq[dup_src] + rng.integers(*F.DUPLICATE_DELAY_MS, size=n_dup) if n_dup else np.empty(0, dtype=np.int64)
    for j, src in enumerate(dup_sources):
        bad[n_live + j] = _BadEvent("exact_duplicate", None, None,
                                    f"same body as the event sent {int(dup_enq[j] - enq[src])} ms earlier")
    all_enq = np.concatenate([enq, dup_enq])
    source = np.concatenate([ids, dup_src])  # the reading each event carries
    order = np.argsort(all_enq, kind="stable")

    for e, b in bad.items():
        if b.kind == "late_event":
            late_h = (all_enq[e] - (live_start + e // n_tags) * step_ms) / 3_600_000
            b.detail = f"ts {reading(e).ts} enqueued {late_h:.2f} h later"

    log = LocalEventLog(landing / "eventhub", hub=HUB, partition_count=PARTITIONS)
    start = grid.start_dt
    props: dict[str, dict] = {}
    parts: dict[str, int] = {}

    def props_for(key: str) -> dict:
        if key not in props:
            props[key] = {"content-type": "application/json", "device_id": key}
            parts[key] = partition_for(key, PARTITIONS)
        return props[key]

    prefix = [f'{{"asset_id": "{a}", "tag": "{t}", "ts": "' for a, t in zip(table.asset_ids, table.tags)]
    suffix = [f', "unit": "{u}", "quality": "good"}}' if q else f', "unit": "{u}"}}'
              for u, q in zip(table.reported_units, table.sends_quality)]
    fmt = [_FMT[d] for d in table.decimals]

    day_of = all_enq[order] // DAY_MS
    bounds = np.flatnonzero(np.diff(day_of)) + 1
    segments: list[Path] = []
    records: list[dict] = []
    for batch in np.split(order, bounds):
        src = source[batch]
        tag_idx = (src % n_tags).tolist()
        steps = (live_start + src // n_tags).tolist()
        vals = values[src % n_tags, live_start + src // n_tags].tolist()
        bodies = [prefix[t] + iso[s] + '", "value": ' + (fmt[t] % v) + suffix[t] for t, s, v in zip(tag_idx, steps, vals)]
        keys = [table.asset_ids[t] for t in tag_idx]
        batch_list = batch.tolist()
        bad_positions = [i for i, e in enumerate(batch_list) if e in bad]
        for i in bad_positions:
            b = bad[batch_list[i]]
            if b.body is not None:
                bodies[i] = b.body
            if b.key is not None:
                keys[i] = b.key
        events = [EventData(body, props_for(k), k) for body, k in zip(bodies, keys)]
        enqueued = [start + timedelta(milliseconds=int(ms)) for ms in all_enq[batch].tolist()]
        written = log.send_batch(events, enqueued)
        segments.extend(written)
        if bad_positions:
            path_of = {int(p.parent.name.split("=")[1]): p for p in written}
            part_arr = np.array([parts[k] for k in keys])
            line_in_part = {p: np.cumsum(part_arr == p) for p in path_of}
            for i in bad_positions:
                b = bad[batch_list[i]]
                p = int(part_arr[i])
                records.append(_fault_record(b.kind, "eventhub", path_of[p], landing, int(line_in_part[p][i]), b.detail))
    return segments, n_live + n_dup, records
