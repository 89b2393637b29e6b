"""The seeded synthetic bank with its ground truth (no Dagster here)."""

from customer_intel.synthetic.generator import (
    CATEGORIES,
    CHANNELS,
    DEFAULT_PERSONAS,
    Persona,
    SyntheticBank,
    SyntheticBankConfig,
    generate_bank,
)

__all__ = ["CATEGORIES", "CHANNELS", "DEFAULT_PERSONAS", "Persona", "SyntheticBank", "SyntheticBankConfig", "generate_bank"]
