"""ACL policies: the HCL subset StoreOps writes, and Vault's rule-matching priorities.

A policy is a list of ``path "<pattern>" { capabilities = [...] }`` blocks. A pattern may
end in ``*`` (prefix match) and may use ``+`` for exactly one path segment. The rules of
every policy a token holds are merged (same pattern: capabilities are unioned, ``deny``
wins); a request path is then governed by the single best-matching rule: an exact pattern
first, else the highest-priority wildcard pattern in Vault's documented order.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .common import bad_request

CAPABILITIES = frozenset(
    {"create", "read", "update", "patch", "delete", "list", "sudo", "deny", "subscribe"}
)
# The pre-0.9 ``policy = "..."`` shorthand inside a path block.
_LEGACY = {
    "deny": {"deny"},
    "read": {"read", "list"},
    "write": {"create", "read", "update", "delete", "list"},
    "sudo": {"create", "read", "update", "delete", "list", "sudo"},
}

DEFAULT_POLICY = """\
# Every token holds this policy unless it was issued without it.
path "auth/token/lookup-self" {
  capabilities = ["read"]
}
path "auth/token/renew-self" {
  capabilities = ["update"]
}
path "auth/token/revoke-self" {
  capabilities = ["update"]
}
path "sys/capabilities-self" {
  capabilities = ["update"]
}
path "sys/wrapping/wrap" {
  capabilities = ["update"]
}
path "sys/wrapping/lookup" {
  capabilities = ["update"]
}
path "sys/wrapping/unwrap" {
  capabilities = ["update"]
}
path "cubbyhole/*" {
  capabilities = ["create", "read", "update", "delete", "list"]
}
"""


@dataclass(frozen=True)
class Rule:
    pattern: str
    capabilities: frozenset[str]

    @property
    def is_glob(self) -> bool:
        return self.pattern.endswith("*")

    @property
    def is_exact(self) -> bool:
        return not self.is_glob and "+" not in self.pattern.split("/")

    def matches(self, path: str) -> bool:
        return _compile(self.pattern).match(path) is not None

    def priority(self) -> tuple[int, bool, int, int, str]:
        """Higher sorts first, after Vault's order: the later the first wildcard, not
        ending in ``*``, fewer ``+`` segments, longer, then lexically greater."""
        segments = self.pattern.split("/")
        offsets = [sum(len(s) + 1 for s in segments[:i]) for i in range(len(segments))]
        plus_at = [offsets[i] for i, seg in enumerate(segments) if seg == "+"]
        star_at = [len(self.pattern) - 1] if self.is_glob else []
        first_wildcard = min(plus_at + star_at, default=len(self.pattern))
        return (
            first_wildcard,
            not self.is_glob,
            -segments.count("+"),
            len(self.pattern),
            self.pattern,
        )


_PATTERNS: dict[str, re.Pattern[str]] = {}


def _compile(pattern: str) -> re.Pattern[str]:
    compiled = _PATTERNS.get(pattern)
    if compiled is None:
        glob = pattern.endswith("*")
        body = pattern[:-1] if glob else pattern
        parts = ["[^/]*" if seg == "+" else re.escape(seg) for seg in body.split("/")]
        compiled = re.compile("/".join(parts) + (".*" if glob else "") + r"\Z")
        _PATTERNS[pattern] = compiled
    return compiled


class Acl:
    """The merged rules of a token's policies."""

    def __init__(self, rule_sets: Iterable[list[Rule]]) -> None:
        merged: dict[str, set[str]] = {}
        for rules in rule_sets:
            for rule in rules:
                merged.setdefault(rule.pattern, set()).update(rule.capabilities)
        self.rules = [
            Rule(pattern, frozenset({"deny"} if "deny" in caps else caps))
            for pattern, caps in merged.items()
        ]

    def capabilities(self, path: str) -> frozenset[str]:
        for rule in self.rules:
            if rule.is_exact and rule.pattern == path:
                return _effective(rule)
        candidates = [rule for rule in self.rules if not rule.is_exact and rule.matches(path)]
        if not candidates:
            return frozenset()
        return _effective(max(candidates, key=Rule.priority))

    def allows(self, path: str, capability: str, *, sudo: bool = False) -> bool:
        caps = self.capabilities(path)
        return capability in caps and (not sudo or "sudo" in caps)


def _effective(rule: Rule) -> frozenset[str]:
    return frozenset() if "deny" in rule.capabilities else rule.capabilities


# --- the HCL subset -------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<comment>\#[^\n]*|//[^\n]*|/\*.*?\*/)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_.-]*)
  | (?P<punct>[{}\[\]=,:])
    """,
    re.VERBOSE | re.DOTALL,
)


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise bad_request(f"failed to parse policy: unexpected {text[pos : pos + 10]!r}")
        kind = match.lastgroup or ""
        if kind not in ("space", "comment"):
            value = match.group()
            if kind == "string":
                value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
            out.append((kind, value))
        pos = match.end()
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.pos = 0

    def fail(self, what: str) -> Exception:
        return bad_request(f"failed to parse policy: {what}")

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, kind: str, value: str | None = None) -> str:
        token = self.peek()
        if token is None or token[0] != kind or (value is not None and token[1] != value):
            raise self.fail(f"expected {value or kind}, got {token[1] if token else 'EOF'!r}")
        self.pos += 1
        return token[1]

    def value(self) -> Any:
        token = self.peek()
        if token is None:
            raise self.fail("unexpected end of policy")
        kind, text = token
        if kind in ("string", "number"):
            self.pos += 1
            return text
        if kind == "ident" and text in ("true", "false"):
            self.pos += 1
            return text == "true"
        if text == "[":
            self.pos += 1
            items: list[Any] = []
            while self.peek() != ("punct", "]"):
                items.append(self.value())
                if self.peek() == ("punct", ","):
                    self.pos += 1
            self.take("punct", "]")
            return items
        if text == "{":
            return self.block()
        raise self.fail(f"unexpected {text!r}")

    def block(self) -> dict[str, Any]:
        self.take("punct", "{")
        body: dict[str, Any] = {}
        while self.peek() != ("punct", "}"):
            token = self.peek()
            if token is None or token[0] not in ("ident", "string"):
                raise self.fail(f"expected a key, got {token[1] if token else 'EOF'!r}")
            self.pos += 1
            if self.peek() in (("punct", "="), ("punct", ":")):
                self.pos += 1
            body[token[1]] = self.value()
            if self.peek() == ("punct", ","):
                self.pos += 1
        self.take("punct", "}")
        return body


def parse_policy(text: str) -> list[Rule]:
    """Rules from policy HCL; malformed text is a 400 ``failed to parse policy``."""
    parser = _Parser(text)
    rules: list[Rule] = []
    while parser.peek() is not None:
        key = parser.take("ident")
        if key == "name":
            parser.take("punct", "=")
            parser.value()
            continue
        if key != "path":
            raise parser.fail(f"invalid key {key!r}")
        pattern = parser.take("string")
        body = parser.block()
        caps = set(_capabilities(parser, body.get("capabilities", [])))
        legacy = body.get("policy")
        if legacy is not None:
            if legacy not in _LEGACY:
                raise parser.fail(f"path {pattern!r}: invalid policy {legacy!r}")
            caps |= _LEGACY[legacy]
        rules.append(Rule(pattern.lstrip("/"), frozenset(caps)))
    return rules


def _capabilities(parser: _Parser, value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
        raise parser.fail("capabilities must be a list of strings")
    unknown = [c for c in value if c not in CAPABILITIES]
    if unknown:
        raise parser.fail(f"invalid capabilities {unknown}")
    return list(value)
