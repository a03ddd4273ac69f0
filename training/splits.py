"""Train/validation/test splits that respect how the data was generated: by entity or by time.

Rows of one asset are strongly correlated, and the future must never leak into the past, so
there is deliberately no random-row split here. Each function returns boolean masks (or index
arrays) over the input rows; it never reorders or copies the data.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class EntitySplit:
    """Which entities went to each side; ``mask(frame)`` gives the matching row masks."""

    train_entities: tuple
    valid_entities: tuple

    def masks(self, entity_values: pd.Series | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(train_mask, valid_mask) for rows whose entity is given by ``entity_values``."""
        values = pd.Series(np.asarray(entity_values))
        return (
            values.isin(self.train_entities).to_numpy(),
            values.isin(self.valid_entities).to_numpy(),
        )


def split_by_entity(entities: Sequence | pd.Series | np.ndarray, valid_fraction: float, seed: int) -> EntitySplit:
    """Seeded group split: a ``valid_fraction`` of the distinct entities (at least one) is held out.

    The same seed and the same set of entities always give the same split, whatever the row
    order. Needs at least two distinct entities.
    """
    if not 0.0 < valid_fraction < 1.0:
        raise ValueError(f"valid_fraction must be in (0, 1), got {valid_fraction!r}")
    distinct = pd.unique(pd.Series(np.asarray(entities)))
    if len(distinct) < 2:
        raise ValueError(f"need at least 2 entities to split by entity, got {len(distinct)}")
    ordered = np.array(sorted(distinct, key=lambda v: (str(type(v)), v)), dtype=object)
    rng = np.random.default_rng(seed)
    n_valid = min(max(1, int(round(valid_fraction * len(ordered)))), len(ordered) - 1)
    chosen = set(rng.permutation(len(ordered))[:n_valid].tolist())
    valid = tuple(ordered[i] for i in range(len(ordered)) if i in chosen)
    train = tuple(ordered[i] for i in range(len(ordered)) if i not in chosen)
    return EntitySplit(train_entities=train, valid_entities=valid)


def split_by_time(times: pd.Series | np.ndarray, cut: object) -> tuple[np.ndarray, np.ndarray]:
    """Chronological cut: (rows with time < cut, rows with time >= cut)."""
    t = pd.Series(np.asarray(times))
    if t.isna().any():
        raise ValueError(f"time has a missing value at position {int(np.flatnonzero(t.isna())[0])}")
    before = (t < cut).to_numpy()
    return before, ~before


def split_by_counts(n_rows: int, counts: Sequence[int]) -> list[np.ndarray]:
    """Consecutive blocks of rows in their given (time) order: the first ``counts[0]`` rows,
    then the next ``counts[1]``, and so on. Returns one index array per block."""
    if any(int(c) != c or c < 1 for c in counts):
        raise ValueError(f"split counts must be positive integers, got {list(counts)}")
    if sum(counts) > n_rows:
        raise ValueError(f"split {','.join(str(int(c)) for c in counts)} needs {sum(counts)} rows, only {n_rows} available")
    edges = np.cumsum([0, *counts])
    return [np.arange(edges[i], edges[i + 1]) for i in range(len(counts))]
