"""Asset master data as two systems hold it, and the CMMS work orders.

The IoT device registry (``iot/devices.json``) spells assets ``CDU1-P-101`` and lists their tags;
the CMMS (``cmms/equipment.csv``) spells the same machines its own way (``P101-CDU1``,
``p-101 (cdu1)``, now and then ``CDU1-PMP-101``), abbreviates descriptions, and holds a few
machines the registry has never heard of. Work orders follow failures (CM) and preventive
maintenance (PM) from the asset histories, using the CMMS spelling.
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from data_prep.simulator.asset_history import AssetHistory
from data_prep.simulator.plant import ASSET_TYPES, FAILURE_MODES, Asset, Plant
from data_prep.simulator.timegrid import TimeGrid, minute_text

EQUIPMENT_HEADER = ("EquipNo", "Description", "Manufacturer", "Model", "PlantCode", "InstallDate", "Criticality")
WORK_ORDER_HEADER = ("WONumber", "EquipNo", "WOType", "FailureCode", "Priority", "ReportedAt", "CompletedAt", "Description")

# CMMS shorthand for registry words (the MDM expands these back).
_ABBREVIATIONS = {
    "CHARGE": "CHG", "PUMP": "PMP", "EXCHANGER": "EXCH", "HEATER": "HTR", "COMPRESSOR": "COMP",
    "OVERHEAD": "OVHD", "PREHEAT": "PRHT", "REFLUX": "RFLX", "RECYCLE": "RCYC", "FEED": "FD",
    "COOLER": "CLR", "ATMOSPHERIC": "ATM", "BOTTOMS": "BTMS", "CRUDE": "CRD", "STABILIZER": "STAB",
}
_TYPE_WORDS = {"P": "PMP", "K": "COMP", "E": "EXCH", "H": "HTR"}
_PM_TEXT = {
    "pump": "Preventive maintenance: lube oil change, coupling and alignment check, seal flush inspection",
    "compressor": "Preventive maintenance: lube oil analysis, filter change, dry gas seal panel check",
    "heat_exchanger": "Preventive maintenance: online cleaning, bolt retorque, thermography",
    "furnace": "Preventive maintenance: burner tip cleaning, damper stroke test, IR survey of tubes",
}
# Machines the CMMS maintains but nobody put a sensor gateway on.
_UNINSTRUMENTED = (
    ("P", "Cooling water circulation pump"), ("P", "Slop oil transfer pump"), ("E", "Tempered water cooler"),
    ("P", "Sour water pump"), ("P", "Steam condensate return pump"), ("E", "Lube oil console cooler"),
    ("K", "Instrument air compressor"), ("P", "Tank farm transfer pump"),
)


def cmms_equip_no(asset: Asset, rng: np.random.Generator) -> str:
    """The asset's id as the CMMS spells it."""
    unit = asset.unit_id
    letter, number = asset.equipment.split("-")
    styles = (
        f"{letter}{number}-{unit}", f"{letter.lower()}-{number} ({unit.lower()})", f"{unit}/{letter}-{number}",
        f"{unit} {letter}{number}", f"{letter}-{number}-{unit}",
    )
    if rng.random() < 0.07:
        return f"{unit}-{_TYPE_WORDS[letter]}-{number}"  # the type spelled out: only the name links it
    return styles[int(rng.integers(len(styles)))]


def cmms_description(name: str, rng: np.random.Generator) -> str:
    draw = rng.random()
    words = name.upper().split()
    if draw < 0.55:
        return " ".join(_ABBREVIATIONS.get(w, w) for w in words)
    if draw < 0.8:
        return " ".join(words)
    return name


def _manufacturer_spelling(name: str, rng: np.random.Generator) -> str:
    draw = rng.random()
    if draw < 0.3:
        return name.upper()
    if draw < 0.45:
        return f"{name} GmbH" if " " not in name else name.split()[0]
    return name


@dataclass(frozen=True)
class MasterData:
    devices_json: str
    equipment_csv: str
    cmms_ids: dict[str, str]  # asset_id -> EquipNo
    extra_equipment: tuple[str, ...]  # CMMS EquipNos with no registry twin


def _csv_text(header: tuple[str, ...], rows: list[tuple]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def build_master_data(plant: Plant, rng: np.random.Generator) -> MasterData:
    devices = [{
        "asset_id": a.asset_id, "asset_name": a.asset_name, "asset_type": a.asset_type, "unit_id": a.unit_id,
        "unit_type": a.unit_type, "site_id": a.site_id, "manufacturer": a.manufacturer,
        "tags": [{"tag": t.tag, "measurement": t.measurement, "unit": t.unit, "normal_min": t.normal_min,
                  "normal_max": t.normal_max} for t in a.tags],
    } for a in plant.assets]

    plant_codes = {s.site_id: s.plant_code for s in plant.sites}
    cmms_ids: dict[str, str] = {}
    rows = []
    for a in plant.assets:
        equip = cmms_equip_no(a, rng)
        cmms_ids[a.asset_id] = equip
        criticality = "A" if "charge" in a.asset_name.lower() else ASSET_TYPES[a.asset_type].criticality
        rows.append((equip, cmms_description(a.asset_name, rng), _manufacturer_spelling(a.manufacturer, rng),
                     a.model, plant_codes[a.site_id], a.install_date.isoformat(), criticality))
    n_extra = max(2, int(round(0.08 * len(plant.assets))))
    extra = []
    for i in range(n_extra):
        unit = plant.units[int(rng.integers(len(plant.units)))]
        letter, name = _UNINSTRUMENTED[i % len(_UNINSTRUMENTED)]
        number = {"P": 150, "K": 250, "E": 350, "H": 450}[letter] + i
        equip = f"{letter}{number}-{unit.unit_id}" if rng.random() < 0.5 else f"{unit.unit_id}/{letter}-{number}"
        extra.append(equip)
        installed = date(int(rng.integers(1985, 2020)), int(rng.integers(1, 13)), int(rng.integers(1, 29)))
        rows.append((equip, cmms_description(name, rng), "", f"STD-{int(rng.integers(10, 99))}",
                     plant_codes[unit.site_id], installed.isoformat(), "C"))
    rows.sort(key=lambda r: (r[0].upper(), r[0]))
    return MasterData(json.dumps(devices, indent=2) + "\n", _csv_text(EQUIPMENT_HEADER, rows), cmms_ids, tuple(extra))


@dataclass(frozen=True)
class WorkOrder:
    number: str
    asset_id: str
    equip_no: str
    wo_type: str
    failure_code: str
    priority: str
    reported_at: str
    completed_at: str
    description: str


def build_work_orders(plant: Plant, histories: dict[str, AssetHistory], cmms_ids: dict[str, str], grid: TimeGrid,
                      rng: np.random.Generator) -> list[WorkOrder]:
    """CM orders for failures in the period and PM orders for maintenance started in it, numbered
    in order of reporting. An order still open at the end of the period has no CompletedAt."""
    end = grid.end_dt
    drafts = []
    for a in plant.assets:
        modes = {m.code: m for m in FAILURE_MODES[a.asset_type]}
        for f in histories[a.asset_id].failures:
            failed = grid.time_at(f.failed_step)
            reported = failed + timedelta(minutes=int(rng.integers(2, 26)))
            reported = reported if reported < end else failed
            restart = grid.time_at(f.restart_step)
            mode = modes[f.failure_code]
            priority = "1" if a.asset_type in ("furnace", "compressor") else "2"
            drafts.append((reported, a, "CM", f.failure_code, priority, restart if restart <= end else None,
                           f"{mode.description}: {mode.repair}"))
        for m in histories[a.asset_id].maintenance:
            if m.start_step < 0:
                continue
            began, finished = grid.time_at(m.start_step), grid.time_at(m.end_step)
            drafts.append((began, a, "PM", "", "3", finished if finished <= end else None, _PM_TEXT[a.asset_type]))
    drafts.sort(key=lambda d: (d[0], d[1].asset_id, d[2]))
    first = 40_000_000 + int(rng.integers(10_000, 90_000))
    return [
        WorkOrder(f"{first + i:08d}", a.asset_id, cmms_ids[a.asset_id], wo_type, code, priority, minute_text(reported),
                  minute_text(completed) if completed is not None else "", text)
        for i, (reported, a, wo_type, code, priority, completed, text) in enumerate(drafts)
    ]


def work_order_files(orders: list[WorkOrder], grid: TimeGrid) -> dict[str, str]:
    """``YYYY-MM`` -> CSV text, for every month the period touches (header only when quiet)."""
    months = sorted({d.strftime("%Y-%m") for d in grid.day_dates()})
    by_month: dict[str, list[tuple]] = {m: [] for m in months}
    for o in orders:
        by_month.setdefault(o.reported_at[:7], []).append(
            (o.number, o.equip_no, o.wo_type, o.failure_code, o.priority, o.reported_at, o.completed_at, o.description))
    return {m: _csv_text(WORK_ORDER_HEADER, rows) for m, rows in sorted(by_month.items())}
