"""``refinery benchmark ...`` end to end on tiny files made here, plus the file readers."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from refinery.cli import main
from training.benchmarks.readers import parse_ai4i, parse_cmapss, parse_fortuna

REPO = Path(__file__).resolve().parents[2]


def _cmapss_lines(n_units: int, seed: int, truncate: bool) -> tuple[list[str], list[int]]:
    rng = np.random.default_rng(seed)
    lines, rul = [], []
    for unit in range(1, n_units + 1):
        life = int(rng.integers(60, 90))
        stop = int(rng.integers(25, life - 5)) if truncate else life
        rul.append(life - stop)
        for cycle in range(1, stop + 1):
            wear = (cycle / life) ** 2
            settings = [rng.normal(0, 0.002), rng.normal(0, 0.0003), 100.0]
            sensors = [518.67 if i % 5 == 0 else 100 + 10 * i + 5 * wear * (1 + i % 3) + rng.normal(0, 0.2)
                       for i in range(21)]
            lines.append(" ".join(f"{v:.4f}" for v in [unit, cycle, *settings, *sensors]) + "  ")
    return lines, rul


@pytest.fixture(scope="module")
def cmapss_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("cmapss")
    train, _ = _cmapss_lines(12, 0, truncate=False)
    test, rul = _cmapss_lines(6, 1, truncate=True)
    (d / "train_FD009.txt").write_text("\n".join(train) + "\n")
    (d / "test_FD009.txt").write_text("\r\n".join(test) + "\r\n")  # CRLF too
    (d / "RUL_FD009.txt").write_text("\n".join(str(r) for r in rul) + "\n")
    return d


def _last_json(capsys) -> dict:
    out = capsys.readouterr().out.strip().splitlines()
    return json.loads(out[-1])


def test_cmapss_benchmark_prints_table_and_json_last(cmapss_dir, capsys):
    code = main(["benchmark", "cmapss", "--data", str(cmapss_dir), "--subset", "FD009", "--seeds", "1"])
    assert code == 0
    result = _last_json(capsys)
    assert result["n_test_units"] == 6 and result["rmse"] >= 0 and "phm_score" in result
    assert result["n_regimes"] == 1


def test_cmapss_bad_input_is_one_line_naming_the_value(cmapss_dir, capsys, tmp_path):
    assert main(["benchmark", "cmapss", "--data", str(cmapss_dir), "--subset", "FD1"]) == 2
    assert "'FD1'" in capsys.readouterr().err
    assert main(["benchmark", "cmapss", "--data", str(cmapss_dir), "--subset", "FD002"]) == 2
    assert "train_FD002.txt" in capsys.readouterr().err
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in ("train", "test", "RUL"):
        (bad / f"{name}_FD009.txt").write_text((cmapss_dir / f"{name}_FD009.txt").read_text())
    lines = (bad / "train_FD009.txt").read_text().splitlines()
    lines[4] = lines[4].replace(lines[4].split()[7], "12,5")
    (bad / "train_FD009.txt").write_text("\n".join(lines))
    assert main(["benchmark", "cmapss", "--data", str(bad), "--subset", "FD009"]) == 2
    err = capsys.readouterr().err
    assert "train_FD009.txt line 5" in err and "'12,5'" in err and len(err.strip().splitlines()) == 1


def _fortuna_text(n: int = 400, seed: int = 0, newline: str = "\n") -> str:
    rng = np.random.default_rng(seed)
    u = rng.uniform(0, 1, (n, 3)).cumsum(axis=0) % 1.0
    y = np.zeros(n)
    for t in range(2, n):
        y[t] = 0.8 * y[t - 1] + 0.2 * u[t - 2, 0] - 0.1 * u[t, 1] + rng.normal(0, 0.01)
    lines = ["", "      a              b              c              q"]
    lines += ["  " + "  ".join(f"{v:.7e}" for v in [*u[t], y[t]]) for t in range(n)]
    return newline.join(lines) + newline


def test_softsensor_benchmark_on_a_small_unit(tmp_path, capsys):
    path = tmp_path / "unit.txt"
    path.write_text(_fortuna_text(newline="\r\n"))
    code = main(["benchmark", "softsensor", "--data", str(path), "--target", "q", "--lags", "0,1,2",
                 "--split", "200,80,110", "--seeds", "1"])
    assert code == 0
    result = _last_json(capsys)
    assert result["n_test"] == 110 and result["rmse"] < 0.05 and result["r2"] > 0.5
    code = main(["benchmark", "softsensor", "--data", str(path), "--target", "q", "--target-lags", "none",
                 "--seeds", "1"])
    assert code == 0 and _last_json(capsys)["target_lags"] == []


@pytest.mark.parametrize("args, message", [
    (["--target", "zz"], "'zz'"),
    (["--target", "q", "--target-lags", "0,1"], "target lags must be >= 1"),
    (["--target", "q", "--lags", "x"], "--lags"),
    (["--target", "q", "--split", "390,5,5"], "needs 400 rows, only 396 have all lags (400 rows minus the first 4)"),
])
def test_softsensor_bad_arguments(tmp_path, capsys, args, message):
    path = tmp_path / "unit.txt"
    path.write_text(_fortuna_text())
    assert main(["benchmark", "softsensor", "--data", str(path), *args]) == 2
    assert message in capsys.readouterr().err


def _ai4i_csv(n: int = 1500, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    air = rng.normal(300, 2, n)
    proc = air + rng.normal(10, 1, n)
    speed = rng.normal(1500, 150, n)
    torque = rng.normal(40, 10, n)
    wear = rng.integers(0, 250, n)
    fail = ((torque * speed * 2 * np.pi / 60 > 9000) | (wear * torque > 9500)).astype(int)
    frame = pd.DataFrame({
        "UDI": np.arange(1, n + 1), "Product ID": [f"M{i}" for i in range(n)],
        "Type": rng.choice(["L", "M", "H"], n), "Air temperature [K]": air, "Process temperature [K]": proc,
        "Rotational speed [rpm]": speed.round(), "Torque [Nm]": torque, "Tool wear [min]": wear,
        "Machine failure": fail, "TWF": 0, "HDF": 0, "PWF": fail, "OSF": 0, "RNF": 0,
    })
    return "\ufeff" + frame.to_csv(index=False)


def test_ai4i_benchmark_excludes_leaky_columns(tmp_path, capsys):
    path = tmp_path / "ai4i.csv"
    path.write_text(_ai4i_csv(), encoding="utf-8")
    assert main(["benchmark", "ai4i", "--data", str(path), "--seeds", "1"]) == 0
    out = capsys.readouterr().out
    result = json.loads(out.strip().splitlines()[-1])
    assert 0 <= result["pr_auc"] <= 1 and 0 <= result["f1"] <= 1 and "recall_at_alert_rate" in result
    features_line = next(line for line in out.splitlines() if line.strip().startswith("features"))
    for leaky in ("TWF", "HDF", "PWF", "OSF", "RNF", "UDI", "Product ID", "Machine failure"):
        assert leaky not in features_line


def test_ai4i_missing_file_and_target(tmp_path, capsys):
    assert main(["benchmark", "ai4i", "--data", str(tmp_path / "nope.csv")]) == 2
    assert "nope.csv" in capsys.readouterr().err
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,2\n")
    assert main(["benchmark", "ai4i", "--data", str(path)]) == 2
    assert "'Machine failure'" in capsys.readouterr().err


def test_readers_handle_crlf_blank_lines_bom_and_report_line_numbers():
    frame = parse_fortuna("\r\n  u1   y \r\n\r\n 1.0e-001  2.5E+000\r\n3 4\r\n")
    assert list(frame.columns) == ["u1", "y"] and frame["y"].tolist() == [2.5, 4.0]
    with pytest.raises(ValueError, match="line 4: expected 2 values, got 3"):
        parse_fortuna("a b\n1 2\n\n1 2 3\n")
    with pytest.raises(ValueError, match="line 2: cannot parse 'x'"):
        parse_cmapss("1 " * 26 + "\n" + "1 x " + "1 " * 24 + "\n")
    assert list(parse_ai4i("\ufeffUDI,Type\n1,L\n").columns) == ["UDI", "Type"]


def test_training_package_never_imports_pyspark():
    """No training module imports pyspark, and all of them import with pyspark unavailable.

    (mlflow itself tries ``import pyspark`` when it is installed; that optional probe is why
    the runtime check blocks pyspark instead of asserting it was never loaded.)
    """
    import ast

    for path in (REPO / "training").rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n.split(".")[0] == "pyspark" for n in names), f"{path} imports pyspark"
    code = (
        "import sys, importlib, pkgutil\n"
        "sys.modules['pyspark'] = None  # any import of it now fails\n"
        "import training\n"
        "for m in pkgutil.walk_packages(training.__path__, 'training.'):\n"
        "    importlib.import_module(m.name)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
