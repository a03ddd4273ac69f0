"""Refinement, bronze to silver to gold, incrementally: only bronze batches not yet refined.

Order matters: master data first (golden assets, tags, customers and their crosswalks), then the
record tables that resolve their source ids through them, then gold for what changed. Progress is
kept per bronze table in ``_meta/prep_progress``; silver and quarantine appends carry a Delta
transaction id (``prep-<table>``, last batch refined), so a run that died half way is finished, not
doubled, by the next one. With no new bronze batch nothing is written at all.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from data_prep import duck, gold, mdm, schemas
from data_prep.lake import Lake, Txn, spark_to_arrow
from data_prep.quality import split_checked, split_checked_arrow
from data_prep.refine_records import (
    refine_alarms, refine_alarms_duckdb, refine_orders, refine_orders_duckdb, refine_production,
    refine_production_duckdb, refine_work_orders, refine_work_orders_duckdb,
)
from data_prep.refine_telemetry import refine_telemetry, refine_telemetry_duckdb

STAGES = ("silver", "gold", "all")
ENGINES = ("duckdb", "spark")
RECORD_TABLES = ("telemetry", "alarms", "work_orders", "production", "orders")
MASTER_SOURCES = {"devices": "asset_id", "equipment": "EquipNo", "crm_accounts": "Id"}


@dataclass
class PrepResult:
    silver_rows: dict[str, int] = field(default_factory=dict)
    quarantined: dict[str, int] = field(default_factory=dict)
    master_rebuilt: list[str] = field(default_factory=list)
    gold_rebuilt: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # wall time per step, for the run summary

    @property
    def changed(self) -> bool:
        return bool(self.silver_rows or self.quarantined or self.master_rebuilt)


def _progress(lake: Lake) -> dict[str, int]:
    if not lake.exists("_meta", "prep_progress"):
        return {}
    p = lake.read_arrow("_meta", "prep_progress", columns=["table", "_batch_id"]).to_pandas()
    return p.groupby("table")["_batch_id"].max().astype(int).to_dict()


def _latest_batch(lake: Lake, table: str) -> int:
    if not lake.exists("bronze", table):
        return 0
    ids = lake.read_arrow("bronze", table, columns=["_batch_id"]).column("_batch_id")
    return int(pa.compute.max(ids).as_py() or 0)


# ---------------------------------------------------------------------------- master data
def _is_date(text: object, iso_datetime: bool) -> bool:
    try:
        if iso_datetime:
            pd.to_datetime(str(text), utc=True, format="ISO8601")
        else:
            datetime.strptime(str(text), "%Y-%m-%d")
    except ValueError:
        return False
    return True


# Per master-data source: fields that must be present, and date fields with their format
# (True: ISO-8601 date-time, False: YYYY-MM-DD). Rows failing them are quarantined here, since the
# golden-record rules would reject the whole batch.
MASTER_FIELD_RULES = {
    "devices": ((), {}),
    "equipment": ((), {"InstallDate": False}),
    "crm_accounts": (("Name",), {"CreatedDate": True}),
}


def parse_master_records(bronze: pd.DataFrame, id_column: str, table: str = "devices") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Bronze master-data rows to (records with their fields as columns, quarantine rows)."""
    required, dates = MASTER_FIELD_RULES[table]
    parsed, failed = [], []
    for row in bronze.to_dict("records"):  # not itertuples: it renames the leading-underscore columns
        try:
            rec = json.loads(row["raw"]) if row["raw"] else None
        except ValueError:
            rec = None
        if not isinstance(rec, dict) or "_unparsed" in rec:
            failed.append((row, "well_formed_record", "the master-data record is not a JSON object or CSV row"))
        elif not str(rec.get(id_column) or "").strip():
            failed.append((row, "id_present", f"the record has no {id_column}"))
        elif missing := [f for f in required if not str(rec.get(f) or "").strip()]:
            failed.append((row, "required_fields_present", f"the record has no {missing[0]}"))
        elif bad := [f for f, iso in dates.items() if str(rec.get(f) or "").strip() and not _is_date(rec[f], iso)]:
            failed.append((row, "dates_parse", f"{bad[0]} {rec[bad[0]]!r} is not a date"))
        else:
            parsed.append(rec)
    now = datetime.now(timezone.utc)
    quarantine = pd.DataFrame(
        [
            {**{c: r[c] for c in ("_record_id", "_source", "_source_file", "_line", "_batch_id", "raw")},
             "rule": rule, "reason": reason, "quarantined_at": now}
            for r, rule, reason in failed
        ],
        columns=schemas.QUARANTINE.names,
    )
    return pd.DataFrame(parsed), quarantine


def tag_master(devices: pd.DataFrame) -> pd.DataFrame:
    """The tag list of every registry asset, one row per (asset, tag)."""
    rows = [
        {"asset_id": d["asset_id"], "tag": t.get("tag"), "measurement": t.get("measurement"), "unit": t.get("unit"),
         "normal_min": t.get("normal_min"), "normal_max": t.get("normal_max")}
        for d in devices.to_dict("records")
        for t in (d.get("tags") if isinstance(d.get("tags"), list) else [])
    ]
    return pd.DataFrame(rows, columns=schemas.columns("silver", "tags")).drop_duplicates(["asset_id", "tag"])


def refresh_master_data(lake: Lake, progress: dict[str, int], result: PrepResult) -> dict[str, int]:
    """Rebuild golden assets/customers when a master-data source has a new batch; returns batches done."""
    latest = {t: _latest_batch(lake, t) for t in MASTER_SOURCES}
    new = {t for t, b in latest.items() if b > progress.get(t, 0)}
    parsed: dict[str, pd.DataFrame] = {}
    for table in new | ({"devices", "equipment"} if new & {"devices", "equipment"} else set()):
        if not lake.exists("bronze", table):
            parsed[table] = pd.DataFrame()
            continue
        bronze = lake.read_pandas("bronze", table)
        records, quarantine = parse_master_records(bronze, MASTER_SOURCES[table], table)
        parsed[table] = records
        fresh = quarantine[quarantine["_batch_id"] > progress.get(table, 0)]
        if len(fresh):
            lake.append(fresh, "quarantine", table, txn=Txn(f"prep-{table}", latest[table]))
        result.quarantined[table] = len(fresh)
    if "devices" in parsed:
        devices = parsed["devices"]
        equipment = parsed.get("equipment", pd.DataFrame())
        if devices.empty:
            devices = pd.DataFrame(columns=list(mdm.DEVICE_COLUMNS) + ["tags"])
        for col in mdm.EQUIPMENT_COLUMNS:
            if col not in equipment:
                equipment[col] = None
        assets, xref = mdm.master_assets(devices[list(mdm.DEVICE_COLUMNS)], equipment[list(mdm.EQUIPMENT_COLUMNS)])
        lake.overwrite(assets, "silver", "assets")
        lake.overwrite(xref, "silver", "asset_xref")
        lake.overwrite(tag_master(devices), "silver", "tags")
        result.master_rebuilt += ["assets", "asset_xref", "tags"]
    if "crm_accounts" in parsed:
        accounts = parsed["crm_accounts"]
        for col in mdm.ACCOUNT_COLUMNS:
            if col not in accounts:
                accounts[col] = None
        customers, cxref = mdm.master_customers(accounts[list(mdm.ACCOUNT_COLUMNS)])
        lake.overwrite(customers, "silver", "customers")
        lake.overwrite(cxref, "silver", "customer_xref")
        result.master_rebuilt += ["customers", "customer_xref"]
    return {t: latest[t] for t in new}


# ---------------------------------------------------------------------------- record tables
def _existing(lake: Lake, table: str):
    return lake.read("silver", table) if lake.exists("silver", table) else None


def _existing_arrow(lake: Lake, table: str) -> pa.Table | None:
    return lake.read_arrow("silver", table) if lake.exists("silver", table) else None


def refine_table(lake: Lake, spark, table: str, bronze):
    """Dispatch one record table's refinement with the master data it needs."""
    from pyspark.sql import functions as F

    if table == "telemetry":
        tags = lake.read_or_empty("silver", "tags")
        hx_df = spark.createDataFrame(mdm.historian_keys(_tag_master(lake)), "key string, asset_id string, tag string")
        existing = _existing(lake, "telemetry")
        if existing is not None:
            # Only the days this batch touches can hold its duplicates (partition pruning on event_date).
            day = F.coalesce(
                F.to_date(F.get_json_object("raw", "$.ts")),
                F.to_date(F.to_timestamp(F.get_json_object("raw", "$.TimeStamp"), "MM/dd/yyyy HH:mm:ss")),
            )
            days = [r[0] for r in bronze.select(day).distinct().collect() if r[0]]
            existing = existing.where(F.col("event_date").isin(days)) if days else None
        return refine_telemetry(bronze, lake.read_or_empty("silver", "assets"), tags, hx_df, existing)
    if table == "alarms":
        names = [r[0] for r in bronze.select(F.regexp_extract("raw", ALARM_TAG, 1)).distinct().collect() if r[0]]
        return refine_alarms(bronze, spark.createDataFrame(_alarm_xref(lake, names).to_pandas(), "source_id string, asset_id string"))
    if table == "work_orders":
        return refine_work_orders(bronze, lake.read_or_empty("silver", "asset_xref"), _existing(lake, "work_orders"))
    if table == "production":
        return refine_production(bronze, lake.read_or_empty("silver", "assets"), _existing(lake, "production"))
    if table == "orders":
        return refine_orders(bronze, lake.read_or_empty("silver", "customer_xref"), _existing(lake, "orders"))
    raise ValueError(f"no refinement for table {table!r}")


ALARM_TAG = r"TAG=([^ |]+)"  # the tag a structured journal line names


def _tag_master(lake: Lake) -> pd.DataFrame:
    return lake.read_pandas("silver", "tags") if lake.exists("silver", "tags") else pd.DataFrame(columns=["asset_id", "tag"])


def _alarm_xref(lake: Lake, names: list[str]) -> pa.Table:
    """(source_id, asset_id) for the tag names an alarm batch mentions, through the tag master."""
    hx = mdm.historian_xref(names, _tag_master(lake))
    return pa.Table.from_pandas(hx[["source_id", "asset_id"]], preserve_index=False,
                                schema=pa.schema([("source_id", pa.string()), ("asset_id", pa.string())]))


def refine_table_duckdb(lake: Lake, con, table: str, bronze: pa.Table) -> pa.Table:
    """DuckDB twin of ``refine_table``: checked rows of one record table from new bronze rows, as Arrow."""
    if table == "telemetry":
        def silver_keys(days: list) -> pa.Table:
            # Only the days this batch touches can hold its duplicates (partition pruning on event_date).
            return lake.read_arrow("silver", "telemetry", columns=["asset_id", "tag", "ts"],
                                   filter=ds.field("event_date").isin(days))

        return refine_telemetry_duckdb(
            con, bronze, lake.read_arrow_or_empty("silver", "assets"), lake.read_arrow_or_empty("silver", "tags"),
            mdm.historian_keys(_tag_master(lake)), silver_keys if lake.exists("silver", "telemetry") else None,
        )
    if table == "alarms":
        raw = duck.register(con, bronze.select(["raw"]), "alarm_raw")
        names = [n for (n,) in con.execute(f"SELECT DISTINCT regexp_extract(raw, '{ALARM_TAG}', 1) FROM {raw}").fetchall() if n]
        return refine_alarms_duckdb(con, bronze, _alarm_xref(lake, names))
    if table == "work_orders":
        return refine_work_orders_duckdb(con, bronze, lake.read_arrow_or_empty("silver", "asset_xref"), _existing_arrow(lake, table))
    if table == "production":
        return refine_production_duckdb(con, bronze, lake.read_arrow_or_empty("silver", "assets"), _existing_arrow(lake, table))
    if table == "orders":
        return refine_orders_duckdb(con, bronze, lake.read_arrow_or_empty("silver", "customer_xref"), _existing_arrow(lake, table))
    raise ValueError(f"no refinement for table {table!r}")


# Bronze tables up to this many rows are refined in one Spark job and written from Arrow.
SMALL_TABLE_ROWS = 200_000

BRONZE_OF = {"telemetry": "telemetry", "alarms": "alarms", "work_orders": "work_orders",
             "production": "production", "orders": "crm_orders"}


def _record_progress(lake: Lake, done: dict[str, int], result: PrepResult) -> None:
    now = datetime.now(timezone.utc)
    rows = [
        {"table": t, "_batch_id": b, "bronze_version": lake.version("bronze", t) if lake.exists("bronze", t) else -1,
         "processed_at": now, "silver_rows": result.silver_rows.get(t, 0), "quarantined_rows": result.quarantined.get(t, 0)}
        for t, b in sorted(done.items())
    ]
    lake.append(pd.DataFrame(rows), "_meta", "prep_progress")


def _refine_batch_duckdb(lake: Lake, con, table: str, since: int, txn: Txn) -> tuple[int, int]:
    """Refine one table's new bronze rows in DuckDB and append both sides; returns (silver, quarantined) rows."""
    source = BRONZE_OF[table]
    bronze = lake.read_arrow("bronze", source, filter=ds.field("_batch_id") > since)
    checked = refine_table_duckdb(lake, con, table, bronze)
    silver_rows, quarantine_rows = split_checked_arrow(checked, table, datetime.now(timezone.utc))
    lake.append(silver_rows, "silver", table, txn=txn)
    lake.append(quarantine_rows, "quarantine", source, txn=txn)
    return silver_rows.num_rows, quarantine_rows.num_rows


def _refine_batch_spark(lake: Lake, spark, table: str, since: int, txn: Txn) -> tuple[int, int]:
    """Refine one table's new bronze rows in Spark and append both sides; returns (silver, quarantined) rows."""
    from pyspark.sql import functions as F

    source = BRONZE_OF[table]
    bronze = lake.read("bronze", source).where(F.col("_batch_id") > since)
    checked = refine_table(lake, spark, table, bronze)
    small = lake.count("bronze", source) <= SMALL_TABLE_ROWS  # the whole table: a bound on the new batch
    if not lake.spark_native and ("://" in lake.root or small):
        # A remote lake without delta-spark, or a small table: collect once, split in Arrow,
        # write with delta-rs. For a few thousand rows, Spark's jobs, two writes and their
        # planning cost seconds where the rows take milliseconds.
        silver_rows, quarantine_rows = split_checked_arrow(spark_to_arrow(checked), table, datetime.now(timezone.utc))
    else:
        # Spark writes both sides (delta-spark, or Parquet that delta-rs commits); persisted so
        # the checks and the duplicate passes run once. The counts come from the commit log.
        silver_rows, quarantine_rows = split_checked(checked.persist(), table)
        before = lake.count("silver", table), lake.count("quarantine", source)
    lake.append(silver_rows, "silver", table, txn=txn)
    lake.append(quarantine_rows, "quarantine", source, txn=txn)
    spark.catalog.clearCache()
    if isinstance(silver_rows, pa.Table):
        return silver_rows.num_rows, quarantine_rows.num_rows
    return lake.count("silver", table) - before[0], lake.count("quarantine", source) - before[1]


def refine_silver(lake: Lake, spark) -> PrepResult:
    """Bronze to silver (and quarantine) for every bronze batch not refined yet.

    ``spark`` None: refined by DuckDB in this process (``duck``); else by that Spark session.
    """
    result = PrepResult()
    con = duck.connect() if spark is None else None
    progress = _progress(lake)
    started = time.perf_counter()
    done = refresh_master_data(lake, progress, result)
    result.seconds["master_data"] = time.perf_counter() - started
    for table in RECORD_TABLES:
        started = time.perf_counter()
        source = BRONZE_OF[table]
        latest = _latest_batch(lake, source)
        since = progress.get(source, 0)
        if latest <= since:
            continue
        txn = Txn(f"prep-{table}", latest)
        if spark is None:
            n_silver, n_quarantined = _refine_batch_duckdb(lake, con, table, since, txn)
        else:
            n_silver, n_quarantined = _refine_batch_spark(lake, spark, table, since, txn)
        result.silver_rows[table] = n_silver
        result.quarantined[source] = n_quarantined
        result.seconds[table] = time.perf_counter() - started
        done[source] = latest
    if done:
        _record_progress(lake, done, result)
    return result


def build_gold(lake: Lake, spark) -> list[str]:
    """Silver to gold for what silver gained since gold was last built; returns the tables written.

    Gold's own progress row (table ``gold``) remembers the newest bronze batch it has seen, so only
    the days that newer telemetry touched are recomputed.
    """
    progress = _progress(lake)
    newest = max((progress.get(t, 0) for t in list(BRONZE_OF.values()) + list(MASTER_SOURCES)), default=0)
    since = progress.get("gold", 0)
    if newest <= since:
        return []
    touched = set()
    if lake.exists("silver", "telemetry"):
        days = lake.read_arrow("silver", "telemetry", columns=["event_date"], filter=ds.field("_batch_id") > since)
        touched = set(pa.compute.unique(days.column("event_date")).to_pylist())
    written = gold.refresh_gold(lake, spark, touched)
    _record_progress(lake, {"gold": newest}, PrepResult())
    return written


def prep(lake: Lake, spark) -> PrepResult:
    """Bronze to silver to gold, incrementally."""
    result = refine_silver(lake, spark)
    started = time.perf_counter()
    result.gold_rebuilt = build_gold(lake, spark)
    result.seconds["gold"] = time.perf_counter() - started
    return result


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prep", help="refine new bronze data into silver (with quarantine) and gold")
    p.add_argument("--lake", help="lake root (default from settings)")
    p.add_argument("--stage", choices=STAGES, default="all", help="silver: bronze to silver; gold: silver to gold")
    p.add_argument("--engine", choices=ENGINES, help="duckdb (one machine) or spark (default from settings: prep_engine)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, settings) -> int:
    engine = getattr(args, "engine", None) or settings.prep_engine
    spark = None
    if engine == "spark":
        from data_prep.spark_session import get_spark

        spark = get_spark(settings)
    lake = Lake(settings.lake_uri, spark=spark)
    if not lake.exists("_meta", "ingested_files"):
        raise FileNotFoundError(f"no ingested data in lake {settings.lake_uri}: run `refinery ingest` first")
    result = PrepResult()
    if args.stage in ("silver", "all"):
        result = refine_silver(lake, spark)
    if args.stage in ("gold", "all"):
        result.gold_rebuilt = build_gold(lake, spark)
    if not (result.changed or result.gold_rebuilt):
        print("prep: no new bronze data; nothing written")
        return 0
    for table, n in sorted(result.silver_rows.items()):
        print(f"  silver/{table:<14} +{n} rows")
    for table, n in sorted(result.quarantined.items()):
        print(f"  quarantine/{table:<10} +{n} rows")
    if result.master_rebuilt:
        print(f"  master data rebuilt: {', '.join(result.master_rebuilt)}")
    if result.gold_rebuilt:
        print(f"  gold refreshed: {', '.join(result.gold_rebuilt)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Component entry point: ``python -m data_prep.prep --lake ...``."""
    from refinery.settings import load_settings

    parser = argparse.ArgumentParser(prog="data_prep.prep")
    parser.add_argument("--lake", required=True)
    parser.add_argument("--stage", choices=STAGES, default="all")
    parser.add_argument("--engine", choices=ENGINES, help="default from settings (prep_engine)")
    args = parser.parse_args(argv)
    return run(args, load_settings(lake_uri=args.lake))


if __name__ == "__main__":
    raise SystemExit(main())
