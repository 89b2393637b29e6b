"""The streaming simulator against a stand-in API on 127.0.0.1: order, clock, pacing, auth and rate-limit handling."""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pandas as pd
import pytest

from customer_intel.serving import simulate
from customer_intel.serving.live import LiveFeed
from customer_intel.synthetic.generator import generate_bank
from customer_intel_tests.conftest import free_port

END = "2026-06-30"


def quiet_score(transactions, customers, as_of):
    last = transactions.groupby("customer_id")["ts"].max()
    quiet = (as_of.normalize() - last.dt.normalize()).dt.days.to_numpy()
    return pd.DataFrame({"customer_id": last.index, "churn_probability": np.clip(quiet / 30, 0, 1), "churn_model": "fake"})


class StandIn:
    """A stand-in for the API's ``POST /events`` and ``DELETE /at-risk``: records every POST in ``requests`` (with the JSON it
    answered) and every DELETE in ``resets``, and answers from a real LiveFeed (fake scorer).

    ``script`` holds (status, headers, body) answers given first, one per POST, before the feed answers; ``reset_script``
    the same for the DELETEs.
    """

    def __init__(self, script=(), reset_script=()):
        self.requests: list[dict] = []
        self.resets: list[dict] = []
        self.script = list(script)
        self.reset_script = list(reset_script)
        self.feed = LiveFeed(quiet_score, 0.5)
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # http.server's name for the POST handler
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                record = {"path": self.path, "body": body, "at": time.monotonic(), "authorization": self.headers.get("Authorization")}
                stand_in.requests.append(record)
                status, headers, record["answer"] = stand_in.script.pop(0) if stand_in.script else stand_in.answer(body)
                self.reply(status, headers, record["answer"])

            def do_DELETE(self):
                stand_in.resets.append({"path": self.path, "at": time.monotonic(), "events_before": len(stand_in.requests),
                                        "authorization": self.headers.get("Authorization")})
                if stand_in.reset_script:
                    self.reply(*stand_in.reset_script.pop(0))
                else:
                    stand_in.feed.reset()
                    self.reply(200, {}, {"request_id": "r", "reset": True})

            def reply(self, status, headers, answer):
                data = json.dumps(answer).encode()
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def answer(self, body: dict):
        transactions = pd.DataFrame(body["transactions"]) if body["transactions"] else None
        customers = pd.DataFrame(body["customers"]) if body["customers"] else None
        try:
            return 200, {}, self.feed.ingest(transactions, customers, body["as_of"], rescore=body["rescore"])
        except ValueError as err:
            return 422, {}, {"detail": str(err)}

    def bodies(self) -> list[dict]:
        return [r["body"] for r in self.requests]


@pytest.fixture
def stand_in():
    servers: list[StandIn] = []

    def make(script=(), reset_script=()) -> StandIn:
        server = StandIn(script, reset_script)
        server.thread.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.server.shutdown()
        server.server.server_close()
        server.thread.join(timeout=5)


@pytest.fixture(autouse=True)
def no_credentials(monkeypatch):
    monkeypatch.delenv(simulate.PASSWORD_ENV, raising=False)
    monkeypatch.delenv(simulate.USER_ENV, raising=False)


def argv(url: str, *extra: str) -> list[str]:
    return ["--url", url, "--customers", "30", "--end", END, "--rate", "100000", *extra]


def at_risk_as_of(frames: dict, start: pd.Timestamp) -> list[str]:
    """The customers quiet_score puts at risk (15 days or more without a purchase) from the history before ``start``."""
    history = frames["transactions"].loc[frames["transactions"]["ts"] < start]
    quiet = (start - history.groupby("customer_id")["ts"].max().dt.normalize()).dt.days
    return sorted(quiet.index[quiet >= 15])


def test_history_then_the_start_tick_then_the_replay_in_time_order_then_the_end_tick(stand_in, capsys):
    server = stand_in()
    assert simulate.main(argv(server.url, "--start", "2026-06-10", "--batch", "5", "--history-chunk", "400",
                              "--print-every", "4")) == 0
    frames = generate_bank(n_customers=30, seed=7, end_date=END).frames()
    start = pd.Timestamp("2026-06-10", tz="UTC")
    in_history = int((frames["transactions"]["ts"] < start).sum())
    in_replay = len(frames["transactions"]) - in_history
    bodies = server.bodies()
    assert {r["path"] for r in server.requests} == {"/events"}
    history = [b for b in bodies if not b["rescore"]]
    assert bodies[: len(history)] == history  # every unscored body comes before the first scored one
    assert len(history) == 1 + -(-in_history // 400)  # the 30 profiles, then the history in chunks of 400
    assert len(history[0]["customers"]) == 30 and set(history[0]["customers"][0]) == {"customer_id", *simulate.PROFILE_COLUMNS}
    assert sum(len(b["transactions"]) for b in history) == in_history
    assert all(b["as_of"] == "2026-06-10T00:00:00+00:00" for b in history)
    assert all(pd.Timestamp(t["ts"]) < start for b in history for t in b["transactions"])
    tick, *replay, end_tick = bodies[len(history):]
    # the start tick right after the history, at the history's instant, once; the end tick last
    assert tick == {"as_of": "2026-06-10T00:00:00+00:00", "rescore": True, "transactions": [], "customers": []}
    assert end_tick == {"as_of": "2026-06-30T23:59:59.999999+00:00", "rescore": True, "transactions": [], "customers": []}
    assert [b for b in bodies if not b["transactions"] and not b["customers"]] == [tick, end_tick]
    assert sum(len(b["transactions"]) for b in replay) == in_replay and len(replay) == -(-in_replay // 5)
    assert all(len(b["transactions"]) == 5 for b in replay[:-1]) and in_replay > 20
    stamps = [pd.Timestamp(t["ts"]) for b in replay for t in b["transactions"]]
    assert stamps == sorted(stamps) and stamps[0] > start
    clocks = [pd.Timestamp(b["as_of"]) for b in bodies]
    assert clocks == sorted(clocks)  # never backwards
    assert all(pd.Timestamp(b["as_of"]) >= max(pd.Timestamp(t["ts"]) for t in b["transactions"]) for b in replay)
    assert all(pd.Timestamp(b["as_of"]) == pd.Timestamp(b["transactions"][-1]["ts"]) for b in replay)
    snap = server.feed.snapshot()  # the stand-in's real feed took every body
    assert (snap["events"], snap["customers_known"]) == (len(frames["transactions"]), 30)
    at_start = at_risk_as_of(frames, start)
    answers = [r["answer"] for r in server.requests[len(history) + 1:]]  # the replay's: its batches and the end tick
    crossed, recovered = sum(len(a["crossed"]) for a in answers), sum(len(a["recovered"]) for a in answers)
    assert len(at_start) >= 5 and crossed >= 5
    out = capsys.readouterr().out
    assert out.splitlines()[:3] == [f"feed reset: DELETE {server.url}/at-risk",
                                    f"history loaded: {in_history} events before 2026-06-10 and 30 profiles in {len(history)} posts",
                                    f"at risk at the start: {len(at_start)} customers (as of 2026-06-10T00:00:00+00:00)"]
    assert f"batch 4: 20 events sent, clock {replay[3]['as_of']}, at risk " in out
    assert (f"done: {in_replay} events in {len(replay)} batches after {in_history} history events; {len(at_start)} at risk at the "
            f"start, {crossed} crossings and {recovered} recoveries during the replay, {snap['at_risk_total']} at risk now; ") in out
    assert snap["at_risk_total"] == len(at_start) + crossed - recovered
    assert (snap["crossed_total"], snap["recovered_total"]) == (len(at_start) + crossed, recovered)  # the start tick's + the replay's


def test_customers_at_risk_at_the_start_cross_at_the_start_and_the_replay_counts_only_its_own_crossings(stand_in):
    server = stand_in()
    summary = simulate.run(simulate.parser().parse_args(argv(server.url, "--start", "2026-06-10", "--batch", "2")))
    frames = generate_bank(n_customers=30, seed=7, end_date=END).frames()
    start = pd.Timestamp("2026-06-10", tz="UTC")
    at_start = at_risk_as_of(frames, start)
    first = next(i for i, r in enumerate(server.requests) if r["body"]["rescore"])
    tick, replay = server.requests[first], server.requests[first + 1:]
    known = frames["transactions"].loc[frames["transactions"]["ts"] < start, "customer_id"].nunique()
    # the start tick scored every customer known at the start (a full rescore: the history was loaded unscored)
    assert (tick["answer"]["scored"], sorted(tick["answer"]["crossed"]), tick["answer"]["recovered"]) == (known, at_start, [])
    assert tick["answer"]["at_risk"] == summary.at_risk_at_start == len(at_start)
    # the first replay batch (two events of the start day) no longer rescores everyone: only the customers it touches
    assert pd.Timestamp(replay[0]["body"]["as_of"]).normalize() == start
    assert replay[0]["answer"]["scored"] == len({t["customer_id"] for t in replay[0]["body"]["transactions"]}) < known
    assert summary.crossed == sum(len(r["answer"]["crossed"]) for r in replay) >= 5
    assert summary.recovered == sum(len(r["answer"]["recovered"]) for r in replay)
    assert summary.at_risk == replay[-1]["answer"]["at_risk"] == summary.at_risk_at_start + summary.crossed - summary.recovered

    # the feed: a customer at risk since the start shows crossed_at = the start instant; every other row crossed in the
    # replay, at the clock of the last replay batch that crossed it, after the start
    last_crossing = {cid: r["body"]["as_of"] for r in replay for cid in r["answer"]["crossed"]}
    recovered = {cid for r in replay for cid in r["answer"]["recovered"]}
    rows = {r["customer_id"]: r["crossed_at"] for r in server.feed.snapshot()["at_risk"]}
    since_start = {cid for cid, at in rows.items() if at == "2026-06-10T00:00:00+00:00"}
    assert since_start == set(at_start) - recovered - set(last_crossing) and len(since_start) >= 3
    assert {cid: pd.Timestamp(at) for cid, at in rows.items() if cid not in since_start} == {
        cid: pd.Timestamp(at) for cid, at in last_crossing.items() if cid in rows}
    assert all(pd.Timestamp(at) > start for cid, at in rows.items() if cid not in since_start)
    assert len(rows) == summary.at_risk and len(rows) - len(since_start) >= 3


def test_the_start_tick_comes_even_when_the_replay_sends_nothing(stand_in, capsys):
    server = stand_in()
    assert simulate.main(argv(server.url, "--start", "2026-06-10", "--max-events", "0")) == 0
    at_start = len(at_risk_as_of(generate_bank(n_customers=30, seed=7, end_date=END).frames(), pd.Timestamp("2026-06-10", tz="UTC")))
    assert [b for b in server.bodies() if b["rescore"]] == [
        {"as_of": "2026-06-10T00:00:00+00:00", "rescore": True, "transactions": [], "customers": []}]
    out = capsys.readouterr().out
    assert f"; {at_start} at risk at the start, 0 crossings and 0 recoveries during the replay, {at_start} at risk now; " in out
    assert out.rstrip().endswith("; stopped early: --max-events 0 reached (no end-of-replay rescore)")


def test_the_replay_is_paced_to_the_rate_and_stops_at_max_events(stand_in, capsys):
    server = stand_in()
    assert simulate.main(argv(server.url, "--rate", "200", "--batch", "25", "--max-events", "90")) == 0
    tick, *replay = [r for r in server.requests if r["body"]["rescore"]]
    assert tick["body"]["transactions"] == [] and tick["body"]["as_of"] == "2026-05-01T00:00:00+00:00"  # --end minus 60 days
    assert [len(r["body"]["transactions"]) for r in replay] == [25, 25, 25, 15]  # no end tick: the window was not done
    assert replay[-1]["body"]["as_of"] == replay[-1]["body"]["transactions"][-1]["ts"]
    assert replay[-1]["at"] - tick["at"] >= 0.40  # 90 events at 200/s: the last batch due 0.45 s after the start tick's answer
    assert "stopped early: --max-events 90 reached (no end-of-replay rescore)" in capsys.readouterr().out
    server2 = stand_in()
    began = time.monotonic()
    assert simulate.main(argv(server2.url, "--rate", "200", "--batch", "25", "--max-events", "100")) == 0
    tick, *replay = [r for r in server2.requests if r["body"]["rescore"]]
    assert sum(len(r["body"]["transactions"]) for r in replay) == 100 and tick["body"]["transactions"] == []
    assert replay[-1]["at"] - replay[0]["at"] >= 0.45 - 0.125 - 0.01  # batches due at 0.125, 0.25, 0.375, 0.5 s
    assert replay[-1]["at"] - tick["at"] >= 0.45
    assert time.monotonic() - began < 10


def test_credentials_come_from_the_environment(stand_in, monkeypatch):
    server = stand_in()
    monkeypatch.setenv(simulate.PASSWORD_ENV, "s3cret")
    monkeypatch.setenv(simulate.USER_ENV, "crm")
    assert simulate.main(argv(server.url, "--max-events", "5")) == 0
    expected = "Basic " + base64.b64encode(b"crm:s3cret").decode()
    assert {r["authorization"] for r in server.requests + server.resets} == {expected}
    monkeypatch.delenv(simulate.PASSWORD_ENV)
    server2 = stand_in()
    assert simulate.main(argv(server2.url, "--max-events", "5")) == 0
    assert {r["authorization"] for r in server2.requests + server2.resets} == {None}  # no password: no header at all


def test_401_exits_2_saying_to_set_the_password(stand_in, capsys):
    refused = (401, {"WWW-Authenticate": "Basic"}, {"detail": "missing or wrong credentials (HTTP Basic Auth)"})
    server = stand_in(reset_script=[refused])  # the reset is the first request: refused there, nothing is posted
    assert simulate.main(argv(server.url)) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"simulate: 401 Unauthorized from {server.url}/at-risk: set CUSTOMER_INTEL_API_PASSWORD (and "
                   "CUSTOMER_INTEL_API_USER, default 'customer_intel') to the API's credentials")
    assert (len(server.resets), len(server.requests)) == (1, 0)
    server = stand_in([refused])
    assert simulate.main(argv(server.url, "--no-reset")) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"simulate: 401 Unauthorized from {server.url}/events: set CUSTOMER_INTEL_API_PASSWORD (and "
                   "CUSTOMER_INTEL_API_USER, default 'customer_intel') to the API's credentials")
    assert (len(server.resets), len(server.requests)) == (0, 1)


def test_429_waits_retry_after_and_retries(stand_in, capsys):
    server = stand_in([(429, {"Retry-After": "1"}, {"detail": "rate limit 10/second (events) exceeded; retry in 1 s"})])
    assert simulate.main(argv(server.url, "--max-events", "10")) == 0
    first, second = server.requests[:2]
    assert first["body"] == second["body"]  # the same body again
    assert second["at"] - first["at"] >= 0.95
    captured = capsys.readouterr()
    assert "rate limited (429): retrying in 1 s (1/5)" in captured.err and "1 rate-limit retries" in captured.out
    always = stand_in([(429, {"Retry-After": "0"}, {"detail": "slow down"})] * 6)
    assert simulate.main(argv(always.url)) == 2
    assert "still rate limited (429) after 5 retries: lower --rate or raise the API's events limit (slow down)" in capsys.readouterr().err
    assert len(always.requests) == 6


def test_connection_refused_and_http_errors_exit_2_with_one_line(stand_in, capsys):
    url = f"http://127.0.0.1:{free_port()}"
    assert simulate.main(argv(url)) == 2
    assert capsys.readouterr().err == (f"simulate: cannot reach the API at {url}: connection refused or lost (is it running? "
                                       "start it with python -m customer_intel.serving)\n")
    server = stand_in()
    server.feed.ingest(None, None, "2026-07-01")  # the feed's clock is past the history's: the API refuses it
    assert simulate.main(argv(server.url, "--no-reset")) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"simulate: HTTP 422 from POST {server.url}/events: as_of 2026-05-01T00:00:00+00:00 is before the "
                          "feed's clock 2026-07-01T00:00:00+00:00")
    assert err.count("\n") == 1
    broken = stand_in([(500, {}, {"detail": "Internal Server Error"})])
    assert simulate.main(argv(broken.url)) == 2
    assert capsys.readouterr().err == f"simulate: HTTP 500 from POST {broken.url}/events: Internal Server Error\n"


def test_the_feed_is_reset_before_the_history_so_a_second_replay_starts_fresh(stand_in, capsys):
    server = stand_in()
    assert simulate.main(argv(server.url, "--start", "2026-06-20", "--max-events", "40")) == 0
    assert [r["events_before"] for r in server.resets] == [0]  # the reset came before the first POST
    server.feed.ingest(None, None, "2026-07-05")  # the stream moved on past this bank's window (another replay, say)
    posted = len(server.requests)
    capsys.readouterr()

    assert simulate.main(argv(server.url, "--start", "2026-06-20")) == 0
    out = capsys.readouterr().out
    assert [(r["path"], r["events_before"]) for r in server.resets] == [("/at-risk", 0), ("/at-risk", posted)]
    snap = server.feed.snapshot()  # only this replay's stream: every event of the bank once, the clock at the window's end
    frames = generate_bank(n_customers=30, seed=7, end_date=END).frames()
    assert (snap["events"], snap["customers_known"], snap["as_of"]) == (len(frames["transactions"]), 30, "2026-06-30T23:59:59.999999+00:00")
    assert out.splitlines()[0] == f"feed reset: DELETE {server.url}/at-risk"
    assert out.rstrip().endswith("rate-limit retries; the feed was reset first")

    assert simulate.main(argv(server.url, "--start", "2026-06-20", "--no-reset")) == 2  # the clock is at the window's end now
    captured = capsys.readouterr()
    assert len(server.resets) == 2 and "feed reset" not in captured.out
    assert captured.err.startswith(f"simulate: HTTP 422 from POST {server.url}/events: as_of 2026-06-20T00:00:00+00:00 is before the "
                                   "feed's clock 2026-06-30T23:59:59.999999+00:00")


def test_an_api_without_the_reset_says_to_run_with_no_reset(stand_in, capsys):
    server = stand_in(reset_script=[(405, {}, {"detail": "Method Not Allowed"})])
    assert simulate.main(argv(server.url)) == 2
    assert capsys.readouterr().err == (f"simulate: DELETE {server.url}/at-risk answered 405: this API cannot reset its feed; "
                                       "restart it for a fresh stream, or run with --no-reset\n")
    assert server.requests == []
    server = stand_in()
    assert simulate.main(argv(server.url, "--no-reset", "--max-events", "5")) == 0
    assert server.resets == [] and "; the feed was not reset (--no-reset)" in capsys.readouterr().out
