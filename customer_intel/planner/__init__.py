"""The campaign planner (pure domain code): expected incremental profit, budget-constrained allocation, the target list."""
