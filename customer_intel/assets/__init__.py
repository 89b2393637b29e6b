"""Thin Dagster wiring, one module per domain; the logic lives in the domain packages."""
