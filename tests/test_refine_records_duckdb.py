"""The DuckDB record refinements against their Spark originals, row for row, on the same bronze rows.

Each table gets bronze rows covering every fault its expectations name plus the text Spark and
DuckDB read differently (JSON oddities, number and timestamp spellings, spaces); both engines must
charge every row to the same rule with the same reason and give the same silver values. The last
test runs both on a small simulated plant's bronze tables; the first ones hold each Spark-semantics
macro to Spark on many spellings, and pin the few texts the engines read differently.
"""
from __future__ import annotations

import json
import math
import re
from datetime import datetime, timezone

import pyarrow as pa
import pytest

from data_prep import duck, mdm, schemas
from data_prep.lake import Lake, _arrow_to_spark_schema, spark_to_arrow
from data_prep.refine_records import (
    refine_alarms, refine_alarms_duckdb, refine_orders, refine_orders_duckdb, refine_production,
    refine_production_duckdb, refine_work_orders, refine_work_orders_duckdb,
)

T0 = datetime(2026, 1, 5, tzinfo=timezone.utc)
STR = pa.string()


def bronze(source: str, raws: list) -> pa.Table:
    """Bronze rows of ``raws`` in order: text as given, anything else as ``json.dumps`` writes it."""
    rows = [{"_record_id": f"{source}#{i:03d}", "_source": source, "_source_file": source, "_line": i, "_batch_id": 1,
             "_ingested_at": T0, "raw": r if r is None or isinstance(r, str) else json.dumps(r)}
            for i, r in enumerate(raws, 1)]
    return pa.Table.from_pylist(rows, schema=schemas.BRONZE)


def spark_frame(spark, data: pa.Table):
    return spark.createDataFrame(data.to_pandas(), _arrow_to_spark_schema(data.schema))


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-12, abs_tol=0.0)
    if isinstance(a, list) and isinstance(b, list):  # a map: (key, value) pairs, order free
        return dict(a).keys() == dict(b).keys() and all(_same(v, dict(b)[k]) for k, v in dict(a).items())
    return a == b


def assert_same_rows(spark_rows: pa.Table, duck_rows: pa.Table, table: str) -> list[dict]:
    """Both engines' checked rows agree; returns DuckDB's rows sorted by _record_id.

    A row both charge to well_formed_record is compared on rule, reason and raw only: for a corrupt
    record Spark keeps the fields it read before the fault (partial results), DuckDB none, and
    such a row's fields reach neither silver nor quarantine.
    """
    silver = schemas.SILVER[table]
    assert [duck_rows.schema.field(c).type for c in silver.names] == [f.type for f in silver]
    s_rows = sorted(spark_rows.to_pylist(), key=lambda r: r["_record_id"])
    d_rows = sorted(duck_rows.to_pylist(), key=lambda r: r["_record_id"])
    assert [r["_record_id"] for r in d_rows] == [r["_record_id"] for r in s_rows]
    for s, d in zip(s_rows, d_rows):
        where = f"{table} {s['_record_id']} raw={s['raw']!r}"
        assert (d["rule"], d["reason"], d["raw"]) == (s["rule"], s["reason"], s["raw"]), where
        if s["rule"] != "well_formed_record":
            for c in silver.names:
                assert _same(s[c], d[c]), f"{where}: {c} spark={s[c]!r} duckdb={d[c]!r}"
    return d_rows


def run_both(spark, table: str, spark_fn, duck_fn, rows: pa.Table, *masters: pa.Table, existing: pa.Table | None = None):
    """(Spark's checked rows, DuckDB's checked rows) as Arrow for the same inputs."""
    extra = () if existing is None else (spark_frame(spark, existing),)
    spark_rows = spark_to_arrow(spark_fn(spark_frame(spark, rows), *(spark_frame(spark, m) for m in masters), *extra))
    duck_extra = () if existing is None else (existing,)
    duck_rows = duck_fn(duck.connect(), rows, *masters, *duck_extra)
    return spark_rows, duck_rows


def rules(rows: list[dict]) -> dict[int, str | None]:
    return {r["_line"]: r["rule"] for r in rows}


# ---------------------------------------------------------------- the Spark-semantics macros
def spark_and_duckdb(spark, texts: list, spark_sql: str, duck_sql: str) -> list[tuple]:
    """(text, Spark's value, DuckDB's value) of an expression of ``x`` for each text."""
    from pyspark.sql import functions as F

    frame = spark.createDataFrame(list(enumerate(texts)), "i int, x string")
    by_spark = [r.y for r in frame.select("i", F.expr(spark_sql).alias("y")).orderBy("i").collect()]
    con = duck.connect()
    duck.define_spark_macros(con)
    rows = duck.register(con, pa.table({"i": pa.array(range(len(texts)), pa.int64()), "x": pa.array(texts, STR)}))
    by_duck = [y for (y,) in con.execute(f"SELECT {duck_sql} FROM {rows} ORDER BY i").fetchall()]
    return list(zip(texts, by_spark, by_duck))


DATES = ["2026-01-05", "2026-1-5", "2024-02-29", "2026-02-29", "2026-13-01", "2026-00-10", "2026-01-00", "2026-01-32",
         "02026-01-05", "123456-01-05", "1234567-01-05", "+2026-01-05", "-2026-01-05", "0000-01-01", "2026", "2026-01",
         "2026-", "2026-01-", "206-01-05", "2026/01/05"]
TIMES = ["", " ", "T", "T10", " 10", "T10:30", "T1:2", "T10:30:15", "T23:59:59", "T24:00:00", "T23:60:00", "T23:59:60",
         "T10:30:15.", "T10:30:15.123456", "T10:30:15.123456789", "T10:30:155", "T10:", "T10:30:15.5.6", "t10:30:15"]
ZONES = ["Z", "z", " Z", "+01:00", "-05:00", "+0100", "+01", "+1", "-1:30", "+01:3", "+18:00", "+18:01", "+19:00", "+01:60",
         " +01:00", "UTC", " UTC", "GMT", "UT", "UTC+01:00", "GMT-5", "UT+1", "utc", "Europe/Paris", " America/New_York",
         "PST", "EST", "Nowhere/Bad", "+010000", "+01:00:30", "Etc/GMT+1", "UTC+1:00", "+01:00Z"]
TIMESTAMP_TEXTS = ([d + t for d in DATES for t in TIMES] + [f"2026-07-05{t}{z}" for t in ("T10:30:15", " 10:30:15.25", "T10:30") for z in ZONES]
                   + ["", "yesterday", "\t2026-01-05 10:00:00\n", "2026-01-05T10:00:00\x00", "2026-01-05 10:00:00 +01:00"])


def test_timestamp_texts_read_as_spark_casts_them(spark):
    times_of_day = ["10:00:00", "T10:00:00"]  # Spark dates these today; DuckDB reads none
    rows = spark_and_duckdb(spark, TIMESTAMP_TEXTS + times_of_day, "unix_micros(to_timestamp(x))", "epoch_us(spark_timestamp(x))")
    assert [(x, s, d) for x, s, d in rows if s != d] == [(x, s, None) for x, s, d in rows if x in times_of_day]
    assert sum(s is not None for _, s, _ in rows) > 100  # the corpus is not mostly rejects


NUMBER_TEXTS = [pre + n + post for n in [
    "1", "-1", "+1", "1.5", ".5", "5.", "1e5", "1E-5", "1e+5", "1e", "e5", "1.5d", "1.5F", "1_000", "0x10", "1,5", "1 5",
    "NaN", "nan", "-NaN", "NAN", "Infinity", "-Infinity", "+Infinity", "infinity", "INF", "inf", "+inf", "-inf", "1e400",
    "-1e400", "1e-400", "00001", "-0", "-.5e-3", '"NaN"', "", "1.5dd", "NaNd", ".", "+", "4.9e-324", "1.7976931348623159e308",
    "123456789012345678901234567890", "true",
] for pre, post in [("", ""), (" ", " "), ("\t", "\n"), ("\u00a0", "")]]


def test_number_texts_read_as_spark_casts_them(spark):
    hexadecimal = ["0x1p3"]  # Java reads hexadecimal floats; DuckDB's cast does not
    rows = spark_and_duckdb(spark, NUMBER_TEXTS + hexadecimal, "try_cast(trim(x) AS double)", "spark_double(spark_trim(x))")
    differ = [(x, s, d) for x, s, d in rows if not (s is None and d is None or s is not None and d is not None and _same(s, d))]
    assert differ == [("0x1p3", 8.0, None)]


JSON_VALUES = ['"x"', '""', "null", "1", "-1", "1.50", "1e2", "-0.0", "12345678901234567890123", "true", "NaN", "-NaN", "nan",
               "Infinity", "-Infinity", "-INF", "INF", "inf", "1e400", "-1e400", '{"c": 1}', '[1, "a"]', "[1,]", '{"c": 1,}',
               '"a\\"b"', '"\\u00e9"', '"tab\\there"', "01", "+1", ".5", '"a,}"', '"a\\\\"', "[nan]", "1.0"]
JSON_DOCS = ([f'{{"a": {v}}}' for v in JSON_VALUES] + [f'{{"b": {v}, "a": "z"}}' for v in JSON_VALUES]
             + ["", "  ", "{not json", "[1,2]", '[{"a":"1"}]', "5", '"s"', "null", "{}", "true", '{"a": "1",}', '{"a": "1", "a": "2"}',
                '{"a": "1", "a": null}', '{"_corrupt": "x"}', '{"a": "1" /* c */}', '{a: "1"}', ' {"a": "1"} ', '{"A": "1"}',
                '{"a": "1", "b": [1, 2,]}', '{"a":"1","b":"x,]"}', '{"a":"1","b":"x\\",}"}'])
# What Jackson reads and DuckDB's reader rejects: DuckDB quarantines such a row as well_formed_record.
SPARK_ONLY_OBJECTS = ["{'a': '1'}", '{"a": "1"} trailing text', '{"a": +Infinity}', '{"a": +INF}', '{"a": "\\ud800"}']
# A non-integer number in a text field: Spark writes Java's Double.toString, DuckDB its own text.
NUMBER_AS_TEXT = {'{"a": 0.0001}': ("1.0E-4", "0.0001"), '{"a": 1e21}': ("1.0E21", "1e21")}


def test_json_documents_read_as_spark_from_json_reads_them(spark):
    docs = JSON_DOCS + SPARK_ONLY_OBJECTS + list(NUMBER_AS_TEXT)
    struct = "from_json(x, 'a string, b string, _corrupt string', map('mode', 'PERMISSIVE', 'columnNameOfCorruptRecord', '_corrupt'))"
    spark_sql = f"named_struct('object', {struct} IS NOT NULL AND {struct}._corrupt IS NULL, 'a', {struct}.a, 'b', {struct}.b)"
    duck_sql = """[{'object': o.is_object, 'a': spark_field(o.keys, o.vals, 'a'), 'b': spark_field(o.keys, o.vals, 'b')}
                   for o in [{'is_object': spark_json_object(x),
                              'keys': CASE WHEN spark_json_object(x) THEN json_keys(x) END,
                              'vals': CASE WHEN spark_json_object(x) THEN json_extract(x, '$.*') END}]][1]"""
    rows = spark_and_duckdb(spark, docs, spark_sql, duck_sql)
    by_spark = {x: (s["object"], s["a"], s["b"]) for x, s, _ in rows}
    by_duck = {x: (d["object"], d["a"], d["b"]) if d["object"] else (False,) for x, _, d in rows}
    # A corrupt record keeps in Spark the fields read before the fault; they reach neither silver nor quarantine.
    by_spark = {x: v if v[0] else (False,) for x, v in by_spark.items()}
    assert {x: v for x, v in by_spark.items() if by_duck[x] != v} == {
        **{x: by_spark[x] for x in SPARK_ONLY_OBJECTS}, **{x: (True, s, None) for x, (s, _) in NUMBER_AS_TEXT.items()}}
    assert all(by_duck[x] == (False,) for x in SPARK_ONLY_OBJECTS)
    assert {x: by_duck[x][1] for x in NUMBER_AS_TEXT} == {x: d for x, (_, d) in NUMBER_AS_TEXT.items()}
    assert sum(v[0] for v in by_spark.values()) > 40


# ------------------------------------------------------------------------------------ alarms
HX = pa.table({"source_id": pa.array(["CDU1.P101.TI1011"], STR), "asset_id": pa.array(["CDU1-P-101"], STR)})
ALARM_LINES = [
    "2026-01-05 00:05:13.123 | PRI=HIGH | CLASS=PROCESS | TAG=CDU1.P101.TI1011 | STATE=ACT | High temperature",
    "2026-01-05 01:00:00.000 operator: swapped filter on P-101",
    "garbage without a timestamp",
    "2026-01-05 00:05:13.123 | PRI=URGENT | CLASS=PROCESS | TAG=CDU1.P101.TI1011 | STATE=ACT | x",
    "2026-01-05 00:06:00 |PRI= high|CLASS=system |TAG=|STATE=rtn|  trailing spaces and a tab \t",
    "2026-01-05 00:07:00.1234567 | PRI=LOW | CLASS=PROCESS | TAG=FCC9.X | STATE=ACT | unknown tag, 7 digit fraction",
    "2026-01-05 00:08:00 | PRI= | CLASS=PROCESS | STATE=ACT | empty priority",
    "2026-01-05 24:00:00 | PRI=LOW | CLASS=PROCESS | STATE=ACT | hour 24",
    "2026-02-30 00:00:00 shift note on a day that does not exist",
    "2026-01-05 02:00:00 | shift handover, note after a bar",
    "2026-01-05 02:30:00   \u00a0note with a no-break space\u00a0",
    "2026-01-05 03:00:00 | PRI=CRITICAL | CLASS=SAFETY | TAG=CDU1.P101.TI1011 | STATE=ACT |",
    "2026-01-05 03:00:00 | PRI=CRITICAL | CLASS=SAFETY | TAG=CDU1.P101.TI1011 | STATE=ACT |",  # journals repeat
    "2026-01-05T03:00:00 | PRI=HIGH | CLASS=PROCESS | STATE=ACT | a T is not the journal's timestamp",
    "",
    None,
]


def test_alarms_match_spark(spark):
    spark_rows, duck_rows = run_both(spark, "alarms", refine_alarms, refine_alarms_duckdb, bronze("alarms", ALARM_LINES), HX)
    rows = assert_same_rows(spark_rows, duck_rows, "alarms")
    # Line 5's "PRI= high" reads " HIGH": the field keeps the space after '=' in both engines.
    assert rules(rows) == {1: None, 2: None, 3: "timestamp_parses", 4: "known_priority", 5: "known_priority", 6: None,
                           7: "known_priority", 8: "timestamp_parses", 9: "timestamp_parses", 10: None, 11: None,
                           12: None, 13: None, 14: "timestamp_parses", 15: "timestamp_parses", 16: "timestamp_parses"}
    assert rows[4]["message"] == "trailing spaces and a tab \t" and rows[4]["source_tag"] is None
    assert rows[5]["ts"] == datetime(2026, 1, 5, 0, 7, 0, 123456, tzinfo=timezone.utc) and rows[5]["asset_id"] is None


# ------------------------------------------------------------------------------- work orders
ASSET_XREF = pa.Table.from_pylist(
    [{"source_system": "cmms", "source_id": "P101-CDU1", "asset_id": "CDU1-P-101", "match_rule": "normalised_id", "match_score": 1.0},
     {"source_system": "iot", "source_id": "X-9", "asset_id": "CDU1-P-102", "match_rule": "normalised_id", "match_score": 1.0}],
    schema=schemas.SILVER["asset_xref"])
WO = {"WONumber": "1", "EquipNo": "P101-CDU1", "WOType": "CM", "FailureCode": "BEARING", "Priority": "1",
      "ReportedAt": "2026-01-05 10:00", "CompletedAt": "2026-01-05 18:00", "Description": "bearing"}
WO_HEADER = list(WO)
WORK_ORDERS = [
    WO,
    {**WO, "WONumber": "2", "EquipNo": "X-9"},  # an id of another source system does not resolve
    {**WO, "WONumber": "3", "CompletedAt": "2026-01-04 10:00"},
    {**WO, "WONumber": "4", "WOType": "ZZ"},
    {"_unparsed": "5,P101-CDU1,CM", "_header": WO_HEADER},
    WO,  # duplicate in the batch
    {**WO, "WONumber": "99"},  # already in silver
    {**WO, "WONumber": None},
    {**WO, "WONumber": "  8 ", "EquipNo": " P101-CDU1 ", "WOType": " pm ", "FailureCode": "   ", "CompletedAt": ""},
    {**WO, "WONumber": "9", "WOType": ""},
    {**WO, "WONumber": "10", "ReportedAt": "05/01/2026 10:00"},
    {**WO, "WONumber": "11", "ReportedAt": "2026-02-30 10:00"},
    {**WO, "WONumber": "12", "ReportedAt": "2026-01-05 24:00"},
    {**WO, "WONumber": "13", "ReportedAt": "2026-01-05T10:00"},
    {**WO, "WONumber": "14", "CompletedAt": "yesterday"},
    {**WO, "WONumber": "15", "CompletedAt": None},
    {**WO, "WONumber": "16", "ReportedAt": None},
    {**WO, "WONumber": 17, "Priority": 2},  # numbers where the CSV has text
    '{"WONumber": "18", "EquipNo": "P101-CDU1", "WOType": "CM", "ReportedAt": "2026-01-05 10:00", "Priority": NaN}',
    '{"WONumber": "19", "WONumber": "20", "EquipNo": "P101-CDU1", "WOType": "CM", "ReportedAt": "2026-01-05 10:00"}',
    '{"_corrupt": "not a fault", "WONumber": "21", "EquipNo": "P101-CDU1", "WOType": "PM", "ReportedAt": "2026-01-05 10:00"}',
    '{"WONumber": "22", "EquipNo": "P101-CDU1",}',  # trailing comma: Jackson rejects the record
    '{"WONumber": "23", "Priority": nan}',  # lower-case nan: Jackson rejects the record
    "{not json",
    "[1, 2]",
    "null",
    "",
    None,
    {"WONumber": "24", "EquipNo": "P101-CDU1", "WOType": "CM", "ReportedAt": "2026-01-05 10:00", "Description": "\u00a0x "},
]


def test_work_orders_match_spark(spark):
    existing = pa.table({"wo_id": pa.array(["99"], STR)})
    spark_rows, duck_rows = run_both(spark, "work_orders", refine_work_orders, refine_work_orders_duckdb,
                                     bronze("cmms", WORK_ORDERS), ASSET_XREF, existing=existing)
    rows = assert_same_rows(spark_rows, duck_rows, "work_orders")
    assert rules(rows) == {
        1: None, 2: "known_equipment", 3: "completed_after_reported", 4: "known_wo_type", 5: "well_formed_record",
        6: "not_duplicate", 7: "not_duplicate", 8: "required_fields_present", 9: None, 10: "known_wo_type",
        11: "timestamps_parse", 12: "timestamps_parse", 13: "timestamps_parse", 14: "timestamps_parse", 15: "timestamps_parse",
        16: None, 17: "required_fields_present", 18: None, 19: None, 20: None, 21: None, 22: "well_formed_record",
        23: "well_formed_record", 24: "well_formed_record", 25: "well_formed_record", 26: "well_formed_record",
        27: "well_formed_record", 28: "well_formed_record", 29: None,
    }
    assert (rows[8]["wo_id"], rows[8]["wo_type"], rows[8]["failure_code"]) == ("8", "PM", None)
    assert rows[18]["priority"] == '"NaN"' and rows[19]["wo_id"] == "20"  # Jackson's text; the last of a repeated key


def test_work_order_timestamps_spark_cannot_read_are_quarantined(spark):
    """Text that only Spark 2's parser read ('2026-01-05 10:00:00' for yyyy-MM-dd HH:mm) would stop a
    Spark run under the default timeParserPolicy EXCEPTION; the session factory sets CORRECTED, so
    both engines quarantine it."""
    raws = [{**WO, "WONumber": str(i), "ReportedAt": ts}
            for i, ts in enumerate(["2026-01-05 10:00:00", "2026-1-5 10:00", " 2026-01-05 10:00", "2026-01-05 9:00"])]
    assert spark.conf.get("spark.sql.legacy.timeParserPolicy") == "CORRECTED"
    spark_rows, duck_rows = run_both(spark, "work_orders", refine_work_orders, refine_work_orders_duckdb,
                                     bronze("cmms", raws), ASSET_XREF)
    rows = assert_same_rows(spark_rows, duck_rows, "work_orders")
    assert {r["rule"] for r in rows} == {"timestamps_parse"}


# -------------------------------------------------------------------------------- production
UNITS = pa.Table.from_pylist([{"asset_id": "CDU1", "unit_id": "CDU1", "source_systems": "cmms"},
                              {"asset_id": "CDU1-P-101", "unit_id": "CDU1", "source_systems": "cmms"},
                              {"asset_id": "SITE", "unit_id": None, "source_systems": "cmms"}], schema=schemas.SILVER["assets"])
ROW = {"unit_id": "CDU1", "ts": "2026-01-05T00:00:00Z", "throughput_m3h": "1000", "furnace_outlet_temp_c": "369.0",
       "riser_outlet_temp_c": None, "feed_api_gravity": "36.6", "yield_pct": "53.8", "quality_diesel_t95_c": "344.9"}


def hour(h: int) -> str:
    return f"2026-01-05T{h:02d}:00:00Z"


PRODUCTION = [
    ROW,
    {**ROW, "reflux_ratio": "2,5", "ts": hour(1)},
    {**ROW, "unit_id": "FCC9"},
    {**ROW, "ts": "yesterday"},
    ROW,  # duplicate in the batch
    {**ROW, "ts": hour(2), "yield_pct": "140"},
    {**ROW, "ts": hour(3)},  # already in silver
    {"_unparsed": "CDU1,2026-01-05T04:00:00Z,1000", "_header": list(ROW)},
    {**ROW, "unit_id": None, "ts": hour(5)},
    {key: v for key, v in ROW.items() if key != "ts"},
    {**ROW, "unit_id": " CDU1 ", "ts": "2026-01-05 06:00", "throughput_m3h": " 1e3 ", "furnace_outlet_temp_c": "370d",
     "feed_api_gravity": "", "yield_pct": "   ", "quality_diesel_t95_c": "  ", "quality_": "1"},
    {**ROW, "ts": "2026-01-05T08:00:00+01:00"},  # 07:00 UTC
    {**ROW, "ts": "2026-01-05T08:00:00.5 Europe/Paris"},
    {**ROW, "ts": "2026-02-30T00:00:00Z"},
    {**ROW, "ts": "2026-01-05T24:00:00Z"},
    {**ROW, "ts": "2026-01-05T09"},
    {**ROW, "ts": hour(10), "furnace_outlet_temp_c": "NaN"},
    {**ROW, "ts": hour(11), "furnace_outlet_temp_c": "Infinity", "feed_api_gravity": "x"},  # the first bad column names it
    {**ROW, "ts": hour(12), "throughput_m3h": "\u00a01000"},  # Spark's trim keeps a no-break space
    {**ROW, "ts": hour(13), "throughput_m3h": "1_000"},
    {**ROW, "ts": hour(14), "yield_pct": "-0.5"},
    {**ROW, "ts": hour(15), "throughput_m3h": 1000, "furnace_outlet_temp_c": 1e400},  # numbers where the CSV has text
    f'{{"unit_id": "CDU1", "ts": "{hour(16)}", "throughput_m3h": NaN}}',
    f'{{"unit_id": "CDU1", "ts": "{hour(17)}", "throughput_m3h": "1", "throughput_m3h": "x"}}',  # Spark's m[k]: the first
    f'{{"unit_id": "CDU1", "ts": "{hour(18)}", "throughput_m3h": inf}}',
    {"unit_id": "CDU1", "ts": hour(19)},  # no values at all: empty maps
    "{not json",
    "[1, 2]",
    "null",
    None,
]


def test_production_matches_spark(spark):
    existing = pa.table({"unit_id": pa.array(["CDU1"], STR), "ts": pa.array([datetime(2026, 1, 5, 3, tzinfo=timezone.utc)], schemas.TS)})
    spark_rows, duck_rows = run_both(spark, "production", refine_production, refine_production_duckdb,
                                     bronze("mes", PRODUCTION), UNITS, existing=existing)
    rows = assert_same_rows(spark_rows, duck_rows, "production")
    assert rules(rows) == {
        1: None, 2: "values_are_numbers", 3: "known_unit", 4: "timestamp_parses", 5: "not_duplicate", 6: "yield_in_range",
        7: "not_duplicate", 8: "well_formed_record", 9: "required_fields_present", 10: "required_fields_present", 11: None,
        12: None, 13: None, 14: "timestamp_parses", 15: "timestamp_parses", 16: None, 17: "values_are_numbers",
        18: "values_are_numbers", 19: "values_are_numbers", 20: "values_are_numbers", 21: "yield_in_range",
        22: "values_are_numbers", 23: "values_are_numbers", 24: None, 25: "well_formed_record", 26: None,
        27: "well_formed_record", 28: "well_formed_record", 29: "well_formed_record", 30: "well_formed_record",
    }
    odd = rows[10]
    assert (odd["unit_id"], odd["throughput_m3h"], odd["yield_pct"]) == ("CDU1", 1000.0, None)
    assert dict(odd["settings"]) == {"furnace_outlet_temp_c": 370.0} and dict(odd["quality"]) == {"": 1.0}
    assert rows[11]["ts"] == datetime(2026, 1, 5, 7, tzinfo=timezone.utc)
    assert rows[17]["reason"] == "column furnace_outlet_temp_c is not a finite number"
    assert (rows[25]["settings"], rows[25]["feed"], rows[25]["quality"]) == ([], [], [])


# ------------------------------------------------------------------------------------ orders
CUSTOMER_XREF = pa.Table.from_pylist(
    [{"source_system": "crm", "source_id": "001A", "customer_id": "CUST-001A", "match_rule": "golden_source", "match_score": 1.0},
     {"source_system": "crm", "source_id": "001B", "customer_id": "CUST-001A", "match_rule": "normalised_name", "match_score": 1.0}],
    schema=schemas.SILVER["customer_xref"])
ORDER = {"OrderId": "1", "AccountId": "001B", "Product": "Diesel", "QuantityBbl": 1000, "UnitPriceUsd": 90.5, "OrderDate": "2026-01-04"}
ORDERS = [
    ORDER,
    {**ORDER, "OrderId": "2", "AccountId": "999"},
    {**ORDER, "OrderId": "3", "QuantityBbl": -5},
    "{not json",
    ORDER,  # duplicate in the batch
    {**ORDER, "OrderId": "77"},  # already in silver
    {**ORDER, "OrderId": "4", "Product": None},
    {key: v for key, v in ORDER.items() if key != "OrderDate"} | {"OrderId": "5"},
    {**ORDER, "OrderId": " 6 ", "AccountId": " 001A ", "QuantityBbl": " 1000 ", "UnitPriceUsd": "90.5d"},
    {**ORDER, "OrderId": "7", "QuantityBbl": "1,000"},
    {**ORDER, "OrderId": "8", "QuantityBbl": "NaN"},  # Spark reads NaN, and NaN > 0
    {**ORDER, "OrderId": "9", "UnitPriceUsd": -1},
    {**ORDER, "OrderId": "10", "QuantityBbl": 0},
    {**ORDER, "OrderId": "11", "OrderDate": "2026-01-04T10:00:00Z"},
    {**ORDER, "OrderId": "12", "OrderDate": "2026/01/04"},
    {**ORDER, "OrderId": "13", "OrderDate": "2026-02-30"},
    {**ORDER, "OrderId": "14", "OrderDate": "2026-01-04x"},
    {**ORDER, "OrderId": "15", "QuantityBbl": True},
    {**ORDER, "OrderId": 16, "AccountId": "001A"},
    '{"AccountId": "001A", "OrderDate": "2026-01-04", "OrderId": "17", "Product": "Diesel", "QuantityBbl": NaN, "UnitPriceUsd": 90.5}',
    '{"AccountId": "001A", "OrderDate": "2026-01-04", "OrderId": "18", "Product": "Diesel", "QuantityBbl": 1e400, "UnitPriceUsd": 1}',
    '{"AccountId": "001A", "OrderDate": "2026-01-04", "OrderId": "19", "Product": "Diesel", "QuantityBbl": 5, "UnitPriceUsd": 1,}',
    '{"records": "a file that held no list"}',
    "5",
    "[1, 2]",
    "",
    None,
    {**ORDER, "OrderId": "20", "AccountId": "\u00a0001A"},
]


def test_orders_match_spark(spark):
    existing = pa.table({"order_id": pa.array(["77"], STR)})
    spark_rows, duck_rows = run_both(spark, "orders", refine_orders, refine_orders_duckdb, bronze("crm", ORDERS), CUSTOMER_XREF,
                                     existing=existing)
    rows = assert_same_rows(spark_rows, duck_rows, "orders")
    assert rules(rows) == {
        1: None, 2: "known_customer", 3: "positive_amounts", 4: "well_formed_record", 5: "not_duplicate", 6: "not_duplicate",
        7: "required_fields_present", 8: "required_fields_present", 9: None, 10: "amounts_are_numbers", 11: None,
        12: "positive_amounts", 13: "positive_amounts", 14: None, 15: "date_parses", 16: "date_parses", 17: None,
        18: "amounts_are_numbers", 19: None, 20: "amounts_are_numbers", 21: "amounts_are_numbers", 22: "well_formed_record",
        23: "required_fields_present", 24: "well_formed_record", 25: "well_formed_record", 26: "well_formed_record",
        27: "well_formed_record", 28: "known_customer",
    }
    assert rows[8]["order_id"] == "6" and rows[8]["amount_usd"] == pytest.approx(90500.0)
    assert math.isnan(rows[10]["quantity_bbl"])


# --------------------------------------------------------------------- a small simulated plant
def test_both_engines_agree_on_a_simulated_plant(tmp_path, spark):
    from data_prep.ingest import ingest
    from data_prep.prep import PrepResult, refresh_master_data
    from data_prep.simulator import SimulationConfig, simulate

    landing = tmp_path / "landing"
    # Seed 4 rather than 3: with seed 3 the CMMS writes no work order in two days.
    simulate(landing, SimulationConfig(assets=4, days=2, seed=4, bad_fraction=0.1))
    lake = Lake(tmp_path / "lake", spark=spark)
    ingest(landing, lake)
    refresh_master_data(lake, {}, PrepResult())

    tags = lake.read_pandas("silver", "tags")
    alarms = lake.read_arrow("bronze", "alarms")
    names = sorted({m for raw in alarms.column("raw").to_pylist() for m in re.findall(r"TAG=([^ |]+)", raw or "")})
    hx = pa.Table.from_pandas(mdm.historian_xref(names, tags)[["source_id", "asset_id"]], preserve_index=False,
                              schema=pa.schema([("source_id", STR), ("asset_id", STR)]))
    cases = [
        ("alarms", refine_alarms, refine_alarms_duckdb, alarms, hx),
        ("work_orders", refine_work_orders, refine_work_orders_duckdb, lake.read_arrow("bronze", "work_orders"),
         lake.read_arrow("silver", "asset_xref")),
        ("production", refine_production, refine_production_duckdb, lake.read_arrow("bronze", "production"),
         lake.read_arrow("silver", "assets")),
        ("orders", refine_orders, refine_orders_duckdb, lake.read_arrow("bronze", "crm_orders"),
         lake.read_arrow("silver", "customer_xref")),
    ]
    for table, spark_fn, duck_fn, rows, master in cases:
        assert rows.num_rows > 0, table
        spark_rows, duck_rows = run_both(spark, table, spark_fn, duck_fn, rows, master)
        checked = assert_same_rows(spark_rows, duck_rows, table)
        assert any(r["rule"] is None for r in checked), table
