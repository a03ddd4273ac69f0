"""A scoring script whose ``run()`` is one bare ``Booster.predict`` on one fixed row, for
``benchmarks/online_endpoint.py``: the reference for the server-side time of a single-row request,
timed by the same server, the same ``x-ms-run-fn-exec-ms`` header, under the same conditions.

``/score?threads=1`` predicts with ``num_threads=1``; ``/score?noop`` returns without predicting
(the server's own share of the timed call); plain ``/score`` calls ``predict`` with its defaults.
"""
import json
import os

import lightgbm as lgb
import numpy as np
from azureml_inference_server_http.api.aml_request import rawhttp
from flask import Response

booster = row = None


def init():
    global booster, row
    folder = os.environ["AZUREML_MODEL_DIR"]
    booster = lgb.Booster(model_file=os.path.join(folder, "failure_risk.txt"))
    with open(os.path.join(folder, "model.json")) as f:
        meta = json.load(f)
    row = np.array([meta["row"]], dtype=np.float64)


@rawhttp
def run(request):
    query = request.environ.get("QUERY_STRING", "")
    if query == "noop":
        value = 0.0
    elif query == "threads=1":
        value = float(booster.predict(row, num_threads=1)[0])
    else:
        value = float(booster.predict(row)[0])
    return Response(json.dumps({"failure_risk": value}), 200, content_type="application/json")
