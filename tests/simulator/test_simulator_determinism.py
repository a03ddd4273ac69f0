"""Same seed, same bytes; another seed, another plant."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from simulated_plants import TINY

from data_prep.simulator import simulate


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_config_gives_byte_identical_landings(tiny_landing, tmp_path):
    again = tmp_path / "again"
    simulate(again, TINY)
    first, second = _files(tiny_landing), _files(again)
    assert sorted(first) == sorted(second)
    different = [name for name in first if first[name] != second[name]]
    assert different == []


def test_another_seed_gives_other_data(tiny_landing, tmp_path):
    other = tmp_path / "other"
    simulate(other, replace(TINY, seed=TINY.seed + 1))
    first, second = _files(tiny_landing), _files(other)
    for name in ("historian/2026-01-01.csv", "_manifest/plant.json", "mes/production_2026-01-01.csv"):
        assert first[name] != second[name], name


def test_a_run_refuses_a_landing_that_is_not_empty(tiny_landing):
    import pytest

    with pytest.raises(ValueError, match="not empty"):
        simulate(tiny_landing, TINY)
