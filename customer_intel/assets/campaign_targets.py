"""The daily campaign_targets list marketing downloads: who gets which offer on which channel, and why it pays."""

import dagster as dg
import numpy as np
import pandas as pd
from pydantic import Field

from customer_intel.assets._metadata import md, table_schema
from customer_intel.assets.factory import SCORING_GROUP
from customer_intel.assets.partitions import daily_partitions
from customer_intel.assets.retries import IO_RETRY, final
from customer_intel.planner.plan import NoUpliftScores, PlanConfig, PlanInputError, empty_targets, plan_campaign
from customer_intel.reporting import markdown_table
from customer_intel.table_names import CAMPAIGN_TARGETS, SCORED_CUSTOMERS


class CampaignPlanConfig(dg.Config):
    """The campaign's economics: options, budget and the value of a response."""

    options: list[str] = Field(default=["*:email:1.0"], description="offer:channel:cost[:capacity] per option; offer * stands for every "
                               "offer with an uplift model")
    budget: float | None = Field(default=None, description="total contact spend; default: budget_share of the day's customers times the "
                                 "first option's cost")
    budget_share: float = Field(default=0.3, description="the default budget as a share of the customers")
    value_source: str = Field(default="cltv", description="cltv: a response is worth cltv x margin; fixed: fixed_value")
    margin: float = Field(default=0.3, description="the bank's margin on a customer's expected spend (CLTV)")
    fixed_value: float | None = Field(default=None, description="the value of one response (value_source fixed; with cltv: for customers "
                                      "without a CLTV)")
    seed: int = Field(default=0, description="seed of the random policy in the comparison")
    templates_path: str | None = Field(default=None, description="message templates JSON; default $CUSTOMER_INTEL_MESSAGE_TEMPLATES, else "
                                       "the packaged customer_intel/planner/message_templates.json")


def _policy_plot(policies: pd.DataFrame) -> str:
    import matplotlib.pyplot as plt

    from customer_intel.reporting import png_markdown

    fig, ax = plt.subplots(figsize=(4.4, 2.4))
    values = policies["expected_incremental_profit"]
    ax.barh(policies.index[::-1], values[::-1], color=["#3b6ea8" if i != "planner" else "#c0504d" for i in policies.index[::-1]])
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_xlabel("expected incremental profit, same budget", fontsize=8)
    ax.tick_params(labelsize=7)
    return png_markdown(fig, "policies")


@dg.asset(name=CAMPAIGN_TARGETS, partitions_def=daily_partitions, group_name=SCORING_GROUP, kinds={"pandas", "parquet"}, retry_policy=IO_RETRY,
          ins={"scored": dg.AssetIn(SCORED_CUSTOMERS)},
          description="The target list for the partition date: the customers the budget-constrained planner contacts (expected "
          "incremental profit = uplift x value of a response - contact cost, positive only), with offer, channel, uplift, CLTV, "
          "segment, quadrant, rank, budget bucket (the quarter of the budget that buys the contact) and the segment's message. "
          "Written as one complete partition under `campaign_targets/date=YYYY-MM-DD/`; empty with a note when no uplift "
          "champion is registered.")
def campaign_targets(context: dg.AssetExecutionContext, config: CampaignPlanConfig, scored: pd.DataFrame) -> dg.Output[pd.DataFrame]:
    try:
        plan = plan_campaign(scored, PlanConfig(**config.model_dump()))
    except PlanInputError as exc:
        if isinstance(exc, NoUpliftScores) or not scored.filter(like="uplift_for_").notna().any().any():
            context.log.warning(f"{CAMPAIGN_TARGETS}: {exc}; the list is empty")
            empty = empty_targets()
            return dg.Output(empty, metadata={"dagster/row_count": 0, "as_of": context.partition_key, "note": str(exc)})
        raise final(f"{CAMPAIGN_TARGETS}: {exc}") from exc
    except ValueError as exc:  # a malformed option: the user's to fix, said plainly
        raise final(f"{CAMPAIGN_TARGETS}: {exc}") from exc
    targets, policies = plan.targets, plan.policies
    planner = policies.loc["planner"]
    quadrants = targets["quadrant"].value_counts().to_dict() if len(targets) else {}
    all_quadrants = scored["uplift_quadrant"].value_counts().to_dict() if "uplift_quadrant" in scored else {}
    unscored = int(scored.filter(like="uplift_for_").isna().all(axis=1).sum())
    return dg.Output(targets, metadata={
        "dagster/row_count": len(targets),
        "as_of": context.partition_key,
        "targeted": int(planner["targeted"]),
        "budget": round(plan.budget, 2),
        "spend": round(float(planner["spend"]), 2),
        "expected_incremental_responses": round(float(planner["expected_incremental_responses"]), 2),
        "expected_incremental_profit": round(float(planner["expected_incremental_profit"]), 2),
        "allocation": plan.allocation.method,
        "options": md("\n".join(f"- {o.offer} by {o.channel}: {o.cost:g} per contact" + (f", at most {o.capacity:,}" if o.capacity else "")
                                for o in plan.options)),
        "policies": md(markdown_table(policies.round(2)) + "\n\nAll at the same budget; naive policies contact as many customers as it "
                       "buys with the first option whatever their profit; every number is the uplift model's expectation."),
        "policies_plot": md(_policy_plot(policies)),
        "segments": md(markdown_table(plan.segments.drop(columns=["message"]).round(2), floatfmt=".2f")),
        "messages": md("\n".join(f"- **{r.segment_name}** ({r.message_template_id}): {r.message}" for r in plan.segments.itertuples())),
        "quadrants_targeted": md(markdown_table(pd.Series(quadrants, name="customers").to_frame())) if quadrants else "none",
        "quadrants_all": md(markdown_table(pd.Series(all_quadrants, name="customers").to_frame())) if all_quadrants else "none",
        "customers_without_uplift": unscored,
        "negative_profit_contacted": int((targets["expected_incremental_profit"] <= 0).sum()) if len(targets) else 0,
        "mean_value_of_response": round(float(np.nanmean(targets["value_of_response"])), 2) if len(targets) else 0.0,
        "dagster/column_schema": table_schema(targets),
    })
