"""The IO steps' RetryPolicy: a transient S3 failure is retried and the run succeeds; a contract violation and a bug
in a fit fail on their first attempt (retrying them would only hide the problem or repeat it)."""

import threading
from dataclasses import dataclass

import dagster as dg
import pandas as pd
import pytest

from customer_intel.assets import FAMILIES, ingest
from customer_intel.assets.factory import FamilySpec, champion_assets
from customer_intel.assets.retries import IO_RETRY
from customer_intel.definitions import defs
from customer_intel.modeling import ChampionRule, ModelFamily
from customer_intel.resources import Warehouse
from customer_intel.resources.s3_client import BoundedS3Resource
from customer_intel.table_names import CUSTOMER_FEATURES, RAW_TABLES
from customer_intel_tests.conftest import SMALL_END_DATE, materialize_graph, pipeline_resources, step_failures, upload_raw, write_raw

pytestmark = pytest.mark.e2e

RETRIED = {*RAW_TABLES, CUSTOMER_FEATURES, "scored_customers", "campaign_targets", "lookalike_audience",
           *(family.spec.scores_name for family in FAMILIES), *(f"{family.spec.name}_training_frame" for family in FAMILIES)}


def attempts(result, step: str) -> tuple[int, int]:
    """(how many times ``step`` started, how many times it was put up for retry) in a run's event log."""
    events = [e.event_type_value for e in result.all_events if e.step_key == step]
    return events.count("STEP_START") + events.count("STEP_RESTARTED"), events.count("STEP_UP_FOR_RETRY")


def test_the_policy_is_on_the_io_steps_only():
    policies = {node.name: node.retry_policy for job in defs.resolve_all_job_defs() for node in job.graph.node_defs}
    assert {name for name, policy in policies.items() if policy is not None} == RETRIED
    assert all(policies[name] == IO_RETRY for name in RETRIED)
    assert IO_RETRY.max_retries == 3 and IO_RETRY.backoff == dg.Backoff.EXPONENTIAL and IO_RETRY.jitter == dg.Jitter.PLUS_MINUS
    assert IO_RETRY.delay == 0.1  # the suite's CUSTOMER_INTEL_IO_RETRY_DELAY_SECONDS (default 10 s)
    for family in FAMILIES:  # fitting, promoting and gating are never retried
        assert policies[f"{family.spec.name}_models"] is None and policies[f"{family.spec.name}_champion"] is None


class RefusesManifestPuts:
    """WSGI middleware in front of moto: the next ``times`` PUTs of a ``_SUCCESS`` under ``table`` get 503 SlowDown."""

    BODY = b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>'

    def __init__(self, app, table: str, times: int):
        self.app, self.table, self.left, self.refused = app, table, times, []
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if environ["REQUEST_METHOD"] == "PUT" and f"/{self.table}/" in path and path.endswith("/_SUCCESS"):
            with self.lock:
                refuse = self.left > 0
                self.left -= refuse
            if refuse:
                environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
                self.refused.append(path)
                start_response("503 Slow Down", [("Content-Type", "application/xml"), ("Content-Length", str(len(self.BODY))),
                                                 ("Connection", "close")])
                return [self.BODY]
        return self.app(environ, start_response)


def test_a_transient_s3_failure_is_retried_and_the_run_succeeds(small_frames, killable_s3, tmp_path):
    s3 = BoundedS3Resource(endpoint_url=killable_s3.url, region_name="us-east-1", aws_access_key_id="testing",
                           aws_secret_access_key="testing", max_attempts=2, connect_timeout=1, read_timeout=5)
    client = s3.get_client()
    client.create_bucket(Bucket="flaky")
    upload_raw(small_frames, client, "flaky", "raw", fmt="parquet")
    refusing = []
    # botocore tries each request twice (max_attempts=2): two 503s fail the features' publish once, the step's retry succeeds
    killable_s3.wrap(lambda app: refusing.append(RefusesManifestPuts(app, CUSTOMER_FEATURES, times=2)) or refusing[0])
    result = materialize_graph("s3://flaky/raw", tmp_path / "w", groups=("ingest", "features"), warehouse_root="s3://flaky/warehouse", s3=s3)
    assert result.success, step_failures(result)
    assert len(refusing[0].refused) == 2 and refusing[0].left == 0
    assert attempts(result, CUSTOMER_FEATURES) == (2, 1)
    assert all(attempts(result, table) == (1, 0) for table in RAW_TABLES)
    [retry] = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert "SlowDown" in str(retry.event_specific_data.error.to_string())
    warehouse = Warehouse(root="s3://flaky/warehouse", s3=s3)
    assert len(warehouse.read(CUSTOMER_FEATURES, SMALL_END_DATE)) == small_frames["customers"]["customer_id"].nunique()


def test_a_contract_violation_fails_on_its_first_attempt(small_frames, tmp_path):
    frames = dict(small_frames)
    transactions = frames["transactions"].astype({"amount": object})
    transactions.loc[3, "amount"] = "twelve"
    frames["transactions"] = transactions
    raw_dir = write_raw(frames, tmp_path / "raw", fmt="csv")
    result = materialize_graph(raw_dir, tmp_path / "w", partition=None, groups=("ingest",))
    assert not result.success
    failure = step_failures(result)["raw_transactions"]
    assert "amount" in failure and "twelve" in failure, failure
    assert attempts(result, "raw_transactions") == (1, 0)
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]


@dataclass
class Buggy:
    """A candidate whose fit has a bug."""

    name: str = "buggy"
    kind: str = "ml"

    def fit(self, split):
        return len(split.fit) / 0


def test_a_bug_in_a_fit_fails_on_its_first_attempt(small_frames, tmp_path):
    from customer_intel_tests.assets.test_factory import TINY, brier, tiny_split

    family = ModelFamily(name="buggy", description="a family whose candidate has a bug.", rule=ChampionRule("brier"),
                         build_split=tiny_split, candidates=lambda: [Buggy()], metrics=brier, evaluate_scorer=TINY.evaluate_scorer,
                         score_columns=("p_active",), target_columns=TINY.target_columns, needs_transactions=True)
    buggy = champion_assets(FamilySpec(family, inputs=("raw_transactions",)))
    transactions = small_frames["transactions"]
    few = transactions.loc[transactions["customer_id"].isin(transactions["customer_id"].drop_duplicates().head(100))]
    raw_dir = write_raw({"transactions": few}, tmp_path / "raw", fmt="parquet", tables=("transactions",))
    result = dg.materialize([ingest.raw_transactions, buggy.training_frame, buggy.models], raise_on_error=False,
                            resources=pipeline_resources(raw_dir, tmp_path / "w"), instance=dg.DagsterInstance.ephemeral())
    assert not result.success
    assert "ZeroDivisionError: division by zero" in step_failures(result)["buggy_models"]
    assert attempts(result, "buggy_models") == (1, 0)
    assert attempts(result, "buggy_training_frame") == (1, 0) and attempts(result, "raw_transactions") == (1, 0)
    assert pd.Series([e.event_type_value for e in result.all_events]).eq("STEP_UP_FOR_RETRY").sum() == 0


def test_only_the_networks_errors_count_as_transient():
    from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

    from customer_intel.assets.retries import transient
    from customer_intel.ingest import RawSourceError

    def client_error(status: int, code: str) -> ClientError:
        return ClientError({"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "GetObject")

    down = EndpointConnectionError(endpoint_url="http://127.0.0.1:9/raw/transactions.csv")
    try:  # a raw download that failed because the endpoint is down, wrapped as the reader wraps it
        raise RawSourceError("s3://bank/raw/transactions.csv: cannot be downloaded") from down
    except RawSourceError as exc:
        wrapped = exc
    assert transient(down) and transient(wrapped) and transient(ReadTimeoutError(endpoint_url="http://127.0.0.1:9"))
    assert transient(client_error(503, "SlowDown")) and transient(client_error(500, "InternalError"))
    assert not transient(client_error(404, "NoSuchKey")) and not transient(client_error(403, "AccessDenied"))
    assert not transient(RawSourceError("s3://bank/raw/transactions.csv: no such object or prefix"))
    assert not transient(ZeroDivisionError("division by zero"))
