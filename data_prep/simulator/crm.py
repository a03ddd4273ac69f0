"""CRM extracts: customer accounts (with duplicates under name variants) and sales orders.

About a fifth of the customers were entered a second time by another sales rep: a name variant
(upper case, legal form spelled out or dropped, a typo) with a later ``Id``; orders then reference
either record. The truth (which Ids are one customer) goes to ``_manifest/plant.json``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np

from data_prep.simulator.timegrid import TimeGrid

ACCOUNTS_PER_PAGE = 20
ORDERS_PER_PAGE = 200
DUPLICATE_SHARE = 0.2
ORDERS_PER_CUSTOMER_DAY = 0.25

# (name, BillingCountry, Industry)
CUSTOMERS: tuple[tuple[str, str, str], ...] = (
    ("Acme Petroleum Ltd.", "GB", "Trading"), ("Nordic Fuel Distribution AB", "SE", "Wholesale"),
    ("Rhine Valley Energy GmbH", "DE", "Utilities"), ("Atlantic Bunkering S.A.", "PT", "Shipping"),
    ("Gulf Coast Aviation Fuels Inc.", "US", "Aviation"), ("Benelux Tank Storage B.V.", "NL", "Trading"),
    ("Alpine Heating Oil AG", "CH", "Retail"), ("Iberia Combustibles S.A.", "ES", "Wholesale"),
    ("Baltic Marine Services Oy", "FI", "Shipping"), ("Thames Logistics Plc", "GB", "Transport"),
    ("Danube Transport GmbH", "AT", "Transport"), ("Adriatic Shipping S.p.A.", "IT", "Shipping"),
    ("Po Valley Agri SRL", "IT", "Agriculture"), ("Lyon Transports Routiers SAS", "FR", "Transport"),
    ("Hanse Trucking GmbH", "DE", "Transport"), ("Northern Rail Freight Ltd.", "GB", "Transport"),
    ("Skyways Airline Group Plc", "IE", "Aviation"), ("Meridian Petrochemicals N.V.", "BE", "Petrochemicals"),
    ("Helios Power Generation S.p.A.", "IT", "Utilities"), ("Polar Fisheries AS", "NO", "Shipping"),
    ("Celtic Fuel Oils Ltd.", "IE", "Retail"), ("Vistula Chemicals S.A.", "PL", "Petrochemicals"),
    ("Aegean Ferries S.A.", "GR", "Shipping"), ("Continental Asphalt Works GmbH", "DE", "Construction"),
    ("Zeeland Energy Trading B.V.", "NL", "Trading"), ("Saxon Utilities AG", "DE", "Utilities"),
    ("Biscay Bunkers S.A.", "ES", "Shipping"), ("Fjord Ferries AS", "NO", "Shipping"),
    ("Midlands Haulage Ltd.", "GB", "Transport"), ("Carpathian Agro SRL", "RO", "Agriculture"),
)

# USD per barrel around the start of 2026.
PRODUCT_PRICES: dict[str, float] = {
    "Diesel ULSD": 96.5, "Gasoline RON95": 92.0, "Jet A-1": 99.0, "Heating Oil": 94.0, "Marine Gasoil": 97.0,
    "Fuel Oil 380": 68.0, "Naphtha": 70.0, "LPG": 45.0, "Bitumen": 55.0,
}
_PRODUCTS_BY_INDUSTRY = {
    "Trading": ("Diesel ULSD", "Gasoline RON95", "Naphtha", "Fuel Oil 380"),
    "Wholesale": ("Diesel ULSD", "Gasoline RON95", "Heating Oil"),
    "Utilities": ("Fuel Oil 380", "Heating Oil"),
    "Shipping": ("Marine Gasoil", "Fuel Oil 380"),
    "Aviation": ("Jet A-1",),
    "Retail": ("Diesel ULSD", "Gasoline RON95", "Heating Oil", "LPG"),
    "Transport": ("Diesel ULSD",),
    "Agriculture": ("Diesel ULSD", "LPG"),
    "Petrochemicals": ("Naphtha", "LPG"),
    "Construction": ("Bitumen", "Diesel ULSD"),
}
_LEGAL_SPELLED_OUT = {"Ltd.": "LIMITED", "Inc.": "INCORPORATED", "Plc": "PUBLIC LIMITED COMPANY", "B.V.": "BV",
                      "S.A.": "SA", "N.V.": "NV", "S.p.A.": "SPA"}


def name_variant(name: str, rng: np.random.Generator) -> str:
    """Another way a sales rep types the same company."""
    words = name.split()
    legal = words[-1]
    draw = rng.random()
    if draw < 0.3:
        return " ".join(words[:-1]).upper() + " " + _LEGAL_SPELLED_OUT.get(legal, legal.upper())
    if draw < 0.55:
        return " ".join(words[:-1])  # legal form left out
    if draw < 0.75:
        return name.upper().replace(".", "")
    # A one-letter typo in the longest word.
    i = max(range(len(words) - 1), key=lambda k: len(words[k]))
    word = words[i]
    pos = int(rng.integers(1, len(word) - 1))
    words[i] = word[:pos] + word[pos + 1] + word[pos] + word[pos + 2:]
    return " ".join(words)


def _created(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.000+0000")


@dataclass(frozen=True)
class CrmExtract:
    account_pages: list[str]
    order_pages: list[str]
    duplicates: dict[str, list[str]]  # master Id -> the Ids of its duplicates
    accounts: int
    orders: int


def _pages(records: list[dict], per_page: int) -> list[str]:
    chunks = [records[i:i + per_page] for i in range(0, len(records), per_page)] or [[]]
    return [json.dumps({"records": chunk}, indent=2) + "\n" for chunk in chunks]


def build_crm(grid: TimeGrid, rng: np.random.Generator) -> CrmExtract:
    """Accounts created before the period, orders dated inside it."""
    first_day = datetime(2019, 1, 1, tzinfo=timezone.utc)
    span_days = (grid.start_dt - first_day).days - 30
    created = sorted(first_day + timedelta(days=float(rng.uniform(0, span_days))) for _ in CUSTOMERS)
    order = rng.permutation(len(CUSTOMERS))
    number = 0
    accounts = []
    ids_of: list[list[str]] = [[] for _ in CUSTOMERS]
    for rank, c in enumerate(order.tolist()):
        number += int(rng.integers(1, 4))
        name, country, industry = CUSTOMERS[c]
        account_id = f"001A{number:06d}"
        ids_of[c].append(account_id)
        accounts.append({"Id": account_id, "Name": name, "BillingCountry": country, "Industry": industry,
                         "CreatedDate": _created(created[rank].replace(hour=int(rng.integers(7, 18)), minute=0))})
    n_dup = int(round(DUPLICATE_SHARE * len(CUSTOMERS)))
    duplicated = sorted(rng.choice(len(CUSTOMERS), size=n_dup, replace=False).tolist())
    later = grid.start_dt - timedelta(days=10)
    for c in duplicated:
        for _ in range(2 if rng.random() < 0.25 else 1):
            number += int(rng.integers(1, 4))
            name, country, industry = CUSTOMERS[c]
            account_id = f"001A{number:06d}"
            ids_of[c].append(account_id)
            when = later - timedelta(days=float(rng.uniform(0, 300)))
            accounts.append({"Id": account_id, "Name": name_variant(name, rng), "BillingCountry": country,
                             # The second rep often skips the industry picklist.
                             "Industry": industry if rng.random() < 0.6 else "",
                             "CreatedDate": _created(when.replace(minute=int(rng.integers(0, 60)), second=0, microsecond=0))})
    accounts.sort(key=lambda a: a["Id"])

    weights = rng.gamma(1.5, 1.0, len(CUSTOMERS))
    weights /= weights.sum()
    orders = []
    for day in grid.day_dates():
        for _ in range(int(rng.poisson(ORDERS_PER_CUSTOMER_DAY * len(CUSTOMERS)))):
            c = int(rng.choice(len(CUSTOMERS), p=weights))
            ids = ids_of[c]
            account_id = ids[0] if len(ids) == 1 or rng.random() < 0.6 else ids[1 + int(rng.integers(len(ids) - 1))]
            products = _PRODUCTS_BY_INDUSTRY[CUSTOMERS[c][2]]
            product = products[int(rng.integers(len(products)))]
            price = PRODUCT_PRICES[product] * (1.0 + rng.normal(0.0, 0.04))
            orders.append({"OrderId": f"801A{len(orders) + 1:04d}", "AccountId": account_id, "Product": product,
                           "QuantityBbl": int(rng.integers(4, 121)) * 500, "UnitPriceUsd": round(float(price), 2),
                           "OrderDate": day.isoformat()})
    duplicates = {ids_of[c][0]: ids_of[c][1:] for c in duplicated}
    return CrmExtract(_pages(accounts, ACCOUNTS_PER_PAGE), _pages(orders, ORDERS_PER_PAGE), duplicates,
                      len(accounts), len(orders))
