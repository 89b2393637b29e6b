"""How scorers are stored in MLflow: one generic pyfunc for every family (no Dagster here).

``pyfunc.ScorerModel`` wraps any ``modeling.Scorer``; ``scorer_model.py`` is the models-from-code
entry point MLflow copies into each logged model, so only the scorer itself is pickled (by its
module path: those paths are kept stable, see ``customer_intel.cltv.scorer``).
"""
