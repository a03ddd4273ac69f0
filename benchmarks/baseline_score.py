"""The common online scoring script, as the baseline of ``benchmarks/online_endpoint.py``.

What AML samples and most hand-written ``score.py`` files do: unpickle scikit-learn style
estimators in ``init()``; in ``run()`` parse the JSON, build a pandas DataFrame of the rows, select
the feature columns and call ``predict_proba`` / ``predict``, return a dict for the server to
serialise. Same model (the pickles wrap the very boosters ``scoring/score.py`` serves), same
inference server, same answers; the estimators use one thread, as the served boosters do.
"""
import json
import os

import joblib
import numpy as np
import pandas as pd

classifier = regressor = features = identity = None


def init():
    global classifier, regressor, features, identity
    folder = os.environ["AZUREML_MODEL_DIR"]
    classifier = joblib.load(os.path.join(folder, "classifier.pkl"))
    regressor = joblib.load(os.path.join(folder, "regressor.pkl"))
    with open(os.path.join(folder, "model.json")) as f:
        meta = json.load(f)
    features, identity = meta["features"], meta["model"]


def run(raw_data):
    rows = json.loads(raw_data)["rows"]
    frame = pd.DataFrame(rows)
    x = frame[features]
    risk = classifier.predict_proba(x)[:, 1]
    rul = np.maximum(regressor.predict(x), 0.0)
    ts = frame["ts"].tolist() if "ts" in frame else [None] * len(frame)
    name, version = identity["name"], identity["version"]
    return {"model": identity,
            "predictions": [{"asset_id": a, "ts": t, "failure_risk": float(r), "rul_hours": float(h),
                             "model_name": name, "model_version": version}
                            for a, t, r, h in zip(frame["asset_id"].tolist(), ts, risk, rul)]}
