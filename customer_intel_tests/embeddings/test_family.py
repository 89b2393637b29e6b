"""The embeddings family: rows as of a day, the split in successive windows, the neighbour metric and the scorer."""

import cloudpickle
import numpy as np
import pandas as pd
import pytest

from customer_intel.embeddings.candidates import embedding_candidates
from customer_intel.embeddings.family import EMBEDDINGS, embedding_metrics, embedding_row_loss, embedding_score_frame
from customer_intel.embeddings.frames import TARGET, EmbeddingSplitError, bags_from_frame, embedding_rows, encode_bags
from customer_intel.embeddings.index import similar_customers
from customer_intel.embeddings.tokens import token_bags
from customer_intel.modeling import Prediction
from customer_intel.modeling.family import CandidateConfigError, FamilyNotApplicable
from customer_intel.modeling.split import FIT, REFIT, TEST, VALIDATION, TimeSplit
from customer_intel.table_names import RAW_CUSTOMERS, RAW_TRANSACTIONS


@pytest.fixture(scope="module")
def inputs(small_frames):
    return {RAW_TRANSACTIONS: small_frames["transactions"], RAW_CUSTOMERS: small_frames["customers"]}


def test_bags_survive_the_frame_and_rows_see_nothing_after_their_day(inputs):
    tx = inputs[RAW_TRANSACTIONS]
    day = pd.Timestamp("2026-03-01", tz="UTC")
    bags = token_bags(tx, day)
    back = bags_from_frame(encode_bags(bags).reset_index())
    for i in (0, 7, len(bags) - 1):
        mine = dict(zip(np.asarray(bags.vocabulary)[bags.bag(i)[0]], bags.bag(i)[1]))
        theirs = dict(zip(np.asarray(back.vocabulary)[back.bag(i)[0]], back.bag(i)[1]))
        assert mine == theirs and sum(mine.values()) == bags.sizes()[i]
    later = tx["ts"] >= day + pd.Timedelta(days=1)
    rewritten = tx.assign(category=tx["category"].where(~later, "travel"), amount=tx["amount"].where(~later, 999.0))
    pd.testing.assert_frame_equal(embedding_rows(tx, inputs[RAW_CUSTOMERS], day), embedding_rows(rewritten, inputs[RAW_CUSTOMERS], day))
    moved = tx.assign(category=tx["category"].where(tx["ts"].dt.normalize() != day, "travel"))
    assert not embedding_rows(moved, None, day)["tokens"].equals(embedding_rows(tx, None, day)["tokens"])


def test_the_split_runs_in_successive_windows_with_next_period_top_categories(inputs):
    split = EMBEDDINGS.split(inputs)
    last = inputs[RAW_TRANSACTIONS]["ts"].max().normalize()
    assert split.cutoff == last - pd.Timedelta(days=180) and set(split.parts) == {FIT, VALIDATION, TEST, REFIT}
    assert split.cutoff_of(FIT) == split.cutoff and split.cutoff_of(TEST) == last - pd.Timedelta(days=90) and split.cutoff_of(REFIT) == last
    assert TARGET not in split.fit and split.validation[TARGET].notna().mean() > 0.5
    # the target is the category each customer bought most in the 90 days after the cutoff
    tx = inputs[RAW_TRANSACTIONS]
    window = tx.loc[(tx["ts"] >= split.cutoff + pd.Timedelta(days=1)) & (tx["ts"] < split.cutoff + pd.Timedelta(days=91)) & (tx["amount"] >= 0)]
    counts = window.groupby(["customer_id", "category"]).size().reset_index(name="n").sort_values(["customer_id", "n", "category"],
                                                                                                   ascending=[True, False, True])
    expected = counts.drop_duplicates("customer_id").set_index("customer_id")["category"]
    got = split.validation.set_index("customer_id")[TARGET].dropna()
    pd.testing.assert_series_equal(got.sort_index(), expected.reindex(got.index).sort_index(), check_names=False)
    assert set(got.index) == set(expected.index) & set(split.validation["customer_id"])
    again = TimeSplit.from_frame(split.to_frame())
    assert again.describe() == split.describe()


def test_no_transactions_skips_the_family_and_short_history_says_why(inputs):
    with pytest.raises(FamilyNotApplicable, match="no transactions"):
        EMBEDDINGS.split({RAW_TRANSACTIONS: inputs[RAW_TRANSACTIONS].iloc[:0], RAW_CUSTOMERS: inputs[RAW_CUSTOMERS]})
    tx = inputs[RAW_TRANSACTIONS]
    with pytest.raises(FamilyNotApplicable, match="name 1 purchase category after .* nothing for neighbours to predict"):
        EMBEDDINGS.split({RAW_TRANSACTIONS: tx.assign(category="all")})
    short = tx.loc[tx["ts"] >= tx["ts"].max() - pd.Timedelta(days=100)]
    with pytest.raises(EmbeddingSplitError, match="needs 30 days before it and the 90-day window after it"):
        EMBEDDINGS.split({RAW_TRANSACTIONS: short})


def _split_with(target: list[str]) -> TimeSplit:
    rows = pd.DataFrame({"customer_id": [f"C{i}" for i in range(len(target))], TARGET: target,
                         "tokens": ['{"cat=fuel":3,"cat=travel":1}'] * len(target)})  # everyone's past favourite: fuel
    return TimeSplit("2026-01-01", 90, {FIT: rows.drop(columns=TARGET), VALIDATION: rows}, {FIT: "2026-01-01"}, {FIT: 0})


def test_neighbours_that_buy_alike_beat_popularity_and_random_vectors_do_not():
    target = ["fuel"] * 60 + ["travel"] * 30 + [None] * 10
    split = _split_with(target)
    rng = np.random.default_rng(0)
    grouped = np.array([[1.0, 0.0] if t == "fuel" else [0.0, 1.0] for t in target]) + 0.05 * rng.normal(size=(100, 2))
    good = embedding_metrics(split, Prediction(grouped.astype(np.float32)))
    assert good["next_category_accuracy"] == 1.0 and good["popularity_accuracy"] == pytest.approx(60 / 90)
    assert good["customers_buying_next"] == 90 and good["lift_over_popularity"] == pytest.approx(1 - 60 / 90)
    assert good["own_history_accuracy"] == pytest.approx(60 / 90)
    noise = embedding_metrics(split, Prediction(rng.normal(size=(100, 8)).astype(np.float32)))
    assert noise["next_category_accuracy"] < 0.8
    loss = embedding_row_loss(split, Prediction(grouped.astype(np.float32)))
    assert len(loss) == 90 and loss.mean() == -good["next_category_accuracy"]


def test_a_snapshot_profile_stays_out_of_past_rows_unless_asked(inputs):
    from customer_intel.embeddings.candidates import feature_set_columns
    from customer_intel.modeling.candidate import CandidateSkipped

    split = EMBEDDINGS.split(inputs)  # raw_customers here is a snapshot (no valid_from): today's values
    assert feature_set_columns(split.fit, "profile") == [] and feature_set_columns(split.test, "profile") == []
    assert feature_set_columns(split.parts[REFIT], "profile")  # at the last day the snapshot is the day's value
    hybrid = embedding_candidates(include=["customer2vec_profile"], dim=4, epochs=1)[-1]
    with pytest.raises(CandidateSkipped, match="no profile columns"):
        hybrid.fit(split.origin(VALIDATION))
    asked = EMBEDDINGS.split(inputs, snapshot_profile_in_training=True)
    assert feature_set_columns(asked.fit, "profile") == ["Avg_Credit_Limit", "Total_Credit_Cards", "Total_visits_bank",
                                                         "Total_visits_online", "Total_calls_made"]


def test_scorers_give_unit_vectors_zero_without_history_and_keep_their_index_through_pickling(inputs):
    split = EMBEDDINGS.split(inputs, snapshot_profile_in_training=True)
    candidates = {c.name: c for c in embedding_candidates(include=["all_features", "customer2vec_profile"], dim=8, epochs=2)}
    fitted = candidates["customer2vec_profile"].fit(split.origin(VALIDATION))
    scorer = cloudpickle.loads(cloudpickle.dumps(fitted.to_scorer()))
    rows = split.validation.head(50).copy()
    rows.loc[rows.index[:3], "tokens"] = "{}"
    rows.loc[rows.index[-1], "tokens"] = None  # a trailing empty bag too
    scores = scorer.score(rows)
    norms = np.linalg.norm(np.vstack(scores["vector"]), axis=1)
    assert np.allclose(norms, 1.0, atol=1e-5) and (scores["tokens"].iloc[[0, 1, 2, -1]] == 0).all() and (scores["tokens"].iloc[3:-1] > 0).all()
    sequence_only = np.vstack(scores["vector"])[:3, :8]
    assert np.allclose(sequence_only, 0.0)  # no token: the sequence block is zero, the profile block still places the customer
    index = scorer.index()
    assert index.kind == "flat" and len(index.ids) == len(split.fit)
    _, found = index.search(fitted.fit_vectors[:5], 1)
    assert found[:, 0].tolist() == [0, 1, 2, 3, 4]
    first = str(split.fit["customer_id"].iloc[0])
    similar = scorer.similar_customers(first, k=5)  # what the API will ask, from the registered model alone
    assert len(similar) == 5 and first not in [c for c, _ in similar]
    assert [c for c, _ in similar] == [c for c, _ in similar_customers(index, fitted.fit_vectors, first, k=5)]
    features_only = candidates["all_features"].fit(split.origin(VALIDATION)).to_scorer()
    assert features_only.model is None and features_only.dim == len(features_only.features.columns)


def test_the_nightly_frame_carries_each_customers_bag_as_of_the_partition_day(inputs):
    from customer_intel.features import build_customer_features

    day = "2026-05-01"
    features = build_customer_features(inputs[RAW_TRANSACTIONS], inputs[RAW_CUSTOMERS], day).frame
    frame = embedding_score_frame(features, inputs[RAW_TRANSACTIONS], as_of=day)
    expected = encode_bags(token_bags(inputs[RAW_TRANSACTIONS], day))
    # in-process the bags travel in attrs, not as JSON (nothing to write or parse for a million customers)
    assert "tokens" not in frame.columns and (frame.columns == features.columns).all()
    carried = encode_bags(bags_from_frame(frame))
    assert carried.tolist() == features["customer_id"].astype(str).map(expected).fillna("{}").tolist()


def _responsive(campaigns: pd.DataFrame, share: float = 0.4, seed: int = 0) -> pd.DataFrame:
    """The small bank's campaign with ``share`` of its treated customers converted: enough seed responders to judge on."""
    hit = np.random.default_rng(seed).random(len(campaigns)) < share
    return campaigns.assign(converted=((campaigns["treated"] == 1) & hit).astype(np.int8))


def _through_parquet(split: TimeSplit, tmp_path) -> TimeSplit:
    split.to_frame().to_parquet(tmp_path / "frame.parquet")
    return TimeSplit.from_frame(pd.read_parquet(tmp_path / "frame.parquet"))


def test_the_latest_campaign_after_the_test_day_seeds_one_share_and_splits_the_rest_into_two_pools(inputs, small_frames, tmp_path):
    from customer_intel.embeddings.family import embedding_rule_params
    from customer_intel.embeddings.frames import LOOKALIKE_CONVERTED, LOOKALIKE_ROLE, LOOKALIKE_TREATED, lookalike_roles
    from customer_intel.table_names import RAW_CAMPAIGNS

    campaigns = _responsive(small_frames["campaigns"])
    split = _through_parquet(EMBEDDINGS.split({**inputs, RAW_CAMPAIGNS: campaigns}), tmp_path)  # as the models asset reads it
    validation, test = (split.validation.set_index("customer_id"), split.test.set_index("customer_id"))
    sent = campaigns["sent_at"].min()
    assert split.cutoff_of(TEST) < sent and sent < split.cutoff_of(REFIT) - pd.Timedelta(days=30)  # sent after the vectors' days
    seeds = set(validation.index[validation[LOOKALIKE_ROLE] == "seed"]), set(test.index[test[LOOKALIKE_ROLE] == "seed"])
    shared = set(validation.index) & set(test.index)
    assert seeds[0] & shared == seeds[1] & shared  # a seed is a seed in both parts
    pools = set(validation.index[validation[LOOKALIKE_ROLE] == "pool"]), set(test.index[test[LOOKALIKE_ROLE] == "pool"])
    assert pools[0] and pools[1] and not pools[0] & pools[1] and not (pools[0] | pools[1]) & (seeds[0] | seeds[1])
    # a third each, by a hash of campaign and customer: the same whatever the row order
    ids = validation.index.to_numpy()
    assert (lookalike_roles(ids, "CAMP-2026-05-REACTIVATE", 3) == lookalike_roles(ids[::-1], "CAMP-2026-05-REACTIVATE", 3)[::-1]).all()
    assert 0.28 < len(pools[0]) / validation[LOOKALIKE_TREATED].notna().sum() < 0.39
    by_id = campaigns.set_index("customer_id")
    in_campaign = validation.loc[validation[LOOKALIKE_TREATED].notna()]
    assert (in_campaign[LOOKALIKE_TREATED] == by_id["treated"].reindex(in_campaign.index)).all()
    assert (in_campaign[LOOKALIKE_CONVERTED] == by_id["converted"].reindex(in_campaign.index)).all()
    assert validation.loc[~validation.index.isin(by_id.index), [LOOKALIKE_ROLE, LOOKALIKE_TREATED]].isna().all().all()
    assert embedding_rule_params(split) == {"select_on": "lookalike"}
    # the bank's own campaign converts 8% of the treated: 7 seed responders, too few to judge lookalikes on, so no campaign
    # is used and the next category decides (a frame without a campaign survives parquet too)
    plain = _through_parquet(EMBEDDINGS.split({**inputs, RAW_CAMPAIGNS: small_frames["campaigns"]}), tmp_path)
    assert plain.validation[LOOKALIKE_ROLE].isna().all() and embedding_rule_params(plain) == {"select_on": "next_category"}


@pytest.mark.parametrize(("days_after_test", "days_before_last", "used"), [(0, None, False), (1, None, True), (None, 30, True),
                                                                          (None, 29, False)])
def test_a_campaign_is_used_from_the_day_after_the_test_day_until_30_days_before_the_last(inputs, small_frames, days_after_test,
                                                                                              days_before_last, used):
    from customer_intel.embeddings.frames import LOOKALIKE_ROLE
    from customer_intel.table_names import RAW_CAMPAIGNS

    split = EMBEDDINGS.split(inputs)
    test_day, last = split.cutoff_of(TEST), split.cutoff_of(REFIT)
    # the send time of day: 09:00 (the generator's); a send on the test day itself is seen by the test rows' features
    day = test_day + pd.Timedelta(days=days_after_test) if days_after_test is not None else last - pd.Timedelta(days=days_before_last)
    sent = day + pd.Timedelta(hours=9)
    moved = EMBEDDINGS.split({**inputs, RAW_CAMPAIGNS: _responsive(small_frames["campaigns"]).assign(sent_at=sent)})
    assert moved.test[LOOKALIKE_ROLE].notna().any() == used


def test_a_customer_counts_as_converted_if_any_of_its_rows_in_the_campaign_is():
    from customer_intel.embeddings.frames import lookalike_campaigns

    rows = pd.DataFrame({"customer_id": ["A", "A", "B"], "campaign_id": "X", "treated": [1, 1, 0], "converted": [0, 1, 0],
                         "sent_at": pd.Timestamp("2026-05-02 09:00", tz="UTC")})
    [(campaign_id, assigned)] = lookalike_campaigns(rows, pd.Timestamp("2026-04-01", tz="UTC"), pd.Timestamp("2026-06-30", tz="UTC"))
    assert campaign_id == "X" and assigned.set_index("customer_id")["converted"].to_dict() == {"A": 1, "B": 0}


def _lookalike_split(n: int = 600) -> tuple[TimeSplit, np.ndarray]:
    """Seeds, then a pool whose first fifth responds and buys like the seeds; vectors: seeds and responders at (1, 0)."""
    from customer_intel.embeddings.frames import LOOKALIKE_CAMPAIGN, LOOKALIKE_CONVERTED, LOOKALIKE_ROLE, LOOKALIKE_TREATED

    rng = np.random.default_rng(1)
    seeds, pool = 40, n - 40
    role = ["seed"] * seeds + ["pool"] * pool
    responders = np.r_[np.ones(seeds), (np.arange(pool) < pool // 5).astype(float)]
    treated = np.r_[np.ones(seeds), (np.arange(pool) % 2 == 0).astype(float)]
    travel = responders == 1  # responders buy travel, before and after; the rest fuel
    rows = pd.DataFrame({"customer_id": [f"C{i:04d}" for i in range(n)], TARGET: np.where(travel, "travel", "fuel"),
                         "tokens": np.where(travel, '{"cat=travel":3}', '{"cat=fuel":3}'),
                         LOOKALIKE_CAMPAIGN: "CAMP", LOOKALIKE_ROLE: role, LOOKALIKE_TREATED: treated,
                         LOOKALIKE_CONVERTED: responders * treated})
    near = np.where(responders[:, None] == 1, [[1.0, 0.0]], [[0.0, 1.0]]) + 0.01 * rng.normal(size=(n, 2))
    split = TimeSplit("2026-01-01", 90, {FIT: rows, VALIDATION: rows}, {FIT: "2026-01-01"}, {FIT: 0})
    return split, near.astype(np.float32)


def test_an_audience_that_responds_like_its_seeds_has_the_lift_and_its_row_loss_averages_to_minus_it():
    from customer_intel.embeddings.family import LOOKALIKE_RULE, NEXT_CATEGORY_RULE, embedding_rule_params

    split, near = _lookalike_split()
    assert embedding_rule_params(split) == {"select_on": "lookalike"}
    good = embedding_metrics(split, Prediction(near))
    # the pool's treated customers respond at 1/5; the audience (a fifth of the pool) is exactly its responders
    assert good["pool_response"] == pytest.approx(0.2, abs=0.01) and good["lookalike_response"] == 1.0
    assert good["lookalike_response_lift"] == pytest.approx(1 / good["pool_response"]) and good["lookalike_audience"] == 112
    assert good["lookalike_seeds"] == 40 and good["lookalike_uplift"] == 1.0 and good["pool_uplift"] == pytest.approx(0.2, abs=0.01)
    noise = embedding_metrics(split, Prediction(np.random.default_rng(2).normal(size=near.shape).astype(np.float32)))
    assert 0.4 < noise["lookalike_response_lift"] < 2.0
    loss = embedding_row_loss(split, Prediction(near), rule=LOOKALIKE_RULE)
    assert len(loss) == int((split.validation["lookalike_treated"] == 1).sum()) - 40
    assert loss.mean() == pytest.approx(-good["lookalike_response_lift"])
    hits = embedding_row_loss(split, Prediction(near), rule=NEXT_CATEGORY_RULE)
    assert len(hits) == 600 and hits.mean() == -good["next_category_accuracy"]


def test_the_family_judges_lookalikes_when_the_split_can_and_records_the_metric_it_used():
    from customer_intel.embeddings.family import LOOKALIKE_RULE, NEXT_CATEGORY_RULE

    split, _ = _lookalike_split()
    chosen = EMBEDDINGS.compare(split, include=["category_shares"], log=lambda _: None)
    assert chosen.rule == LOOKALIKE_RULE and chosen.rule_params == {"select_on": "lookalike"}
    assert chosen.champion == "category_shares" and chosen.table.loc["category_shares", "lookalike_response_lift"] > 4
    forced = EMBEDDINGS.compare(split, include=["category_shares"], select_on="next_category", log=lambda _: None)
    assert forced.rule == NEXT_CATEGORY_RULE and forced.rule_params == {"select_on": "next_category"}
    assert forced.champion == "category_shares" and forced.table.loc["category_shares", "next_category_accuracy"] == 1.0
    # the paired losses behind the one-SE rule are the chosen rule's: one per treated pool customer, or one per buyer
    split, near = _lookalike_split()
    treated_pool = int(((split.validation["lookalike_role"] == "pool") & (split.validation["lookalike_treated"] == 1)).sum())
    assert len(EMBEDDINGS.row_loss_for(chosen.rule)(split, Prediction(near))) == treated_pool
    assert len(EMBEDDINGS.row_loss_for(forced.rule)(split, Prediction(near))) == 600
    assert EMBEDDINGS.rule_for(select_on="next_category") == NEXT_CATEGORY_RULE
    loose = EMBEDDINGS.rule_for(select_on="lookalike", min_lift_over_popularity=-1.0)
    assert loose.metric == LOOKALIKE_RULE.metric and loose.constraints[0].minimum == -1.0
    with pytest.raises(CandidateConfigError, match="select_on must be 'lookalike' or 'next_category'; got 'persona'"):
        EMBEDDINGS.rule_for(select_on="persona")


def test_the_index_method_reaches_the_registered_index_and_an_unknown_one_is_a_config_error(inputs, monkeypatch):
    import customer_intel.embeddings.index as index_module

    candidates = embedding_candidates(include=["category_shares"], index_method="ivf", dim=4, epochs=1)
    assert {c.index_method for c in candidates} == {"ivf"}
    built = []
    real = index_module.build_index
    monkeypatch.setattr(index_module, "build_index", lambda vectors, ids, **kw: built.append(kw["method"]) or real(vectors, ids, **kw))
    scorer = candidates[-1].fit(EMBEDDINGS.split(inputs).origin(VALIDATION)).to_scorer()
    assert built == ["ivf"] and scorer.index_kind == "flat"  # 500-odd customers: exact, whatever the method above 200k
    with pytest.raises(CandidateConfigError, match="index_method must be one of hnsw, ivf; got 'pq'"):
        EMBEDDINGS.build_candidates(index_method="pq")


def test_the_gate_and_the_registration_rebuild_the_rule_the_comparison_recorded(tmp_path):
    from customer_intel.assets.factory import _rule_of
    from customer_intel.embeddings.family import LOOKALIKE_RULE, NEXT_CATEGORY_RULE

    table = pd.DataFrame({"candidate": ["a", "b"], "rule_select_on": ["lookalike", "next_category"],
                          "rule_min_lift_over_popularity": [np.nan, -1.0]})
    table.to_parquet(tmp_path / "table.parquet")
    rows = pd.read_parquet(tmp_path / "table.parquet")
    assert _rule_of(EMBEDDINGS, rows.iloc[0]) == LOOKALIKE_RULE
    loose = _rule_of(EMBEDDINGS, rows.iloc[1])
    assert loose.metric == NEXT_CATEGORY_RULE.metric and loose.constraints[0].minimum == -1.0


def test_a_forced_lookalike_rule_on_a_split_without_a_campaign_says_what_it_needs():
    split = _split_with(["fuel"] * 60 + ["travel"] * 40)
    with pytest.raises(CandidateConfigError, match="select_on=lookalike needs a campaign sent after the test rows' day"):
        EMBEDDINGS.compare(split, include=["category_shares"], select_on="lookalike", log=lambda _: None)


def test_only_the_scorer_that_is_registered_carries_an_index():
    split, _ = _lookalike_split()
    comparison = EMBEDDINGS.compare(split, include=["category_shares", "rfm_behaviour"], log=lambda _: None)
    logged = comparison.scorer("category_shares", served=False)
    assert logged is not None and logged.index_bytes is None and logged.index() is None
    assert comparison.scorer("category_shares").index_bytes is not None
    assert comparison.scorer("random", served=False) is None
    # without a refit part the champion as evaluated is what is registered: it is logged with its index
    assert comparison.production is None and comparison.registers_as_evaluated(comparison.champion)
    assert not any(comparison.registers_as_evaluated(name) for name in comparison.table.index if name != comparison.champion)
