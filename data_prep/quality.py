"""Data-quality expectations declared as data, applied to Spark DataFrames in one pass.

An expectation is (name, condition, action): ``condition`` is a Spark SQL boolean expression that a
good row satisfies; a row for which it is false or null fails it. Action ``quarantine`` sends the
row to ``quarantine/<table>`` with the rule's name and a reason; ``fail`` stops the run with an
error that names the rule, the count and a sample record. Rules are checked in declared order and a
row is charged to the first rule it fails, so every rejected row has exactly one reason.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc
import yaml

from data_prep import schemas

EXPECTATIONS_FILE = Path(__file__).with_name("expectations.yaml")


@dataclass(frozen=True)
class Expectation:
    name: str
    condition: str
    action: Literal["quarantine", "fail"]
    description: str
    reason: str | None = None  # SQL string expression for the per-row reason; default: the description


class DataQualityError(RuntimeError):
    """An expectation with action ``fail`` was violated."""


def load_expectations(table: str, path: Path = EXPECTATIONS_FILE) -> list[Expectation]:
    """The declared expectations of one silver table, in order."""
    doc = yaml.safe_load(path.read_text())
    if table not in doc:
        raise ValueError(f"no expectations declared for table {table!r} in {path}")
    out = []
    for i, item in enumerate(doc[table]):
        missing = {"name", "condition", "action"} - set(item)
        if missing:
            raise ValueError(f"{path}: {table}[{i}] lacks {sorted(missing)[0]!r}")
        if item["action"] not in ("quarantine", "fail"):
            raise ValueError(f"{path}: {table}.{item['name']}: action {item['action']!r} is not quarantine or fail")
        out.append(
            Expectation(item["name"], item["condition"], item["action"], item.get("description", item["name"]), item.get("reason"))
        )
    return out


def _sql_str(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def apply_expectations(df, expectations: list[Expectation]):
    """Add ``rule`` and ``reason``: null for a good row, else the first expectation it fails.

    Raises ``DataQualityError`` if any row fails a ``fail`` rule.
    """
    from pyspark.sql import functions as F

    if not expectations:
        return df.withColumn("rule", F.lit(None).cast("string")).withColumn("reason", F.lit(None).cast("string"))
    rule_case = "CASE " + " ".join(
        f"WHEN NOT coalesce(({e.condition}), false) THEN {_sql_str(e.name)}" for e in expectations
    ) + " END"
    reason_case = "CASE " + " ".join(
        f"WHEN NOT coalesce(({e.condition}), false) THEN {e.reason or _sql_str(e.description)}" for e in expectations
    ) + " END"
    checked = df.withColumn("rule", F.expr(rule_case)).withColumn("reason", F.expr(reason_case))
    fatal = [e.name for e in expectations if e.action == "fail"]
    if fatal:
        bad = checked.where(F.col("rule").isin(fatal)).limit(1).collect()
        if bad:
            row = bad[0].asDict()
            raise DataQualityError(f"expectation {row['rule']!r} failed: {row['reason']} (record {row.get('_record_id')})")
    return checked


# What a checked row carries besides its silver columns, so that it can go either way.
QUARANTINE_ONLY = ["_source", "_source_file", "_line", "raw", "rule", "reason"]


def checked_rows(checked, table: str):
    """One frame per refinement: the silver columns plus what quarantine needs.

    ``raw`` is kept only for rejected rows: good rows are in bronze already and need not travel twice.
    """
    from pyspark.sql import functions as F

    silver_cols = schemas.columns("silver", table)
    extra = [c for c in QUARANTINE_ONLY if c not in silver_cols]
    return checked.select(
        *silver_cols, *[F.when(F.col("rule").isNotNull(), F.col(c)).alias(c) if c == "raw" else F.col(c) for c in extra]
    )


def split_checked(checked, table: str):
    """Spark: (silver rows, quarantine rows) from checked rows; lazy, each side recomputes the checks."""
    from pyspark.sql import functions as F

    good = checked.where(F.col("rule").isNull()).select(*schemas.columns("silver", table))
    bad = checked.where(F.col("rule").isNotNull()).select(
        *schemas.QUARANTINE.names[:-1], F.current_timestamp().alias("quarantined_at")
    )
    return good, bad


def split_checked_arrow(data: pa.Table, table: str, now: datetime) -> tuple[pa.Table, pa.Table]:
    """Arrow: (silver rows, quarantine rows) from checked rows collected once."""
    failed = pc.is_valid(data.column("rule"))
    good = data.filter(pc.invert(failed)).select(schemas.columns("silver", table))
    bad = data.filter(failed).select(schemas.QUARANTINE.names[:-1])
    bad = bad.append_column("quarantined_at", pa.array([now] * bad.num_rows, type=schemas.TS))
    return good, bad


def mark_duplicates(df, keys: list[str], existing=None, order: tuple[str, ...] = ("_source_file", "_line")):
    """Add ``dup_rank`` (1 for the first arrival of a key in this batch, 2.. for later copies) and ``in_silver``.

    Rows with a null key are never duplicates (a required-field rule rejects them instead).
    Duplicates are rare, so the full pass is only a narrow hash count per key; the ordering that
    picks the first arrival runs on the few repeated keys' rows alone, and joins back by broadcast.
    A window over all rows would shuffle every wide row.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    key_ok = F.lit(True)
    for k in keys:
        key_ok = key_ok & F.col(k).isNotNull()
    repeated = df.where(key_ok).groupBy(*keys).count().where(F.col("count") > 1).select(*keys)
    copies = df.join(F.broadcast(repeated), on=keys, how="left_semi").select(*keys, "_record_id", *order)
    ranked = copies.select(
        "_record_id", F.row_number().over(Window.partitionBy(*keys).orderBy(*order)).alias("dup_rank")
    )
    df = df.join(F.broadcast(ranked), on="_record_id", how="left").withColumn("dup_rank", F.coalesce("dup_rank", F.lit(1)))
    if existing is None:
        return df.withColumn("in_silver", F.lit(False))
    # Same idea across batches: find the (few) keys already in silver on narrow rows, then broadcast.
    seen = existing.select(*keys).join(df.where(key_ok).select(*keys), on=keys, how="left_semi").distinct()
    seen = seen.withColumn("in_silver", F.lit(True))
    return df.join(F.broadcast(seen), on=keys, how="left").withColumn("in_silver", F.coalesce("in_silver", F.lit(False)))
