"""Metrics against hand-computed values; splits by entity and by time."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from training import metrics
from training.splits import split_by_counts, split_by_entity, split_by_time


def test_regression_metrics():
    assert metrics.rmse([1, 2, 3], [1, 2, 5]) == pytest.approx(math.sqrt(4 / 3))
    assert metrics.r2([1, 2, 3], [1, 2, 3]) == 1.0
    assert metrics.r2([1, 2, 3], [2, 2, 2]) == pytest.approx(0.0)
    assert math.isnan(metrics.r2([2, 2], [1, 3]))


def test_phm08_penalises_late_predictions_more():
    # d = -13 -> e^1 - 1 ; d = +10 -> e^1 - 1 ; d = 0 -> 0
    assert metrics.phm08_score([20, 20, 20], [7, 30, 20]) == pytest.approx(2 * (math.e - 1))
    assert metrics.phm08_score([50], [60]) > metrics.phm08_score([50], [40])


def test_length_mismatch_and_nan_are_named():
    with pytest.raises(ValueError, match="3 values but y_pred has 2"):
        metrics.rmse([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="y_pred has a missing or infinite value at position 1"):
        metrics.rmse([1, 2], [1, np.nan])
    with pytest.raises(ValueError, match="0/1 labels, got 2.0"):
        metrics.pr_auc([0, 2], [0.1, 0.2])


def test_classification_metrics():
    y = [0, 0, 1, 1, 0, 1]
    s = [0.1, 0.2, 0.9, 0.8, 0.3, 0.35]
    assert metrics.pr_auc(y, s) == pytest.approx(1.0)
    assert metrics.f1(y, [0, 0, 1, 1, 1, 0]) == pytest.approx(2 / 3)
    assert math.isnan(metrics.pr_auc([0, 0], [0.1, 0.2]))


def test_recall_at_alert_budget_counts_top_rows_only():
    y = np.array([1, 0, 0, 0, 1, 0, 0, 0, 0, 1])
    s = np.array([0.9, 0.8, 0.1, 0.1, 0.7, 0.1, 0.1, 0.1, 0.1, 0.05])
    assert metrics.recall_at_alert_rate(y, s, 0.2) == pytest.approx(1 / 3)  # 2 alerts: rows 0 and 1
    assert metrics.recall_at_alert_rate(y, s, 0.3) == pytest.approx(2 / 3)
    assert metrics.recall_at_alert_rate(y, s, 1.0) == 1.0
    assert metrics.alert_budget_threshold(s, 0.3) == 0.7
    with pytest.raises(ValueError, match="alert_rate"):
        metrics.recall_at_alert_rate(y, s, 0.0)


def test_warning_lead_time_per_failure_event():
    entity = [1] * 6 + [2] * 6 + [3] * 6
    time = list(range(6)) * 3
    score = [0, 0, 0.9, 0.2, 0.95, 0.9] + [0.0] * 6 + [0.99, 0, 0, 0, 0, 0]
    fail = {1: 5, 2: 5, 3: np.nan}
    lead = metrics.warning_lead_times(entity, time, score, fail, threshold=0.8)
    assert lead[1] == 3 and math.isnan(lead[2]) and 3 not in lead.index
    assert metrics.median_warning_lead_time(entity, time, score, fail, 0.8) == 3
    # Only alerts within max_lead count as warnings.
    assert metrics.warning_lead_times(entity, time, score, fail, 0.8, max_lead=2)[1] == 1


def test_entity_split_is_seeded_disjoint_and_complete():
    units = np.repeat(np.arange(20), 5)
    a = split_by_entity(units, 0.25, seed=7)
    b = split_by_entity(units[::-1], 0.25, seed=7)
    assert a == b
    assert len(a.valid_entities) == 5 and not set(a.train_entities) & set(a.valid_entities)
    assert set(a.train_entities) | set(a.valid_entities) == set(range(20))
    tr, va = a.masks(units)
    assert (tr ^ va).all()
    assert split_by_entity(units, 0.25, seed=8) != a
    with pytest.raises(ValueError, match="at least 2 entities"):
        split_by_entity([1, 1, 1], 0.5, 0)
    with pytest.raises(ValueError, match="valid_fraction"):
        split_by_entity(units, 1.5, 0)


def test_time_split_and_block_split():
    t = pd.Series(pd.date_range("2024-01-01", periods=10, freq="D"))
    before, after = split_by_time(t, pd.Timestamp("2024-01-04"))
    assert before.sum() == 3 and after.sum() == 7
    blocks = split_by_counts(10, [5, 2, 3])
    assert [b.tolist() for b in blocks] == [[0, 1, 2, 3, 4], [5, 6], [7, 8, 9]]
    with pytest.raises(ValueError, match="needs 11 rows, only 10"):
        split_by_counts(10, [5, 3, 3])
