"""Shared fixtures: one small Spark session for the whole test run, lakes under tmp_path."""
from __future__ import annotations

import pytest

from refinery.settings import Settings


@pytest.fixture(scope="session")
def spark():
    from data_prep.spark_session import get_spark

    session = get_spark(Settings(spark_master="local[1]", spark_shuffle_partitions=1), app_name="refinery-tests")
    yield session
    session.stop()


@pytest.fixture
def lake(tmp_path, spark):
    from data_prep.lake import Lake

    return Lake(tmp_path / "lake", spark=spark)


def prepare_plant(work, assets: int, days: int, seed: int):
    """Simulate a plant into ``work/landing`` and run ``ingest`` + ``prep`` as a user would; returns (landing, lake)."""
    from refinery.cli import main

    landing, lake = work / "landing", work / "lake"
    plant = ["--assets", str(assets), "--days", str(days), "--seed", str(seed), "--bad-fraction", "0.02"]
    assert main(["simulate", "--landing", str(landing), *plant]) == 0
    assert main(["ingest", "--landing", str(landing), "--lake", str(lake)]) == 0
    assert main(["prep", "--lake", str(lake)]) == 0
    return landing, lake
