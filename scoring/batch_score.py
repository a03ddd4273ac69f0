"""Batch scoring: champion models applied to the lake, predictions written back to gold.

Two tables change, both partitioned by ``event_date`` (the day of the scored hour) so that
Synapse serverless SQL and Power BI prune by date:

- ``gold/maintenance_predictions``: per asset and hour of ``gold/asset_features``, the failure
  risk within the model's horizon and the remaining useful life, from the ``maintenance`` model.
- ``gold/production_recommendations``: per unit and recent hour of ``silver/production``, the
  settings the ``production_<unit type>`` model recommends inside the safe envelope, the
  predicted gain and the quantile band at the recommended settings.

Every row carries the lineage of ARCHITECTURE.md: model name, version, the alias it was served
under, the MLflow run id, the table and Delta version it was computed from, and when.

Idempotent per model version: one scoring of a model version replaces that version's rows (a
Delta overwrite with a predicate on name and version) and records the input's Delta version as
a Delta transaction (app id ``refinery-score/<model>/<version>``); scoring the same input
version with the same model version again commits nothing. A new model version adds its own
rows beside the old version's, so versions can be compared in BI.
"""
from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from data_prep import schemas
from data_prep.lake import Lake, Txn
from scoring.model_bundle import ModelBundle
from scoring.registry import ModelRef

PREDICTIONS = ("gold", "maintenance_predictions")
RECOMMENDATIONS = ("gold", "production_recommendations")
FEATURES = ("gold", "asset_features")
PRODUCTION = ("silver", "production")
MAINTENANCE_MODEL = "maintenance"
PRODUCTION_PREFIX = "production_"
DEFAULT_ALIAS = "champion"
DEFAULT_RECENT_HOURS = 24

_TS = pa.timestamp("us", tz="UTC")
LINEAGE_FIELDS = [
    pa.field("model_name", pa.string(), False),
    pa.field("model_version", pa.string(), False),
    pa.field("model_alias", pa.string(), False),
    pa.field("mlflow_run_id", pa.string(), False),
    pa.field("source_table", pa.string(), False),
    pa.field("source_table_version", pa.int64(), False),
    pa.field("scored_at", _TS, False),
]
PREDICTIONS_SCHEMA = pa.schema([
    pa.field("asset_id", pa.string(), False), pa.field("ts", _TS, False), pa.field("event_date", pa.date32(), False),
    pa.field("unit_id", pa.string(), True),
    pa.field("failure_risk", pa.float64(), False), pa.field("rul_hours", pa.float64(), True),
    pa.field("horizon_hours", pa.float64(), True),
    *LINEAGE_FIELDS,
])
_SETTINGS = pa.map_(pa.string(), pa.float64())
RECOMMENDATIONS_SCHEMA = pa.schema([
    pa.field("unit_id", pa.string(), False), pa.field("unit_type", pa.string(), False),
    pa.field("ts", _TS, False), pa.field("event_date", pa.date32(), False), pa.field("target", pa.string(), False),
    pa.field("current_settings", _SETTINGS, False), pa.field("recommended_settings", _SETTINGS, False),
    pa.field("current_prediction", pa.float64(), False), pa.field("recommended_prediction", pa.float64(), False),
    pa.field("predicted_gain", pa.float64(), False),
    pa.field("band_low", pa.float64(), False), pa.field("band_high", pa.float64(), False),
    *LINEAGE_FIELDS,
])
schemas.register(*PREDICTIONS, PREDICTIONS_SCHEMA, partition_by=["event_date"])
schemas.register(*RECOMMENDATIONS, RECOMMENDATIONS_SCHEMA, partition_by=["event_date"])


@dataclass(frozen=True)
class ScoreOutcome:
    """What one model's scoring did: rows written (or None when already scored) and where."""

    table: str
    ref: ModelRef
    source: str
    source_version: int
    rows: int | None
    table_version: int | None

    def __str__(self) -> str:
        if self.rows is None:
            return (f"{self.table}: {self.ref} already scored {self.source}@{self.source_version}; "
                    f"nothing written (table version {self.table_version})")
        return (f"{self.table}: {self.rows} rows from {self.ref} on {self.source}@{self.source_version} "
                f"-> version {self.table_version}")


def lineage(ref: ModelRef, source: str, source_version: int, scored_at: datetime, n: int) -> dict[str, pa.Array]:
    """The lineage columns for ``n`` rows."""
    return {
        "model_name": pa.array([ref.name] * n, pa.string()),
        "model_version": pa.array([ref.version] * n, pa.string()),
        "model_alias": pa.array([ref.alias] * n, pa.string()),
        "mlflow_run_id": pa.array([ref.run_id] * n, pa.string()),
        "source_table": pa.array([source] * n, pa.string()),
        "source_table_version": pa.array([source_version] * n, pa.int64()),
        "scored_at": pa.array([scored_at] * n, _TS),
    }


def feature_matrix(features: pa.Table, names: Sequence[str]) -> np.ndarray:
    """The ``names`` columns of an Arrow table as one float64 matrix (nulls become NaN, which
    LightGBM treats as missing); ValueError naming the first absent column."""
    missing = [c for c in names if c not in features.column_names]
    if missing:
        raise ValueError(f"feature table lacks model input column(s) {missing[:5]}")
    # Column-major: each column is one contiguous copy; LightGBM reads either layout without copying.
    x = np.empty((features.num_rows, len(names)), dtype="float64", order="F")
    for j, name in enumerate(names):
        x[:, j] = features.column(name).to_numpy(zero_copy_only=False)
    return x


def score_maintenance(features: pa.Table, bundle: ModelBundle, ref: ModelRef, source_version: int,
                      scored_at: datetime) -> pa.Table:
    """Prediction rows (``PREDICTIONS_SCHEMA``) for every row of ``features``."""
    out = bundle.predict_matrix(feature_matrix(features, bundle.features))
    n = features.num_rows
    columns = {
        "asset_id": features.column("asset_id"), "ts": features.column("ts"),
        "event_date": features.column("event_date"), "unit_id": features.column("unit_id"),
        "failure_risk": pa.array(out["failure_risk"], pa.float64()),
        "rul_hours": pa.array(out["rul_hours"], pa.float64()) if "rul_hours" in out else pa.nulls(n, pa.float64()),
        "horizon_hours": pa.array([bundle.spec.get("horizon_hours")] * n, pa.float64()),
        **lineage(ref, "/".join(FEATURES), source_version, scored_at, n),
    }
    return pa.Table.from_pydict(columns, schema=PREDICTIONS_SCHEMA)


def _app_id(ref: ModelRef) -> str:
    return f"refinery-score/{ref.name}/{ref.version}"


def already_scored(lake: Lake, table: tuple[str, str], ref: ModelRef, source_version: int) -> bool:
    """True when model version ``ref`` already wrote ``table`` from this source version or a later one."""
    done = lake.txn_version(*table, _app_id(ref))
    return done is not None and done >= source_version


def write_scored(lake: Lake, table: tuple[str, str], rows: pa.Table, ref: ModelRef, source_version: int) -> int | None:
    """Replace model version ``ref``'s rows in ``table`` with ``rows``, recording the source
    version as the transaction; None (nothing written) when ``already_scored``."""
    if already_scored(lake, table, ref, source_version):
        return None
    app_id = _app_id(ref)
    predicate = f"model_name = '{_sql(ref.name)}' AND model_version = '{_sql(ref.version)}'"
    if not lake.exists(*table):
        return lake.append(rows, *table, txn=Txn(app_id, source_version))
    return lake.overwrite(rows, *table, predicate=predicate, txn=Txn(app_id, source_version))


def _sql(text: str) -> str:
    return text.replace("'", "''")


def run_maintenance(lake: Lake, tracking_uri: str, alias: str = DEFAULT_ALIAS, features_version: int | None = None,
                    bundle: ModelBundle | None = None, ref: ModelRef | None = None) -> ScoreOutcome:
    """Score ``gold/asset_features`` (latest, or ``features_version``) with the maintenance model
    under ``alias`` and write ``gold/maintenance_predictions``."""
    if not lake.exists(*FEATURES):
        raise FileNotFoundError(f"no table {'/'.join(FEATURES)} in lake {lake.root}: run `refinery features` first")
    version = lake.version(*FEATURES) if features_version is None else int(features_version)
    if ref is None:
        ref = _resolve(tracking_uri, MAINTENANCE_MODEL, alias)
    # Skip the download, read and predictions when this model version already scored this input.
    if already_scored(lake, PREDICTIONS, ref, version):
        return ScoreOutcome("/".join(PREDICTIONS), ref, "/".join(FEATURES), version, None, lake.version(*PREDICTIONS))
    if bundle is None:
        from scoring.registry import fetch_bundle

        bundle = fetch_bundle(tracking_uri, ref)
    columns = ["asset_id", "ts", "event_date", "unit_id", *bundle.features]
    features = lake.read_arrow(*FEATURES, version=version, columns=columns)
    rows = score_maintenance(features, bundle, ref, version, datetime.now(timezone.utc))
    written = write_scored(lake, PREDICTIONS, rows, ref, version)
    return ScoreOutcome("/".join(PREDICTIONS), ref, "/".join(FEATURES), version,
                        None if written is None else rows.num_rows, lake.version(*PREDICTIONS))


def _resolve(tracking_uri: str, name: str, alias: str) -> ModelRef:
    from scoring.registry import resolve
    from training.tracking import mlflow_tracking

    with mlflow_tracking(tracking_uri) as client:
        return resolve(client, name, alias)


# ---------------------------------------------------------------- production recommendations
def quality_models(bundle: ModelBundle):
    """The bundle's boosters as the ``QualityModels`` the recommender takes."""
    from training.lgbm import TrainedModel
    from training.production import QualityModels

    def wrap(output: str):
        if output not in bundle.boosters:
            return None
        return TrainedModel(bundle.boosters[output], list(bundle.features), "regression", 0, {"num_threads": 1},
                            float("nan"))

    q = bundle.spec.get("quantiles")
    return QualityModels(wrap("predicted"), wrap("low"), wrap("high"), tuple(q) if q else None)


def envelope_of(bundle: ModelBundle):
    from training.production import Envelope

    env = bundle.spec["envelope"]
    return Envelope({k: (v["min"], v["max"]) for k, v in env.items()}, {k: v["max_step"] for k, v in env.items()})


def unit_states(production: pd.DataFrame, assets: pd.DataFrame, bundle: ModelBundle, recent_hours: int) -> pd.DataFrame:
    """The last ``recent_hours`` hourly states of every unit of the bundle's unit type, as the
    model's inputs (built exactly as in training) beside ``unit_id`` and ``ts``."""
    from training.train_production import LAGS, expand_maps, unit_design

    spec = bundle.spec
    if list(spec.get("lags", LAGS)) != list(LAGS):
        raise ValueError(f"model {bundle.name!r} was trained with lags {spec.get('lags')}, this code builds {list(LAGS)}")
    frame = expand_maps(production, assets)
    frame = frame[frame["unit_type"] == spec["unit_type"]]
    if frame.empty:
        return pd.DataFrame(columns=["unit_id", "ts", *bundle.features])
    for col in (*spec["settings"], *spec["feeds"], *spec["qualities"]):
        if col not in frame.columns:
            frame[col] = np.nan
    design = unit_design(frame, spec["settings"], spec["feeds"], spec["qualities"])
    design = design.dropna(subset=list(spec["settings"]))
    recent = design.sort_values("ts").groupby("unit_id", sort=True).tail(recent_hours)
    return recent.sort_values(["unit_id", "ts"], ignore_index=True)


def recommend_states(states: pd.DataFrame, bundle: ModelBundle, ref: ModelRef, source_version: int,
                     scored_at: datetime, seed: int = 0) -> pa.Table:
    """One recommendation row (``RECOMMENDATIONS_SCHEMA``) per state, never outside the envelope."""
    from training.production import recommend

    models, envelope = quality_models(bundle), envelope_of(bundle)
    settings = envelope.settings
    records = []
    inputs = states[bundle.features].to_dict("records")
    for unit_id, ts, state in zip(states["unit_id"], states["ts"], inputs):
        rec = recommend(models, state, envelope, n_candidates=128, seed=seed)
        if not all(math.isfinite(v) for v in (rec.predicted_gain, rec.band[0], rec.band[1])):
            raise ValueError(f"model {bundle.name!r} gave a non-finite prediction for unit {unit_id} at {ts}")
        records.append({
            "unit_id": unit_id, "ts": ts, "current": {s: float(state[s]) for s in settings},
            "recommended": rec.settings, "current_prediction": rec.current_prediction,
            "recommended_prediction": rec.predicted, "predicted_gain": rec.predicted_gain,
            "band_low": rec.band[0], "band_high": rec.band[1],
        })
    n = len(records)
    ts = pa.array([pd.Timestamp(r["ts"]).to_pydatetime() for r in records], _TS)
    columns = {
        "unit_id": pa.array([r["unit_id"] for r in records], pa.string()),
        "unit_type": pa.array([bundle.spec["unit_type"]] * n, pa.string()),
        "ts": ts, "event_date": pc.cast(ts, pa.date32()) if n else pa.array([], pa.date32()),
        "target": pa.array([bundle.spec.get("target", "")] * n, pa.string()),
        "current_settings": pa.array([list(r["current"].items()) for r in records], _SETTINGS),
        "recommended_settings": pa.array([list(r["recommended"].items()) for r in records], _SETTINGS),
        **{k: pa.array([float(r[k]) for r in records], pa.float64())
           for k in ("current_prediction", "recommended_prediction", "predicted_gain", "band_low", "band_high")},
        **lineage(ref, "/".join(PRODUCTION), source_version, scored_at, n),
    }
    return pa.Table.from_pydict(columns, schema=RECOMMENDATIONS_SCHEMA)


def run_production(lake: Lake, tracking_uri: str, alias: str = DEFAULT_ALIAS,
                   recent_hours: int = DEFAULT_RECENT_HOURS, seed: int = 0) -> list[ScoreOutcome]:
    """Recommend settings for the recent hours of every unit whose unit type has a production
    model under ``alias``; write ``gold/production_recommendations``."""
    from scoring.registry import fetch_bundle, registered_names, resolve
    from training.tracking import mlflow_tracking

    if recent_hours < 1:
        raise ValueError(f"--recent-hours must be >= 1, got {recent_hours}")
    for layer, table in (PRODUCTION, ("silver", "assets")):
        if not lake.exists(layer, table):
            raise FileNotFoundError(f"no table {layer}/{table} in lake {lake.root}: run `refinery prep` first")
    with mlflow_tracking(tracking_uri) as client:
        names = registered_names(client, PRODUCTION_PREFIX)
        refs = [resolve(client, name, alias) for name in names if _has_alias(client, name, alias)]
    version = lake.version(*PRODUCTION)
    production = assets = None
    outcomes = []
    for ref in refs:
        if already_scored(lake, RECOMMENDATIONS, ref, version):
            outcomes.append(ScoreOutcome("/".join(RECOMMENDATIONS), ref, "/".join(PRODUCTION), version, None,
                                         lake.version(*RECOMMENDATIONS)))
            continue
        if production is None:
            production = lake.read_pandas(*PRODUCTION, version=version)
            assets = lake.read_pandas("silver", "assets")
        bundle = fetch_bundle(tracking_uri, ref)
        states = unit_states(production, assets, bundle, recent_hours)
        rows = recommend_states(states, bundle, ref, version, datetime.now(timezone.utc), seed)
        written = write_scored(lake, RECOMMENDATIONS, rows, ref, version)
        outcomes.append(ScoreOutcome("/".join(RECOMMENDATIONS), ref, "/".join(PRODUCTION), version,
                                     None if written is None else rows.num_rows, lake.version(*RECOMMENDATIONS)))
    return outcomes


def _has_alias(client, name: str, alias: str) -> bool:
    return alias in (client.get_registered_model(name).aliases or {})


# ---------------------------------------------------------------- entry points
def score(settings, alias: str = DEFAULT_ALIAS, features_version: int | None = None,
          recent_hours: int = DEFAULT_RECENT_HOURS) -> list[ScoreOutcome]:
    """Both scorings on the lake the settings name; prints and returns what each did."""
    lake = Lake(settings.lake_uri)
    uri = settings.resolved_mlflow_uri()
    outcomes = [run_maintenance(lake, uri, alias, features_version), *run_production(lake, uri, alias, recent_hours)]
    for outcome in outcomes:
        print(outcome)
    return outcomes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--alias", default=DEFAULT_ALIAS, help="registry alias of the models to score with")
    parser.add_argument("--recent_hours", type=int, default=DEFAULT_RECENT_HOURS,
                        help="hours per unit, most recent first, to recommend settings for")


def main(argv: Sequence[str] | None = None) -> int:
    """Component entry point: ``python -m scoring.batch_score --lake ...`` (latest features)."""
    from refinery.settings import load_settings

    parser = argparse.ArgumentParser(prog="scoring.batch_score")
    parser.add_argument("--lake", required=True, help="lake root (locates the MLflow store by default)")
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        score(load_settings(lake_uri=args.lake), args.alias, None, args.recent_hours)
        return 0
    except (ValueError, FileNotFoundError) as exc:
        print(f"scoring.batch_score: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
