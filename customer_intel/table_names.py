"""The one place the warehouse's table (asset) names are spelled.

Assets, sensors, the IO manager and tests all use these, so a rename happens here only.
"""

def raw_table(contract_name: str) -> str:
    """``raw_<table>``: the ingested, validated copy of one raw input table."""
    return f"raw_{contract_name}"


RAW_TRANSACTIONS = "raw_transactions"
RAW_CUSTOMERS = "raw_customers"
RAW_CAMPAIGNS = "raw_campaigns"
RAW_TABLES = (RAW_TRANSACTIONS, RAW_CUSTOMERS, RAW_CAMPAIGNS)
CUSTOMER_FEATURES = "customer_features"
SCORED_CUSTOMERS = "scored_customers"
CAMPAIGN_TARGETS = "campaign_targets"
CUSTOMER_EMBEDDINGS = "customer_embeddings"
LOOKALIKE_AUDIENCE = "lookalike_audience"


def training_frame(family: str) -> str:
    """``<family>_training_frame``: the family's ``TimeSplit`` as one table."""
    return f"{family}_training_frame"


def models(family: str) -> str:
    """``<family>_models``: the family's comparison table (one row per candidate)."""
    return f"{family}_models"


def champion(family: str) -> str:
    """``<family>_champion``: the registry alias move."""
    return f"{family}_champion"


def gate(family: str) -> str:
    """``<family>_champion_not_worse``: the blocking check before promotion."""
    return f"{family}_champion_not_worse"


def scores(family: str) -> str:
    """``<family>_scores``: the family's daily scores from its champion."""
    return f"{family}_scores"
