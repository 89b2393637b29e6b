"""customer_intel: customer analytics for banks as Dagster assets (see README.md).

The product makes no outbound calls but to the storage and tracking services it is configured
with: MLflow (3.18+) phones its usage telemetry home from ``import mlflow`` unless told not to,
so the package turns that off before anything imports MLflow (a deployment may still set
``MLFLOW_DISABLE_TELEMETRY=false``). Dagster's telemetry is off in dagster.yaml.
"""

import os

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
