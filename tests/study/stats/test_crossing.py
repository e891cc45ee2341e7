"""The fully crossed block of an incomplete design: complete readers first, otherwise the
largest block of the readers with the most readings, and what was left out in words."""

from __future__ import annotations

import doctest

import pandas as pd
import pytest

import study.stats.crossing as crossing
from study.stats import StatsError
from study.stats.crossing import crossed_block


def readings(read: dict[str, str]) -> pd.DataFrame:
    """(reader, case) pairs from {reader: cases read, one letter per case}."""
    return pd.DataFrame(
        [(reader, case) for reader, cases in read.items() for case in cases],
        columns=["reader", "case"],
    )


def test_docstring_examples_run() -> None:
    assert doctest.testmod(crossing).failed == 0


def test_a_complete_design_keeps_everything() -> None:
    block = crossed_block(readings({"A": "abc", "B": "abc"}))
    assert (block.readers, block.cases) == (("A", "B"), ("a", "b", "c"))
    assert block.describe() == ""


def test_complete_readers_are_kept_rather_than_dropping_cases() -> None:
    # C missed one case of ten: keeping A and B with all ten cases (20 readings) wins over
    # A, B and C on nine (27), because complete readers come first.
    block = crossed_block(readings({"A": "abcdefghij", "B": "abcdefghij", "C": "abcdefghi"}))
    assert block.readers == ("A", "B") and len(block.cases) == 10
    assert block.readers_left_out == ("C",) and block.cases_left_out == ()


def test_without_two_complete_readers_the_largest_block_is_kept() -> None:
    # Nobody read every case. Readers ranked by readings: A (5), B (4), C (3), D (2).
    # k=2: A, B share abcd (8 readings); k=3: with C, abc (9); k=4: with D, ab (8).
    block = crossed_block(readings({"A": "abcde", "B": "abcdf", "C": "abc", "D": "ab"}))
    assert (block.readers, block.cases) == (("A", "B", "C"), ("a", "b", "c"))
    assert block.readers_left_out == ("D",) and block.cases_left_out == ("d", "e", "f")
    assert block.describe() == (
        "left out: reader D (did not read every case); 3 cases (not read by every reader kept)"
    )


def test_equally_large_blocks_prefer_fewer_readers() -> None:
    # Ranked A, B (4 readings each), C, D (3). k=2: A, B share abcd (8 readings); k=3: with
    # C, ab (6); k=4: with D, still ab (8). Of the two blocks of 8, the two readers are kept.
    block = crossed_block(readings({"A": "abcd", "B": "abcd", "C": "abe", "D": "abf"}))
    assert block.readers == ("A", "B") and block.cases == ("a", "b", "c", "d")


def test_readers_and_cases_are_ordered_naturally() -> None:
    pairs = pd.DataFrame({"reader": [10, 2, 10, 2], "case": [11, 11, 3, 3]})
    block = crossed_block(pairs)
    assert block.readers == ("2", "10") and block.cases == ("3", "11")


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        (readings({"A": "abc"}), "at least two readers, not 1"),
        (readings({"A": "ab", "B": "cd"}), "no two readers read a common case"),
        (pd.DataFrame({"reader": ["A"], "item": ["a"]}), "lack column"),
    ],
)
def test_designs_without_a_block_are_refused(pairs: pd.DataFrame, message: str) -> None:
    with pytest.raises(StatsError, match=message):
        crossed_block(pairs)
