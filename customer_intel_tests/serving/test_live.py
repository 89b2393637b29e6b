"""The live at-risk feed: events stored once, a clock that only moves forward, crossings and recoveries, the HTML page."""

from __future__ import annotations

import json
import threading

import numpy as np
import pandas as pd
import pytest

from customer_intel.features import build_customer_features
from customer_intel.serving.live import LiveFeed
from customer_intel.serving.pages import render_at_risk

DAY0 = pd.Timestamp("2026-05-01T00:00:00Z")


def at(days: float, hours: float = 12) -> pd.Timestamp:
    return DAY0 + pd.Timedelta(days=days) + pd.Timedelta(hours=hours)


def events(*rows) -> pd.DataFrame:
    """(customer_id, instant, amount[, category]) rows as a raw transactions batch."""
    return pd.DataFrame([{"customer_id": r[0], "ts": r[1], "amount": r[2], "category": r[3] if len(r) > 3 else "grocery",
                          "channel": "online"} for r in rows])


class QuietScorer:
    """A fake churn scorer: risk grows with the days since the last purchase (quiet days / 30, capped at 1)."""

    def __init__(self):
        self.calls: list[tuple[list[str], pd.DataFrame | None, pd.Timestamp]] = []

    def __call__(self, transactions: pd.DataFrame, customers: pd.DataFrame | None, as_of: pd.Timestamp) -> pd.DataFrame:
        self.calls.append((sorted(transactions["customer_id"].unique()), customers, as_of))
        last = transactions.groupby("customer_id")["ts"].max()
        quiet = (as_of.normalize() - last.dt.normalize()).dt.days.to_numpy()
        p = np.clip(quiet / 30, 0, 1)
        return pd.DataFrame({
            "customer_id": last.index,
            "churn_probability": p,
            "churn_risk_band": np.where(p >= 0.5, "high", "low"),
            "churn_reasons": [f"quiet for {d} days: +{d / 10:.2f}" for d in quiet],
            "churn_reason_1": "recency", "churn_reason_2": None, "churn_reason_3": np.nan,
            "churn_reason_1_logodds": quiet / 10,
            "churn_counterfactual": "one purchase in the next 7 days",
            "churn_counterfactual_probability": np.float64(0.2),
            "churn_horizon_days": 90,
            "churn_model": "customer_intel_churn v3 (fake)",
        })


@pytest.fixture
def scorer() -> QuietScorer:
    return QuietScorer()


def test_a_resent_batch_is_stored_once_and_rescore_false_scores_nobody(scorer):
    feed = LiveFeed(scorer, 0.5)
    batch = events(("C1", at(0, 9), 10.0), ("C1", at(0, 10), 5.5), ("C2", at(0, 11), -3.0))
    profiles = pd.DataFrame([{"customer_id": "C1", "Avg_Credit_Limit": 1000, "Total_calls_made": 1},
                             {"customer_id": "C1", "Avg_Credit_Limit": 9000, "Total_calls_made": 2}])
    first = feed.ingest(batch, profiles, at(0), rescore=False)
    assert first == {"received": 3, "duplicates": 0, "customers_known": 2, "scored": 0, "crossed": [], "recovered": [],
                     "at_risk": 0, "as_of": "2026-05-01T12:00:00+00:00"}
    again = feed.ingest(batch, None, at(0), rescore=False)
    assert (again["received"], again["duplicates"], again["customers_known"]) == (0, 3, 2)
    # one new row, one copy of a stored row, and a row twice within the batch
    mixed = events(("C1", at(0, 9), 10.0), ("C3", at(0, 11), 1.0), ("C3", at(0, 11), 1.0), ("C3", at(0, 11), 1.0, "fuel"))
    third = feed.ingest(mixed, None, at(0), rescore=False)
    assert (third["received"], third["duplicates"], third["customers_known"]) == (2, 2, 3)
    assert feed.snapshot()["events"] == 5
    assert scorer.calls == []
    feed.ingest(None, None, at(0))  # the first rescoring batch scores every known customer, with the latest profile
    (ids, customers, as_of), = scorer.calls
    assert ids == ["C1", "C2", "C3"] and as_of == at(0)
    assert customers.to_dict("records") == [{"customer_id": "C1", "Avg_Credit_Limit": 9000, "Total_calls_made": 2}]


def test_the_clock_never_goes_backwards_and_late_events_are_refused_whole(scorer):
    feed = LiveFeed(scorer, 0.5)
    feed.ingest(events(("C1", at(1), 10.0)), None, at(1))
    with pytest.raises(ValueError, match=r"as_of 2026-05-02T11:00:00\+00:00 is before the feed's clock 2026-05-02T12:00:00\+00:00"):
        feed.ingest(events(("C2", at(1, 10), 1.0)), None, at(1, 11))
    late = events(("C2", at(1, 13), 1.0), ("C3", at(1, 14), 1.0), ("C1", at(1, 15), 2.0), ("C4", at(1, 15), 2.0))
    with pytest.raises(ValueError, match=r"^2 event\(s\) after as_of 2026-05-02T14:00:00\+00:00; the first is customer C1 at "
                                         r"2026-05-02T15:00:00\+00:00"):
        feed.ingest(late, None, at(1, 14))
    snap = feed.snapshot()
    assert (snap["events"], snap["customers_known"], snap["as_of"]) == (1, 1, "2026-05-02T12:00:00+00:00")  # nothing stored
    assert feed.ingest(None, None, at(1))["as_of"] == "2026-05-02T12:00:00+00:00"  # an equal clock is fine
    with pytest.raises(ValueError, match="transactions lack the column"):
        feed.ingest(pd.DataFrame({"customer_id": ["C1"], "ts": [at(2)]}), None, at(2))


def test_quiet_customers_cross_in_the_daily_full_rescore_and_recover_on_a_purchase(scorer):
    feed = LiveFeed(scorer, 0.5)
    out = feed.ingest(events(("C1", at(0, 9), 10.0), ("C2", at(0, 10), 20.0)), None, at(0))
    assert (out["scored"], out["crossed"], out["at_risk"]) == (2, [], 0)
    # day 20: C2 buys; the day advanced, so every customer is rescored and quiet C1 (20/30) crosses
    out = feed.ingest(events(("C2", at(20, 8), 5.0)), None, at(20, 8))
    assert scorer.calls[-1][0] == ["C1", "C2"]
    assert (out["scored"], out["crossed"], out["recovered"], out["at_risk"]) == (2, ["C1"], [], 1)
    row, = feed.snapshot()["at_risk"]
    assert row["customer_id"] == "C1" and row["probability"] == pytest.approx(20 / 30)
    assert row["crossed_at"] == "2026-05-21T08:00:00+00:00" and row["risk_band"] == "high"
    assert row["reasons"] == "quiet for 20 days: +2.00" and row["reason_1"] == "recency" and row["reason_3"] is None
    assert row["counterfactual"] == "one purchase in the next 7 days" and row["counterfactual_probability"] == 0.2
    assert row["model"] == "customer_intel_churn v3 (fake)"
    # day 25: still at risk; crossed_at kept, probability and reasons refreshed; no new crossing
    out = feed.ingest(events(("C3", at(25, 7), 1.0)), None, at(25, 7))
    assert (out["crossed"], out["at_risk"]) == ([], 1)
    row, = feed.snapshot()["at_risk"]
    assert row["crossed_at"] == "2026-05-21T08:00:00+00:00" and row["probability"] == pytest.approx(25 / 30)
    assert row["reasons"] == "quiet for 25 days: +2.50"
    # the same day C1 buys: only C1 is rescored (no full rescore twice a day) and it recovers
    out = feed.ingest(events(("C1", at(25, 9), 3.0)), None, at(25, 9))
    assert scorer.calls[-1][0] == ["C1"]
    assert (out["scored"], out["crossed"], out["recovered"], out["at_risk"]) == (1, [], ["C1"], 0)
    snap = feed.snapshot()
    assert (snap["at_risk"], snap["crossed_total"], snap["recovered_total"]) == ([], 1, 1)
    # it can cross again later, with a new crossed_at
    assert feed.ingest(None, None, at(60, 1))["crossed"] == ["C1", "C2", "C3"]
    assert {r["crossed_at"] for r in feed.snapshot()["at_risk"]} == {"2026-06-30T01:00:00+00:00"}


def test_score_is_called_once_per_ingest_with_the_touched_or_every_customer(scorer):
    feed = LiveFeed(scorer, 0.5)
    feed.ingest(events(("C1", at(0, 1), 1.0), ("C2", at(0, 2), 1.0), ("C3", at(0, 3), 1.0)), None, at(0, 3), rescore=False)
    feed.ingest(events(("C2", at(0, 4), 1.0)), None, at(0, 4))  # never fully rescored yet: everyone
    feed.ingest(events(("C2", at(0, 5), 1.0), ("C9", at(0, 5), 1.0)), None, at(0, 5))  # same day: the touched ones
    profiles = pd.DataFrame([{"customer_id": "C3", "Total_calls_made": 4}, {"customer_id": "C7", "Total_calls_made": 1}])
    feed.ingest(None, profiles, at(0, 6))  # a profile touches C3; C7 has no event, nothing to score
    feed.ingest(None, None, at(0, 6))  # an empty tick past the last full rescore (at(0, 4)): everyone
    feed.ingest(None, None, at(0, 6))  # the same tick again: nothing new to score
    feed.ingest(events(("C1", at(1, 0), 1.0)), None, at(1, 0), rescore=False)  # a new day but rescore=False: nobody
    feed.ingest(events(("C1", at(1, 1), 1.0)), None, at(1, 1))  # the first rescoring batch of the new day: everyone
    assert [ids for ids, _, _ in scorer.calls] == [["C1", "C2", "C3"], ["C2", "C9"], ["C3"], ["C1", "C2", "C3", "C9"],
                                                   ["C1", "C2", "C3", "C9"]]
    assert scorer.calls[2][1].to_dict("records") == [{"customer_id": "C3", "Total_calls_made": 4}]
    history = feed._frames(["C1", "C2"])[0]
    assert list(history.columns) == ["customer_id", "ts", "amount", "category", "channel"]
    assert str(history["ts"].dtype) == "datetime64[ns, UTC]" and len(history) == 6


def test_the_feed_is_ordered_latest_crossing_first_and_bounded(scorer):
    feed = LiveFeed(scorer, 0.55, max_rows=2)
    feed.ingest(events(("A", at(0), 1.0), ("B", at(5), 1.0), ("C", at(5), 1.0), ("D", at(8), 1.0)), None, at(8))
    assert feed.ingest(None, None, at(20))["crossed"] == ["A"]  # A quiet 20 days; B, C 15; D 12
    out = feed.ingest(None, None, at(22))  # B and C cross together (17/30), D not yet
    assert (out["crossed"], out["at_risk"]) == (["B", "C"], 3)
    snap = feed.snapshot()
    assert [r["customer_id"] for r in snap["at_risk"]] == ["B", "C"]  # the oldest crossing (A) is dropped from the display
    assert (snap["dropped_total"], snap["at_risk_total"], snap["crossed_total"]) == (1, 3, 3)
    feed.ingest(events(("C", at(23, 1), 1.0)), None, at(23, 1))  # C recovers; A, still at risk, does not cross again
    out = feed.ingest(None, None, at(25))  # D crosses (17/30)
    assert (out["crossed"], out["at_risk"]) == (["D"], 3)
    assert [r["customer_id"] for r in feed.snapshot()["at_risk"]] == ["D", "B"]
    # equal crossing instants: the higher probability first
    scorer2 = QuietScorer()
    feed2 = LiveFeed(scorer2, 0.5)
    feed2.ingest(events(("A", at(3), 1.0), ("B", at(0), 1.0)), None, at(3))
    feed2.ingest(None, None, at(30))
    rows = feed2.snapshot()["at_risk"]
    assert [(r["customer_id"], round(r["probability"], 3)) for r in rows] == [("B", 1.0), ("A", 0.9)]
    assert len(feed2.snapshot(limit=1)["at_risk"]) == 1


def test_the_snapshot_is_json_safe_and_a_missing_probability_changes_nothing():
    answers = iter([0.7, np.nan, 0.1])

    def score(transactions, customers, as_of):
        return pd.DataFrame({"customer_id": ["C1"], "churn_probability": [next(answers)], "churn_risk_band": [np.nan],
                             "churn_reasons": [None], "churn_counterfactual_probability": [np.float32("nan")],
                             "churn_model": [pd.NA]})

    feed = LiveFeed(score, 0.6)
    assert feed.snapshot() == {"as_of": None, "threshold": 0.6, "customers_known": 0, "events": 0, "crossed_total": 0,
                               "recovered_total": 0, "dropped_total": 0, "at_risk_total": 0, "at_risk": []}
    assert feed.ingest(events(("C1", at(0), 1.0)), None, at(0))["crossed"] == ["C1"]
    snap = feed.snapshot()
    text = json.dumps(snap, allow_nan=False)  # raises on NaN
    row = json.loads(text)["at_risk"][0]
    assert row["probability"] == 0.7 and row["risk_band"] is None and row["counterfactual_probability"] is None
    assert row["model"] is None and row["reason_1"] is None and isinstance(row["scored_at"], str)
    out = feed.ingest(events(("C1", at(0, 13), 1.0)), None, at(0, 13))  # NaN: no news, C1 stays
    assert (out["scored"], out["crossed"], out["recovered"], out["at_risk"]) == (1, [], [], 1)
    assert feed.ingest(events(("C1", at(0, 14), 1.0)), None, at(0, 14))["recovered"] == ["C1"]
    feed.reset()
    assert feed.snapshot()["events"] == 0 and feed.snapshot()["as_of"] is None


def test_a_score_without_the_churn_columns_is_an_error_and_a_retry_rescores():
    feed = LiveFeed(lambda t, c, a: pd.DataFrame({"customer_id": ["C1"], "probability": [0.9]}), 0.5)
    with pytest.raises(ValueError, match="the score function returned no churn_probability column"):
        feed.ingest(events(("C1", at(0), 1.0)), None, at(0))
    feed.score = QuietScorer()
    out = feed.ingest(events(("C1", at(0), 1.0)), None, at(0))  # the re-sent batch: stored already, scored now
    assert (out["received"], out["duplicates"], out["scored"]) == (0, 1, 1)
    with pytest.raises(ValueError, match=r"threshold must be in \(0, 1\]"):
        LiveFeed(QuietScorer(), 0.0)


def test_the_history_it_passes_is_what_the_batch_feature_builder_reads(small_frames):
    """The feed's frame through the real feature builder gives the batch's features for the same rows."""
    tx = small_frames["transactions"]
    customers = small_frames["customers"]
    ids = list(customers["customer_id"].iloc[:40])
    tx = tx[tx["customer_id"].isin(ids)]
    as_of = pd.Timestamp("2026-06-30T23:59:59Z")
    seen: list[pd.DataFrame] = []

    def score(transactions, profiles, when):
        features = build_customer_features(transactions, profiles, when).frame
        seen.append(features)
        return pd.DataFrame({"customer_id": features["customer_id"], "churn_probability": np.clip(features["recency"] / 60, 0, 1)})

    feed = LiveFeed(score, 0.5)
    half = len(tx) // 2  # two batches, the second re-sending a few rows of the first
    feed.ingest(tx.iloc[:half], customers[customers["customer_id"].isin(ids)], as_of, rescore=False)
    feed.ingest(tx.iloc[half - 5:], None, as_of)
    expected = build_customer_features(tx, customers[customers["customer_id"].isin(ids)], as_of).frame
    got = seen[-1].set_index("customer_id").sort_index()
    expected = expected.set_index("customer_id").sort_index()
    assert len(got) == len(expected) == tx["customer_id"].nunique()
    for column in ("recency", "frequency", "T", "monetary", "total_spend", "Avg_Credit_Limit"):
        np.testing.assert_allclose(got[column].astype(float), expected[column].astype(float), err_msg=column)


def test_concurrent_ingests_and_snapshots_lose_nothing(scorer):
    feed = LiveFeed(scorer, 0.5)
    feed.ingest(None, None, at(0))
    errors: list[BaseException] = []
    stop = threading.Event()

    def producer(k: int) -> None:
        try:
            for i in range(40):
                feed.ingest(events((f"C{k}", at(0, 0) + pd.Timedelta(seconds=i), float(i))), None, at(0))
        except BaseException as err:  # reported by the assertion below
            errors.append(err)

    def reader() -> None:
        while not stop.is_set():
            json.dumps(feed.snapshot(), allow_nan=False)

    readers = [threading.Thread(target=reader) for _ in range(2)]
    producers = [threading.Thread(target=producer, args=(k,)) for k in range(6)]
    for t in readers + producers:
        t.start()
    for t in producers:
        t.join(timeout=30)
    stop.set()
    for t in readers:
        t.join(timeout=30)
    assert errors == []
    snap = feed.snapshot()
    assert (snap["events"], snap["customers_known"]) == (240, 6)
    assert len(scorer.calls) == 240  # one call per ingest, each with its own customer only (same day)


def test_the_page_escapes_every_value_and_refreshes():
    snap = {"as_of": "2026-05-21T08:00:00+00:00", "threshold": 0.5, "customers_known": 3, "events": 17, "crossed_total": 2,
            "recovered_total": 1, "dropped_total": 0, "at_risk": [
                {"customer_id": "<script>alert(1)</script>", "probability": 0.87654, "risk_band": "high",
                 "reasons": "recency 40 days: +1.20 & <b>more</b>", "counterfactual": 'one "purchase"', "crossed_at": "2026-05-21T08:00:00+00:00"},
                {"customer_id": "C2", "probability": 0.5, "risk_band": "high", "reasons": None, "counterfactual": None,
                 "crossed_at": "2026-05-20T08:00:00+00:00"}]}
    page = render_at_risk(snap, refresh_seconds=7)
    assert '<meta http-equiv="refresh" content="7">' in page
    assert "<title>customer_intel - live at-risk feed</title>" in page
    assert "<script>" not in page and '<tr data-customer-id="&lt;script&gt;alert(1)&lt;/script&gt;">' in page
    assert "<td>&lt;script&gt;alert(1)&lt;/script&gt;</td>" in page
    assert "+1.20 &amp; &lt;b&gt;more&lt;/b&gt;" in page and "one &quot;purchase&quot;" in page
    assert '<td class="num">0.877</td>' in page and '<td class="num">0.500</td>' in page
    assert page.count("<tr data-customer-id=") == 2 and '<table id="at-risk">' in page
    assert '<td class="when"><time datetime="2026-05-20T08:00:00+00:00">2026-05-20 08:00:00 UTC</time></td>' in page
    odd = render_at_risk({**snap, "at_risk": [{**snap["at_risk"][1], "crossed_at": "<b>soon</b>"}]})
    assert '<td class="when">&lt;b&gt;soon&lt;/b&gt;</td>' in odd  # not an instant: shown as text, escaped
    assert "simulated as of 2026-05-21T08:00:00+00:00 · threshold 0.500 · customers known 3 · events 17 · crossed 2 · recovered 1" in page
    empty = render_at_risk({"as_of": None, "threshold": 0.5, "at_risk": []})
    assert "No customer is at risk right now." in empty and "data-customer-id" not in empty
    assert '<meta http-equiv="refresh" content="5">' in empty and "simulated as of no event yet" in empty
