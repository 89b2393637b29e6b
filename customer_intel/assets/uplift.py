"""Uplift on the shared lifecycle: the family spec, its launchpad configs, and the assets the factory builds."""

from pydantic import Field

from customer_intel.assets.factory import CandidatesConfig, FamilySpec, SampledFrameConfig, champion_assets
from customer_intel.table_names import RAW_CAMPAIGNS, RAW_CUSTOMERS, RAW_TRANSACTIONS
from customer_intel.uplift.family import UPLIFT
from customer_intel.uplift.frames import CONTROL
from customer_intel.uplift.scorer import DEFAULT_MARGIN


class UpliftFrameConfig(SampledFrameConfig):
    """How campaign rows become the uplift split: the control label, the response window and the holdout."""

    control_arm: str = Field(default=CONTROL, description="the arm label of the untreated group when raw_campaigns has an arm column")
    window_days: int = Field(default=30, description="the campaign's response window in days (the horizon of the uplift scores)")
    test_share: float = Field(default=0.3, description="share of the customers held out (stratified by offer x outcome): only reports")
    folds: int = Field(default=3, description="cross-validation folds of the train part: the champion is chosen on out-of-fold Qini")
    seed: int = Field(default=0, description="seed of the holdout and the folds")
    snapshot_profile_in_training: bool = Field(
        default=False, description="join raw_customers' attributes to the campaign rows although the table is a snapshot (no valid_from): "
        "its values may postdate the send and a treatment can move them, so the model may learn the effect through its consequence")


class UpliftModelsConfig(CandidatesConfig):
    """Uplift learners, the quadrant margin and the random-band requirement."""

    include: list[str] | None = Field(default=None, description="which learners to fit (t_logistic, class_transformation, dr_linear, "
                                      "t_lightgbm, s_lightgbm, x_lightgbm, causal_forest; the response model is always compared, last in the "
                                      "simplicity order); default: all")
    seed: int = Field(default=0, description="seed of the learners, the random baseline and the bootstrap")
    quadrant_margin: float = Field(default=DEFAULT_MARGIN, description="an uplift of at least this (in response probability) makes "
                                   "a persuadable, at most minus this a sleeping dog")
    require_above_random: bool = Field(default=True, description="a champion's cross-validated Qini must lie above the 95% band of "
                                       "random orderings (else no champion: the campaign's data cannot tell who the offer moves)")


uplift_assets = champion_assets(FamilySpec(UPLIFT, inputs=(RAW_CAMPAIGNS, RAW_TRANSACTIONS, RAW_CUSTOMERS), frame_config=UpliftFrameConfig,
                                           models_config=UpliftModelsConfig))
