"""The deployment profile: docker-compose.yml, deploy/ and docs/deploy.md stay valid and consistent.

No Docker engine runs here, so the compose file is validated (``docker compose config``, or
Debian's ``docker-compose`` 1.29) but never booted. The Dagster instance config is loaded for
real against the local PostgreSQL and used to materialise an asset.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
import uuid
from pathlib import Path

import dagster as dg
import pytest
import yaml

from customer_intel_tests.conftest import SMALL_END_DATE, pipeline_resources, scoring_job_with, step_failures, write_raw

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
DEPLOY = ROOT / "deploy"
DOCS = ROOT / "docs" / "deploy.md"

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
SECRET_KEY = re.compile(r"PASSWORD|SECRET")
WITH_DEFAULT = re.compile(r"^\$\{[A-Z][A-Z0-9_]*:-[^}]*\}$")


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _compose_cli() -> list[str] | None:
    """`docker compose` if the plugin is there, else `docker-compose`, else None."""
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def test_compose_file_is_valid_with_defaults_only(tmp_path):
    cli = _compose_cli()
    if cli is None:
        pytest.skip("neither the `docker compose` plugin nor `docker-compose` is installed "
                    "(apt-get install -y docker-compose); docker-compose.yml not validated")
    print(f"validating docker-compose.yml with: {' '.join(cli)}")
    empty_env_file = tmp_path / "empty.env"
    empty_env_file.write_text("")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}  # no variable set: defaults
    result = subprocess.run(
        [*cli, "--env-file", str(empty_env_file), "-f", str(COMPOSE), "config", "-q"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, f"{' '.join(cli)} config -q failed:\n{result.stdout}\n{result.stderr}"


def test_every_service_is_documented_in_a_table():
    services = set(_compose()["services"])
    assert {"postgres", "minio", "minio-init", "mlflow", "code", "webserver", "daemon"} <= services
    first_cells = {
        line.split("|")[1].strip().strip("`")
        for line in DOCS.read_text().splitlines()
        if line.startswith("|") and line.count("|") >= 3
    }
    missing = services - first_cells
    assert not missing, f"services without a row in a docs/deploy.md table: {sorted(missing)}"


def test_every_compose_variable_is_documented():
    without_comments = re.sub(r"(^|\s)#.*$", "", COMPOSE.read_text(), flags=re.MULTILINE)
    variables = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", without_comments))
    assert {"POSTGRES_PASSWORD", "AWS_SECRET_ACCESS_KEY", "MLFLOW_TRACKING_URI"} <= variables
    documented = {
        line.split("|")[1].strip().strip("`")
        for line in DOCS.read_text().splitlines()
        if line.startswith("| `")
    }
    missing = variables - documented
    assert not missing, f"variables of docker-compose.yml without a row in docs/deploy.md: {sorted(missing)}"


def _environments(compose: dict):
    for name, block in compose.items():
        if name.startswith("x-") and isinstance(block, dict) and "build" not in block:
            yield name, block
    for name, service in compose["services"].items():
        env = service.get("environment") or {}
        assert isinstance(env, dict), f"{name}: write environment as a mapping"
        yield name, env


def test_secrets_come_only_from_variables_with_marked_local_defaults():
    compose = _compose()
    text = COMPOSE.read_text()
    secret_defaults = set()
    for owner, env in _environments(compose):
        for key, value in env.items():
            if SECRET_KEY.search(key):
                assert isinstance(value, str) and WITH_DEFAULT.match(value), \
                    f"{owner}.{key} must be `${{VAR:-local default}}`, not {value!r}"
                default = value.split(":-", 1)[1].rstrip("}")
                if default:  # `${VAR:-}`: no default at all (the scoring API's password), stricter still
                    secret_defaults.add(default)
    assert secret_defaults, "no secret variables found: did the environment layout change?"
    # outside `${...}` no default secret appears anywhere (commands, URIs, comments)
    outside = re.sub(r"\$\{[^}]*\}", "", text)
    for secret in secret_defaults:
        assert secret not in outside, f"literal secret {secret!r} outside a ${{...}} default"
    # every line that carries a default secret says it is for local use only
    for line in text.splitlines():
        if any(f":-{secret}}}" in line for secret in secret_defaults) and SECRET_KEY.search(line.split(":")[0]):
            assert "LOCAL-ONLY" in line, f"secret default not marked LOCAL-ONLY: {line.strip()}"
    # compose never interpolates a secret into a command (visible in `docker inspect` and `ps`);
    # `$$VAR` is expanded by the container's shell from its environment, which is fine
    for name, service in compose["services"].items():
        assert not re.search(r"\$\{[A-Z0-9_]*(PASSWORD|SECRET)", str(service.get("command", ""))), f"{name}: secret in command"
        command = re.sub(r"\$\{[^}]*\}", "VAR", str(service.get("command", "")))
        assert not re.search(r"://[^/@\s]+:[^/@\s]+@", command), f"{name}: password in a URI"


def test_deploy_files_agree_with_pyproject_and_compose():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    torch_pin = next(d for d in pyproject["project"]["dependencies"] if d.replace(" ", "").startswith("torch=="))
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert f"ARG TORCH_VERSION={torch_pin.split('==')[1].split()[0]}" in dockerfile

    workspace = yaml.safe_load((DEPLOY / "workspace.yaml").read_text())
    (entry,) = workspace["load_from"]
    grpc = entry["grpc_server"]
    assert grpc["location_name"] == pyproject["tool"]["dagster"]["code_location_name"]
    services = _compose()["services"]
    code_command = services["code"]["command"]
    assert grpc["host"] == "code" and str(grpc["port"]) == code_command[code_command.index("-p") + 1]
    assert pyproject["tool"]["dagster"]["module_name"] in code_command
    for name in ("webserver", "daemon"):
        assert "/opt/dagster/app/deploy/workspace.yaml" in services[name]["command"]

    # every variable deploy/dagster.yaml reads is set for the three Dagster containers
    wanted = set(re.findall(r"env:\s*(\w+)", (DEPLOY / "dagster.yaml").read_text()))
    assert wanted == {"DAGSTER_POSTGRES_HOST", "DAGSTER_POSTGRES_USER", "DAGSTER_POSTGRES_PASSWORD",
                      "DAGSTER_POSTGRES_DB", "DAGSTER_POSTGRES_PORT"}
    for name in ("code", "webserver", "daemon"):
        assert wanted <= set(services[name]["environment"]), name


def test_compose_sets_only_settings_the_code_reads():
    """A renamed setting must not leave the deployment silently setting a variable nobody reads."""
    read = set(re.findall(r'_env\(\s*"([A-Z0-9_]+)"', (ROOT / "customer_intel" / "resources" / "settings.py").read_text()))
    env = _compose()["services"]["code"]["environment"]
    ours = {key.removeprefix("CUSTOMER_INTEL_") for key in env if key.startswith("CUSTOMER_INTEL_")}
    assert ours and ours <= read, f"set in docker-compose.yml but not read by settings.py: {sorted(ours - read)}"
    assert env["CUSTOMER_INTEL_ENV"] == "${CUSTOMER_INTEL_ENV:-s3}"


@pytest.mark.e2e
def test_scoring_job_runs_on_the_deploy_instance_backed_by_postgres(tmp_path, monkeypatch, small_frames):
    try:
        import psycopg2
        from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage
    except ImportError as exc:  # dagster-postgres depends on psycopg2-binary: a broken install
        pytest.fail(f"dagster-postgres / psycopg2 not importable: {exc}")
    from dagster._core.run_coordinator import QueuedRunCoordinator

    try:
        admin = psycopg2.connect(dbname="postgres", connect_timeout=3, **PG)
    except psycopg2.OperationalError as exc:
        reason = (f"PostgreSQL not reachable at {PG['host']}:{PG['port']} as {PG['user']} ({str(exc).strip()}); "
                  "start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start")
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    admin.autocommit = True
    db_name = f"ci_deploy_{uuid.uuid4().hex[:12]}"
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{db_name}"')

    instance = None
    try:
        home = tmp_path / "dagster_home"
        home.mkdir()
        shutil.copy(DEPLOY / "dagster.yaml", home / "dagster.yaml")
        monkeypatch.setenv("DAGSTER_HOME", str(home))
        monkeypatch.setenv("DAGSTER_POSTGRES_HOST", PG["host"])
        monkeypatch.setenv("DAGSTER_POSTGRES_PORT", str(PG["port"]))
        monkeypatch.setenv("DAGSTER_POSTGRES_USER", PG["user"])
        monkeypatch.setenv("DAGSTER_POSTGRES_PASSWORD", "")  # trust auth on the test machine
        monkeypatch.setenv("DAGSTER_POSTGRES_DB", db_name)
        instance = dg.DagsterInstance.get()

        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)

        raw_dir = write_raw(small_frames, tmp_path / "raw", fmt="parquet")
        resources = pipeline_resources(raw_dir, tmp_path / "warehouse")
        result = scoring_job_with(resources).execute_in_process(partition_key=SMALL_END_DATE, instance=instance, raise_on_error=False)
        assert result.success, step_failures(result)
        run_ids = {run.run_id for run in instance.get_runs()}
        assert result.run_id in run_ids
        event = instance.get_latest_materialization_event(dg.AssetKey("scored_customers"))
        assert event is not None and event.asset_materialization.partition == SMALL_END_DATE
        # the rows are in PostgreSQL, not in a SQLite file under DAGSTER_HOME
        with psycopg2.connect(dbname=db_name, **PG) as conn, conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM runs WHERE run_id = %s", (result.run_id,))
            assert cur.fetchone()[0] == 1
            cur.execute("SELECT count(*) FROM event_logs WHERE run_id = %s AND dagster_event_type = 'ASSET_MATERIALIZATION'",
                        (result.run_id,))
            assert cur.fetchone()[0] == 12  # three raw tables, customer_features, cltv_scores, segment_assignments, churn_scores,
            # uplift_scores, scored_customers, campaign_targets, customer_embeddings, lookalike_audience
        conn.close()
        assert not list(home.rglob("*.db"))
    finally:
        if instance is not None:
            instance.dispose()
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        admin.close()
