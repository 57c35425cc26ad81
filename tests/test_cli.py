"""The storeops command on the embedded SQLite path: same rules, readable one-line errors."""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from control_plane.cli import main
from control_plane.config import get_settings


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("STOREOPS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("STOREOPS_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    runner = CliRunner()
    ok(runner, "db upgrade")
    yield runner
    get_settings.cache_clear()


def ok(runner: CliRunner, command: str, stdin: str | None = None) -> Result:
    result = runner.invoke(main, shlex.split(command), input=stdin)
    assert result.exit_code == 0, result.output
    return result


def refused(runner: CliRunner, command: str, stdin: str | None = None) -> str:
    result = runner.invoke(main, shlex.split(command), input=stdin)
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    return lines[0]


ONBOARD = "tenant onboard --partner acme-msp --name 'Corner Shop'"


def test_onboarding_lifecycle_and_audit(cli: CliRunner) -> None:
    ok(cli, "partner create --slug acme-msp --name 'Acme MSP' --kind msp")
    assert "acme-msp" in ok(cli, "partner list").output
    out = ok(cli, f"{ONBOARD} --slug corner --timezone Europe/London").output
    assert "status onboarding" in out
    assert "now active" in ok(cli, "tenant activate corner").output
    assert "now suspended" in ok(cli, "tenant suspend corner --reason unpaid").output
    assert "now offboarded" in ok(cli, "tenant offboard corner").output
    assert "offboarded" in ok(cli, "tenant list --partner acme-msp").output
    # The first signing key, the partner, the onboarding (and its runtime bootstrap token)
    # and three transitions.
    assert "audit chain intact: 7 entries" in ok(cli, "audit verify").output


def test_mistakes_are_one_line_and_write_nothing(cli: CliRunner) -> None:
    ok(cli, "partner create --slug acme-msp --name 'Acme MSP' --kind msp")
    assert "already exists" in refused(cli, "partner create --slug acme-msp --name X --kind msp")
    assert "slug" in refused(cli, "partner create --slug 'Not A Slug' --name X --kind msp")
    assert "IANA" in refused(cli, f"{ONBOARD} --slug t --timezone Mars/Olympus")
    assert "no partner" in refused(
        cli, "tenant onboard --partner nobody --slug t --name T --timezone UTC"
    )
    ok(cli, f"{ONBOARD} --slug t --timezone UTC")
    assert "cannot resume" in refused(cli, "tenant resume t")
    assert "valid JSON" in refused(
        cli, "partner create --slug p2 --name P --kind msp --settings '{nope'"
    )
    # The first signing key, one partner and one tenant (and its runtime bootstrap token):
    # the refusals appended nothing.
    assert "audit chain intact: 4 entries" in ok(cli, "audit verify").output


def test_users_clients_and_key_rotation(cli: CliRunner) -> None:
    ok(cli, "partner create --slug acme-msp --name 'Acme MSP' --kind msp")
    pid = ok(cli, "partner list").output.split("acme-msp")[0].split()[-2]
    user = f"user create --role partner_admin --at partner:{pid} --password-stdin"
    ok(cli, f"{user} --email ops@acme.example --name Ops", stdin="correct horse battery\n")
    assert "12" in refused(cli, f"{user} --email x@acme.example --name X", stdin="short\n")
    store_role = f"user create --role store_manager --at partner:{pid} --password-stdin"
    assert "level" in refused(
        cli, f"{store_role} --email y@acme.example --name Y", stdin="long enough password\n"
    )
    out = ok(cli, f"client create --name 'ERP sync' --role partner_admin --at partner:{pid}").output
    assert "client_secret" in out and "not shown again" in out
    before = ok(cli, "keys list").output
    out = ok(cli, "keys rotate").output
    assert "signing with" in out and "verifies until" in out
    after = ok(cli, "keys list").output
    assert after.count("verifying") == before.count("verifying") + 1


def test_secrets_from_stdin_or_a_file_never_argv(cli: CliRunner, tmp_path: Path) -> None:
    ok(cli, "partner create --slug acme-msp --name 'Acme MSP' --kind msp")
    ok(cli, f"{ONBOARD} --slug corner --timezone UTC")
    assert (
        "created erp-key version 1"
        in ok(cli, "secret set --tenant corner erp-key", stdin="s3cret-value\n").output
    )
    value_file = tmp_path / "value.txt"
    value_file.write_text("rotated-value\n")
    assert (
        "version 2" in ok(cli, f"secret rotate --tenant corner erp-key --file {value_file}").output
    )
    listing = ok(cli, "secret list --tenant corner").output
    assert "erp-key" in listing and "s3cret-value" not in listing and "rotated-value" not in listing
    assert "already exists" in refused(cli, "secret set --tenant corner erp-key", stdin="x\n")
    assert "empty" in refused(cli, "secret set --tenant corner other", stdin="\n")
    assert "exactly one owner" in refused(cli, "secret list")
    assert "deleted erp-key" in ok(cli, "secret delete --tenant corner erp-key").output
    # No command takes a value on the command line.
    result = cli.invoke(main, shlex.split("secret set --tenant corner k --value v"))
    assert result.exit_code == 2


def test_master_key_rotation_keeps_every_secret(cli: CliRunner) -> None:
    ok(cli, "partner create --slug acme-msp --name 'Acme MSP' --kind msp")
    ok(cli, f"{ONBOARD} --slug corner --timezone UTC")
    ok(cli, "secret set --tenant corner erp-key", stdin="before-rotation\n")
    settings = get_settings()
    old_key = (settings.home / "master.key").read_text()
    assert "re-wrapped 1 data key(s)" in ok(cli, "secret rotate-master-key").output
    assert (settings.home / "master.key").read_text() != old_key
    assert "erp-key" in ok(cli, "secret list --tenant corner").output
    ok(cli, "secret rotate --tenant corner erp-key", stdin="after-rotation\n")
