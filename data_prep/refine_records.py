"""Bronze to silver for the record sources: alarm journal, work orders, production, sales orders.

Each ``refine_<table>`` is pure: new bronze rows and master data in, checked rows out (one per
input row, ``rule`` null for silver or naming the failed expectation for quarantine). Source ids are resolved to golden ids through the
master-data crosswalks here, so silver speaks only golden ids.

Beside each Spark function is its DuckDB twin, ``refine_<table>_duckdb``: the same rows, silver
values, rules and reasons from Arrow tables on one machine (``data_prep.duck``). Where Spark reads
text in its own way (from_json, casts, to_timestamp) the twins call the macros of ``SPARK_MACROS``.
The engines still differ on text no source here writes (tests/test_refine_records_duckdb.py pins
each): JSON that only Jackson reads (single quotes, text after the object, +Infinity, a lone
surrogate escape) is malformed to DuckDB; a key repeated in one JSON row keeps its first value in
DuckDB's maps (Spark's map keeps both); a non-integer JSON number in a text field is Java's
``1.0E-4`` in Spark, ``0.0001`` in DuckDB; Spark casts hexadecimal floats (``0x1p3``) and dates a
bare time of day today, DuckDB reads neither; ``upper`` maps ``ß`` to ``SS`` in Java only.
"""
from __future__ import annotations

from itertools import count

import pyarrow as pa

from data_prep import duck
from data_prep.quality import apply_expectations, checked_rows, load_expectations, mark_duplicates

CSV_ROW_EXTRA = "_unparsed string, _corrupt string"
PERMISSIVE = {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": "_corrupt"}


def _check(df, table: str):
    return checked_rows(apply_expectations(df, load_expectations(table)), table)


def _bronze_cols():
    return ["_record_id", "_source", "_source_file", "_line", "_batch_id", "raw"]


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
}


def _to_timestamp(text: str, pattern: str) -> str:
    """SQL for Spark's ``to_timestamp(text, pattern)``: a UTC timestamp, or null."""
    shape, fmt = SPARK_PATTERNS[pattern]
    return f"CASE WHEN regexp_full_match({text}, '{shape}') THEN CAST(try_strptime({text}, '{fmt}') AS TIMESTAMPTZ) END"


def _to_date(text: str, pattern: str) -> str:
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


_views = count()


def _view(con, sql: str, prefix: str) -> str:
    """Create a temporary view of ``sql`` under a fresh name; returns the name."""
    name = f"{prefix}_{next(_views)}"
    con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {sql}")
    return name


BRONZE_SQL = ", ".join(_bronze_cols())


def _json_objects(con, bronze: pa.Table) -> str:
    """A view of the bronze rows plus ``is_object`` and, for rows Spark's from_json reads as an
    object, its ``keys`` and JSON ``vals`` in document order (null for the rest)."""
    rows = duck.register(con, bronze, "bronze")
    return _view(con, f"""
        WITH objects AS (SELECT {BRONZE_SQL}, spark_json_object(raw) AS is_object FROM {rows})
        SELECT *, CASE WHEN is_object THEN json_keys(raw) END AS keys,
                  CASE WHEN is_object THEN json_extract(raw, '$.*') END AS vals
        FROM objects""", "json_objects")


# The journal line's grammar, one definition for both engines. Java and RE2 read these alike on
# one line; they differ only on line terminators and vertical tabs, which ingestion splits lines at.
ALARM_TS = r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d+)?)"
ALARM_STRUCTURED = r"\|\s*PRI="
ALARM_MESSAGE = r"\|([^|]*)$"
ALARM_NOTE_LEAD = r"^\s*\|?"


def alarm_field(name: str) -> str:
    """The pattern whose group 1 is the value of ``| NAME=value`` in a structured journal line."""
    return rf"\|\s*{name}=([^|]*?)\s*(\||$)"


def refine_alarms(bronze, historian_xref):
    """Journal lines to alarms; structured lines are split into fields, free-text lines become NOTEs."""
    from pyspark.sql import functions as F

    field = lambda name: F.regexp_extract("raw", alarm_field(name), 1)  # noqa: E731
    structured = F.col("raw").rlike(ALARM_STRUCTURED)
    message = F.trim(F.regexp_extract("raw", ALARM_MESSAGE, 1))
    note_text = F.trim(F.regexp_replace(F.regexp_replace("raw", ALARM_TS, ""), ALARM_NOTE_LEAD, ""))
    xref = historian_xref.select(F.col("source_id").alias("source_tag"), "asset_id")
    df = bronze.select(
        *_bronze_cols(),
        F.to_timestamp(F.regexp_extract("raw", ALARM_TS, 1)).alias("ts"),
        F.when(structured, F.upper(field("PRI"))).otherwise(F.lit("LOW")).alias("priority"),
        F.when(structured, F.upper(field("CLASS"))).otherwise(F.lit("NOTE")).alias("alarm_class"),
        F.when(structured, F.nullif(field("TAG"), F.lit(""))).alias("source_tag"),
        F.when(structured, F.upper(field("STATE"))).otherwise(F.lit("NOTE")).alias("state"),
        F.when(structured, message).otherwise(note_text).alias("message"),
    ).join(F.broadcast(xref), on="source_tag", how="left")
    return _check(df, "alarms")


def refine_alarms_duckdb(con, bronze: pa.Table, historian_xref: pa.Table) -> pa.Table:
    """``refine_alarms`` on DuckDB: journal lines split into alarm fields or kept as NOTEs, the
    historian tag resolved to its golden asset; checked rows as Arrow."""
    define_spark_macros(con)
    lines, xref = duck.register(con, bronze, "bronze_alarms"), duck.register(con, historian_xref, "historian_xref")
    field = lambda name: f"regexp_extract(raw, '{alarm_field(name)}', 1)"  # noqa: E731
    alarms = _view(con, f"""
        WITH
        -- A structured line carries | PRI= | CLASS= | TAG= | STATE= | message; any other line is an
        -- operator's note. A line that does not start with a timestamp gets none (quarantined).
        lines AS (
            SELECT {BRONZE_SQL},
                   spark_timestamp(regexp_extract(raw, '{ALARM_TS}', 1)) AS ts,
                   regexp_matches(raw, '{ALARM_STRUCTURED}') AS structured
            FROM {lines}
        ),
        alarms AS (
            SELECT {BRONZE_SQL}, ts,
                   CASE WHEN structured THEN upper({field("PRI")}) ELSE 'LOW' END AS priority,
                   CASE WHEN structured THEN upper({field("CLASS")}) ELSE 'NOTE' END AS alarm_class,
                   CASE WHEN structured THEN nullif({field("TAG")}, '') END AS source_tag,
                   CASE WHEN structured THEN upper({field("STATE")}) ELSE 'NOTE' END AS state,
                   CASE WHEN structured THEN spark_trim(regexp_extract(raw, '{ALARM_MESSAGE}', 1))
                        ELSE spark_trim(regexp_replace(regexp_replace(raw, '{ALARM_TS}', ''), '{ALARM_NOTE_LEAD}', ''))
                        END AS message
            FROM lines
        )
        -- The historian tag names the asset; notes and unknown tags keep a null asset_id.
        SELECT a.*, x.asset_id FROM alarms a LEFT JOIN {xref} x ON x.source_id = a.source_tag""", "alarms")
    return duck.checked_rows(con, duck.apply_expectations(con, alarms, load_expectations("alarms")), "alarms")


def refine_work_orders(bronze, asset_xref, existing=None):
    """CMMS work-order rows, EquipNo resolved to the golden asset id."""
    from pyspark.sql import functions as F

    row = F.from_json(
        "raw", "WONumber string, EquipNo string, WOType string, FailureCode string, Priority string, "
        f"ReportedAt string, CompletedAt string, Description string, {CSV_ROW_EXTRA}", PERMISSIVE,
    )
    xref = asset_xref.where(F.col("source_system") == "cmms").select(
        F.col("source_id").alias("source_equipment_id"), "asset_id"
    )
    df = (
        bronze.select(*_bronze_cols(), row.alias("r"))
        .select(
            *_bronze_cols(),
            (F.col("r").isNull() | F.col("r._corrupt").isNotNull() | F.col("r._unparsed").isNotNull()).alias("malformed"),
            F.trim("r.WONumber").alias("wo_id"),
            F.trim("r.EquipNo").alias("source_equipment_id"),
            F.upper(F.trim("r.WOType")).alias("wo_type"),
            F.nullif(F.trim("r.FailureCode"), F.lit("")).alias("failure_code"),
            F.col("r.Priority").alias("priority"),
            F.col("r.ReportedAt").alias("reported_text"),
            F.col("r.CompletedAt").alias("completed_text"),
            F.to_timestamp("r.ReportedAt", "yyyy-MM-dd HH:mm").alias("reported_at"),
            F.to_timestamp(F.nullif("r.CompletedAt", F.lit("")), "yyyy-MM-dd HH:mm").alias("completed_at"),
            F.col("r.Description").alias("description"),
        )
        .join(F.broadcast(xref), on="source_equipment_id", how="left")
    )
    return _check(mark_duplicates(df, ["wo_id"], existing), "work_orders")


def refine_work_orders_duckdb(con, bronze: pa.Table, asset_xref: pa.Table, existing: pa.Table | None = None) -> pa.Table:
    """``refine_work_orders`` on DuckDB: CMMS CSV rows typed, EquipNo resolved to the golden asset
    id, repeated work-order numbers marked; checked rows as Arrow."""
    define_spark_macros(con)
    objects, xref = _json_objects(con, bronze), duck.register(con, asset_xref, "asset_xref")
    work_orders = _view(con, f"""
        WITH
        -- from_json(raw, <CSV row>, PERMISSIVE): the fields as text; all null unless an object.
        csv_row AS (
            SELECT {BRONZE_SQL}, is_object,
                   spark_field(keys, vals, '_unparsed') AS unparsed,
                   spark_field(keys, vals, 'WONumber') AS wo_number,
                   spark_field(keys, vals, 'EquipNo') AS equip_no,
                   spark_field(keys, vals, 'WOType') AS wo_type,
                   spark_field(keys, vals, 'FailureCode') AS failure_code,
                   spark_field(keys, vals, 'Priority') AS priority,
                   spark_field(keys, vals, 'ReportedAt') AS reported_at,
                   spark_field(keys, vals, 'CompletedAt') AS completed_at,
                   spark_field(keys, vals, 'Description') AS description
            FROM {objects}
        ),
        -- A ragged CSV line reaches bronze as {{"_unparsed": line, "_header": [...]}}.
        work_orders AS (
            SELECT {BRONZE_SQL},
                   NOT is_object OR unparsed IS NOT NULL AS malformed,
                   spark_trim(wo_number) AS wo_id,
                   spark_trim(equip_no) AS source_equipment_id,
                   upper(spark_trim(wo_type)) AS wo_type,
                   nullif(spark_trim(failure_code), '') AS failure_code,
                   priority,
                   reported_at AS reported_text,
                   completed_at AS completed_text,
                   {_to_timestamp("reported_at", "yyyy-MM-dd HH:mm")} AS reported_at,
                   {_to_timestamp("nullif(completed_at, '')", "yyyy-MM-dd HH:mm")} AS completed_at,
                   description
            FROM csv_row
        )
        -- EquipNo is a CMMS id: only the CMMS rows of the crosswalk may resolve it.
        SELECT w.*, x.asset_id
        FROM work_orders w
        LEFT JOIN (SELECT source_id, asset_id FROM {xref} WHERE source_system = 'cmms') x
               ON x.source_id = w.source_equipment_id""", "work_orders")
    marked = duck.mark_duplicates(con, work_orders, ["wo_id"], existing)
    return duck.checked_rows(con, duck.apply_expectations(con, marked, load_expectations("work_orders")), "work_orders")


PRODUCTION_FIXED = ("unit_id", "ts", "throughput_m3h", "yield_pct")


def refine_production(bronze, units, existing=None):
    """MES hourly rows: fixed columns typed, unit-type variables into settings/feed/quality maps.

    Columns starting ``feed_`` are feed properties, ``quality_`` product quality (prefix dropped),
    every other non-fixed column is an operating setting.
    """
    from pyspark.sql import functions as F

    m = F.from_json("raw", "map<string,string>")
    df = bronze.select(*_bronze_cols(), m.alias("m")).select(
        *_bronze_cols(),
        "m",
        (F.col("m").isNull() | F.col("m").getItem("_unparsed").isNotNull()).alias("malformed"),
        F.trim(F.col("m").getItem("unit_id")).alias("unit_id"),
        F.col("m").getItem("ts").alias("ts_text"),
        F.to_timestamp(F.col("m").getItem("ts")).alias("ts"),
        F.expr(
            "transform_values(map_filter(m, (k, v) -> NOT k IN ('unit_id', 'ts', '_unparsed', '_header')), "
            "(k, v) -> try_cast(trim(v) AS double))"
        ).alias("nums"),
    )
    # The first value column whose text is present but is not a finite number names the fault.
    bad_numeric = F.expr(
        "element_at(filter(map_keys(nums), k -> trim(m[k]) <> '' AND "
        "(nums[k] IS NULL OR isnan(nums[k]) OR abs(nums[k]) = double('inf'))), 1)"
    )
    known = units.select(F.col("unit_id").alias("known_unit")).distinct()
    df = (
        df.withColumn("bad_numeric", bad_numeric)
        # Columns of other unit types are empty in a unit's row: keep only the values it has.
        .withColumn("nums", F.expr("map_filter(nums, (k, v) -> v IS NOT NULL)"))
        .withColumn("throughput_m3h", F.col("nums").getItem("throughput_m3h"))
        .withColumn("yield_pct", F.col("nums").getItem("yield_pct"))
        .withColumn("settings", F.expr(
            "map_filter(nums, (k, v) -> NOT (startswith(k, 'feed_') OR startswith(k, 'quality_') OR k IN ('throughput_m3h', 'yield_pct')))"))
        .withColumn("feed", F.expr("map_filter(nums, (k, v) -> startswith(k, 'feed_'))"))
        .withColumn("quality", F.expr("transform_keys(map_filter(nums, (k, v) -> startswith(k, 'quality_')), (k, v) -> substr(k, 9))"))
        .join(F.broadcast(known), F.col("unit_id") == F.col("known_unit"), "left")
        .withColumn("unit_known", F.col("known_unit").isNotNull())
    )
    return _check(mark_duplicates(df, ["unit_id", "ts"], existing), "production")


def refine_production_duckdb(con, bronze: pa.Table, units: pa.Table, existing: pa.Table | None = None) -> pa.Table:
    """``refine_production`` on DuckDB: MES rows with the fixed columns typed and each unit's own
    non-null values in the settings, feed and quality maps; checked rows as Arrow."""
    define_spark_macros(con)
    objects, known = _json_objects(con, bronze), duck.register(con, units, "units")
    fixed = ", ".join(f"'{c}'" for c in ("unit_id", "ts", "_unparsed", "_header"))
    production = _view(con, f"""
        WITH
        -- from_json(raw, 'map<string,string>') as (k, v) pairs in CSV column order, null unless an
        -- object. A DuckDB MAP cannot repeat a key: keep the first, the one Spark's m[k] returns.
        entries AS (
            SELECT {BRONZE_SQL},
                   list_filter(list_transform(keys, lambda k, i: {{'k': k, 'v': spark_json_text(vals[i])}}),
                               lambda e, i: list_position(keys, e.k) = i) AS m
            FROM {objects}
        ),
        -- Every column but unit_id and ts is a process value: read as a number, null if it is none.
        fields AS (
            SELECT {BRONZE_SQL},
                   m IS NULL OR spark_get(m, '_unparsed') IS NOT NULL AS malformed,
                   spark_trim(spark_get(m, 'unit_id')) AS unit_id,
                   spark_get(m, 'ts') AS ts_text,
                   spark_timestamp(spark_get(m, 'ts')) AS ts,
                   list_transform(list_filter(m, lambda e: e.k NOT IN ({fixed})),
                                  lambda e: {{'k': e.k, 'v': e.v, 'num': spark_double(spark_trim(e.v))}}) AS nums
            FROM entries
        ),
        -- The first value column whose text is present but is not a finite number names the fault.
        -- Columns of other unit types are empty in a unit's row: keep only the values it has.
        valued AS (
            SELECT * EXCLUDE (nums),
                   list_filter(nums, lambda e: spark_trim(e.v) <> ''
                                               AND (e.num IS NULL OR isnan(e.num) OR isinf(e.num)))[1].k AS bad_numeric,
                   list_filter(nums, lambda e: e.num IS NOT NULL) AS nums
            FROM fields
        ),
        -- feed_ columns are feed properties, quality_ columns product quality (prefix dropped),
        -- every other value column an operating setting.
        production AS (
            SELECT * EXCLUDE (nums),
                   list_filter(nums, lambda e: e.k = 'throughput_m3h')[1].num AS throughput_m3h,
                   list_filter(nums, lambda e: e.k = 'yield_pct')[1].num AS yield_pct,
                   map_from_entries(list_transform(
                       list_filter(nums, lambda e: NOT (starts_with(e.k, 'feed_') OR starts_with(e.k, 'quality_')
                                                        OR e.k IN ('throughput_m3h', 'yield_pct'))),
                       lambda e: {{'key': e.k, 'value': e.num}})) AS settings,
                   map_from_entries(list_transform(list_filter(nums, lambda e: starts_with(e.k, 'feed_')),
                                                   lambda e: {{'key': e.k, 'value': e.num}})) AS feed,
                   map_from_entries(list_transform(list_filter(nums, lambda e: starts_with(e.k, 'quality_')),
                                                   lambda e: {{'key': substr(e.k, 9), 'value': e.num}})) AS quality
            FROM valued
        )
        SELECT p.*, EXISTS (SELECT 1 FROM {known} u WHERE u.unit_id = p.unit_id) AS unit_known
        FROM production p""", "production")
    marked = duck.mark_duplicates(con, production, ["unit_id", "ts"], existing)
    return duck.checked_rows(con, duck.apply_expectations(con, marked, load_expectations("production")), "production")


def refine_orders(bronze, customer_xref, existing=None):
    """CRM orders with AccountId resolved to the golden customer id and the amount computed."""
    from pyspark.sql import functions as F

    row = F.from_json(
        "raw", "OrderId string, AccountId string, Product string, QuantityBbl string, UnitPriceUsd string, "
        "OrderDate string, _corrupt string", PERMISSIVE,
    )
    xref = customer_xref.select(F.col("source_id").alias("source_account_id"), "customer_id")
    num = lambda c: F.expr(f"try_cast(trim(r.{c}) AS double)")  # noqa: E731
    df = (
        bronze.select(*_bronze_cols(), row.alias("r"))
        .select(
            *_bronze_cols(),
            (F.col("r").isNull() | F.col("r._corrupt").isNotNull()).alias("malformed"),
            F.trim("r.OrderId").alias("order_id"),
            F.trim("r.AccountId").alias("source_account_id"),
            F.trim("r.Product").alias("product"),
            num("QuantityBbl").alias("quantity_bbl"),
            num("UnitPriceUsd").alias("unit_price_usd"),
            F.col("r.OrderDate").alias("date_text"),
            F.to_date(F.substring("r.OrderDate", 1, 10), "yyyy-MM-dd").alias("order_date"),
        )
        .join(F.broadcast(xref), on="source_account_id", how="left")
        .withColumn("amount_usd", F.col("quantity_bbl") * F.col("unit_price_usd"))
    )
    return _check(mark_duplicates(df, ["order_id"], existing), "orders")


def refine_orders_duckdb(con, bronze: pa.Table, customer_xref: pa.Table, existing: pa.Table | None = None) -> pa.Table:
    """``refine_orders`` on DuckDB: CRM orders typed, AccountId resolved to the golden customer id,
    the amount computed, repeated order ids marked; checked rows as Arrow."""
    define_spark_macros(con)
    objects, xref = _json_objects(con, bronze), duck.register(con, customer_xref, "customer_xref")
    orders = _view(con, f"""
        WITH
        -- from_json(raw, <order>, PERMISSIVE): the fields as text; all null unless an object.
        record AS (
            SELECT {BRONZE_SQL}, is_object,
                   spark_field(keys, vals, 'OrderId') AS order_id,
                   spark_field(keys, vals, 'AccountId') AS account_id,
                   spark_field(keys, vals, 'Product') AS product,
                   spark_field(keys, vals, 'QuantityBbl') AS quantity,
                   spark_field(keys, vals, 'UnitPriceUsd') AS unit_price,
                   spark_field(keys, vals, 'OrderDate') AS order_date
            FROM {objects}
        ),
        -- OrderDate may carry a time of day: its first ten characters are the date.
        orders AS (
            SELECT {BRONZE_SQL},
                   NOT is_object AS malformed,
                   spark_trim(order_id) AS order_id,
                   spark_trim(account_id) AS source_account_id,
                   spark_trim(product) AS product,
                   spark_double(spark_trim(quantity)) AS quantity_bbl,
                   spark_double(spark_trim(unit_price)) AS unit_price_usd,
                   order_date AS date_text,
                   {_to_date("substr(order_date, 1, 10)", "yyyy-MM-dd")} AS order_date
            FROM record
        )
        SELECT o.*, x.customer_id, o.quantity_bbl * o.unit_price_usd AS amount_usd
        FROM orders o LEFT JOIN {xref} x ON x.source_id = o.source_account_id""", "orders")
    marked = duck.mark_duplicates(con, orders, ["order_id"], existing)
    return duck.checked_rows(con, duck.apply_expectations(con, marked, load_expectations("orders")), "orders")
