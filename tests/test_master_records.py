"""Master-data records that would break golden-record building are quarantined with a named rule."""
from __future__ import annotations

import json

import pandas as pd

from data_prep.prep import parse_master_records


def _bronze(records: list) -> pd.DataFrame:
    return pd.DataFrame([{"_record_id": f"f#{i}", "_source": "s", "_source_file": "f", "_line": i, "_batch_id": 1,
                          "raw": r if isinstance(r, str) else json.dumps(r)} for i, r in enumerate(records, 1)])


def test_bad_master_records_are_quarantined_not_fatal():
    good = {"Id": "001", "Name": "Acme", "CreatedDate": "2025-03-01T10:00:00.000+0000"}
    records, quarantine = parse_master_records(
        _bronze([good, {**good, "Id": ""}, {**good, "Id": "002", "Name": " "}, {**good, "Id": "003", "CreatedDate": "yesterday"},
                 "{broken", {"_unparsed": "a,b"}]),
        "Id", "crm_accounts",
    )
    assert records["Id"].tolist() == ["001"]
    assert quarantine.set_index("_line")["rule"].to_dict() == {
        2: "id_present", 3: "required_fields_present", 4: "dates_parse", 5: "well_formed_record", 6: "well_formed_record"}
    assert "yesterday" in quarantine.set_index("_line").loc[4, "reason"]


def test_equipment_install_dates_must_be_iso_days():
    ok = {"EquipNo": "P101-CDU1", "InstallDate": "2019-05-01"}
    records, quarantine = parse_master_records(_bronze([ok, {**ok, "EquipNo": "P102", "InstallDate": "01/05/2019"},
                                                        {**ok, "EquipNo": "P103", "InstallDate": None}]), "EquipNo", "equipment")
    assert records["EquipNo"].tolist() == ["P101-CDU1", "P103"]  # a blank date is allowed
    assert quarantine["rule"].tolist() == ["dates_parse"]
