"""docker-compose.yml, Dockerfile and .dockerignore agree with the code they deploy.

No Docker engine runs here, so these check the files statically: the services and their
order, the environment against ledger/settings.py ENV_VARS, every regledger command
against the click CLI, the passwords as required variables, and the image build.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
import pytest
import yaml

from console.cli import cli
from ledger.settings import ENV_VARS as LEDGER_ENV_VARS
from ledger.settings import Settings
from streams.settings import STREAM_ENV_VARS, StreamSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
WRITER_ROLE_SQL = ROOT / "migrations" / "postgres" / "0004_writer_role.sql"

WRITER_ROLE = "regledger_writer"
ENV_VARS = (*LEDGER_ENV_VARS, *STREAM_ENV_VARS)
WORKERS = {
    "stream-relay": "relay",
    "stream-ingestion": "ingestion",
    "slo-worker": "slo",
    "rollback-guard": "guard",
    "indicators-worker": "indicators",
}
PASSWORD_VARS = ("REGLEDGER_OWNER_PASSWORD", "REGLEDGER_WRITER_PASSWORD")
# What a shell would export; stands in for the real values when interpolating.
FAKE_ENV = {"REGLEDGER_OWNER_PASSWORD": "owner-pw", "REGLEDGER_WRITER_PASSWORD": "writer-pw"}
# Variables the third-party images document, beyond the POSTGRES_/PG/KAFKA_ prefixes.
IMAGE_VARS = {"CLUSTER_ID", "TIMESCALEDB_TELEMETRY"}
THIRD_PARTY_PREFIXES = ("POSTGRES_", "PG", "KAFKA_")

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?message}, ${NAME?message}, ...
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}")


def _interpolate(value: object, env: Mapping[str, str] = FAKE_ENV) -> str:
    """Compose interpolation, enough for this file: ${VAR...} from ``env``, $$ -> $."""
    text = str(value)
    out = _VARIABLE.sub(lambda m: env[m.group(1)], text.replace("$$", "\0"))
    return out.replace("\0", "$")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text("utf-8"))
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose["services"]
    assert isinstance(found, dict)
    return found


def _environment(service: Mapping[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # the KEY=VALUE list form
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(key): "" if value is None else str(value) for key, value in env.items()}


def _regledger_services(services: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Services built from this repository (the regledger image)."""
    return {name: s for name, s in services.items() if _built_here(s)}


def _built_here(service: Mapping[str, Any]) -> bool:
    build = service.get("build")
    if isinstance(build, Mapping):
        build = build.get("context")
    return build in (".", "./")


def _url(service: Mapping[str, Any]) -> Any:
    return urlsplit(_interpolate(_environment(service)["REGLEDGER_DATABASE_URL"]))


def _resolve(args: list[str]) -> click.Command:
    """The click command that ``regledger ARGS`` runs; fails if the path or an option is unknown."""
    command: click.Command = cli
    rest = list(args)
    while isinstance(command, click.Group) and rest and not rest[0].startswith("-"):
        name = rest.pop(0)
        assert name in command.commands, f"`regledger ... {name}`: no such command"
        command = command.commands[name]
    assert not isinstance(command, click.Group), f"{args} names a group, not a command"
    command.make_context(" ".join(args), rest)  # parses (never runs) the remaining options
    return command


def test_compose_has_the_services_and_no_version_key(compose: dict[str, Any]) -> None:
    assert "version" not in compose  # obsolete in the Compose spec
    assert {"timescaledb", "kafka", "migrate", "writer-password", "verify", "projections"} <= set(
        compose["services"]
    )
    assert set(compose.get("volumes") or {}) >= {"timescaledb-data", "kafka-data"}


def test_regledger_services_are_the_ones_built_here(services: dict[str, Any]) -> None:
    assert set(_regledger_services(services)) >= {"migrate", "verify", "projections"}
    for name in ("timescaledb", "kafka", "writer-password"):
        assert "build" not in services[name], name


def test_every_regledger_variable_is_one_the_code_reads(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for key in _environment(service):
            if key.startswith("REGLEDGER_"):
                assert key in ENV_VARS, f"{name}: {key} is read by neither ledger nor streams"


def test_regledger_services_set_url_pool_and_lock_timeout(services: dict[str, Any]) -> None:
    for name, service in _regledger_services(services).items():
        env = _environment(service)
        assert set(env) <= set(ENV_VARS), name
        assert "REGLEDGER_DATABASE_URL" in env, name
        assert env["REGLEDGER_POOL_SIZE"] == "8", name
        assert env["REGLEDGER_LOCK_TIMEOUT"] == "30", name
        settings = Settings.from_env({key: _interpolate(v) for key, v in env.items()})
        assert settings.backend == "postgres", name
        assert (settings.pool_size, settings.lock_timeout_s) == (8, 30.0), name


def test_third_party_services_use_only_their_images_variables(services: dict[str, Any]) -> None:
    for name, service in services.items():
        if name in _regledger_services(services):
            continue
        for key in _environment(service):
            assert key.startswith(THIRD_PARTY_PREFIXES) or key in IMAGE_VARS, f"{name}: {key}"


def test_database_urls_point_at_the_timescaledb_service(services: dict[str, Any]) -> None:
    db_env = _environment(services["timescaledb"])
    for name, service in _regledger_services(services).items():
        url = _url(service)
        assert url.scheme == "postgresql", name
        assert (url.hostname, url.port) == ("timescaledb", 5432), name
        assert url.path == "/" + db_env["POSTGRES_DB"], name


def test_migrate_runs_as_the_owner_and_verify_as_the_writer(services: dict[str, Any]) -> None:
    db_env = _environment(services["timescaledb"])
    assert "timescale/timescaledb:" in services["timescaledb"]["image"]
    assert _url(services["migrate"]).username == db_env["POSTGRES_USER"]
    assert _url(services["migrate"]).password == FAKE_ENV["REGLEDGER_OWNER_PASSWORD"]
    assert _url(services["verify"]).username == WRITER_ROLE
    assert _url(services["verify"]).password == FAKE_ENV["REGLEDGER_WRITER_PASSWORD"]
    role_sql = WRITER_ROLE_SQL.read_text("utf-8")
    assert f"CREATE ROLE {WRITER_ROLE} LOGIN" in role_sql


def test_timescaledb_is_healthchecked_with_pg_isready_and_not_published(
    services: dict[str, Any],
) -> None:
    db = services["timescaledb"]
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert "ports" not in db
    assert _environment(db)["POSTGRES_PASSWORD"].startswith("${REGLEDGER_OWNER_PASSWORD:?")


def test_kafka_runs_kraft_without_zookeeper(services: dict[str, Any]) -> None:
    assert not any("zookeeper" in name.lower() for name in services)
    for service in services.values():
        assert not any("ZOOKEEPER" in key.upper() for key in _environment(service))
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = _environment(kafka)
    roles = env["KAFKA_PROCESS_ROLES"].split(",")
    assert {"broker", "controller"} <= set(roles)
    assert env["KAFKA_ADVERTISED_LISTENERS"] == "PLAINTEXT://kafka:9092"
    controller = env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert f"{controller}://" in env["KAFKA_LISTENERS"]
    assert f"{controller}:" in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"]
    controller_port = env["KAFKA_LISTENERS"].split(f"{controller}://:")[1].split(",")[0]
    assert (
        env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:{controller_port}"
    )
    for key in (
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
    ):
        assert env[key] == "1", key
    log_dir = env["KAFKA_LOG_DIRS"]
    assert any(str(volume).endswith(":" + log_dir) for volume in kafka["volumes"])
    assert "kafka-broker-api-versions.sh" in " ".join(kafka["healthcheck"]["test"])


def test_the_order_timescaledb_migrate_writer_password_verify(services: dict[str, Any]) -> None:
    migrate = services["migrate"]
    assert migrate["command"] == ["db", "migrate"]
    assert migrate["depends_on"]["timescaledb"]["condition"] == "service_healthy"
    assert migrate["restart"] == "no"
    writer = services["writer-password"]
    assert writer["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    verify = services["verify"]
    assert verify["profiles"] == ["audit"]
    assert verify["command"] == ["verify", "--json"]
    assert verify["depends_on"]["writer-password"]["condition"] == (
        "service_completed_successfully"
    )


def test_the_projections_runner_follows_as_the_writer_after_the_migration(
    services: dict[str, Any],
) -> None:
    runner = services["projections"]
    assert runner["command"] == ["projections", "run", "--follow"]
    assert runner["restart"] == "unless-stopped"
    assert runner["depends_on"] == {
        "writer-password": {"condition": "service_completed_successfully"}
    }
    assert _url(runner).username == WRITER_ROLE


def test_each_worker_role_runs_as_the_writer_against_kafka(services: dict[str, Any]) -> None:
    kafka = _environment(services["kafka"])["KAFKA_ADVERTISED_LISTENERS"]
    for name, role in WORKERS.items():
        worker = services[name]
        assert worker["command"] == ["worker", role], name
        assert worker["restart"] == "unless-stopped", name
        assert worker["depends_on"] == {
            "writer-password": {"condition": "service_completed_successfully"},
            "kafka": {"condition": "service_healthy"},
        }, name
        assert _url(worker).username == WRITER_ROLE, name
        env = {key: _interpolate(value) for key, value in _environment(worker).items()}
        settings = StreamSettings.from_env(env)
        assert settings.broker_url == "kafka://" + kafka.removeprefix("PLAINTEXT://"), name
        assert settings.group == "regledger", name
    for name, service in _regledger_services(services).items():
        if name not in WORKERS:
            assert "REGLEDGER_BROKER_URL" not in _environment(service), name


def test_writer_password_is_bound_as_a_psql_variable_not_spliced(
    services: dict[str, Any],
) -> None:
    writer = services["writer-password"]
    assert writer["image"] == services["timescaledb"]["image"]
    env = _environment(writer)
    db_env = _environment(services["timescaledb"])
    assert env["PGHOST"] == "timescaledb"
    assert env["PGUSER"] == db_env["POSTGRES_USER"]
    assert env["PGDATABASE"] == db_env["POSTGRES_DB"]
    assert env["PGPASSWORD"].startswith("${REGLEDGER_OWNER_PASSWORD:?")
    assert writer["entrypoint"] == ["/bin/sh", "-c"]
    script, _name, password = writer["command"]
    # The password reaches the script only as $1 and psql only as a variable it quotes.
    assert "${" not in script
    assert password.startswith("${REGLEDGER_WRITER_PASSWORD:?")
    assert f"ALTER ROLE {WRITER_ROLE} PASSWORD :'writer_password';" in script
    assert '-v writer_password="$$1"' in script
    assert "ON_ERROR_STOP=1" in script


def _strings(node: object) -> list[str]:
    """Every string value in the parsed file (what Compose interpolates; comments are not)."""
    if isinstance(node, Mapping):
        return [text for value in node.values() for text in _strings(value)]
    if isinstance(node, list):
        return [text for value in node for text in _strings(value)]
    return [node] if isinstance(node, str) else []


def test_passwords_are_required_variables_never_defaults(compose: dict[str, Any]) -> None:
    strings = _strings(compose)
    uses = [m for text in strings for m in _VARIABLE.finditer(text)]
    assert {m.group(1) for m in uses} == set(PASSWORD_VARS)
    for use in uses:
        assert use.group(2) == ":?", f"{use.group(0)} must be ${{{use.group(1)}:?message}}"
    for text in strings:
        # Every $ is $$ (a literal) or opens ${...}: nothing unbraced, so nothing unchecked.
        assert not re.search(r"\$(?![{$])", text.replace("$$", "")), text
    for service in compose["services"].values():
        for key, value in _environment(service).items():
            if "PASSWORD" in key:
                assert _VARIABLE.fullmatch(value), f"{key} must come from a required variable"


def test_commands_of_regledger_services_exist_in_the_cli(services: dict[str, Any]) -> None:
    for name, service in _regledger_services(services).items():
        args = service["command"]
        assert isinstance(args, list) and all(isinstance(a, str) for a in args), name
        command = _resolve(args)
        options = {opt for param in command.params for opt in param.opts}
        for arg in args:
            if arg.startswith("--"):
                assert arg.split("=", 1)[0] in options, f"{name}: {arg}"
    assert _resolve(["verify", "--json"]).name == "verify"
    assert _resolve(["db", "migrate"]).name == "migrate"
    assert _resolve(["projections", "run", "--follow"]).name == "run"
    assert _resolve(["worker", "ingestion", "slo"]).name == "worker"
    with pytest.raises(click.BadParameter):
        _resolve(["worker", "indexer"])
    with pytest.raises(click.NoSuchOption):
        _resolve(["verify", "--no-such-option"])


def _instructions() -> list[tuple[str, str]]:
    lines = DOCKERFILE.read_text("utf-8").replace("\\\n", " ").splitlines()
    return [
        (parts[0].upper(), parts[1].strip() if len(parts) > 1 else "")
        for line in lines
        if line.strip() and not line.lstrip().startswith("#")
        for parts in [line.strip().split(None, 1)]
    ]


def _pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))


def test_dockerfile_installs_the_project_and_runs_regledger_as_non_root() -> None:
    steps = _instructions()
    assert steps[0] == ("FROM", "python:3.11-slim")
    users = [arg for op, arg in steps if op == "USER"]
    assert users, "the image must switch to a non-root USER"
    assert users[-1].split(":")[0] not in ("root", "0")
    assert json.loads(next(arg for op, arg in steps if op == "ENTRYPOINT")) == ["regledger"]
    assert json.loads(next(arg for op, arg in steps if op == "CMD")) == ["--help"]
    assert any("pip install --no-cache-dir ." in arg for op, arg in steps if op == "RUN")
    copied = {src.rstrip("/") for op, arg in steps if op == "COPY" for src in arg.split()[:-1]}
    wheel = _pyproject()["tool"]["hatch"]["build"]["targets"]["wheel"]
    assert {"pyproject.toml", "README.md", "migrations", *wheel["packages"]} <= copied


def test_dockerignore_keeps_local_state_out_but_not_the_sources() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text("utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert {".venv", ".git"} <= set(patterns)
    assert any(p.endswith("*.db") for p in patterns)
    wheel = _pyproject()["tool"]["hatch"]["build"]["targets"]["wheel"]
    for source in ("pyproject.toml", "README.md", "migrations", *wheel["packages"]):
        assert source not in patterns, f".dockerignore drops {source}, which the build copies"


def test_the_wheel_carries_the_migrations_where_the_code_looks() -> None:
    wheel = _pyproject()["tool"]["hatch"]["build"]["targets"]["wheel"]
    assert wheel["force-include"]["migrations"] == "ledger/_migrations"
    assert '"_migrations"' in (ROOT / "ledger" / "store.py").read_text("utf-8")
    assert (ROOT / "migrations" / "postgres" / "0001_ledger_events.sql").is_file()
