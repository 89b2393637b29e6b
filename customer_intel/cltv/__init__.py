"""Customer lifetime value: probabilistic models, ML regressors and their honest comparison (no Dagster here)."""
