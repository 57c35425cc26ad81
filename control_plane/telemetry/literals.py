"""PostgreSQL array literals written by msgspec: the ingest statement's cheapest input."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from control_plane.contracts.telemetry import Event
from control_plane.errors import InvalidInput

_json = msgspec.json.Encoder()


def _quoted(value: str | None) -> str:
    if value is None:
        return "NULL"
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def array_literal(values: list[Any], *, plain: bool = False) -> str:
    """A PostgreSQL array literal of strings, UUIDs, datetimes, ints and Nones.

    JSON's form of such a list is the literal's, in brackets instead of braces, as long as
    no string needed an escape other than \\" or \\\\ (both mean the same in an array
    literal). ``plain`` says the strings cannot hold any other (UUIDs, times, numbers, or
    JSON documents, which never contain a raw control character); otherwise a backslash
    sends the list the slow, exact way.
    """
    text = _json.encode(values)
    if not plain and b"\\" in text:
        if any(v is not None and "\x00" in v for v in values):
            raise InvalidInput("an event field holds a NUL character, which cannot be stored")
        return "{" + ",".join(_quoted(v) for v in values) + "}"
    return "{" + text[1:-1].decode() + "}"


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(v) for v in value)
    return False


def columns(events: Sequence[Event]) -> list[str]:
    """The INSERT's array literals, one per column, in its order."""
    documents = [_json.encode(e.data).decode() if e.data else "{}" for e in events]
    data = array_literal(documents, plain=True)
    if "u0000" in data and any(_holds_nul(msgspec.json.decode(d)) for d in documents):
        raise InvalidInput("event data holds a NUL character, which cannot be stored")
    return [
        array_literal([e.id for e in events], plain=True),
        array_literal([e.at for e in events], plain=True),
        array_literal([e.kind for e in events], plain=True),
        array_literal([e.template_id for e in events]),
        array_literal([e.template_version for e in events]),
        array_literal([e.run_id for e in events], plain=True),
        array_literal([e.store for e in events]),
        array_literal([e.status for e in events]),
        array_literal([e.duration_ms for e in events], plain=True),
        data,
    ]
