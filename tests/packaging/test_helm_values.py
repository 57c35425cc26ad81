"""`storeops tenant helm-values`: the values of a tenant's runtime release, from the tenant
and the control plane's settings."""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import hvac
import pytest
import yaml
from click.testing import CliRunner, Result

from control_plane.cli import main
from control_plane.config import Settings, get_settings
from control_plane.errors import InvalidInput
from control_plane.packaging import (
    TenantRelease,
    database_name,
    release_name,
    render_values,
    runtime_values,
)
from control_plane.secrets.vault import VaultSecretStore
from tests.packaging.charts import DEMO_TENANT, RUNTIME, chart, check_objects, schema_errors

TENANT_ID = UUID("0b5e7c1e-8f7e-4c43-9d0e-2c1f3e4a5b6c")


def test_values_with_vault() -> None:
    settings = Settings(
        public_url="https://storeops.example.com/",
        jwt_audience="storeops-prod",
        secrets_backend="vault",
        vault_addr="https://vault.example.com:8200",
    )
    values = runtime_values(DEMO_TENANT, settings, image_tag="0.2.0-rc.1")
    role = VaultSecretStore(hvac.Client(url="http://x", token="")).tenant_role(TENANT_ID)
    assert values == {
        "image": {"tag": "0.2.0-rc.1"},
        "tenant": {
            "id": str(TENANT_ID),
            "slug": "freshmart",
            "name": "FreshMart Groceries",
            "partner": "northwind",
        },
        "controlPlane": {
            "url": "https://storeops.example.com",
            "tokenIssuer": "https://storeops.example.com",
            "tokenAudience": "storeops-prod",
        },
        "database": {"name": "storeops_rt_freshmart"},
        "secrets": {
            "provider": "vault",
            "vault": {"addr": "https://vault.example.com:8200", "role": role, "policy": role},
        },
    }
    assert role == f"storeops-tenant-{TENANT_ID}"


def test_values_with_the_local_store_use_the_broker() -> None:
    values = runtime_values(DEMO_TENANT, Settings(public_url="http://localhost:8000"))
    assert values["secrets"] == {"provider": "broker"}
    assert "image" not in values
    assert values["controlPlane"]["url"] == "http://localhost:8000"


def test_names_follow_the_conventions_and_limits() -> None:
    hyphenated = TenantRelease(TENANT_ID, "corner-shop", "Corner Shop", "active", "acme")
    assert release_name(hyphenated) == "corner-shop"
    assert database_name(hyphenated) == "storeops_rt_corner_shop"
    long_slug = "a" * 30 + "-" + "b" * 32
    long = TenantRelease(TENANT_ID, long_slug, "Long", "active", "acme")
    other = TenantRelease(UUID(int=1), long_slug, "Long", "active", "other")
    assert len(release_name(long)) == 53 and release_name(long) != release_name(other)
    assert len(database_name(long)) == 63 and database_name(long) != database_name(other)
    assert database_name(long).startswith("storeops_rt_aaaa")
    assert release_name(long) == release_name(long)


def test_refusals() -> None:
    gone = TenantRelease(TENANT_ID, "gone", "Gone", "offboarded", "acme")
    with pytest.raises(InvalidInput, match="offboarded"):
        runtime_values(gone, Settings())
    with pytest.raises(ValueError, match="image tag"):
        runtime_values(DEMO_TENANT, Settings(), image_tag="latest; rm -rf /")


def test_rendered_yaml_has_install_instructions_and_round_trips() -> None:
    text = render_values(DEMO_TENANT, Settings(), image_tag="0.1.0")
    assert text.startswith("# helm/storeops-tenant-runtime values for tenant freshmart")
    assert "helm upgrade --install freshmart helm/storeops-tenant-runtime" in text
    assert yaml.safe_load(text) == runtime_values(DEMO_TENANT, Settings(), image_tag="0.1.0")


# --- the command, on the embedded SQLite path (as tests/test_cli.py) ------------------------


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("STOREOPS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("STOREOPS_PUBLIC_URL", "https://storeops.example.com")
    for name in ("STOREOPS_DATABASE_URL", "STOREOPS_SECRETS_BACKEND", "STOREOPS_VAULT_ADDR"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    runner = CliRunner()
    ok(runner, "db upgrade")
    ok(runner, "partner create --slug northwind --name Northwind --kind msp")
    ok(runner, "partner create --slug bluepeak --name Bluepeak --kind msp")
    ok(
        runner,
        "tenant onboard --partner northwind --slug freshmart --name FreshMart --timezone UTC",
    )
    yield runner
    get_settings.cache_clear()


def ok(runner: CliRunner, command: str) -> Result:
    result = runner.invoke(main, shlex.split(command))
    assert result.exit_code == 0, result.output
    return result


def helm_values(runner: CliRunner, command: str) -> dict[str, object]:
    loaded: dict[str, object] = yaml.safe_load(ok(runner, f"tenant helm-values {command}").stdout)
    return loaded


def test_command_prints_values_the_chart_accepts(cli: CliRunner) -> None:
    values = helm_values(cli, "freshmart --image-tag 0.1.0")
    tenant = values["tenant"]
    assert isinstance(tenant, dict)
    assert tenant["slug"] == "freshmart" and tenant["partner"] == "northwind"
    assert values["image"] == {"tag": "0.1.0"}
    assert values["database"] == {"name": "storeops_rt_freshmart"}
    assert values["secrets"] == {"provider": "broker"}
    assert schema_errors(RUNTIME, values) == []
    objects = chart(RUNTIME).objects(values, release="freshmart")
    check_objects(objects)
    configmap = next(o for o in objects if o["metadata"]["name"] == "freshmart")
    assert configmap["data"]["STOREOPS_RUNTIME_TENANT_ID"] == tenant["id"]
    # By id too, with the same result.
    assert helm_values(cli, f"{tenant['id']} --image-tag 0.1.0") == values


def test_command_names_the_vault_role(cli: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    tenant_id = helm_values(cli, "freshmart")["tenant"]["id"]  # type: ignore[index]
    monkeypatch.setenv("STOREOPS_SECRETS_BACKEND", "vault")
    monkeypatch.setenv("STOREOPS_VAULT_ADDR", "http://vault.vault.svc:8200")
    get_settings.cache_clear()
    values = helm_values(cli, "freshmart")
    assert values["secrets"] == {
        "provider": "vault",
        "vault": {
            "addr": "http://vault.vault.svc:8200",
            "role": f"storeops-tenant-{tenant_id}",
            "policy": f"storeops-tenant-{tenant_id}",
        },
    }
    assert schema_errors(RUNTIME, values) == []


def test_command_mistakes_are_one_line(cli: CliRunner) -> None:
    for command, message in (
        ("tenant helm-values nobody", "no tenant with slug 'nobody'"),
        ("tenant helm-values freshmart --image-tag 'a b'", "not a valid image tag"),
    ):
        result = cli.invoke(main, shlex.split(command))
        assert result.exit_code == 1, result.output
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0]
    ok(cli, "tenant offboard freshmart")
    result = cli.invoke(main, shlex.split("tenant helm-values freshmart"))
    assert result.exit_code == 1 and "offboarded" in result.output


def test_command_warns_about_a_namesake_of_another_partner(cli: CliRunner) -> None:
    tenant_id = helm_values(cli, "freshmart")["tenant"]["id"]  # type: ignore[index]
    ok(cli, "tenant onboard --partner bluepeak --slug freshmart --name Other --timezone UTC")
    # The slug is ambiguous now; the id is not.
    assert "several" in cli.invoke(main, ["tenant", "helm-values", "freshmart"]).output
    result = cli.invoke(main, shlex.split(f"tenant helm-values {tenant_id}"))
    assert result.exit_code == 0, result.output
    assert "bluepeak also have a tenant freshmart" in result.stderr
    assert yaml.safe_load(result.stdout)["tenant"]["partner"] == "northwind"
