"""Reuse keys: a deterministic node whose inputs hold what they held last time is not run again.

A node's key hashes its component's definition (name, version, command, ports), the source files
of its code folder, its literal inputs, and a fingerprint of every data input:

- the ``lake`` input: the Delta version of each table the component declares it reads (tag
  ``refinery.reads``: ``layer/table`` or ``layer/*``; every table when undeclared), taken from
  the ``_delta_log`` listing, so a new commit to a table it reads changes the key and a commit
  to any other table does not;
- any other folder or file: its listing (relative path, size, modification time);
- ordering ports (``after``): nothing, they carry no data.

A cached result is used only while its output folders exist and the tables the node declares it
writes (``refinery.writes``) are still at the versions it left them.
"""
from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

LAYERS_DIR_DEPTH = 2  # <lake>/<layer>/<table>
SOURCE_SUFFIXES = {".py", ".yml", ".yaml", ".toml", ".cfg", ".ini", ".sql"}
_COMMIT = re.compile(r"^(\d{20})\.json$")


def _digest(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def delta_version(table_dir: Path) -> int | None:
    """The newest commit number in the table's ``_delta_log`` (None: not a Delta table)."""
    log = table_dir / "_delta_log"
    try:
        names = os.listdir(log)
    except (FileNotFoundError, NotADirectoryError):
        return None
    versions = [int(m.group(1)) for n in names if (m := _COMMIT.match(n))]
    return max(versions) if versions else None


def _tables_in(layer_dir: Path) -> list[str]:
    try:
        return sorted(p.name for p in layer_dir.iterdir() if (p / "_delta_log").is_dir())
    except (FileNotFoundError, NotADirectoryError):
        return []


def table_versions(lake: Path, patterns: list[str] | None) -> dict[str, int | None]:
    """``layer/table`` -> Delta version for the tables ``patterns`` name (None: every table in the lake).

    A named table that does not exist maps to None, so its creation changes the result.
    """
    if patterns is None:
        layers = sorted(p.name for p in lake.iterdir() if p.is_dir()) if lake.is_dir() else []
        patterns = [f"{layer}/*" for layer in layers]
    out: dict[str, int | None] = {}
    for pattern in patterns:
        layer, _, table = pattern.partition("/")
        if not layer or not table:
            raise ValueError(f"table pattern {pattern!r} is not 'layer/table' or 'layer/*'")
        if any(ch in table for ch in "*?["):
            for name in _tables_in(lake / layer):
                if fnmatch.fnmatchcase(name, table):
                    out[f"{layer}/{name}"] = delta_version(lake / layer / name)
        else:
            out[f"{layer}/{table}"] = delta_version(lake / layer / table)
    return out


def folder_fingerprint(path: Path) -> str:
    """A digest of a file's or folder's listing: relative paths, sizes, modification times."""
    if not path.exists():
        return "missing"
    if path.is_file():
        st = path.stat()
        return _digest([path.name, st.st_size, st.st_mtime_ns])
    entries = []
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            full = Path(root) / name
            st = full.stat()
            entries.append((full.relative_to(path).as_posix(), st.st_size, st.st_mtime_ns))
    return _digest(entries)


def _ignore_patterns(code_dir: Path) -> list[str]:
    ignore = code_dir / ".amlignore"
    if not ignore.is_file():
        return []
    lines = (line.strip() for line in ignore.read_text().splitlines())
    return [line.rstrip("/") for line in lines if line and not line.startswith("#")]


def code_fingerprint(code_dir: Path, skip: Iterable[Path] = ()) -> str:
    """A digest of the source files AML would snapshot from ``code_dir`` (``.amlignore`` honoured).

    Only source-like files count (Python, YAML, TOML, config, SQL); data folders inside the code
    folder (``skip``: the lake, the run records) are never walked.
    """
    patterns = _ignore_patterns(code_dir)
    skipped = {p.resolve() for p in skip}
    hasher = hashlib.sha256()
    for root, dirs, files in os.walk(code_dir):
        here = Path(root)
        dirs[:] = sorted(
            d for d in dirs
            if not d.startswith(".") and (here / d).resolve() not in skipped
            and not any(fnmatch.fnmatchcase(d, p) for p in patterns)
        )
        for name in sorted(files):
            if Path(name).suffix not in SOURCE_SUFFIXES or any(fnmatch.fnmatchcase(name, p) for p in patterns):
                continue
            full = here / name
            hasher.update(full.relative_to(code_dir).as_posix().encode())
            hasher.update(hashlib.sha256(full.read_bytes()).digest())
    return hasher.hexdigest()


def reuse_key(component_spec: str, code: str, literals: dict[str, Any], data: dict[str, Any]) -> str:
    """The key of one node run: same key, same result (for a deterministic component)."""
    return _digest({"component": component_spec, "code": code, "literals": literals, "data": data})


class ReuseCache:
    """Results of deterministic node runs, one JSON file per key under ``<runs>/_reuse/``."""

    def __init__(self, root: Path):
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def get(self, key: str, lake: Path | None, writes: list[str]) -> dict[str, Any] | None:
        """The cached result for ``key`` if its outputs still exist and its written tables are untouched."""
        path = self._path(key)
        if not path.is_file():
            return None
        entry = json.loads(path.read_text())
        if not all(Path(p).exists() for p in entry.get("outputs", {}).values()):
            return None
        if writes and lake is not None and table_versions(lake, writes) != entry.get("writes", {}):
            return None
        return entry

    def put(self, key: str, run_id: str, node: str, outputs: dict[str, str], lake: Path | None,
            writes: list[str]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        entry = {
            "key": key, "run_id": run_id, "node": node, "outputs": outputs,
            "writes": table_versions(lake, writes) if writes and lake is not None else {},
            "created": datetime.now(timezone.utc).isoformat(),
        }
        tmp = self._path(key).with_suffix(".tmp")
        tmp.write_text(json.dumps(entry, indent=1, sort_keys=True))
        tmp.replace(self._path(key))
