"""The two prep engines, Spark and DuckDB, refine the same bronze into the same lake.

Per-table parity of the transforms is tested beside them (test_refine_records_duckdb,
test_gold_duckdb); here the whole of ``prep`` runs on a simulated plant with every fault kind,
in two batches (so cross-batch duplicates and incremental gold are covered), once per engine.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from data_prep import duck, ingest, mdm, prep
from data_prep.lake import LAYERS, Lake, spark_to_arrow
from data_prep.refine_telemetry import refine_telemetry_duckdb
from data_prep.simulator import SimulationConfig, simulate

# Written at run time, so never equal between two runs.
RUN_TIMES = {"_ingested_at", "ingested_at", "quarantined_at", "processed_at"}


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("parity") / "landing"
    simulate(root, SimulationConfig(assets=6, days=2, seed=5, bad_fraction=0.1))
    return root


def _comparable(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows in a stable order, run-time columns dropped, maps as sorted item tuples."""
    frame = frame.drop(columns=[c for c in frame.columns if c in RUN_TIMES]).copy()
    for col in frame.columns:
        sample = frame[col].dropna()
        if len(sample) and isinstance(sample.iloc[0], list):  # Arrow map -> list of (key, value)
            frame[col] = frame[col].map(lambda m: tuple(sorted(m)) if isinstance(m, list) else m)
    keys = [c for c in ("_record_id", "table", "source_system", "source_id", "asset_id", "tag", "unit_id", "customer_id",
                        "product", "month", "hour", "event_date", "ts") if c in frame.columns]
    return frame.sort_values(keys or list(frame.columns)).reset_index(drop=True)


def _tables(lake: Lake) -> set[tuple[str, str]]:
    root = Path(lake.root)
    return {(layer, p.name) for layer in LAYERS for p in (root / layer).glob("*") if (p / "_delta_log").is_dir()}


def test_telemetry_engines_agree_on_rule_value_and_reason(spark, landing, tmp_path):
    lake = Lake(tmp_path / "lake", spark=spark)
    ingest.ingest(landing, lake)
    prep.refresh_master_data(lake, {}, prep.PrepResult())
    on_spark = spark_to_arrow(prep.refine_table(lake, spark, "telemetry", lake.read("bronze", "telemetry")))
    on_duckdb = refine_telemetry_duckdb(
        duck.connect(), lake.read_arrow("bronze", "telemetry"), lake.read_arrow("silver", "assets"),
        lake.read_arrow("silver", "tags"), mdm.historian_keys(lake.read_pandas("silver", "tags")),
    )
    a, b = _comparable(on_spark.to_pandas()), _comparable(on_duckdb.to_pandas())
    assert a["rule"].nunique() >= 10  # the plant's faults reach most rules: the comparison means something
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-12)


def test_telemetry_engines_agree_on_text_no_simulated_source_writes(spark, landing, tmp_path):
    """Device text the simulator never writes still reads alike on both engines (duck.SPARK_MACROS)."""
    from datetime import datetime, timezone

    import pyarrow as pa

    from data_prep import schemas

    lake = Lake(tmp_path / "lake", spark=spark)
    ingest.ingest(landing, lake)
    prep.refresh_master_data(lake, {}, prep.PrepResult())
    tag = lake.read_pandas("silver", "tags").query("measurement == 'temperature'").iloc[0]
    head = f'"asset_id": "{tag.asset_id}", "tag": "{tag.tag}", "unit": "degC"'
    bodies = [
        f'{{{head}, "ts": "2026-1-5T10:00:00Z", "value": 101.5}}',  # one-digit month and day
        f'{{{head}, "ts": "2026-01-05 10:00:07.1234567+01:00", "value": 101.5}}',  # 7 fraction digits, an offset
        f'{{{head}, "ts": "2026-01-05T10:00:08Z", "value": "1d"}}',  # Java reads 1d as a double
        f'{{{head}, "ts": "2026-01-05T10:00:09Z", "value": " 12 "}}',
        f'{{{head}, "ts": "2026-01-05T10:00:10Z", "value": nan}}',  # not Jackson's NaN spelling
        f'{{{head}, "ts": "2026-01-05T10:00:11Z", "value": 1.5,}}',  # trailing comma
        f'{{{head}, "ts": "2026-02-30T10:00:12Z", "value": 1.5}}',  # no such day
        f'{{{head}, "ts": "2026-01-05T24:00:00Z", "value": 1.5}}',
    ]
    now = datetime(2026, 1, 5, 11, tzinfo=timezone.utc)
    extra = pa.table({
        "_record_id": [f"hand#{i}" for i in range(len(bodies))], "_source": ["eventhub"] * len(bodies),
        "_source_file": ["hand.jsonl"] * len(bodies), "_line": list(range(1, len(bodies) + 1)),
        "_batch_id": [2] * len(bodies), "_ingested_at": [now] * len(bodies), "eh_partition": [0] * len(bodies),
        "eh_offset": list(range(len(bodies))), "eh_sequence_number": list(range(len(bodies))),
        "eh_enqueued_time": [now] * len(bodies), "eh_properties": ["{}"] * len(bodies), "raw": bodies,
    }, schema=schemas.BRONZE)
    lake.append(extra, "bronze", "telemetry")
    bronze_spark = lake.read("bronze", "telemetry").where("_source_file = 'hand.jsonl'")
    on_spark = spark_to_arrow(prep.refine_table(lake, spark, "telemetry", bronze_spark))
    on_duckdb = refine_telemetry_duckdb(
        duck.connect(), extra, lake.read_arrow("silver", "assets"), lake.read_arrow("silver", "tags"),
        mdm.historian_keys(lake.read_pandas("silver", "tags")),
    )
    a, b = _comparable(on_spark.to_pandas()), _comparable(on_duckdb.to_pandas())
    assert a["rule"].isna().sum() >= 3  # some of it is good data, read alike
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-12)


@pytest.mark.slow
def test_prep_on_both_engines_writes_the_same_lake(spark, landing, tmp_path):
    # Two batches: partition 1 of the event log lands later, with the duplicates it holds of batch one.
    held = sorted(landing.glob("eventhub/*/partition=1/*.jsonl"))
    assert held, "the simulator wrote no partition 1"
    later = tmp_path / "later"
    lakes = {"spark": Lake(tmp_path / "spark", spark=spark), "duckdb": Lake(tmp_path / "duckdb")}
    for path in held:
        (later / path.relative_to(landing)).parent.mkdir(parents=True, exist_ok=True)
        shutil.move(path, later / path.relative_to(landing))
    try:
        for engine, lake in lakes.items():
            ingest.ingest(landing, lake)
            prep.prep(lake, spark if engine == "spark" else None)
    finally:
        for path in held:
            shutil.move(later / path.relative_to(landing), path)
    for engine, lake in lakes.items():
        ingest.ingest(landing, lake)
        second = prep.prep(lake, spark if engine == "spark" else None)
        assert second.silver_rows["telemetry"] > 0
    tables = _tables(lakes["spark"])
    assert tables == _tables(lakes["duckdb"])
    assert {("silver", "telemetry"), ("quarantine", "telemetry"), ("gold", "asset_health_hourly")} <= tables
    for layer, table in sorted(tables):
        a = _comparable(lakes["spark"].read_pandas(layer, table))
        b = _comparable(lakes["duckdb"].read_pandas(layer, table))
        pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-9, obj=f"{layer}/{table}")
