"""The simulation clock: a regular grid of sample times from a UTC start, and its text spellings.

Everything in the simulator is indexed by step on this grid; nothing reads the wall clock, so the
same configuration always gives the same timestamps.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pandas as pd

MINUTES_PER_DAY = 24 * 60


@dataclass(frozen=True)
class TimeGrid:
    """``days`` days from ``start`` (00:00 UTC) sampled every ``step_minutes``."""

    start: date
    days: int
    step_minutes: int

    def __post_init__(self) -> None:
        if self.days < 1:
            raise ValueError(f"days must be >= 1, got {self.days}")
        if self.step_minutes < 1 or 60 % self.step_minutes:
            # Hourly MES records average whole steps, so a step must divide the hour.
            raise ValueError(f"interval of {self.step_minutes} minutes does not divide an hour evenly "
                             "(use 1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30 or 60)")

    @property
    def start_dt(self) -> datetime:
        return datetime(self.start.year, self.start.month, self.start.day, tzinfo=timezone.utc)

    @property
    def end_dt(self) -> datetime:
        return self.start_dt + timedelta(days=self.days)

    @property
    def steps_per_day(self) -> int:
        return MINUTES_PER_DAY // self.step_minutes

    @property
    def steps_per_hour(self) -> int:
        return 60 // self.step_minutes

    @property
    def n_steps(self) -> int:
        return self.days * self.steps_per_day

    @property
    def hours(self) -> np.ndarray:
        """Hours since start at every step."""
        return np.arange(self.n_steps) * (self.step_minutes / 60.0)

    def day_dates(self) -> list[date]:
        return [self.start + timedelta(days=d) for d in range(self.days)]

    def time_at(self, step: int | float) -> datetime:
        return self.start_dt + timedelta(minutes=float(step) * self.step_minutes)

    def step_of(self, when: datetime) -> int:
        """The first step at or after ``when``."""
        minutes = (when - self.start_dt).total_seconds() / 60.0
        return int(np.ceil(minutes / self.step_minutes))

    def steps_for_days(self, days: float) -> int:
        return int(round(days * self.steps_per_day))

    def _index(self) -> pd.DatetimeIndex:
        return pd.date_range(self.start_dt, periods=self.n_steps, freq=f"{self.step_minutes}min")

    def iso_strings(self) -> list[str]:
        """``2026-01-03T00:05:00Z`` per step: the event body spelling."""
        return list(self._index().strftime("%Y-%m-%dT%H:%M:%SZ"))

    def historian_strings(self) -> list[str]:
        """``01/03/2026 00:05:00`` per step: the historian export spelling."""
        return list(self._index().strftime("%m/%d/%Y %H:%M:%S"))


def iso_z(when: datetime) -> str:
    """Second-precision ISO-8601 UTC text with a Z."""
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def minute_text(when: datetime) -> str:
    """``YYYY-MM-DD HH:MM``: the CMMS spelling."""
    return when.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M")


def millis_text(when: datetime) -> str:
    """``YYYY-MM-DD HH:MM:SS.fff``: the alarm journal spelling."""
    return when.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
