"""The affection rules: a table of messages and the step each makes, and the stages."""

from __future__ import annotations

import pytest

from trio_companion.services.profiles.affection import (
    ACQUAINTANCE,
    BEST_FRIEND,
    CLOSE_FRIEND,
    FRIEND,
    MAX_STEP,
    Stage,
    next_affection,
    stage_for,
)


@pytest.mark.parametrize(
    ("score", "text", "expected"),
    [
        (0.0, "hi", 0.2 + 0.3 * 2 / 200),
        (0.0, "x" * 400, 0.5),  # the length bonus is full at 200 characters
        (0.0, "thanks, that was great", 0.2 + 0.3 * 22 / 200 + 1.0),
        (0.0, "Thank you <3 love it, awesome, amazing, wonderful!", MAX_STEP),  # clamped
        (10.0, "you are stupid", 10.0 + 0.2 + 0.3 * 14 / 200 - 1.0),
        (0.0, "stupid useless idiot, shut up, I hate this", -MAX_STEP),  # clamped
        (99.9, "thanks!", 100.0),  # bounded above
        (-99.5, "awful awful awful", -100.0),  # bounded below
        (0.0, "thanksgiving is coming", 0.2 + 0.3 * 22 / 200),  # whole words only
    ],
)
def test_next_affection(score: float, text: str, expected: float) -> None:
    assert next_affection(score, text) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("score", "stage"),
    [
        (-100.0, "stranger"),
        (0.0, "stranger"),
        (ACQUAINTANCE - 0.01, "stranger"),
        (ACQUAINTANCE, "acquaintance"),
        (FRIEND, "friend"),
        (CLOSE_FRIEND - 0.01, "friend"),
        (CLOSE_FRIEND, "close friend"),
        (BEST_FRIEND, "best friend"),
        (100.0, "best friend"),
    ],
)
def test_stage_for(score: float, stage: Stage) -> None:
    assert stage_for(score) == stage


def test_thresholds_increase() -> None:
    assert 0 < ACQUAINTANCE < FRIEND < CLOSE_FRIEND < BEST_FRIEND <= 100
