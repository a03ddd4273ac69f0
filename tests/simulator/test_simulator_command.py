"""``refinery simulate``: flags validated at the boundary, a summary printed on success."""
from __future__ import annotations

from datetime import date

import pytest

from data_prep.simulator import SimulationConfig
from refinery.cli import main


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--assets", "0"], "--assets must be >= 1, got 0"),
        (["--days", "0"], "--days must be >= 1, got 0"),
        (["--bad-fraction", "0.6"], "--bad-fraction must be within [0, 0.5], got 0.6"),
        (["--bad-fraction", "-0.01"], "got -0.01"),
        (["--bad-fraction", "nan"], "got nan"),
        (["--start", "2026-02-30"], "--start '2026-02-30' is not a date"),
        (["--drift-after", "soon"], "--drift-after 'soon' is not a date"),
        (["--drift-after", "2026-01-09"], "--drift-after 2026-01-09 is outside the simulated period 2026-01-01 .. 2026-01-02"),
        (["--drift-after", "2025-12-31"], "--drift-after 2025-12-31 is outside"),
        (["--interval-minutes", "7"], "--interval-minutes must divide an hour"),
        (["--historian-days", "3"], "--historian-days must be within [0, 2], got 3"),
        (["--seed", "-1"], "--seed must be a non-negative integer, got -1"),
    ],
)
def test_bad_flags_exit_2_with_one_line_naming_the_value(tmp_path, capsys, flags, named):
    landing = tmp_path / "landing"
    code = main(["simulate", "--landing", str(landing), "--assets", "1", "--days", "2", *flags])
    err = capsys.readouterr().err
    assert code == 2
    assert named in err
    assert err.count("\n") == 1
    assert not landing.exists()  # nothing written for a bad command


def test_simulate_writes_and_summarises(tmp_path, capsys):
    landing = tmp_path / "landing"
    code = main(["simulate", "--landing", str(landing), "--assets", "2", "--days", "2", "--seed", "3",
                 "--bad-fraction", "0.02", "--drift-after", "2026-01-02"])
    out = capsys.readouterr().out
    assert code == 0
    assert "files" in out and "events" in out and "readings" in out and "failures" in out
    assert "malformed_json" in out  # faults by kind
    assert (landing / "_manifest" / "plant.json").is_file()


def test_a_second_run_into_the_same_folder_is_refused(tmp_path, capsys):
    landing = tmp_path / "landing"
    assert main(["simulate", "--landing", str(landing), "--assets", "1", "--days", "1"]) == 0
    capsys.readouterr()
    assert main(["simulate", "--landing", str(landing), "--assets", "1", "--days", "1"]) == 2
    assert "is not empty" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"assets": 0}, "got 0"),
        ({"days": -2}, "got -2"),
        ({"bad_fraction": 0.51}, "got 0.51"),
        ({"drift_after": date(2026, 1, 20), "days": 14}, "2026-01-20"),
        ({"historian_days": -1}, "got -1"),
    ],
)
def test_config_validates_on_construction(kwargs, named):
    with pytest.raises(ValueError, match=named):
        SimulationConfig(**kwargs)


def test_default_split_puts_the_first_half_in_the_historian():
    assert SimulationConfig(days=14).resolved_historian_days == 7
    assert SimulationConfig(days=1).resolved_historian_days == 0
    assert SimulationConfig(days=5, historian_days=5).resolved_historian_days == 5
