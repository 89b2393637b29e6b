"""Example datasets that ship inside installed packages: the CDNOW transaction log in lifetimes.

CDNOW (Fader & Hardie): the 1/10th sample of customers who made their first purchase at CDNOW
in the first quarter of 1997, with every purchase to the end of June 1998. Columns of the raw
log: customer id, date (YYYYMMDD), number of CDs, dollar value. Loaded offline from the lifetimes
package, mapped onto the transaction contract.
"""

from __future__ import annotations

import importlib.resources

import pandas as pd

CDNOW_FILES = {"master": "CDNOW_master.txt", "sample": "CDNOW_sample.txt"}
# The split of Fader, Hardie & Lee (2005a): 39 weeks of calibration, 39 weeks of holdout.
CDNOW_CALIBRATION_END = "1997-09-30"
CDNOW_OBSERVATION_END = "1998-06-30"


def cdnow_path(which: str = "master") -> str:
    if which not in CDNOW_FILES:
        raise ValueError(f"CDNOW file must be one of {', '.join(CDNOW_FILES)}; got {which!r}")
    return str(importlib.resources.files("lifetimes.datasets") / CDNOW_FILES[which])


def load_cdnow_transactions(which: str = "master") -> pd.DataFrame:
    """The CDNOW log as contract transactions: customer_id, ts (UTC day), amount (dollars), category.

    ``category`` is "cd"; the quantity of CDs is kept as ``quantity``. $0 records are purchases
    (promotional CDs) and count as purchase days.
    """
    raw = pd.read_csv(cdnow_path(which), sep=r"\s+", header=None, dtype=str)
    raw = raw.loc[raw.iloc[:, 0].str.isdigit()]  # the master file starts with a header line, the sample does not
    # master: id, date, quantity, dollars; sample: original id, new id, date, quantity, dollars
    if raw.shape[1] == 5:
        raw = raw.iloc[:, 1:]
    raw.columns = ["customer_id", "date", "quantity", "amount"]
    return pd.DataFrame(
        {
            # the log has day resolution: the same customer can buy the same amount twice a day
            "transaction_id": pd.array([f"{which}-{i}" for i in range(len(raw))], dtype="string"),
            "customer_id": raw["customer_id"].astype("string"),
            "ts": pd.to_datetime(raw["date"], format="%Y%m%d", utc=True),
            "amount": raw["amount"].astype(float),
            "category": pd.array(["cd"] * len(raw), dtype="string"),
            "quantity": raw["quantity"].astype(int),
        }
    )
