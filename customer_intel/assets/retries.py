"""Which steps Dagster retries: the ones whose failure is usually the network's, not the code's or the data's.

``IO_RETRY`` goes on the steps that move bytes to and from the warehouse (S3 or a folder) and load champions from
MLflow: the raw tables' ingestion, the features, every family's training frame and daily scores, ``scored_customers``,
``campaign_targets`` and ``lookalike_audience``. A dropped connection, a 503 or a registry restart there is over in
seconds, and the step is idempotent (a table is published whole or not at all), so running it again is the answer.

Never retried: fitting and comparing candidates (``<family>_models``: minutes of work, and a fit that fails is a bug or
a data problem a retry only hides, while every attempt would log its MLflow runs again), the promotion
(``<family>_champion``: registering twice is worse than failing once) and the gate. On the retried steps a failure
that is not transient raises ``dg.Failure(allow_retries=False)`` (``final``), which the policy does not retry: a
contract violation, a configuration error, a guard (``check_same_ingest``), a table that fails its checks, non-finite
numbers, an upstream partition that was never published. Any other exception there (a bug) is retried like an IO
error; a deterministic bug then fails every attempt with the same error.
"""

import dagster as dg

from customer_intel.resources.settings import io_retries

_RETRIES, _DELAY = io_retries()  # definition-time: CUSTOMER_INTEL_IO_RETRIES, CUSTOMER_INTEL_IO_RETRY_DELAY_SECONDS

IO_RETRY = dg.RetryPolicy(max_retries=_RETRIES, delay=_DELAY, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)
"""Retries of the IO steps: ``CUSTOMER_INTEL_IO_RETRIES`` (3) after ``CUSTOMER_INTEL_IO_RETRY_DELAY_SECONDS`` (10 s), doubled each
time (1, 3, 7 times it), each +- that delay at random (so parallel steps that failed together do not return together): 10 +- 10, 30 +- 10 and 70 +- 10 s."""


def final(description: str, **kwargs) -> dg.Failure:
    """A failure no retry can fix (the data, the configuration or a guard said no): the retry policy lets it through."""
    return dg.Failure(description=description, allow_retries=False, **kwargs)


def transient(exc: BaseException) -> bool:
    """Whether ``exc`` or one of its causes is the network's or the endpoint's: no connection, a timeout, a dropped
    connection, or an S3 answer that says "try again" (5xx, SlowDown, RequestTimeout)."""
    from botocore.exceptions import ClientError, HTTPClientError
    from botocore.exceptions import ConnectionError as EndpointError

    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, EndpointError | HTTPClientError | ConnectionError | TimeoutError):
            return True
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
            if status >= 500 or error.get("Code") in ("SlowDown", "RequestTimeout", "ServiceUnavailable", "InternalError", "Throttling"):
                return True
        exc = exc.__cause__ or exc.__context__
    return False
