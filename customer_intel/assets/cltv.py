"""CLTV on the shared lifecycle: the family spec, its launchpad configs, and the assets the factory builds."""

from pydantic import Field

from customer_intel.assets.factory import CandidatesConfig, FamilySpec, TrainingFrameConfig, champion_assets
from customer_intel.cltv.family import CLTV
from customer_intel.table_names import RAW_CUSTOMERS, RAW_TRANSACTIONS


class CLTVFrameConfig(TrainingFrameConfig):
    """Where to split time for CLTV: features up to the cutoff, repeat purchase days in the horizon after it."""

    horizon_days: int = Field(default=90, description="forecast horizon in days: the validation target window after the cutoff")
    snapshot_profile_in_training: bool = Field(
        default=False, description="use raw_customers' attributes in the training features although the table is a snapshot "
        "(no valid_from column): its values may postdate the cutoff, so the comparison would be optimistic")


class CLTVModelsConfig(CandidatesConfig):
    """CLTV candidates and their shared hyperparameters."""

    time_unit_days: float = Field(default=7.0, description="the probabilistic models' time unit in days (7 = weeks, as in the papers)")
    include_ml: bool = Field(default=True, description="also fit the time-shifted ML regressors stacked on BG/NBD")
    regressors: list[str] | None = Field(default=None, description="which ML regressors to fit (hist_gradient_boosting, extra_trees, "
                                         "xgboost, lightgbm, ngboost, ridge, lasso); default: all seven")
    seed: int = Field(default=0, description="random seed of the ML regressors, the posterior simulation of intervals, the "
                      "ensemble's folds and the bootstrap")
    transaction_models: list[str] | None = Field(default=None, description="probabilistic models to fit (bgnbd, mbgnbd, pareto_nbd); "
                                                 "default bgnbd and mbgnbd (Pareto/NBD is slow and took no ensemble weight where measured)")
    horizon_scaling: str = Field(default="bgnbd_ratio", description="how an ML forecast for its training window reaches the horizon: "
                                 "bgnbd_ratio (BG/NBD's expected purchases over horizon / window, per customer) or linear (horizon / window)")
    max_abs_total_error_pct: float = Field(default=10.0, description="a champion must forecast the validation window's total "
                                           "purchases within this many percent (the rule's bias bound)")


cltv_assets = champion_assets(FamilySpec(CLTV, inputs=(RAW_TRANSACTIONS, RAW_CUSTOMERS), frame_config=CLTVFrameConfig,
                                         models_config=CLTVModelsConfig))
