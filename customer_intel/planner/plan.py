"""The campaign plan: from the day's scored customers to the target list marketing downloads, and its summary.

Pure domain code: ``plan_campaign(scored, PlanConfig(...))`` reads the columns ``scored_customers``
carries (``uplift_for_<offer>`` per offer, ``uplift_quadrant``, ``uplift_response_treated``,
``cltv``, ``segment_name``, ``churn_probability``) and returns the targets, the per-segment
ranking and the comparison with naive policies under the same budget.

The **value of a response** is ``cltv x margin`` (the CLTV champion's expected value over its
horizon, times the bank's margin on it), or a fixed value per response; a customer without a CLTV
(e.g. no purchase yet) gets ``fixed_value`` when it is set, else is not targeted. Naive policies
(random, by churn risk, by CLTV, by the response model) contact as many customers as the budget
buys with the first option, whatever their profit; they are judged by the same expected profit.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from customer_intel.planner.allocation import Allocation, Option, allocate, parse_options, top_by_score

TEMPLATES_ENV = "CUSTOMER_INTEL_MESSAGE_TEMPLATES"
DEFAULT_TEMPLATES = Path(__file__).with_name("message_templates.json")
BUDGET_BUCKETS = 4
TARGET_DTYPES = {"customer_id": "string", "as_of": "datetime64[ns, UTC]", "campaign": "string", "channel": "string", "rank": "int64",
                 "budget_bucket": "int64", "segment_name": "string", "quadrant": "string", "message_template_id": "string", "message": "string"}
TARGET_COLUMNS = ("customer_id", "as_of", "campaign", "channel", "expected_incremental_profit", "uplift", "expected_incremental_response",
                  "cltv", "value_of_response", "contact_cost", "segment_name", "quadrant", "rank", "budget_bucket",
                  "message_template_id", "message")
# policy -> the score it contacts by; "response probability" is P(response | contacted) of the uplift champion (the
# response-model way of targeting: those likeliest to respond, whether or not the contact is why)
NAIVE_POLICIES = {"random": None, "churn_risk": "churn_probability", "cltv": "cltv", "response probability": "uplift_response_treated"}


class PlanInputError(ValueError):
    """The scored customers cannot be planned (no uplift scores, a bad option, ...)."""


class NoUpliftScores(PlanInputError):
    """scored_customers carries no uplift column: no uplift champion is registered yet (the day's list is empty, not an error)."""


@dataclass
class PlanConfig:
    options: list[str] = field(default_factory=lambda: ["*:email:1.0"])
    budget: float | None = None  # money; None: budget_share of the customers x the first option's cost
    budget_share: float = 0.3
    value_source: str = "cltv"  # cltv (x margin) or fixed
    margin: float = 0.3
    fixed_value: float | None = None
    seed: int = 0
    templates_path: str | None = None


def offer_columns(scored: pd.DataFrame) -> dict[str, str]:
    """offer name -> its uplift column (``uplift_for_<slug>``), the names from the scorer's ``uplift_offers`` list (else the
    best-offer names seen today); an offer named nowhere keeps its slug. Options may name an offer either way."""
    import json

    from customer_intel.uplift.frames import offer_slug

    columns = [c for c in scored.columns if c.startswith("uplift_for_")]
    known = []
    if "uplift_offers" in scored.columns and scored["uplift_offers"].notna().any():
        known = json.loads(scored["uplift_offers"].dropna().iloc[0])
    elif "uplift_best_offer" in scored.columns:
        known = [str(n) for n in scored["uplift_best_offer"].dropna().unique()]
    names = {}
    for name in known:
        column = f"uplift_for_{offer_slug(name)}"
        if column in columns:
            names[str(name)] = column
    for column in columns:  # an offer that is never anyone's best keeps its slug as its name
        if column not in names.values():
            names[column.removeprefix("uplift_for_")] = column
    return dict(sorted(names.items()))


def response_value(scored: pd.DataFrame, config: PlanConfig) -> np.ndarray:
    if config.value_source == "fixed":
        if config.fixed_value is None:
            raise PlanInputError("value_source fixed needs fixed_value (the value of one response)")
        return np.full(len(scored), float(config.fixed_value))
    if config.value_source != "cltv":
        raise PlanInputError(f"value_source {config.value_source!r}: choose cltv or fixed")
    cltv = pd.to_numeric(scored["cltv"], errors="coerce").to_numpy(dtype=float) if "cltv" in scored else np.full(len(scored), np.nan)
    value = np.clip(cltv, 0, None) * config.margin
    if config.fixed_value is not None:
        value = np.where(np.isfinite(value), value, float(config.fixed_value))
    return value


def empty_targets() -> pd.DataFrame:
    """A target list with no row and the columns and types of every other day's (readers scanning every partition agree)."""
    return pd.DataFrame({c: pd.Series(dtype=TARGET_DTYPES.get(c, "float64")) for c in TARGET_COLUMNS})


def load_templates(path: str | None = None) -> list[dict]:
    source = Path(path or os.environ.get(TEMPLATES_ENV) or DEFAULT_TEMPLATES)
    try:
        templates = json.loads(source.read_text())["templates"]
    except (OSError, KeyError, json.JSONDecodeError) as exc:
        raise PlanInputError(f"message templates {source}: {exc}") from exc
    if not templates or templates[-1].get("keywords"):
        raise PlanInputError(f"message templates {source}: the last template must have no keywords (the default)")
    return templates


def choose_template(segment: str, templates: list[dict]) -> dict:
    name = str(segment).lower()
    return next(t for t in templates if all(k in name for k in t.get("keywords", [])))


def _render(template: dict, variables: dict) -> str:
    try:
        return template["text"].format(**variables)
    except (KeyError, IndexError, ValueError, AttributeError, TypeError) as exc:
        raise PlanInputError(f"message template {template.get('id')!r}: variable {exc} is not one of {', '.join(variables)}") from exc


@dataclass
class Plan:
    targets: pd.DataFrame
    segments: pd.DataFrame
    policies: pd.DataFrame
    allocation: Allocation
    options: list[Option]
    budget: float


def plan_campaign(scored: pd.DataFrame, config: PlanConfig) -> Plan:
    offer_cols = offer_columns(scored)
    if not offer_cols:
        raise NoUpliftScores("scored_customers has no uplift_for_<offer> column: no uplift champion is registered (run training_job)")
    from customer_intel.uplift.frames import offer_slug

    options = parse_options(config.options, list(offer_cols), slug=offer_slug)
    scored = scored.reset_index(drop=True)
    value = response_value(scored, config)
    uplift = np.column_stack([pd.to_numeric(scored[offer_cols[o.offer]], errors="coerce").to_numpy(dtype=float) for o in options])
    costs = np.array([o.cost for o in options])
    profit = uplift * value[:, None] - costs[None, :]
    budget = float(config.budget) if config.budget is not None else float(config.budget_share * len(scored) * costs[0])
    allocation = allocate(profit, costs, budget, [o.capacity for o in options])
    templates, profiles = load_templates(config.templates_path), _segment_profiles(scored)
    targets = _targets(scored, allocation, options, uplift, value, profit, budget, templates, profiles)
    return Plan(targets, segment_ranking(scored, profit, allocation, options, templates, profiles),
                compare_policies(scored, profit, uplift, allocation, budget, costs, config.seed), allocation, options, budget)


def _targets(scored, allocation, options, uplift, value, profit, budget, templates, profiles) -> pd.DataFrame:
    rows = np.flatnonzero(allocation.contacted)
    j = allocation.chosen[rows]
    frame = pd.DataFrame({
        "customer_id": scored["customer_id"].to_numpy()[rows],
        "as_of": pd.to_datetime(scored["as_of"].to_numpy()[rows], utc=True) if "as_of" in scored else pd.NaT,
        "campaign": [options[k].offer for k in j],
        "channel": [options[k].channel for k in j],
        "expected_incremental_profit": profit[rows, j],
        "uplift": uplift[rows, j],
        "expected_incremental_response": uplift[rows, j],
        "cltv": pd.to_numeric(scored["cltv"], errors="coerce").to_numpy(dtype=float)[rows] if "cltv" in scored else np.nan,
        "value_of_response": value[rows],
        "contact_cost": np.array([options[k].cost for k in j], dtype=float),
        "segment_name": scored["segment_name"].to_numpy()[rows] if "segment_name" in scored else None,
        "quadrant": scored["uplift_quadrant"].to_numpy()[rows] if "uplift_quadrant" in scored else None,
    })
    frame = frame.sort_values(["expected_incremental_profit", "customer_id"], ascending=[False, True], kind="mergesort").reset_index(drop=True)
    frame["rank"] = np.arange(1, len(frame) + 1)
    spent = frame["contact_cost"].cumsum().to_numpy()
    frame["budget_bucket"] = np.clip(np.ceil(BUDGET_BUCKETS * spent / max(budget, 1e-12)), 1, BUDGET_BUCKETS).astype(int) if len(frame) else []
    segments = [s if isinstance(s, str) else None for s in frame["segment_name"]]  # no segment (NaN, None): the default profile
    keys = list(zip(segments, frame["campaign"], frame["channel"]))
    rendered = {}  # one message per segment, offer and channel
    for key in dict.fromkeys(keys):
        segment, offer_name, channel = key
        template = choose_template(segment or "", templates)
        rendered[key] = (template["id"], _render(template, {**profiles.get(segment, _default_profile()), "offer": offer_name,
                                                           "channel": channel}))
    messages = [rendered[key] for key in keys]
    frame["message_template_id"], frame["message"] = [m[0] for m in messages], [m[1] for m in messages]
    frame = frame[list(TARGET_COLUMNS)]
    return frame.astype({c: t for c, t in TARGET_DTYPES.items() if c != "as_of"}) if len(frame) else empty_targets()


def _default_profile() -> dict:
    return {"segment": "Our customers", "customers": 0, "mean_cltv": 0.0, "top_category": "everyday purchases", "churn_share": 0.0}


def _segment_profiles(scored: pd.DataFrame) -> dict:
    if "segment_name" not in scored or scored["segment_name"].isna().all():
        return {}
    out = {}
    for segment, rows in scored.groupby("segment_name"):
        top = rows["top_category"].mode() if "top_category" in rows else pd.Series(dtype=object)
        out[segment] = {
            "segment": segment, "customers": len(rows),
            "mean_cltv": round(float(np.nan_to_num(pd.to_numeric(rows.get("cltv"), errors="coerce").mean())), 2) if "cltv" in rows else 0.0,
            "top_category": str(top.iloc[0]) if len(top) else "everyday purchases",
            "churn_share": round(float((pd.to_numeric(rows.get("churn_probability"), errors="coerce") >= 0.5).mean()), 3)
            if "churn_probability" in rows else 0.0,
        }
    return out


def segment_ranking(scored, profit, allocation, options, templates, profiles) -> pd.DataFrame:
    """Per segment: customers, targeted, expected profit of the plan, the recommended offer and channel (the option with the
    most positive expected profit in the segment), its message template and the rendered message; best segment first."""
    segments = scored["segment_name"].fillna("unsegmented") if "segment_name" in scored else pd.Series("unsegmented", index=scored.index)
    contacted = allocation.contacted
    chosen_profit = np.where(contacted, profit[np.arange(len(profit)), np.maximum(allocation.chosen, 0)], 0.0)
    rows = []
    for segment, index in segments.groupby(segments).groups.items():
        idx = np.asarray(index)
        positive = np.nansum(np.clip(np.where(np.isfinite(profit[idx]), profit[idx], 0.0), 0, None), axis=0)
        best = int(np.argmax(positive))
        template = choose_template(segment, templates)
        variables = {**profiles.get(segment, {**_default_profile(), "segment": segment}), "offer": options[best].offer, "channel": options[best].channel}
        rows.append({"segment_name": segment, "customers": len(idx), "targeted": int(contacted[idx].sum()),
                     "expected_incremental_profit": float(chosen_profit[idx].sum()),
                     "profit_per_customer": float(chosen_profit[idx].sum() / len(idx)),
                     "recommended_offer": options[best].offer if positive[best] > 0 else "none (no positive expected profit)",
                     "channel": options[best].channel, "message_template_id": template["id"], "message": _render(template, variables)})
    return pd.DataFrame(rows).sort_values("expected_incremental_profit", ascending=False).reset_index(drop=True)


def compare_policies(scored, profit, uplift, allocation, budget, costs, seed: int = 0) -> pd.DataFrame:
    """The plan against naive policies that spend the same budget on the first option: targeted, spend, expected
    incremental responses and profit (all by the uplift model's estimates; a contact whose profit is unknown, e.g. no
    uplift or no value for that customer, counts as its cost and no response)."""
    rows = {"planner": {"targeted": int(allocation.contacted.sum()), "spend": allocation.spend,
                        "expected_incremental_responses": float(uplift[allocation.contacted, allocation.chosen[allocation.contacted]].sum()),
                        "expected_incremental_profit": allocation.profit}}
    n = int(np.floor(budget / costs[0] + 1e-9))
    for name, column in NAIVE_POLICIES.items():
        if column is None:
            score = np.random.default_rng(seed).random(len(scored))
        elif column in scored and pd.to_numeric(scored[column], errors="coerce").notna().any():
            score = pd.to_numeric(scored[column], errors="coerce").to_numpy(dtype=float)
        else:
            continue
        chosen = top_by_score(score, n)
        known = np.isfinite(profit[chosen, 0])
        gained = np.where(known, profit[chosen, 0], -costs[0])
        rows[f"by {name}" if column else name] = {"targeted": int(chosen.sum()), "spend": float(chosen.sum() * costs[0]),
                                                  "expected_incremental_responses": float(np.where(known, uplift[chosen, 0], 0.0).sum()),
                                                  "expected_incremental_profit": float(gained.sum())}
    return pd.DataFrame.from_dict(rows, orient="index")
