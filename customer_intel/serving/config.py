"""The scoring API's settings, from ``CUSTOMER_INTEL_API_*`` environment variables read when the service starts.

Secrets (the password) come from the environment only; nothing has a default password. The README's
Configuration table lists every variable with its default.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from customer_intel.resources.settings import ENV_PREFIX, NOT_CONFIGURED, ConfigurationError, Settings

API_PREFIX = f"{ENV_PREFIX}API_"
DEFAULT_USER = "customer_intel"
DEFAULT_RATE_LIMIT = "10/minute"  # per caller, on the prediction endpoints (the reference project's limit)
DEFAULT_EVENTS_RATE_LIMIT = "1200/minute"  # per caller, on POST /events (a simulator or a webhook relay streams)
LOOPBACK = "127.0.0.1"
TRUE = {"1", "true", "yes", "on"}


def _api(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(API_PREFIX + name)
    return default if value is None or value == "" else value


def _positive(name: str, default: str, kind=float):
    raw = _api(name, default)
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigurationError(f"{API_PREFIX}{name}={raw!r} is not a {kind.__name__}") from None
    if value <= 0:
        raise ConfigurationError(f"{API_PREFIX}{name}={raw!r} must be greater than 0")
    return value


def rate_limit(name: str, default: str):
    """A ``limits`` rate limit string (``10/minute``, ``100/second``, ``5 per 10 seconds``), parsed now: a bad one stops the start."""
    from limits import parse_many

    raw = _api(name, default)
    try:
        items = parse_many(raw)
    except ValueError:
        raise ConfigurationError(f"{API_PREFIX}{name}={raw!r} is not a rate limit; write it like 10/minute or 100/second") from None
    if not items:
        raise ConfigurationError(f"{API_PREFIX}{name}={raw!r} is not a rate limit; write it like 10/minute or 100/second")
    return items


@dataclass(frozen=True)
class ServingSettings:
    host: str
    port: int
    user: str
    password: str | None  # None only in dev mode on loopback (then every caller is anonymous)
    dev: bool
    rate_limit: str
    events_rate_limit: str
    audit_dir: Path
    audit_location: str | None  # a folder or s3://bucket/prefix the audit lines are shipped to; None: kept locally
    audit_batch_lines: int
    audit_interval_seconds: float
    page_refresh_seconds: int
    feed_rows: int
    max_body_bytes: int

    @classmethod
    def from_env(cls, host: str | None = None, port: int | None = None) -> ServingSettings:
        """The settings, checked: without a password the service only starts bound to 127.0.0.1 with the dev flag."""
        pipeline = Settings.from_env()
        host = host or _api("HOST", LOOPBACK)
        password = _api("PASSWORD")
        dev = (_api("DEV", "") or "").lower() in TRUE
        if password is None and not dev:
            raise ConfigurationError(
                f"{API_PREFIX}PASSWORD is not set: the scoring API has no default password. Set it (and {API_PREFIX}USER, "
                f"default {DEFAULT_USER}), or for a local trial only, bind to {LOOPBACK} and set {API_PREFIX}DEV=1")
        if password is None and host != LOOPBACK:
            raise ConfigurationError(
                f"{API_PREFIX}DEV=1 without {API_PREFIX}PASSWORD only serves on {LOOPBACK}, not {host}: set {API_PREFIX}PASSWORD "
                "to listen on another address")
        if password is not None and len(password) < 12:
            raise ConfigurationError(f"{API_PREFIX}PASSWORD is too short ({len(password)} characters): use at least 12")
        if password is not None and not (password.isascii() and password.isprintable()):
            raise ConfigurationError(f"{API_PREFIX}PASSWORD has characters outside printable ASCII: HTTP Basic clients encode "
                                     "them differently, so no login would ever match; use printable ASCII")
        rate_limit("RATE_LIMIT", DEFAULT_RATE_LIMIT)  # parsed now: a typo stops the start, not the first request
        rate_limit("EVENTS_RATE_LIMIT", DEFAULT_EVENTS_RATE_LIMIT)
        audit_location = _api("AUDIT_URI")
        if audit_location is None:
            audit_location = pipeline.warehouse_root.rstrip("/") + "/audit_log"
        elif audit_location.lower() in NOT_CONFIGURED:
            audit_location = None
        return cls(
            host=host,
            port=int(port if port is not None else _positive("PORT", "8000", int)),
            user=_api("USER", DEFAULT_USER),
            password=password,
            dev=dev,
            rate_limit=_api("RATE_LIMIT", DEFAULT_RATE_LIMIT),
            events_rate_limit=_api("EVENTS_RATE_LIMIT", DEFAULT_EVENTS_RATE_LIMIT),
            audit_dir=Path(_api("AUDIT_DIR", str(pipeline.data_dir / "audit"))).resolve(),
            audit_location=audit_location,
            audit_batch_lines=_positive("AUDIT_BATCH_LINES", "500", int),
            audit_interval_seconds=_positive("AUDIT_INTERVAL_SECONDS", "30"),
            page_refresh_seconds=_positive("PAGE_REFRESH_SECONDS", "5", int),
            feed_rows=_positive("FEED_ROWS", "500", int),
            max_body_bytes=_positive("MAX_BODY_BYTES", str(16 * 1024 * 1024), int),
        )
