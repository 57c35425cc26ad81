"""Wave planning: sizes for the default spec and custom ones, and refused specs."""

from __future__ import annotations

import pytest

from control_plane.rollouts.plan import DEFAULT_WAVES, BadWaves, split, wave_sizes


@pytest.mark.parametrize(
    ("total", "sizes"),
    [(1, [1]), (2, [1, 1]), (5, [1, 1, 3]), (10, [1, 1, 8]), (20, [1, 2, 17]), (101, [1, 11, 89])],
)
def test_default_is_canary_then_ten_percent_then_the_rest(total: int, sizes: list[int]) -> None:
    assert wave_sizes(DEFAULT_WAVES, total) == sizes


def test_custom_specs() -> None:
    assert wave_sizes([2, "50%"], 10) == [2, 5, 3]  # what is left forms one more wave
    assert wave_sizes([1, "25%", "25%", "rest"], 8) == [1, 2, 2, 3]
    assert wave_sizes(["100%"], 4) == [4]
    assert wave_sizes([3, 3, 3], 4) == [3, 1]  # the fleet runs out: no empty waves
    assert wave_sizes(["33.3%", "rest"], 3) == [1, 2]
    assert wave_sizes(["2", "rest"], 5) == [2, 3]
    assert split(list("abcde"), [1, "10%", "rest"]) == [["a"], ["b"], ["c", "d", "e"]]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ([], "waves is empty"),
        (["rest", 1], "waves[0]: 'rest' can only be the last wave"),
        ([0], "waves[0]: a wave holds at least 1 tenant, got 0"),
        ([1, -2], "waves[1]: a wave holds at least 1 tenant"),
        (["0%"], "more than 0% and at most 100%"),
        (["101%"], "at most 100%"),
        (["half"], "'half' is not a wave size"),
        ([True], "True is not a wave size"),
        ([1] * 51, "at most 50"),
    ],
)
def test_bad_specs_say_what_is_accepted(spec: list[int | str], message: str) -> None:
    with pytest.raises(BadWaves) as caught:
        wave_sizes(spec, 10)
    assert message in str(caught.value)
