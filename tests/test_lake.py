"""The lake module on real Delta tables: schema enforcement, time travel, idempotent appends, merge."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from data_prep.lake import Lake, LakeError, Txn
from data_prep.schemas import SchemaError


def _tags(n: int, start: int = 0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "asset_id": [f"A-{i}" for i in range(start, start + n)],
            "tag": ["TI-1"] * n,
            "measurement": ["temperature"] * n,
            "unit": ["degC"] * n,
            "normal_min": [1.0] * n,
            "normal_max": [None] * n,
        }
    )


def test_append_read_and_time_travel(lake: Lake):
    v0 = lake.append(_tags(2), "silver", "tags")
    v1 = lake.append(_tags(3, start=2), "silver", "tags")
    assert (v0, v1) == (0, 1)
    assert lake.read(  "silver", "tags").count() == 5
    assert lake.read("silver", "tags", version=0).count() == 2
    assert lake.read_arrow("silver", "tags", version=0).num_rows == 2
    assert lake.read_arrow("silver", "tags").schema.field("normal_max").type == pa.float64()


def test_schema_is_enforced_and_names_the_column(lake: Lake):
    with pytest.raises(SchemaError, match="'unit'"):
        lake.append(_tags(1).drop(columns=["unit"]), "silver", "tags")
    with pytest.raises(SchemaError, match="'colour'"):
        lake.append(_tags(1).assign(colour="red"), "silver", "tags")
    with pytest.raises(SchemaError, match="'normal_min'"):
        lake.append(_tags(1).assign(normal_min="hot"), "silver", "tags")
    with pytest.raises(SchemaError, match="'asset_id'.*required"):
        lake.append(_tags(1).assign(asset_id=None), "silver", "tags")


def test_whole_table_overwrite_can_replace_a_stale_schema(lake: Lake):
    from deltalake import write_deltalake
    from deltalake.exceptions import SchemaMismatchError

    old = pa.Table.from_pandas(_tags(3).assign(retired="x"), preserve_index=False)
    write_deltalake(lake.uri("silver", "tags"), old)  # written by an earlier release
    with pytest.raises(SchemaMismatchError):
        lake.overwrite(_tags(2), "silver", "tags")
    assert lake.overwrite(_tags(2), "silver", "tags", replace_schema=True) == 1
    assert lake.read_arrow("silver", "tags").num_rows == 2
    assert "retired" not in lake.read_arrow("silver", "tags").schema.names
    assert lake.read_arrow("silver", "tags", version=0).num_rows == 3  # time travel intact
    with pytest.raises(LakeError, match="whole-table"):
        lake.overwrite(_tags(1), "silver", "tags", predicate="asset_id = 'A-0'", replace_schema=True)


def test_retried_append_with_same_txn_is_a_noop(lake: Lake):
    assert lake.append(_tags(2), "silver", "tags", txn=Txn("stream-1", 0)) == 0
    assert lake.append(_tags(2), "silver", "tags", txn=Txn("stream-1", 0)) is None
    assert lake.append(_tags(1, 5), "silver", "tags", txn=Txn("stream-1", 1)) == 1
    assert lake.txn_version("silver", "tags", "stream-1") == 1
    assert lake.read_arrow("silver", "tags").num_rows == 3


def test_merge_upserts_on_keys(lake: Lake):
    lake.append(_tags(3), "silver", "tags")
    changed = _tags(2, start=2).assign(unit="K")
    metrics = lake.merge(changed, "silver", "tags", keys=["asset_id", "tag"])
    assert metrics == {"num_target_rows_inserted": 1, "num_target_rows_updated": 1}
    rows = lake.read_pandas("silver", "tags").set_index("asset_id")["unit"].to_dict()
    assert rows == {"A-0": "degC", "A-1": "degC", "A-2": "K", "A-3": "K"}


def test_spark_frames_round_trip_with_partitions(lake: Lake, spark):
    ts = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    df = spark.createDataFrame(
        pd.DataFrame(
            {
                "asset_id": ["A"], "tag": ["TI-1"], "measurement": ["temperature"], "ts": [ts], "value": [1.5],
                "unit": ["degC"], "source_unit": ["degF"], "quality": [None], "source": ["eventhub"],
                "enqueued_time": [ts], "event_date": [ts.date()], "_record_id": ["f#1"], "_batch_id": [1],
            }
        )
    )
    lake.append(df, "silver", "telemetry")
    back = lake.read("silver", "telemetry").selectExpr("cast(ts as string) AS ts", "event_date", "value").collect()[0]
    assert back["ts"] == "2026-01-02 03:04:05"  # the session time zone is UTC
    assert back["event_date"] == ts.date() and back["value"] == 1.5


def test_unknown_tables_and_versions_are_named(lake: Lake):
    with pytest.raises(LakeError, match="silver/nope"):
        lake.read("silver", "nope")
    lake.append(_tags(1), "silver", "tags")
    with pytest.raises(LakeError, match="version 7"):
        lake.read_arrow("silver", "tags", version=7)
    with pytest.raises(LakeError, match="'platinum'"):
        lake.uri("platinum", "x")


def test_spark_writes_parquet_that_delta_rs_commits(lake: Lake, spark):
    rows = spark.createDataFrame(
        [("A", "TI-1", "temperature", "degC", 1.0, None), ("B", "TI-1", "temperature", "degC", None, 9.0)],
        "asset_id string, tag string, measurement string, unit string, normal_min double, normal_max double",
    )
    assert lake.append(rows, "silver", "tags", txn=Txn("job", 3)) == 0
    assert lake.append(rows, "silver", "tags", txn=Txn("job", 3)) is None  # a retried batch lands once
    assert lake.overwrite(rows.where("asset_id = 'B'"), "silver", "tags") == 1
    assert lake.read_pandas("silver", "tags")["asset_id"].tolist() == ["B"]
    assert lake.read_arrow("silver", "tags", version=0).num_rows == 2  # time travel sees the first commit
    assert not [p for p in (Path(lake.root) / "silver" / "tags").iterdir() if p.name.startswith("_staging")]
    with pytest.raises(LakeError, match="'colour'"):
        lake.append(rows.withColumn("colour", rows.unit), "silver", "tags")


def test_spark_written_timestamps_and_partitions_read_back_typed(lake: Lake, spark):
    df = spark.sql(
        "SELECT 'A' asset_id, 'TI-1' tag, 'temperature' measurement, timestamp'2026-01-02 03:04:05' ts, 1.5 value, "
        "'degC' unit, 'degF' source_unit, CAST(NULL AS string) quality, 'eventhub' source, "
        "timestamp'2026-01-02 03:04:06' enqueued_time, date'2026-01-02' event_date, 'f#1' _record_id, 1L _batch_id"
    )
    lake.append(df, "silver", "telemetry")
    data = lake.read_arrow("silver", "telemetry")
    assert data.schema.field("ts").type == pa.timestamp("us", tz="UTC")
    assert data.column("ts")[0].as_py() == datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert str(data.column("event_date")[0]) == "2026-01-02"
    assert (Path(lake.root) / "silver" / "telemetry" / "event_date=2026-01-02").is_dir()


def test_fast_local_reader_returns_what_delta_rs_returns(lake: Lake):
    """read_arrow scans local snapshots with pyarrow; it must equal delta-rs's own reader at every
    version, with typed partition values and the rows a predicate overwrite removed left out."""
    from deltalake import DeltaTable

    from scoring.batch_score import PREDICTIONS_SCHEMA

    def rows(version: str, dates: list, n: int = 3) -> pa.Table:
        ts = [datetime(2026, 1, 1, h, tzinfo=timezone.utc) for h in range(n)]
        cols = {f.name: pa.nulls(n, f.type) for f in PREDICTIONS_SCHEMA}
        cols.update(asset_id=pa.array([f"A/{i} x" for i in range(n)]), ts=pa.array(ts, PREDICTIONS_SCHEMA.field("ts").type),
                    event_date=pa.array(dates, pa.date32()), failure_risk=pa.array([0.1] * n),
                    model_name=pa.array(["m"] * n), model_version=pa.array([version] * n),
                    model_alias=pa.array(["champion"] * n), mlflow_run_id=pa.array(["r"] * n),
                    source_table=pa.array(["gold/asset_features"] * n), source_table_version=pa.array([0] * n, pa.int64()),
                    scored_at=pa.array(ts, PREDICTIONS_SCHEMA.field("scored_at").type))
        return pa.Table.from_pydict(cols, schema=PREDICTIONS_SCHEMA)

    day = datetime(2026, 1, 1).date()
    lake.append(rows("1", [day, day, day]), "gold", "maintenance_predictions")
    lake.append(rows("2", [day, day, day]), "gold", "maintenance_predictions")
    lake.overwrite(rows("2", [day, day.replace(day=2)], n=2), "gold", "maintenance_predictions", predicate="model_version = '2'")
    uri = lake.uri("gold", "maintenance_predictions")
    for version in (0, 1, 2):
        ours = lake.read_arrow("gold", "maintenance_predictions", version=version)
        theirs = DeltaTable(uri, version=version).to_pyarrow_table().cast(ours.schema)
        key = [("model_version", "ascending"), ("ts", "ascending")]
        assert ours.sort_by(key).equals(theirs.select(ours.column_names).sort_by(key)), version
    assert lake.read_arrow("gold", "maintenance_predictions", columns=["event_date"]).column(0).type == pa.date32()
    assert lake.read_arrow("gold", "maintenance_predictions").num_rows == 5
