"""Segmentation on the shared lifecycle: the family spec, its launchpad configs, and the assets the factory builds."""

from pydantic import Field

from customer_intel.assets.factory import CandidatesConfig, FamilySpec, SampledFrameConfig, champion_assets
from customer_intel.segmentation.family import K_MAX, K_MIN, MIN_SEGMENT_SHARE, MIN_STABILITY, SEGMENTATION
from customer_intel.table_names import RAW_CUSTOMERS, RAW_TRANSACTIONS

SEGMENT_ASSIGNMENTS = "segment_assignments"


class SegmentationFrameConfig(SampledFrameConfig):
    """Which customers, as of when, in which input space."""

    cutoff: str | None = Field(default=None, description="YYYY-MM-DD: the as-of day of the features; default: the last transaction day")
    feature_set: str = Field(default="auto", description="behaviour (ticket, categories, refunds, channels and the profile attributes), "
                             "transactional (RFM and behaviour), profile (the five raw profile attributes) or profile_rfm (profile "
                             "mode's RFM proxies); auto: behaviour with transactions, profile without")
    validation_share: float = Field(default=0.25, description="share of customers held out: every candidate is judged on them")
    seed: int = Field(default=0, description="seed of the held-out customers")


class SegmentationModelsConfig(CandidatesConfig):
    """The seven clustering candidates and the champion rule's bounds."""

    methods: list[str] | None = Field(default=None, description="which methods to fit (kmeans, gmm, som, spectral, hdbscan, dec, "
                                      "clustergan); default: all seven")
    k_min: int = Field(default=K_MIN, description="smallest number of segments a champion may have (and the k sweep's start)")
    k_max: int = Field(default=K_MAX, description="largest number of segments a champion may have (and the k sweep's end)")
    seed: int = Field(default=0, description="seed of every clusterer and of the stability refits")
    refits: int = Field(default=3, description="stability refits on 80% subsamples of the training customers, per classical method")
    deep_refits: int = Field(default=2, description="stability refits per deep method (DEC, ClusterGAN)")
    min_stability: float = Field(default=MIN_STABILITY, description="a champion's mean pairwise ARI over the refits must reach this")
    min_segment_share: float = Field(default=MIN_SEGMENT_SHARE, description="no segment of a champion may hold fewer customers than this share")


segmentation_assets = champion_assets(FamilySpec(SEGMENTATION, inputs=(RAW_TRANSACTIONS, RAW_CUSTOMERS), frame_config=SegmentationFrameConfig,
                                                 models_config=SegmentationModelsConfig, scores_asset=SEGMENT_ASSIGNMENTS))
