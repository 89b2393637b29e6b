"""Every CLTV candidate on the same held-out window: probabilistic models, ML regressors, naive baselines.

    python -m customer_intel.cltv.compare --dataset cdnow       # FHL split, 23,570 customers
    python -m customer_intel.cltv.compare --dataset synthetic   # the default synthetic bank

Targets are repeat purchase days in ``(cutoff, cutoff + horizon]``; no candidate sees them.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from customer_intel.cltv.evaluation import CHAMPION_RULE, evaluate, pick_champion, rate_baseline
from customer_intel.cltv.ml import STACKED, FeatureMatrix, candidate_regressors, predict_with_interval, stack_features
from customer_intel.cltv.probabilistic import TRANSACTION_MODELS, CLTVFitError, Interval, ProbabilisticCLTV
from customer_intel.features.rfm import DAY, as_of_day, calibration_holdout_frame

BASELINES = ["baseline_zero", "baseline_rate"]


@dataclass
class Comparison:
    table: pd.DataFrame  # one row per candidate, the same metrics on the same holdout
    champion: str
    predictions: dict[str, np.ndarray]
    actual: np.ndarray
    models: dict = field(default_factory=dict)
    cutoff: pd.Timestamp | None = None
    horizon_days: int = 0
    n_train: int = 0
    training_days: int = 0  # length of the ML training target window (== horizon unless history is short)
    n_eval: int = 0
    failures: dict[str, str] = field(default_factory=dict)

    def markdown(self, floatfmt: str = ".3f") -> str:
        shown = self.table.copy()
        shown.insert(0, "champion", np.where(shown.index == self.champion, "✔", ""))
        return shown.to_markdown(floatfmt=floatfmt)


@dataclass
class CLTVFrames:
    """The two splits every candidate is built from: ``evaluate`` rows (features as of the cutoff,
    targets after it) and time-shifted ``train`` rows for the ML models (targets before the cutoff)."""

    evaluate: pd.DataFrame
    train: pd.DataFrame
    cutoff: pd.Timestamp
    horizon_days: int
    training_days: int

    def to_frame(self) -> pd.DataFrame:
        return pd.concat([self.train.assign(split="train"), self.evaluate.assign(split="evaluate")], ignore_index=True)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> "CLTVFrames":
        """Inverse of ``to_frame``: cutoff and horizon are the evaluate rows' as-of day and target window."""
        train = frame.loc[frame["split"] == "train"].drop(columns="split").reset_index(drop=True)
        evaluate = frame.loc[frame["split"] == "evaluate"].drop(columns="split").reset_index(drop=True)
        return cls(evaluate, train, as_of_day(evaluate["as_of"].iloc[0]), int(evaluate["holdout_days"].iloc[0]),
                   int(train["holdout_days"].iloc[0]) if len(train) else 0)


def build_cltv_frames(transactions: pd.DataFrame, customers: pd.DataFrame | None, cutoff, horizon_days: int) -> CLTVFrames:
    """Evaluation rows as of ``cutoff`` and ML training rows as of ``cutoff - training window``.

    The training window equals the horizon; a young cohort (CDNOW: 39 weeks old at a 39-week
    horizon) has no room for that, so the longest window that leaves half the history for
    features is used and ML predictions are rescaled to the horizon.
    """
    cutoff = as_of_day(cutoff)
    evaluate = calibration_holdout_frame(transactions, customers, cutoff, horizon_days)
    history_days = int((cutoff - as_of_day(transactions["ts"].min())) / DAY)
    training_days = int(min(horizon_days, history_days // 2))
    train = calibration_holdout_frame(transactions, customers, cutoff - DAY * training_days, training_days) if training_days > 0 else evaluate.iloc[:0]
    return CLTVFrames(evaluate, train, cutoff, horizon_days, training_days)


def compare_cltv_models(
    transactions: pd.DataFrame | None,
    customers: pd.DataFrame | None,
    cutoff,
    horizon_days: int,
    *,
    frames: CLTVFrames | None = None,
    time_unit_days: float = 7.0,
    include_ml: bool = True,
    regressors: dict | None = None,
    eligible: list[str] | None = None,
    seed: int = 0,
    log=print,
) -> Comparison:
    """Fit every candidate on data up to ``cutoff`` and score it on the window after it.

    ``eligible`` restricts which candidates may become champion (all by default).
    """
    frames = frames or build_cltv_frames(transactions, customers, cutoff, horizon_days)
    cutoff = frames.cutoff
    evaluation = frames.evaluate
    actual = evaluation["holdout_purchases"].to_numpy(dtype=float)
    rows, predictions, models, failures = {}, {}, {}, {}

    def record(name, kind, seconds, point, interval=None):
        predictions[name] = point
        failed = int(np.isnan(point).sum())  # e.g. lifetimes' Pareto/NBD P(alive) overflows for heavy buyers
        if failed:
            log(f"{name}: no prediction for {failed:,} customers; its metrics are undefined")
        rows[name] = {"kind": kind, **evaluate(actual, point, interval), "customers_without_prediction": failed,
                      "fit_seconds": round(seconds, 2)}

    record("baseline_zero", "baseline", 0.0, np.zeros(len(evaluation)))
    record("baseline_rate", "baseline", 0.0, rate_baseline(evaluation, horizon_days))

    for name in TRANSACTION_MODELS:
        started = time.perf_counter()
        try:
            model = ProbabilisticCLTV(name, time_unit_days=time_unit_days).fit(evaluation)
            prediction = model.predict(evaluation, horizon_days, seed=seed)
        except CLTVFitError as exc:
            failures[name] = str(exc)
            log(f"{name} failed: {exc}")
            continue
        models[name] = model
        record(name, "probabilistic", time.perf_counter() - started, prediction["expected_purchases"].to_numpy(),
               Interval.from_columns(prediction, "purchases"))

    n_train, training_days = 0, frames.training_days
    if include_ml and "bgnbd" in models and training_days > 0:
        scale = horizon_days / training_days
        if training_days < horizon_days:
            log(f"ML trained on a {training_days}-day window (history < 2 x horizon); predictions x {scale:.2f}")
        training = frames.train
        n_train = len(training)
        stacker = ProbabilisticCLTV("bgnbd", time_unit_days=time_unit_days).fit(training)
        training = stack_features(training, *stacker.point_predictions(training, horizon_days))
        evaluation_stacked = stack_features(evaluation, *models["bgnbd"].point_predictions(evaluation, horizon_days))
        matrix = FeatureMatrix.fit(training)
        X_train, y_train = matrix.transform(training), training["holdout_purchases"].to_numpy(dtype=float)
        X_eval = matrix.transform(evaluation_stacked)
        for name, estimator in (regressors or candidate_regressors(seed)).items():
            started = time.perf_counter()
            estimator.fit(X_train, y_train)
            point, interval = predict_with_interval(estimator, X_eval, scale=scale, seed=seed)
            models[name] = (matrix, estimator)
            record(name, "ml (time-shifted, stacked)", time.perf_counter() - started, point, interval)
            log(f"{name}: fitted in {time.perf_counter() - started:.1f} s")
        assert set(STACKED) <= set(matrix.columns)

    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "candidate"
    ranked = table if eligible is None else table.loc[[n for n in table.index if n in BASELINES or n in eligible]]
    champion = pick_champion(ranked, BASELINES)
    return Comparison(table=table, champion=champion, predictions=predictions, actual=actual, models=models,
                      cutoff=cutoff, horizon_days=horizon_days, n_train=n_train, training_days=training_days,
                      n_eval=len(evaluation), failures=failures)


def _load(dataset: str, customers_n: int, seed: int):
    if dataset == "cdnow":
        from customer_intel.cltv.datasets import CDNOW_CALIBRATION_END, load_cdnow_transactions

        return load_cdnow_transactions("master"), None, CDNOW_CALIBRATION_END, 273, None
    from customer_intel.synthetic import generate_bank

    bank = generate_bank(n_customers=customers_n, seed=seed)
    frames = bank.frames()
    cutoff = pd.Timestamp(bank.config.end_date) - pd.Timedelta(days=90)
    return frames["transactions"], frames["customers"], cutoff, 90, bank


def truth_rmse(comparison: Comparison, bank) -> dict[str, float]:
    """Synthetic only: the champion, as registered (fitted up to the cutoff), scores every customer
    as of the last day of data; RMSE against the generator's true purchases in the next 90 days.

    The truth counts transactions; the models count purchase days (same-day purchases merge), so
    a small under-forecast is expected (E[1 - e^-lambda] vs E[lambda], README).
    """
    from customer_intel.cltv.scorer import scorer_for
    from customer_intel.features import build_customer_features

    frames = bank.frames()
    features = build_customer_features(frames["transactions"], frames["customers"], bank.config.end_date).frame
    truth = frames["truth"].set_index("customer_id").reindex(features["customer_id"].astype(str))
    actual = truth[f"future_purchases_{bank.config.future_days}d"].to_numpy(dtype=float)
    forecasts = {name: scorer_for(name, comparison).score(features)["expected_purchases"].to_numpy()
                 for name in dict.fromkeys((comparison.champion, "bgnbd"))}
    forecasts["baseline_rate"] = rate_baseline(features, bank.config.future_days)
    return {name: evaluate(actual, predicted)["rmse"] for name, predicted in forecasts.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=("cdnow", "synthetic"), default="cdnow")
    parser.add_argument("--customers", type=int, default=20_000, help="synthetic bank size")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    transactions, customers, cutoff, horizon, bank = _load(args.dataset, args.customers, args.seed)
    started = time.perf_counter()
    result = compare_cltv_models(transactions, customers, cutoff, horizon, seed=args.seed, log=lambda m: None)
    print(f"{args.dataset}: cutoff {result.cutoff.date()}, horizon {horizon} days, {result.n_eval:,} customers evaluated, "
          f"{result.n_train:,} time-shifted training rows (target window {result.training_days} days); "
          f"{time.perf_counter() - started:.0f} s\n")
    print(result.markdown())
    print(f"\nchampion: {result.champion} ({CHAMPION_RULE})")
    if bank is not None:
        rmse = truth_rmse(result, bank)
        print("RMSE on the true purchases of the 90 days after the data ends (champion as registered): "
              + ", ".join(f"{name} {value:.3f}" for name, value in rmse.items()))


if __name__ == "__main__":
    main()
