"""Splitting an ordered fleet into waves: pure, so it is tested without a database.

A wave spec is a list whose items are a count (``1``), a share of the whole fleet
(``"10%"``, rounded up, at least one tenant) or ``"rest"`` (only last). Tenants left
after the last item form one more wave; a wave the fleet runs out before is dropped.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")

DEFAULT_WAVES: tuple[int | str, ...] = (1, "10%", "rest")
MAX_WAVES = 50
_PERCENT = re.compile(r"^(\d{1,3}(?:\.\d+)?)%$")


class BadWaves(ValueError):
    """The wave spec cannot be used; the message says which item and what is accepted."""


def _size(item: int | str, index: int, total: int) -> int | None:
    """Tenants in the wave at ``index``; None for "rest"."""
    where = f"waves[{index}]"
    if isinstance(item, bool):
        raise BadWaves(f"{where}: {item!r} is not a wave size; use a count, 'N%' or 'rest'")
    if isinstance(item, int):
        if item < 1:
            raise BadWaves(f"{where}: a wave holds at least 1 tenant, got {item}")
        return item
    text = item.strip().lower()
    if text == "rest":
        return None
    if text.isdigit():
        return _size(int(text), index, total)
    match = _PERCENT.match(text)
    if match is None:
        raise BadWaves(
            f"{where}: {item!r} is not a wave size; use a count (3), a share of the fleet "
            "('10%') or 'rest'"
        )
    share = float(match.group(1))
    if not 0 < share <= 100:
        raise BadWaves(f"{where}: a share is more than 0% and at most 100%, got {item!r}")
    return max(1, math.ceil(total * share / 100))


def check_spec(spec: Sequence[int | str]) -> None:
    """Refuse a spec that is wrong whatever the fleet's size."""
    if not spec:
        raise BadWaves("waves is empty; give at least one wave, e.g. [1, '10%', 'rest']")
    if len(spec) > MAX_WAVES:
        raise BadWaves(f"waves has {len(spec)} items; at most {MAX_WAVES}")
    for index, item in enumerate(spec):
        if _size(item, index, 100) is None and index != len(spec) - 1:
            raise BadWaves(f"waves[{index}]: 'rest' can only be the last wave")


def wave_sizes(spec: Sequence[int | str], total: int) -> list[int]:
    """How many tenants each wave moves; the sizes add up to ``total``."""
    check_spec(spec)
    sizes: list[int] = []
    left = total
    for index, item in enumerate(spec):
        if left == 0:
            break
        wanted = _size(item, index, total)
        take = left if wanted is None else min(wanted, left)
        sizes.append(take)
        left -= take
    if left:
        sizes.append(left)
    return sizes


def split(items: Sequence[T], spec: Sequence[int | str]) -> list[list[T]]:
    """``items`` (already in rollout order) cut into waves."""
    waves: list[list[T]] = []
    start = 0
    for size in wave_sizes(spec, len(items)):
        waves.append(list(items[start : start + size]))
        start += size
    return waves
