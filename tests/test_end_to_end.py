"""The data commands end to end on a small simulated plant, as a user runs them."""
from __future__ import annotations

from pathlib import Path

import pytest

from data_prep.fault_audit import EXPECTED_RULE, audit_faults
from data_prep.lake import Lake
from refinery.cli import main
from refinery.commands_data import lake_summary
from tests.conftest import prepare_plant

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def plant(tmp_path_factory, spark):
    landing, lake = prepare_plant(tmp_path_factory.mktemp("plant"), assets=6, days=4, seed=7)
    return landing, Lake(lake, spark=spark)


def test_tables_exist_and_telemetry_is_accounted_for(plant):
    _, lake = plant
    for layer, table in [("bronze", "telemetry"), ("silver", "telemetry"), ("quarantine", "telemetry"), ("silver", "assets"),
                         ("silver", "customers"), ("gold", "asset_health_hourly"), ("gold", "sales_orders")]:
        assert lake.exists(layer, table), f"{layer}/{table}"
    bronze = lake.read_arrow("bronze", "telemetry", columns=["_record_id"]).column(0).to_pylist()
    silver = lake.read_arrow("silver", "telemetry", columns=["_record_id"]).column(0).to_pylist()
    quarantine = lake.read_arrow("quarantine", "telemetry", columns=["_record_id"]).column(0).to_pylist()
    assert len(silver) + len(quarantine) == len(bronze)
    assert sorted(silver + quarantine) == sorted(bronze)  # each bronze row exactly once


def test_every_injected_fault_kind_is_caught_by_its_named_rule(plant):
    landing, lake = plant
    audit = audit_faults(landing, lake).set_index("kind")
    assert set(audit.index) == set(EXPECTED_RULE)
    assert (audit["caught"] == audit["injected"]).all(), audit.to_string()
    quarantined = lake.read_arrow("quarantine", "telemetry").num_rows
    assert quarantined == audit["injected"].sum()  # and nothing good was rejected


def test_second_ingest_and_prep_change_nothing(plant, capsys):
    landing, lake = plant
    before = lake_summary(lake)
    assert main(["ingest", "--landing", str(landing), "--lake", lake.root]) == 0
    assert main(["prep", "--lake", lake.root]) == 0
    assert lake_summary(lake) == before  # same rows and same Delta versions: nothing was written
    assert "nothing written" in capsys.readouterr().out


def test_silver_values_are_in_canonical_units(plant):
    _, lake = plant
    silver = lake.read_pandas("silver", "telemetry", columns=["measurement", "unit", "source_unit", "value"])
    canonical = {"temperature": "degC", "pressure": "barg", "flow": "m3/h", "vibration": "mm/s", "current": "A", "speed": "rpm"}
    assert (silver["unit"] == silver["measurement"].map(canonical)).all()
    assert (silver["source_unit"] != silver["unit"]).any()  # some readings were converted


def test_golden_records_resolve_every_work_order_and_order(plant):
    _, lake = plant
    assets = set(lake.read_pandas("silver", "assets")["asset_id"])
    assert set(lake.read_pandas("silver", "work_orders")["asset_id"]) <= assets
    xref = lake.read_pandas("silver", "customer_xref")
    assert xref["source_id"].is_unique and xref["customer_id"].nunique() < len(xref)  # name variants merged


@pytest.mark.parametrize(
    "argv, named",
    [
        (["ingest", "--landing", "/nonexistent/landing", "--lake", "/tmp/x"], "/nonexistent/landing"),
        (["prep", "--lake", "/nonexistent/lake"], "/nonexistent/lake"),
        (["simulate", "--landing", "/tmp/never", "--assets", "0"], "assets"),
        (["simulate", "--landing", "/tmp/never", "--bad-fraction", "2"], "bad"),
    ],
)
def test_bad_input_is_one_line_naming_the_value(argv, named, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and named in err
