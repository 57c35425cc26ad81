"""Pieces every part of the simulator shares: errors, replies, the clock, ids and durations."""

from __future__ import annotations

import re
import secrets
import string
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

JSON = dict[str, Any]

PERMISSION_DENIED = "permission denied"


class VaultError(Exception):
    """An error reply: ``{"errors": [...]}`` with an HTTP status, as Vault sends them.

    ``body`` replaces that shape where Vault answers an error status with a full response
    (reading a deleted KV version is a 404 that still carries the version's metadata)."""

    def __init__(self, status: int, *errors: str, body: JSON | None = None) -> None:
        super().__init__(status, errors)
        self.status = status
        self.errors = list(errors)
        self.body = body if body is not None else {"errors": self.errors}


def denied() -> VaultError:
    return VaultError(403, PERMISSION_DENIED)


def not_found() -> VaultError:
    """Vault's 404 for a missing path or value carries an empty error list."""
    return VaultError(404)


def bad_request(message: str) -> VaultError:
    return VaultError(400, message)


@dataclass
class Reply:
    """A successful reply; ``body`` None means 204 No Content."""

    status: int = 204
    body: JSON | None = None


def envelope(
    data: JSON | None = None,
    *,
    auth: JSON | None = None,
    wrap_info: JSON | None = None,
    mount_type: str = "",
    lease_duration: int = 0,
) -> JSON:
    """Vault's response envelope around ``data`` / ``auth`` / ``wrap_info``."""
    return {
        "request_id": str(uuid.uuid4()),
        "lease_id": "",
        "renewable": False,
        "lease_duration": lease_duration,
        "data": data,
        "wrap_info": wrap_info,
        "warnings": None,
        "auth": auth,
        "mount_type": mount_type,
    }


def ok(data: JSON | None = None, **kwargs: Any) -> Reply:
    return Reply(200, envelope(data, **kwargs))


class Clock:
    """Wall-clock time plus an offset that tests move forward with :meth:`advance`."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += seconds


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_ALNUM = string.ascii_letters + string.digits


def new_token() -> str:
    """A service-token-shaped id (``hvs.`` and base62, like Vault 1.10+)."""
    return "hvs." + "".join(secrets.choice(_ALNUM) for _ in range(24))


def new_accessor() -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(24))


def new_uuid() -> str:
    return str(uuid.uuid4())


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d)")
_UNIT_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
}


def parse_duration(value: Any, field: str) -> int:
    """Seconds from an int, a numeric string or a Go duration ("90s", "1h30m", "5m")."""
    if isinstance(value, bool):
        raise bad_request(f"error converting input {value!r} for field {field!r}")
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if text == "":
            return 0
        if re.fullmatch(r"\d+", text):
            return int(text)
        pos, total = 0, 0.0
        for match in _DURATION_PART.finditer(text):
            if match.start() != pos:
                break
            total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
            pos = match.end()
        if pos == len(text):
            return int(total)
    raise bad_request(f"error converting input {value!r} for field {field!r}")


def parse_int(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise bad_request(f"error converting input {value!r} for field {field!r}")
    try:
        return int(value)
    except ValueError:
        raise bad_request(f"error converting input {value!r} for field {field!r}") from None


def parse_bool(value: Any, field: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    raise bad_request(f"error converting input {value!r} for field {field!r}")


def parse_str_list(value: Any, field: str) -> list[str]:
    """A list of strings, or a comma-separated string (hvac sends policies that way)."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return [item.strip() for item in value if item.strip()]
    raise bad_request(f"error converting input {value!r} for field {field!r}")
