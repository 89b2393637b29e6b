"""Who may call the API and how often: HTTP Basic Auth against the environment's credentials, and per-caller rate limits.

The password is compared in constant time (``secrets.compare_digest`` on the UTF-8 bytes, user and
password both always compared, so a wrong user takes as long as a wrong password). The limits are
``limits``' moving windows in this process's memory, keyed by the authenticated caller: a second
worker process counts on its own, so run one worker per container (README, "Scoring API").
"""

from __future__ import annotations

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
basic = HTTPBasic(realm=REALM, auto_error=False)


def _same(given: str, expected: str) -> bool:
    return secrets.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def authenticate(settings: ServingSettings, credentials: HTTPBasicCredentials | None, request: Request) -> str:
    """The caller's name, or 401 with a ``WWW-Authenticate`` challenge. Dev mode without a password: ``anonymous@<ip>``."""
    if settings.password is None:  # only ever on 127.0.0.1 with CUSTOMER_INTEL_API_DEV=1 (ServingSettings.from_env)
        return f"anonymous@{request.client.host if request.client else 'local'}"
    if credentials is not None:
        user_ok = _same(credentials.username, settings.user)
        password_ok = _same(credentials.password, settings.password)
        if user_ok and password_ok:
            return credentials.username
    raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or wrong credentials (HTTP Basic Auth)",
                        headers={"WWW-Authenticate": f'Basic realm="{REALM}"'})


class RateLimiter:
    """Per-caller moving-window limits: ``hit(caller)`` raises 429 with ``Retry-After`` (whole seconds) past the limit."""

    def __init__(self, limit: str, scope: str):
        self.items = parse_many(limit)
        self.scope = scope
        self.text = limit
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def hit(self, caller: str) -> None:
        for item in self.items:
            if not self._limiter.hit(item, self.scope, caller):
                reset_at, _remaining = self._limiter.get_window_stats(item, self.scope, caller)
                retry_after = max(1, math.ceil(reset_at - time.time()))
                raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS,
                                    f"rate limit {self.text} ({self.scope}) exceeded for {caller}; retry in {retry_after} s",
                                    headers={"Retry-After": str(retry_after)})
