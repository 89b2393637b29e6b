import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from scipy.optimize import minimize

from customer_intel.ingest import CONTRACTS, RawTable, validate_raw_table
from customer_intel.ingest.reader import SOURCE_FILE, SOURCE_ROW
from customer_intel.synthetic import SyntheticBankConfig, generate_bank
from customer_intel.synthetic.__main__ import main as generate_main


def test_same_seed_same_bank_and_different_seed_different_bank():
    first = generate_bank(n_customers=2_000, seed=3)
    again = generate_bank(n_customers=2_000, seed=3)
    other = generate_bank(n_customers=2_000, seed=4)
    for name in ("customers", "transactions", "campaigns", "truth"):
        assert getattr(first, name).equals(getattr(again, name)), name
    assert not first.transactions.equals(other.transactions)


def _first_repeat_gaps(bank):
    """First inter-purchase gap per customer (days) and whether it was observed before the end."""
    tx = bank.transactions.filter(pa.compute.greater(bank.transactions["amount"], 0)).to_pandas()
    end = pd.Timestamp(bank.config.end_date, tz="UTC") + pd.Timedelta(days=1)
    days = ((tx["ts"] - end) / pd.Timedelta(days=1)).to_numpy()
    ids = tx["customer_id"].to_numpy()
    first = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    counts = np.diff(np.r_[first, len(ids)])
    observed = counts > 1
    second = np.minimum(first + 1, len(ids) - 1)
    gap = np.where(observed, days[second] - days[first], -days[first])
    return gap, observed


def test_realised_purchase_rates_match_configured_gamma_mean_at_100k():
    # BG/NBD: nobody drops out before their first repeat purchase, so the first gap is Exp(lambda),
    # right-censored at the end of history; with lambda ~ Gamma(r, alpha) it is Lomax(r, alpha).
    bank = generate_bank(n_customers=100_000, seed=11)
    gap, observed = _first_repeat_gaps(bank)

    def negative_log_likelihood(theta):
        r, alpha = np.exp(theta)
        ll = np.where(observed, np.log(r) + r * np.log(alpha) - (r + 1) * np.log(alpha + gap), r * (np.log(alpha) - np.log(alpha + gap)))
        return -ll.sum()

    fit = minimize(negative_log_likelihood, [0.0, 0.0], method="Nelder-Mead")
    r, alpha = np.exp(fit.x)
    config = bank.config
    assert fit.success
    assert r / alpha == pytest.approx(config.mean_purchase_rate, rel=0.05)
    assert r == pytest.approx(config.bgnbd_r, rel=0.10)
    truth = bank.truth.to_pandas()
    assert truth["purchase_rate_per_day"].mean() == pytest.approx(config.mean_purchase_rate, rel=0.05)
    # the campaign's measured average effect agrees with its true heterogeneous uplift
    campaigns = bank.campaigns.to_pandas()
    treated = campaigns["treated"] == 1
    ate = campaigns.loc[treated, "converted"].mean() - campaigns.loc[~treated, "converted"].mean()
    assert ate == pytest.approx(truth["campaign_true_uplift"].mean(), abs=0.005)


def test_tables_follow_the_data_contract_and_truth_is_separate(small_bank):
    frames = small_bank.frames()
    now = pd.Timestamp.now(tz="UTC")
    known = pd.Index(frames["customers"]["customer_id"])
    for name in ("transactions", "customers", "campaigns"):
        frame = frames[name].assign(**{SOURCE_FILE: f"{name}.parquet", SOURCE_ROW: range(len(frames[name]))})
        report = validate_raw_table(RawTable(name, "mem", [f"{name}.parquet"], frame), CONTRACTS[name], now=now, known_customer_ids=known)
        assert report.passed, report.failure_message()
    assert list(frames["customers"].columns) == [
        "customer_id", "Avg_Credit_Limit", "Total_Credit_Cards", "Total_visits_bank", "Total_visits_online", "Total_calls_made",
    ]
    assert "persona" not in frames["customers"] and "persona" in frames["truth"]
    tx = frames["transactions"]
    assert tx["ts"].max() < pd.Timestamp(small_bank.config.end_date, tz="UTC") + pd.Timedelta(days=1)
    assert (tx["amount"] < 0).mean() == pytest.approx(small_bank.config.refund_rate, abs=0.01)
    assert set(tx["channel"]) == {"online", "in_store", "atm"}
    assert tx["customer_id"].is_monotonic_increasing
    assert tx.groupby("customer_id")["ts"].apply(lambda ts: ts.is_monotonic_increasing).all()


def test_personas_drive_profile_attributes(small_bank):
    frames = small_bank.frames()
    joined = frames["customers"].merge(frames["truth"][["customer_id", "persona"]], on="customer_id")
    limits = joined.groupby("persona")["Avg_Credit_Limit"].median()
    assert limits["digital_affluent"] > 2 * limits["call_centre_budget"]
    calls = joined.groupby("persona")["Total_calls_made"].mean()
    assert calls.idxmax() == "call_centre_budget"


def test_config_rejects_empty_bank():
    with pytest.raises(ValueError, match="n_customers"):
        generate_bank(SyntheticBankConfig(n_customers=0))


def test_command_line_writes_raw_tables_and_truth(tmp_path, capsys):
    generate_main(["--customers", "300", "--seed", "5", "--out", str(tmp_path), "--format", "csv"])
    assert sorted(p.name for p in (tmp_path / "raw").iterdir()) == ["campaigns.csv", "customers.csv", "transactions.csv"]
    assert (tmp_path / "truth" / "ground_truth.parquet").is_file()
    assert len(pd.read_csv(tmp_path / "raw" / "customers.csv")) == 300
    assert "300 customers" in capsys.readouterr().out
