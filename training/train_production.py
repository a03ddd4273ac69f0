"""Train the production-configuration models on ``silver/production``: yield per unit type.

Nothing in the lake changes. Per unit type, the hourly unit records become model inputs with
``training.production.quality_design``: the current settings and feed properties from the
``settings`` and ``feed`` maps, throughput, and the yield and quality values of the past hours
(lags 1-3; the current ones are partly the result of the settings). The target is ``yield_pct``.
Where physics fixes the sign of a setting's effect on yield the point model is monotone in it;
two quantile models give a band. Chronological split per unit type (60/20/20). Reported next
to the naive baseline (predict the train mean; keep the current settings, gain 0): R2 on the
test hours and the mean predicted gain of ``recommend`` inside ``SAFE_ENVELOPES``.
"""
from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from training.lgbm import LgbmParams
from training.metrics import r2, rmse
from training.production import Envelope, QualityModels, quality_design, recommend, train_quality_models
from training.splits import split_by_counts

MODEL_PREFIX = "production_"
GATE_METRIC = "r2"
TARGET = "yield_pct"
LAGS = (1, 2, 3)
SPLIT = (0.6, 0.2, 0.2)
RECOMMEND_ROWS = 48  # test rows the recommender is run on (the last ones), per unit type
INPUT_TABLES = (("silver", "production"), ("silver", "assets"))
# Sign of d(yield)/d(setting) fixed by the process physics (temperatures have an optimum: none).
MONOTONE: dict[str, dict[str, int]] = {
    "crude_distillation": {"reflux_ratio": +1, "column_pressure_barg": -1},
    "fluid_catalytic_cracking": {"catalyst_oil_ratio": +1, "feed_preheat_temp_c": -1},
    "hydrotreater": {"h2_oil_ratio_nm3_m3": +1},
    "catalytic_reforming": {"reactor_pressure_barg": -1},
}


@dataclass
class ProductionResult:
    unit_type: str
    models: QualityModels
    metrics: dict[str, float]
    baseline: dict[str, float]
    slice_id: str
    design: pd.DataFrame = field(repr=False)
    test_y: np.ndarray = field(repr=False)
    test_pred: np.ndarray = field(repr=False)
    envelope: Envelope | None = None
    settings: list[str] = field(default_factory=list)
    feeds: list[str] = field(default_factory=list)
    qualities: list[str] = field(default_factory=list)


def expand_maps(production: pd.DataFrame, assets: pd.DataFrame) -> pd.DataFrame:
    """One column per ``settings``/``feed``/``quality`` map key (prefixed ``quality.``), plus the
    unit's ``unit_type`` from the asset master; rows of units with no known type are dropped."""
    unit_types = assets.dropna(subset=["unit_id", "unit_type"]).drop_duplicates("unit_id").set_index("unit_id")["unit_type"]
    out = production[["unit_id", "ts", "throughput_m3h", TARGET]].copy()
    out["unit_type"] = out["unit_id"].map(unit_types)
    for col, prefix in (("settings", ""), ("feed", ""), ("quality", "quality.")):
        values = pd.DataFrame([dict(m) if m is not None else {} for m in production[col]], index=production.index)
        for key in sorted(values.columns):
            out[f"{prefix}{key}"] = values[key].astype("float64")
    return out[out["unit_type"].notna()]


def map_keys(production: pd.DataFrame, column: str, units: Sequence[str]) -> list[str]:
    rows = production.loc[production["unit_id"].isin(units), column]
    return sorted({k for m in rows if m is not None for k, _ in (m.items() if isinstance(m, dict) else m)})


def unit_design(frame: pd.DataFrame, settings: list[str], feeds: list[str], qualities: list[str]) -> pd.DataFrame:
    """``quality_design`` per unit (lags never cross units), rows in (ts, unit) order."""
    parts = []
    for _, rows in frame.sort_values(["unit_id", "ts"]).groupby("unit_id", sort=True):
        x = quality_design(rows, settings, [*feeds, "throughput_m3h"], [TARGET, *qualities], LAGS)
        parts.append(pd.concat([rows[["unit_id", "ts", TARGET]], x], axis=1))
    return pd.concat(parts).sort_values(["ts", "unit_id"], ignore_index=True)


def envelope_for(unit_type: str, settings: Sequence[str]) -> Envelope:
    """The simulator's safe envelope for the settings the unit records."""
    from data_prep.simulator.plant import SAFE_ENVELOPES

    if unit_type not in SAFE_ENVELOPES:
        raise ValueError(f"no safe envelope for unit type {unit_type!r}")
    spec = {k: v for k, v in SAFE_ENVELOPES[unit_type].items() if k in settings}
    return Envelope({k: (v["min"], v["max"]) for k, v in spec.items()}, {k: v["max_step"] for k, v in spec.items()})


def train_unit_type(frame: pd.DataFrame, production: pd.DataFrame, unit_type: str, params: LgbmParams) -> ProductionResult:
    """Design, split, train (point + band), evaluate and recommend for one unit type."""
    units = sorted(frame.loc[frame["unit_type"] == unit_type, "unit_id"].unique())
    settings = map_keys(production, "settings", units)
    feeds = map_keys(production, "feed", units)
    qualities = [f"quality.{k}" for k in map_keys(production, "quality", units)]
    design = unit_design(frame[frame["unit_type"] == unit_type], settings, feeds, qualities)
    design = design.dropna(subset=[TARGET, *settings]).reset_index(drop=True)
    n = len(design)
    counts = [int(n * SPLIT[0]), int(n * SPLIT[1])]
    counts.append(n - sum(counts))
    if min(counts) < 5:
        raise ValueError(f"unit type {unit_type!r} has {n} usable hourly rows; too few to split {SPLIT}")
    train, valid, test = split_by_counts(n, counts)
    features = [c for c in design.columns if c not in ("unit_id", "ts", TARGET)]
    x, y = design[features], design[TARGET].to_numpy()
    monotone = {k: v for k, v in MONOTONE.get(unit_type, {}).items() if k in features}
    models = train_quality_models(x.iloc[train], y[train], x.iloc[valid], y[valid], monotone=monotone, params=params)
    pred = models.predict(x.iloc[test])
    lo, hi = models.band(x.iloc[test])
    envelope = envelope_for(unit_type, settings)
    gains = [recommend(models, x.iloc[i].to_dict(), envelope, n_candidates=128, seed=params.seed).predicted_gain
             for i in test[-RECOMMEND_ROWS:]]
    metrics = {"r2": r2(y[test], pred), "rmse": rmse(y[test], pred),
               "band_coverage": float(np.mean((y[test] >= lo) & (y[test] <= hi))),
               "mean_predicted_gain": float(np.mean(gains))}
    mean = np.full(len(test), float(np.mean(y[train])))
    baseline = {"r2": r2(y[test], mean), "rmse": rmse(y[test], mean), "band_coverage": float("nan"),
                "mean_predicted_gain": 0.0}
    slice_id = f"{unit_type}:ts>={design['ts'].iloc[test[0]].isoformat()}"
    return ProductionResult(unit_type, models, metrics, baseline, slice_id, x.iloc[test], y[test], pred,
                            envelope, settings, feeds, qualities)


def production_bundle(res: ProductionResult):
    """The served model of one unit type: point prediction and quantile band of the target,
    plus what the recommender needs to rebuild the inputs and stay in the safe envelope."""
    from scoring.model_bundle import ModelBundle, truncated

    m = res.models
    boosters = {"predicted": truncated(m.point.booster, m.point.best_iteration)}
    if m.lower is not None and m.upper is not None:
        boosters["low"] = truncated(m.lower.booster, m.lower.best_iteration)
        boosters["high"] = truncated(m.upper.booster, m.upper.best_iteration)
    env = res.envelope
    spec = {"unit_type": res.unit_type, "target": TARGET, "lags": list(LAGS),
            "settings": res.settings, "feeds": res.feeds, "qualities": res.qualities,
            "quantiles": list(m.quantiles) if m.quantiles else None,
            "envelope": {n: {"min": float(lo), "max": float(hi), "max_step": float(env.max_step[n])}
                         for n, (lo, hi) in env.bounds.items()}}
    return ModelBundle(MODEL_PREFIX + res.unit_type, "production", list(m.feature_names), boosters, spec)


def train_production_models(production: pd.DataFrame, assets: pd.DataFrame, params: LgbmParams) -> list[ProductionResult]:
    """One ``ProductionResult`` per unit type present, in name order."""
    frame = expand_maps(production, assets)
    if frame.empty:
        raise ValueError("silver/production has no rows of a unit with a known unit type; run `refinery prep` first")
    return [train_unit_type(frame, production, ut, params) for ut in sorted(frame["unit_type"].unique())]


def read_inputs(lake) -> tuple[dict[str, pd.DataFrame], dict[str, int]]:
    frames, versions = {}, {}
    for layer, table in INPUT_TABLES:
        if not lake.exists(layer, table):
            raise FileNotFoundError(f"no table {layer}/{table} in lake {lake.root}: run `refinery prep` first")
        versions[f"{layer}/{table}"] = v = lake.version(layer, table)
        frames[table] = lake.read_pandas(layer, table, version=v)
    return frames, versions


def _finite(metrics: dict[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if math.isfinite(float(v))}


def train(settings, args: argparse.Namespace) -> list[tuple[ProductionResult, object]]:
    """Read, train per unit type, print metrics beside the baseline, log and register each."""
    from data_prep.lake import Lake
    from training.tracking import EvalData, log_trained_model
    from training.train_maintenance import format_metrics, params_from

    params = params_from(args)
    frames, inputs = read_inputs(Lake(settings.lake_uri))
    results = train_production_models(frames["production"], frames["assets"], params)
    out = []
    print(f"production: target {TARGET}; read {', '.join(f'{k}@{v}' for k, v in inputs.items())}")
    for res in results:
        logged = log_trained_model(
            settings.resolved_mlflow_uri(), MODEL_PREFIX + res.unit_type, res.models.point,
            input_example=res.design,
            params={"unit_type": res.unit_type, "target": TARGET, "seed": params.seed,
                    "learning_rate": params.learning_rate, "num_leaves": params.num_leaves,
                    "max_rounds": params.max_rounds, "monotone": str(MONOTONE.get(res.unit_type, {})),
                    "lags": ",".join(map(str, LAGS))},
            metrics={**_finite(res.metrics), **{f"naive_{k}": v for k, v in _finite(res.baseline).items()}},
            eval_slice_id=res.slice_id, inputs=inputs, eval_data=EvalData(res.test_y, res.test_pred),
            tags={"model_kind": "production", "unit_type": res.unit_type},
            bundle=production_bundle(res),
        )
        print(f" {res.unit_type}:")
        for line in format_metrics(res.metrics, res.baseline):
            print(line)
        print(f"  registered {logged.model_name} version {logged.version}")
        out.append((res, logged))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Component entry point: train, log, register one version per unit type, record them in --model."""
    from refinery.settings import load_settings
    from training.register import write_registration
    from training.train_maintenance import add_arguments

    parser = argparse.ArgumentParser(prog="training.train_production")
    parser.add_argument("--lake", required=True, help="lake root")
    add_arguments(parser, horizon=False)
    parser.add_argument("--model", required=True, help="output folder for the registered models' record")
    args = parser.parse_args(argv)
    try:
        trained = train(load_settings(lake_uri=args.lake), args)
        write_registration(args.model, [(lv, GATE_METRIC, True, res.metrics) for res, lv in trained])
        return 0
    except (ValueError, FileNotFoundError) as exc:
        print(f"training.train_production: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
