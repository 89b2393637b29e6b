"""Every service binds 127.0.0.1 unless configured: the compose file's published ports, the CLI's UI, the documented commands."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from unittest import mock

import pytest
import yaml

from customer_intel import cli
from customer_intel_tests.security.conftest import PROJECT

COMPOSE = PROJECT / "docker-compose.yml"
BIND_VARIABLE = "PUBLISH_ADDRESS"
DEFAULT_PUBLISHED = f"${{{BIND_VARIABLE}:-127.0.0.1}}"
SERVER_COMMAND = re.compile(r"\b(mlflow (?:ui|server)|dagster dev|dagster-webserver|dagster code-server|uvicorn|http\.server)\b")


def _published_ports(config: dict) -> dict[str, list[tuple[str, str]]]:
    """Service -> (host address, published port) of each published port, in either syntax compose prints."""
    out = {}
    for name, service in config["services"].items():
        entries = []
        for port in service.get("ports") or []:
            if isinstance(port, dict):  # long syntax (docker compose v2)
                entries.append((port.get("host_ip", ""), str(port.get("published", ""))))
            else:  # short syntax: [host_ip:]published:target[/proto]
                parts = str(port).split("/")[0].rsplit(":", 2)
                entries.append((parts[0] if len(parts) == 3 else "", parts[-2] if len(parts) >= 2 else ""))
        if entries:
            out[name] = entries
    return out


def test_the_compose_file_publishes_every_port_on_the_bind_variable_defaulting_to_loopback():
    compose = yaml.safe_load(COMPOSE.read_text())
    published = {}
    for name, service in compose["services"].items():
        for port in service.get("ports") or []:
            assert isinstance(port, str) and port.startswith(DEFAULT_PUBLISHED + ":"), \
                f"{name}: port {port!r} must be published as \"{DEFAULT_PUBLISHED}:HOST_PORT:CONTAINER_PORT\""
            published.setdefault(name, []).append(port)
    assert set(published) == {"minio", "mlflow", "webserver", "scoring-api"}, published  # postgres and the code server are never published
    docs = (PROJECT / "docs" / "deploy.md").read_text()
    assert re.search(rf"^\| `{BIND_VARIABLE}` \| `127\.0\.0\.1` \|", docs, flags=re.MULTILINE), f"{BIND_VARIABLE} and its default in docs/deploy.md"


def _compose_config(tmp_path: Path, **variables: str) -> dict:
    cli_args = None
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        cli_args = ["docker", "compose"]
    elif shutil.which("docker-compose"):
        cli_args = ["docker-compose"]
    if cli_args is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed (apt-get install -y docker-compose)")
    empty = tmp_path / "empty.env"
    empty.write_text("")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), **variables}
    done = subprocess.run([*cli_args, "--env-file", str(empty), "-f", str(COMPOSE), "config"], cwd=PROJECT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)


def test_compose_config_binds_127_0_0_1_by_default_and_follows_the_variable(tmp_path):
    default = _published_ports(_compose_config(tmp_path))
    assert {name: [host for host, _ in ports] for name, ports in default.items()} == {
        "minio": ["127.0.0.1", "127.0.0.1"], "mlflow": ["127.0.0.1"], "webserver": ["127.0.0.1"], "scoring-api": ["127.0.0.1"]}
    assert sorted(port for ports in default.values() for _, port in ports) == ["3000", "5000", "8000", "9000", "9001"]
    configured = _published_ports(_compose_config(tmp_path, **{BIND_VARIABLE: "10.20.30.40"}))
    assert {host for ports in configured.values() for host, _ in ports} == {"10.20.30.40"}


def _ui_command(tmp_path, *args: str) -> list[str]:
    executed = []
    with mock.patch.dict(os.environ), mock.patch.object(cli.os, "execv", lambda path, argv: executed.append(argv)), \
            mock.patch.object(cli.os, "execvp", lambda path, argv: executed.append(argv)):
        os.environ.pop("DAGSTER_HOME", None)
        assert cli.main(["ui", "--out", str(tmp_path / "data"), *args]) == 0
    (command,) = executed
    return command


def test_the_cli_ui_listens_on_127_0_0_1_unless_given_a_host(tmp_path, capsys):
    command = _ui_command(tmp_path)
    assert command[1:4] == ["dev", "-h", "127.0.0.1"] and command[command.index("-p") + 1] == "3000"
    assert capsys.readouterr().err == ""
    command = _ui_command(tmp_path, "--host", "0.0.0.0", "--port", "3100")
    assert command[2:6] == ["-h", "0.0.0.0", "-p", "3100"]
    assert "listening on 0.0.0.0: the Dagster UI has no login" in capsys.readouterr().err


def test_every_server_command_the_docs_give_binds_127_0_0_1():
    found = []
    for path in [PROJECT / "README.md", *sorted((PROJECT / "docs").rglob("*.md"))]:
        for block in re.findall(r"```[a-z]*\n(.*?)```", path.read_text(), flags=re.DOTALL):
            for line in block.splitlines():
                command = line.split("#", 1)[0]
                if SERVER_COMMAND.search(command):
                    found.append(line.strip())
                    assert re.search(r"(--host|-h)[ =]127\.0\.0\.1\b", command), f"{path.name}: binds beyond this machine: {line.strip()}"
    assert any("mlflow ui" in line for line in found), found  # the README's MLflow command is among them
