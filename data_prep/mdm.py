"""Master data management: golden assets and customers, and crosswalks from every source id.

Pure functions, pandas in and pandas out: no paths, no Spark, no MLflow. The silver job reads the
source tables, calls these and writes the results to ``silver/assets``, ``silver/asset_xref``,
``silver/customers`` and ``silver/customer_xref``; every other silver table then swaps source ids
for golden ids through the crosswalks.

Matching is explainable: each crosswalk row names the rule that linked the source record and a
score in [0, 1]. Rules are tried in a fixed order (strongest first) and every tie is broken on ids,
so the same sources give the same golden records whatever their row order, run after run.

Asset rules (CMMS equipment -> IoT registry asset; the registry is the system of record):
  ``exact_id``       EquipNo equals the registry asset_id.
  ``normalised_id``  EquipNo and asset_id give the same :func:`normalise_asset_id` key.
  ``fuzzy_name``     rapidfuzz ``token_set_ratio`` of :func:`normalise_description` texts
                     >= ``fuzzy_threshold`` (default 0.85), only against registry assets of the
                     same unit and the same equipment-type letter that no id rule has claimed;
                     each registry asset is taken at most once, best score first.
  ``new_golden``     no registry twin: the CMMS record becomes a golden asset ``CMMS-<key>``.
Customer rules (CRM accounts among themselves): ``exact_name``, ``normalised_name``
(:func:`normalise_customer_name`), ``fuzzy_name`` (``token_sort_ratio`` >= 0.92 within one
BillingCountry), closed transitively with union-find; the golden id is ``CUST-<smallest Id>``.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

import pandas as pd
from rapidfuzz import fuzz, process

from data_prep.schemas import columns

# 0.85 on token_set_ratio: abbreviation expansion already makes true twins score ~1.0; what is
# left between 0.85 and 1.0 is word order, plurals and a stray extra word.
ASSET_FUZZY_THRESHOLD = 0.85
# 0.92 on token_sort_ratio: one typo in a name of 13+ characters still merges ("Acme Petrolium"
# 0.93), a plural merges ("Nordic Fuel" / "Nordic Fuels" 0.96), but a short name never absorbs a
# longer different one ("Shell" / "Shelly" 0.91, "Shell" / "Shell Trading" 0.56) and an extra word
# keeps companies apart ("Nordic Fuels AS" / "Nordic Fuel Trading AS" 0.71).
CUSTOMER_FUZZY_THRESHOLD = 0.92

SYSTEM_REGISTRY = "iot_registry"
SYSTEM_CMMS = "cmms"
SYSTEM_CRM = "crm"

DEVICE_COLUMNS = ("asset_id", "asset_name", "asset_type", "unit_id", "unit_type", "site_id", "manufacturer")
EQUIPMENT_COLUMNS = ("EquipNo", "Description", "Manufacturer", "Model", "PlantCode", "InstallDate", "Criticality")
ACCOUNT_COLUMNS = ("Id", "Name", "BillingCountry", "Industry", "CreatedDate")
TAG_MASTER_COLUMNS = ("asset_id", "tag")
# Not a lake table: the caller joins it onto historian rows and keeps only the golden columns.
HISTORIAN_XREF_COLUMNS = ("source_id", "asset_id", "tag", "match_rule", "match_score")

# Rank of each rule: lower is stronger. Picks the CMMS record whose attributes survive, and the
# rule reported for a customer record linked by several rules.
_ASSET_RULE_RANK = {"exact_id": 0, "normalised_id": 1, "fuzzy_name": 2, "new_golden": 3}
_CUSTOMER_RULE_RANK = {"exact_name": 0, "normalised_name": 1, "fuzzy_name": 2}

# CMMS shorthand seen in equipment descriptions, expanded to the registry's words.
_ABBREVIATIONS = {
    "ACCUM": "ACCUMULATOR", "AGIT": "AGITATOR", "ATM": "ATMOSPHERIC", "BLWR": "BLOWER",
    "BTM": "BOTTOMS", "BTMS": "BOTTOMS", "CHG": "CHARGE", "CHRG": "CHARGE", "CIRC": "CIRCULATION",
    "CLR": "COOLER", "CMP": "COMPRESSOR", "CMPR": "COMPRESSOR", "COL": "COLUMN",
    "COMP": "COMPRESSOR", "COMPR": "COMPRESSOR", "COND": "CONDENSER", "CRD": "CRUDE",
    "CW": "COOLING WATER", "DRM": "DRUM", "EXCH": "EXCHANGER", "EXCHR": "EXCHANGER",
    "FD": "FEED", "FRAC": "FRACTIONATOR", "FURN": "FURNACE", "HDR": "HEADER", "HEX": "EXCHANGER",
    "HP": "HIGH PRESSURE", "HTR": "HEATER", "HX": "EXCHANGER", "LP": "LOW PRESSURE",
    "MTR": "MOTOR", "OVHD": "OVERHEAD", "OVHT": "OVERHEAD", "PMP": "PUMP", "PRHT": "PREHEAT",
    "PU": "PUMP", "RCY": "RECYCLE", "RCYC": "RECYCLE", "REB": "REBOILER", "RECIRC": "RECIRCULATION",
    "RECYC": "RECYCLE", "REFL": "REFLUX", "RFLX": "REFLUX", "SEP": "SEPARATOR", "STAB": "STABILIZER",
    "STM": "STEAM", "TK": "TANK", "TRBN": "TURBINE", "TURB": "TURBINE", "VAC": "VACUUM",
    "VLV": "VALVE", "VSL": "VESSEL", "XCHG": "EXCHANGER",
}

# Legal forms dropped from the end of a customer name; several may stack ("Co. Ltd.").
_LEGAL_FORMS = frozenset({
    "ab", "ag", "aps", "as", "asa", "bhd", "bv", "co", "company", "corp", "corporation", "gmbh",
    "inc", "incorporated", "kg", "kk", "limited", "llc", "llp", "lp", "ltd", "nv", "oy", "oyj",
    "plc", "pte", "pty", "pvt", "sa", "sarl", "sas", "spa", "srl",
})

_ALNUM_TOKEN = re.compile(r"[A-Z0-9]+")
# A separator-free run of letter+digit groups ("CDU1P101"), split back into its groups.
_PACKED_GROUPS = re.compile(r"(?:[A-Z]+[0-9]+){2,}")
_GROUP = re.compile(r"[A-Z]+[0-9]+")
_EQUIPMENT_TOKEN = re.compile(r"([A-Z]+)[0-9]")


# ---------------------------------------------------------------------------------------------
# Shared validation and cleaning
# ---------------------------------------------------------------------------------------------

def _require(frame: pd.DataFrame, required: Sequence[str], what: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"{what} must be a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{what}: required column {missing[0]!r} is missing (has: {', '.join(map(str, frame.columns))})"
        )


def _text(value: object) -> str | None:
    """A stripped string, or None for null and blank: sources use both for 'no value'."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    text = str(value).strip()
    return text or None


def _clean(frame: pd.DataFrame, cols: Sequence[str]) -> pd.DataFrame:
    """Only ``cols``, every value a stripped string or None; the input frame is left untouched."""
    return pd.DataFrame({c: [_text(v) for v in frame[c]] for c in cols}, dtype=object)


def _one_row_per_key(frame: pd.DataFrame, key: str, what: str) -> pd.DataFrame:
    """Drop exact duplicate rows (re-delivered extracts); a blank or conflicting key is an error."""
    blank = frame[key].isna()
    if blank.any():
        raise ValueError(f"{what}: {key} is blank in row {int(blank.to_numpy().nonzero()[0][0])}")
    frame = frame.drop_duplicates()
    dup = frame[key].duplicated(keep=False)
    if dup.any():
        raise ValueError(f"{what}: {key} {frame.loc[dup, key].iloc[0]!r} has conflicting rows")
    return frame.sort_values(key, kind="stable").reset_index(drop=True)


def _compact(value: str | None) -> str:
    """Uppercase alphanumerics only: the spelling-blind key for units, sites and tags."""
    return "".join(_ALNUM_TOKEN.findall(value.upper())) if value else ""


def _empty(cols: Sequence[str], floats: Sequence[str] = ()) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="float64" if c in floats else object) for c in cols})


def _frame(rows: list[dict], cols: Sequence[str], sort_by: list[str], floats: Sequence[str] = ()) -> pd.DataFrame:
    if not rows:
        return _empty(cols, floats)
    out = pd.DataFrame(rows, columns=list(cols)).astype({c: "float64" for c in floats})
    return out.sort_values(sort_by, kind="stable").reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# Assets
# ---------------------------------------------------------------------------------------------

def _id_tokens(raw: str | None) -> list[str]:
    """Alphanumeric tokens of an equipment id with letter and number parts joined.

    ``CDU1-P-101`` -> [CDU1, P101]; ``p-101 (cdu1)`` -> [P101, CDU1]; ``CDU1P101`` -> [CDU1, P101].
    """
    tokens: list[str] = []
    for token in _ALNUM_TOKEN.findall((raw or "").upper()):
        tokens.extend(_GROUP.findall(token) if _PACKED_GROUPS.fullmatch(token) else [token])
    grouped: list[str] = []
    for token in tokens:
        # "P" then "101": one equipment number written with a dash or space inside it.
        if grouped and grouped[-1].isalpha() and token[0].isdigit():
            grouped[-1] += token
        else:
            grouped.append(token)
    return grouped


def normalise_asset_id(raw: str | None) -> str:
    """The order-blind key of an equipment id: ``P101-CDU1``, ``p-101 (cdu1)``, ``CDU1 P101`` and
    ``CDU1-P-101`` all give ``CDU1-P101``. Empty for a blank id."""
    return "-".join(sorted(_id_tokens(raw)))


def normalise_description(text: str | None) -> str:
    """Casefolded words with CMMS abbreviations expanded: ``CRUDE CHG PMP A`` -> ``crude charge pump a``."""
    words = _ALNUM_TOKEN.findall(_fold_accents(text or "").upper())
    return " ".join(_ABBREVIATIONS.get(w, w) for w in words).lower()


def _discriminators(text: str) -> frozenset[str]:
    # Train letters and numbers ("pump A" / "pump B", "heater 1" / "heater 2") name different
    # machines although the rest of the words agree, which fuzzy scores barely notice.
    return frozenset(w for w in text.split() if len(w) == 1 or w.isdigit())


def _discriminators_conflict(a: str, b: str) -> bool:
    da, db = _discriminators(a), _discriminators(b)
    return bool(da) and bool(db) and da != db


def _type_letter(tokens: Iterable[str], unit_keys: set[str]) -> str | None:
    """First letter of the equipment number (``P`` of ``P101`` and of ``PMP102``), skipping the unit
    token (``CDU1``): the type code, which CMMS and registry abbreviate to different lengths."""
    for token in tokens:
        if token in unit_keys:
            continue
        found = _EQUIPMENT_TOKEN.match(token)
        if found:
            return found.group(1)[0]
    return None


def _parse_install_dates(cmms: pd.DataFrame) -> list:
    parsed = pd.to_datetime(cmms["InstallDate"], format="%Y-%m-%d", errors="coerce")
    bad = cmms["InstallDate"].notna() & parsed.isna()
    if bad.any():
        row = cmms[bad].iloc[0]
        raise ValueError(f"equipment {row['EquipNo']!r}: InstallDate {row['InstallDate']!r} is not YYYY-MM-DD")
    return [None if pd.isna(ts) else ts.date() for ts in parsed]


def _match_equipment(reg: pd.DataFrame, cmms: pd.DataFrame, threshold: float) -> dict[str, tuple[str, str, float]]:
    """EquipNo -> (registry asset_id, rule, score) for every CMMS record with a registry twin."""
    reg_ids = set(reg["asset_id"])
    by_key: dict[str, list[str]] = {}
    for asset_id in reg["asset_id"]:
        by_key.setdefault(normalise_asset_id(asset_id), []).append(asset_id)
    # Two registry ids with one key would make the key a guess; leave those to the name rule.
    unique_key = {k: ids[0] for k, ids in by_key.items() if k and len(ids) == 1}

    matched: dict[str, tuple[str, str, float]] = {}
    for equip_no in cmms["EquipNo"]:
        if equip_no in reg_ids:
            matched[equip_no] = (equip_no, "exact_id", 1.0)
        elif normalise_asset_id(equip_no) in unique_key:
            matched[equip_no] = (unique_key[normalise_asset_id(equip_no)], "normalised_id", 1.0)

    # Fuzzy names only among what the id rules left: same unit, same type letter, one CMMS record per asset.
    claimed = {asset_id for asset_id, _, _ in matched.values()}
    unit_keys = {_compact(u) for u in reg["unit_id"] if u}
    buckets: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for row in reg.itertuples(index=False):
        unit, name = _compact(row.unit_id), normalise_description(row.asset_name)
        letter = _type_letter(_id_tokens(row.asset_id), {unit})
        if row.asset_id not in claimed and unit and letter and name:
            buckets.setdefault((unit, letter), []).append((row.asset_id, name))

    candidates: list[tuple[float, float, str, str]] = []
    for row in cmms.itertuples(index=False):
        description = normalise_description(row.Description)
        if row.EquipNo in matched or not description:
            continue
        tokens = _id_tokens(row.EquipNo)
        units = ({_compact(row.PlantCode)} | set(tokens)) & unit_keys
        letter = _type_letter(tokens, units | {_compact(row.PlantCode)})
        for unit in sorted(units):
            for asset_id, name in buckets.get((unit, letter), []):
                score = fuzz.token_set_ratio(description, name) / 100.0
                if score >= threshold and not _discriminators_conflict(description, name):
                    # token_sort_ratio breaks token_set ties: a subset of words scores 1.0 on
                    # token_set against every longer name, the closest full name should win.
                    candidates.append((score, fuzz.token_sort_ratio(description, name) / 100.0, asset_id, row.EquipNo))
    for score, _, asset_id, equip_no in sorted(candidates, key=lambda c: (-c[0], -c[1], c[2], c[3])):
        if asset_id not in claimed and equip_no not in matched:
            matched[equip_no] = (asset_id, "fuzzy_name", round(score, 6))
            claimed.add(asset_id)
    return matched


def _first(values: Iterable[object]) -> object:
    return next((v for v in values if v is not None), None)


def master_assets(
    devices: pd.DataFrame, equipment: pd.DataFrame, *, fuzzy_threshold: float = ASSET_FUZZY_THRESHOLD
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Merge the IoT device registry and the CMMS equipment master into golden assets.

    Returns ``(assets, asset_xref)`` with the columns of silver ``assets`` and ``asset_xref``.
    Every registry asset keeps its asset_id as the golden id; every CMMS record is linked to one
    (rules ``exact_id``, ``normalised_id``, ``fuzzy_name``) or becomes a golden asset of its own,
    ``CMMS-<normalise_asset_id(EquipNo)>`` (rule ``new_golden``). Name, type, unit, site and
    manufacturer survive from the registry (CMMS Description and Manufacturer only fill gaps);
    model, install_date (a date) and criticality from the linked CMMS record (the strongest rule,
    then the highest score, then the smallest EquipNo, when several CMMS records share an asset).
    A CMMS-only asset takes unit, unit type and site from the registry unit its EquipNo or
    PlantCode names, when there is exactly one; its asset_type stays null.

    Exact duplicate input rows are dropped; a blank or conflicting asset_id / EquipNo, a missing
    column or an InstallDate that is not YYYY-MM-DD raises ``ValueError`` naming the value.
    Rows are sorted by asset_id (xref: asset_id, source_system, source_id).
    """
    _require(devices, DEVICE_COLUMNS, "devices")
    _require(equipment, EQUIPMENT_COLUMNS, "equipment")
    if not 0.0 < fuzzy_threshold <= 1.0:
        raise ValueError(f"fuzzy_threshold must be in (0, 1], got {fuzzy_threshold!r}")
    reg = _one_row_per_key(_clean(devices, DEVICE_COLUMNS), "asset_id", "devices")
    cmms = _one_row_per_key(_clean(equipment, EQUIPMENT_COLUMNS), "EquipNo", "equipment")
    cmms["install_date"] = _parse_install_dates(cmms)
    matched = _match_equipment(reg, cmms, fuzzy_threshold)

    xref_rows = [
        {"source_system": SYSTEM_REGISTRY, "source_id": a, "asset_id": a, "match_rule": "system_of_record", "match_score": 1.0}
        for a in reg["asset_id"]
    ]
    linked: dict[str, list[tuple[int, float, str]]] = {}  # golden id -> (rule rank, -score, EquipNo)
    for equip_no in cmms["EquipNo"]:
        asset_id, rule, score = matched.get(equip_no) or (f"CMMS-{normalise_asset_id(equip_no) or equip_no}", "new_golden", 1.0)
        xref_rows.append({"source_system": SYSTEM_CMMS, "source_id": equip_no, "asset_id": asset_id, "match_rule": rule, "match_score": score})
        linked.setdefault(asset_id, []).append((_ASSET_RULE_RANK[rule], -score, equip_no))
    cmms_by_no = cmms.set_index("EquipNo")

    # Registry units, for CMMS-only assets: unit_type and site only when the unit has one of each.
    units: dict[str, dict[str, str | None]] = {}
    for unit_id, group in reg[reg["unit_id"].notna()].groupby("unit_id", sort=True):
        attrs = {c: group[c].dropna().unique() for c in ("unit_type", "site_id")}
        units.setdefault(_compact(unit_id), {"unit_id": unit_id, **{c: v[0] if len(v) == 1 else None for c, v in attrs.items()}})
    sites = {_compact(s): s for s in reg["site_id"].dropna()}

    asset_rows = []
    for row in reg.itertuples(index=False):
        records = [cmms_by_no.loc[no] for _, _, no in sorted(linked.get(row.asset_id, []))]
        asset_rows.append({
            "asset_id": row.asset_id,
            "asset_name": row.asset_name or _first(r["Description"] for r in records),
            "asset_type": row.asset_type,
            "unit_id": row.unit_id,
            "unit_type": row.unit_type,
            "site_id": row.site_id,
            "manufacturer": row.manufacturer or _first(r["Manufacturer"] for r in records),
            "model": _first(r["Model"] for r in records),
            "install_date": _first(r["install_date"] for r in records),
            "criticality": _first(r["Criticality"] for r in records),
            "source_systems": ",".join(sorted({SYSTEM_REGISTRY} | ({SYSTEM_CMMS} if records else set()))),
        })
    reg_ids = set(reg["asset_id"])
    for asset_id in sorted(set(linked) - reg_ids):
        nos = [no for _, _, no in sorted(linked[asset_id])]
        records = [cmms_by_no.loc[no] for no in nos]
        unit_hits = sorted({
            key for no, r in zip(nos, records) for key in {_compact(r["PlantCode"]), *_id_tokens(no)} if key in units
        })
        unit = units[unit_hits[0]] if len(unit_hits) == 1 else {}
        plant_site = _first(sites.get(_compact(r["PlantCode"])) for r in records)
        asset_rows.append({
            "asset_id": asset_id,
            "asset_name": _first(r["Description"] for r in records),
            "asset_type": None,
            "unit_id": unit.get("unit_id"),
            "unit_type": unit.get("unit_type"),
            "site_id": unit.get("site_id") or plant_site,
            "manufacturer": _first(r["Manufacturer"] for r in records),
            "model": _first(r["Model"] for r in records),
            "install_date": _first(r["install_date"] for r in records),
            "criticality": _first(r["Criticality"] for r in records),
            "source_systems": SYSTEM_CMMS,
        })

    assets = _frame(asset_rows, columns("silver", "assets"), ["asset_id"])
    xref_cols = columns("silver", "asset_xref")
    xref = _frame(xref_rows, xref_cols, ["asset_id", "source_system", "source_id"], floats=("match_score",))
    return assets, xref


# ---------------------------------------------------------------------------------------------
# Historian tags
# ---------------------------------------------------------------------------------------------

HISTORIAN_KEY_SQL = "regexp_replace(upper({}), '[^A-Z0-9]', '')"  # ``_compact`` in Spark SQL


def historian_keys(tags: pd.DataFrame) -> pd.DataFrame:
    """The tag master keyed for historian matching: one row (key, asset_id, tag) per tag.

    The key is the uppercase alphanumerics of asset and tag (``CDU1P101TI2001`` for asset
    ``CDU1-P-101``, tag ``TI-2001``); a TagName matches when its own uppercase alphanumerics
    (``HISTORIAN_KEY_SQL`` in Spark) equal it, so a large batch is resolved by a join, not by
    collecting its TagNames. Two tag-master rows with one key raise ``ValueError`` naming both.
    """
    _require(tags, TAG_MASTER_COLUMNS, "tags")
    master = _clean(tags, TAG_MASTER_COLUMNS).dropna().drop_duplicates()
    by_key: dict[str, tuple[str, str]] = {}
    for asset_id, tag in sorted(master.itertuples(index=False, name=None)):
        key = _compact(asset_id) + _compact(tag)
        if key in by_key and by_key[key] != (asset_id, tag):
            raise ValueError(f"tags: {by_key[key]} and {(asset_id, tag)} share the historian key {key!r}")
        by_key[key] = (asset_id, tag)
    return pd.DataFrame([(k, a, t) for k, (a, t) in by_key.items() if k], columns=["key", "asset_id", "tag"], dtype=object)


def historian_xref(tag_names: Iterable[str], tags: pd.DataFrame) -> pd.DataFrame:
    """Map historian TagName spellings (``CDU1.P101.TI2001``) to (asset_id, tag) of the tag master.

    The key on both sides is the uppercase alphanumerics (``CDU1P101TI2001`` for asset
    ``CDU1-P-101`` and tag ``TI-2001``). One row per distinct TagName that matches, sorted by
    source_id, rule ``normalised_tag``, score 1.0; null and unmatched TagNames are left out (the
    caller quarantines their readings as unknown). Two tag-master rows with one key raise
    ``ValueError`` naming both, since either answer would be a guess.
    """
    if isinstance(tag_names, (str, bytes)):
        raise ValueError(f"tag_names must be an iterable of TagNames, not the single string {tag_names!r}")
    by_key = {key: (asset_id, tag) for key, asset_id, tag in historian_keys(tags).itertuples(index=False, name=None)}
    rows = []
    for name in sorted({t for t in map(_text, tag_names) if t is not None}):
        hit = by_key.get(_compact(name))
        if hit:
            rows.append({"source_id": name, "asset_id": hit[0], "tag": hit[1], "match_rule": "normalised_tag", "match_score": 1.0})
    return _frame(rows, HISTORIAN_XREF_COLUMNS, ["source_id"], floats=("match_score",))


# ---------------------------------------------------------------------------------------------
# Customers
# ---------------------------------------------------------------------------------------------

def _fold_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def normalise_customer_name(name: str | None) -> str:
    """Casefolded, accent- and punctuation-free name without trailing legal forms.

    ``Acme Petroleum Ltd.``, ``ACME PETROLEUM LIMITED`` and ``Acme Petroleum`` all give
    ``acme petroleum``; ``B.V.`` and ``S.p.A.`` are read as ``bv`` and ``spa``. A name made only of a
    legal form keeps it (``AG`` stays ``ag``), so no name normalises to nothing but punctuation.
    """
    text = _fold_accents(name or "").casefold()
    text = re.sub(r"[.'\u2019]", "", text)  # dotted abbreviations and apostrophes join up: "b.v." -> "bv"
    words = re.sub(r"[^0-9a-z]+", " ", text).split()
    while len(words) > 1 and words[-1] in _LEGAL_FORMS:
        words.pop()
    return " ".join(words)


class _UnionFind:
    """Disjoint sets over 0..n-1; the root is always the smallest member, so clusters are order-free."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _digits_conflict(a: str, b: str) -> bool:
    # "Petro 1" / "Petro 2" score 0.86+ yet are separate legal entities.
    da, db = {w for w in a.split() if w.isdigit()}, {w for w in b.split() if w.isdigit()}
    return bool(da) and bool(db) and da != db


def _most_frequent(values: Iterable[str | None]) -> str | None:
    """The commonest non-null value; a tie goes to the value seen first (callers pass oldest first)."""
    counts: dict[str, int] = {}
    for v in values:
        if v is not None:
            counts[v] = counts.get(v, 0) + 1
    return max(counts, key=lambda v: counts[v]) if counts else None  # max keeps the first of equals


def master_customers(
    accounts: pd.DataFrame, *, fuzzy_threshold: float = CUSTOMER_FUZZY_THRESHOLD
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Cluster CRM accounts that name one customer and build a golden record per cluster.

    Returns ``(customers, customer_xref)`` with the columns of silver ``customers`` and
    ``customer_xref``. Accounts are linked by identical Name (``exact_name``), identical
    :func:`normalise_customer_name` (``normalised_name``) or ``token_sort_ratio`` of normalised names
    >= ``fuzzy_threshold`` (``fuzzy_name``; only when the BillingCountries agree or one is blank, and
    never when the names carry different numbers); links are closed transitively (union-find).
    The golden id is ``CUST-<smallest Id>``, and that account's xref row has rule ``golden_source``;
    every other account shows its strongest link and score. Survivorship: name from the earliest
    CreatedDate (tie: smallest Id; blank dates last), country and industry the most frequent
    non-blank value (tie: the older record's), source_ids the sorted Ids comma-joined.

    Exact duplicate rows are dropped; a blank or conflicting Id, a blank Name, an unparseable
    CreatedDate or a missing column raises ``ValueError`` naming the value.
    """
    _require(accounts, ACCOUNT_COLUMNS, "accounts")
    if not 0.0 < fuzzy_threshold <= 1.0:
        raise ValueError(f"fuzzy_threshold must be in (0, 1], got {fuzzy_threshold!r}")
    acc = _one_row_per_key(_clean(accounts, ACCOUNT_COLUMNS), "Id", "accounts")
    if acc["Name"].isna().any():
        raise ValueError(f"accounts: Id {acc.loc[acc['Name'].isna(), 'Id'].iloc[0]!r} has a blank Name")
    created = pd.to_datetime(acc["CreatedDate"], utc=True, format="ISO8601", errors="coerce")
    bad = acc["CreatedDate"].notna() & created.isna()
    if bad.any():
        row = acc[bad].iloc[0]
        raise ValueError(f"accounts: Id {row['Id']!r} has CreatedDate {row['CreatedDate']!r}, not ISO-8601")
    acc["created"] = created
    acc["norm"] = acc["Name"].map(normalise_customer_name)

    n = len(acc)
    uf = _UnionFind(n)
    best: dict[int, tuple[int, float]] = {}  # record -> (rule rank, -score) of its strongest link

    def link(members: Sequence[int], rule: str, score: float = 1.0) -> None:
        for i in members:
            best[i] = min(best.get(i, (99, 0.0)), (_CUSTOMER_RULE_RANK[rule], -score))
            uf.union(members[0], i)

    for rule, col in (("exact_name", "Name"), ("normalised_name", "norm")):
        for key, idx in acc.groupby(col, sort=True).indices.items():
            if key and len(idx) > 1:
                link(sorted(idx), rule)

    # Fuzzy on distinct normalised names (records sharing one are already linked above).
    norm_groups = {k: sorted(v) for k, v in acc.groupby("norm", sort=True).indices.items() if k}
    norms = list(norm_groups)
    if len(norms) > 1:
        countries = {k: {c.upper() if c else None for c in acc.loc[idx, "BillingCountry"]} for k, idx in norm_groups.items()}
        scores = process.cdist(norms, norms, scorer=fuzz.token_sort_ratio, score_cutoff=fuzzy_threshold * 100, workers=1)
        for i, j in zip(*scores.nonzero()):
            if i >= j or _digits_conflict(norms[i], norms[j]):
                continue
            ci, cj = countries[norms[i]], countries[norms[j]]
            if not (None in ci or None in cj or ci & cj):
                continue
            score = round(float(scores[i, j]) / 100.0, 6)
            link(norm_groups[norms[i]] + norm_groups[norms[j]], "fuzzy_name", score)

    clusters: dict[int, list[int]] = {}
    for i in range(n):
        clusters.setdefault(uf.find(i), []).append(i)

    # Oldest first (blank dates last, then smallest Id): the name clerks entered first survives.
    by_age = acc.sort_values(["created", "Id"], na_position="last", kind="stable").index
    age = {i: rank for rank, i in enumerate(by_age)}
    ids, name_of, country_of, industry_of = (acc[c].tolist() for c in ("Id", "Name", "BillingCountry", "Industry"))
    customer_rows, xref_rows = [], []
    rule_names = {rank: rule for rule, rank in _CUSTOMER_RULE_RANK.items()}
    for members in clusters.values():
        golden = members[0]  # acc is sorted by Id and members ascend, so this is the smallest Id
        customer_id = f"CUST-{ids[golden]}"
        oldest_first = sorted(members, key=age.__getitem__)
        customer_rows.append({
            "customer_id": customer_id,
            "name": name_of[oldest_first[0]],
            "country": _most_frequent(country_of[i] for i in oldest_first),
            "industry": _most_frequent(industry_of[i] for i in oldest_first),
            "source_ids": ",".join(ids[i] for i in members),
        })
        for i in members:
            if i == golden:
                rule, score = "golden_source", 1.0
            else:
                rank, neg_score = best[i]
                rule, score = rule_names[rank], -neg_score
            xref_rows.append({"source_system": SYSTEM_CRM, "source_id": ids[i], "customer_id": customer_id, "match_rule": rule, "match_score": score})

    customers = _frame(customer_rows, columns("silver", "customers"), ["customer_id"])
    xref = _frame(xref_rows, columns("silver", "customer_xref"), ["customer_id", "source_id"], floats=("match_score",))
    return customers, xref
