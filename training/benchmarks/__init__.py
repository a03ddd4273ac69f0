"""Benchmark pipelines on public data sets; pure cores that the ``refinery benchmark`` commands call."""
