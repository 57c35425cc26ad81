"""The CLI's view of a rollout: a header, a progress bar and one row per wave (rich)."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.markup import escape
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from control_plane.rollouts import schemas

_STYLE = {
    "completed": "green",
    "passed": "green",
    "applied": "green",
    "soaking": "cyan",
    "applying": "yellow",
    "paused": "magenta",
    "failed": "red",
    "rolled_back": "red",
    "aborted": "red",
}


def _styled(state: str) -> str:
    style = _STYLE.get(state)
    return f"[{style}]{escape(state)}[/{style}]" if style else escape(state)


def _rate(sample: dict[str, Any] | None) -> str:
    if not sample:
        return "-"
    return f"{sample['failure_rate']:.1%} of {sample['runs']}"


def render(rollout: schemas.Rollout) -> RenderableType:
    moved = sum(
        1
        for w in rollout.waves
        for t in w.tenants
        if t.state in ("applying", "applied", "failed", "rolled_back")
    )
    applied = sum(1 for w in rollout.waves for t in w.tenants if t.state == "applied")
    header = Text.from_markup(
        f"rollout [bold]{rollout.id}[/bold]: {escape(rollout.template_id)} -> "
        f"[bold]{escape(rollout.version)}[/bold]  {_styled(rollout.status)}  "
        f"wave {rollout.current_wave + 1}/{rollout.wave_count}  "
        f"{applied}/{rollout.tenant_count} applied ({moved} moved)"
    )
    table = Table(header_style="bold", expand=False)
    for column in (
        "wave",
        "state",
        "tenants",
        "gate",
        "new failures",
        "old failures",
        "soak until",
    ):
        table.add_column(column)
    for wave in rollout.waves:
        gate = wave.gate or {}
        table.add_row(
            str(wave.index + 1),
            _styled(wave.state),
            ", ".join(f"{escape(t.slug)}:{_styled(t.state)}" for t in wave.tenants),
            _styled(gate["verdict"]) if gate else "-",
            _rate(gate.get("new")),
            _rate(gate.get("old")),
            (wave.soak_until or "-")[11:19] if wave.soak_until else "-",
        )
    parts: list[RenderableType] = [
        header,
        ProgressBar(total=max(rollout.tenant_count, 1), completed=applied, width=50),
        table,
    ]
    if rollout.reason:
        parts.append(Text(f"reason: {rollout.reason}"))
    return Group(*parts)
