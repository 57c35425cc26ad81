"""``storeops rollout start|status|promote|abort`` on the embedded SQLite path (so the
0007 migration is exercised there too)."""

from __future__ import annotations

import asyncio
import re
import shlex
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest
from click.testing import CliRunner, Result

from control_plane import jobs
from control_plane.cli import main
from control_plane.config import get_settings
from control_plane.db import Database

FLOW = """
id: cli-flow
name: CLI flow
version: {version}
category: inventory
owner: platform
summary: One call.
connectors:
  erp: {{system: erp, operations: [validate_transfer]}}
triggers: [{{kind: api}}]
steps:
  - id: validate
    kind: call
    connector: erp
    operation: validate_transfer
    input: {{sku: input.sku, quantity: "1", from_location: "'DC'", to_store: input.store}}
"""
DESIRED = """deployments:
  - template_id: cli-flow
    version: 1.0.0
    bindings: {erp: {base_url: "http://127.0.0.1:9/erp", auth: {type: none}}}
"""


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("STOREOPS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("STOREOPS_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    runner = CliRunner()
    ok(runner, "db upgrade")
    library = tmp_path / "library" / "cli-flow"
    library.mkdir(parents=True)
    for version in ("1.0.0", "1.1.0"):
        (library / f"{version}.yaml").write_text(FLOW.format(version=version))
    ok(runner, f"catalog publish {library.parent}")
    ok(runner, "partner create --slug cli-msp --name 'CLI MSP' --kind msp")
    desired = tmp_path / "desired.yaml"
    desired.write_text(DESIRED)
    for i in range(3):
        ok(runner, f"tenant onboard --partner cli-msp --slug shop{i} --name S{i} --timezone UTC")
        ok(runner, f"tenant activate shop{i}")
        ok(runner, f"deploy apply shop{i} {desired}")
    yield runner
    get_settings.cache_clear()


def ok(runner: CliRunner, command: str) -> Result:
    result = runner.invoke(main, shlex.split(command))
    assert result.exit_code == 0, result.output
    return result


def refused(runner: CliRunner, command: str) -> str:
    result = runner.invoke(main, shlex.split(command))
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    return lines[0]


def test_start_status_promote_abort(cli: CliRunner) -> None:
    out = ok(
        cli,
        "rollout start --template cli-flow --version 1.1.0 --partner cli-msp --canary shop2 "
        "--waves 1,rest --soak 5 --min-runs 0",
    ).output
    rollout_id = re.search(r"rollout ([0-9a-f-]{36}) applying", out)
    assert rollout_id, out
    assert "shop2" in out and "0/3 applied" in out
    rid = rollout_id.group(1)
    assert "1.1.0" in ok(cli, "deploy list shop2").output
    assert "1.1.0" not in ok(cli, "deploy list shop0").output

    listed = ok(cli, "rollout status").output
    assert rid[:8] in listed and "applying" in listed
    assert "wave 1/2" in ok(cli, f"rollout status {rid}").output

    assert "still applying (0 of 1 runtimes confirmed)" in refused(cli, f"rollout promote {rid}")
    assert "is still in progress on tenant(s) shop2" in refused(
        cli, "rollout start --template cli-flow --version 1.1.0 --tenant shop2"
    )
    assert "aborted" in ok(cli, f"rollout abort {rid} --reason freeze").output
    assert "1.1.0" not in ok(cli, "deploy list shop2").output
    # --watch on an ended rollout draws once and returns.
    assert "aborted" in ok(cli, f"rollout status {rid} --watch").output
    assert "already aborted" in refused(cli, f"rollout abort {rid}")


def test_the_job_rolls_back_on_sqlite_when_no_runtime_confirms(cli: CliRunner) -> None:
    """The periodic job on the embedded database (savepoints per rollout)."""
    out = ok(
        cli, "rollout start --template cli-flow --version 1.1.0 --partner cli-msp --apply-timeout 5"
    ).output
    rid = UUID(re.findall(r"rollout ([0-9a-f-]{36}) applying", out)[0])
    job = jobs.registered()["rollouts.advance"]
    later = datetime.now(UTC) + timedelta(seconds=6)

    async def tick() -> int:
        database = Database(get_settings())
        try:
            return await jobs.run_job(database, job, later)
        finally:
            await database.dispose()

    assert asyncio.run(tick()) == 1
    shown = ok(cli, f"rollout status {rid}").output
    assert "rolled_back" in shown and "did not confirm 1.1.0 within 5s" in shown
    assert "1.1.0" not in ok(cli, "deploy list shop0").output


def test_bad_input_is_one_line(cli: CliRunner) -> None:
    assert "waves[0]: 'rest' can only be the last wave" in refused(
        cli, "rollout start --template cli-flow --version 1.1.0 --partner cli-msp --waves rest,1"
    )
    assert "has no version '3.0.0'" in refused(
        cli, "rollout start --template cli-flow --version 3.0.0 --partner cli-msp"
    )
    assert "use label=value" in refused(
        cli, "rollout start --template cli-flow --version 1.1.0 --match region"
    )
    assert "no rollout" not in ok(cli, "rollout status").output
