"""The factory that turns a model family's spec into its Dagster assets: one lifecycle for every family.

``champion_assets(FamilySpec(...))`` builds, for family ``f``:

- ``f_training_frame``: the family's ``TimeSplit`` as one table (the split's parts, cutoff, horizon);
- ``f_models``: every candidate on the split, one MLflow run each under a parent run, the comparison
  table and plots in the metadata;
- ``f_champion_not_worse``: the blocking gate: the registered champion scored on *this* run's
  validation rows and horizon; an incumbent fitted past this run's cutoff is refused;
- ``f_champion``: registers ``customer_intel_f`` and moves its ``champion`` alias;
- the model card (``modeling.card``): written by ``f_models`` with the gate pending (its metadata and the comparison's
  MLflow run), completed by the gate with its decision (passed or refused), attached by ``f_champion`` to the version;
- ``f_scores``: daily, the champion (by alias) scores every customer's features; no champion
  leaves the columns null with a note, so the join into ``scored_customers`` never fails.

No ``from __future__ import annotations`` here: Dagster reads the config classes from the
annotations of the functions built below.
"""

import time
from dataclasses import dataclass

import dagster as dg
import numpy as np
import pandas as pd
from pydantic import Field

from customer_intel.assets._metadata import md, table_schema
from customer_intel.assets.partitions import check_same_ingest, date_and_shard, scoring_partitions
from customer_intel.assets.retries import IO_RETRY, final
from customer_intel.features import as_of_day
from customer_intel.features.rfm import PROFILE_BASES
from customer_intel.modeling import (
    REFIT,
    TEST,
    VALIDATION,
    CandidateConfigError,
    FamilyInputError,
    FamilyNotApplicable,
    ModelFamily,
    NoChampionError,
    TimeSplit,
    daily_scores,
    incumbent_not_worse,
)
from customer_intel.modeling.candidate import CandidateFitError
from customer_intel.modeling.card import MODEL_CARD_ARTIFACT, CardLineage, GateRecord, gate_section, model_card, with_gate
from customer_intel.modeling.lineage import code_version
from customer_intel.modeling.sample import sample_customers
from customer_intel.modeling.scoring import score_columns
from customer_intel.reporting import markdown_table
from customer_intel.resources.model_registry import ModelRegistry
from customer_intel.resources.warehouse import Warehouse
from customer_intel.table_names import CUSTOMER_FEATURES, champion, gate, models, scores, training_frame

SCORING_GROUP = "scoring"
REFIT_POLICY = ("refit on all data: the recipe chosen on the validation window and reported on the test window is refitted with "
                "features as of the last day of the test window and registered")


class SampledFrameConfig(dg.Config):
    """Every family's training frame may be built on a stable sample of the bank's customers (``modeling.sample``)."""

    sample_customers: int | None = Field(default=None, description="build the training frame on this many customers, the same "
                                         "ones in every raw table (the smallest md5 keys of seed:customer_id; stable as the "
                                         "bank grows); default: every customer. Scoring always reads every customer")
    sample_seed: int = Field(default=0, description="the seed of the customer sample's keys")


SAMPLE_PARAMS = ("sample_customers", "sample_seed")


class TrainingFrameConfig(SampledFrameConfig):
    """Where to split time. By default the cutoff is the last data day minus the horizon."""

    cutoff: str | None = Field(default=None, description="YYYY-MM-DD: the inclusive last day any feature may see; "
                               "default: the last data day minus the horizon")
    horizon_days: int = Field(default=90, description="the target window after the cutoff, in days")


class CandidatesConfig(dg.Config):
    """Which candidates may become champion; a family adds its hyperparameters to a subclass."""

    candidates: list[str] | None = Field(default=None, description="names of the candidates that may become champion "
                                         "(baselines are always compared); default: all")


class GateConfig(dg.Config):
    """How the blocking gate treats an incumbent it cannot judge fairly."""

    compare_with_later_incumbent: bool = Field(
        default=False, description="compare anyway with a champion fitted on data past this run's cutoff (it has seen "
        "these validation rows, so the comparison favours it): e.g. to return to a longer horizon after a shorter one")


@dataclass(frozen=True)
class FamilySpec:
    """A family (domain code) plus how it plugs into the graph: which upstream tables its split reads
    and which launchpad configs its training frame and candidates take."""

    family: ModelFamily
    inputs: tuple[str, ...]
    frame_config: type = TrainingFrameConfig
    models_config: type = CandidatesConfig
    scores_asset: str | None = None  # the daily scores asset's name (default ``<family>_scores``)
    score_inputs: tuple[str, ...] = ()  # upstream tables the daily scores read beside the features (``family.score_frame``)
    in_scored_customers: bool = True  # whether its columns join scored_customers (embeddings' vectors stay in their own table)
    # the daily scores step's priority under the multiprocess executor (higher starts first when slots are short): the
    # longest step starts as soon as the features exist and the others fill the other slot around it
    scores_priority: int = 0

    @property
    def name(self) -> str:
        return self.family.name

    @property
    def scores_name(self) -> str:
        return self.scores_asset or scores(self.family.name)


@dataclass(frozen=True)
class ScoreContribution:
    """One family's columns in ``scored_customers``: the daily scores asset and the columns it adds."""

    family: str
    asset: str
    columns: tuple[str, ...]  # the last one names the model that scored the row


@dataclass(frozen=True)
class FamilyAssets:
    spec: FamilySpec
    training_frame: dg.AssetsDefinition
    models: dg.AssetsDefinition
    gate: dg.AssetChecksDefinition
    champion: dg.AssetsDefinition
    scores: dg.AssetsDefinition

    @property
    def assets(self) -> list[dg.AssetsDefinition]:
        return [self.training_frame, self.models, self.champion, self.scores]

    @property
    def checks(self) -> list[dg.AssetChecksDefinition]:
        return [self.gate]

    @property
    def contribution(self) -> ScoreContribution:
        return ScoreContribution(self.spec.name, self.spec.scores_name, tuple(score_columns(self.spec.family)))


def _parts_table(split: TimeSplit) -> str:
    rows = pd.DataFrame(split.describe()["parts"]).T
    rows.index.name = "part"
    return markdown_table(rows)


def _recipe_gate(rule, table: pd.DataFrame, new: pd.Series, incumbent, split: TimeSplit, tolerance: float,
                 missing_recipe_falls_back: bool = False) -> dg.AssetCheckResult | None:
    """With a production refit, the registered model has seen every window of this run, so models are
    not compared: recipes are. The incumbent's recipe (its candidate) was refitted on this run's data
    at the validation origin like every other candidate; the new champion may not be worse than that
    row beyond the tolerance. Without that row (the recipe was configured out, or failed here) the
    check fails and says how to compare. None (models are compared instead) without a refit part, or
    when the recipe is missing and ``missing_recipe_falls_back`` (compare_with_later_incumbent)."""
    if REFIT not in split.parts:
        return None
    rows = table.set_index("candidate")
    if incumbent.candidate not in rows.index or not np.isfinite(float(rows.loc[incumbent.candidate, rule.metric])):
        if missing_recipe_falls_back:
            return None
        why = "is not among this run's candidates" if incumbent.candidate not in rows.index else f"has no finite {rule.metric} in this run"
        return dg.AssetCheckResult(passed=False, description=(
            f"the recipe of champion v{incumbent.version.version} ({incumbent.candidate}) {why}, so the new champion "
            f"{new['candidate']} cannot be compared with it on this run's data; the registered model has seen every window of "
            f"this run, so it is not compared directly. Add {incumbent.candidate} to this run's candidates (e.g. "
            "transaction_models or regressors), or set compare_with_later_incumbent on this check to compare with the "
            "registered model anyway"), metadata={"new_champion": new["candidate"], "current_version": int(incumbent.version.version),
                                                  "current_candidate": incumbent.candidate, "compared": "nothing: the incumbent's recipe is missing"})
    current = rows.loc[incumbent.candidate]
    decision = incumbent_not_worse(rule, new.to_dict(), current.to_dict(), tolerance, new_name=str(new["candidate"]),
                                   incumbent_name=f"the recipe of champion v{incumbent.version.version} ({incumbent.candidate})")
    return dg.AssetCheckResult(passed=decision.passed, description=decision.description + "; both refitted on this run's data and "
                               "judged on its validation window", metadata={
        "new_champion": new["candidate"], "current_version": int(incumbent.version.version), "current_candidate": incumbent.candidate,
        "compared": "recipes (the incumbent's candidate refitted on this run's data)", "cutoff": str(split.cutoff.date()),
        "horizon_days": split.horizon_days, f"new_{rule.metric}": decision.new_value, f"current_{rule.metric}": decision.incumbent_value,
        "limit": decision.limit, "tolerance": tolerance})


def _run_ended(instance: dg.DagsterInstance, run_id: str) -> bool:
    """Whether this instance knows the Dagster run ``run_id`` and it has finished (failed, succeeded or canceled)."""
    run = instance.get_run_by_id(run_id)
    return run is not None and run.is_finished


def _with_card(family: ModelFamily, result: dg.AssetCheckResult, table: pd.DataFrame, model_registry: ModelRegistry) -> dg.AssetCheckResult:
    """The gate's result, with this run's model card completed by its decision (passed or refused): written over the pending
    card in the comparison's MLflow run and shown in the check's metadata. A table written before cards existed has none."""
    new = table.loc[table["champion"]].iloc[0]
    parent = new.get("mlflow_parent_run_id")
    if not isinstance(parent, str) or not parent:
        return result
    rule = _rule_of(family, new)
    facts = {k: getattr(v, "value", v) for k, v in (result.metadata or {}).items()}
    record = GateRecord(gate(family.name), model_registry.tolerance(rule), bool(result.passed), result.description or "", facts)
    card = with_gate(model_registry.read_text(parent, MODEL_CARD_ARTIFACT), gate_section(record, family.name, rule))
    model_registry.log_text_to(parent, MODEL_CARD_ARTIFACT, card)
    return dg.AssetCheckResult(passed=result.passed, description=result.description, metadata={**(result.metadata or {}), "model_card": md(card)})


def _rule_of(family, row: pd.Series):
    """The rule a comparison table's champion row was chosen by (rebuilt from its ``rule_*`` columns)."""
    return family.rule_for(**{p: row[f"rule_{p}"] for p in family.rule_params if f"rule_{p}" in row and pd.notna(row[f"rule_{p}"])})


def champion_assets(spec: FamilySpec) -> FamilyAssets:
    """The training assets, gate, registry alias and daily scores of ``spec.family``."""
    family = spec.family
    name = family.name
    rule = family.rule
    frame_name, models_name = training_frame(name), models(name)

    @dg.asset(name=frame_name, group_name=name, kinds={"pandas", "parquet"}, ins={i: dg.AssetIn(i, metadata={"engine": True}) for i in spec.inputs},
              output_required=False, retry_policy=IO_RETRY,  # reads and writes tables; the fits (f_models) are never retried
              description=f"The data every {name} candidate is fitted and judged on, split in time by the one feature builder: "
              "`fit` rows (features and targets up to the cutoff), `validation` rows (features as of the cutoff, targets "
              "in the horizon after it; the champion is chosen here) and, when the family has one, a `test` window that "
              "only reports. No target is a formula of the features; no feature sees past its as-of day. When the family "
              "has nothing to learn from here (e.g. uplift without a campaign table) it is skipped with a warning, and so is "
              "the rest of its training.")
    def _training_frame(context: dg.AssetExecutionContext, config: spec.frame_config, **inputs):
        params = config.model_dump()
        sample = {p: params.pop(p) for p in SAMPLE_PARAMS if p in params}
        started = time.perf_counter()
        tables = sample_customers(inputs, sample.get("sample_customers"), sample.get("sample_seed", 0))
        if sample.get("sample_customers"):
            context.log.info(f"{frame_name}: sampled {sample['sample_customers']:,} customers in {time.perf_counter() - started:.1f} s: "
                             + ", ".join(f"{k} {len(v):,} rows" for k, v in tables.items() if v is not None))
        try:
            split = family.split(tables, **params)
        except FamilyNotApplicable as exc:
            context.log.warning(f"{frame_name} skipped: {exc}")
            return
        except FamilyInputError as exc:
            raise final(f"{frame_name}: {exc}") from exc
        frame = split.to_frame()
        yield dg.Output(frame, metadata={
            "dagster/row_count": len(frame),
            "sampled_customers": sample.get("sample_customers") or "all",
            "cutoff": str(split.cutoff.date()),
            "horizon_days": split.horizon_days,
            **{f"{part}_rows": len(rows) for part, rows in split.parts.items()},
            **{f"{part}_as_of": str(split.cutoff_of(part).date()) for part in split.parts},
            "parts": md(_parts_table(split)),
            "dagster/column_schema": table_schema(frame),
        })

    @dg.asset(name=models_name, group_name=name, kinds={"mlflow", "pandas"}, ins={"split_frame": dg.AssetIn(frame_name)},
              description=f"Every {name} candidate on the same validation rows ({family.description}) One MLflow run per "
              f"candidate (hyperparameters, metrics, the scorer with signature and input example, lineage tags) under a "
              f"parent run with the comparison table, plots and the model card (`model_card.md`, its gate section completed by the "
              f"blocking check). Champion rule: {rule.describe()}. It is registered only "
              "after the blocking gate passes.")
    def _models(context: dg.AssetExecutionContext, config: spec.models_config, split_frame: pd.DataFrame,
                model_registry: ModelRegistry, warehouse: Warehouse) -> dg.Output[pd.DataFrame]:
        split = family.split_from_frame(split_frame)
        # first, and before any fitting: an unreachable MLflow fails the step now; runs a killed or cut-off run left RUNNING end FAILED
        abandoned = model_registry.fail_abandoned_runs(models_name, context.run.run_id, lambda run_id: _run_ended(context.instance, run_id))
        if abandoned:
            context.log.warning(f"{models_name}: ended FAILED {len(abandoned)} MLflow run(s) an earlier run left RUNNING: {', '.join(abandoned)}")
        started = time.perf_counter()
        try:  # a wrong name in the config, no champion, nothing fitted: the user's to fix, said plainly
            comparison = family.compare(split, allowed=config.candidates, log=context.log.info,
                                        **config.model_dump(exclude={"candidates"}))
        except (CandidateConfigError, NoChampionError, CandidateFitError) as exc:
            scored = getattr(exc, "table", None)
            metadata = {"candidates": dg.MetadataValue.md(scored.to_markdown(floatfmt=".3f"))} if scored is not None else {}
            raise dg.Failure(description=f"{models_name}: {exc}", metadata=metadata) from exc
        manifest = warehouse.manifest(frame_name) or {}
        tags = {"dagster_run_id": context.run.run_id, "dagster_asset": models_name, "family": name,
                "cutoff": str(split.cutoff.date()), "horizon_days": str(split.horizon_days),
                **model_registry.lineage_tags(split.describe(), manifest.get("sha256"))}
        rule_used = comparison.rule  # the family's rule as this run's config tuned it (e.g. a bias bound)
        table = comparison.table.copy()
        for param in family.rule_params:  # the gate rebuilds the same rule from the table
            table[f"rule_{param}"] = comparison.rule_params.get(param)  # what the config gave, else what the split implied
        table["mlflow_run_id"], table["model_uri"] = "", ""
        plots = family.plots(comparison) if family.plots else {}
        example = family.input_example(split)
        table["production_model_uri"], table["production_run_id"] = "", ""
        with model_registry.start_run(models_name, tags=tags) as parent:
            for candidate, row in comparison.table.iterrows():
                # metrics: validation (the recipe fitted at the validation origin) and test_*; params and model: the
                # fit at the last origin it was judged at (the test origin when there is one), as `params_origin` says
                origin = TEST if candidate in comparison.test_predictions else VALIDATION
                with model_registry.start_run(candidate, tags={**tags, "candidate": candidate, "kind": row["kind"], "params_origin": origin,
                                                               "params_cutoff": str(split.cutoff_of(origin).date())}, nested=True) as run:
                    fitted = comparison.evaluated.get(candidate) or comparison.fitted[candidate]
                    model_registry.log(metrics=row.to_dict(), params=fitted.params())
                    scorer = comparison.scorer(candidate, served=comparison.registers_as_evaluated(candidate))
                    if scorer is not None:
                        table.loc[candidate, "model_uri"] = model_registry.log_scorer(scorer, family, example)
                    table.loc[candidate, "mlflow_run_id"] = run.info.run_id
            if comparison.production is not None:  # the champion's recipe refitted on all the data: what is registered
                champion_row = comparison.table.loc[comparison.champion]
                evaluated_run = table.loc[comparison.champion, "mlflow_run_id"]
                refit_split = split.origin(REFIT)
                refit_tags = {**tags, "candidate": comparison.champion, "kind": champion_row["kind"], "refit_of_run": evaluated_run,
                              "refit_cutoff": str(refit_split.cutoff.date()), "refit_policy": REFIT_POLICY}
                with model_registry.start_run(f"{comparison.champion}_production_refit", tags=refit_tags, nested=True) as run:
                    expected = {f"expected_{k.removeprefix('test_')}": v for k, v in champion_row.items() if str(k).startswith("test_")}
                    model_registry.log(metrics=expected, params=comparison.production.params())
                    table.loc[comparison.champion, "production_model_uri"] = model_registry.log_scorer(
                        comparison.production_scorer(), family, family.input_example(refit_split))
                    table.loc[comparison.champion, "production_run_id"] = run.info.run_id
            parent_id = parent.info.run_id
            # the card, its gate pending: the blocking check completes it in this run's artifact before anything is registered
            raw_inputs = {i: m for i in spec.inputs if (m := warehouse.manifest(i))}
            card = model_card(family, comparison, CardLineage(frame_name, manifest.get("sha256"), raw_inputs, code_version(), context.run.run_id,
                                                              parent_id), GateRecord(gate(name), model_registry.tolerance(rule_used)))
            model_registry.log(metrics={f"champion_{rule_used.metric}": table.loc[comparison.champion, rule_used.metric]},
                               params={f"ensemble_weight_{k}": round(v, 6) for k, v in comparison.weights.items()},
                               tags={"champion": comparison.champion, "champion_rule": rule_used.describe()},
                               texts={"comparison.md": comparison.markdown(), **{f"{k}.md": v for k, v in plots.items()}, MODEL_CARD_ARTIFACT: card})
        table["mlflow_parent_run_id"] = parent_id
        table["champion"] = table.index == comparison.champion
        # which profile attributes the rows carried: a snapshot for a past cutoff may postdate it
        basis = sorted(split_frame["profile_basis"].dropna().unique()) if "profile_basis" in split_frame else []
        table["profile_attributes"] = ", ".join(basis) or "none"
        table = table.reset_index()
        context.log.info(f"{name} champion: {comparison.champion} ({rule_used.describe()}); compared in {time.perf_counter() - started:.0f} s")
        notes = [f"- {k} failed: {v}" for k, v in comparison.failures.items()] + [f"- {k} skipped: {v}" for k, v in comparison.skipped.items()]
        windows = {part: f"{split.cutoff_of(part).date()} + {split.horizon_of(part)} days" if split.horizon_of(part)
                   else f"as of {split.cutoff_of(part).date()}, {len(rows):,} customers" for part, rows in split.parts.items()}
        weights = {"ensemble_weights": md(markdown_table(pd.Series(comparison.weights, name="weight").to_frame()))} if comparison.weights else {}
        return dg.Output(table, metadata={
            "champion": comparison.champion,
            "champion_rule": rule_used.describe(),
            "windows": md("\n".join(f"- {part}: {window}" + ("" if part != VALIDATION else " (every choice is made here)")
                                     + (" (only reports)" if part == TEST else "") for part, window in windows.items())),
            **weights,
            "registered": "the champion's recipe refitted on all the data (" + REFIT_POLICY + ")" if comparison.production is not None
            else "the champion as evaluated (fitted at the last origin it was judged at)",
            "comparison": md(comparison.markdown()),
            **{k: md(v) for k, v in plots.items()},
            "mlflow_run": model_registry.run_link(parent_id),
            "cutoff": str(split.cutoff.date()),
            "horizon_days": split.horizon_days,
            "validation_rows": len(split.validation),
            "profile_attributes": ", ".join(PROFILE_BASES.get(b, b) for b in basis) or "none",
            "not_compared": md("\n".join(notes) or "none"),
            "model_card": md(card),
            "dagster/row_count": len(table),
        })

    def _gate_decision(config: GateConfig, comparison_table: pd.DataFrame, split_frame: pd.DataFrame,
                       model_registry: ModelRegistry) -> dg.AssetCheckResult:
        new = comparison_table.loc[comparison_table["champion"]].iloc[0]
        incumbent = model_registry.load_champion(name)
        if incumbent is None:
            return dg.AssetCheckResult(passed=True, description="no registered champion yet", metadata={"new_champion": new["candidate"]})
        split = family.split_from_frame(split_frame)
        rule = _rule_of(family, new)
        by_recipe = _recipe_gate(rule, comparison_table, new, incumbent, split, model_registry.tolerance(rule),
                                 missing_recipe_falls_back=config.compare_with_later_incumbent)
        if by_recipe is not None:
            return by_recipe
        metadata = {"new_champion": new["candidate"], "current_version": int(incumbent.version.version),
                    "current_candidate": incumbent.candidate, "cutoff": str(split.cutoff.date()),
                    "current_cutoff": incumbent.cutoff or "unknown", "horizon_days": split.horizon_days,
                    "current_horizon_days": incumbent.horizon_days if incumbent.horizon_days is not None else "unknown"}
        later = incumbent.cutoff is not None and as_of_day(incumbent.cutoff) > split.cutoff
        if later and not config.compare_with_later_incumbent:
            days = (as_of_day(incumbent.cutoff) - split.cutoff).days
            return dg.AssetCheckResult(passed=False, metadata=metadata, description=(
                f"refusing to compare with champion v{incumbent.version.version}: it was fitted on data up to {incumbent.cutoff}, "
                f"{days} days after this run's cutoff {split.cutoff.date()}, so it has seen this run's validation window and any "
                f"comparison on it favours the incumbent. A run whose cutoff is on or after {incumbent.cutoff} (a shorter horizon, "
                f"or {days} more days of data) can replace it; to compare anyway, set compare_with_later_incumbent on this check."))
        current = family.score_incumbent(incumbent.scorer, split)
        decision = incumbent_not_worse(rule, new.to_dict(), current, model_registry.tolerance(rule),
                                       new_name=str(new["candidate"]), incumbent_name=f"champion v{incumbent.version.version}")
        description = decision.description
        if incumbent.cutoff is None:  # neither the scorer nor its training run says what it saw
            description += "; the incumbent's cutoff is unknown, so it may have seen these rows (the comparison may favour it)"
        elif later:
            description += f"; compared although the incumbent saw data up to {incumbent.cutoff} (compare_with_later_incumbent)"
        return dg.AssetCheckResult(passed=decision.passed, description=description, metadata={
            **metadata, f"new_{rule.metric}": decision.new_value, f"current_{rule.metric}": decision.incumbent_value,
            "limit": decision.limit, "tolerance": model_registry.tolerance(rule)})

    @dg.asset_check(asset=_models, name=gate(name), blocking=True, additional_ins={"split_frame": dg.AssetIn(frame_name)},
                    description=f"The new {name} champion may not be worse than the registered one on this run's validation "
                    "rows (with a production refit: than the registered champion's recipe, refitted on this run's data), "
                    f"both forecasting this run's horizon (tolerance relative to the incumbent, default {rule.tolerance:g}); "
                    "an incumbent fitted on data past this run's cutoff has seen these rows and is refused. Blocks the promotion.")
    def _gate(config: GateConfig, comparison_table: pd.DataFrame, split_frame: pd.DataFrame,
              model_registry: ModelRegistry) -> dg.AssetCheckResult:
        return _with_card(family, _gate_decision(config, comparison_table, split_frame, model_registry), comparison_table, model_registry)

    @dg.asset(name=champion(name), group_name=name, kinds={"mlflow"}, ins={"comparison_table": dg.AssetIn(models_name)},
              description=f"Registers the {name} champion as a new version of `{family.registered_model}` and moves the alias "
              f"`champion` to it. Runs only when `{gate(name)}` passed; the daily `{spec.scores_name}` load this alias.")
    def _champion(context: dg.AssetExecutionContext, comparison_table: pd.DataFrame, model_registry: ModelRegistry) -> dg.MaterializeResult:
        new = comparison_table.loc[comparison_table["champion"]].iloc[0]
        rule = _rule_of(family, new)
        refit = bool(new.get("production_model_uri"))
        tags = {"candidate": new["candidate"], "dagster_run_id": context.run.run_id, "evaluated_run_id": new["mlflow_run_id"]}
        if refit:
            tags.update({"refit_policy": REFIT_POLICY, **{f"expected_{k.removeprefix('test_')}": f"{float(new[k]):.6g}"
                                                          for k in ("test_" + rule.metric, "test_rmse", "test_total_pct_error") if k in new}})
        description = (f"{new['candidate']}: {REFIT_POLICY}; evaluated in MLflow run {new['mlflow_run_id']} (validation {rule.metric} "
                       f"{float(new[rule.metric]):.4f})" if refit else f"{new['candidate']} as evaluated")
        parent = new.get("mlflow_parent_run_id")
        card = model_registry.read_text(parent, MODEL_CARD_ARTIFACT) if isinstance(parent, str) and parent else None
        if card is not None:  # on the registered version: an artifact of the run its model was logged in, named by a version tag
            source_run = new["production_run_id"] if refit else new["mlflow_run_id"]
            model_registry.log_text_to(source_run, MODEL_CARD_ARTIFACT, card)
            tags["model_card"] = f"runs:/{source_run}/{MODEL_CARD_ARTIFACT}"
        version = model_registry.promote(new["production_model_uri"] if refit else new["model_uri"], name, tags=tags, description=description,
                                         ended=lambda run_id: _run_ended(context.instance, run_id))
        return dg.MaterializeResult(metadata={
            "model": family.registered_model, "version": int(version.version), "candidate": new["candidate"],
            rule.metric: float(new[rule.metric]), "refit": refit,
            "mlflow_run": model_registry.run_link(new["production_run_id"] if refit else new["mlflow_run_id"]),
            "evaluated_run": model_registry.run_link(new["mlflow_run_id"]), **({"model_card": md(card)} if card is not None else {})})

    @dg.asset(name=spec.scores_name, partitions_def=scoring_partitions, group_name=SCORING_GROUP, kinds={"mlflow", "pandas", "parquet"},
              ins={"features": dg.AssetIn(CUSTOMER_FEATURES), **{i: dg.AssetIn(i, metadata={"engine": True}) for i in spec.score_inputs}},
              deps=[_champion], op_tags={"dagster/priority": str(spec.scores_priority)}, retry_policy=IO_RETRY,
              description=f"The {name} scores of every customer for the partition date, from the registered champion "
              f"(`models:/{family.registered_model}@champion`, never retrained here) over the day's features. Without a "
              "champion the columns are null and the metadata says why.")
    def _scores(context: dg.AssetExecutionContext, features: pd.DataFrame, model_registry: ModelRegistry, **score_inputs) -> dg.Output[pd.DataFrame]:
        if family.needs_transactions and not (features["feature_mode"] == "transactional").all():
            registered, note = None, f"profile mode: {name} needs transactions"
        else:
            registered = model_registry.load_champion(name)
            note = registered.label if registered else f"no {name} champion registered in {model_registry.display_uri}: run training_job first"
        if registered is None:
            context.log.warning(f"{spec.scores_name}: {note}; its columns are null")
        if registered is not None and family.score_frame is not None:
            check_same_ingest(context, spec.score_inputs)  # the raw tables it reads beside the features: the same ingest's
            features = family.score_frame(features, **score_inputs, as_of=date_and_shard(context)[0])
        frame = daily_scores(family, features, registered.scorer if registered else None, registered.label if registered else None)
        return dg.Output(frame, metadata={"dagster/row_count": len(frame), "as_of": date_and_shard(context)[0], "model": note,
                                          "dagster/column_schema": table_schema(frame)})

    return FamilyAssets(spec, _training_frame, _models, _gate, _champion, _scores)
