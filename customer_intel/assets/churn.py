"""Churn on the shared lifecycle: the family spec, its launchpad configs, and the assets the factory builds."""

from pydantic import Field

from customer_intel.assets.factory import CandidatesConfig, FamilySpec, SampledFrameConfig, champion_assets
from customer_intel.churn.counterfactual import DEFAULT_ACTIONABLE
from customer_intel.churn.family import CHURN, MIN_ROC_AUC
from customer_intel.table_names import RAW_CUSTOMERS, RAW_TRANSACTIONS


class ChurnFrameConfig(SampledFrameConfig):
    """Where to split time for churn: features up to each origin's as-of day, the label in the churn window after it."""

    cutoff: str | None = Field(default=None, description="YYYY-MM-DD: the as-of day of the test rows (only reported); default: "
                               "the last data day minus the window")
    window_days: int = Field(default=90, description="churn window in days: a customer who made a purchase by the as-of day and "
                             "none in the next window_days churned")
    snapshot_profile_in_training: bool = Field(
        default=False, description="use raw_customers' attributes in the training features although the table is a snapshot "
        "(no valid_from column): its values may postdate the cutoff, so the comparison would be optimistic")


class ChurnModelsConfig(CandidatesConfig):
    """Churn candidates, the window correction, the risk threshold, and what at-risk customers get."""

    include: list[str] | None = Field(default=None, description="which candidates to fit (bgnbd, logistic, stacked, lightgbm; "
                                      "recency and one_minus_p_alive are always compared as baselines); default: all")
    calibration: str = Field(default="window", description="window: classifiers trained on a shorter label window than the "
                             "scoring window get BG/NBD's per-customer log-odds correction; sigmoid: Platt scaling learnt on the validation window "
                             "(measured worse); none: raw probabilities")
    seed: int = Field(default=0, description="seed of LightGBM, SHAP's background sample and the bootstrap")
    min_roc_auc: float = Field(default=MIN_ROC_AUC, description="a champion must rank at least this well (ROC AUC on validation)")
    risk_threshold: float = Field(default=0.5, description="customers at or above this churn probability are at risk: they get "
                                  "SHAP reasons and a counterfactual (risk band high; medium from half of it)")
    actionable: list[str] = Field(default=list(DEFAULT_ACTIONABLE), description="column:direction:step:max_change of each change a "
                                  "counterfactual may make: the event purchases (k purchase days, the last one today) or a profile "
                                  "column such as Total_visits_online (tenure T, age and the history's own columns never)")
    reasons_for: str = Field(default="at_risk", description="who gets SHAP reasons: at_risk, all or none")
    counterfactuals: bool = Field(default=True, description="search a counterfactual for every at-risk customer")


churn_assets = champion_assets(FamilySpec(CHURN, inputs=(RAW_TRANSACTIONS, RAW_CUSTOMERS), frame_config=ChurnFrameConfig,
                                          models_config=ChurnModelsConfig))
