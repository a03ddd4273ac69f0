"""``refinery simulate``: write a simulated plant's source files into a landing folder.

Flags are checked here, at the boundary; a bad one raises ``ValueError`` naming the flag and the
value, which the console turns into a one-line error and exit code 2.
"""
from __future__ import annotations

import argparse
from datetime import date, datetime
from pathlib import Path

from data_prep.simulator.simulation import MAX_BAD_FRACTION, SimulationConfig, simulate
from refinery.settings import Settings


def parse_date(text: str, flag: str) -> date:
    """A calendar date from ``YYYY-MM-DD`` (a full ISO timestamp is accepted, its date is used)."""
    try:
        return date.fromisoformat(text)
    except (TypeError, ValueError):
        pass
    try:
        return datetime.fromisoformat(text).date()
    except (TypeError, ValueError):
        raise ValueError(f"{flag} {text!r} is not a date (expected YYYY-MM-DD)") from None


def config_from_args(args: argparse.Namespace) -> SimulationConfig:
    """The simulation config the flags describe; ValueError naming the first bad flag."""
    start = parse_date(args.start, "--start")
    drift = parse_date(args.drift_after, "--drift-after") if args.drift_after is not None else None
    return SimulationConfig(
        assets=args.assets, days=args.days, seed=args.seed, bad_fraction=args.bad_fraction, drift_after=drift,
        start=start, interval_minutes=args.interval_minutes, historian_days=args.historian_days,
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "simulate",
        help="write a simulated plant's source files (telemetry, historian, alarms, CMMS, MES, CRM) into a landing folder",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("--landing", help="empty folder to write (default: the landing_uri setting)")
    p.add_argument("--assets", type=int, default=20, help="number of monitored assets (default 20)")
    p.add_argument("--days", type=int, default=14, help="days to simulate (default 14)")
    p.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives identical files (default 0)")
    p.add_argument("--bad-fraction", type=float, default=0.0,
                   help=f"share of live events replaced or joined by faulty records, 0..{MAX_BAD_FRACTION} (default 0)")
    p.add_argument("--drift-after", help="date (YYYY-MM-DD) from which the crude slate and sensor calibration change")
    p.add_argument("--start", default="2026-01-01", help="first simulated day, UTC (default 2026-01-01)")
    p.add_argument("--interval-minutes", type=int, default=5, help="sensor sampling interval (default 5)")
    p.add_argument("--historian-days", type=int, default=None,
                   help="leading days exported as historian CSV; the rest are live events (default: half the days)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    config = config_from_args(args)
    landing = Path(args.landing if args.landing else settings.landing_uri)
    summary = simulate(landing, config)
    for line in summary.report():
        print(line)
    return 0
