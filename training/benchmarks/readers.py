"""Readers for the public benchmark file formats: C-MAPSS, Fortuna soft-sensor text, AI4I CSV.

``parse_*`` functions turn text into DataFrames (pure, testable on strings); ``read_*``
functions only open the files. A bad line raises ValueError with its file and line number.
"""
from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

CMAPSS_SETTINGS = ["op_setting_1", "op_setting_2", "op_setting_3"]
CMAPSS_SENSORS = [f"sensor_{i}" for i in range(1, 22)]
CMAPSS_COLUMNS = ["unit", "cycle", *CMAPSS_SETTINGS, *CMAPSS_SENSORS]
_SUBSET = re.compile(r"^FD\d{3}$")


def _read_text(path: str | Path, what: str) -> str:
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{what} file not found: {p}")
    # utf-8-sig drops a byte-order mark; newline=None folds CRLF/CR into LF.
    with open(p, encoding="utf-8-sig", newline=None) as fh:
        return fh.read()


def _parse_rows(text: str, source: str, n_columns: int | None, skip_header: bool = False) -> tuple[list[str] | None, np.ndarray]:
    """Whitespace-separated numeric rows; blank lines skipped. Optionally the first non-blank
    line is a header naming the columns (which then fixes the column count)."""
    header: list[str] | None = None
    rows: list[list[float]] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if skip_header and header is None:
            header = fields
            if len(set(header)) != len(header):
                raise ValueError(f"{source} line {lineno}: duplicate column name in header {header}")
            n_columns = len(header)
            continue
        if n_columns is not None and len(fields) != n_columns:
            raise ValueError(f"{source} line {lineno}: expected {n_columns} values, got {len(fields)}: {line.strip()[:80]!r}")
        try:
            rows.append([float(f) for f in fields])
        except ValueError:
            bad = next(f for f in fields if not _is_float(f))
            raise ValueError(f"{source} line {lineno}: cannot parse {bad!r} as a number") from None
        if n_columns is None:
            n_columns = len(fields)
    if skip_header and header is None:
        raise ValueError(f"{source}: no header line")
    if not rows:
        raise ValueError(f"{source}: no data rows")
    values = np.array(rows, dtype="float64")
    if not np.isfinite(values).all():
        r, c = np.argwhere(~np.isfinite(values))[0]
        raise ValueError(f"{source}: data row {r + 1}, column {c + 1} is not a finite number")
    return header, values


def _is_float(token: str) -> bool:
    try:
        float(token)
        return True
    except ValueError:
        return False


def parse_cmapss(text: str, source: str = "cmapss") -> pd.DataFrame:
    """C-MAPSS train/test text (26 columns, no header) -> frame with named columns,
    integer ``unit`` and ``cycle``."""
    _, values = _parse_rows(text, source, len(CMAPSS_COLUMNS))
    frame = pd.DataFrame(values, columns=CMAPSS_COLUMNS)
    for col in ("unit", "cycle"):
        if not np.all(frame[col] == np.round(frame[col])):
            bad = int(np.flatnonzero(frame[col] != np.round(frame[col]))[0])
            raise ValueError(f"{source}: data row {bad + 1} has non-integer {col} {frame[col].iloc[bad]}")
        frame[col] = frame[col].astype("int64")
    if frame.duplicated(["unit", "cycle"]).any():
        unit, cycle = frame.loc[frame.duplicated(["unit", "cycle"]), ["unit", "cycle"]].iloc[0]
        raise ValueError(f"{source}: unit {unit} has cycle {cycle} twice")
    return frame


def parse_rul(text: str, source: str = "RUL") -> np.ndarray:
    """One true remaining-useful-life value per line, in test-unit order."""
    _, values = _parse_rows(text, source, 1)
    rul = values[:, 0]
    if (rul < 0).any():
        raise ValueError(f"{source}: data row {int(np.flatnonzero(rul < 0)[0]) + 1} has negative RUL {rul[rul < 0][0]}")
    return rul


@dataclass(frozen=True)
class CmapssSubset:
    name: str
    train: pd.DataFrame
    test: pd.DataFrame
    test_rul: pd.Series  # true RUL at each test unit's last cycle, indexed by unit


def read_cmapss(data_dir: str | Path, subset: str) -> CmapssSubset:
    """train_<subset>.txt, test_<subset>.txt and RUL_<subset>.txt from ``data_dir``."""
    if not _SUBSET.match(subset or ""):
        raise ValueError(f"bad C-MAPSS subset {subset!r}: expected FD followed by three digits, e.g. FD001")
    d = Path(data_dir)
    if not d.is_dir():
        raise ValueError(f"C-MAPSS data folder not found: {d}")
    train = parse_cmapss(_read_text(d / f"train_{subset}.txt", "C-MAPSS train"), f"train_{subset}.txt")
    test = parse_cmapss(_read_text(d / f"test_{subset}.txt", "C-MAPSS test"), f"test_{subset}.txt")
    rul = parse_rul(_read_text(d / f"RUL_{subset}.txt", "C-MAPSS RUL"), f"RUL_{subset}.txt")
    units = np.sort(test["unit"].unique())
    if len(rul) != len(units):
        raise ValueError(f"RUL_{subset}.txt has {len(rul)} values but test_{subset}.txt has {len(units)} units")
    return CmapssSubset(subset, train, test, pd.Series(rul, index=units, name="rul"))


def parse_fortuna(text: str, source: str = "soft-sensor data") -> pd.DataFrame:
    """Fortuna-style text: a header line naming the columns, then whitespace-separated numbers
    (scientific notation allowed); blank lines and CRLF/LF line ends are accepted. Row order is
    time order."""
    header, values = _parse_rows(text, source, None, skip_header=True)
    return pd.DataFrame(values, columns=header)


def read_fortuna(path: str | Path) -> pd.DataFrame:
    return parse_fortuna(_read_text(path, "soft-sensor data"), Path(path).name)


def parse_ai4i(text: str, source: str = "ai4i") -> pd.DataFrame:
    """AI4I 2020 CSV (UTF-8, optional BOM) -> frame as in the file, column names stripped."""
    text = text.lstrip("\ufeff")
    try:
        frame = pd.read_csv(io.StringIO(text))
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ValueError(f"{source}: cannot parse CSV: {exc}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def read_ai4i(path: str | Path) -> pd.DataFrame:
    return parse_ai4i(_read_text(path, "AI4I CSV"), Path(path).name)
