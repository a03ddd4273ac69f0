"""The served form of a model: a folder of LightGBM text boosters plus ``bundle.json``.

Training writes one bundle per registered model version (inside the MLflow model, so
``mlflow.pyfunc.load_model`` serves it too); batch scoring, ``scoring/score.py`` on a managed
online endpoint (under ``AZUREML_MODEL_DIR``) and ``refinery serve`` all read the same folder.
Loading needs only numpy and lightgbm: the online serving environment has no pandas or MLflow.

``bundle.json`` holds the model name and kind, the input feature order, one booster file per
output column (``failure_risk`` and ``rul_hours`` for maintenance; ``predicted``, ``low`` and
``high`` for production) and kind-specific facts (label horizon, unit type, settings and their
safe envelope). Boosters are saved with only the trees up to their early-stopping round, so a
loaded bundle predicts exactly what was evaluated.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np

BUNDLE_FILE = "bundle.json"
FORMAT_VERSION = 1


@dataclass
class ModelBundle:
    """Boosters by output column over one feature order, plus what a consumer needs to know."""

    name: str
    kind: str  # "maintenance", "production", or any other label a caller chooses
    features: list[str]
    boosters: dict[str, lgb.Booster]
    spec: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.boosters:
            raise ValueError(f"bundle {self.name!r} has no boosters")
        for output, booster in self.boosters.items():
            if booster.num_feature() != len(self.features):
                raise ValueError(f"booster {output!r} of bundle {self.name!r} takes {booster.num_feature()} "
                                 f"features, the bundle names {len(self.features)}")
        self._index = {name: i for i, name in enumerate(self.features)}

    @property
    def outputs(self) -> list[str]:
        return list(self.boosters)

    def predict_matrix(self, x: np.ndarray, num_threads: int = 0) -> dict[str, np.ndarray]:
        """One array per output for the rows of ``x`` (float64, columns in ``features`` order,
        NaN = missing). Remaining life is never negative; a crossed band is put in order."""
        x = np.asarray(x, dtype="float64")
        if x.ndim != 2 or x.shape[1] != len(self.features):
            raise ValueError(f"bundle {self.name!r} expects a matrix of {len(self.features)} feature columns, "
                             f"got shape {x.shape}")
        return finish_outputs({name: b.predict(x, num_threads=num_threads) for name, b in self.boosters.items()})

    def matrix(self, frame: Any) -> np.ndarray:
        """The model inputs of a pandas frame as a float64 matrix in feature order; ValueError
        naming the first missing column."""
        missing = [c for c in self.features if c not in frame.columns]
        if missing:
            raise ValueError(f"input lacks feature column(s) {missing[:5]} of model {self.name!r}")
        return frame[self.features].to_numpy(dtype="float64", na_value=np.nan)

    def save(self, folder: str | Path) -> Path:
        """Write the boosters and ``bundle.json`` into ``folder`` (created); returns the folder."""
        path = Path(folder)
        path.mkdir(parents=True, exist_ok=True)
        files = {}
        for output, booster in self.boosters.items():
            files[output] = f"{output}.txt"
            booster.save_model(str(path / files[output]))
        doc = {"format": FORMAT_VERSION, "name": self.name, "kind": self.kind, "features": self.features,
               "boosters": files, "spec": self.spec}
        (path / BUNDLE_FILE).write_text(json.dumps(doc, indent=1, allow_nan=False))
        return path

    @classmethod
    def load(cls, folder: str | Path) -> ModelBundle:
        """The bundle in ``folder`` or in the one sub-folder of it that holds ``bundle.json``
        (an MLflow model folder, or AML's ``AZUREML_MODEL_DIR``, nest it)."""
        path = find_bundle(folder)
        doc = json.loads((path / BUNDLE_FILE).read_text())
        if doc.get("format") != FORMAT_VERSION:
            raise ValueError(f"{path / BUNDLE_FILE}: bundle format {doc.get('format')!r}, this code reads {FORMAT_VERSION}")
        boosters = {out: lgb.Booster(model_file=str(path / name)) for out, name in doc["boosters"].items()}
        return cls(doc["name"], doc["kind"], list(doc["features"]), boosters, doc.get("spec", {}))


def finish_outputs(out: dict[str, Any]) -> dict[str, Any]:
    """Raw booster outputs (arrays, or floats for one row) as served: remaining life is never
    negative and a crossed quantile band is put in order. Changes ``out`` in place; returns it."""
    if "rul_hours" in out:
        rul = out["rul_hours"]
        out["rul_hours"] = np.maximum(rul, 0.0) if isinstance(rul, np.ndarray) else max(rul, 0.0)
    if "low" in out and "high" in out:
        lo, hi = out["low"], out["high"]
        if isinstance(lo, np.ndarray):
            out["low"], out["high"] = np.minimum(lo, hi), np.maximum(lo, hi)
        elif lo > hi:
            out["low"], out["high"] = hi, lo
    return out


def find_bundle(folder: str | Path) -> Path:
    """The folder holding ``bundle.json``: ``folder`` itself or its only descendant that does."""
    root = Path(folder)
    if (root / BUNDLE_FILE).is_file():
        return root
    if not root.is_dir():
        raise FileNotFoundError(f"model folder {root} does not exist")
    found = sorted(p.parent for p in root.rglob(BUNDLE_FILE))
    if len(found) != 1:
        raise FileNotFoundError(f"model folder {root} holds {len(found)} {BUNDLE_FILE} files, expected exactly one")
    return found[0]


def truncated(booster: lgb.Booster, best_iteration: int) -> lgb.Booster:
    """A copy of ``booster`` with only the trees up to ``best_iteration`` (all when <= 0)."""
    n = best_iteration if best_iteration and best_iteration > 0 else None
    return lgb.Booster(model_str=booster.model_to_string(num_iteration=n))


def finite_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """``spec`` with a clear error for a value JSON cannot hold (NaN, infinity)."""
    def check(value: Any, where: str) -> None:
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"bundle spec {where} is not finite: {value!r}")
        if isinstance(value, dict):
            for k, v in value.items():
                check(v, f"{where}.{k}")
        if isinstance(value, (list, tuple)):
            for i, v in enumerate(value):
                check(v, f"{where}[{i}]")
    for key, value in spec.items():
        check(value, key)
    return spec
