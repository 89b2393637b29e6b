"""What the API loads beside the champions: the channel vocabulary of raw-mode features, and which champions are newer than
the published day."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd

from customer_intel.serving.champions import PublishedDay, ServingModels, channel_vocabulary


def test_channel_vocabulary_keeps_every_published_column_and_the_requests_spelling():
    # the published day has channel_share_online and channel_share_in_store; a request spells them its own way
    assert channel_vocabulary(("in_store", "online"), ["Online", "kiosk"]) == ["in_store", "Online", "kiosk"]
    assert channel_vocabulary(("in_store", "online"), []) == ["in_store", "online"]
    assert channel_vocabulary((), ["atm", None, "atm"]) == ["atm"]


def _models(scored_by: dict[str, str], champions: dict[str, str]) -> ServingModels:
    day = PublishedDay("2026-06-30", pd.DataFrame({"customer_id": ["a"]}), {"a": 0}, (), scored_by=scored_by)
    registered = {name: SimpleNamespace(label=label) for name, label in champions.items()}
    return ServingModels(registered, {}, day, "", "", 0.0, "", "")


def test_a_champion_promoted_after_the_published_day_is_named():
    models = _models({"churn": "customer_intel_churn v1 (bgnbd)", "cltv": "customer_intel_cltv v3 (ensemble)"},
                     {"churn": "customer_intel_churn v2 (logistic)", "cltv": "customer_intel_cltv v3 (ensemble)",
                      "segmentation": "customer_intel_segmentation v1 (kmeans)"})
    assert models.stale() == ["churn: the champion is customer_intel_churn v2 (logistic), the published day 2026-06-30 was scored "
                              "by customer_intel_churn v1 (bgnbd)"]
    assert _models({}, {"churn": "customer_intel_churn v2 (logistic)"}).stale() == []  # a family the day has no scores of
