"""DuckDB, the engine that refines bronze on one machine: SQL over Arrow tables, in process.

Spark refines on a cluster (``refine_telemetry``, ``refine_records``, ``gold``). On a laptop its
fixed costs (query planning, generated code, the JIT compiling it) outweigh the rows: local Spark
on 2 cores took 37 s to refine 1 M readings. The DuckDB twins of those transforms sit beside them
(``refine_telemetry_duckdb`` next to ``refine_telemetry``) and read and write the same Arrow
tables; the ``prep_engine`` setting picks one. Both engines check the same declared expectations:
their conditions and reasons are Spark SQL, translated here by sqlglot, and
``tests/test_engine_parity.py`` holds the two engines to the same silver and quarantine rows.

This module holds what every DuckDB refinement shares: the connection, the translation, the
expectations, duplicate marking and the checked-rows shape (``quality`` for Spark).
"""
from __future__ import annotations

from functools import lru_cache
from itertools import count
from typing import Sequence

import pyarrow as pa

from data_prep import schemas
from data_prep.quality import QUARANTINE_ONLY, DataQualityError, Expectation

_names = count()


def connect(threads: int | None = None):
    """An in-memory DuckDB connection in UTC (dates of timestamps are UTC days, as in Spark)."""
    import duckdb

    con = duckdb.connect(config={"threads": threads} if threads else {})
    con.execute("SET TimeZone = 'UTC'")
    return con


def register(con, data: pa.Table, prefix: str = "t") -> str:
    """Expose an Arrow table to SQL under a fresh name (no copy); returns the name."""
    name = f"{prefix}_{next(_names)}"
    con.register(name, data)
    return name


def to_arrow(relation) -> pa.Table:
    """A DuckDB relation's rows as one Arrow table."""
    return relation.fetch_arrow_table()


@lru_cache(maxsize=512)
def spark_sql(expression: str) -> str:
    """A Spark SQL expression as DuckDB SQL.

    sqlglot maps Spark's ``format_string`` to DuckDB's ``format``, whose placeholders are ``{}``,
    not ``%s``; DuckDB's ``printf`` takes Spark's placeholders but, unlike Spark, formats only text
    with ``%s``, so the call is renamed and its arguments cast to text.
    """
    import sqlglot
    from sqlglot import exp

    def printf(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Format):
            args = [exp.cast(a, "VARCHAR") for a in node.expressions]
            return exp.Anonymous(this="printf", expressions=[node.this, *args])
        return node

    return sqlglot.parse_one(expression, read="spark").transform(printf).sql(dialect="duckdb")


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def expectation_columns(expectations: Sequence[Expectation]) -> str:
    """SQL select items ``rule`` and ``reason``: null for a good row, else the first expectation failed."""
    if not expectations:
        return "CAST(NULL AS VARCHAR) AS rule, CAST(NULL AS VARCHAR) AS reason"
    fails = [f"NOT coalesce(({spark_sql(e.condition)}), false)" for e in expectations]
    rule = " ".join(f"WHEN {f} THEN {_quote(e.name)}" for f, e in zip(fails, expectations))
    reason = " ".join(
        f"WHEN {f} THEN {spark_sql(e.reason) if e.reason else _quote(e.description)}" for f, e in zip(fails, expectations)
    )
    return f"CASE {rule} END AS rule, CASE {reason} END AS reason"


def apply_expectations(con, view: str, expectations: Sequence[Expectation]) -> str:
    """Create a view of ``view`` plus ``rule`` and ``reason``; returns its name.

    Raises ``DataQualityError`` naming the rule, reason and record if a ``fail`` rule is violated.
    """
    name = f"checked_{next(_names)}"
    con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT *, {expectation_columns(expectations)} FROM {view}")
    fatal = [e.name for e in expectations if e.action == "fail"]
    if fatal:
        listed = ", ".join(_quote(f) for f in fatal)
        bad = con.execute(f"SELECT rule, reason, _record_id FROM {name} WHERE rule IN ({listed}) LIMIT 1").fetchone()
        if bad:
            raise DataQualityError(f"expectation {bad[0]!r} failed: {bad[1]} (record {bad[2]})")
    return name


def mark_duplicates(con, view: str, keys: Sequence[str], existing: pa.Table | None = None,
                    order: Sequence[str] = ("_source_file", "_line")) -> str:
    """Create a view of ``view`` plus ``dup_rank`` and ``in_silver`` (``quality.mark_duplicates``); returns its name.

    ``dup_rank`` is 1 for the first arrival of a key in the batch (ascending ``order``, nulls first
    as in Spark) and for rows with a null key part; ``in_silver`` is true when ``existing``, the
    keys already in silver, holds the row's key.
    """
    key_null = " OR ".join(f"x.{k} IS NULL" for k in keys)
    ranked = (f"row_number() OVER (PARTITION BY {', '.join(f'x.{k}' for k in keys)} "
              f"ORDER BY {', '.join(f'x.{o} ASC NULLS FIRST' for o in order)})")
    in_silver = "false"
    if existing is not None:
        seen = register(con, existing, "silver_keys")
        match = " AND ".join(f"s.{k} = x.{k}" for k in keys)
        in_silver = f"EXISTS (SELECT 1 FROM {seen} s WHERE {match})"
    name = f"dups_{next(_names)}"
    con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT x.*, CASE WHEN {key_null} THEN 1 ELSE {ranked} END "
                f"AS dup_rank, {in_silver} AS in_silver FROM {view} x")
    return name


def checked_rows(con, view: str, table: str) -> pa.Table:
    """The checked rows as Arrow: the silver columns plus what quarantine needs (``quality.checked_rows``).

    ``raw`` is kept only for rejected rows: good rows are in bronze already.
    """
    silver = schemas.columns("silver", table)
    extra = [c for c in QUARANTINE_ONLY if c not in silver]
    items = [*silver, *("CASE WHEN rule IS NOT NULL THEN raw END AS raw" if c == "raw" else c for c in extra)]
    return to_arrow(con.sql(f"SELECT {', '.join(items)} FROM {view}"))
