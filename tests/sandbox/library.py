"""What the workflow library asks of the sandbox, read from ``templates/*/*.yaml``: the
operations each connector declares, every call (and compensation) with its input
mapping, and the output fields later steps read (``steps.<id>.output.<field>``, and the
fields of list items read through ``.map(x, x.f)`` or a ``parallel`` step's alias)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_FILES = sorted((ROOT / "templates").glob("*/*.yaml"))

_READ = re.compile(r"steps\.(\w+)\.output\.(\w+)")
_MAP = re.compile(r"steps\.(\w+)\.output\.(\w+)\.map\((\w+),\s*\3\.(\w+)\)")
_SIMPLE = re.compile(r"^steps\.(\w+)\.output\.(\w+)$")


@dataclass
class Call:
    step_id: str
    system: str
    operation: str
    input: dict[str, str]
    #: The step whose compensation this is (None for the call itself).
    compensates: str | None = None


@dataclass
class Template:
    """One version of a library template, as the walk sees it."""

    id: str
    version: str
    declared: set[tuple[str, str]] = field(default_factory=set)
    calls: list[Call] = field(default_factory=list)
    #: call step id -> output fields read
    reads: dict[str, set[str]] = field(default_factory=dict)
    #: (call step id, list field) -> fields read on its items
    item_reads: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    #: parallel alias -> the (call step id, list field) it iterates over
    aliases: dict[str, tuple[str, str]] = field(default_factory=dict)


def load(path: Path) -> Template:
    raw: dict[str, Any] = yaml.safe_load(path.read_text())
    systems = {name: c["system"] for name, c in (raw.get("connectors") or {}).items()}
    t = Template(id=raw["id"], version=str(raw["version"]))
    for name, connector in (raw.get("connectors") or {}).items():
        t.declared |= {(systems[name], op) for op in connector["operations"]}
    _walk(raw["steps"], systems, t, {}, {})
    text = path.read_text()
    call_ids = {c.step_id for c in t.calls}
    for step_id, name in _READ.findall(text):
        if step_id in call_ids:
            t.reads.setdefault(step_id, set()).add(name)
    for step_id, name, _, item_field in _MAP.findall(text):
        if step_id in call_ids:
            t.item_reads.setdefault((step_id, name), set()).add(item_field)
    return t


def _walk(
    steps: list[dict[str, Any]],
    systems: dict[str, str],
    t: Template,
    simple_vars: dict[str, tuple[str, str]],
    parallels: dict[str, tuple[str, str]],
) -> None:
    for step in steps:
        kind = step["kind"]
        if kind == "set":
            for var, expr in step["values"].items():
                m = _SIMPLE.match(str(expr).strip())
                if m:
                    simple_vars[var] = (m.group(1), m.group(2))
        elif kind == "call":
            system = systems[step["connector"]]
            t.calls.append(
                Call(step["id"], system, step["operation"], dict(step.get("input") or {}))
            )
            compensation = step.get("compensation")
            if compensation:
                t.calls.append(
                    Call(
                        step["id"],
                        system,
                        compensation["operation"],
                        dict(compensation.get("input") or {}),
                        compensates=step["id"],
                    )
                )
        elif kind == "parallel":
            alias = step.get("as", "item")
            over = str(step["over"]).strip()
            source = simple_vars.get(over.removeprefix("vars.")) or _simple(over)
            if source and source[0] in parallels and source[1] == "failures":
                source = parallels[source[0]]  # a parallel's failures are items of its list
            if source:
                parallels[step["id"]] = source
                t.aliases.setdefault(alias, source)
                used = set(re.findall(rf"\b{alias}\.(\w+)", json.dumps(step["steps"])))
                t.item_reads.setdefault(source, set()).update(used)
            _walk(step["steps"], systems, t, simple_vars, parallels)


def _simple(expr: str) -> tuple[str, str] | None:
    m = _SIMPLE.match(expr)
    return (m.group(1), m.group(2)) if m else None


TEMPLATES = [load(path) for path in TEMPLATE_FILES]
