"""Checks a simulated landing's injected faults against the quarantine: was each one caught?

The simulator records every bad record it injects (kind, file, line) in
``_manifest/injected_faults.jsonl``; ingestion names bronze rows ``<file>#<line>``, so each fault
can be followed to the quarantine row, and the rule that caught it, by record id.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from data_prep.lake import Lake

# Which named expectation must catch each injected fault kind.
EXPECTED_RULE = {
    "malformed_json": "well_formed_record",
    "missing_field": "required_fields_present",
    "wrong_type": "value_is_number",
    "impossible_value": "physically_possible",
    "non_finite": "value_is_finite",
    "exact_duplicate": "not_duplicate",
    "late_event": "not_late",
    "unknown_asset": "known_asset",
    "future_timestamp": "not_future_timestamp",
    "wrong_unit": "unit_matches_measurement",
}


def injected_faults(landing: Path) -> pd.DataFrame:
    """The simulator's manifest as a frame with the bronze record id of each fault."""
    path = Path(landing) / "_manifest" / "injected_faults.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"no fault manifest at {path}")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    faults = pd.DataFrame(rows, columns=["kind", "source", "file", "line", "detail"])
    faults["_record_id"] = faults["file"] + "#" + faults["line"].astype(str)
    return faults


def audit_faults(landing: Path, lake: Lake) -> pd.DataFrame:
    """Per fault kind: injected, caught by the expected rule, caught by another rule, missed."""
    faults = injected_faults(landing)
    quarantine = lake.read_pandas("quarantine", "telemetry", columns=["_record_id", "rule"])
    merged = faults.merge(quarantine, on="_record_id", how="left")
    merged["expected_rule"] = merged["kind"].map(EXPECTED_RULE)
    merged["outcome"] = "missed"
    merged.loc[merged["rule"].notna(), "outcome"] = "other_rule"
    merged.loc[merged["rule"] == merged["expected_rule"], "outcome"] = "caught"
    table = merged.pivot_table(index=["kind", "expected_rule"], columns="outcome", values="_record_id", aggfunc="count", fill_value=0)
    for col in ("caught", "other_rule", "missed"):
        if col not in table:
            table[col] = 0
    table["injected"] = table[["caught", "other_rule", "missed"]].sum(axis=1)
    return table[["injected", "caught", "other_rule", "missed"]].reset_index()
