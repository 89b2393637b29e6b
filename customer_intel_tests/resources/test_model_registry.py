"""The model registry: versions registered by earlier code still load, new ones carry signature, example and lineage."""

import json
import shutil
import sqlite3
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from customer_intel.cltv.family import CLTV
from customer_intel.modeling import daily_scores
from customer_intel_tests.conftest import mlflow_pointed_at, model_registry_at

LEGACY = Path(__file__).resolve().parents[1] / "fixtures" / "legacy_registry"


def relocated_registry(tmp_path: Path) -> Path:
    """A copy of the legacy store whose absolute artifact paths point at the copy."""
    origin = json.loads((LEGACY / "origin.json").read_text())
    target = tmp_path / "registry"
    shutil.copytree(LEGACY, target)
    with sqlite3.connect(target / "mlflow.db") as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for column in [row[1] for row in db.execute(f"PRAGMA table_info({table})") if row[2].upper().startswith(("VARCHAR", "TEXT"))]:
                db.execute(f"UPDATE {table} SET {column} = replace({column}, ?, ?) WHERE {column} LIKE ?",
                           (origin["root"], str(target), f"%{origin['root']}%"))
    return target


@pytest.fixture
def legacy(tmp_path):
    folder = relocated_registry(tmp_path)
    with mlflow_pointed_at(f"sqlite:///{folder / 'mlflow.db'}"):
        yield folder, model_registry_at(folder)


def assert_scores_as_before(now: pd.DataFrame, before: pd.DataFrame) -> None:
    """The same scores as the previous code wrote, except the intervals: one that excluded its point now
    reaches it (issue 18: every published interval contains its point), and the posterior draws behind
    them now go by customer block (a customer's draws no longer depend on who is scored beside it), so
    the bounds are the previous ones up to Monte Carlo noise."""
    intervals = ["purchases_low", "purchases_high", "value_low", "value_high"]
    pd.testing.assert_frame_equal(now.drop(columns=intervals), before.drop(columns=intervals))
    assert (now["purchases_low"] <= now["expected_purchases"]).all() and (now["expected_purchases"] <= now["purchases_high"]).all()
    assert (now["value_low"] <= now["expected_value"]).all() and (now["expected_value"] <= now["value_high"]).all()
    # other draws of the same posterior: each bound moves by a small share of the window on average, and most stay put
    width = float((before["purchases_high"] - before["purchases_low"]).mean())
    for bound in ("purchases_low", "purchases_high"):
        assert float((now[bound] - before[bound]).abs().mean()) <= 0.25 * width, bound
    assert ((now["purchases_low"] == before["purchases_low"]) | (now["purchases_high"] == before["purchases_high"])).mean() > 0.5


def test_a_champion_registered_by_the_previous_code_loads_and_scores_the_same(legacy):
    folder, registry = legacy
    champion = registry.load_champion("cltv")
    assert champion.label == "customer_intel_cltv v2 (bgnbd)"
    # the old scorer kept no cutoff: it comes from the training run's tags, so the gate can still compare like with like
    assert champion.cutoff == "2026-04-01" and champion.horizon_days == 90
    features = pd.read_parquet(folder / "features.parquet")
    assert_scores_as_before(champion.scorer.score(features), pd.read_parquet(folder / "expected_v2.parquet"))
    # and it goes through today's daily scores unchanged
    scores = daily_scores(CLTV, features, champion.scorer, champion.label)
    # to the last bits: numpy/scipy releases may round the hypergeometric terms one ulp apart
    np.testing.assert_allclose(scores["cltv_expected_purchases"], pd.read_parquet(folder / "expected_v2.parquet")["expected_purchases"],
                               rtol=1e-12)
    assert scores["cltv_horizon_days"].eq(90).all() and scores["cltv_model"].eq("customer_intel_cltv v2 (bgnbd)").all()


def test_an_ml_version_registered_by_the_previous_code_loads_and_scores_the_same(legacy):
    folder, registry = legacy
    registry.configure()
    model = mlflow.pyfunc.load_model("models:/customer_intel_cltv/1")
    scorer = model.unwrap_python_model().scorer
    assert scorer.champion == "ridge" and scorer.regressor is not None
    features = pd.read_parquet(folder / "features.parquet")
    assert_scores_as_before(scorer.score(features), pd.read_parquet(folder / "expected_v1.parquet"))
    # the same model at another horizon, as the gate asks for: the stacked BG/NBD inputs stay at the horizon it was
    # trained on, so the regressor sees what it learnt from and only its output scales with the horizon
    longer = scorer.at_horizon(180)
    assert longer.horizon_days == 180 and scorer.horizon_days == 90
    assert longer.score(features)["expected_purchases"].sum() == pytest.approx(2 * scorer.score(features)["expected_purchases"].sum(), rel=1e-9)


def test_a_pending_version_is_deleted_only_when_no_promotion_can_still_be_moving_its_alias(legacy):
    """A version tagged pending is deleted by the next promotion only if the run that registered it has ended or it
    has been pending for longer than any promotion takes; one that became the champion meanwhile is kept and promoted."""
    from customer_intel.resources.model_registry import PROMOTION_TAG

    _, registry = legacy
    client, name = registry.client(), "customer_intel_cltv"
    source = client.get_model_version(name, "2").source

    def pending(run_id: str) -> str:
        return client.create_model_version(name, source, tags={PROMOTION_TAG: "pending", "dagster_run_id": run_id}).version

    live, dead = pending("still-running"), pending("has-ended")
    ended = {"has-ended"}.__contains__
    assert registry.discard_unpromoted("cltv", ended) == [dead]
    assert client.get_model_version(name, live).tags[PROMOTION_TAG] == "pending"  # its promotion may be in flight
    client.set_registered_model_alias(name, "champion", live)  # ... and it was: the alias moved to it
    assert registry.discard_unpromoted("cltv", ended, stale_after_seconds=0) == []
    assert client.get_model_version(name, live).tags[PROMOTION_TAG] == "promoted"
    stale = pending("unknown-to-this-instance")
    assert registry.discard_unpromoted("cltv", ended) == []
    assert registry.discard_unpromoted("cltv", ended, stale_after_seconds=0) == [stale]
    assert registry.champion_version("cltv").version == live
    assert sorted(int(v.version) for v in client.search_model_versions(f"name = '{name}'")) == [1, 2, int(live)]
