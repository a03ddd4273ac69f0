"""Data-quality expectations declared as data, applied to Spark DataFrames in one pass.

An expectation is (name, condition, action): ``condition`` is a Spark SQL boolean expression that a
good row satisfies; a row for which it is false or null fails it. Action ``quarantine`` sends the
row to ``quarantine/<table>`` with the rule's name and a reason; ``fail`` stops the run with an
error that names the rule, the count and a sample record. Rules are checked in declared order and a
row is charged to the first rule it fails, so every rejected row has exactly one reason.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml

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
    """Split ``df`` into (good rows, failed rows with ``rule`` and ``reason`` columns).

    Raises ``DataQualityError`` if any row fails a ``fail`` rule.
    """
    from pyspark.sql import functions as F

    if not expectations:
        empty = df.limit(0).withColumn("rule", F.lit(None).cast("string")).withColumn("reason", F.lit(None).cast("string"))
        return df, empty
    rule_case = "CASE " + " ".join(
        f"WHEN NOT coalesce(({e.condition}), false) THEN {_sql_str(e.name)}" for e in expectations
    ) + " END"
    reason_case = "CASE " + " ".join(
        f"WHEN NOT coalesce(({e.condition}), false) THEN {e.reason or _sql_str(e.description)}" for e in expectations
    ) + " END"
    # Persisted: the good and the failed rows are written separately, and computing the checks
    # (parsing, joins, the duplicate window) twice would double the cost. Callers clear the cache.
    checked = df.withColumn("rule", F.expr(rule_case)).withColumn("reason", F.expr(reason_case)).persist()
    fatal = [e.name for e in expectations if e.action == "fail"]
    if fatal:
        bad = checked.where(F.col("rule").isin(fatal)).limit(1).collect()
        if bad:
            row = bad[0].asDict()
            raise DataQualityError(f"expectation {row['rule']!r} failed: {row['reason']} (record {row.get('_record_id')})")
    good = checked.where(F.col("rule").isNull()).drop("rule", "reason")
    failed = checked.where(F.col("rule").isNotNull())
    return good, failed


def mark_duplicates(df, keys: list[str], existing=None, order: tuple = ("_source_file", "_line")):
    """Add ``dup_rank`` (1 for the first arrival of a key in this batch) and ``in_silver``.

    Rows with a null key are never duplicates (a required-field rule rejects them instead).
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    key_ok = F.lit(True)
    for k in keys:
        key_ok = key_ok & F.col(k).isNotNull()
    window = Window.partitionBy(*keys).orderBy(*order)
    df = df.withColumn("dup_rank", F.when(key_ok, F.row_number().over(window)).otherwise(F.lit(1)))
    if existing is None:
        return df.withColumn("in_silver", F.lit(False))
    seen = existing.select(*keys).distinct().withColumn("in_silver", F.lit(True))
    return df.join(seen, on=keys, how="left").withColumn("in_silver", F.coalesce("in_silver", F.lit(False)))


def to_quarantine(failed):
    """Failed rows in the quarantine layout: identity, rule, reason, the raw record."""
    from pyspark.sql import functions as F

    return failed.select(
        "_record_id", "_source", "_source_file", "_line", "_batch_id", "rule", "reason", "raw",
        F.current_timestamp().alias("quarantined_at"),
    )
