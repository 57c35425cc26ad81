"""A renderer for the subset of Go template (Helm) syntax the StoreOps charts use.

Supported:

* actions ``{{ pipeline }}`` with trim markers ``{{-`` / ``-}}`` and comments ``{{/* */}}``;
* fields ``.A.b``, ``.``, variables ``$``, ``$x``, ``$x.field``, declarations ``$x := ...``;
* literals: double-quoted and raw strings, integers, ``true``, ``false``, ``nil``;
* pipelines ``a | f x | g`` and parenthesised sub-pipelines;
* ``if`` / ``else if`` / ``else`` / ``end``, ``with`` (with ``else``), ``range`` over
  lists and maps (``range $k, $v := ...``, with ``else``), ``define`` and ``include``;
* functions: ``include``, ``toYaml``, ``toJson``, ``fromYaml``, ``nindent``, ``indent``,
  ``quote``, ``default``, ``required``, ``fail``, ``b64enc``, ``sha256sum``, ``printf``,
  ``trunc``, ``trimSuffix``, ``dict``, ``int64``, ``eq``, ``ne``, ``not``, ``and``, ``or``,
  ``empty``;
* ``.Values``, ``.Release.Name`` / ``.Namespace`` / ``.Service``, ``.Chart.Name`` /
  ``.Version`` / ``.AppVersion``.

Numbers behave as in Helm 3, which reads values through JSON: every number in ``.Values``
is a float64, printed as Go's ``%v`` prints it (``1048576`` becomes ``1.048576e+06``;
``int64`` first keeps it an integer), while ``toYaml``/``toJson`` write integral numbers
as integers, as Go's JSON encoder does.

Anything else raises :class:`TemplateError`, so a chart that leaves the subset fails the
tests instead of being rendered differently from Helm. Printing a missing value (Helm
would print nothing) also raises: every value a template prints must exist.

``lint=True`` renders as ``helm lint`` does: a failed ``required`` yields an empty string
instead of an error, so a chart whose defaults leave per-install values empty still renders.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml


class TemplateError(Exception):
    """The template is outside the supported subset, or failed (``required``, ``fail``)."""


# --- lexing -------------------------------------------------------------------------------

_ACTION = re.compile(r"\{\{(-[ \t\r\n])?(.*?)([ \t\r\n]-)?\}\}", re.S)
_TOKEN = re.compile(
    r"""\s*(?:
      (?P<str>"(?:[^"\\]|\\.)*")
    | (?P<raw>`[^`]*`)
    | (?P<num>-?\d+)
    | (?P<var>\$[A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)
    | (?P<field>(?:\.[A-Za-z0-9_]+)+|\.)
    | (?P<op>:=|=|\||\(|\)|,)
    | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.X,
)


@dataclass
class _Piece:
    text: str | None = None
    action: str | None = None
    where: str = ""


def _lex(source: str, name: str) -> list[_Piece]:
    pieces: list[_Piece] = []
    pos = 0
    trim_next = False
    for m in _ACTION.finditer(source):
        text = source[pos : m.start()]
        if trim_next:
            text = text.lstrip(" \t\r\n")
        if m.group(1):
            text = text.rstrip(" \t\r\n")
        if text:
            pieces.append(_Piece(text=text))
        line = source.count("\n", 0, m.start()) + 1
        pieces.append(_Piece(action=m.group(2).strip(), where=f"{name}:{line}"))
        trim_next = bool(m.group(3))
        pos = m.end()
    text = source[pos:]
    if trim_next:
        text = text.lstrip(" \t\r\n")
    if "{{" in text or "}}" in text:
        raise TemplateError(f"{name}: unbalanced action delimiters")
    if text:
        pieces.append(_Piece(text=text))
    return pieces


@dataclass
class _Tok:
    kind: str
    value: str


def _tokens(expr: str, where: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    while pos < len(expr):
        if expr[pos:].strip() == "":
            break
        m = _TOKEN.match(expr, pos)
        if not m or m.end() == pos:
            raise TemplateError(f"{where}: cannot read {expr[pos:]!r}")
        kind = m.lastgroup or ""
        out.append(_Tok(kind, m.group(kind)))
        pos = m.end()
    return out


# --- parse tree ---------------------------------------------------------------------------


@dataclass
class _Lit:
    value: Any


@dataclass
class _Field:
    path: list[str]


@dataclass
class _Var:
    name: str
    path: list[str]


@dataclass
class _Func:
    name: str


@dataclass
class _Pipeline:
    decl: list[str]
    reassign: bool
    commands: list[list[Any]]
    where: str


@dataclass
class _Text:
    text: str


@dataclass
class _Out:
    pipe: _Pipeline


@dataclass
class _If:
    cond: _Pipeline
    body: list[Any]
    orelse: list[Any]


@dataclass
class _With:
    pipe: _Pipeline
    body: list[Any]
    orelse: list[Any]


@dataclass
class _Range:
    pipe: _Pipeline
    body: list[Any]
    orelse: list[Any]


_KEYWORDS = {"if", "else", "end", "with", "range", "define", "template", "block", "break"}


def _parse_pipeline(expr: str, where: str) -> _Pipeline:
    toks = _tokens(expr, where)
    decl: list[str] = []
    reassign = False
    # `$a := ...`, `$a, $b := ...`, `$a = ...`
    i = 0
    names: list[str] = []
    while i < len(toks) and toks[i].kind == "var" and "." not in toks[i].value:
        names.append(toks[i].value)
        if i + 1 < len(toks) and toks[i + 1].value == ",":
            i += 2
            continue
        if i + 1 < len(toks) and toks[i + 1].value in (":=", "="):
            decl, reassign = names, toks[i + 1].value == "="
            toks = toks[i + 2 :]
        break
    commands, rest = _parse_commands(toks, where)
    if rest:
        raise TemplateError(f"{where}: unexpected {rest[0].value!r}")
    if not commands:
        raise TemplateError(f"{where}: empty pipeline")
    return _Pipeline(decl, reassign, commands, where)


def _parse_commands(toks: list[_Tok], where: str) -> tuple[list[list[Any]], list[_Tok]]:
    commands: list[list[Any]] = []
    current: list[Any] = []
    while toks:
        tok = toks[0]
        if tok.value == ")":
            break
        toks = toks[1:]
        if tok.value == "|":
            if not current:
                raise TemplateError(f"{where}: empty command before '|'")
            commands.append(current)
            current = []
        elif tok.value == "(":
            inner, toks = _parse_commands(toks, where)
            if not toks or toks[0].value != ")":
                raise TemplateError(f"{where}: unclosed '('")
            toks = toks[1:]
            current.append(_Pipeline([], False, inner, where))
        elif tok.kind == "str":
            current.append(_Lit(json.loads(tok.value)))
        elif tok.kind == "raw":
            current.append(_Lit(tok.value[1:-1]))
        elif tok.kind == "num":
            current.append(_Lit(int(tok.value)))
        elif tok.kind == "var":
            head, *path = tok.value.split(".")
            current.append(_Var(head, path))
        elif tok.kind == "field":
            current.append(_Field([] if tok.value == "." else tok.value[1:].split(".")))
        elif tok.kind == "ident":
            literal = {"true": True, "false": False, "nil": None}
            if tok.value in literal:
                current.append(_Lit(literal[tok.value]))
            elif tok.value in _FUNCTIONS or tok.value == "include":
                current.append(_Func(tok.value))
            else:
                raise TemplateError(f"{where}: function {tok.value!r} is outside the subset")
        else:
            raise TemplateError(f"{where}: unexpected {tok.value!r}")
    if current:
        commands.append(current)
    return commands, toks


class _Parser:
    def __init__(self, pieces: list[_Piece], defines: dict[str, list[Any]], name: str) -> None:
        self.pieces = pieces
        self.pos = 0
        self.defines = defines
        self.name = name

    def parse(self) -> list[Any]:
        nodes, stop, _ = self._list(set())
        if stop:
            raise TemplateError(f"{self.name}: unexpected {{{{ {stop} }}}}")
        return nodes

    def _list(self, stops: set[str]) -> tuple[list[Any], str, str]:
        nodes: list[Any] = []
        while self.pos < len(self.pieces):
            piece = self.pieces[self.pos]
            self.pos += 1
            if piece.text is not None:
                nodes.append(_Text(piece.text))
                continue
            action = piece.action or ""
            if action.startswith("/*"):
                if not action.endswith("*/"):
                    raise TemplateError(f"{piece.where}: unterminated comment")
                continue
            word, _, rest = action.partition(" ")
            rest = rest.strip()
            if word in ("else", "end"):
                if word not in stops:
                    raise TemplateError(f"{piece.where}: unexpected {{{{ {word} }}}}")
                return nodes, word, rest
            if word == "if":
                nodes.append(self._if(rest, piece.where))
            elif word in ("with", "range"):
                pipe = _parse_pipeline(rest, piece.where)
                body, stop, tail = self._list({"else", "end"})
                orelse: list[Any] = []
                if stop == "else":
                    if tail:
                        raise TemplateError(f"{piece.where}: only 'else if' is supported")
                    orelse, _, _ = self._list({"end"})
                nodes.append((_With if word == "with" else _Range)(pipe, body, orelse))
            elif word == "define":
                if stops:
                    raise TemplateError(f"{piece.where}: define must be at the top level")
                name = json.loads(rest)
                body, _, _ = self._list({"end"})
                self.defines[name] = body
            elif word in _KEYWORDS:
                raise TemplateError(f"{piece.where}: {word!r} is outside the subset")
            else:
                nodes.append(_Out(_parse_pipeline(action, piece.where)))
        if stops:
            raise TemplateError(f"{self.name}: missing {{{{ end }}}}")
        return nodes, "", ""

    def _if(self, cond: str, where: str) -> _If:
        pipe = _parse_pipeline(cond, where)
        body, stop, tail = self._list({"else", "end"})
        orelse: list[Any] = []
        if stop == "else":
            if tail.startswith("if "):
                orelse = [self._if(tail[3:].strip(), where)]
            elif tail:
                raise TemplateError(f"{where}: only 'else if' is supported")
            else:
                orelse, _, _ = self._list({"end"})
        return _If(pipe, body, orelse)


# --- values -------------------------------------------------------------------------------


def truthy(value: Any) -> bool:
    """Go's notion of true: not false, 0, nil, or an empty string, list or map."""
    if value is None or value is False:
        return False
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value != 0
    if isinstance(value, (str, list, dict, tuple)):
        return len(value) > 0
    return True


def go_float(value: float) -> str:
    """Go's ``%v`` of a float64: the shortest digits, in exponent form from 1e+06 on."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    _, digits, exponent = Decimal(repr(abs(value))).normalize().as_tuple()
    assert isinstance(exponent, int)
    ds = "".join(map(str, digits))
    point = len(ds) + exponent  # digits before the decimal point
    lead = point - 1  # the exponent of the leading digit
    if lead < -4 or lead >= 6:
        mantissa = ds[0] + ("." + ds[1:] if len(ds) > 1 else "")
        return f"{sign}{mantissa}e{'+' if lead >= 0 else '-'}{abs(lead):02d}"
    if exponent >= 0:
        return sign + ds + "0" * exponent
    if point > 0:
        return f"{sign}{ds[:point]}.{ds[point:]}"
    return f"{sign}0.{'0' * -point}{ds}"


def go_string(value: Any) -> str:
    """What ``{{ value }}`` prints for a scalar."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, (str, int)):
        return str(value)
    raise TemplateError(f"cannot print {type(value).__name__} {value!r}: use toYaml")


def helm_numbers(value: Any) -> Any:
    """Values as Helm 3 holds them: every number a float64."""
    if isinstance(value, dict):
        return {k: helm_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [helm_numbers(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _json_numbers(value: Any) -> Any:
    """Numbers as Go's JSON encoder writes them: integral floats without a fraction."""
    if isinstance(value, dict):
        return {k: _json_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_numbers(v) for v in value]
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return int(value)
    return value


def to_yaml(value: Any) -> str:
    text = yaml.safe_dump(
        _json_numbers(value), default_flow_style=False, sort_keys=True, width=4096
    )
    return text.removesuffix("\n...\n").removesuffix("\n")


def to_json(value: Any) -> str:
    text = json.dumps(_json_numbers(value), sort_keys=True, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _int64(value: Any) -> int:
    """Sprig's ``int64``: numbers truncate, numeric strings parse, anything else is 0."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, str):
        try:
            return int(value, 0)
        except ValueError:
            return 0
    return 0


def _kind(value: Any) -> str:
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    raise TemplateError(f"invalid type for comparison: {type(value).__name__}")


def _eq(a: Any, *others: Any) -> bool:
    """Go's ``eq``: basic values of the same kind (an int and a float64 do not compare)."""
    for b in others:
        if _kind(a) != _kind(b) and "nil" not in (_kind(a), _kind(b)):
            raise TemplateError(f"incompatible types for comparison: {a!r} and {b!r}")
        if a == b:
            return True
    return False


def _indent(width: int, text: str) -> str:
    pad = " " * width
    return pad + text.replace("\n", "\n" + pad)


def _quote(*values: Any) -> str:
    return " ".join(json.dumps(go_string(v)) for v in values if v is not None)


def _default(fallback: Any, *given: Any) -> Any:
    return given[0] if given and truthy(given[0]) else fallback


def _required(message: str, value: Any) -> Any:
    if value is None or value == "":
        raise TemplateError(message)
    return value


def _fail(message: str) -> Any:
    raise TemplateError(message)


def _printf(fmt: str, *args: Any) -> str:
    values = iter(args)

    def one(m: re.Match[str]) -> str:
        verb = m.group(1)
        if verb == "%":
            return "%"
        try:
            value = next(values)
        except StopIteration:
            raise TemplateError(f"printf {fmt!r}: too few arguments") from None
        if verb == "q":
            return json.dumps(go_string(value))
        if verb == "d" and not isinstance(value, int):
            raise TemplateError(f"printf %d of {value!r}")
        return go_string(value)

    out = re.sub(r"%([svdq%])", one, fmt)
    if next(values, _SENTINEL) is not _SENTINEL:
        raise TemplateError(f"printf {fmt!r}: too many arguments")
    return out


_SENTINEL = object()


def _dict(*pairs: Any) -> dict[str, Any]:
    if len(pairs) % 2:
        raise TemplateError("dict needs key/value pairs")
    return {str(pairs[i]): pairs[i + 1] for i in range(0, len(pairs), 2)}


def _and(*values: Any) -> Any:
    for v in values:
        if not truthy(v):
            return v
    return values[-1]


def _or(*values: Any) -> Any:
    for v in values:
        if truthy(v):
            return v
    return values[-1]


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "toYaml": to_yaml,
    "toJson": to_json,
    "fromYaml": lambda s: yaml.safe_load(s) or {},
    "nindent": lambda n, s: "\n" + _indent(n, s),
    "indent": _indent,
    "quote": _quote,
    "default": _default,
    "required": _required,
    "fail": _fail,
    "b64enc": lambda s: base64.b64encode(go_string(s).encode()).decode(),
    "sha256sum": lambda s: hashlib.sha256(s.encode()).hexdigest(),
    "printf": _printf,
    "trunc": lambda n, s: s[:n] if n >= 0 else s[n:],
    "trimSuffix": lambda suffix, s: s.removesuffix(suffix),
    "dict": _dict,
    "int64": _int64,
    "eq": _eq,
    "ne": lambda a, b: not _eq(a, b),
    "not": lambda v: not truthy(v),
    "and": _and,
    "or": _or,
    "empty": lambda v: not truthy(v),
}


# --- execution ----------------------------------------------------------------------------


@dataclass
class _Scope:
    vars: dict[str, Any]
    parent: _Scope | None = None

    def get(self, name: str, where: str) -> Any:
        scope: _Scope | None = self
        while scope is not None:
            if name in scope.vars:
                return scope.vars[name]
            scope = scope.parent
        raise TemplateError(f"{where}: undefined variable {name}")

    def assign(self, name: str, value: Any, where: str) -> None:
        scope: _Scope | None = self
        while scope is not None:
            if name in scope.vars:
                scope.vars[name] = value
                return
            scope = scope.parent
        raise TemplateError(f"{where}: assignment to undeclared {name}")


@dataclass
class Renderer:
    """Templates of one chart: ``define``s are shared across files, as in Helm."""

    defines: dict[str, list[Any]] = field(default_factory=dict)
    files: dict[str, list[Any]] = field(default_factory=dict)
    lint: bool = False
    #: ``required`` messages swallowed in lint mode.
    warnings: list[str] = field(default_factory=list)

    def add(self, name: str, source: str) -> None:
        self.files[name] = _Parser(_lex(source, name), self.defines, name).parse()

    def render(self, name: str, context: Mapping[str, Any]) -> str:
        return self._run(self.files[name], context, _Scope({"$": context}))

    def include(self, name: str, dot: Any) -> str:
        if name not in self.defines:
            raise TemplateError(f"include of undefined template {name!r}")
        return self._run(self.defines[name], dot, _Scope({"$": dot}))

    def _run(self, nodes: list[Any], dot: Any, scope: _Scope) -> str:
        return "".join(self._node(n, dot, scope) for n in nodes)

    def _node(self, node: Any, dot: Any, scope: _Scope) -> str:
        if isinstance(node, _Text):
            return node.text
        if isinstance(node, _Out):
            value = self._pipeline(node.pipe, dot, scope)
            if node.pipe.decl:
                return ""
            if value is None:
                raise TemplateError(f"{node.pipe.where}: printed a missing value")
            return go_string(value)
        if isinstance(node, _If):
            inner = _Scope({}, scope)
            if truthy(self._pipeline(node.cond, dot, inner)):
                return self._run(node.body, dot, inner)
            return self._run(node.orelse, dot, _Scope({}, scope))
        if isinstance(node, _With):
            inner = _Scope({}, scope)
            value = self._pipeline(node.pipe, dot, inner)
            if truthy(value):
                return self._run(node.body, value, inner)
            return self._run(node.orelse, dot, _Scope({}, scope))
        if isinstance(node, _Range):
            return self._range(node, dot, scope)
        raise TemplateError(f"unknown node {node!r}")

    def _range(self, node: _Range, dot: Any, scope: _Scope) -> str:
        pipe = _Pipeline([], False, node.pipe.commands, node.pipe.where)
        value = self._pipeline(pipe, dot, scope)
        items: list[tuple[Any, Any]]
        if value is None:
            items = []
        elif isinstance(value, dict):
            items = [(k, value[k]) for k in sorted(value)]
        elif isinstance(value, list):
            items = list(enumerate(value))
        else:
            raise TemplateError(f"{node.pipe.where}: range over {type(value).__name__}")
        if not items:
            return self._run(node.orelse, dot, _Scope({}, scope))
        out = []
        names = node.pipe.decl
        if len(names) > 2:
            raise TemplateError(f"{node.pipe.where}: too many range variables")
        for key, item in items:
            bound = {names[-1]: item} if len(names) == 1 else {}
            if len(names) == 2:
                bound = {names[0]: key, names[1]: item}
            out.append(self._run(node.body, item, _Scope(bound, scope)))
        return "".join(out)

    def _pipeline(self, pipe: _Pipeline, dot: Any, scope: _Scope) -> Any:
        value: Any = _SENTINEL
        for command in pipe.commands:
            value = self._command(command, dot, scope, value, pipe.where)
        if pipe.decl:
            if len(pipe.decl) != 1:
                raise TemplateError(f"{pipe.where}: several variables outside range")
            if pipe.reassign:
                scope.assign(pipe.decl[0], value, pipe.where)
            else:
                scope.vars[pipe.decl[0]] = value
        return value

    def _command(self, command: list[Any], dot: Any, scope: _Scope, piped: Any, where: str) -> Any:
        head, *rest = command
        if isinstance(head, _Func):
            args = [self._operand(a, dot, scope, where) for a in rest]
            if piped is not _SENTINEL:
                args.append(piped)
            if head.name == "include":
                if len(args) != 2:
                    raise TemplateError(f"{where}: include needs a name and a context")
                return self.include(args[0], args[1])
            lenient = head.name == "required" and self.lint and len(args) == 2
            if lenient and (args[1] is None or args[1] == ""):
                self.warnings.append(str(args[0]))
                return ""
            try:
                return _FUNCTIONS[head.name](*args)
            except TemplateError as exc:
                raise TemplateError(f"{where}: {exc}") from None
            except TypeError as exc:
                raise TemplateError(f"{where}: {head.name}: {exc}") from None
        if rest or piped is not _SENTINEL:
            raise TemplateError(f"{where}: can't give arguments to a non-function")
        return self._operand(head, dot, scope, where)

    def _operand(self, operand: Any, dot: Any, scope: _Scope, where: str) -> Any:
        if isinstance(operand, _Lit):
            return operand.value
        if isinstance(operand, _Field):
            return _walk(dot, operand.path, where)
        if isinstance(operand, _Var):
            return _walk(scope.get(operand.name, where), operand.path, where)
        if isinstance(operand, _Pipeline):
            return self._pipeline(operand, dot, scope)
        if isinstance(operand, _Func):
            raise TemplateError(f"{where}: {operand.name} used as a value: parenthesise it")
        raise TemplateError(f"{where}: unknown operand {operand!r}")


def _walk(value: Any, path: list[str], where: str) -> Any:
    for i, key in enumerate(path):
        if value is None:
            raise TemplateError(f"{where}: nil pointer evaluating .{'.'.join(path[: i + 1])}")
        if not isinstance(value, Mapping):
            raise TemplateError(f"{where}: can't evaluate field {key} in {type(value).__name__}")
        value = value.get(key)
    return value


# --- charts -------------------------------------------------------------------------------


def merge_values(base: Mapping[str, Any], *overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Helm's coalescing: maps merge key by key, anything else replaces, null deletes."""
    result = copy.deepcopy(dict(base))
    for override in overrides:
        _merge_into(result, override)
    return result


def _merge_into(target: dict[str, Any], override: Mapping[str, Any]) -> None:
    for key, value in override.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _merge_into(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


@dataclass
class Chart:
    path: Path
    meta: dict[str, Any]
    defaults: dict[str, Any]
    renderer: Renderer

    @classmethod
    def load(cls, path: Path) -> Chart:
        meta = yaml.safe_load((path / "Chart.yaml").read_text())
        defaults = yaml.safe_load((path / "values.yaml").read_text()) or {}
        renderer = Renderer()
        for file in sorted((path / "templates").iterdir()):
            renderer.add(file.name, file.read_text())
        return cls(path, meta, defaults, renderer)

    @property
    def manifests(self) -> list[str]:
        return [n for n in self.renderer.files if n.endswith((".yaml", ".yml"))]

    def context(self, values: Mapping[str, Any], *, release: str, namespace: str) -> dict[str, Any]:
        return self.context_for(values, self.meta, release=release, namespace=namespace)

    @staticmethod
    def context_for(
        values: Mapping[str, Any],
        meta: Mapping[str, Any] | None = None,
        *,
        release: str = "release",
        namespace: str = "default",
    ) -> dict[str, Any]:
        """The root object of a template: ``.Values``, ``.Release``, ``.Chart``."""
        meta = meta or {"name": "chart", "version": "0.0.0"}
        return {
            "Values": helm_numbers(dict(values)),
            "Release": {
                "Name": release,
                "Namespace": namespace,
                "Service": "Helm",
                "IsInstall": True,
                "IsUpgrade": False,
                "Revision": 1,
            },
            "Chart": {
                "Name": meta["name"],
                "Version": meta["version"],
                "AppVersion": meta.get("appVersion", ""),
            },
        }

    def render(
        self,
        *overrides: Mapping[str, Any],
        release: str = "release",
        namespace: str = "default",
        lint: bool = False,
    ) -> dict[str, str]:
        """Every template (not ``_*.tpl`` helpers) rendered with defaults + overrides."""
        values = merge_values(self.defaults, *overrides)
        ctx = self.context(values, release=release, namespace=namespace)
        self.renderer.lint = lint
        self.renderer.warnings.clear()
        return {
            name: self.renderer.render(name, ctx)
            for name in self.renderer.files
            if not name.startswith("_")
        }

    def objects(self, *overrides: Mapping[str, Any], **kw: Any) -> list[dict[str, Any]]:
        """The Kubernetes objects the chart's manifests produce, as Helm would apply them."""
        out: list[dict[str, Any]] = []
        for name, text in self.render(*overrides, **kw).items():
            if name in self.manifests:
                out.extend(_documents(name, text))
        return out


def _documents(name: str, text: str) -> Iterator[dict[str, Any]]:
    try:
        docs = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        raise TemplateError(f"{name} renders malformed YAML: {exc}\n---\n{text}") from None
    for doc in docs:
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise TemplateError(f"{name} renders a {type(doc).__name__}, not an object")
        yield doc
