"""Training: features, splits, LightGBM training, evaluation, the promotion gate, MLflow.

Pure cores (no I/O, no MLflow, no pyspark): ``features`` (point-in-time rolling features,
regime normalisation, labels), ``splits`` (by entity, by time), ``lgbm`` (deterministic
LightGBM with validation early stopping), ``metrics``, ``production`` (quality models and the
safe settings recommender), ``benchmarks`` (public-data benchmark pipelines).
Shells: ``tracking`` (MLflow logging, registry, champion gate) and ``commands``
(``refinery benchmark ...``).
"""
