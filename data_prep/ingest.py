"""Ingestion, the Data Factory step: every landed record into bronze exactly as it came.

Each source file becomes bronze rows of ``raw`` text plus where and when it came from; nothing is
parsed into typed columns here, so nothing can be rejected or lost here. A file manifest in
``_meta/ingested_files`` makes ingestion idempotent: a second run adds nothing and a new file adds
only itself. Each run is one batch (``_batch_id``); bronze appends carry a Delta transaction id per
batch, so a run that died between the bronze writes and the manifest write is repaired, not
doubled, by running again.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

import pyarrow as pa

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


def _split_events(text: str) -> Iterator[tuple[int, Row]]:
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            env = json.loads(line)
            enq = env.get("enqueued_time")
            yield line_no, {
                "eh_partition": env.get("partition"),
                "eh_offset": int(env["offset"]) if env.get("offset") is not None else None,
                "eh_sequence_number": env.get("sequence_number"),
                "eh_enqueued_time": datetime.fromisoformat(enq.replace("Z", "+00:00")) if enq else None,
                "eh_properties": json.dumps(env.get("properties") or {}, sort_keys=True),
                "raw": env.get("body") if isinstance(env.get("body"), str) else json.dumps(env.get("body")),
            }
        except (ValueError, KeyError, AttributeError, TypeError):
            # A broken envelope is the transport's fault, not the device's: keep the whole line.
            yield line_no, {"raw": line}


def _split_csv(text: str) -> Iterator[tuple[int, Row]]:
    """One row per data line; ``raw`` is a JSON object of header -> text, or the line itself if ragged.

    Empty fields become JSON nulls: a CSV export has no other way to say "no value".
    """
    lines = text.splitlines()
    if not lines:
        return
    header = next(csv.reader([lines[0]]))
    for line_no, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = next(csv.reader([line]))
        if len(fields) == len(header):
            yield line_no, {"raw": json.dumps({h: (f if f.strip() else None) for h, f in zip(header, fields)})}
        else:
            yield line_no, {"raw": json.dumps({"_unparsed": line, "_header": header})}


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


READERS: dict[str, Callable[[str], Iterator[tuple[int, Row]]]] = {
    "events": _split_events,
    "csv": _split_csv,
    "lines": _split_lines,
    "json_records": _split_json_records,
    "json_array": _split_json_records,
}


def bronze_rows(landing: Path, family: SourceFamily, path: Path, batch_id: int, ingested_at: datetime) -> pa.Table:
    """Split one landed file into bronze rows (pure apart from reading the file)."""
    rel = path.relative_to(landing).as_posix()
    text = path.read_bytes().decode("utf-8-sig", errors="replace")
    cols: dict[str, list] = {name: [] for name in schemas.BRONZE.names}
    for line_no, row in READERS[family.reader](text):
        cols["_record_id"].append(f"{rel}#{line_no}")
        cols["_source"].append(family.source)
        cols["_source_file"].append(rel)
        cols["_line"].append(line_no)
        cols["_batch_id"].append(batch_id)
        cols["_ingested_at"].append(ingested_at)
        for name in ("eh_partition", "eh_offset", "eh_sequence_number", "eh_enqueued_time", "eh_properties", "raw"):
            cols[name].append(row.get(name))
    return pa.table(cols, schema=schemas.BRONZE)


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
