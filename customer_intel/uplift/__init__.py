"""Causal uplift from randomised campaigns: the split, the learners, the metrics and the scorer (pure domain code)."""
