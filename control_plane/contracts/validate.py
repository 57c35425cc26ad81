"""Validating a template beyond its shape: references, reachability, loops, connectors,
CEL, parameter schema, durations and schedules. Every problem names file, line, column
and field."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jsonschema
import msgspec
from croniter import croniter

from control_plane.contracts import dsl, expressions
from control_plane.contracts.source import (
    KEY,
    Path,
    Problem,
    Source,
    TemplateError,
    load,
    parse_msgspec_path,
)

_UNKNOWN_FIELD = re.compile(r"unknown field `([^`]+)`")
_REF = re.compile(r"(?<![\w.])(steps|params|vars)\.([A-Za-z_][A-Za-z0-9_]*)")
_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")
_DURATION = re.compile(r"(\d+)([dhms])")
_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
TARGET_FIELDS = ("next", "default", "on_error", "on_exception", "on_timeout")


def seconds(duration: str) -> int:
    return sum(int(n) * _UNITS[u] for n, u in _DURATION.findall(duration))


@dataclass(frozen=True)
class Placed:
    """A step, where it stands, which flow it belongs to and which aliases it sees."""

    step: dsl.Step
    path: Path
    flow: int
    aliases: tuple[str, ...]


def lint(
    text: str, file: str, *, expect_id: str | None = None, expect_version: str | None = None
) -> tuple[dsl.Template | None, list[Problem]]:
    """Every problem in one template file (empty when it is valid)."""
    try:
        source = load(text, file)
    except TemplateError as exc:
        return None, exc.problems
    try:
        template = dsl.parse(source.data)
    except msgspec.ValidationError as exc:
        return None, [_shape_problem(source, str(exc))]
    problems = list(_Checker(source, template).run())
    if expect_id is not None and template.id != expect_id:
        problems.append(
            source.problem(("id",), f"id {template.id!r} differs from its folder {expect_id!r}")
        )
    if expect_version is not None and template.version != expect_version:
        problems.append(
            source.problem(
                ("version",),
                f"version {template.version} differs from its file name {expect_version}.yaml",
            )
        )
    return template, sorted(problems)


_REGEX = re.compile(r"Expected `str` matching regex '.*'")
_DURATION_FIELDS = {"timeout", "initial", "max", "after", "duration", "timer"}
_DEFAULT_FORMAT = "a value in the documented format"
_FORMATS = {
    "version": "a semantic version like 1.4.0",
    "owner": "platform or partner:<slug>",
    "operation": "an operation name: lowercase letters, digits and _",
}


def _expected_format(path: Path) -> str:
    leaf = next((p for p in reversed(path) if isinstance(p, str)), "")
    if leaf in _DURATION_FIELDS:
        return "a duration like 30s, 15m, 4h, 2d or 1h30m"
    if leaf == "id":
        if path == ("id",):
            return "a template id: lowercase letters, digits and inner hyphens, 3-64 characters"
        return "a step id: a lowercase letter, then lowercase letters, digits or _"
    return _FORMATS.get(leaf, _DEFAULT_FORMAT)


def _data_at(data: Any, path: Path) -> Any:
    for part in path:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _choices() -> dict[str, tuple[str, ...]]:
    """The accepted values of every enumerated DSL field (and dict key), by field name."""
    found: dict[str, tuple[str, ...]] = {}
    seen: set[type] = set()

    def visit(info: Any, name: str) -> None:
        if isinstance(info, msgspec.inspect.LiteralType):
            found[name] = tuple(dict.fromkeys(str(v) for v in info.values))
        elif isinstance(info, msgspec.inspect.EnumType):
            found[name] = tuple(str(m.value) for m in info.cls)
        elif isinstance(info, msgspec.inspect.UnionType):
            for member in info.types:
                visit(member, name)
        elif isinstance(info, msgspec.inspect.ListType):
            visit(info.item_type, name)
        elif isinstance(info, msgspec.inspect.DictType):
            visit(info.key_type, name)
            visit(info.value_type, name)
        elif isinstance(info, msgspec.inspect.StructType) and info.cls not in seen:
            seen.add(info.cls)
            for f in info.fields:
                visit(f.type, f.encode_name)

    visit(msgspec.inspect.type_info(dsl.Template), "")
    return found


_CHOICES = _choices()
_MISSING = re.compile(r"missing required field `([^`]+)`")
_NUMBER = re.compile(r"Expected `str( \| null)?`, got `(int|float)`")
_KEY_FORMATS = {
    "connectors": "a connector name: a lowercase letter, then lowercase letters, digits or _",
    "values": "a variable name: a lowercase letter, then lowercase letters, digits or _",
}


def _shape_problem(source: Source, message: str) -> Problem:
    text, _, where = message.partition(" - at ")
    path = parse_msgspec_path(where)
    if where.startswith("`key` in"):
        # msgspec does not say which key; find it, and point at it.
        pattern = re.search(r"matching regex '(.*)'", text)
        named = re.search(r"value '([^']*)'", text)
        mapping = _data_at(source.data, path)
        for key in mapping if isinstance(mapping, dict) else ():
            if (named and key == named.group(1)) or (
                pattern and not re.fullmatch(pattern.group(1), str(key))
            ):
                expected = _KEY_FORMATS.get(str(path[-1]), "a key in the documented format")
                text = _REGEX.sub(f"Expected {expected}", text)
                path = (*path, key, KEY)
                break
    text = _REGEX.sub(f"Expected {_expected_format(path)}", text)
    number = _NUMBER.match(text)
    if number and _expected_format(path) != _DEFAULT_FORMAT:
        # YAML reads 1.0 and 30 as numbers: say what the string should look like.
        text = f"Expected {_expected_format(path)} (a string), got `{number.group(2)}`"
    missing = _MISSING.search(text)
    if missing:
        path = (*path, missing.group(1))  # placed at its parent, named in the field
    named_by = path[:-2] if path and path[-1] == KEY else path  # a key: its mapping's name
    leaf = next((p for p in reversed(named_by) if isinstance(p, str)), "")
    if "Invalid enum value" in text and leaf in _CHOICES:
        text += f"; one of {', '.join(_CHOICES[leaf])}"
    unknown = _UNKNOWN_FIELD.search(text)
    if unknown:
        key_path = (*path, unknown.group(1), KEY)
        if key_path in source.positions:
            path = key_path
    if path and path[-1] == "kind" and ("Invalid value" in text or missing):
        kinds = "call, approval, checklist, decide, set, wait, notify, emit, parallel, compensate"
        if "triggers" not in path:
            text += f"; a step kind is one of {kinds}"
        else:
            text += "; a trigger kind is one of api, webhook, event, schedule"
    if not isinstance(source.data, dict):
        text = "a template is a mapping of id, name, version, ... and steps"
    return source.problem(path, text)


class _Checker:
    def __init__(self, source: Source, template: dsl.Template) -> None:
        self.source = source
        self.t = template
        self.placed = list(self._place(template.steps, ("steps",), 0, ()))
        self.by_id: dict[str, Placed] = {}
        self.flows: dict[int, list[Placed]] = {}
        for p in self.placed:
            self.by_id.setdefault(p.step.id, p)
            self.flows.setdefault(p.flow, []).append(p)
        props = template.parameters.get("properties")
        #: None when the schema lists no ``properties`` (any name may then be supplied).
        self.param_names = set(props) if isinstance(props, dict) else None
        self.var_names = {
            k for p in self.placed if isinstance(p.step, dsl.SetStep) for k in p.step.values
        }

    def _place(
        self, steps: list[dsl.Step], path: Path, flow: int, aliases: tuple[str, ...]
    ) -> Iterator[Placed]:
        for i, step in enumerate(steps):
            here = (*path, i)
            yield Placed(step, here, flow, aliases)
            if isinstance(step, dsl.ParallelStep):
                child = (flow + 1) * 1000 + i
                yield from self._place(step.steps, (*here, "steps"), child, (*aliases, step.alias))

    def run(self) -> Iterator[Problem]:
        yield from self._parameters()
        yield from self._triggers()
        yield from self._ids()
        yield from self._recommends()
        yield from self._references()
        yield from self._graph()
        for p in self.placed:
            yield from self._step(p)
        yield from self._metrics()

    # --- document level ------------------------------------------------------------------

    def _parameters(self) -> Iterator[Problem]:
        schema = self.t.parameters
        if schema.get("type") != "object":
            yield self.source.problem(
                ("parameters", "type") if "type" in schema else ("parameters",),
                "parameters must be a JSON Schema with type: object",
            )
            return
        try:
            jsonschema.validators.validator_for(schema).check_schema(schema)
        except jsonschema.SchemaError as exc:
            path = ("parameters", *exc.absolute_path)
            # "not valid under any of the given schemas" (anyOf): say which would do.
            best = jsonschema.exceptions.best_match(exc.context) if exc.context else exc
            yield self.source.problem(path, f"invalid JSON Schema: {(best or exc).message}")

    def _triggers(self) -> Iterator[Problem]:
        for i, trigger in enumerate(self.t.triggers):
            if isinstance(trigger, dsl.ScheduleTrigger):
                if not croniter.is_valid(trigger.cron):
                    yield self.source.problem(
                        ("triggers", i, "cron"),
                        f"{trigger.cron!r} is not a cron expression (5 fields: minute hour day month weekday)",
                    )
                try:
                    ZoneInfo(trigger.timezone)
                except (ZoneInfoNotFoundError, ValueError):
                    yield self.source.problem(
                        ("triggers", i, "timezone"),
                        f"{trigger.timezone!r} is not an IANA time zone",
                    )

    def _metrics(self) -> Iterator[Problem]:
        """Metric expressions see the run as it ends: no parallel item alias."""
        top = Placed(self.t.steps[0], ("metrics",), 0, ())
        for name, expr in self.t.metrics.items():
            yield from self._expr(top, ("metrics", name), expr)

    def _recommends(self) -> Iterator[Problem]:
        """A run is one case: one ``recommend`` step, in the main flow (its case closes
        when the run ends)."""
        found = [p for p in self.placed if isinstance(p.step, dsl.RecommendStep)]
        for p in found:
            if p.flow != 0:
                yield self.source.problem(
                    (*p.path, "kind"),
                    "a recommend step belongs in the main flow, not a parallel step",
                )
            if p.step.loop is not None:
                yield self.source.problem(
                    (*p.path, "loop"), "a recommend step runs once per run: no loop"
                )
        for p in found[1:]:
            yield self.source.problem(
                (*p.path, "kind"),
                f"one recommend step per template (the run is one case); {found[0].step.id!r} is the first",
            )

    def _ids(self) -> Iterator[Problem]:
        seen: set[str] = set()
        for p in self.placed:
            if p.step.id in seen:
                yield self.source.problem((*p.path, "id"), f"step id {p.step.id!r} is used twice")
            seen.add(p.step.id)
        if self.t.start is not None and (
            self.t.start not in self.by_id or self.by_id[self.t.start].flow != 0
        ):
            yield self.source.problem(("start",), f"start names unknown step {self.t.start!r}")

    # --- references and graph ------------------------------------------------------------

    def _edges(self, p: Placed) -> Iterator[tuple[Path, str]]:
        s = p.step
        for name in TARGET_FIELDS:
            value = getattr(s, name, None)
            if isinstance(value, str):
                yield (*p.path, name), value
        if isinstance(s, dsl.ApprovalStep):
            for decision, target in s.outcomes.items():
                yield (*p.path, "outcomes", decision), target
        if isinstance(s, dsl.DecideStep):
            for i, branch in enumerate(s.branches):
                yield (*p.path, "branches", i, "next"), branch.next

    def _references(self) -> Iterator[Problem]:
        for p in self.placed:
            for path, target in self._edges(p):
                if target in (dsl.END, dsl.FAIL):
                    continue
                other = self.by_id.get(target)
                if other is None:
                    yield self.source.problem(path, f"unknown step {target!r}")
                elif other.flow != p.flow:
                    yield self.source.problem(
                        path,
                        f"step {target!r} is in another flow (a parallel step's sub-flow is closed)",
                    )
            if isinstance(p.step, dsl.CompensateStep):
                for i, ref in enumerate(p.step.steps):
                    other = self.by_id.get(ref)
                    if other is None:
                        yield self.source.problem((*p.path, "steps", i), f"unknown step {ref!r}")
                    elif not (isinstance(other.step, dsl.CallStep) and other.step.compensation):
                        yield self.source.problem(
                            (*p.path, "steps", i), f"step {ref!r} is not a call with a compensation"
                        )

    def _graph(self) -> Iterator[Problem]:
        for flow, members in self.flows.items():
            ids = {p.step.id for p in members}
            edges: dict[str, list[str]] = {}
            for p in members:  # a duplicated id (reported by _ids) keeps the edges of both
                edges.setdefault(p.step.id, []).extend(t for _, t in self._edges(p) if t in ids)
            start = self.t.start if flow == 0 and self.t.start else members[0].step.id
            reached: set[str] = set()
            stack = [start]
            while stack:
                node = stack.pop()
                if node not in reached:
                    reached.add(node)
                    stack.extend(edges.get(node, ()))
            for p in members:
                # An unknown start is reported once (by _ids), not as every step unreachable.
                if start in edges and p.step.id not in reached:
                    yield self.source.problem(
                        (*p.path, "id"), f"step {p.step.id!r} is unreachable from {start!r}"
                    )
            looped = {p.step.id for p in members if p.step.loop is not None}
            cycle = _find_cycle(
                {
                    n: [t for t in ts if t not in looped]
                    for n, ts in edges.items()
                    if n not in looped
                }
            )
            if cycle:
                first = self.by_id[cycle[0]]
                route = " -> ".join([*cycle, cycle[0]])
                # Point at the edge that closes the cycle (the way back), not at a step.
                closing = (*first.path, "id")
                for p in members:
                    if p.step.id == cycle[-1]:
                        closing = next(
                            (path for path, t in self._edges(p) if t == cycle[0]), closing
                        )
                yield self.source.problem(
                    closing,
                    f"cycle {route} passes through no step with `loop` (add loop: {{max_iterations: N}})",
                )

    # --- per step ------------------------------------------------------------------------

    def _step(self, p: Placed) -> Iterator[Problem]:
        s, path = p.step, p.path
        durations: list[tuple[Path, str | None]] = [(("timeout",), s.timeout)]
        if isinstance(s, dsl.WaitStep):
            durations.append((("timer",), s.timer))
        if isinstance(s, dsl.ApprovalStep | dsl.ChecklistStep | dsl.ClassifyStep):
            durations.append((("sla", "duration"), s.sla.duration if s.sla else None))
            durations += [(("escalation", i, "after"), e.after) for i, e in enumerate(s.escalation)]
        for rel, value in durations:
            if value is not None and seconds(value) == 0:
                yield self.source.problem((*path, *rel), "a duration must be longer than 0s")
        if isinstance(s, dsl.CallStep):
            yield from self._call(p)
        if isinstance(s, dsl.ApprovalStep):
            if s.auto_decision:
                yield from self._expr(
                    p, (*path, "auto_decision", "when"), s.auto_decision.when, want_bool=True
                )
            if s.title:
                yield from self._expr(p, (*path, "title"), s.title)
            for i, f in enumerate(s.form):
                if f.type == "choice" and not f.options:
                    yield self.source.problem(
                        (*path, "form", i), f"choice field {f.name!r} needs options"
                    )
        if isinstance(s, dsl.DecideStep):
            for i, branch in enumerate(s.branches):
                yield from self._expr(
                    p, (*path, "branches", i, "when"), branch.when, want_bool=True
                )
        if isinstance(s, dsl.SetStep):
            for key, expr in s.values.items():
                yield from self._expr(p, (*path, "values", key), expr)
        if isinstance(s, dsl.WaitStep):
            if (s.event is None) == (s.timer is None):
                yield self.source.problem(
                    (*path, "timer") if s.timer else path,
                    "a wait step waits for exactly one of `event` or `timer`",
                )
            if s.event is not None:
                yield from self._expr(p, (*path, "event", "correlation"), s.event.correlation)
                if s.timeout is None:
                    yield self.source.problem(
                        path, "an event wait needs a `timeout` (and usually `on_timeout`)"
                    )
        if isinstance(s, dsl.NotifyStep):
            if s.to is None and s.address is None:
                yield self.source.problem(path, "a notify step needs `to` (a role) or `address`")
            if s.address:
                yield from self._expr(p, (*path, "address"), s.address)
            for match in _PLACEHOLDER.finditer(s.message):
                yield from self._expr(p, (*path, "message"), match.group(1), offset=match.start(1))
        if isinstance(s, dsl.EmitStep):
            for key, expr in s.payload.items():
                yield from self._expr(p, (*path, "payload", key), expr)
        if isinstance(s, dsl.ClassifyStep):
            yield from self._expr(p, (*path, "text"), s.text)
            if s.title:
                yield from self._expr(p, (*path, "title"), s.title)
        if isinstance(s, dsl.RecommendStep):
            yield from self._expr(p, (*path, "text"), s.text)
            if s.label:
                yield from self._expr(p, (*path, "label"), s.label)
            for key, expr in s.context.items():
                yield from self._expr(p, (*path, "context", key), expr)
            # Evaluated as the run ends, like the metrics: what resolved the case.
            ending = Placed(s, path, 0, ())
            for key, expr in s.outcome.items():
                yield from self._expr(ending, (*path, "outcome", key), expr)
            if s.resolution:
                yield from self._expr(ending, (*path, "resolution"), s.resolution)
        if isinstance(s, dsl.ParallelStep):
            yield from self._expr(p, (*path, "over"), s.over)
            if (s.join.policy == "quorum") != (s.join.quorum is not None):
                yield self.source.problem(
                    (*path, "join"), "`quorum` is given exactly when policy is quorum"
                )

    def _call(self, p: Placed) -> Iterator[Problem]:
        s = p.step
        assert isinstance(s, dsl.CallStep)
        connector = self.t.connectors.get(s.connector)
        if connector is None:
            declared = ", ".join(sorted(self.t.connectors)) or "none"
            yield self.source.problem(
                (*p.path, "connector"),
                f"connector {s.connector!r} is not declared (declared: {declared})",
            )
            return
        ops: list[tuple[Path, str]] = [(("operation",), s.operation)]
        if s.compensation:
            ops.append((("compensation", "operation"), s.compensation.operation))
        for rel, op in ops:
            if op not in connector.operations:
                yield self.source.problem(
                    (*p.path, *rel),
                    f"operation {op!r} is not declared on connector {s.connector!r}",
                )
        for key, expr in s.input.items():
            yield from self._expr(p, (*p.path, "input", key), expr)
        if s.compensation:
            for key, expr in s.compensation.input.items():
                yield from self._expr(p, (*p.path, "compensation", "input", key), expr)

    def _expr(
        self, p: Placed, path: Path, text: str, *, want_bool: bool = False, offset: int = 0
    ) -> Iterator[Problem]:
        error = expressions.check(text, aliases=p.aliases, want_bool=want_bool)
        if error is not None:
            yield self.source.problem(path, error.message, offset=offset + error.column)
            return
        for match in _REF.finditer(text):
            space, name = match.groups()
            known: Any = {"steps": self.by_id, "params": self.param_names, "vars": self.var_names}[
                space
            ]
            if space == "params" and self.param_names is None:
                continue
            if name not in known:
                what = {
                    "steps": "step",
                    "params": "parameter",
                    "vars": "variable set by a `set` step",
                }[space]
                yield self.source.problem(
                    path, f"{space}.{name}: no such {what}", offset=offset + match.start()
                )


def _find_cycle(edges: dict[str, list[str]]) -> list[str] | None:
    """One cycle in a directed graph, as the list of its nodes, or None."""
    white, grey, black = 0, 1, 2
    color = dict.fromkeys(edges, white)
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        color[node] = grey
        stack.append(node)
        for nxt in edges.get(node, []):
            if nxt not in color:
                continue
            if color[nxt] == grey:
                return stack[stack.index(nxt) :]
            if color[nxt] == white and (found := visit(nxt)):
                return found
        stack.pop()
        color[node] = black
        return None

    for node in edges:
        if color[node] == white and (found := visit(node)):
            return found
    return None
