"""The live at-risk feed end to end: the streaming simulator replays the small bank into a real API server on 127.0.0.1,
and the feed it leaves is checked against ``/predict_churn`` and the batch's ``scored_customers``, then read as a person
sees it in headless Chromium (Debian's ``chromium`` and ``chromium-driver``), following the stream as it moves on.

What is comparable: the feed scores at its clock, an instant, but the feature builder works in whole UTC days (``as_of``
is normalised to the day). So the feed's row for a customer at clock ``T`` is ``/predict_churn`` with ``as_of`` = ``T``'s
day and the customer's events up to ``T`` - the events the stream has delivered by then - not its events of the whole
day, and not a score "at ``T``": ten hours into a day, that day already counts as a whole day of quiet. The simulator's
start tick (the replay's first day at midnight, after the history) scores everyone first, so a customer already at risk
when the replay starts shows ``crossed_at`` = that instant, and only the replay's own crossings carry a later one. At the replay's
end tick (the end day's last microsecond) every event of the end day is in, so the feed is also the nightly batch's
``scored_customers`` of that day.

The screenshot of the page is left in the test's tmp folder (``at_risk.png``).
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
import time

import pandas as pd
import pytest
import requests

from customer_intel.resources.warehouse import Warehouse
from customer_intel.synthetic.generator import generate_bank
from customer_intel_tests.browser import browser_or_skip, headless_chromium
from customer_intel_tests.conftest import SMALL_END_DATE, restore_signals
from customer_intel_tests.serving.conftest import PASSWORD, USER, ApiServer, api_env

pytestmark = pytest.mark.e2e

CUSTOMERS, SEED = 600, 7  # the small bank of the shared fixtures: the batch scored the same customers
REPLAY_START = "2026-06-21"  # ten replay days (534 events); the 29,381 before load as history
START_TICK = "2026-06-21T00:00:00+00:00"  # the simulator's first scoring batch, right after the history: everyone scored
END_TICK = "2026-06-30T23:59:59.999999+00:00"  # the simulator's last batch: every customer rescored at the end day's close
BATCH = 50
REFRESH_SECONDS = 2
NEXT_MORNING = "2026-07-01T10:00:00+00:00"  # the stream moves on: the clock ten hours into the day after the bank's end
SIMULATOR_TIMEOUT_SECONDS = 120
WAIT = 60  # seconds the page may take to show a state on a busy 2-core box


@pytest.fixture(scope="module")
def api(scored_day, tmp_path_factory):
    root, _, warehouse = scored_day
    folder = tmp_path_factory.mktemp("at_risk_api")
    env = api_env(root, warehouse, CUSTOMER_INTEL_API_EVENTS_RATE_LIMIT="100000/minute",
                  CUSTOMER_INTEL_API_PAGE_REFRESH_SECONDS=str(REFRESH_SECONDS),
                  CUSTOMER_INTEL_API_AUDIT_DIR=str(folder / "audit"), CUSTOMER_INTEL_API_AUDIT_URI=str(folder / "audit_shipped"))
    server = ApiServer(env, folder / "server.log").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def bank() -> dict[str, pd.DataFrame]:
    return generate_bank(n_customers=CUSTOMERS, seed=SEED, end_date=SMALL_END_DATE).frames()


@pytest.fixture(scope="module")
def replay(api):
    """The simulator run in a subprocess against the API, after a stale stream left the feed's clock a month ahead (only the
    simulator's reset lets the replay in): (the finished process, its seconds, the feed right after it as JSON)."""
    stale = api.post("/events", {"as_of": "2026-08-01T00:00:00Z", "rescore": False,
                                 "transactions": [{"customer_id": "STALE-1", "ts": "2026-07-31T12:00:00Z", "amount": 5.0}]})
    assert stale.status_code == 200, stale.text
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CUSTOMER_INTEL_", "MLFLOW_"))}
    env.update({"CUSTOMER_INTEL_API_PASSWORD": PASSWORD, "OMP_NUM_THREADS": "1"})
    command = [sys.executable, "-m", "customer_intel.serving.simulate", "--url", api.url, "--user", USER,
               "--customers", str(CUSTOMERS), "--seed", str(SEED), "--end", SMALL_END_DATE, "--start", REPLAY_START,
               "--rate", "100000", "--batch", str(BATCH)]
    began = time.monotonic()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=SIMULATOR_TIMEOUT_SECONDS,
                          preexec_fn=restore_signals)
    seconds = time.monotonic() - began
    assert done.returncode == 0, done.stdout + done.stderr
    feed = api.get("/at-risk")
    assert feed.status_code == 200, feed.text
    return done, seconds, feed.json()


def raw_request(bank: dict[str, pd.DataFrame], customer_id: str, clock: str, extra: tuple[dict, ...] = ()) -> dict:
    """``/predict_churn`` from raw rows as the feed saw the customer at ``clock``: its events up to that instant (``extra``:
    events the test streamed itself), its profile, and ``as_of`` = the clock's UTC day."""
    instant = pd.Timestamp(clock)
    tx = bank["transactions"]
    rows = tx.loc[(tx["customer_id"] == customer_id) & (tx["ts"] <= instant)]
    profile = bank["customers"].set_index("customer_id").loc[customer_id].to_dict()
    return {"customer_id": customer_id, "as_of": str(instant.tz_convert("UTC").date()),
            "transactions": [{"ts": r.ts.isoformat(), "amount": float(r.amount), "category": r.category, "channel": r.channel}
                             for r in rows.itertuples()] + [{k: v for k, v in e.items() if k != "customer_id"} for e in extra],
            "profile": {k: (float(v) if k == "Avg_Credit_Limit" else int(v)) for k, v in profile.items()}}


def predict(api: ApiServer, body: dict) -> dict:
    response = api.post("/predict_churn", body)
    assert response.status_code == 200, response.text
    return response.json()


def assert_row_is(row: dict, answer: dict) -> None:
    """A feed row says what ``/predict_churn`` answered: probability, band, reasons, counterfactual and model."""
    scores = answer["scores"]
    assert row["probability"] == pytest.approx(answer["probability"], rel=1e-9), row["customer_id"]
    assert (row["risk_band"], row["reasons"], row["counterfactual"], row["model"]) == (
        answer["risk_band"], scores["churn_reasons"], answer["counterfactual"], answer["model"]["label"])
    assert [row[f"reason_{k}"] for k in (1, 2, 3) if row[f"reason_{k}"]] == [r["feature"] for r in answer["reasons"]]


def test_the_replay_leaves_the_customers_over_the_champions_threshold_with_the_batch_numbers(api, bank, replay, scored_day):
    done, seconds, feed = replay
    tx = bank["transactions"]
    start = pd.Timestamp(REPLAY_START, tz="UTC")
    history = int((tx["ts"] < start).sum())
    events = len(tx) - history
    assert (history, events) == (29_381, 534)
    lines = done.stdout.splitlines()
    assert lines[:2] == [f"feed reset: DELETE {api.url}/at-risk",
                         f"history loaded: {history} events before {REPLAY_START} and {CUSTOMERS} profiles in 7 posts"]
    started = re.fullmatch(rf"at risk at the start: (\d+) customers \(as of {re.escape(START_TICK)}\)", lines[2])
    assert started, lines[2]
    summary = re.fullmatch(rf"done: {events} events in {-(-events // BATCH)} batches after {history} history events; "
                           rf"{started[1]} at risk at the start, (\d+) crossings and (\d+) recoveries during the replay, (\d+) at risk "
                           r"now; [\d.]+ s \([\d.]+ events/s\), 0 rate-limit retries; the feed was reset first", lines[-1])
    assert summary, lines[-1]
    assert done.stderr == ""

    # the stale stream is gone: the feed holds the bank's every event once, at the end tick's clock
    assert (feed["as_of"], feed["customers_known"], feed["events"]) == (END_TICK, CUSTOMERS, len(tx))
    at_start, crossed, recovered, at_risk = int(started[1]), *(int(n) for n in summary.groups())
    # the feed counts the start tick's crossings (everyone at risk at the start, on a fresh feed) and the replay's; the summary
    # tells them apart
    assert (feed["crossed_total"], feed["recovered_total"], feed["at_risk_total"]) == (at_start + crossed, recovered, at_risk)
    assert at_risk == at_start + crossed - recovered and at_start > 100 and crossed > 0
    rows = feed["at_risk"]
    assert feed["dropped_total"] == 0 and len(rows) == feed["at_risk_total"] > 100
    threshold = predict(api, raw_request(bank, rows[0]["customer_id"], END_TICK))["threshold"]  # the churn champion's
    assert feed["threshold"] == threshold and 0 < threshold < 1
    assert all(r["probability"] >= threshold and r["reasons"].strip() and r["reason_1"] for r in rows)
    order = [(r["crossed_at"], r["probability"]) for r in rows]
    assert order == sorted(order, key=lambda o: (pd.Timestamp(o[0]), o[1]), reverse=True)  # latest crossing first

    # at risk since the start: crossed_at is the start tick's instant, and the history alone (as of the start day) put them
    # over the threshold; every other row crossed during the replay, after the start, and was below it then
    since_start = [r for r in rows if r["crossed_at"] == START_TICK]
    in_replay = [r for r in rows if r["crossed_at"] != START_TICK]
    assert 0 < len(since_start) <= at_start and 0 < len(in_replay) <= crossed
    assert int((tx["ts"] == pd.Timestamp(START_TICK)).sum()) == 0  # no event at the start instant: no replay batch's clock is it
    assert all(pd.Timestamp(START_TICK) < pd.Timestamp(r["crossed_at"]) <= pd.Timestamp(END_TICK) for r in in_replay)
    for row in (since_start[0], since_start[-1]):
        assert predict(api, raw_request(bank, row["customer_id"], START_TICK))["probability"] >= threshold, row["customer_id"]
    for row in (in_replay[0], in_replay[-1]):
        assert predict(api, raw_request(bank, row["customer_id"], START_TICK))["probability"] < threshold, row["customer_id"]

    # a feed row at the end tick is /predict_churn of the customer's raw rows as of the end day (every event of it is in)
    for row in (rows[0], rows[len(rows) // 2], rows[-1]):
        assert_row_is(row, predict(api, raw_request(bank, row["customer_id"], END_TICK)))

    # ... and the nightly batch's scored_customers of that day: the same customers at risk, with the same numbers
    scored = Warehouse(root=str(scored_day[2])).read_date("scored_customers", SMALL_END_DATE).set_index("customer_id")
    over = scored.loc[scored["churn_probability"] >= threshold]
    assert sorted(r["customer_id"] for r in rows) == sorted(over.index)
    for row in rows:
        batch = over.loc[row["customer_id"]]
        assert row["probability"] == pytest.approx(batch["churn_probability"], rel=1e-9), row["customer_id"]
        assert (row["risk_band"], row["reasons"], row["counterfactual"], row["model"]) == (
            batch["churn_risk_band"], batch["churn_reasons"], batch["churn_counterfactual"], batch["churn_model"])
    print(f"\nreplay: {events} events in {-(-events // BATCH)} batches after {history} history events, {seconds:.1f} s "
          f"(simulator process); {at_start} at risk at the start, {crossed} crossings in the replay, {len(rows)} at risk at the end")


@pytest.fixture(scope="module")
def next_morning(api, bank, replay):
    """The stream moves on to ten o'clock of the next day with one purchase of the latest crossing: (its customer, the purchase,
    the /events answer, the feed before, the feed after)."""
    before = replay[2]
    buyer = before["at_risk"][0]["customer_id"]
    purchase = {"customer_id": buyer, "ts": "2026-07-01T09:30:00+00:00", "amount": 42.0, "category": "grocery", "channel": "online"}
    answer = api.post("/events", {"as_of": NEXT_MORNING, "transactions": [purchase]})
    assert answer.status_code == 200, answer.text
    after = api.get("/at-risk").json()
    return buyer, purchase, answer.json(), before, after


def test_ten_hours_into_a_day_the_feed_scores_as_of_that_whole_day_from_the_events_so_far(api, bank, next_morning):
    buyer, purchase, answer, before, after = next_morning
    assert (answer["received"], answer["scored"], answer["as_of"]) == (1, CUSTOMERS, NEXT_MORNING)  # a new day: everyone rescored
    assert answer["recovered"] == [buyer] and buyer not in {r["customer_id"] for r in after["at_risk"]}
    bought = predict(api, raw_request(bank, buyer, NEXT_MORNING, (purchase,)))
    assert bought["probability"] < after["threshold"] <= next(r["probability"] for r in before["at_risk"] if r["customer_id"] == buyer)

    # the customers who crossed at ten o'clock did so on the day alone: below the threshold as of the end day, over it as
    # of the next day with the very same events
    assert answer["crossed"], answer
    crossed = {r["customer_id"]: r for r in after["at_risk"] if r["crossed_at"] == NEXT_MORNING}
    assert sorted(crossed) == sorted(answer["crossed"])
    for customer_id, row in crossed.items():
        assert_row_is(row, predict(api, raw_request(bank, customer_id, NEXT_MORNING)))
        assert predict(api, raw_request(bank, customer_id, END_TICK))["probability"] < after["threshold"] <= row["probability"]
    # and a customer still at risk from the replay: the next day's numbers (risk rose with a day of quiet), its crossing kept
    kept = next(r for r in after["at_risk"] if r["crossed_at"] < NEXT_MORNING)
    assert_row_is(kept, predict(api, raw_request(bank, kept["customer_id"], NEXT_MORNING)))
    was = next(r for r in before["at_risk"] if r["customer_id"] == kept["customer_id"])
    assert kept["crossed_at"] == was["crossed_at"] and kept["probability"] > was["probability"]


PAGE_STATE = """
const summary = document.querySelector('p.summary');
if (!summary || document.readyState !== 'complete') return null;
return {summary: summary.textContent, marked: document.documentElement.dataset.marked === 'yes',
        rows: Array.from(document.querySelectorAll('table#at-risk tr[data-customer-id]'),
                         tr => [tr.dataset.customerId, ...Array.from(tr.cells, td => td.textContent), tr.querySelector('time').dateTime,
                                tr.cells[2].className])};
"""


def page_state(driver) -> dict | None:
    """One read of one loaded document (the page reloads itself every few seconds): its summary line, whether it is the
    document the test marked, and its feed rows as the browser has them - the row's customer id, every cell's text, the
    crossing's exact instant (the ``datetime`` of its ``<time>``) and the band cell's class. None while a reload is in progress."""
    return driver.execute_script(PAGE_STATE)


def expected_rows(feed: dict) -> list[list[str]]:
    """The JSON feed's rows as the page must show them (probability to 3 decimals, the crossing to the second in UTC)."""
    return [[r["customer_id"], r["customer_id"], f"{r['probability']:.3f}", r["risk_band"], r["reasons"], r["counterfactual"] or "",
             pd.Timestamp(r["crossed_at"]).strftime("%Y-%m-%d %H:%M:%S UTC"), r["crossed_at"], f"band-{r['risk_band']}"] for r in feed["at_risk"]]


def test_the_page_in_chromium_shows_the_feed_and_refreshes_itself_as_the_stream_moves_on(api, next_morning, tmp_path):
    browser_or_skip()
    from selenium.common.exceptions import JavascriptException, WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    with headless_chromium("1400,1000") as driver:
        # HTTP Basic credentials on every request of the page, its own refreshes included (no login prompt in headless)
        token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {"Authorization": f"Basic {token}"}})
        wait = WebDriverWait(driver, WAIT, poll_frequency=0.1, ignored_exceptions=(JavascriptException, WebDriverException))

        # no ?format: the browser's own Accept (text/html first) gets the page, not the JSON
        driver.get(f"{api.url}/at-risk")
        feed = api.get("/at-risk").json()
        assert feed["as_of"] == NEXT_MORNING
        assert driver.title == "customer_intel - live at-risk feed"
        state = wait.until(page_state)
        assert state["summary"].startswith(f"simulated as of {NEXT_MORNING} · threshold {feed['threshold']:.3f}")
        assert state["rows"] == expected_rows(feed)
        assert driver.execute_script("return document.querySelector('meta[http-equiv=refresh]').content") == str(REFRESH_SECONDS)

        # the stream's next day: the page reloads itself (a new document, so the mark is gone) and shows the new state
        driver.execute_script("document.documentElement.dataset.marked = 'yes';")
        tomorrow = "2026-07-02T08:00:00+00:00"
        answer = api.post("/events", {"as_of": tomorrow, "transactions": []})
        assert answer.status_code == 200 and answer.json()["scored"] == CUSTOMERS, answer.text
        posted = time.monotonic()
        state = wait.until(lambda d: (s := page_state(d)) and not s["marked"] and tomorrow in s["summary"] and s)
        shown_after = time.monotonic() - posted
        feed = api.get("/at-risk").json()
        assert state["summary"].startswith(f"simulated as of {tomorrow} ·")
        assert f"crossed {feed['crossed_total']} · recovered {feed['recovered_total']}" in state["summary"]
        rows = state["rows"]
        assert rows == expected_rows(feed)
        crossed = answer.json()["crossed"]
        assert crossed and sorted(r[0] for r in rows[: len(crossed)]) == sorted(crossed)  # the day's crossings on top
        assert {r[7] for r in rows[: len(crossed)]} == {tomorrow} and rows[len(crossed)][7] < tomorrow
        driver.save_screenshot(str(tmp_path / "at_risk.png"))
        print(f"\npage: {len(rows)} rows; the new state shown {shown_after:.1f} s after the post (refresh every {REFRESH_SECONDS} s)")
    assert shown_after < REFRESH_SECONDS + 10


def test_without_credentials_the_feed_is_401_in_every_form(api):
    for auth in (None, (USER, "wrong-password-123")):
        for headers, query in (({"Accept": "text/html"}, ""), ({}, "?format=html"), ({"Accept": "application/json"}, "")):
            response = requests.get(f"{api.url}/at-risk{query}", auth=auth, headers=headers, timeout=10)
            assert response.status_code == 401, (auth, headers, query, response.text)
            assert response.headers["WWW-Authenticate"].startswith("Basic")
            assert response.json() == {"detail": "missing or wrong credentials (HTTP Basic Auth)"}
            assert "<table" not in response.text
        response = requests.delete(f"{api.url}/at-risk", auth=auth, timeout=10)  # nor can it be reset
        assert response.status_code == 401
    assert api.get("/at-risk").json()["customers_known"] == CUSTOMERS
