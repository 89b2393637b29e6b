"""The uplift split: features only from before the send day, a stratified customer holdout, several arms, profile-only files."""

import numpy as np
import pandas as pd
import pytest

from customer_intel.modeling.split import REFIT, TEST, VALIDATION, TimeSplit
from customer_intel.uplift.family import UPLIFT
from customer_intel.uplift.frames import UpliftInputError, build_uplift_split, feature_columns, normalise_campaigns


def test_features_come_only_from_before_the_send_day(bank_frames):
    campaigns, tx, customers = bank_frames["campaigns"], bank_frames["transactions"], bank_frames["customers"]
    split = build_uplift_split(campaigns, tx, customers, refit=False)
    rows = pd.concat([split.validation, split.test])
    sent_day = campaigns["sent_at"].dt.normalize().iloc[0]
    assert (rows["as_of"] == sent_day - pd.Timedelta(days=1)).all()
    # everything on or after the send day rewritten: more purchases, other amounts; the campaign rows' features must not move
    late = tx["ts"] >= sent_day
    assert late.any()
    changed = pd.concat([tx.loc[~late], tx.loc[late].assign(amount=tx.loc[late, "amount"] * 7 + 3),
                         tx.loc[late].assign(ts=tx.loc[late, "ts"] + pd.Timedelta(hours=1), amount=500.0)], ignore_index=True)
    again = build_uplift_split(campaigns, changed, customers, refit=False)
    columns = feature_columns(split.validation)
    pd.testing.assert_frame_equal(split.validation[["customer_id", *columns]], again.validation[["customer_id", *columns]])
    # and the day before the send does move them (the check above could not pass by features ignoring transactions)
    early = tx["ts"].dt.normalize() == sent_day - pd.Timedelta(days=1)
    bumped = build_uplift_split(campaigns, pd.concat([tx, tx.loc[early].assign(amount=999.0)], ignore_index=True), customers, refit=False)
    assert not split.validation["total_spend"].equals(bumped.validation["total_spend"])


def test_the_holdout_is_stratified_disjoint_and_round_trips(bank_frames):
    split = build_uplift_split(bank_frames["campaigns"], bank_frames["transactions"], bank_frames["customers"], test_share=0.3, folds=3)
    train, test = split.validation, split.test
    assert split.holdout and set(split.parts) == {VALIDATION, TEST, REFIT}
    assert not set(train["customer_id"]) & set(test["customer_id"])
    assert len(test) / (len(train) + len(test)) == pytest.approx(0.3, abs=0.01)
    for stratum, rows in pd.concat([train, test]).groupby(["treated", "converted"]):
        share = (rows["fold"] < 0).mean()
        assert share == pytest.approx(0.3, abs=0.02), stratum
    assert sorted(train["fold"].unique()) == [0, 1, 2] and (test["fold"] == -1).all()
    assert split.cutoff_of(REFIT) == pd.Timestamp(bank_frames["transactions"]["ts"].max()).normalize()
    again = TimeSplit.from_frame(split.to_frame())
    assert again.holdout and again.describe() == split.describe()
    with pytest.raises(ValueError, match="share .* customers"):
        TimeSplit(split.cutoff, 30, {VALIDATION: train, TEST: train.head(5)}, holdout=True)


def test_refusals_name_the_problem(bank_frames):
    campaigns = bank_frames["campaigns"]
    with pytest.raises(UpliftInputError, match="no row with the control label 'control' \\(labels: A, B\\)"):
        normalise_campaigns(campaigns.assign(arm=np.where(campaigns["treated"] == 1, "A", "B")))
    with pytest.raises(UpliftInputError, match="uplift needs both a treated and a control group"):
        normalise_campaigns(campaigns.assign(treated=1))
    with pytest.raises(UpliftInputError, match="repeat a \\(customer_id, campaign_id\\) pair"):
        normalise_campaigns(pd.concat([campaigns, campaigns.head(2)]))


def test_a_multi_arm_campaign_runs_end_to_end(bank_frames):
    """Two offers against one control: one model per offer, a Qini per offer, a column per offer in the scores."""
    campaigns = bank_frames["campaigns"].drop(columns=["treated"]).copy()
    rng = np.random.default_rng(0)
    treated = bank_frames["campaigns"]["treated"].to_numpy() == 1
    campaigns["arm"] = np.where(treated, np.where(rng.random(len(campaigns)) < 0.5, "cashback", "miles"), "holdout")
    split = build_uplift_split(campaigns, bank_frames["transactions"], bank_frames["customers"], control_arm="holdout")
    assert set(split.validation["offer"]) == {"cashback", "miles", "control"}
    # 3,000 customers in two arms: too few for a Qini above the random band, which is not what this test is about
    comparison = UPLIFT.compare(split, include=["t_logistic", "response"], seed=0, require_above_random=False, log=lambda _: None)
    assert {"qini_cashback", "qini_miles", "test_qini_cashback", "test_qini_miles"} <= set(comparison.table.columns)
    assert comparison.table.loc["t_logistic", "qini"] == pytest.approx(np.average(
        comparison.table.loc["t_logistic", ["qini_cashback", "qini_miles"]].astype(float),
        weights=[((split.validation["offer"] == o) | (split.validation["treated"] == 0)).sum() for o in ("cashback", "miles")]))
    scores = comparison.production_scorer().score(split.parts[REFIT])
    assert {"for_cashback", "for_miles", "best_offer", "quadrant"} <= set(scores.columns)
    assert set(scores["best_offer"]) <= {"cashback", "miles"}
    assert (scores["uplift"] == scores[["for_cashback", "for_miles"]].max(axis=1)).all()


def test_a_profile_only_campaign_file_runs_end_to_end(bank_frames):
    """An A/B test on profile data alone: features from the builder's profile mode, no transactions at all."""
    split = build_uplift_split(bank_frames["campaigns"], None, bank_frames["customers"])
    assert (split.validation["feature_mode"] == "profile").all()
    assert "Avg_Credit_Limit" in feature_columns(split.validation) and "total_spend" not in split.validation
    comparison = UPLIFT.compare(split, include=["t_logistic"], seed=0, require_above_random=False, log=lambda _: None)
    scores = comparison.production_scorer().score(split.parts[REFIT])
    assert scores["uplift"].notna().all() and set(scores["quadrant"]) <= {"persuadable", "sure_thing", "lost_cause", "sleeping_dog"}


def test_files_of_both_assignment_forms_mix_row_by_row(bank_frames):
    """An old 0/1 export beside a new multi-arm one: rows with an arm use it, rows with only the flag keep it."""
    campaigns = bank_frames["campaigns"]
    old, new = campaigns.iloc[: len(campaigns) // 2].copy(), campaigns.iloc[len(campaigns) // 2:].copy()
    new["arm"] = np.where(new["treated"] == 1, "cashback", "control")
    new["treated"] = np.nan
    old["arm"] = None
    rows = normalise_campaigns(pd.concat([old, new], ignore_index=True))
    first = rows.iloc[: len(old)]
    assert set(rows["offer"]) == {"cashback", campaigns["campaign_id"].iloc[0], "control"}
    assert (first["treated"].to_numpy() == old["treated"].to_numpy()).all()
    assert (rows.iloc[len(old):]["treated"].to_numpy() == (new["arm"] == "cashback").to_numpy()).all()
    neither = pd.concat([old.assign(treated=np.nan).head(2), new], ignore_index=True)
    with pytest.raises(UpliftInputError, match="2 rows have neither an arm nor a treated flag"):
        normalise_campaigns(neither)


def test_a_given_test_index_is_the_test_part_and_the_rest_is_folded_at_random(bank_frames):
    ids = bank_frames["campaigns"]["customer_id"].astype(str)
    held = ids.iloc[::4]
    split = build_uplift_split(bank_frames["campaigns"], bank_frames["transactions"], bank_frames["customers"], test_index=held, refit=False)
    assert set(split.test["customer_id"]) == set(held) and not set(split.validation["customer_id"]) & set(held)
    folds = split.validation["fold"].to_numpy()
    assert sorted(set(folds)) == [0, 1, 2] and not (folds[:30] == np.arange(30) % 3).all()  # not in file order


def test_campaigns_whose_window_is_still_open_are_left_out(bank_frames):
    campaigns, tx = bank_frames["campaigns"], bank_frames["transactions"]
    recent = campaigns.assign(campaign_id="RECENT", sent_at=tx["ts"].max().normalize() - pd.Timedelta(days=5))
    split = build_uplift_split(pd.concat([campaigns, recent], ignore_index=True), tx, bank_frames["customers"], refit=False)
    assert set(split.validation["campaign_id"]) == {campaigns["campaign_id"].iloc[0]}
    with pytest.raises(UpliftInputError, match="response window is still open"):
        build_uplift_split(recent, tx, bank_frames["customers"])


def test_fit_and_score_fits_the_champion_procedure_on_given_rows_and_scores_others(bank_frames):
    from customer_intel.features import build_customer_features
    from customer_intel.uplift.compare import fit_and_score

    tx, customers = bank_frames["transactions"], bank_frames["customers"]
    today = build_customer_features(tx, customers, tx["ts"].max()).frame.head(50)
    # 3,000 customers: too few for a Qini above the random band, which is not what this test is about
    comparison, scores = fit_and_score(bank_frames["campaigns"], today, tx, customers, include=["t_logistic", "response"],
                                       require_above_random=False)
    assert comparison.champion in ("t_logistic", "response") and len(scores) == 50
    assert scores["uplift"].notna().all() and scores.index.equals(today.index)
