"""Rolling-feature throughput: ``build_rolling_features`` against the obvious pandas code.

The baseline is what one writes first: ``groupby(...).rolling(w)`` per statistic and a
``rolling(...).apply(np.polyfit)`` for the slope. Both run here, on the same synthetic fleet,
their outputs are checked to agree, and the script prints rows per second and the ratio.

    .venv/bin/python benchmarks/feature_rate.py [--units 50] [--cycles 200] [--sensors 10]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.features import build_rolling_features  # noqa: E402

WINDOWS = (5, 10, 20, 30)


def fleet(units: int, cycles: int, sensors: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = units * cycles
    frame = pd.DataFrame({"unit": np.repeat(np.arange(units), cycles), "cycle": np.tile(np.arange(1, cycles + 1), units)})
    drift = (frame["cycle"].to_numpy() / cycles) ** 2
    for i in range(sensors):
        frame[f"s{i}"] = 100 + i + (1 + i % 3) * drift + rng.normal(0, 0.3, n)
    return frame


def baseline(frame: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    out = {}
    g = frame.groupby("unit")
    for w in WINDOWS:
        r = g[cols].rolling(w, min_periods=1)
        for stat, res in (("mean", r.mean()), ("std", r.std(ddof=0)), ("min", r.min()), ("max", r.max())):
            res = res.reset_index(level=0, drop=True)
            for c in cols:
                out[f"{c}__w{w}_{stat}"] = res[c]
        slope = g[cols].rolling(w, min_periods=2).apply(lambda v: np.polyfit(np.arange(len(v)), v, 1)[0], raw=True)
        slope = slope.reset_index(level=0, drop=True).fillna(0.0)
        for c in cols:
            out[f"{c}__w{w}_slope"] = slope[c]
    return pd.DataFrame(out).sort_index()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--units", type=int, default=50)
    p.add_argument("--cycles", type=int, default=200)
    p.add_argument("--sensors", type=int, default=10)
    args = p.parse_args(argv)
    frame = fleet(args.units, args.cycles, args.sensors)
    cols = [c for c in frame.columns if c.startswith("s")]
    stats = ("mean", "std", "min", "max", "slope")

    t0 = time.perf_counter()
    ours = build_rolling_features(frame, "unit", "cycle", cols, WINDOWS, stats=stats)
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    base = baseline(frame, cols)
    t_base = time.perf_counter() - t0

    worst = max(float(np.max(np.abs(ours[c].to_numpy() - base[c].to_numpy()))) for c in base.columns)
    n = len(frame)
    print(f"rows {n}, sensors {len(cols)}, windows {WINDOWS}, stats {stats}")
    print(f"build_rolling_features  {t_ours:8.3f} s  {n / t_ours:12,.0f} rows/s")
    print(f"pandas baseline         {t_base:8.3f} s  {n / t_base:12,.0f} rows/s")
    print(f"speed-up vs baseline    {t_base / t_ours:8.1f} x   (max abs difference {worst:.2e})")
    return 0 if worst < 1e-6 else 1


if __name__ == "__main__":
    sys.exit(main())
