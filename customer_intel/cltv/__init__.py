"""Customer lifetime value: probabilistic models, ML regressors and their family spec (no Dagster here).

``customer_intel.cltv.family.CLTV`` is the family the shared lifecycle trains, gates and registers
as ``customer_intel_cltv``.
"""
