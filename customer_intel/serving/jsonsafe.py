"""JSON-safe values from pandas and numpy: what the API answers and the live feed shows (NaN and NA as null, never a float NaN)."""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
import pandas as pd


def json_value(value):
    """A JSON-safe scalar: numpy scalars as Python ones, NaN/NaT/pd.NA as None, instants as ISO text."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, pd.Timestamp | datetime):
        return value.isoformat()
    if isinstance(value, bool | int | str):
        return value
    return str(value)


def plain(value):
    """A JSON-safe value: arrays (an embedding) as lists of JSON-safe scalars, scalars by ``json_value``."""
    if isinstance(value, np.ndarray | list | tuple):
        return [plain(v) for v in value]
    return json_value(value)
