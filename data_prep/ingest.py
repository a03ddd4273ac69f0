"""Ingestion, the Data Factory step: every landed record into bronze exactly as it came.

Each source file becomes bronze rows of ``raw`` text plus where and when it came from; nothing is
parsed into typed columns here, so nothing can be rejected or lost here. A file manifest in
``_meta/ingested_files`` makes ingestion idempotent: a second run adds nothing and a new file adds
only itself. Each run is one batch (``_batch_id``); bronze appends carry a Delta transaction id per
batch, so a run that died between the bronze writes and the manifest write is repaired, not
doubled, by running again.

Event Hubs and CSV files are read a whole file at a time with Arrow compute. Only lines whose
shape proves that Arrow reads them exactly as the reference readers do (one line at a time with
json.loads, csv.reader and json.dumps) go that way. Every other line, broken or merely unusual,
goes through a reference reader, so bronze holds the same rows and values either way.
"""
from __future__ import annotations

import argparse
import csv
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from data_prep import schemas
from data_prep.lake import Lake, Txn

TS_UNIT = schemas.TS


@dataclass(frozen=True)
class SourceFamily:
    """One kind of landed file: where it lies, which bronze table it feeds, how to split it."""

    source: str
    pattern: str
    table: str
    reader: str  # "events" | "csv" | "lines" | "json_records" | "json_array"


SOURCES: tuple[SourceFamily, ...] = (
    SourceFamily("eventhub", "eventhub/*/partition=*/*.jsonl", "telemetry", "events"),
    SourceFamily("historian", "historian/*.csv", "telemetry", "csv"),
    SourceFamily("alarms", "alarms/*.log", "alarms", "lines"),
    SourceFamily("iot_registry", "iot/devices.json", "devices", "json_array"),
    SourceFamily("cmms_equipment", "cmms/equipment.csv", "equipment", "csv"),
    SourceFamily("cmms_work_orders", "cmms/work_orders_*.csv", "work_orders", "csv"),
    SourceFamily("mes", "mes/production_*.csv", "production", "csv"),
    SourceFamily("crm_accounts", "crm/accounts_*.json", "crm_accounts", "json_records"),
    SourceFamily("crm_orders", "crm/orders_*.json", "crm_orders", "json_records"),
)

Row = dict  # one bronze row before the ingestion metadata is added

# The bronze columns a reader fills (the rest is ingestion metadata, the same for a whole file).
PAYLOAD: tuple[str, ...] = (
    "eh_partition", "eh_offset", "eh_sequence_number", "eh_enqueued_time", "eh_properties", "raw",
)
_PAYLOAD_TYPES: dict[str, pa.DataType] = {name: schemas.BRONZE.field(name).type for name in PAYLOAD}


# ---------------------------------------------------------------------------------------------
# The reference readers: one line (or record) at a time. Every line the vectorised readers below
# cannot prove ordinary goes through these, so they define what lands in bronze.
# ---------------------------------------------------------------------------------------------


def _event_row(line: str) -> Row:
    """One Event Hubs envelope line as bronze columns; a line that is no envelope is kept whole as ``raw``."""
    try:
        env = json.loads(line)
        enq = env.get("enqueued_time")
        return {
            "eh_partition": env.get("partition"),
            "eh_offset": int(env["offset"]) if env.get("offset") is not None else None,
            "eh_sequence_number": env.get("sequence_number"),
            "eh_enqueued_time": datetime.fromisoformat(enq.replace("Z", "+00:00")) if enq else None,
            "eh_properties": json.dumps(env.get("properties") or {}, sort_keys=True),
            "raw": env.get("body") if isinstance(env.get("body"), str) else json.dumps(env.get("body")),
        }
    except (ValueError, KeyError, AttributeError, TypeError):
        # A broken envelope is the transport's fault, not the device's: keep the whole line.
        return {"raw": line}


def _csv_row(line: str, header: list[str]) -> Row:
    """One CSV data line, parsed alone: ``raw`` is a JSON object of header -> text, or the line itself if ragged.

    Empty fields become JSON nulls: a CSV export has no other way to say "no value". Parsing each
    line alone keeps a quote that is never closed from swallowing the lines after it.
    """
    fields = next(csv.reader([line]))
    if len(fields) == len(header):
        return {"raw": json.dumps({h: (f if f.strip() else None) for h, f in zip(header, fields)})}
    return {"raw": json.dumps({"_unparsed": line, "_header": header})}


def _split_lines(text: str) -> Iterator[tuple[int, Row]]:
    for line_no, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield line_no, {"raw": line}


def _split_json_records(text: str) -> Iterator[tuple[int, Row]]:
    """One row per record of a JSON array or ``{"records": [...]}``; ``_line`` is the record's index."""
    try:
        doc = json.loads(text)
    except ValueError:
        yield 1, {"raw": text}  # the whole file is one bad record; refinement quarantines it
        return
    records = doc.get("records") if isinstance(doc, dict) else doc
    if not isinstance(records, list):
        yield 1, {"raw": text}
        return
    for i, rec in enumerate(records, start=1):
        yield i, {"raw": json.dumps(rec, sort_keys=True)}


# ---------------------------------------------------------------------------------------------
# Columns: a file's rows as Arrow arrays
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Records:
    """The payload of some rows of one file: their ``_line`` numbers and every ``PAYLOAD`` column."""

    line: pa.Array  # int64
    columns: dict[str, pa.Array]

    def __len__(self) -> int:
        return len(self.line)


def _records(line: pa.Array, **columns: pa.Array) -> Records:
    """Records from the columns a reader filled; the payload columns it did not fill are null."""
    n = len(line)
    return Records(line, {name: columns[name] if name in columns else pa.nulls(n, _PAYLOAD_TYPES[name])
                          for name in PAYLOAD})


def _records_from_rows(rows: Iterable[tuple[int, Row]]) -> Records:
    """Records from the reference readers' (line, row) pairs; a key a row lacks is null."""
    lines: list[int] = []
    cols: dict[str, list] = {name: [] for name in PAYLOAD}
    for line_no, row in rows:
        lines.append(line_no)
        for name in PAYLOAD:
            cols[name].append(row.get(name))
    return Records(pa.array(lines, pa.int64()), {name: pa.array(cols[name], _PAYLOAD_TYPES[name]) for name in PAYLOAD})


def _in_line_order(*parts: Records) -> Records:
    """One Records of the parts' rows, by line number (the order the reference readers give)."""
    parts = tuple(p for p in parts if len(p)) or parts[:1]
    if len(parts) == 1:
        return parts[0]
    order = pc.sort_indices(pa.concat_arrays([p.line for p in parts]))
    return Records(pa.concat_arrays([p.line for p in parts]).take(order),
                   {name: pa.concat_arrays([p.columns[name] for p in parts]).take(order) for name in PAYLOAD})


# str.splitlines() also cuts at these, not only at "\n"; a file holding any of them is cut by Python.
_OTHER_LINE_BREAKS = "\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"


def _lines(text: str) -> pa.Array:
    """The text's lines exactly as ``str.splitlines()`` cuts them: line ``i + 1`` of the file at index ``i``."""
    if any(brk in text for brk in _OTHER_LINE_BREAKS):
        return pa.array(text.splitlines(), pa.string())
    lines = pc.split_pattern(pa.array([text], pa.large_string()), "\n").flatten()
    if lines[len(lines) - 1].as_py() == "":  # text ending in "\n" (or empty): splitlines adds no empty last line
        lines = lines.slice(0, len(lines) - 1)
    return lines.cast(pa.string())


def _split_at(strings: pa.Array, separator: str, last: bool = False) -> tuple[pa.Array, pa.Array]:
    """(before, after) the first (or ``last``) occurrence of ``separator``, which every string holds."""
    parts = pc.split_pattern(strings, separator, max_splits=1, reverse=last)
    return pc.list_element(parts, 0), pc.list_element(parts, 1)


def _positions(mask: pa.Array) -> pa.Array:
    """Indices (int64) of the true values of a boolean array."""
    return pa.array(np.flatnonzero(mask.to_numpy(zero_copy_only=False)), pa.int64())


def _others(taken: pa.Array, start: int, stop: int) -> pa.Array:
    """Indices in ``range(start, stop)`` not in ``taken``: the lines left to the reference reader."""
    rest = np.zeros(stop, dtype=bool)
    rest[start:] = True
    rest[taken.to_numpy()] = False
    return pa.array(np.flatnonzero(rest), pa.int64())


def _line_numbers(positions: pa.Array) -> pa.Array:
    """File line numbers (from 1) of positions in the file's lines (from 0)."""
    return pc.add(positions, 1)


def _reference_rows(lines: pa.Array, positions: pa.Array, row: Callable[[str], Row]) -> Records:
    """The reference reader's rows for the lines at ``positions``, blank lines skipped as it skips them."""
    texts = lines.take(positions).to_pylist()
    return _records_from_rows((p + 1, row(line)) for p, line in zip(positions.to_pylist(), texts) if line.strip())


# ---------------------------------------------------------------------------------------------
# Event Hubs envelopes, vectorised
# ---------------------------------------------------------------------------------------------

# A line is read column-wise only when it has exactly the layout LocalEventLog writes (compact JSON,
# keys in this order, integers without leading zeros, an enqueued time with 0-6 fractional digits
# and "Z", properties of plain string values, a body string whose only escape is \"). In that
# layout the first ',"properties":' starts the properties and the last ',"body":"' starts the body
# (every quote inside a body is escaped), and each value reads as json.loads reads it. Any other
# line, broken or merely unusual, goes through ``_event_row``.
_JSON_CHAR = r'[^"\\\x00-\x1f]'  # a character a JSON string holds as itself, with no escape
_PLAIN_STRING = f'"{_JSON_CHAR}*"'
_INT32 = r"-?(?:0|[1-9][0-9]{0,8})"  # JSON integers (no leading zeros) that fit their column
_INT64 = r"-?(?:0|[1-9][0-9]{0,17})"
_ENVELOPE = (
    rf'^\{{"partition":{_INT32},"offset":"[0-9]{{1,18}}","sequence_number":{_INT64},'
    r'"enqueued_time":"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?Z",'
    rf'"properties":\{{(?:{_PLAIN_STRING}:{_PLAIN_STRING}(?:,{_PLAIN_STRING}:{_PLAIN_STRING})*)?\}},'
    rf'"body":"(?:{_JSON_CHAR}|\\")*"\}}$'
)
_ENVELOPE_HEAD = (
    r'^\{"partition":(?P<partition>[^,]*),"offset":"(?P<offset>[^"]*)","sequence_number":(?P<sequence_number>[^,]*),'
    r'"enqueued_time":"(?P<enqueued_time>[^"]*)"$'
)
_YEAR_1 = pa.scalar(datetime(1, 1, 1), pa.timestamp("us"))


def _enqueued_times(text: pa.Array) -> tuple[pa.Array, pa.Array]:
    """(UTC timestamps, parsed-as-Python-would mask) of ``YYYY-MM-DDTHH:MM:SS[.f]Z`` texts.

    Arrow's strptime rolls an impossible date or time forward (Feb 30 -> Mar 2, 23:59:60 -> next
    day) where ``datetime.fromisoformat`` refuses it, so a value counts only if its year, month,
    day, hour, minute and second are the ones written, in Python's years 1-9999.
    """
    seconds = pc.utf8_slice_codeunits(text, 0, 19)
    parsed = pc.strptime(seconds, format="%Y-%m-%dT%H:%M:%S", unit="us", error_is_null=True)
    ok = pc.greater_equal(parsed, _YEAR_1)
    for part, start in ((pc.year, 0), (pc.month, 5), (pc.day, 8), (pc.hour, 11), (pc.minute, 14), (pc.second, 17)):
        written = pc.cast(pc.utf8_slice_codeunits(seconds, start, start + (4 if start == 0 else 2)), pa.int64())
        ok = pc.and_(ok, pc.equal(part(parsed), written))
    ok = pc.fill_null(ok, False)
    # Digits between "." and "Z", padded to microseconds: ".9" is 900000 us, as fromisoformat reads it.
    micros = pc.cast(pc.utf8_rpad(pc.utf8_slice_codeunits(text, 20, -1), 6, "0"), pa.int64())
    stamps = pc.add(pc.cast(parsed, pa.int64()), micros).cast(pa.timestamp("us")).cast(TS_UNIT)
    return stamps, ok


def _sorted_json(objects: pa.Array) -> pa.Array:
    """JSON object texts rewritten as ``json.dumps(..., sort_keys=True)`` writes them.

    Properties repeat (one set per device), so each distinct text is rewritten once by Python.
    """
    distinct = pc.dictionary_encode(objects)
    rewritten = [json.dumps(json.loads(t), sort_keys=True) for t in distinct.dictionary.to_pylist()]
    return pa.array(rewritten, pa.string()).take(distinct.indices)


def _envelope_columns(envelopes: pa.Array) -> tuple[dict[str, pa.Array], pa.Array]:
    """The payload columns of lines in LocalEventLog's layout, and a mask of those whose time Python reads alike."""
    head, body = _split_at(envelopes, ',"body":"', last=True)
    head, properties = _split_at(head, ',"properties":')
    fields = pc.extract_regex(head, _ENVELOPE_HEAD)
    enqueued, ok = _enqueued_times(fields.field("enqueued_time"))
    return {
        "eh_partition": pc.cast(fields.field("partition"), pa.int32()),
        "eh_offset": pc.cast(fields.field("offset"), pa.int64()),
        "eh_sequence_number": pc.cast(fields.field("sequence_number"), pa.int64()),
        "eh_enqueued_time": enqueued,
        "eh_properties": _sorted_json(properties),
        # The body string without its closing '"}'; \" is its only escape.
        "raw": pc.replace_substring(pc.utf8_slice_codeunits(body, 0, -2), '\\"', '"'),
    }, ok


def _event_records(text: str) -> Records:
    """One row per non-blank envelope line: its envelope columns and its body text as ``raw``."""
    lines = _lines(text)
    at = _positions(pc.match_substring_regex(lines, _ENVELOPE))
    columns, ok = _envelope_columns(lines.take(at))
    fast = _records(_line_numbers(at.filter(ok)), **{name: col.filter(ok) for name, col in columns.items()})
    return _in_line_order(fast, _reference_rows(lines, _others(at.filter(ok), 0, len(lines)), _event_row))


# ---------------------------------------------------------------------------------------------
# CSV, vectorised
# ---------------------------------------------------------------------------------------------

# A field json.dumps writes as itself between quotes and csv.reader reads as itself: printable
# ASCII without '"', ',' or '\'. A line of only such fields, as many as the header has, is read
# column-wise; any other line (quoted fields, non-ASCII, ragged) goes through ``_csv_row``.
_CSV_PLAIN_FIELD = r"[\x20\x21\x23-\x2b\x2d-\x5b\x5d-\x7e]*"
# Such a text is empty to str.strip() (a blank line, a field that becomes null) only if it is all spaces.
_ALL_SPACES = "^ *$"


def _plain_csv_json(lines: pa.Array, header: list[str]) -> pa.Array:
    """``_csv_row``'s ``raw`` for lines of plain fields, as many as ``header`` names: ``{"h": "f", "h2": null}``."""
    fields = pc.split_pattern(lines, ",")
    pieces: list = []
    for i, name in enumerate(header):
        value = pc.list_element(fields, i)
        quoted = pc.binary_join_element_wise('"', value, '"', "")
        as_json = pc.if_else(pc.match_substring_regex(value, _ALL_SPACES), "null", quoted)
        pieces += [("{" if i == 0 else ", ") + json.dumps(name) + ": ", as_json]
    return pc.binary_join_element_wise(*pieces, "}", "")


def _csv_records(text: str) -> Records:
    """One row per non-blank data line (the header is line 1); ``raw`` as ``_csv_row`` writes it."""
    lines = _lines(text)
    if not len(lines):
        return _records(pa.array([], pa.int64()))
    header = next(csv.reader([lines[0].as_py()]))
    reference = partial(_csv_row, header=header)
    if not header or len(set(header)) < len(header):
        # A repeated column name keeps only its last value in a dict: leave that to the reference reader.
        return _reference_rows(lines, _others(pa.array([], pa.int64()), 1, len(lines)), reference)
    plain_line = f"^{_CSV_PLAIN_FIELD}" + f",{_CSV_PLAIN_FIELD}" * (len(header) - 1) + "$"
    data = lines.slice(1)  # the header is no data line
    plain = pc.and_(pc.match_substring_regex(data, plain_line), pc.invert(pc.match_substring_regex(data, _ALL_SPACES)))
    at = pc.add(_positions(plain), 1)
    fast = _records(_line_numbers(at), raw=_plain_csv_json(lines.take(at), header))
    return _in_line_order(fast, _reference_rows(lines, _others(at, 1, len(lines)), reference))


READERS: dict[str, Callable[[str], Records]] = {
    "events": _event_records,
    "csv": _csv_records,
    "lines": lambda text: _records_from_rows(_split_lines(text)),
    "json_records": lambda text: _records_from_rows(_split_json_records(text)),
    "json_array": lambda text: _records_from_rows(_split_json_records(text)),
}


def bronze_rows(landing: Path, family: SourceFamily, path: Path, batch_id: int, ingested_at: datetime) -> pa.Table:
    """Split one landed file into bronze rows (pure apart from reading the file)."""
    rel = path.relative_to(landing).as_posix()
    text = path.read_bytes().decode("utf-8-sig", errors="replace")
    records = READERS[family.reader](text)
    n = len(records)
    columns = {
        **records.columns,
        "_record_id": pc.binary_join_element_wise(f"{rel}#", pc.cast(records.line, pa.string()), ""),
        "_source": pa.repeat(pa.scalar(family.source, pa.string()), n),
        "_source_file": pa.repeat(pa.scalar(rel, pa.string()), n),
        "_line": records.line,
        "_batch_id": pa.repeat(pa.scalar(batch_id, pa.int64()), n),
        "_ingested_at": pa.repeat(pa.scalar(ingested_at, TS_UNIT), n),
    }
    return pa.Table.from_arrays([columns[name] for name in schemas.BRONZE.names], schema=schemas.BRONZE)


@dataclass
class IngestResult:
    batch_id: int
    files: int
    rows_by_table: dict[str, int]
    skipped_files: int


def discover(landing: Path) -> list[tuple[SourceFamily, Path]]:
    """Every landed file that belongs to a known source, in a stable order."""
    found = []
    for family in SOURCES:
        for path in sorted(landing.glob(family.pattern)):
            if path.is_file():
                found.append((family, path))
    return found


def _manifest_rows(landing: Path, items: list[tuple[str, str, int, int]], now: datetime) -> pa.Table:
    """Manifest rows for (relative file, bronze table, rows, batch) items."""
    cols: dict[str, list] = {name: [] for name in schemas.META["ingested_files"].names}
    for rel, table, rows, batch in items:
        path = landing / rel
        stat = path.stat() if path.exists() else None
        for key, value in (
            ("source_file", rel), ("size", stat.st_size if stat else -1), ("mtime_ns", stat.st_mtime_ns if stat else -1),
            ("table", table), ("rows", rows), ("_batch_id", batch), ("ingested_at", now),
        ):
            cols[key].append(value)
    return pa.table(cols, schema=schemas.META["ingested_files"])


def _recover_unrecorded_batches(landing: Path, lake: Lake, last_recorded: int, now: datetime) -> int:
    """Record in the manifest the files of a run that died after its bronze writes; returns the last batch id used.

    Such a run's rows are in bronze (its Delta transaction committed) but its files are missing
    from the manifest. Re-ingesting them would double them and a new batch id reusing the dead
    run's would be skipped by the transaction guard, so those files are recorded as ingested.
    """
    last_used, recovered = last_recorded, []
    for table in sorted({f.table for f in SOURCES}):
        done = lake.txn_version("bronze", table, "ingest")
        if done is None or done <= last_recorded:
            continue
        last_used = max(last_used, done)
        rows = lake.read_arrow("bronze", table, columns=["_source_file", "_batch_id"]).to_pandas()
        orphans = rows[rows["_batch_id"] > last_recorded].groupby(["_source_file", "_batch_id"]).size()
        recovered += [(rel, table, int(n), int(batch)) for (rel, batch), n in orphans.items()]
    if recovered:
        lake.append(_manifest_rows(landing, recovered, now), "_meta", "ingested_files")
    return last_used


def ingest(landing: Path, lake: Lake, now: datetime | None = None) -> IngestResult:
    """Land every file not yet in the manifest into bronze, as one batch."""
    if not landing.is_dir():
        raise FileNotFoundError(f"landing folder not found: {landing}")
    now = now or datetime.now(timezone.utc)
    seen: dict[str, int] = {}
    last_recorded = 0
    if lake.exists("_meta", "ingested_files"):
        manifest = lake.read_arrow("_meta", "ingested_files", columns=["source_file", "_batch_id"]).to_pydict()
        last_recorded = max(manifest["_batch_id"], default=0)
    last_used = _recover_unrecorded_batches(landing, lake, last_recorded, now)
    if lake.exists("_meta", "ingested_files"):
        manifest = lake.read_arrow("_meta", "ingested_files", columns=["source_file", "_batch_id"]).to_pydict()
        seen = dict(zip(manifest["source_file"], manifest["_batch_id"]))
    batch_id = last_used + 1
    files = [(f, p) for f, p in discover(landing) if p.relative_to(landing).as_posix() not in seen]
    by_table: dict[str, list[pa.Table]] = {}
    items = []
    for family, path in files:
        rows = bronze_rows(landing, family, path, batch_id, now)
        by_table.setdefault(family.table, []).append(rows)
        items.append((path.relative_to(landing).as_posix(), family.table, rows.num_rows, batch_id))
    counts = {}
    for table, parts in by_table.items():
        data = pa.concat_tables(parts)
        lake.append(data, "bronze", table, txn=Txn("ingest", batch_id))
        counts[table] = data.num_rows
    if files:
        lake.append(_manifest_rows(landing, items, now), "_meta", "ingested_files")
    return IngestResult(batch_id=batch_id if files else last_used, files=len(files), rows_by_table=counts, skipped_files=len(seen))


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ingest", help="land new source files into bronze Delta tables, as they came")
    p.add_argument("--landing", required=True, help="landing folder written by the source systems (or simulate)")
    p.add_argument("--lake", help="lake root (default from settings)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, settings) -> int:
    lake = Lake(settings.lake_uri)
    result = ingest(Path(args.landing), lake)
    if not result.files:
        print(f"ingest: nothing new in {args.landing} ({result.skipped_files} files already ingested)")
        return 0
    print(f"ingest: batch {result.batch_id}: {result.files} new files")
    for table, n in sorted(result.rows_by_table.items()):
        print(f"  bronze/{table:<14} +{n} rows")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Component entry point: ``python -m data_prep.ingest --landing ... --lake ...``."""
    from refinery.settings import load_settings

    parser = argparse.ArgumentParser(prog="data_prep.ingest")
    parser.add_argument("--landing", required=True)
    parser.add_argument("--lake", required=True)
    args = parser.parse_args(argv)
    return run(args, load_settings(lake_uri=args.lake))


if __name__ == "__main__":
    raise SystemExit(main())
