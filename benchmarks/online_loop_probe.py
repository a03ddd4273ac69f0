"""Warm-loop timings in the serving environment, for ``benchmarks/online_endpoint.py``:

    .venv-serve/bin/python benchmarks/online_loop_probe.py MODEL_FOLDER BODY_FILE

One process, warm caches, no server: the median time of refinery's scoring of a request body
(``ServedModel.score``: parse, checks, both boosters, response body; what ``scoring/score.py``
runs per request) and of a bare ``Booster.predict`` of the risk booster on the body's first row,
with its defaults and with ``num_threads=1``. Prints one JSON object (milliseconds).
"""
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scoring.model_bundle import ModelBundle  # noqa: E402
from scoring.online import ModelIdentity, ServedModel  # noqa: E402


def median_ms(fn, n: int = 3000) -> float:
    for _ in range(200):
        fn()
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1e3


def main() -> int:
    bundle = ModelBundle.load(sys.argv[1])
    body = Path(sys.argv[2]).read_bytes()
    model = ServedModel(bundle, ModelIdentity(bundle.name, "probe"))
    first = json.loads(body)["rows"][0]
    row = np.array([[first[f] for f in bundle.features]], dtype=np.float64)
    booster = bundle.boosters["failure_risk"]
    print(json.dumps({"refinery_score": median_ms(lambda: model.score(body)),
                      "bare_default": median_ms(lambda: booster.predict(row)),
                      "bare_num_threads=1": median_ms(lambda: booster.predict(row, num_threads=1))}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
