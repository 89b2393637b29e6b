"""The product calls no service it was not configured with: MLflow's usage telemetry is off.

MLflow turns its telemetry off by itself under pytest and CI, so the check runs in a clean
subprocess without those variables, the way a deployment imports the package.
"""

import os
import subprocess
import sys

PROBE = (
    "import customer_intel.definitions, mlflow\n"
    "from mlflow.telemetry import get_telemetry_client\n"
    "from mlflow.telemetry.utils import is_telemetry_disabled\n"
    "print(is_telemetry_disabled(), get_telemetry_client() is None)\n"
)
TESTING_VARS = ("PYTEST_CURRENT_TEST", "CI", "GITHUB_ACTIONS", "MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK")


def _probe(**extra: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in TESTING_VARS} | extra
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=300, check=True)
    return done.stdout.strip().splitlines()[-1]


def test_mlflow_telemetry_is_off_when_the_package_is_imported():
    # without the package's default MLflow would build its telemetry client here; the probe never turns it on
    # (that would try to reach MLflow's telemetry host from the test)
    assert _probe() == "True True"

