"""The simulated plant: sites, process units, assets, their instrument tags and what can go wrong.

Module-level specs are plain data other code may import: ``SAFE_ENVELOPES`` (hard bounds and the
largest single move per operating setting, per unit type), ``UNIT_TYPES``, ``ASSET_TYPES`` and
``FAILURE_MODES``. :func:`build_plant` turns a seed and an asset count into a concrete ``Plant``
(ids, names, nominal operating points, tags with normal ranges and reported units).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import date

import numpy as np

from data_prep.simulator.measurements import MEASUREMENT_BY_PREFIX, canonical_unit

# ---------------------------------------------------------------------------------------------
# Operating envelopes
# ---------------------------------------------------------------------------------------------

# unit type -> setting column -> hard bounds (min, max), the largest single operator move
# (max_step), the resolution set points are entered at, and the design point (nominal).
# Every simulated set point lies on the resolution grid inside [min, max] and moves at most
# max_step per change, so a recommender constrained by this dict recommends only moves an
# operator could make.
SAFE_ENVELOPES: dict[str, dict[str, dict[str, float]]] = {
    "crude_distillation": {
        "furnace_outlet_temp_c": {"min": 340.0, "max": 380.0, "max_step": 3.0, "resolution": 0.5, "nominal": 360.0},
        "reflux_ratio": {"min": 1.5, "max": 4.0, "max_step": 0.2, "resolution": 0.05, "nominal": 2.5},
        "column_pressure_barg": {"min": 0.6, "max": 2.2, "max_step": 0.1, "resolution": 0.05, "nominal": 1.2},
    },
    "fluid_catalytic_cracking": {
        "riser_outlet_temp_c": {"min": 500.0, "max": 545.0, "max_step": 3.0, "resolution": 0.5, "nominal": 520.0},
        "catalyst_oil_ratio": {"min": 4.0, "max": 9.0, "max_step": 0.3, "resolution": 0.1, "nominal": 6.5},
        "feed_preheat_temp_c": {"min": 180.0, "max": 320.0, "max_step": 8.0, "resolution": 1.0, "nominal": 250.0},
    },
    "hydrotreater": {
        "reactor_inlet_temp_c": {"min": 320.0, "max": 385.0, "max_step": 2.0, "resolution": 0.5, "nominal": 345.0},
        "h2_oil_ratio_nm3_m3": {"min": 150.0, "max": 450.0, "max_step": 20.0, "resolution": 5.0, "nominal": 300.0},
        "reactor_pressure_barg": {"min": 40.0, "max": 70.0, "max_step": 2.0, "resolution": 0.5, "nominal": 55.0},
    },
    "catalytic_reforming": {
        "reactor_inlet_temp_c": {"min": 480.0, "max": 530.0, "max_step": 2.0, "resolution": 0.5, "nominal": 500.0},
        "reactor_pressure_barg": {"min": 5.0, "max": 25.0, "max_step": 1.0, "resolution": 0.5, "nominal": 12.0},
        "h2_hc_molar_ratio": {"min": 3.0, "max": 8.0, "max_step": 0.3, "resolution": 0.1, "nominal": 5.0},
    },
}


@dataclass(frozen=True)
class UnitTypeSpec:
    """One kind of process unit: what it is called, how big, what it measures and contains."""

    code: str  # prefix of unit ids: CDU1, FCC1 ...
    label: str
    capacity_m3h: tuple[float, float]
    feeds: tuple[str, ...]
    quality: str  # the MES quality column
    quality_decimals: int
    heater_setting: str | None  # the setting the unit's heaters control to, if any
    pump_pressure_barg: tuple[float, float]
    asset_mix: tuple[str, ...]  # asset types in the order a unit receives them (cycled)
    asset_names: dict[str, tuple[str, ...]]

    @property
    def settings(self) -> tuple[str, ...]:
        return tuple(SAFE_ENVELOPES[self.name])

    @property
    def name(self) -> str:
        return _UNIT_TYPE_NAMES[self.code]


_UNIT_TYPE_NAMES = {
    "CDU": "crude_distillation",
    "FCC": "fluid_catalytic_cracking",
    "HDT": "hydrotreater",
    "REF": "catalytic_reforming",
}

# Asset names use words the CMMS abbreviates (CHARGE -> CHG, PUMP -> PMP ...), so the CMMS
# descriptions can be matched back to the registry by expanding the abbreviations.
UNIT_TYPES: dict[str, UnitTypeSpec] = {
    "crude_distillation": UnitTypeSpec(
        code="CDU", label="Crude distillation unit", capacity_m3h=(800.0, 1200.0),
        feeds=("feed_api_gravity", "feed_sulfur_wt_pct"), quality="quality_diesel_t95_c", quality_decimals=1,
        heater_setting="furnace_outlet_temp_c", pump_pressure_barg=(10.0, 28.0),
        asset_mix=("pump", "furnace", "heat_exchanger", "pump", "heat_exchanger", "compressor", "pump", "heat_exchanger"),
        asset_names={
            "pump": ("Crude charge pump A", "Crude charge pump B", "Atmospheric bottoms pump", "Overhead reflux pump",
                     "Diesel pumparound pump", "Kerosene product pump"),
            "furnace": ("Atmospheric heater", "Atmospheric heater B"),
            "heat_exchanger": ("Crude preheat exchanger", "Desalter preheat exchanger", "Diesel product cooler",
                               "Kerosene rundown cooler", "Bottoms preheat exchanger"),
            "compressor": ("Overhead gas compressor", "Fuel gas compressor"),
        },
    ),
    "fluid_catalytic_cracking": UnitTypeSpec(
        code="FCC", label="Fluid catalytic cracker", capacity_m3h=(300.0, 450.0),
        feeds=("feed_api_gravity", "feed_ccr_wt_pct"), quality="quality_gasoline_ron", quality_decimals=2,
        heater_setting=None, pump_pressure_barg=(8.0, 22.0),
        asset_mix=("compressor", "heat_exchanger", "pump", "furnace", "pump", "heat_exchanger", "compressor"),
        asset_names={
            "compressor": ("Wet gas compressor", "Main air blower", "Off gas compressor"),
            "heat_exchanger": ("Feed preheat exchanger", "Slurry steam generator", "Main fractionator overhead condenser"),
            "pump": ("Feed charge pump", "Slurry pumparound pump", "Light cycle oil pump", "Overhead reflux pump"),
            "furnace": ("Feed preheat heater",),
        },
    ),
    "hydrotreater": UnitTypeSpec(
        code="HDT", label="Diesel hydrotreater", capacity_m3h=(200.0, 350.0),
        feeds=("feed_sulfur_wt_pct", "feed_nitrogen_ppm"), quality="quality_product_sulfur_ppm", quality_decimals=1,
        heater_setting="reactor_inlet_temp_c", pump_pressure_barg=(75.0, 95.0),
        asset_mix=("pump", "furnace", "compressor", "heat_exchanger", "pump", "heat_exchanger"),
        asset_names={
            "pump": ("Reactor feed charge pump A", "Reactor feed charge pump B", "Stripper bottoms pump", "Wash water pump"),
            "furnace": ("Reactor charge heater", "Stripper reboiler heater"),
            "compressor": ("Recycle gas compressor", "Makeup hydrogen compressor"),
            "heat_exchanger": ("Feed effluent exchanger", "Reactor effluent cooler", "Product cooler"),
        },
    ),
    "catalytic_reforming": UnitTypeSpec(
        code="REF", label="Catalytic reformer", capacity_m3h=(100.0, 180.0),
        feeds=("feed_n_plus_2a_vol_pct", "feed_api_gravity"), quality="quality_reformate_ron", quality_decimals=2,
        heater_setting="reactor_inlet_temp_c", pump_pressure_barg=(18.0, 35.0),
        asset_mix=("furnace", "compressor", "heat_exchanger", "pump", "furnace", "heat_exchanger"),
        asset_names={
            "furnace": ("Reactor charge heater 1", "Reactor interheater 2", "Reactor interheater 3"),
            "compressor": ("Recycle hydrogen compressor", "Net gas compressor"),
            "heat_exchanger": ("Combined feed exchanger", "Stabilizer feed exchanger", "Reformate cooler"),
            "pump": ("Naphtha feed charge pump", "Stabilizer reflux pump", "Reformate product pump"),
        },
    ),
}

# ---------------------------------------------------------------------------------------------
# Assets, tags and failure modes
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TagSpec:
    """One instrument on an asset type: its role in the physics and its ISA letters."""

    role: str
    isa: str
    description: str
    low_alarm: bool = False  # LO alarm configured in the DCS
    high_high: bool = False  # HIHI alarm configured in the DCS


@dataclass(frozen=True)
class AssetTypeSpec:
    letter: str  # equipment letter in ids: P-101, K-201, E-301, H-401
    first_number: int
    tags: tuple[TagSpec, ...]
    pm_interval_days: float
    pm_hours: tuple[float, float]
    criticality: str  # CMMS criticality: A (production stops) .. C
    manufacturers: tuple[tuple[str, str], ...]  # (manufacturer, model prefix)


ASSET_TYPES: dict[str, AssetTypeSpec] = {
    "pump": AssetTypeSpec(
        letter="P", first_number=101, pm_interval_days=24.0, pm_hours=(3.0, 6.0), criticality="B",
        tags=(
            TagSpec("bearing_temp", "TI", "bearing temperature", high_high=True),
            TagSpec("vibration", "VI", "bearing housing vibration", high_high=True),
            TagSpec("discharge_pressure", "PI", "discharge pressure", low_alarm=True),
            TagSpec("flow", "FI", "discharge flow", low_alarm=True),
            TagSpec("motor_current", "II", "motor current"),
        ),
        manufacturers=(("Sulzer", "MSD"), ("Flowserve", "HPX"), ("KSB", "RPH"), ("Ruhrpumpen", "HSC")),
    ),
    "compressor": AssetTypeSpec(
        letter="K", first_number=201, pm_interval_days=30.0, pm_hours=(6.0, 12.0), criticality="A",
        tags=(
            TagSpec("bearing_temp", "TI", "journal bearing temperature", high_high=True),
            TagSpec("vibration", "VI", "shaft vibration", high_high=True),
            TagSpec("discharge_pressure", "PI", "discharge pressure", low_alarm=True),
            TagSpec("flow", "FI", "suction flow", low_alarm=True),
            TagSpec("motor_current", "II", "motor current"),
            TagSpec("speed", "SI", "shaft speed"),
        ),
        manufacturers=(("Siemens Energy", "STC-SV"), ("Elliott", "EDGE"), ("Atlas Copco", "GT"), ("Burckhardt", "LABY")),
    ),
    "heat_exchanger": AssetTypeSpec(
        letter="E", first_number=301, pm_interval_days=40.0, pm_hours=(8.0, 16.0), criticality="C",
        tags=(
            TagSpec("inlet_temp", "TI", "hot side inlet temperature"),
            TagSpec("outlet_temp", "TI", "hot side outlet temperature"),
            TagSpec("dp", "PI", "shell side differential pressure"),
            TagSpec("flow", "FI", "hot side flow", low_alarm=True),
        ),
        manufacturers=(("Alfa Laval", "AL-ST"), ("Kelvion", "KSTE"), ("Koch Heat Transfer", "KHT-BEU")),
    ),
    "furnace": AssetTypeSpec(
        letter="H", first_number=401, pm_interval_days=45.0, pm_hours=(10.0, 20.0), criticality="A",
        tags=(
            TagSpec("tube_skin_temp", "TI", "tube skin temperature", high_high=True),
            TagSpec("outlet_temp", "TI", "process outlet temperature", low_alarm=True),
            TagSpec("fuel_pressure", "PI", "fuel gas pressure", low_alarm=True),
            TagSpec("fuel_flow", "FI", "fuel gas flow"),
        ),
        manufacturers=(("Heurtey Petrochem", "HP-VC"), ("John Zink", "JZ-PSMR"), ("Foster Wheeler", "FW-BOX")),
    ),
}


@dataclass(frozen=True)
class SignatureEffect:
    """How one failure mode moves one tag as it develops (at full development, progress 1).

    kind ``add``: add a value in canonical units; ``mul``: multiply the healthy value by
    (1 + magnitude); ``toward``: move the tag towards the asset's inlet temperature by a fraction
    of the nominal inlet-outlet gap (an exchanger losing duty).
    """

    role: str
    kind: str
    low: float
    high: float


@dataclass(frozen=True)
class FailureMode:
    """A way an asset type degrades to failure: how often it starts, how long it takes, what shows."""

    code: str  # the CMMS FailureCode
    description: str
    mean_days_to_onset: float  # mean healthy time before this degradation starts
    lead_days: tuple[float, float]  # onset to failure
    downtime_hours: tuple[float, float]  # failure to restart
    signature: tuple[SignatureEffect, ...]
    repair: str  # what the corrective work order says was done


# Onset rates are set high (a failure per asset every month or so) so that a two-week plant of
# twenty assets has a handful of failures for a classifier to learn from.
FAILURE_MODES: dict[str, tuple[FailureMode, ...]] = {
    "pump": (
        FailureMode("BEARING", "Bearing wear", 45.0, (3.0, 7.0), (8.0, 20.0), (
            SignatureEffect("vibration", "add", 6.0, 11.0),
            SignatureEffect("bearing_temp", "add", 14.0, 26.0),
            SignatureEffect("motor_current", "mul", 0.03, 0.06),
        ), "replaced drive end and non drive end bearings, checked alignment"),
        FailureMode("SEAL_LEAK", "Mechanical seal leak", 52.0, (1.0, 2.5), (6.0, 16.0), (
            SignatureEffect("flow", "mul", -0.25, -0.12),
            SignatureEffect("discharge_pressure", "mul", -0.16, -0.08),
            SignatureEffect("bearing_temp", "add", 3.0, 6.0),
        ), "replaced mechanical seal cartridge, flushed seal plan 53"),
        FailureMode("IMPELLER", "Impeller erosion", 70.0, (4.0, 8.0), (12.0, 30.0), (
            SignatureEffect("discharge_pressure", "mul", -0.22, -0.12),
            SignatureEffect("motor_current", "mul", -0.10, -0.05),
            SignatureEffect("flow", "mul", -0.10, -0.05),
            SignatureEffect("vibration", "add", 1.5, 3.0),
        ), "replaced eroded impeller and wear rings"),
    ),
    "compressor": (
        FailureMode("BEARING", "Journal bearing wear", 60.0, (3.0, 6.0), (16.0, 40.0), (
            SignatureEffect("vibration", "add", 5.0, 10.0),
            SignatureEffect("bearing_temp", "add", 12.0, 22.0),
        ), "replaced journal bearings, oil system flushed"),
        FailureMode("FOULING", "Impeller fouling", 65.0, (5.0, 9.0), (12.0, 30.0), (
            SignatureEffect("flow", "mul", -0.15, -0.08),
            SignatureEffect("discharge_pressure", "mul", -0.10, -0.05),
            SignatureEffect("motor_current", "mul", 0.05, 0.10),
            SignatureEffect("speed", "mul", 0.03, 0.06),
        ), "online wash ineffective, opened casing and cleaned impellers"),
        FailureMode("SEAL_LEAK", "Dry gas seal leak", 80.0, (1.0, 3.0), (12.0, 36.0), (
            SignatureEffect("flow", "mul", -0.18, -0.10),
            SignatureEffect("discharge_pressure", "mul", -0.14, -0.08),
            SignatureEffect("bearing_temp", "add", 4.0, 8.0),
        ), "replaced dry gas seal cartridge"),
    ),
    "heat_exchanger": (
        FailureMode("FOULING", "Tube side fouling", 45.0, (6.0, 11.0), (16.0, 36.0), (
            SignatureEffect("outlet_temp", "toward", 0.25, 0.40),
            SignatureEffect("dp", "mul", 0.8, 1.5),
            SignatureEffect("flow", "mul", -0.08, -0.04),
        ), "bundle pulled and hydro jetted"),
        FailureMode("TUBE_LEAK", "Tube leak", 85.0, (1.0, 2.0), (24.0, 48.0), (
            SignatureEffect("flow", "mul", -0.20, -0.10),
            SignatureEffect("dp", "mul", 0.20, 0.40),
            SignatureEffect("outlet_temp", "add", -12.0, -6.0),
        ), "leaking tubes plugged after hydrotest"),
    ),
    "furnace": (
        FailureMode("COKING", "Tube coking", 52.0, (5.0, 10.0), (24.0, 60.0), (
            SignatureEffect("tube_skin_temp", "add", 60.0, 110.0),
            SignatureEffect("fuel_flow", "mul", 0.08, 0.15),
            SignatureEffect("fuel_pressure", "mul", 0.05, 0.10),
        ), "steam air decoke of radiant coils"),
        FailureMode("BURNER", "Burner tip plugging", 70.0, (2.0, 4.0), (12.0, 30.0), (
            SignatureEffect("fuel_pressure", "mul", 0.40, 0.80),
            SignatureEffect("fuel_flow", "mul", -0.12, -0.05),
            SignatureEffect("outlet_temp", "add", -12.0, -5.0),
            SignatureEffect("tube_skin_temp", "add", 10.0, 25.0),
        ), "burner tips cleaned and replaced, fuel gas filter changed"),
    ),
}

# ---------------------------------------------------------------------------------------------
# The concrete plant
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Site:
    site_id: str
    name: str
    plant_code: str  # the CMMS PlantCode
    ambient_mean_c: float  # January mean air temperature
    country: str


@dataclass(frozen=True)
class ProcessUnit:
    unit_id: str
    unit_type: str
    site_id: str
    capacity_m3h: float


@dataclass(frozen=True)
class Tag:
    """One instrument on one asset, with its registry view (canonical unit, normal range)."""

    tag: str  # event spelling: TI-1011
    role: str
    measurement: str
    unit: str  # canonical unit
    reported_unit: str  # what the device sends: canonical or a convertible alternative
    historian_tag: str  # CDU1.P101.TI1011
    nominal: float
    normal_min: float
    normal_max: float
    low_alarm: bool
    high_high: float | None  # HIHI limit, canonical units


@dataclass(frozen=True)
class Asset:
    asset_id: str  # CDU1-P-101
    asset_name: str
    asset_type: str
    unit_id: str
    unit_type: str
    site_id: str
    equipment: str  # P-101
    manufacturer: str
    model: str
    install_date: date
    sends_quality: bool  # some device gateways leave the optional quality field out
    params: dict[str, float]
    tags: tuple[Tag, ...]

    def tag_by_role(self, role: str) -> Tag:
        for tag in self.tags:
            if tag.role == role:
                return tag
        raise KeyError(f"asset {self.asset_id} has no {role} tag")


@dataclass(frozen=True)
class Plant:
    sites: tuple[Site, ...]
    units: tuple[ProcessUnit, ...]
    assets: tuple[Asset, ...]
    _by_id: dict[str, Asset] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._by_id.update({a.asset_id: a for a in self.assets})

    def asset(self, asset_id: str) -> Asset:
        try:
            return self._by_id[asset_id]
        except KeyError:
            raise KeyError(f"unknown asset {asset_id!r}") from None

    def unit(self, unit_id: str) -> ProcessUnit:
        for unit in self.units:
            if unit.unit_id == unit_id:
                return unit
        raise KeyError(f"unknown unit {unit_id!r}")

    def site(self, site_id: str) -> Site:
        for site in self.sites:
            if site.site_id == site_id:
                return site
        raise KeyError(f"unknown site {site_id!r}")


SITES: tuple[Site, ...] = (
    Site("SITE-NORTH", "North refinery", "1000", 3.0, "NL"),
    Site("SITE-SOUTH", "South refinery", "2000", 10.0, "ES"),
    Site("SITE-EAST", "East refinery", "3000", -1.0, "PL"),
)
_UNIT_ORDER = ("crude_distillation", "fluid_catalytic_cracking", "hydrotreater", "catalytic_reforming")
MAX_UNITS = len(SITES) * len(_UNIT_ORDER)
ASSETS_PER_UNIT = 5

# Share of tags whose device is configured in an alternative unit (silver converts them back).
_ALTERNATIVE_UNITS = {
    "temperature": (("degF", 0.12), ("K", 0.04)),
    "pressure": (("psi", 0.10), ("kPa", 0.06)),
    "vibration": (("in/s", 0.15),),
}
VIBRATION_ALERT_MM_S = 7.1  # ISO 10816 zone B/C boundary for large machines
VIBRATION_DANGER_MM_S = 11.2  # zone C/D: damage likely


def unit_layout(n_assets: int) -> list[tuple[Site, str, str]]:
    """(site, unit type, unit id) for a plant of ``n_assets``: about five assets per unit,
    but at least one unit per asset up to four so that tiny plants still span unit types."""
    n_units = min(MAX_UNITS, max(min(n_assets, len(_UNIT_ORDER)), math.ceil(n_assets / ASSETS_PER_UNIT)))
    layout = []
    for i in range(n_units):
        site = SITES[i // len(_UNIT_ORDER)]
        unit_type = _UNIT_ORDER[i % len(_UNIT_ORDER)]
        layout.append((site, unit_type, f"{UNIT_TYPES[unit_type].code}{i // len(_UNIT_ORDER) + 1}"))
    return layout


def _uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(rng.uniform(*bounds))


def _asset_params(asset_type: str, spec: UnitTypeSpec, capacity: float, rng: np.random.Generator) -> dict[str, float]:
    """The asset's healthy operating point at design load, in canonical units."""
    if asset_type == "pump":
        return {
            "flow": round(capacity * _uniform(rng, (0.15, 0.6)), 1),
            "discharge_pressure": round(_uniform(rng, spec.pump_pressure_barg), 2),
            "suction_pressure": round(_uniform(rng, (1.0, 3.0)), 2),
            "motor_current": round(_uniform(rng, (60.0, 320.0)), 1),
            "bearing_temp": round(_uniform(rng, (52.0, 68.0)), 1),
            "vibration": round(_uniform(rng, (1.2, 3.2)), 2),
        }
    if asset_type == "compressor":
        high = 75.0 if spec.name == "hydrotreater" else 45.0
        return {
            "flow": round(_uniform(rng, (1500.0, 6000.0)), 0),
            "discharge_pressure": round(_uniform(rng, (high - 35.0, high)), 2),
            "suction_pressure": round(_uniform(rng, (2.0, 8.0)), 2),
            "motor_current": round(_uniform(rng, (150.0, 700.0)), 1),
            "speed": round(_uniform(rng, (3000.0, 11500.0)), 0),
            "bearing_temp": round(_uniform(rng, (62.0, 76.0)), 1),
            "vibration": round(_uniform(rng, (1.8, 3.6)), 2),
        }
    if asset_type == "heat_exchanger":
        inlet = round(_uniform(rng, (180.0, 330.0)), 1)
        return {
            "inlet_temp": inlet,
            "outlet_temp": round(inlet - _uniform(rng, (50.0, 120.0)), 1),
            "dp": round(_uniform(rng, (0.4, 1.4)), 2),
            "flow": round(capacity * _uniform(rng, (0.2, 0.7)), 1),
        }
    if asset_type == "furnace":
        if spec.heater_setting is not None:
            outlet = SAFE_ENVELOPES[spec.name][spec.heater_setting]["nominal"]
        else:
            outlet = round(_uniform(rng, (300.0, 340.0)), 1)
        return {
            "outlet_temp": outlet,
            "tube_skin_temp": round(outlet + _uniform(rng, (90.0, 140.0)), 1),
            "fuel_pressure": round(_uniform(rng, (1.2, 2.8)), 2),
            "fuel_flow": round(_uniform(rng, (800.0, 3000.0)), 0),
        }
    raise ValueError(f"unknown asset type {asset_type!r}")


def _normal_range(role: str, asset_type: str, params: dict[str, float], spec: UnitTypeSpec) -> tuple[float, float]:
    """The band the DCS treats as normal (its LO and HI alarm limits), canonical units."""
    nom = params[role]
    if role == "bearing_temp":
        return nom - 25.0, nom + 17.0
    if role == "vibration":
        return 0.3, VIBRATION_ALERT_MM_S
    if role == "discharge_pressure":
        return 0.8 * nom, 1.15 * nom
    if role in ("flow", "fuel_flow"):
        return (0.5 * nom, 1.25 * nom) if role == "flow" else (0.4 * nom, 1.3 * nom)
    if role == "motor_current":
        return 0.3 * nom, 1.15 * nom
    if role == "speed":
        return 0.92 * nom, 1.07 * nom
    if role == "inlet_temp":
        return nom - 50.0, nom + 25.0
    if role == "outlet_temp" and asset_type == "heat_exchanger":
        gap = params["inlet_temp"] - nom
        return nom - 50.0, nom + 0.2 * gap
    if role == "outlet_temp":  # furnace: follows the unit's set point, anywhere in its envelope
        if spec.heater_setting is not None:
            env = SAFE_ENVELOPES[spec.name][spec.heater_setting]
            return env["min"] - 15.0, env["max"] + 10.0
        return nom - 35.0, nom + 20.0
    if role == "dp":
        return 0.2 * nom, 1.6 * nom
    if role == "tube_skin_temp":
        return nom - 150.0, nom + 45.0
    if role == "fuel_pressure":
        return 0.5 * nom, 1.45 * nom
    raise ValueError(f"no normal range for role {role!r}")


def _reported_unit(measurement: str, rng: np.random.Generator) -> str:
    draw = rng.random()
    for unit, share in _ALTERNATIVE_UNITS.get(measurement, ()):
        if draw < share:
            return unit
        draw -= share
    return canonical_unit(measurement)


def _build_tags(asset_type: str, unit_id: str, letter: str, number: int, params: dict[str, float],
                spec: UnitTypeSpec, rng: np.random.Generator) -> tuple[Tag, ...]:
    tags = []
    for i, tspec in enumerate(ASSET_TYPES[asset_type].tags):
        loop = number * 10 + i + 1  # ISA loop number: asset 101 -> loops 1011, 1012 ...
        measurement = MEASUREMENT_BY_PREFIX[tspec.isa]
        low, high = _normal_range(tspec.role, asset_type, params, spec)
        decimals = 2 if measurement in ("vibration", "pressure") else 1
        if tspec.role == "vibration":
            high_high: float | None = VIBRATION_DANGER_MM_S
        elif tspec.high_high:
            high_high = round(high + 0.3 * (high - low), decimals)
        else:
            high_high = None
        tags.append(Tag(
            tag=f"{tspec.isa}-{loop}",
            role=tspec.role,
            measurement=measurement,
            unit=canonical_unit(measurement),
            reported_unit=_reported_unit(measurement, rng),
            historian_tag=f"{unit_id}.{letter}{number}.{tspec.isa}{loop}",
            nominal=params[tspec.role],
            normal_min=round(low, decimals),
            normal_max=round(high, decimals),
            low_alarm=tspec.low_alarm,
            high_high=high_high,
        ))
    return tuple(tags)


def _asset_name(spec: UnitTypeSpec, asset_type: str, index: int) -> str:
    names = spec.asset_names[asset_type]
    return names[index] if index < len(names) else f"{names[-1]} {index - len(names) + 2}"


def build_plant(n_assets: int, rng: np.random.Generator) -> Plant:
    """A plant of ``n_assets`` assets spread round-robin over its process units."""
    if n_assets < 1:
        raise ValueError(f"a plant needs at least one asset, got {n_assets}")
    layout = unit_layout(n_assets)
    units = []
    for site, unit_type, unit_id in layout:
        lo, hi = UNIT_TYPES[unit_type].capacity_m3h
        units.append(ProcessUnit(unit_id, unit_type, site.site_id, round(float(rng.uniform(lo, hi)) / 10.0) * 10.0))
    per_unit: list[int] = [0] * len(units)
    for i in range(n_assets):
        per_unit[i % len(units)] += 1
    assets = []
    for unit, count in zip(units, per_unit):
        spec = UNIT_TYPES[unit.unit_type]
        seen: dict[str, int] = {}
        for k in range(count):
            asset_type = spec.asset_mix[k % len(spec.asset_mix)]
            index = seen.get(asset_type, 0)
            seen[asset_type] = index + 1
            atype = ASSET_TYPES[asset_type]
            number = atype.first_number + index
            params = _asset_params(asset_type, spec, unit.capacity_m3h, rng)
            manufacturer, model_prefix = atype.manufacturers[int(rng.integers(len(atype.manufacturers)))]
            assets.append(Asset(
                asset_id=f"{unit.unit_id}-{atype.letter}-{number}",
                asset_name=_asset_name(spec, asset_type, index),
                asset_type=asset_type,
                unit_id=unit.unit_id,
                unit_type=unit.unit_type,
                site_id=unit.site_id,
                equipment=f"{atype.letter}-{number}",
                manufacturer=manufacturer,
                model=f"{model_prefix}-{int(rng.integers(100, 900))}",
                install_date=date(int(rng.integers(1994, 2023)), int(rng.integers(1, 13)), int(rng.integers(1, 29))),
                sends_quality=bool(rng.random() < 0.8),
                params=params,
                tags=_build_tags(asset_type, unit.unit_id, atype.letter, number, params, spec, rng),
            ))
    assets = _with_an_alternative_unit(assets)
    return Plant(sites=tuple(s for s in SITES if any(u.site_id == s.site_id for u in units)),
                 units=tuple(units), assets=tuple(assets))


def _with_an_alternative_unit(assets: list[Asset]) -> list[Asset]:
    """Every plant has at least one device reporting in a convertible non-canonical unit, so that
    unit conformance is exercised even on the smallest plant."""
    if any(t.reported_unit != t.unit for a in assets for t in a.tags):
        return assets
    for i, asset in enumerate(assets):
        for j, tag in enumerate(asset.tags):
            alternatives = _ALTERNATIVE_UNITS.get(tag.measurement)
            if alternatives:
                tags = list(asset.tags)
                tags[j] = replace(tag, reported_unit=alternatives[0][0])
                return [*assets[:i], replace(asset, tags=tuple(tags)), *assets[i + 1:]]
    return assets
