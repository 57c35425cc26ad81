"""Markdown pages for templates: summary, parameters, connectors, triggers, a flow diagram."""

from __future__ import annotations

from pathlib import Path

import msgspec

from control_plane.contracts import dsl
from control_plane.contracts.diagram import mermaid


def page(template: dsl.Template) -> str:
    lines = [
        f"# {template.name} ({template.id} {template.version})",
        "",
        template.summary,
        "",
        f"Category: {template.category}. Owner: {template.owner}.",
        "",
        "## Flow",
        "",
        "```mermaid",
        mermaid(template).rstrip(),
        "```",
        "",
        "## Parameters",
        "",
        "| name | type | default | description |",
        "|---|---|---|---|",
    ]
    props = template.parameters.get("properties", {}) or {}
    required = set(template.parameters.get("required", []) or [])
    for name, spec in props.items():
        mark = " (required)" if name in required else ""
        lines.append(
            f"| `{name}`{mark} | {spec.get('type', '')} | {spec.get('default', '')} "
            f"| {spec.get('description', '')} |"
        )
    lines += ["", "## Connectors", ""]
    for name, connector in template.connectors.items():
        lines.append(f"- `{name}` ({connector.system}): {', '.join(connector.operations)}")
    lines += ["", "## Triggers", ""]
    for trigger in template.triggers:
        data = msgspec.to_builtins(trigger)
        kind = type(trigger).__struct_config__.tag
        lines.append(f"- {kind}" + "".join(f", {k}: {v}" for k, v in data.items() if k != "kind"))
    return "\n".join(lines) + "\n"


def write_docs(templates: list[dsl.Template], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for template in templates:
        target = out / f"{template.id}-{template.version}.md"
        target.write_text(page(template), encoding="utf-8")
        written.append(target)
    return written
