"""Replay a synthetic bank's transactions into the scoring API as a stream: ``python -m customer_intel.serving.simulate``.

A client of ``POST /events``: it resets the API's feed (``DELETE /at-risk``; ``--no-reset`` keeps it),
loads the history before ``--start`` (and every profile) without scoring, posts the start tick (an empty batch at
``--start``'s midnight that has the API score every customer as of the replay's start), then sends the replay window's events
in time order, ``--batch`` at a time, paced to ``--rate`` events per second of wall time, each batch stamped with its last
event's instant. The API's live feed (``GET /at-risk``) shows the customers whose churn risk crosses the threshold: those
already at risk when the replay starts with ``crossed_at`` = the start instant, the replay's own crossings after it.
Credentials come from the environment only (``CUSTOMER_INTEL_API_USER``, ``CUSTOMER_INTEL_API_PASSWORD``),
never from a flag: a flag's value is visible to every user of the machine in the process list.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pandas as pd
import requests

from customer_intel.synthetic.generator import generate_bank

EVENTS_PATH = "/events"
FEED_PATH = "/at-risk"  # DELETE: the API forgets the stream (events, clock, crossings)
USER_ENV = "CUSTOMER_INTEL_API_USER"
PASSWORD_ENV = "CUSTOMER_INTEL_API_PASSWORD"
DEFAULT_USER = "customer_intel"
EXIT_FAILURE = 2  # every reason the simulator gives up (unreachable, unauthorised, rate limited for good, an HTTP error)
MAX_RATE_LIMIT_RETRIES = 5
MAX_RETRY_AFTER_SECONDS = 60.0  # a longer Retry-After is honoured only this long per retry
REQUEST_TIMEOUT_SECONDS = 300.0  # a full rescore of a big bank takes a while; a dead server still ends the run
PROFILE_COLUMNS = ("Avg_Credit_Limit", "Total_Credit_Cards", "Total_visits_bank", "Total_visits_online", "Total_calls_made")
EVENT_COLUMNS = ("customer_id", "ts", "amount", "category", "channel")


class SimulatorError(Exception):
    """Why the simulator stopped: one line for the terminal, and the process's exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILURE):
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class Summary:
    """What a run sent and what the API answered (counts summed over the replay's answers: its batches and the end tick).

    The start tick's answer is not a replay answer: the customers it finds at risk are ``at_risk_at_start``, not crossings of
    the replay, so ``at_risk_at_start + crossed - recovered == at_risk`` once the replay ran.
    """

    history_rows: int = 0
    history_posts: int = 0
    at_risk_at_start: int | None = None  # customers at risk as of the replay's start (the start tick's answer)
    events_sent: int = 0
    batches: int = 0
    crossed: int = 0  # crossings during the replay, after its start
    recovered: int = 0
    at_risk: int | None = None
    retries: int = 0
    seconds: float = 0.0
    reset: bool = False  # the API's feed was reset before the history
    stopped: str | None = None  # why the replay stopped early, if it did


def day(value) -> pd.Timestamp:
    """Midnight UTC of a date-like."""
    ts = pd.Timestamp(value)
    return (ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")).normalize()


def _records(transactions: pd.DataFrame) -> list[dict]:
    """Events as JSON-ready dicts (ts as ISO text, missing text as null)."""
    frame = transactions.loc[:, [c for c in EVENT_COLUMNS if c in transactions.columns]].copy()
    frame["ts"] = [ts.isoformat() for ts in frame["ts"]]
    frame["amount"] = frame["amount"].astype(float)
    frame = frame.astype(object).where(frame.notna(), None)
    return frame.to_dict("records")


def _profiles(customers: pd.DataFrame) -> list[dict]:
    frame = customers.loc[:, ["customer_id", *(c for c in PROFILE_COLUMNS if c in customers.columns)]]
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()} for row in frame.to_dict("records")]


def history_batches(frames: dict[str, pd.DataFrame], start, chunk: int) -> Iterator[dict]:
    """``POST /events`` bodies loading every profile, then the transactions before ``start``, ``chunk`` rows a body, unscored.

    Their ``as_of`` is ``start`` (midnight UTC): every history event is before it, and the replay's first batch is not.
    """
    if chunk < 1:
        raise ValueError(f"--history-chunk must be at least 1, got {chunk}")
    begin = day(start)
    as_of = begin.isoformat()
    customers = frames["customers"]
    for i in range(0, len(customers), chunk):
        yield {"as_of": as_of, "rescore": False, "transactions": [], "customers": _profiles(customers.iloc[i:i + chunk])}
    transactions = frames["transactions"]
    history = transactions.loc[transactions["ts"] < begin].sort_values(["ts", "customer_id"], kind="stable")
    for i in range(0, len(history), chunk):
        yield {"as_of": as_of, "rescore": False, "transactions": _records(history.iloc[i:i + chunk]), "customers": []}


def replay_batches(frames: dict[str, pd.DataFrame], start, end, batch: int) -> Iterator[dict]:
    """``POST /events`` bodies of the events from ``start`` to the end of day ``end``, in time order, ``batch`` a body.

    Each body's ``as_of`` is its last event's instant: the stream's clock, never behind an event it carries.
    """
    if batch < 1:
        raise ValueError(f"--batch must be at least 1, got {batch}")
    transactions = frames["transactions"]
    window = (transactions["ts"] >= day(start)) & (transactions["ts"] < day(end) + pd.Timedelta(days=1))
    events = transactions.loc[window].sort_values(["ts", "customer_id"], kind="stable")
    for i in range(0, len(events), batch):
        part = events.iloc[i:i + batch]
        yield {"as_of": part["ts"].iloc[-1].isoformat(), "rescore": True, "transactions": _records(part), "customers": []}


def start_tick(start) -> dict:
    """The empty batch at the replay's start (midnight UTC, the history batches' ``as_of``) that has the API score every customer.

    Without it the replay's first scoring batch would be the stream's first full rescore, and every customer already at risk
    before the replay would "cross" at that batch's clock, as if they all crossed at that moment. The API's feed takes it: its
    clock does not go backwards (it equals the history's), and a rescoring batch is a full rescore when none happened yet
    (the history is loaded unscored) or, with neither events nor profiles, when its clock is past the last full one."""
    return {"as_of": day(start).isoformat(), "rescore": True, "transactions": [], "customers": []}


def end_tick(end) -> dict:
    """The empty batch at the end day's last microsecond that has the API rescore every customer at the end of the replay.

    The last microsecond, not 23:59:59: an event in the day's last second (the bank's instants carry microseconds) would
    have put the stream's clock past the tick, and the API refuses a clock that goes backwards."""
    return {"as_of": (day(end) + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)).isoformat(), "rescore": True,
            "transactions": [], "customers": []}


def _detail(response: requests.Response) -> str:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    text = str(detail) if detail is not None else response.text.strip()
    text = " ".join(text.split())
    return text[:300] + ("..." if len(text) > 300 else "") or "(no body)"


def _retry_after(response: requests.Response) -> float:
    """Seconds to wait from a 429's Retry-After (whole seconds, as the API sends; an HTTP date or nothing: 1 s)."""
    try:
        seconds = float(response.headers.get("Retry-After", "1"))
    except ValueError:
        seconds = 1.0
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS) if math.isfinite(seconds) else 1.0


def post_events(session: requests.Session, url: str, body: dict, summary: Summary) -> dict:
    """One ``POST /events``; 429 waits Retry-After and retries (a bounded number of times); anything else non-2xx stops the run."""
    endpoint = url.rstrip("/") + EVENTS_PATH
    for attempt in range(MAX_RATE_LIMIT_RETRIES + 1):
        response = _send(session, "POST", url, EVENTS_PATH, json=body)
        if response.status_code == 429 and attempt < MAX_RATE_LIMIT_RETRIES:
            wait = _retry_after(response)
            print(f"rate limited (429): retrying in {wait:g} s ({attempt + 1}/{MAX_RATE_LIMIT_RETRIES})", file=sys.stderr)
            summary.retries += 1
            time.sleep(wait)
            continue
        if response.status_code == 429:
            raise SimulatorError(f"still rate limited (429) after {MAX_RATE_LIMIT_RETRIES} retries: lower --rate or raise the API's "
                                 f"events limit ({_detail(response)})")
        return _answer(response, "POST", endpoint)
    raise AssertionError("unreachable")


def reset_feed(session: requests.Session, url: str) -> dict:
    """``DELETE /at-risk``: the API forgets the previous stream (its events, clock and crossings), so this replay's clock, which
    starts at the history's, is not refused as going backwards and the feed shows only this replay's crossings."""
    endpoint = url.rstrip("/") + FEED_PATH
    response = _send(session, "DELETE", url, FEED_PATH)
    if response.status_code in (404, 405):
        raise SimulatorError(f"DELETE {endpoint} answered {response.status_code}: this API cannot reset its feed; "
                             "restart it for a fresh stream, or run with --no-reset")
    return _answer(response, "DELETE", endpoint)


def _send(session: requests.Session, method: str, url: str, path: str, **kwargs) -> requests.Response:
    try:
        return session.request(method, url.rstrip("/") + path, timeout=REQUEST_TIMEOUT_SECONDS, **kwargs)
    except requests.ConnectionError:
        raise SimulatorError(f"cannot reach the API at {url}: connection refused or lost (is it running? "
                             "start it with python -m customer_intel.serving)") from None
    except requests.Timeout:
        raise SimulatorError(f"the API at {url} did not answer {method} {path} within {REQUEST_TIMEOUT_SECONDS:.0f} s") from None


def _answer(response: requests.Response, method: str, endpoint: str) -> dict:
    """The JSON of a 2xx answer; a 401 or any other non-2xx status stops the run with one line."""
    if response.status_code == 401:
        raise SimulatorError(f"401 Unauthorized from {endpoint}: set {PASSWORD_ENV} (and {USER_ENV}, default {DEFAULT_USER!r}) "
                             "to the API's credentials")
    if not response.ok:
        raise SimulatorError(f"HTTP {response.status_code} from {method} {endpoint}: {_detail(response)}")
    try:
        return response.json()
    except ValueError:
        raise SimulatorError(f"{method} {endpoint} answered {response.status_code} without a JSON body") from None


def make_session(args: argparse.Namespace) -> requests.Session:
    """A session with HTTP Basic Auth when the password is in the environment; without it, no Authorization header."""
    session = requests.Session()
    password = os.environ.get(PASSWORD_ENV)
    if password:
        session.auth = (args.user, password)
    return session


def run(args: argparse.Namespace, session: requests.Session | None = None) -> Summary:
    """Generate the bank, reset the API's feed (unless ``--no-reset``), load the history, post the start tick, replay the
    window paced to ``args.rate``, then the end-of-replay tick."""
    end = day(args.end)
    start = day(args.start) if args.start else end - pd.Timedelta(days=60)
    if start > end:
        raise SimulatorError(f"--start {start.date()} is after --end {end.date()}")
    if args.rate <= 0 or args.print_every < 1:
        raise SimulatorError(f"--rate must be positive and --print-every at least 1, got {args.rate} and {args.print_every}")
    frames = generate_bank(n_customers=args.customers, seed=args.seed, end_date=str(end.date())).frames()
    own = session is None
    session = session or make_session(args)
    summary = Summary()
    began = time.monotonic()
    try:
        if args.reset:
            reset_feed(session, args.url)
            summary.reset = True
            print(f"feed reset: DELETE {args.url.rstrip('/')}{FEED_PATH}", flush=True)
        for body in history_batches(frames, start, args.history_chunk):
            post_events(session, args.url, body, summary)
            summary.history_posts += 1
            summary.history_rows += len(body["transactions"])
        print(f"history loaded: {summary.history_rows} events before {start.date()} and {len(frames['customers'])} profiles "
              f"in {summary.history_posts} posts", flush=True)
        tick = start_tick(start)
        answer = post_events(session, args.url, tick, summary)
        summary.at_risk_at_start = summary.at_risk = answer.get("at_risk")
        print(f"at risk at the start: {summary.at_risk_at_start} customers (as of {tick['as_of']})", flush=True)
        _replay(session, args, frames, start, end, summary)
    finally:
        summary.seconds = time.monotonic() - began
        if own:
            session.close()
    return summary


def _replay(session: requests.Session, args: argparse.Namespace, frames: dict, start, end, summary: Summary) -> None:
    paced_from = time.monotonic()
    for body in replay_batches(frames, start, end, args.batch):
        if args.duration is not None and time.monotonic() - paced_from >= args.duration:
            summary.stopped = f"--duration {args.duration:g} s reached"
            break
        if args.max_events is not None:
            room = args.max_events - summary.events_sent
            if room <= 0:
                summary.stopped = f"--max-events {args.max_events} reached"
                break
            if room < len(body["transactions"]):
                body = {**body, "transactions": body["transactions"][:room], "as_of": body["transactions"][room - 1]["ts"]}
        # a batch is posted once its events have "happened" at --rate: sleep to that instant (never busy-wait)
        due = paced_from + (summary.events_sent + len(body["transactions"])) / args.rate
        wait = due - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        answer = post_events(session, args.url, body, summary)
        _count(summary, answer, len(body["transactions"]))
        if summary.batches % args.print_every == 0:
            print(f"batch {summary.batches}: {summary.events_sent} events sent, clock {body['as_of']}, at risk {summary.at_risk}, "
                  f"crossed {len(answer.get('crossed') or [])} in this batch ({summary.crossed} since the start)", flush=True)
    if summary.stopped is None:  # ran to the end of the window: every customer rescored at the end day's close
        answer = post_events(session, args.url, end_tick(end), summary)
        _count(summary, answer, 0, batch=False)


def _count(summary: Summary, answer: dict, events: int, batch: bool = True) -> None:
    summary.events_sent += events
    summary.batches += int(batch)
    summary.crossed += len(answer.get("crossed") or [])
    summary.recovered += len(answer.get("recovered") or [])
    summary.at_risk = answer.get("at_risk", summary.at_risk)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m customer_intel.serving.simulate", description=__doc__.splitlines()[0],
                                epilog=f"The password comes from ${PASSWORD_ENV} only (unset: no Authorization header).")
    p.add_argument("--url", default="http://127.0.0.1:8000", help="the API's base URL (default %(default)s)")
    p.add_argument("--user", default=os.environ.get(USER_ENV, DEFAULT_USER),
                   help=f"HTTP Basic user (default ${USER_ENV} or {DEFAULT_USER!r})")
    p.add_argument("--customers", type=int, default=300, help="synthetic bank size (default %(default)s)")
    p.add_argument("--seed", type=int, default=7, help="the bank's seed (default %(default)s)")
    p.add_argument("--end", default="2026-06-30", help="the bank's last day, the replay's last day (default %(default)s)")
    p.add_argument("--start", default=None, help="the replay's first day (default: --end minus 60 days); earlier events load as history")
    p.add_argument("--rate", type=float, default=50.0, help="events per second of wall time (default %(default)s)")
    p.add_argument("--batch", type=int, default=25, help="events per POST (default %(default)s)")
    p.add_argument("--max-events", type=int, default=None, help="stop after this many replay events (default: all)")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds of replay (default: none)")
    p.add_argument("--history-chunk", type=int, default=5000, help="rows per history POST (default %(default)s)")
    p.add_argument("--print-every", type=int, default=20, help="print a progress line every N batches (default %(default)s)")
    p.add_argument("--reset", action=argparse.BooleanOptionalAction, default=True,
                   help="DELETE /at-risk before the history, so the replay starts a fresh stream on a running API (default: reset)")
    return p


def main(argv: list[str] | None = None, session: requests.Session | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        summary = run(args, session=session)
    except (SimulatorError, ValueError) as err:
        print(f"simulate: {err}", file=sys.stderr)
        return getattr(err, "exit_code", EXIT_FAILURE)
    rate = summary.events_sent / summary.seconds if summary.seconds else 0.0
    print(f"done: {summary.events_sent} events in {summary.batches} batches after {summary.history_rows} history events; "
          f"{summary.at_risk_at_start} at risk at the start, {summary.crossed} crossings and {summary.recovered} recoveries "
          f"during the replay, {summary.at_risk} at risk now; "
          f"{summary.seconds:.1f} s ({rate:.1f} events/s), {summary.retries} rate-limit retries; "
          + ("the feed was reset first" if summary.reset else "the feed was not reset (--no-reset)")
          + (f"; stopped early: {summary.stopped} (no end-of-replay rescore)" if summary.stopped else ""), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
