"""One simulated plant, end to end: config in, a landing folder of source-system files out.

:func:`simulate` writes every family of ``docs/landing_formats.md`` into an empty folder. The same
config gives byte-identical files: every random draw comes from a generator seeded by the config
seed and a fixed stream number per component, and no wall-clock time is read anywhere.
"""
from __future__ import annotations

import json
import numbers
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np

from data_prep.simulator import faults as F
from data_prep.simulator.alarms import alarm_journal
from data_prep.simulator.asset_history import AssetHistory, simulate_asset_history
from data_prep.simulator.crm import CrmExtract, build_crm
from data_prep.simulator.master_data import (
    MasterData,
    WorkOrder,
    build_master_data,
    build_work_orders,
    work_order_files,
)
from data_prep.simulator.measurements import to_reported
from data_prep.simulator.plant import FAILURE_MODES, SAFE_ENVELOPES, UNIT_TYPES, Plant, build_plant
from data_prep.simulator.production import (
    CRUDES_AFTER_DRIFT,
    CRUDES_BEFORE_DRIFT,
    ProductionResult,
    column_decimals,
    mes_columns,
    simulate_production,
)
from data_prep.simulator.sensors import ambient_temperature, simulate_asset_signals
from data_prep.simulator.telemetry_export import HUB, PARTITIONS, TagTable, write_event_log, write_historian
from data_prep.simulator.timegrid import TimeGrid, iso_z

MAX_BAD_FRACTION = 0.5
RECALIBRATED_SHARE = 0.3  # of temperature tags, at the drift date
RECALIBRATION_OFFSET_C = (2.0, 6.0)

# Random stream per component: adding draws to one component leaves the others' data unchanged.
_STREAMS = {"plant": 1, "history": 2, "production": 3, "weather": 4, "signals": 5, "drift": 6, "historian": 7,
            "events": 8, "alarms": 9, "master": 10, "work_orders": 11, "crm": 12}


@dataclass(frozen=True)
class SimulationConfig:
    """What to simulate. Validated on construction; errors name the bad value."""

    assets: int = 20
    days: int = 14
    seed: int = 0
    bad_fraction: float = 0.0
    drift_after: date | None = None
    start: date = date(2026, 1, 1)
    interval_minutes: int = 5
    historian_days: int | None = None  # None: the first half of the days (rounded down)

    def __post_init__(self) -> None:
        if not isinstance(self.assets, numbers.Integral) or self.assets < 1:
            raise ValueError(f"--assets must be >= 1, got {self.assets}")
        if not isinstance(self.days, numbers.Integral) or self.days < 1:
            raise ValueError(f"--days must be >= 1, got {self.days}")
        if not isinstance(self.seed, numbers.Integral) or self.seed < 0:
            raise ValueError(f"--seed must be a non-negative integer, got {self.seed}")
        if not (0.0 <= self.bad_fraction <= MAX_BAD_FRACTION):  # also rejects NaN
            raise ValueError(f"--bad-fraction must be within [0, {MAX_BAD_FRACTION}], got {self.bad_fraction}")
        if not isinstance(self.start, date):
            raise ValueError(f"--start must be a date, got {self.start!r}")
        if not isinstance(self.interval_minutes, numbers.Integral) or self.interval_minutes < 1 or 60 % self.interval_minutes:
            raise ValueError(f"--interval-minutes must divide an hour (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60), "
                             f"got {self.interval_minutes}")
        if self.historian_days is not None and not (0 <= self.historian_days <= self.days):
            raise ValueError(f"--historian-days must be within [0, {self.days}], got {self.historian_days}")
        if self.drift_after is not None:
            if not isinstance(self.drift_after, date):
                raise ValueError(f"--drift-after must be a date, got {self.drift_after!r}")
            last = self.end - timedelta(days=1)
            if not (self.start <= self.drift_after <= last):
                raise ValueError(f"--drift-after {self.drift_after.isoformat()} is outside the simulated period "
                                 f"{self.start.isoformat()} .. {last.isoformat()}")

    @property
    def end(self) -> date:
        """The first day after the period."""
        return self.start + timedelta(days=self.days)

    @property
    def resolved_historian_days(self) -> int:
        return self.days // 2 if self.historian_days is None else self.historian_days


@dataclass(frozen=True)
class SimulationSummary:
    """What a run wrote: counts per file family and the truth it planted."""

    landing: Path
    files_written: int
    files_by_family: dict[str, int]
    events: int  # envelopes in the event log, good and bad
    readings: int  # sensor readings simulated (every tag at every step)
    historian_lines: int
    alarm_lines: int
    production_records: int
    work_orders: int
    failures: int
    preventive_maintenance: int
    faults_by_kind: dict[str, int] = field(default_factory=dict)

    def report(self) -> list[str]:
        """Human-readable lines for the command's output."""
        families = ", ".join(f"{k} {v}" for k, v in self.files_by_family.items())
        faults = ", ".join(f"{k} {v}" for k, v in self.faults_by_kind.items() if v) or "none"
        return [
            f"simulate: wrote {self.files_written} files to {self.landing} ({families})",
            f"  readings {self.readings}, events {self.events}, historian lines {self.historian_lines}, "
            f"alarm lines {self.alarm_lines}, production records {self.production_records}",
            f"  failures {self.failures}, preventive maintenance {self.preventive_maintenance}, "
            f"work orders {self.work_orders}",
            f"  injected faults {sum(self.faults_by_kind.values())}: {faults}",
        ]


def _rng(seed: int, stream: str, *extra: int) -> np.random.Generator:
    return np.random.default_rng([seed, _STREAMS[stream], *extra])


def _check_landing(landing: Path) -> None:
    if landing.exists() and not landing.is_dir():
        raise ValueError(f"landing {landing} is a file, not a folder")
    if landing.is_dir() and any(landing.iterdir()):
        # The event log appends and the other files would mix two plants: start from nothing.
        raise ValueError(f"landing folder {landing} is not empty; simulate writes a fresh landing folder")


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _mes_files(production: ProductionResult, grid: TimeGrid) -> dict[date, str]:
    columns = mes_columns()
    decimals = column_decimals()
    records = production.records
    fmt = {c: f"%.{decimals[c]}f" for c in columns[2:]}
    out: dict[date, str] = {}
    per_day = 24 * len(production.load)
    for d, day in enumerate(grid.day_dates()):
        block = records.iloc[d * per_day:(d + 1) * per_day]
        cols = {c: block[c].tolist() for c in columns}
        lines = [",".join(columns)]
        for i in range(len(block)):
            cells = [cols["unit_id"][i], cols["ts"][i]]
            for c in columns[2:]:
                v = cols[c][i]
                cells.append("" if v != v else fmt[c] % v)  # NaN: not measured on this unit type
            lines.append(",".join(cells))
        out[day] = "\n".join(lines) + "\n"
    return out


def _drift_truth(plant: Plant, grid: TimeGrid, config: SimulationConfig, production: ProductionResult,
                 rng: np.random.Generator) -> tuple[dict | None, dict[int, tuple[int, float]]]:
    """(plant.json drift entry, tag row -> (first step, offset degC)) for the sensor recalibration."""
    if config.drift_after is None:
        return None, {}
    step = (config.drift_after - config.start).days * grid.steps_per_day
    rows = [(i, a, t) for i, (a, t) in enumerate((a, t) for a in plant.assets for t in a.tags)
            if t.measurement == "temperature"]
    n = max(1, int(round(RECALIBRATED_SHARE * len(rows)))) if rows else 0
    picked = sorted(rng.choice(len(rows), size=n, replace=False).tolist()) if n else []
    offsets: dict[int, tuple[int, float]] = {}
    recal = []
    for k in picked:
        row, asset, tag = rows[k]
        offset = round(float(rng.uniform(*RECALIBRATION_OFFSET_C)) * (1 if rng.random() < 0.6 else -1), 2)
        offsets[row] = (step, offset)
        recal.append({"asset_id": asset.asset_id, "tag": tag.tag, "offset": offset, "unit": "degC"})
    hour = (config.drift_after - config.start).days * 24
    feeds_before, feeds_after = {}, {}
    for unit in plant.units:
        rec = production.records[production.records["unit_id"] == unit.unit_id]
        for feed in UNIT_TYPES[unit.unit_type].feeds:
            before, after = rec[feed].to_numpy()[:hour], rec[feed].to_numpy()[hour:]
            feeds_before.setdefault(unit.unit_id, {})[feed] = round(float(before.mean()), 3) if len(before) else None
            feeds_after.setdefault(unit.unit_id, {})[feed] = round(float(after.mean()), 3)
    entry = {
        "after": iso_z(grid.time_at(step)),
        "crude_slate_before": sorted(CRUDES_BEFORE_DRIFT),
        "crude_slate_after": sorted(CRUDES_AFTER_DRIFT),
        "feed_mean_before": feeds_before,
        "feed_mean_after": feeds_after,
        "sensor_recalibration": recal,
    }
    return entry, offsets


def _plant_json(plant: Plant, grid: TimeGrid, config: SimulationConfig, histories: dict[str, AssetHistory],
                production: ProductionResult, master: MasterData, orders: list[WorkOrder], crm: CrmExtract,
                drift: dict | None, historian_days: int, faults: dict[str, int]) -> str:
    """The truth document ``_manifest/plant.json``."""
    t = grid.time_at
    failures, maintenance, episodes = [], [], []
    # Orders were made from the histories in time order, so the n-th CM (PM) order of an asset is
    # its n-th failure (maintenance started in the period).
    cm: dict[tuple[str, str], list] = {}
    for o in orders:
        cm.setdefault((o.asset_id, o.wo_type), []).append(o)
    for a in plant.assets:
        h = histories[a.asset_id]
        cms = iter(cm.get((a.asset_id, "CM"), []))
        for f in h.failures:
            order = next(cms, None)
            failures.append({
                "asset_id": a.asset_id, "failure_code": f.failure_code,
                "onset": iso_z(t(f.onset_step)), "failed_at": iso_z(t(f.failed_step)),
                "restarted_at": iso_z(t(f.restart_step)), "lead_time_hours": round((f.failed_step - f.onset_step) * grid.step_minutes / 60, 2),
                "downtime_hours": round((f.restart_step - f.failed_step) * grid.step_minutes / 60, 2),
                "work_order": order.number if order else None,
            })
        pms = iter(cm.get((a.asset_id, "PM"), []))
        for m in h.maintenance:
            order = next(pms, None) if m.start_step >= 0 else None
            maintenance.append({"asset_id": a.asset_id, "kind": m.kind, "start": iso_z(t(m.start_step)),
                                "end": iso_z(t(m.end_step)), "work_order": order.number if order else None})
        for e in h.episodes:
            episodes.append({"asset_id": a.asset_id, "failure_code": e.failure_code, "onset": iso_z(t(e.onset_step)),
                             "would_fail_at": iso_z(t(e.onset_step + e.lead_steps)), "ended": iso_z(t(e.end_step)),
                             "outcome": e.outcome,
                             "signature": [{"tag": a.tag_by_role(role).tag, "role": role, "kind": kind, "magnitude": mag}
                                           for role, kind, mag in e.effects]})
    failures.sort(key=lambda f: (f["failed_at"], f["asset_id"]))
    maintenance.sort(key=lambda m: (m["start"], m["asset_id"]))
    doc = {
        "simulator": "data_prep.simulator",
        "config": {"assets": config.assets, "days": config.days, "seed": config.seed,
                   "bad_fraction": config.bad_fraction,
                   "drift_after": config.drift_after.isoformat() if config.drift_after else None,
                   "start": config.start.isoformat(), "interval_minutes": config.interval_minutes,
                   "historian_days": historian_days},
        "period": {"start": iso_z(grid.start_dt), "end": iso_z(grid.end_dt),
                   "historian": [iso_z(grid.start_dt), iso_z(grid.start_dt + timedelta(days=historian_days))],
                   "live": [iso_z(grid.start_dt + timedelta(days=historian_days)), iso_z(grid.end_dt)],
                   "eventhub": {"hub": HUB, "partitions": PARTITIONS, "partition_key": "asset_id"}},
        "sites": [asdict(s) for s in plant.sites],
        "units": [{**asdict(u), "settings": list(SAFE_ENVELOPES[u.unit_type]), "feeds": list(UNIT_TYPES[u.unit_type].feeds),
                   "quality": UNIT_TYPES[u.unit_type].quality} for u in plant.units],
        "assets": [{
            "asset_id": a.asset_id, "asset_name": a.asset_name, "asset_type": a.asset_type, "unit_id": a.unit_id,
            "unit_type": a.unit_type, "site_id": a.site_id, "equipment": a.equipment,
            "cmms_equip_no": master.cmms_ids[a.asset_id], "manufacturer": a.manufacturer, "model": a.model,
            "install_date": a.install_date.isoformat(), "sends_quality": a.sends_quality, "params": a.params,
            "tags": [{**asdict(tag)} for tag in a.tags],
        } for a in plant.assets],
        "cmms_extra_equipment": list(master.extra_equipment),
        "failure_modes": {atype: [{"code": m.code, "description": m.description,
                                   "mean_days_to_onset": m.mean_days_to_onset, "lead_days": list(m.lead_days),
                                   "downtime_hours": list(m.downtime_hours),
                                   "signature": [asdict(s) for s in m.signature]} for m in modes]
                          for atype, modes in FAILURE_MODES.items()},
        "failures": failures,
        "maintenance": maintenance,
        "degradation_episodes": episodes,
        "safe_envelopes": SAFE_ENVELOPES,
        "production": {"cargoes": [asdict(c) for c in production.cargoes]},
        "drift": drift,
        "crm": {"duplicate_accounts": crm.duplicates},
        "injected_faults": faults,
    }
    return json.dumps(doc, indent=2) + "\n"


def simulate(landing: Path, config: SimulationConfig) -> SimulationSummary:
    """Simulate the plant of ``config`` and write its source files into the empty folder ``landing``."""
    landing = Path(landing)
    _check_landing(landing)
    landing.mkdir(parents=True, exist_ok=True)
    seed = config.seed
    grid = TimeGrid(config.start, config.days, config.interval_minutes)
    historian_days = config.resolved_historian_days

    plant = build_plant(config.assets, _rng(seed, "plant"))
    histories = {a.asset_id: simulate_asset_history(a, grid, _rng(seed, "history", i)) for i, a in enumerate(plant.assets)}
    drift_hour = (config.drift_after - config.start).days * 24 if config.drift_after else None
    production = simulate_production(plant, grid, histories, drift_hour, _rng(seed, "production"))
    drift, offsets = _drift_truth(plant, grid, config, production, _rng(seed, "drift"))

    hour_centres = np.arange(config.days * 24) + 0.5
    ambient = {s.site_id: ambient_temperature(s, grid, _rng(seed, "weather", k)) for k, s in enumerate(plant.sites)}
    table = TagTable.from_plant(plant)
    measured = np.empty((len(table), grid.n_steps))
    reported = np.empty_like(measured)
    row = 0
    for i, a in enumerate(plant.assets):
        site = plant.site(a.site_id)
        load = np.interp(grid.hours, hour_centres, production.load[a.unit_id])
        sp = production.heater_setpoint.get(a.unit_id)
        heater = np.interp(grid.hours, hour_centres, sp) if sp is not None else None
        signals = simulate_asset_signals(a, histories[a.asset_id], grid, load, heater, ambient[a.site_id],
                                         site.ambient_mean_c, _rng(seed, "signals", i))
        for tag in a.tags:
            values = signals[tag.tag]
            if row in offsets:  # recalibrated transmitter reads differently from the drift date on
                first, offset = offsets[row]
                values = values.copy()
                values[first:] += offset
            measured[row] = values
            reported[row] = to_reported(values, tag.measurement, tag.reported_unit)
            row += 1

    files: dict[str, list[Path]] = {}
    hist_files, hist_lines, hist_faults = write_historian(landing, table, reported, grid, historian_days,
                                                          config.bad_fraction, _rng(seed, "historian"))
    files["historian"] = hist_files
    segments, n_events, event_faults = write_event_log(landing, table, reported, grid,
                                                       historian_days * grid.steps_per_day, config.bad_fraction,
                                                       _rng(seed, "events"))
    files["eventhub"] = segments

    journal = alarm_journal(plant, grid, measured, histories, production, _rng(seed, "alarms"))
    files["alarms"] = [_write(landing / "alarms" / f"{d.isoformat()}.log", "".join(f"{ln}\n" for ln in lines))
                       for d, lines in journal.items()]
    files["mes"] = [_write(landing / "mes" / f"production_{d.isoformat()}.csv", text)
                    for d, text in _mes_files(production, grid).items()]

    master = build_master_data(plant, _rng(seed, "master"))
    files["iot"] = [_write(landing / "iot" / "devices.json", master.devices_json)]
    orders = build_work_orders(plant, histories, master.cmms_ids, grid, _rng(seed, "work_orders"))
    files["cmms"] = [_write(landing / "cmms" / "equipment.csv", master.equipment_csv)]
    files["cmms"] += [_write(landing / "cmms" / f"work_orders_{month}.csv", text)
                      for month, text in work_order_files(orders, grid).items()]
    crm = build_crm(grid, _rng(seed, "crm"))
    files["crm"] = [_write(landing / "crm" / f"accounts_{i + 1:03d}.json", page) for i, page in enumerate(crm.account_pages)]
    files["crm"] += [_write(landing / "crm" / f"orders_{i + 1:03d}.json", page) for i, page in enumerate(crm.order_pages)]

    fault_records = sorted(hist_faults + event_faults, key=lambda r: (r["source"], r["file"], r["line"]))
    faults_by_kind = {k: 0 for k in F.EVENT_FAULT_KINDS}
    for r in fault_records:
        faults_by_kind[r["kind"]] += 1
    files["_manifest"] = [
        _write(landing / "_manifest" / "plant.json",
               _plant_json(plant, grid, config, histories, production, master, orders, crm, drift, historian_days,
                           faults_by_kind)),
        _write(landing / "_manifest" / "injected_faults.jsonl", "".join(json.dumps(r) + "\n" for r in fault_records)),
    ]
    alarm_lines = sum(len(v) for v in journal.values())
    return SimulationSummary(
        landing=landing,
        files_written=sum(len(v) for v in files.values()),
        files_by_family={k: len(v) for k, v in files.items()},
        events=n_events,
        readings=len(table) * grid.n_steps,
        historian_lines=hist_lines,
        alarm_lines=alarm_lines,
        production_records=len(production.records),
        work_orders=len(orders),
        failures=sum(len(h.failures) for h in histories.values()),
        preventive_maintenance=sum(1 for h in histories.values() for m in h.maintenance if m.start_step >= 0),
        faults_by_kind=faults_by_kind,
    )
