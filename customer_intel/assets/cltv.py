"""CLTV assets: the time-split training frame, every candidate compared and tracked in MLflow, and the gated champion."""

import time

import dagster as dg
import pandas as pd

from customer_intel.assets._metadata import md, table_schema
from customer_intel.cltv import REGISTERED_MODEL as MODEL_NAME
from customer_intel.cltv.compare import CLTVFrames, build_cltv_frames, compare_cltv_models
from customer_intel.cltv.evaluation import CHAMPION_RULE, poisson_deviance
from customer_intel.cltv.ml import candidate_regressors
from customer_intel.cltv.probabilistic import TRANSACTION_MODELS
from customer_intel.cltv.scorer import scorer_for
from customer_intel.features import as_of_day
from customer_intel.reporting import calibration_plot_markdown
from customer_intel.resources import MLflowTracker

GROUP = "cltv"


class CLTVFrameConfig(dg.Config):
    """Where to split time. By default the cutoff is the last transaction day minus the horizon."""

    cutoff: str | None = None  # YYYY-MM-DD, inclusive end of the calibration period
    horizon_days: int = 90


class CLTVModelsConfig(dg.Config):
    time_unit_days: float = 7.0  # the probabilistic models' time unit (7 = weeks, as in the papers)
    include_ml: bool = True
    regressors: list[str] | None = None  # which ML regressors to fit; default all seven
    candidates: list[str] | None = None  # which candidates may become champion; default all


@dg.asset(group_name=GROUP, kinds={"pandas", "parquet"})
def cltv_training_frame(
    context: dg.AssetExecutionContext, config: CLTVFrameConfig, raw_transactions: pd.DataFrame, raw_customers: pd.DataFrame
) -> dg.Output[pd.DataFrame]:
    """The data every CLTV candidate is judged on, split in time by the one feature builder.

    ``evaluate`` rows: features as of the cutoff, targets (repeat purchase days, spend) in the
    horizon after it. ``train`` rows: features as of cutoff - horizon, targets in the window
    before the cutoff, for the time-shifted ML models. No target is a formula of the features.
    """
    if raw_transactions.empty:
        raise dg.Failure(description="cltv_training_frame: raw_transactions is not configured; CLTV needs transactions (profile mode skips it)")
    horizon = config.horizon_days
    cutoff = as_of_day(config.cutoff) if config.cutoff else as_of_day(raw_transactions["ts"].max()) - pd.Timedelta(days=horizon)
    frames = build_cltv_frames(raw_transactions, raw_customers if len(raw_customers) else None, cutoff, horizon)
    frame = frames.to_frame()
    return dg.Output(
        frame,
        metadata={
            "dagster/row_count": len(frame),
            "cutoff": str(cutoff.date()),
            "horizon_days": horizon,
            "evaluate_rows": len(frames.evaluate),
            "train_rows": len(frames.train),
            "train_target_days": frames.training_days,
            "evaluate_target_mean": float(frames.evaluate["holdout_purchases"].mean()),
            "dagster/column_schema": table_schema(frame),
        },
    )


@dg.asset(group_name=GROUP, kinds={"mlflow", "scikitlearn", "pandas"})
def cltv_models(
    context: dg.AssetExecutionContext, config: CLTVModelsConfig, cltv_training_frame: pd.DataFrame, mlflow: MLflowTracker
) -> dg.Output[pd.DataFrame]:
    """Every CLTV candidate on the same holdout: BG/NBD, Pareto/NBD, MBG/NBD (+ Gamma-Gamma), seven
    time-shifted ML regressors stacked on BG/NBD, and naive baselines.

    One MLflow run per candidate (params, metrics, the model with explicit pip requirements),
    under a parent run holding the comparison table and calibration plot. The champion follows
    the documented rule; it is registered only after the blocking check below passes.
    """
    frames = CLTVFrames.from_frame(cltv_training_frame)
    cutoff, horizon = frames.cutoff, frames.horizon_days
    started = time.perf_counter()
    regressors = candidate_regressors()
    if config.regressors is not None:
        unknown = set(config.regressors) - set(regressors)
        if unknown:
            raise dg.Failure(description=f"unknown regressors {sorted(unknown)}; choose from {sorted(regressors)}")
        regressors = {name: regressors[name] for name in config.regressors}
    result = compare_cltv_models(None, None, cutoff, horizon, frames=frames, time_unit_days=config.time_unit_days,
                                 include_ml=config.include_ml, regressors=regressors, eligible=config.candidates, log=context.log.info)
    tags = {"dagster_run_id": context.run.run_id, "dagster_asset": "cltv_models", "cutoff": str(cutoff.date()), "horizon_days": str(horizon)}
    table = result.table.copy()
    table["mlflow_run_id"] = ""
    table["model_uri"] = ""
    best_probabilistic = table.loc[[m for m in TRANSACTION_MODELS if m in result.models]].sort_values("poisson_deviance").index[0]
    with mlflow.start_run("cltv_models", tags=tags) as parent:
        for name, row in result.table.iterrows():
            with mlflow.start_run(name, tags={**tags, "candidate": name, "kind": row["kind"]}, nested=True) as run:
                params = {"horizon_days": horizon, "cutoff": str(cutoff.date()), "time_unit_days": config.time_unit_days}
                if name in TRANSACTION_MODELS:
                    params.update({f"param_{k}": v for k, v in result.models[name].params_.items()})
                mlflow.log(metrics=row.to_dict(), params=params)
                scorer = scorer_for(name, result)
                if scorer is not None:
                    table.loc[name, "model_uri"] = mlflow.log_scorer(scorer)
                table.loc[name, "mlflow_run_id"] = run.info.run_id
        plot = calibration_plot_markdown(result.actual, {n: result.predictions[n] for n in dict.fromkeys((result.champion, best_probabilistic, "baseline_rate"))})
        mlflow.log(metrics={"champion_poisson_deviance": table.loc[result.champion, "poisson_deviance"]},
                   tags={"champion": result.champion}, texts={"comparison.md": result.markdown(), "calibration.md": plot})
        parent_id = parent.info.run_id
    table["champion"] = table.index == result.champion
    table = table.reset_index()
    context.log.info(f"champion: {result.champion} ({CHAMPION_RULE}); compared in {time.perf_counter() - started:.0f} s")
    return dg.Output(
        table,
        metadata={
            "champion": result.champion,
            "champion_rule": CHAMPION_RULE,
            "comparison": md(result.markdown()),
            "calibration": md(plot),
            "mlflow_run": mlflow.run_link(parent_id),
            "cutoff": str(cutoff.date()),
            "horizon_days": horizon,
            "evaluated_customers": result.n_eval,
            "dagster/row_count": len(table),
        },
    )


@dg.asset_check(asset=cltv_models, blocking=True, additional_ins={"cltv_training_frame": dg.AssetIn()})
def champion_not_worse(cltv_models: pd.DataFrame, cltv_training_frame: pd.DataFrame, mlflow: MLflowTracker) -> dg.AssetCheckResult:
    """The new champion may not be worse than the registered one on this run's holdout
    (relative Poisson deviance, tolerance ``champion_tolerance``). Blocks the promotion."""
    new = cltv_models.loc[cltv_models["champion"]].iloc[0]
    current, version = mlflow.load_champion(MODEL_NAME)
    if current is None:
        return dg.AssetCheckResult(passed=True, description="no registered champion yet", metadata={"new_champion": new["candidate"]})
    evaluate = CLTVFrames.from_frame(cltv_training_frame).evaluate
    current_deviance = poisson_deviance(evaluate["holdout_purchases"], current.score(evaluate)["expected_purchases"])
    limit = current_deviance * (1 + mlflow.champion_tolerance)
    passed = bool(new["poisson_deviance"] <= limit)
    return dg.AssetCheckResult(
        passed=passed,
        description=None if passed else f"{new['candidate']} ({new['poisson_deviance']:.4f}) is worse than champion v{version.version} ({current_deviance:.4f}) beyond the tolerance",
        metadata={"new_champion": new["candidate"], "new_poisson_deviance": float(new["poisson_deviance"]),
                  "current_version": int(version.version), "current_poisson_deviance": float(current_deviance), "limit": float(limit)},
    )


@dg.asset(group_name=GROUP, kinds={"mlflow"})
def cltv_champion(context: dg.AssetExecutionContext, cltv_models: pd.DataFrame, mlflow: MLflowTracker) -> dg.MaterializeResult:
    """Registers the champion as a new version of ``customer_intel_cltv`` and moves the alias
    ``champion`` to it. Runs only when ``champion_not_worse`` passed; scoring loads this alias."""
    new = cltv_models.loc[cltv_models["champion"]].iloc[0]
    version = mlflow.promote(new["model_uri"], MODEL_NAME, tags={"candidate": new["candidate"], "dagster_run_id": context.run.run_id})
    return dg.MaterializeResult(
        metadata={"model": MODEL_NAME, "version": int(version.version), "candidate": new["candidate"],
                  "poisson_deviance": float(new["poisson_deviance"]), "mlflow_run": mlflow.run_link(new["mlflow_run_id"])}
    )
