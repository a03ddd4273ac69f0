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


def view(con, sql: str, prefix: str) -> str:
    """Create a temporary view of ``sql`` under a fresh name; returns the name."""
    name = f"{prefix}_{next(_names)}"
    con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {sql}")
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


def apply_expectations(con, frame: str, expectations: Sequence[Expectation]) -> str:
    """Create a view of ``frame`` plus ``rule`` and ``reason``; returns its name.

    Raises ``DataQualityError`` naming the rule, reason and record if a ``fail`` rule is violated.
    """
    name = view(con, f"SELECT *, {expectation_columns(expectations)} FROM {frame}", "checked")
    fatal = [e.name for e in expectations if e.action == "fail"]
    if fatal:
        listed = ", ".join(_quote(f) for f in fatal)
        bad = con.execute(f"SELECT rule, reason, _record_id FROM {name} WHERE rule IN ({listed}) LIMIT 1").fetchone()
        if bad:
            raise DataQualityError(f"expectation {bad[0]!r} failed: {bad[1]} (record {bad[2]})")
    return name


def mark_duplicates(con, frame: str, keys: Sequence[str], existing: pa.Table | None = None,
                    order: Sequence[str] = ("_source_file", "_line")) -> str:
    """Create a view of ``frame`` plus ``dup_rank`` and ``in_silver`` (``quality.mark_duplicates``); returns its name.

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
    return view(con, f"SELECT x.*, CASE WHEN {key_null} THEN 1 ELSE {ranked} END AS dup_rank, "
                     f"{in_silver} AS in_silver FROM {frame} x", "dups")


def checked_rows(con, frame: str, table: str) -> pa.Table:
    """The checked rows as Arrow: the silver columns plus what quarantine needs (``quality.checked_rows``).

    ``raw`` is kept only for rejected rows: good rows are in bronze already.
    """
    silver = schemas.columns("silver", table)
    extra = [c for c in QUARANTINE_ONLY if c not in silver]
    items = [*silver, *("CASE WHEN rule IS NOT NULL THEN raw END AS raw" if c == "raw" else c for c in extra)]
    return to_arrow(con.sql(f"SELECT {', '.join(items)} FROM {frame}"))


# ------------------------------------------------------------------ Spark's semantics in DuckDB
# The DuckDB twins (``refine_<table>_duckdb``) read bronze text as Spark does. Where a DuckDB
# built-in reads text differently from its Spark namesake, a macro below reads it Spark's way;
# the rules are Spark 3.5's (JacksonParser, Cast, DateTimeUtils) and
# tests/test_refine_records_duckdb.py holds each macro to a live Spark.
SPARK_MACROS = r"""
-- A macro's argument is pasted wherever the macro uses it: an argument that costs (a regular
-- expression, a JSON lookup) is bound once as [f(x) for x in [argument]][1].

-- trim(s) in Spark strips spaces only; DuckDB's trim(s) also strips other Unicode spaces (U+00A0).
CREATE OR REPLACE TEMP MACRO spark_trim(s) AS trim(s, ' ');

-- Java's String.trim: what Spark strips before reading a number or a timestamp from text.
CREATE OR REPLACE TEMP MACRO spark_strip(s) AS regexp_replace(s, '^[\x00-\x20]+|[\x00-\x20]+$', '', 'g');

-- A JSON document with every string literal emptied: what is left is its syntax.
CREATE OR REPLACE TEMP MACRO json_skeleton(doc) AS regexp_replace(doc, '"(?:[^"\\]|\\.)*"', '""', 'g');

-- Whether from_json reads doc as an object; if not, Spark's row is null or its corrupt record.
-- DuckDB's reader also accepts trailing commas and non-finite numbers spelt other than Jackson's
-- NaN, Infinity, -Infinity, -INF (nan, inf, -NaN ...), where Jackson rejects the whole document.
-- json_type raises on text that is not JSON, hence the CASE.
CREATE OR REPLACE TEMP MACRO spark_json_object(doc) AS CASE WHEN json_valid(doc) THEN
    json_type(doc) = 'OBJECT' AND [
        NOT regexp_matches(syntax, ',\s*[\]}]')
        AND len([w for w in regexp_extract_all(syntax, '\d[\d.eE+-]*|[+-]?[A-Za-z]+')
                 if regexp_full_match(w, '[+-]?[A-Za-z]+')
                    AND w NOT IN ('true', 'false', 'null', 'NaN', 'Infinity', '-Infinity', '-INF')]) = 0
        for syntax in [json_skeleton(doc)]][1]
    ELSE false END;

-- The text from_json gives a JSON value read as a string: a string unquoted, null as NULL, any
-- other value as its JSON text, except that Jackson writes a non-finite number as a quoted word.
CREATE OR REPLACE TEMP MACRO spark_json_text(v) AS [CASE
        WHEN j.type IS NULL OR j.type = 'NULL' THEN NULL
        WHEN j.type <> 'DOUBLE' OR isfinite(TRY_CAST(j.text AS DOUBLE)) THEN j.text
        WHEN isnan(TRY_CAST(j.text AS DOUBLE)) THEN '"NaN"'
        WHEN TRY_CAST(j.text AS DOUBLE) > 0 THEN '"Infinity"'
        ELSE '"-Infinity"' END
    for j in [{'type': json_type(v), 'text': v ->> '$'}]][1];

-- A field of the struct from_json reads: of a repeated key the last value wins.
CREATE OR REPLACE TEMP MACRO spark_field(keys, vals, name) AS
    spark_json_text(vals[len(keys) + 1 - list_position(list_reverse(keys), name)]);

-- m[key] on the (k, v) pairs of from_json's map: of a repeated key the first value wins.
CREATE OR REPLACE TEMP MACRO spark_get(m, key) AS list_filter(m, lambda e: e.k = key)[1].v;

-- cast(s AS double): Java's Double.parseDouble, so 1d and 1.5f read and 1_000 does not
-- (hexadecimal floats such as 0x1p3 are not read), then Spark's own words for non-finite values.
CREATE OR REPLACE TEMP MACRO spark_double(s) AS [CASE
        WHEN regexp_full_match(t, '[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?[fFdD]?') THEN TRY_CAST(rtrim(t, 'fFdD') AS DOUBLE)
        WHEN lower(t) = 'nan' OR t IN ('+NaN', '-NaN') THEN 'nan'::DOUBLE
        WHEN lower(t) IN ('inf', '+inf', 'infinity', '+infinity') THEN 'inf'::DOUBLE
        WHEN lower(t) IN ('-inf', '-infinity') THEN '-inf'::DOUBLE
        END
    for t in [spark_strip(s)]][1];

-- [hours, minutes, seconds] of an offset's digits: h, hh, hhmm or hhmmss.
CREATE OR REPLACE TEMP MACRO spark_offset_hms(d) AS CASE
    WHEN len(d) <= 2 THEN [CAST(d AS BIGINT), 0, 0]
    ELSE [CAST(d[1:2] AS BIGINT), CAST(d[3:4] AS BIGINT), coalesce(CAST(nullif(d[5:6], '') AS BIGINT), 0)]
    END;

-- Seconds east of UTC of +h, +hh, +hhmm, +hh:mm, +hhmmss or +hh:mm:ss, within 18 hours (ZoneOffset.of).
CREATE OR REPLACE TEMP MACRO spark_offset_seconds(o) AS [CASE
        WHEN hms[2] < 60 AND hms[3] < 60 AND hms[1] * 3600 + hms[2] * 60 + hms[3] <= 18 * 3600
        THEN CASE left(o, 1) WHEN '-' THEN -1 ELSE 1 END * (hms[1] * 3600 + hms[2] * 60 + hms[3])
        END
    for hms in [spark_offset_hms(replace(o[2:], ':', ''))]][1];

-- Z, UTC, GMT and UT alone or before an offset, a bare offset, else a region id (Java's short
-- ids such as PST included), which DuckDB finds among ICU's zones where Spark uses java.time's.
CREATE OR REPLACE TEMP MACRO spark_at_zone_id(local, z) AS CASE
    WHEN z IN ('', 'Z', 'UTC', 'GMT', 'UT') THEN CAST(local AS TIMESTAMPTZ)
    WHEN regexp_full_match(z, '(UTC|GMT|UT)?[+-](\d{1,2}|\d{2}:?\d{2}|\d{6}|\d{2}:\d{2}:\d{2})')
        THEN CAST(local - to_seconds(spark_offset_seconds(regexp_extract(z, '[+-].*'))) AS TIMESTAMPTZ)
    WHEN list_contains(icu_zone_names(), z) THEN timezone(z, local)
    END;

-- The instant of a local time in a zone as Spark names it (DateTimeUtils.getZoneId): +h: and
-- +hh:m are first padded, as Spark 2 allowed, then read as java.time's ZoneId.of reads them.
CREATE OR REPLACE TEMP MACRO spark_at_zone(local, zone) AS [spark_at_zone_id(local, z)
    for z in [regexp_replace(regexp_replace(zone, '([+-])(\d):', '\10\2:'), '([+-])(\d\d):(\d)$', '\1\2:0\3')]][1];

CREATE OR REPLACE TEMP MACRO spark_part(digits, missing) AS coalesce(CAST(nullif(digits, '') AS BIGINT), missing);

-- java.time rejects a day past the month's end, hour 24 and second 60, where make_date raises
-- and make_timestamp rolls over to the next day. CASE, not AND, keeps make_date from month 13.
CREATE OR REPLACE TEMP MACRO spark_timestamp_of(p) AS CASE
    WHEN coalesce(p.year, '') = '' OR spark_part(p.month, 1) NOT BETWEEN 1 AND 12 OR spark_part(p.hour, 0) >= 24
         OR spark_part(p.minute, 0) >= 60 OR spark_part(p.second, 0) >= 60 THEN NULL
    WHEN spark_part(p.day, 1) BETWEEN 1 AND day(last_day(make_date(CAST(p.sign || p.year AS BIGINT), spark_part(p.month, 1), 1)))
    THEN spark_at_zone(
        TRY_CAST(make_date(CAST(p.sign || p.year AS BIGINT), spark_part(p.month, 1), spark_part(p.day, 1)) AS TIMESTAMP)
            + to_microseconds(((spark_part(p.hour, 0) * 60 + spark_part(p.minute, 0)) * 60 + spark_part(p.second, 0)) * 1000000
                              + CAST(rpad(left(p.fraction, 6), 6, '0') AS BIGINT)),
        spark_strip(p.zone))
    END;

-- cast(s AS timestamp), which to_timestamp without a pattern is (DateTimeUtils.stringToTimestamp):
-- [+-]yyyy[yy][-m[m][-d[d][ |T]h[h][:m[m][:s[s][.fraction][zone]]]]], a missing part 1 or 0, the
-- fraction cut to microseconds, no zone meaning the session's UTC. A time of day alone (which
-- Spark dates today) is not read.
CREATE OR REPLACE TEMP MACRO spark_timestamp(s) AS [spark_timestamp_of(p) for p in [regexp_extract(spark_strip(s),
    '(?s)^([+-]?)(\d{4,6})(?:-(\d{1,2})(?:-(\d{1,2})(?:[ T](\d{1,2})(?::(\d{1,2})(?::(\d{1,2})(?:\.(\d*))?(\D.*)?)?)?)?)?)?$',
    ['sign', 'year', 'month', 'day', 'hour', 'minute', 'second', 'fraction', 'zone'])]][1];
"""

# to_timestamp / to_date with a pattern: Spark's java.time parser takes only text that fills the
# pattern exactly, so each pattern is the shape it accepts and the strptime format that reads it.
# (Text the pre-3.0 parser would have read, e.g. '2026-01-05 10:00:00' for 'yyyy-MM-dd HH:mm', is
# null in both: the session factory sets Spark's timeParserPolicy to CORRECTED, not EXCEPTION.)
SPARK_PATTERNS: dict[str, tuple[str, str]] = {
    "yyyy-MM-dd HH:mm": (r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", "%Y-%m-%d %H:%M"),
    "yyyy-MM-dd": (r"\d{4}-\d{2}-\d{2}", "%Y-%m-%d"),
    "MM/dd/yyyy HH:mm:ss": (r"\d{2}/\d{2}/\d{4} \d{2}:\d{2}:\d{2}", "%m/%d/%Y %H:%M:%S"),
}


def spark_to_timestamp(text: str, pattern: str) -> str:
    """SQL for Spark's ``to_timestamp(text, pattern)``: a UTC timestamp, or null."""
    shape, fmt = SPARK_PATTERNS[pattern]
    return f"CASE WHEN regexp_full_match({text}, '{shape}') THEN CAST(try_strptime({text}, '{fmt}') AS TIMESTAMPTZ) END"


def spark_to_date(text: str, pattern: str) -> str:
    """SQL for Spark's ``to_date(text, pattern)``: a date, or null."""
    shape, fmt = SPARK_PATTERNS[pattern]
    return f"CASE WHEN regexp_full_match({text}, '{shape}') THEN CAST(try_strptime({text}, '{fmt}') AS DATE) END"


def define_spark_macros(con) -> None:
    """Define the Spark-semantics macros (``SPARK_MACROS``) on a DuckDB connection; idempotent.

    ``icu_zone_names()`` lists the zones ``timezone()`` knows, as a constant: an unknown zone
    raises there, and a macro used in a lambda cannot look the zones up with a subquery.
    """
    names = con.execute("SELECT list(name ORDER BY name) FROM pg_timezone_names()").fetchone()[0]
    listed = ", ".join("'" + n.replace("'", "''") + "'" for n in names)
    con.execute(f"CREATE OR REPLACE TEMP MACRO icu_zone_names() AS [{listed}]")
    con.execute(SPARK_MACROS)
