"""Which chat messages deserve a web search on their own: questions about the here and now.

A cheap, conservative, pure test: the message must read as a question and name something that
changes with time (today's news, a score, the weather, a price, "latest", a year). Searching
costs a few seconds and puts strangers' text in the prompt, so a miss is better than a false
alarm; anyone can still ask with `/search`.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["looks_time_sensitive"]

_QUESTION: Final = re.compile(
    r"\?|^\s*(who|what|when|where|which|how|is|are|did|does|do|will|was|were|can)\b",
    re.IGNORECASE,
)
_NOW: Final = re.compile(
    r"\b(today|tonight|yesterday|this (morning|week|weekend|month|year|season)|right now|"
    r"latest|newest|current(ly)?|recent(ly)?|breaking|news|headlines?|score|scores|standings|"
    r"who won|results?|weather|forecast|temperature outside|price of|stock price|exchange rate|"
    r"release date|come out|came out|election|20[2-3]\d)\b",
    re.IGNORECASE,
)


def looks_time_sensitive(text: str) -> bool:
    """Whether ``text`` is a question whose answer depends on recent events."""
    return bool(_QUESTION.search(text)) and bool(_NOW.search(text))
