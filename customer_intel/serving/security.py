"""Who may call the API and how often: HTTP Basic Auth against the environment's credentials, per-client rate limits, and a
gate in front of every endpoint.

The password is compared in constant time: the SHA-256 digests of what was sent and what is expected
(equal lengths, so not even the length leaks), user and password both always compared. The ``Gate``
middleware answers before a body is read: 413 past ``CUSTOMER_INTEL_API_MAX_BODY_BYTES`` (by
Content-Length, or counted while a chunked body streams) and 401 without valid credentials on every
path but ``/health`` (``/docs`` and ``/openapi.json`` included); failed logins are limited per address
(``FAILED_LOGINS_PER_ADDRESS``), so a password cannot be guessed at the server's speed. The limits
are ``limits``' moving windows in this process's memory, keyed by the caller and its address: a
second worker process counts on its own, so run one worker per container.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import secrets
import time

from fastapi import HTTPException, Request, status
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from limits import parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from customer_intel.serving.config import ServingSettings

REALM = "customer_intel scoring API"
CHALLENGE = f'Basic realm="{REALM}"'
OPEN_PATHS = frozenset({"/health"})  # liveness for a load balancer: names no customer and no secret
FAILED_LOGINS_PER_ADDRESS = "20/minute"
ADMIN_RATE_LIMIT = "6/minute"  # POST /reload and DELETE /at-risk, per client: each reloads models or drops a stream
basic = HTTPBasic(realm=REALM, auto_error=False)


def _same(given: str, expected: str) -> bool:
    return secrets.compare_digest(hashlib.sha256(given.encode("utf-8")).digest(), hashlib.sha256(expected.encode("utf-8")).digest())


def valid(settings: ServingSettings, username: str, password: str) -> bool:
    user_ok = _same(username, settings.user)
    password_ok = _same(password, settings.password or "")
    return user_ok and password_ok


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """(user, password) of an ``Authorization: Basic ...`` header, or None when there is none or it is malformed."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(token.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


def client_address(request_or_scope) -> str:
    client = request_or_scope.client if isinstance(request_or_scope, Request) else request_or_scope.get("client")
    host = client.host if hasattr(client, "host") else (client[0] if client else None)
    return host or "unknown"


def authenticate(settings: ServingSettings, credentials: HTTPBasicCredentials | None, request: Request) -> str:
    """The client: ``<user>@<address>`` (the rate limits' key and the audit log's caller), or 401 with a challenge.
    Dev mode without a password: ``anonymous@<address>``. (The ``Gate`` has refused bad credentials already; this names
    the caller, and refuses again should an app run without the gate.)"""
    address = client_address(request)
    if settings.password is None:  # only ever on 127.0.0.1 with CUSTOMER_INTEL_API_DEV=1 (ServingSettings.from_env)
        return f"anonymous@{address}"
    if credentials is not None and valid(settings, credentials.username, credentials.password):
        return f"{credentials.username}@{address}"
    raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or wrong credentials (HTTP Basic Auth)",
                        headers={"WWW-Authenticate": CHALLENGE})


class RateLimiter:
    """Per-key moving-window limits: ``hit(key)`` raises 429 with ``Retry-After`` (whole seconds) past the limit."""

    def __init__(self, limit: str, scope: str):
        self.items = parse_many(limit)
        self.scope = scope
        self.text = limit
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def retry_after(self, key: str) -> int | None:
        """None when ``key`` may go on (and the hit is counted), else the seconds until it may."""
        if (all(self._limiter.test(item, self.scope, key) for item in self.items)  # a refused call uses up no window
                and all(self._limiter.hit(item, self.scope, key) for item in self.items)):
            return None
        waits = [self._limiter.get_window_stats(item, self.scope, key).reset_time - time.time() for item in self.items
                 if not self._limiter.test(item, self.scope, key)]
        return max(1, math.ceil(max(waits, default=1)))

    def hit(self, key: str) -> None:
        retry = self.retry_after(key)
        if retry is not None:
            raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, f"rate limit {self.text} ({self.scope}) exceeded for {key}; "
                                f"retry in {retry} s", headers={"Retry-After": str(retry)})


class Gate:
    """ASGI middleware in front of every endpoint: body size and credentials checked before a byte of the body is parsed."""

    def __init__(self, app, settings: ServingSettings):
        self.app = app
        self.settings = settings
        self.failed = RateLimiter(FAILED_LOGINS_PER_ADDRESS, "failed logins")

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        limit = self.settings.max_body_bytes
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            return await _reply(send, 413, f"request body of {int(length):,} bytes is over the limit of {limit:,} "
                                           "(CUSTOMER_INTEL_API_MAX_BODY_BYTES)", {"Connection": "close"})
        if self.settings.password is not None and scope["path"] not in OPEN_PATHS:
            given = basic_credentials(headers.get("authorization"))
            if given is None or not valid(self.settings, *given):
                retry = self.failed.retry_after(client_address(scope))
                if retry is not None:
                    return await _reply(send, 429, f"too many failed logins from this address ({FAILED_LOGINS_PER_ADDRESS}); "
                                                   f"retry in {retry} s", {"Retry-After": str(retry)})
                return await _reply(send, 401, "missing or wrong credentials (HTTP Basic Auth)", {"WWW-Authenticate": CHALLENGE})
        seen = 0
        refused = False

        async def counted():  # a body without Content-Length (chunked) is counted as it streams
            nonlocal seen, refused
            message = await receive()
            if message["type"] == "http.request" and not refused:
                seen += len(message.get("body", b""))
                if seen > limit:
                    refused = True
                    await _reply(send, 413, f"request body over the limit of {limit:,} bytes (CUSTOMER_INTEL_API_MAX_BODY_BYTES)",
                                 {"Connection": "close"})
                    return {"type": "http.disconnect"}  # the app stops reading; whatever it answers is dropped below
            return message

        async def guarded(message):
            if not refused:
                await send(message)

        await self.app(scope, counted, guarded)


async def _reply(send, status_code: int, detail: str, headers: dict[str, str] | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
           *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items())]
    await send({"type": "http.response.start", "status": status_code, "headers": raw})
    await send({"type": "http.response.body", "body": body})
