"""The image (Dockerfile, .dockerignore) and the compose file, read as text and YAML."""

from __future__ import annotations

import fnmatch
import re
import shlex
from typing import Any

import click
import pytest
import yaml

from control_plane.config import Settings
from tenant_runtime.config import RuntimeSettings
from tests.packaging.charts import (
    CONTROL_PLANE,
    ROOT,
    RUNTIME,
    chart,
    container,
    storeops_command,
    tenant_values,
)


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    joined = re.sub(
        r"\\\n",
        " ",
        "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")),
    )
    out = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), " ".join(rest.split())))
    return out


def stages() -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = []
    args: dict[str, str] = {}
    for word, rest in instructions((ROOT / "Dockerfile").read_text()):
        if word == "ARG" and not found and "=" in rest:
            key, _, value = rest.partition("=")
            args[key] = value
        if word == "FROM":
            image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], rest)
            found.append([(word, image)])
        elif found:
            found[-1].append((word, rest))
    return found


def test_dockerfile_is_multi_stage_with_a_lean_non_root_final_stage() -> None:
    builder, final = stages()
    assert builder[0] == ("FROM", "python:3.11-slim AS builder")
    assert final[0][1].startswith("python:3.11-slim AS ")
    build_steps = " ".join(rest for word, rest in builder if word == "RUN")
    assert "pip wheel" in build_steps and "/opt/storeops" in build_steps
    final_runs = " ".join(rest for word, rest in final if word == "RUN")
    assert not re.search(r"apt-get|build-essential|gcc|pip install", final_runs)
    assert ("COPY", "--from=builder /opt/storeops /opt/storeops") in final
    users = [rest for word, rest in final if word == "USER"]
    assert users and users[-1].split(":")[0] == "10001"
    assert ("ENTRYPOINT", '["storeops"]') in final
    env = " ".join(rest for word, rest in final if word == "ENV")
    assert "STOREOPS_RUNTIME_TEMPLATES_DIR=/app/templates" in env
    assert ("COPY", "templates /app/templates") in final
    # The charts' pods run as the image's user.
    for name in (CONTROL_PLANE, RUNTIME):
        assert chart(name).defaults["podSecurityContext"]["runAsUser"] == 10001


def test_dockerignore_keeps_what_the_build_copies_and_drops_the_rest() -> None:
    patterns = [
        p.strip()
        for p in (ROOT / ".dockerignore").read_text().splitlines()
        if p.strip() and not p.startswith("#")
    ]

    def ignored(path: str) -> bool:
        return any(
            fnmatch.fnmatch(path, p) or path.startswith(p.rstrip("/") + "/") for p in patterns
        )

    copied = set()
    for stage in stages():
        for word, rest in stage:
            if word == "COPY" and not rest.startswith("--from"):
                copied.update(shlex.split(rest)[:-1])
    assert copied == {
        "pyproject.toml",
        "README.md",
        "control_plane",
        "tenant_runtime",
        "migrations",
        "branding",
        "templates",
    }
    for path in copied:
        assert (ROOT / path).exists(), path
        assert not ignored(path), path
    for path in (".git", ".venv", ".storeops", "tests", "bench", "helm", ".env"):
        assert ignored(path), path


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return loaded


RUNTIMES = ("freshmart", "urbanthreads")


def test_compose_services_and_their_order() -> None:
    services = compose()["services"]
    expected = {"postgres", "redis", "vault", "vault-init", "migrate", "control-plane"}
    for name in RUNTIMES:
        expected |= {f"{name}-db-upgrade", f"{name}-api", f"{name}-worker"}
    assert set(services) == expected
    for name in ("postgres", "redis", "vault", "control-plane", *(f"{r}-api" for r in RUNTIMES)):
        assert services[name]["healthcheck"]["test"][0] == "CMD", name
    assert services["vault"]["command"] == ["server", "-dev"]
    for name, service in services.items():
        for target, rule in service.get("depends_on", {}).items():
            assert target in services, f"{name} -> {target}"
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in services[target], f"{name} waits on {target}"
            else:
                assert rule["condition"] == "service_completed_successfully"
                assert "ports" not in services[target] and "healthcheck" not in services[target]
    cp = services["control-plane"]["depends_on"]
    assert cp["migrate"]["condition"] == "service_completed_successfully"
    assert cp["vault-init"]["condition"] == "service_completed_successfully"
    for name in RUNTIMES:
        for part in ("api", "worker"):
            needs = services[f"{name}-{part}"]["depends_on"]
            assert needs[f"{name}-db-upgrade"]["condition"] == "service_completed_successfully"
            assert needs["redis"]["condition"] == "service_healthy"


def test_compose_commands_and_settings_are_what_storeops_accepts() -> None:
    services = compose()["services"]
    image_services = {n: s for n, s in services.items() if s.get("image") == "storeops:dev"}
    assert all(s["build"] == "." for s in image_services.values())
    commands = {n: storeops_command(s["command"]) for n, s in image_services.items()}
    assert commands["migrate"] == "storeops db upgrade"
    assert commands["control-plane"] == "storeops serve"
    cp_env = services["control-plane"]["environment"]
    settings = Settings.from_env(cp_env)
    assert settings.is_postgres and settings.secrets_backend == "vault" and settings.redis_url
    assert settings.migration_url != settings.database_url
    tenants, databases = set(), set()
    for name in RUNTIMES:
        assert commands[f"{name}-db-upgrade"] == "storeops runtime db-upgrade"
        assert commands[f"{name}-api"] == "storeops runtime serve"
        assert commands[f"{name}-worker"] == "storeops runtime worker"
        runtime_env = services[f"{name}-api"]["environment"]
        assert runtime_env == services[f"{name}-worker"]["environment"]
        rs = RuntimeSettings.from_env(runtime_env)
        assert rs.redis_url and rs.database_url.endswith(f"/storeops_rt_{name}")
        assert rs.control_plane_url == "http://control-plane:8000"
        assert rs.token_issuer == settings.issuer
        tenants.add(rs.tenant_id)
        databases.add(rs.database_url)
        assert "--host" in services[f"{name}-api"]["command"]
    assert len(tenants) == len(databases) == len(RUNTIMES)
    init = services["postgres"]["configs"][0]
    sql = compose()["configs"][init["source"]]["content"]
    assert "storeops_app" in sql and all(f"storeops_rt_{r}" in sql for r in RUNTIMES)


@pytest.mark.parametrize(
    ("name", "workload"),
    [
        (CONTROL_PLANE, "-api"),
        (CONTROL_PLANE, "-migrations"),
        (RUNTIME, "-api"),
        (RUNTIME, "-worker"),
        (RUNTIME, "-db-upgrade"),
    ],
)
def test_chart_container_args_are_storeops_commands(name: str, workload: str) -> None:
    values = tenant_values() if name == RUNTIME else {}
    objects = chart(name).objects(values, release="storeops")
    found = [
        o
        for o in objects
        if o["kind"] in ("Deployment", "Job") and o["metadata"]["name"].endswith(workload)
    ]
    assert len(found) == 1
    assert storeops_command(container(found[0])["args"]).startswith("storeops ")


def test_storeops_command_refuses_what_the_cli_does_not_have() -> None:
    for args in (["runtime", "serve", "--nope"], ["no-such-command"], ["runtime"]):
        with pytest.raises(click.UsageError):
            storeops_command(args)
