"""The scoring API as a CRM meets it: a real uvicorn server on 127.0.0.1 over the small bank's champions and scored day.

Every endpoint must give the numbers the batch published in ``scored_customers`` for the same customer
and day, by id and from the customer's raw transactions; credentials, validation and the audit log
(shipped to a moto S3 endpoint) are checked on the same server.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import requests

from customer_intel.resources.warehouse import Warehouse
from customer_intel_tests.conftest import SMALL_END_DATE
from customer_intel_tests.serving.conftest import PASSWORD, USER, ApiServer, api_env, audit_lines

ENDPOINTS = {"/predict_cltv": "cltv", "/predict_churn": "churn", "/uplift_score": "uplift", "/segment": "segment"}
BUCKET = "api-audit"


@pytest.fixture(scope="module")
def batch(scored_day):
    root, raw_dir, warehouse = scored_day
    store = Warehouse(root=str(warehouse))
    return {
        "scored": store.read_date("scored_customers", SMALL_END_DATE),
        "embeddings": store.read_date("customer_embeddings", SMALL_END_DATE),
        "transactions": pd.read_parquet(raw_dir / "transactions.parquet"),
        "customers": pd.read_parquet(raw_dir / "customers.parquet"),
    }


@pytest.fixture(scope="module")
def s3_audit(s3_endpoint):
    import boto3

    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing")
    client.create_bucket(Bucket=BUCKET)
    return client, {"CUSTOMER_INTEL_S3_ENDPOINT_URL": s3_endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                    "AWS_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def api(scored_day, s3_audit, tmp_path_factory):
    root, _, warehouse = scored_day
    _, s3_env = s3_audit
    folder = tmp_path_factory.mktemp("api")
    env = api_env(root, warehouse, CUSTOMER_INTEL_API_AUDIT_URI=f"s3://{BUCKET}/main", CUSTOMER_INTEL_API_AUDIT_DIR=str(folder / "audit"),
                  **s3_env)
    server = ApiServer(env, folder / "server.log").start()
    server.request_ids = []  # every request id the server answered with, for the audit test at the end
    yield server
    server.stop()


def call(api: ApiServer, path: str, body: dict) -> dict:
    response = api.post(path, body)
    assert response.status_code == 200, response.text
    api.request_ids.append(response.headers["X-Request-ID"])
    assert response.json()["request_id"] == response.headers["X-Request-ID"]
    return response.json()


def same(value, expected) -> bool:
    if expected is None or (isinstance(expected, float) and math.isnan(expected)) or expected is pd.NA:
        return value is None
    if isinstance(expected, float | np.floating):
        return value is not None and math.isclose(value, float(expected), rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(expected, np.integer | np.bool_):
        return value == expected.item()
    return value == expected


def assert_batch_numbers(body: dict, row: pd.Series, family_prefix: str) -> None:
    columns = [c for c in row.index if c.startswith(family_prefix) and c != "uplift_offers"]
    assert set(columns) <= set(body["scores"]), sorted(set(columns) - set(body["scores"]))
    wrong = {c: (body["scores"][c], row[c]) for c in columns if not same(body["scores"][c], row[c])}
    assert not wrong, wrong


def sample_ids(scored: pd.DataFrame) -> list[str]:
    """Two customers of each churn band (the high ones carry reasons and a counterfactual)."""
    ids = []
    for band in ("high", "medium", "low"):
        ids += scored.loc[scored["churn_risk_band"] == band, "customer_id"].sort_values().head(2).tolist()
    return ids


def raw_body(batch, customer_id: str) -> dict:
    tx = batch["transactions"]
    rows = tx.loc[(tx["customer_id"] == customer_id) & (tx["ts"] < pd.Timestamp(SMALL_END_DATE, tz="UTC") + pd.Timedelta(days=1))]
    profile = batch["customers"].loc[batch["customers"]["customer_id"] == customer_id].iloc[0].drop("customer_id").to_dict()
    return {"customer_id": customer_id, "as_of": SMALL_END_DATE,
            "transactions": [{"ts": r.ts.isoformat(), "amount": float(r.amount), "category": r.category, "channel": r.channel}
                             for r in rows.itertuples()],
            "profile": {k: (float(v) if k == "Avg_Credit_Limit" else int(v)) for k, v in profile.items()}}


def test_every_endpoint_by_id_gives_the_published_numbers(api, batch):
    scored = batch["scored"].set_index("customer_id", drop=False)
    ids = sample_ids(batch["scored"])
    assert len(ids) == 6
    for customer_id in ids:
        row = scored.loc[customer_id]
        for path, prefix in ENDPOINTS.items():
            body = call(api, path, {"customer_id": customer_id})
            assert (body["customer_id"], body["as_of"], body["source"]) == (customer_id, SMALL_END_DATE, "published")
            assert_batch_numbers(body, row, prefix)
            assert body["model"]["label"] == row[f"{prefix}_model"]
    high = scored.loc[ids[0]]
    churn = call(api, "/predict_churn", {"customer_id": ids[0]})
    assert churn["risk_band"] == "high" and churn["probability"] == pytest.approx(high["churn_probability"], rel=1e-12)
    assert [r["feature"] for r in churn["reasons"]] == [high[f"churn_reason_{k}"] for k in (1, 2, 3) if isinstance(high[f"churn_reason_{k}"], str)]
    assert churn["counterfactual"] == high["churn_counterfactual"] and churn["counterfactual"]
    assert 0 < churn["threshold"] < 1 and churn["horizon_days"] == high["churn_horizon_days"]


def test_raw_transactions_as_of_the_day_give_the_batch_numbers(api, batch):
    scored = batch["scored"].set_index("customer_id", drop=False)
    for customer_id in sample_ids(batch["scored"])[::2]:  # one customer of each band
        body = raw_body(batch, customer_id)
        for path, prefix in ENDPOINTS.items():
            answer = call(api, path, body)
            assert answer["source"] == "request" and answer["as_of"] == SMALL_END_DATE
            assert_batch_numbers(answer, scored.loc[customer_id], prefix)


def test_similar_customers_are_the_exact_nearest_of_the_published_vectors(api, batch):
    embeddings = batch["embeddings"].dropna(subset=["embedding_vector"]).reset_index(drop=True)
    vectors = np.vstack(embeddings["embedding_vector"].map(lambda v: np.asarray(v, dtype=np.float64)))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = embeddings["customer_id"].astype(str).tolist()
    for customer_id in sample_ids(batch["scored"])[:3]:
        i = ids.index(customer_id)
        cosine = vectors @ vectors[i]
        cosine[i] = -np.inf
        order = np.argsort(-cosine, kind="stable")[:5]
        for body in ({"customer_id": customer_id, "k": 5}, {**raw_body(batch, customer_id), "k": 5}):
            answer = call(api, "/similar_customers", body)
            assert [n["customer_id"] for n in answer["neighbours"]] == [ids[j] for j in order]
            assert [n["similarity"] for n in answer["neighbours"]] == pytest.approx(cosine[order].tolist(), abs=1e-5)
            assert "flat" in answer["index"] and answer["model"]["family"] == "embeddings"


def test_uplift_answers_every_offer_with_its_quadrant(api, batch):
    row = batch["scored"].iloc[0]
    answer = call(api, "/uplift_score", {"customer_id": row["customer_id"]})
    offers = json.loads(row["uplift_offers"])
    assert [o["offer"] for o in answer["offers"]] == offers
    best = next(o for o in answer["offers"] if o["offer"] == answer["best_offer"])
    assert (best["uplift"], best["quadrant"]) == (pytest.approx(row["uplift"], rel=1e-12), row["uplift_quadrant"])
    assert answer["quadrant"] == row["uplift_quadrant"] in ("persuadable", "sure_thing", "lost_cause", "sleeping_dog")


def test_models_and_health_name_every_champion(api, batch):
    models = api.get("/models").json()
    assert [f["family"] for f in models["families"]] == ["cltv", "segmentation", "churn", "uplift", "embeddings"]
    for family in models["families"]:
        assert family["version"] == "1" and family["candidate"] and family["trained_at"].startswith("20")
        assert family["cutoff"] <= SMALL_END_DATE  # uplift's is its campaign's send day
        assert family["label"] == f"customer_intel_{family['family']} v1 ({family['candidate']})"
    assert models["published_day"] == SMALL_END_DATE and "600 customers" in models["published"]
    health = requests.get(f"{api.url}/health", timeout=10).json()  # no credentials needed
    assert health["status"] == "ok" and health["problems"] == [] and len(health["champions"]) == 5


def test_bad_requests_are_refused_naming_the_field(api, batch):
    customer_id = batch["scored"]["customer_id"].iloc[0]
    body = raw_body(batch, customer_id)
    cases = [
        ({**body, "transactions": [*body["transactions"][:1], {"ts": "yesterday", "amount": 1.0}]}, 422, "transactions[1].ts"),
        ({**body, "as_of": None}, 422, "as_of is required with transactions"),
        ({"customer_id": customer_id, "colour": "blue"}, 422, "colour: Extra inputs are not permitted"),
        ({**body, "transactions": [{"ts": "2026-07-02T00:00:00Z", "amount": 3.0}]}, 422, "transactions[0].ts 2026-07-02T00:00:00+00:00 is after as_of"),
        ({**body, "profile": {**body["profile"], "Total_calls_made": -1}}, 422, "profile.Total_calls_made: Input should be greater than or equal to 0"),
        ({**body, "transactions": [{"ts": "2026-06-01T00:00:00Z", "amount": "NaN"}]}, 422, "transactions[0].amount"),
        ({"customer_id": "C9999999"}, 404, "customer_id 'C9999999' is not in the features published for 2026-06-30"),
        ({"customer_id": customer_id, "as_of": "2026-06-01"}, 422, "as_of 2026-06-01 is not the published day 2026-06-30"),
    ]
    for request, status, message in cases:
        response = api.post("/predict_churn", request)
        assert response.status_code == status, (request, response.text)
        assert message in response.json()["detail"], response.json()
        if "X-Request-ID" in response.headers:  # refused by the scorer rather than by the request's schema: audited too
            api.request_ids.append(response.headers["X-Request-ID"])


def test_credentials_are_required(api):
    for auth in (None, (USER, "wrong-password-123"), ("someone", PASSWORD)):
        response = requests.post(f"{api.url}/predict_churn", json={"customer_id": "C0000001"}, auth=auth, timeout=10)
        assert response.status_code == 401, response.text
        assert response.headers["WWW-Authenticate"].startswith("Basic")
    for path in ("/models", "/at-risk", "/docs", "/openapi.json"):
        response = requests.get(api.url + path, timeout=10)
        assert response.status_code == 401 and response.headers["WWW-Authenticate"].startswith("Basic"), path
    assert api.get("/openapi.json").json()["info"]["title"] == "customer_intel scoring API"
    # refused before the body is read: a malformed body without credentials is a 401, not a 422
    assert requests.post(f"{api.url}/predict_churn", data=b"{not json", timeout=10).status_code == 401


def test_oversized_and_chunked_bodies_are_refused_before_they_are_parsed(api):
    big = b'{"customer_id": "' + b"x" * (17 * 1024 * 1024) + b'"}'
    response = api.session.post(f"{api.url}/predict_churn", data=big, headers={"content-type": "application/json"}, timeout=60)
    assert response.status_code == 413 and "over the limit of 16,777,216" in response.json()["detail"]

    def chunks():  # no Content-Length: counted while it streams
        yield b'{"customer_id": "'
        for _ in range(17):
            yield b"x" * (1024 * 1024)
        yield b'"}'

    response = api.session.post(f"{api.url}/predict_churn", data=chunks(), headers={"content-type": "application/json"}, timeout=60)
    assert response.status_code == 413 and "CUSTOMER_INTEL_API_MAX_BODY_BYTES" in response.json()["detail"]


def test_event_profiles_are_typed_or_refused_naming_the_field(api):
    profile = {"customer_id": "C0000001", "Avg_Credit_Limit": "oops", "Total_Credit_Cards": 2, "Total_visits_bank": 0,
               "Total_visits_online": 1, "Total_calls_made": 0}
    response = api.post("/events", {"as_of": "2026-06-30T00:00:00Z", "rescore": False, "customers": [profile]})
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "customers[0].Avg_Credit_Limit"
    response = api.post("/events", {"as_of": "2026-06-30T00:00:00Z", "rescore": False, "customers": [{**profile, "colour": "red"}]})
    assert response.status_code == 422 and "customers[0].colour: Extra inputs are not permitted" in response.json()["detail"]
    response = api.post("/events", {"as_of": "2026-06-30T00:00:00Z", "rescore": False,
                                    "transactions": [{"customer_id": "C" * 201, "ts": "2026-06-29T00:00:00Z", "amount": 1.0}]})
    assert response.status_code == 422 and "transactions[0].customer_id" in response.json()["detail"]


def test_zz_every_audited_request_is_shipped_on_stop(api, s3_audit):
    """Last test of the module: a graceful stop ships every line; each answered request is there exactly once."""
    client, _ = s3_audit
    call(api, "/predict_churn", {"customer_id": "C0000001"})  # a churn line to inspect, also when this test runs alone
    assert api.stop() in (0, -15)
    lines = audit_lines(client, BUCKET, "main/")
    ids = [line["request_id"] for line in lines]
    assert sorted(ids) == sorted(api.request_ids) and len(set(ids)) == len(ids)
    line = next(x for x in lines if x["endpoint"] == "/predict_churn" and x["status"] == 200)
    assert line["caller"] == f"{USER}@127.0.0.1" and len(line["inputs_sha256"]) == 64 and line["latency_ms"] > 0
    assert line["model_versions"] == {"churn": line["outputs"]["model"]["label"]}
    assert line["outputs"]["scores"]["churn_probability"] == line["outputs"]["probability"]
    assert {x["status"] for x in lines} <= {200, 404, 422} and 200 in {x["status"] for x in lines}
