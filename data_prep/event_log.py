"""The local event log: Event Hubs on disk, for the embedded default.

Layout: ``<root>/<hub>/partition=<p>/<first sequence number, 20 digits>.jsonl``; one event per
line in the Event Hubs envelope::

    {"partition": 0, "offset": "1234", "sequence_number": 17, "enqueued_time": "2026-01-01T00:05:00.123Z",
     "properties": {"content-type": "application/json", ...}, "body": "<payload exactly as sent>"}

The body is kept as the producer's string, so a malformed payload survives to bronze and is
quarantined there rather than lost here. Offsets are byte positions in the partition, as in Event
Hubs; sequence numbers count events per partition from 0. Segments are append-only and immutable
once closed, so a reader can remember the files it has consumed.
"""
from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator


def partition_for(key: str, partition_count: int) -> int:
    """Stable partition for a partition key (Event Hubs hashes the key; we use CRC32)."""
    return zlib.crc32(key.encode("utf-8")) % partition_count


def _iso(ts: datetime) -> str:
    return ts.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass
class EventData:
    """One event as a producer sends it: a body string and application properties."""

    body: str
    properties: dict[str, Any] = field(default_factory=dict)
    partition_key: str | None = None


class LocalEventLog:
    """A partitioned, append-only event log in a folder, written like an Event Hubs producer."""

    def __init__(self, root: str | Path, hub: str = "telemetry", partition_count: int = 4) -> None:
        if partition_count < 1:
            raise ValueError(f"partition_count must be >= 1, got {partition_count}")
        self.root = Path(root)
        self.hub = hub
        self.partition_count = partition_count

    def partition_dir(self, partition: int) -> Path:
        return self.root / self.hub / f"partition={partition}"

    def _next_position(self, partition: int) -> tuple[int, int]:
        """(next sequence number, next byte offset) after the partition's existing segments."""
        seq, offset = 0, 0
        for seg in sorted(self.partition_dir(partition).glob("*.jsonl")):
            with seg.open("rb") as fh:
                for line in fh:
                    seq += 1
                    offset += len(line)
        return seq, offset

    def send_batch(self, events: Iterable[EventData], enqueued_times: Iterable[datetime]) -> list[Path]:
        """Append events as one new segment per partition; returns the segment files written.

        ``enqueued_times`` pairs with ``events``: the broker's receive time for each event (the
        simulator sets it so that late and out-of-order arrivals can be reproduced).
        """
        by_partition: dict[int, list[tuple[EventData, datetime]]] = {}
        for i, (event, enqueued) in enumerate(zip(events, enqueued_times, strict=True)):
            part = partition_for(event.partition_key, self.partition_count) if event.partition_key else i % self.partition_count
            by_partition.setdefault(part, []).append((event, enqueued))
        written = []
        for part, items in sorted(by_partition.items()):
            seq, offset = self._next_position(part)
            directory = self.partition_dir(part)
            directory.mkdir(parents=True, exist_ok=True)
            path = directory / f"{seq:020d}.jsonl"
            with path.open("wb") as fh:
                for event, enqueued in items:
                    line = (
                        json.dumps(
                            {
                                "partition": part,
                                "offset": str(offset),
                                "sequence_number": seq,
                                "enqueued_time": _iso(enqueued),
                                "properties": event.properties,
                                "body": event.body,
                            },
                            separators=(",", ":"),
                        )
                        + "\n"
                    ).encode("utf-8")
                    fh.write(line)
                    seq += 1
                    offset += len(line)
            written.append(path)
        return written

    def segments(self) -> list[Path]:
        """All segment files, in partition then sequence order."""
        hub_dir = self.root / self.hub
        return sorted(hub_dir.glob("partition=*/*.jsonl"), key=lambda p: (int(p.parent.name.split("=")[1]), p.name))

    def read(self, segments: Iterable[Path] | None = None) -> Iterator[dict[str, Any]]:
        """Yield envelopes (dicts) from the given segments, or from all of them."""
        for seg in segments if segments is not None else self.segments():
            with seg.open("r", encoding="utf-8") as fh:
                for line in fh:
                    yield json.loads(line)
