"""Churn risk: temporal labels, calibrated candidates, SHAP reasons and actionable counterfactuals (no Dagster here)."""
