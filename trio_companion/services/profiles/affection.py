"""Affection: a score in [-100, 100] that each message of a user nudges, and its stages.

`next_affection(score, text)` is a pure function. Every message counts: a small
`PER_MESSAGE` for talking at all, up to `LENGTH_BONUS` more for a longer message (full at
`LONG_MESSAGE` characters), plus `PER_POSITIVE` for each friendly word and minus `PER_NEGATIVE`
for each hostile one (from the short lists below, matched as whole words, case-insensitively).
The step is clamped to ±`MAX_STEP`, so no single message moves the score far, and the result to
[`MIN_SCORE`, `MAX_SCORE`]. Deliberately modest: words are a weak signal, and the predecessor's
second LLM call per reply to rate affection (-5…+5) cost more than it told.

Stages, by score: stranger < `ACQUAINTANCE` ≤ acquaintance < `FRIEND` ≤ friend <
`CLOSE_FRIEND` ≤ close friend < `BEST_FRIEND` ≤ best friend. A negative score is a stranger.
"""

from __future__ import annotations

import re
from typing import Final, Literal, TypeAlias

__all__ = [
    "ACQUAINTANCE",
    "BEST_FRIEND",
    "CLOSE_FRIEND",
    "FRIEND",
    "MAX_SCORE",
    "MIN_SCORE",
    "Stage",
    "next_affection",
    "stage_for",
]

Stage: TypeAlias = Literal["stranger", "acquaintance", "friend", "close friend", "best friend"]

MIN_SCORE: Final = -100.0
MAX_SCORE: Final = 100.0
# Stage thresholds. The predecessor's were 20/40/60/80 on 0-100 with steps of up to ±5 per
# reply; ours start lower because every message counts, not only the answered ones.
ACQUAINTANCE: Final = 10.0
FRIEND: Final = 30.0
CLOSE_FRIEND: Final = 55.0
BEST_FRIEND: Final = 80.0

# Per message: ~100 ordinary messages make an acquaintance a friend-ish; kind words speed it up.
PER_MESSAGE: Final = 0.2
LENGTH_BONUS: Final = 0.3
LONG_MESSAGE: Final = 200
PER_POSITIVE: Final = 0.5
PER_NEGATIVE: Final = 1.0
MAX_STEP: Final = 2.0

POSITIVE_WORDS: Final = frozenset(
    [
        "thanks",
        "thank",
        "thx",
        "ty",
        "love",
        "loved",
        "lovely",
        "great",
        "awesome",
        "amazing",
        "wonderful",
        "nice",
        "cool",
        "glad",
        "happy",
        "appreciate",
        "appreciated",
        "helpful",
        "kind",
        "sweet",
        "haha",
        "lol",
        "yay",
        "<3",
    ]
)
NEGATIVE_WORDS: Final = frozenset(
    [
        "hate",
        "hated",
        "stupid",
        "dumb",
        "idiot",
        "useless",
        "shut",
        "annoying",
        "awful",
        "terrible",
        "worst",
        "boring",
        "pathetic",
        "trash",
        "garbage",
    ]
)

_WORDS: Final = re.compile(r"<3|[a-z']+")

_STAGES: Final[tuple[tuple[float, Stage], ...]] = (
    (BEST_FRIEND, "best friend"),
    (CLOSE_FRIEND, "close friend"),
    (FRIEND, "friend"),
    (ACQUAINTANCE, "acquaintance"),
)


def next_affection(score: float, text: str) -> float:
    """The score after one message `text` from a user whose score was `score`."""
    words = _WORDS.findall(text.lower())
    positive = sum(word in POSITIVE_WORDS for word in words)
    negative = sum(word in NEGATIVE_WORDS for word in words)
    step = (
        PER_MESSAGE
        + LENGTH_BONUS * min(len(text.strip()), LONG_MESSAGE) / LONG_MESSAGE
        + PER_POSITIVE * positive
        - PER_NEGATIVE * negative
    )
    step = max(-MAX_STEP, min(MAX_STEP, step))
    return max(MIN_SCORE, min(MAX_SCORE, score + step))


def stage_for(score: float) -> Stage:
    """The relationship stage of `score`."""
    for threshold, stage in _STAGES:
        if score >= threshold:
            return stage
    return "stranger"
