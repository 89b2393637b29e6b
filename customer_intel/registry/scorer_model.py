"""MLflow models-from-code entry point for every registered customer_intel scorer (see ``pyfunc``)."""

import mlflow.models

from customer_intel.registry.pyfunc import ScorerModel

mlflow.models.set_model(ScorerModel())
