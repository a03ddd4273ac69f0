"""Schemas as code: one Arrow schema per lake table, defined once, enforced on every write.

Other modules take column lists from here (``columns("silver", "telemetry")``) instead of copying
them. Timestamps are UTC microseconds, which Spark, delta-rs, Synapse and Power BI all read.
"""
from __future__ import annotations

import pyarrow as pa

TS = pa.timestamp("us", tz="UTC")


def _s(*fields: tuple) -> pa.Schema:
    return pa.schema([pa.field(name, typ, nullable=nullable) for name, typ, nullable in fields])


# Every bronze table: the record exactly as it came (``raw``) plus where and when it came from.
# Event Hubs envelope columns are filled for events and null for files.
BRONZE = _s(
    ("_record_id", pa.string(), False),  # "<source file>#<line>": unique and stable across re-ingests
    ("_source", pa.string(), False),
    ("_source_file", pa.string(), False),
    ("_line", pa.int64(), False),
    ("_batch_id", pa.int64(), False),
    ("_ingested_at", TS, False),
    ("eh_partition", pa.int32(), True),
    ("eh_offset", pa.int64(), True),
    ("eh_sequence_number", pa.int64(), True),
    ("eh_enqueued_time", TS, True),
    ("eh_properties", pa.string(), True),
    ("raw", pa.string(), True),
)
BRONZE_TABLES = (
    "telemetry", "alarms", "devices", "equipment", "work_orders", "production", "crm_accounts", "crm_orders",
)

# Every quarantine table: the bronze row's identity, the rule that rejected it and why, the raw record.
QUARANTINE = _s(
    ("_record_id", pa.string(), False),
    ("_source", pa.string(), False),
    ("_source_file", pa.string(), False),
    ("_line", pa.int64(), False),
    ("_batch_id", pa.int64(), False),
    ("rule", pa.string(), False),
    ("reason", pa.string(), True),
    ("raw", pa.string(), True),
    ("quarantined_at", TS, False),
)

SILVER: dict[str, pa.Schema] = {
    "telemetry": _s(
        ("asset_id", pa.string(), False),
        ("tag", pa.string(), False),
        ("measurement", pa.string(), False),
        ("ts", TS, False),
        ("value", pa.float64(), False),  # in the measurement's canonical unit
        ("unit", pa.string(), False),
        ("source_unit", pa.string(), False),  # the unit the device or historian reported
        ("quality", pa.string(), True),
        ("source", pa.string(), False),
        ("enqueued_time", TS, True),
        ("event_date", pa.date32(), False),
        ("_record_id", pa.string(), False),
        ("_batch_id", pa.int64(), False),
    ),
    "alarms": _s(
        ("ts", TS, False),
        ("asset_id", pa.string(), True),  # golden id; null for plant-wide notes
        ("source_tag", pa.string(), True),
        ("priority", pa.string(), False),
        ("alarm_class", pa.string(), False),
        ("state", pa.string(), False),
        ("message", pa.string(), True),
        ("_record_id", pa.string(), False),
        ("_batch_id", pa.int64(), False),
    ),
    "work_orders": _s(
        ("wo_id", pa.string(), False),
        ("asset_id", pa.string(), False),
        ("source_equipment_id", pa.string(), False),
        ("wo_type", pa.string(), False),
        ("failure_code", pa.string(), True),
        ("priority", pa.string(), True),
        ("reported_at", TS, False),
        ("completed_at", TS, True),
        ("description", pa.string(), True),
        ("_record_id", pa.string(), False),
        ("_batch_id", pa.int64(), False),
    ),
    # Hourly unit records: unit-type-specific variables as maps, so a new unit type adds no columns.
    "production": _s(
        ("unit_id", pa.string(), False),
        ("ts", TS, False),
        ("throughput_m3h", pa.float64(), True),
        ("yield_pct", pa.float64(), True),
        ("settings", pa.map_(pa.string(), pa.float64()), True),
        ("feed", pa.map_(pa.string(), pa.float64()), True),
        ("quality", pa.map_(pa.string(), pa.float64()), True),
        ("_record_id", pa.string(), False),
        ("_batch_id", pa.int64(), False),
    ),
    "orders": _s(
        ("order_id", pa.string(), False),
        ("customer_id", pa.string(), False),
        ("source_account_id", pa.string(), False),
        ("product", pa.string(), False),
        ("quantity_bbl", pa.float64(), False),
        ("unit_price_usd", pa.float64(), False),
        ("amount_usd", pa.float64(), False),
        ("order_date", pa.date32(), False),
        ("_record_id", pa.string(), False),
        ("_batch_id", pa.int64(), False),
    ),
    # Master data: golden records and crosswalks from every source id to the golden id.
    "assets": _s(
        ("asset_id", pa.string(), False),
        ("asset_name", pa.string(), True),
        ("asset_type", pa.string(), True),
        ("unit_id", pa.string(), True),
        ("unit_type", pa.string(), True),
        ("site_id", pa.string(), True),
        ("manufacturer", pa.string(), True),
        ("model", pa.string(), True),
        ("install_date", pa.date32(), True),
        ("criticality", pa.string(), True),
        ("source_systems", pa.string(), False),
    ),
    "asset_xref": _s(
        ("source_system", pa.string(), False),
        ("source_id", pa.string(), False),
        ("asset_id", pa.string(), False),
        ("match_rule", pa.string(), False),
        ("match_score", pa.float64(), False),
    ),
    "tags": _s(
        ("asset_id", pa.string(), False),
        ("tag", pa.string(), False),
        ("measurement", pa.string(), False),
        ("unit", pa.string(), False),
        ("normal_min", pa.float64(), True),
        ("normal_max", pa.float64(), True),
    ),
    "customers": _s(
        ("customer_id", pa.string(), False),
        ("name", pa.string(), False),
        ("country", pa.string(), True),
        ("industry", pa.string(), True),
        ("source_ids", pa.string(), False),
    ),
    "customer_xref": _s(
        ("source_system", pa.string(), False),
        ("source_id", pa.string(), False),
        ("customer_id", pa.string(), False),
        ("match_rule", pa.string(), False),
        ("match_score", pa.float64(), False),
    ),
}

GOLD: dict[str, pa.Schema] = {
    "asset_health_hourly": _s(
        ("asset_id", pa.string(), False),
        ("unit_id", pa.string(), True),
        ("tag", pa.string(), False),
        ("measurement", pa.string(), False),
        ("unit", pa.string(), False),
        ("hour", TS, False),
        ("n", pa.int64(), False),
        ("mean", pa.float64(), True),
        ("min", pa.float64(), True),
        ("max", pa.float64(), True),
        ("std", pa.float64(), True),
        ("pct_out_of_normal", pa.float64(), True),
        ("event_date", pa.date32(), False),
    ),
    "asset_health_daily": _s(
        ("asset_id", pa.string(), False),
        ("unit_id", pa.string(), True),
        ("event_date", pa.date32(), False),
        ("n_readings", pa.int64(), False),
        ("pct_out_of_normal", pa.float64(), True),
        ("alarm_count", pa.int64(), False),
        ("critical_alarm_count", pa.int64(), False),
        ("failures", pa.int64(), False),
        ("maintenance_orders", pa.int64(), False),
    ),
    "production_kpis": _s(
        ("unit_id", pa.string(), False),
        ("unit_type", pa.string(), True),
        ("event_date", pa.date32(), False),
        ("hours", pa.int64(), False),
        ("throughput_m3h_mean", pa.float64(), True),
        ("yield_pct_mean", pa.float64(), True),
        ("yield_pct_min", pa.float64(), True),
        ("yield_pct_max", pa.float64(), True),
    ),
    "sales_orders": _s(
        ("customer_id", pa.string(), False),
        ("customer_name", pa.string(), True),
        ("product", pa.string(), False),
        ("month", pa.date32(), False),
        ("n_orders", pa.int64(), False),
        ("quantity_bbl", pa.float64(), False),
        ("revenue_usd", pa.float64(), False),
    ),
}

META: dict[str, pa.Schema] = {
    # Files ingested: the manifest that makes ingestion idempotent.
    "ingested_files": _s(
        ("source_file", pa.string(), False),
        ("size", pa.int64(), False),
        ("mtime_ns", pa.int64(), False),
        ("table", pa.string(), False),
        ("rows", pa.int64(), False),
        ("_batch_id", pa.int64(), False),
        ("ingested_at", TS, False),
    ),
    # Bronze batches refined into silver, per table: what makes refinement incremental.
    "prep_progress": _s(
        ("table", pa.string(), False),
        ("_batch_id", pa.int64(), False),
        ("bronze_version", pa.int64(), False),
        ("silver_rows", pa.int64(), False),
        ("quarantined_rows", pa.int64(), False),
        ("processed_at", TS, False),
    ),
}

PARTITIONS: dict[tuple[str, str], list[str]] = {
    ("silver", "telemetry"): ["event_date"],
    ("gold", "asset_health_hourly"): ["event_date"],
}

_REGISTRY: dict[tuple[str, str], pa.Schema] = {}
_REGISTRY.update({("bronze", t): BRONZE for t in BRONZE_TABLES})
_REGISTRY.update({("quarantine", t): QUARANTINE for t in BRONZE_TABLES})
_REGISTRY.update({("silver", t): s for t, s in SILVER.items()})
_REGISTRY.update({("gold", t): s for t, s in GOLD.items()})
_REGISTRY.update({("_meta", t): s for t, s in META.items()})


class SchemaError(ValueError):
    """Rows that do not fit a table's schema; the message names table and column."""


def register(layer: str, table: str, schema: pa.Schema, partition_by: list[str] | None = None) -> None:
    """Declare a table owned by another package (features, predictions, drift metrics)."""
    _REGISTRY[(layer, table)] = schema
    if partition_by:
        PARTITIONS[(layer, table)] = partition_by


def arrow_schema(layer: str, table: str, required: bool = True) -> pa.Schema | None:
    schema = _REGISTRY.get((layer, table))
    if schema is None and required:
        raise SchemaError(f"no schema declared for {layer}/{table}")
    return schema


def columns(layer: str, table: str) -> list[str]:
    return arrow_schema(layer, table).names


def partition_columns(layer: str, table: str) -> list[str]:
    return PARTITIONS.get((layer, table), [])


def conform(data: pa.Table, layer: str, table: str) -> pa.Table:
    """Select and cast ``data`` to the declared schema; extra or missing columns are errors.

    Casts are safe (no silent truncation); a null in a non-nullable column is an error.
    """
    schema = arrow_schema(layer, table)
    extra = [c for c in data.column_names if c not in schema.names]
    if extra:
        raise SchemaError(f"{layer}/{table}: unexpected column {extra[0]!r} (declared: {', '.join(schema.names)})")
    arrays = []
    for fld in schema:
        if fld.name not in data.column_names:
            raise SchemaError(f"{layer}/{table}: column {fld.name!r} is missing from the rows written")
        col = data.column(fld.name)
        if not col.type.equals(fld.type):
            try:
                col = col.cast(fld.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise SchemaError(f"{layer}/{table}: column {fld.name!r} of type {col.type} cannot be {fld.type}: {exc}") from None
        if not fld.nullable and col.null_count:
            raise SchemaError(f"{layer}/{table}: column {fld.name!r} has {col.null_count} null(s) but is required")
        arrays.append(col)
    return pa.Table.from_arrays(arrays, schema=schema)
