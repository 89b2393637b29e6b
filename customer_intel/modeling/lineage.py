"""Which code fitted a model: the git commit, or what the deployment image says it was built from."""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path

COMMIT_ENV = "CUSTOMER_INTEL_GIT_COMMIT"  # set by the image build (deploy/Dockerfile), where no .git exists


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """``git:$CUSTOMER_INTEL_GIT_COMMIT`` where the image recorded its commit, else ``git:<sha>[-dirty]`` of the
    checkout this package runs from, else the package version."""
    if os.environ.get(COMMIT_ENV, "unknown") != "unknown":
        return f"git:{os.environ[COMMIT_ENV]}"
    root = Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        from importlib.metadata import PackageNotFoundError, version

        try:
            return f"customer_intel=={version('customer_intel')}"
        except PackageNotFoundError:
            return "unknown"
    return f"git:{sha}" + ("-dirty" if dirty else "")
