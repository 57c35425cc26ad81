"""Time-ordered identifiers (RFC 9562 UUIDv7) minted by both sides of the link."""

from __future__ import annotations

import os
import threading
import time
import uuid
from datetime import UTC, datetime

_lock = threading.Lock()
_last_ms = 0
_seq = 0


def uuid7() -> uuid.UUID:
    """A UUIDv7 whose 48-bit millisecond prefix is monotonic within the process.

    The 12-bit ``rand_a`` field holds a counter so ids minted in the same millisecond
    still sort in creation order (RFC 9562, method 1).
    """
    global _last_ms, _seq
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last_ms:
            _seq += 1
            if _seq > 0xFFF:
                _last_ms += 1
                _seq = 0
            ms = _last_ms
        else:
            _last_ms = ms
            _seq = 0
        seq = _seq
    rand_b = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (ms << 80) | (0x7 << 76) | (seq << 64) | (0b10 << 62) | rand_b
    return uuid.UUID(int=value)


def uuid7_time(value: uuid.UUID) -> datetime:
    """The creation instant encoded in a UUIDv7."""
    return datetime.fromtimestamp((value.int >> 80) / 1000, tz=UTC)
