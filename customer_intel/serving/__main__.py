"""``python -m customer_intel.serving`` (or ``customer-intel serve``): the scoring API under uvicorn, on 127.0.0.1:8000 by default.

It refuses to start (exit code 2, one line on stderr) without ``CUSTOMER_INTEL_API_PASSWORD``,
unless bound to 127.0.0.1 with ``CUSTOMER_INTEL_API_DEV=1``. One worker process: the models, the
rate limits and the live feed live in its memory (README, "Scoring API"). SIGTERM or Ctrl-C stops
it gracefully: requests in flight finish and the audit lines not yet shipped are shipped.
"""

from __future__ import annotations

import argparse
import sys

from customer_intel.resources.settings import ConfigurationError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=None, help="address to listen on (default $CUSTOMER_INTEL_API_HOST, else 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port (default $CUSTOMER_INTEL_API_PORT, else 8000)")
    parser.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))
    parser.add_argument("--access-log", action="store_true", help="log every request line (off: the audit log records predictions)")


def serve(args: argparse.Namespace) -> int:
    from customer_intel.serving.config import ServingSettings

    try:
        settings = ServingSettings.from_env(args.host, args.port)
    except ConfigurationError as exc:  # checked before the models load: an unsafe start fails in a second
        print(f"customer_intel scoring API not started: {exc}", file=sys.stderr)
        return 2
    import uvicorn

    from customer_intel.serving.app import create_app

    print(f"customer_intel scoring API on http://{settings.host}:{settings.port} "
          f"({'no password: dev mode, loopback only' if settings.password is None else 'HTTP Basic Auth as ' + settings.user}; "
          f"rate limit {settings.rate_limit} per caller)", flush=True)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level=args.log_level, access_log=args.access_log,
                timeout_graceful_shutdown=30)
    return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m customer_intel.serving", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    sys.exit(serve(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
