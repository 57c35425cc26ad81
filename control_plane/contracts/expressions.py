"""CEL expressions in templates: compiled and type-checked, never ``eval``-ed Python.

Every expression sees ``input`` (the trigger's payload), ``params`` (the deployment's
parameter values), ``vars`` (values ``set`` steps computed), ``steps`` (each finished step's
output by step id), ``event`` (the event a ``wait`` received), ``run`` (id, tenant, store)
and ``now``; inside a ``parallel`` step also its item alias.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache, lru_cache

from cel_expr_python import cel

BASE_VARIABLES = ("input", "params", "vars", "steps", "event", "run")
_ERROR = re.compile(r"ERROR: <input>:(\d+):(\d+): (.*?)(?: \|| \[INVALID_ARGUMENT\]|$)")
_UNDECLARED = re.compile(r"undeclared reference to '([^']+)'")


@dataclass(frozen=True)
class ExprError:
    #: 0-based column inside the expression text.
    column: int
    message: str


@cache
def _env(aliases: tuple[str, ...]) -> cel.Env:
    variables = {name: cel.Type.DYN for name in (*BASE_VARIABLES, *aliases)}
    variables["now"] = cel.Type.TIMESTAMP
    return cel.NewEnv(variables=variables)


def check(
    expression: str, *, aliases: tuple[str, ...] = (), want_bool: bool = False
) -> ExprError | None:
    """Compile and type-check; the first error (with its column), or None."""
    try:
        compiled = _env(aliases).compile(expression)
    except RuntimeError as exc:
        return _parse_error(str(exc), expression, aliases)
    if want_bool:
        kind = compiled.return_type()
        if kind != cel.Type.BOOL and kind != cel.Type.DYN:
            return ExprError(0, f"must be a boolean condition, but it yields {kind.name().lower()}")
    return None


@lru_cache(maxsize=4096)
def compile_expression(expression: str, *, aliases: tuple[str, ...] = ()) -> cel.Expression:
    """A checked, reusable program, compiled once per process (the engine evaluates the
    same expressions for every run of a template)."""
    return _env(aliases).compile(expression)


def _parse_error(text: str, expression: str, aliases: tuple[str, ...] = ()) -> ExprError:
    flat = " ".join(text.split("\n"))
    match = _ERROR.search(flat)
    if not match:
        return ExprError(0, flat.strip())
    # CEL counts lines and columns (1-based) inside the expression; make it one offset.
    line, column = int(match.group(1)), int(match.group(2)) - 1
    column += sum(len(row) + 1 for row in expression.split("\n")[: line - 1])
    message = match.group(3).split(" expecting {")[0].strip()
    message = message.replace("mismatched input '<EOF>'", "the expression ends too early")
    undeclared = _UNDECLARED.match(message)
    if undeclared:
        # CEL points at the last `.` of a qualified name; point at the unknown name itself.
        name = undeclared.group(1).split(".")[0]
        found = expression.rfind(name, 0, column + len(name))
        column = found if found >= 0 else column
        known = ", ".join((*BASE_VARIABLES, "now", *aliases))
        message = f"unknown name {name!r} (an expression sees {known})"
    return ExprError(column, f"CEL: {message}")
