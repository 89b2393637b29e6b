"""Customer lifetime value: probabilistic models, ML regressors and their honest comparison (no Dagster here)."""

REGISTERED_MODEL = "customer_intel_cltv"  # the MLflow registry name training promotes and scoring loads
