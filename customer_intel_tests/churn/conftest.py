"""CDNOW's 1/10th sample (shipped in lifetimes) split as FHL 2005 split it: calibration to 1997-09-30, a 39-week churn window."""

import pytest

from customer_intel.churn.frames import build_churn_split
from customer_intel.cltv.datasets import CDNOW_CALIBRATION_END, load_cdnow_transactions

WINDOW = 273


@pytest.fixture(scope="session")
def cdnow_sample():
    return load_cdnow_transactions("sample")


@pytest.fixture(scope="session")
def cdnow_split(cdnow_sample):
    return build_churn_split(cdnow_sample, None, CDNOW_CALIBRATION_END, WINDOW)


@pytest.fixture(scope="session")
def cdnow_master_split():
    return build_churn_split(load_cdnow_transactions("master"), None, CDNOW_CALIBRATION_END, WINDOW)
