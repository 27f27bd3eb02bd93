"""What the model is told: the persona, the recent history with who said what, the new message.

History is fed to the model every time (the predecessor's history never reached it), oldest
dropped first when the whole would not fit the context window. Token counts are estimated from
characters, on the safe side (`CHARS_PER_TOKEN`); the reply's room (``num_predict``) is kept
free, so a long conversation is trimmed rather than silently cut by the server.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from trio_companion.services.chat.errors import PromptTooLong
from trio_companion.services.llm.base import ChatMessage
from trio_companion.storage import Turn

__all__ = ["CHARS_PER_TOKEN", "Prompt", "build_prompt", "estimate_tokens", "format_user_turn"]

# English averages about 4 characters per token; 3 keeps code, names and other languages safe.
CHARS_PER_TOKEN: Final = 3.0
# Per-message framing the chat template adds (role markers, separators).
MESSAGE_OVERHEAD: Final = 4
# When the reply length is unlimited (num_predict = -1), keep this share of the window free.
UNLIMITED_REPLY_SHARE: Final = 0.25
# Slack for the estimate being off.
SAFETY_TOKENS: Final = 64


@dataclass(frozen=True, slots=True)
class Prompt:
    messages: tuple[ChatMessage, ...]
    history_used: int
    history_dropped: int
    estimated_tokens: int
    budget: int


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN) + MESSAGE_OVERHEAD


def format_user_turn(author_name: str, content: str) -> str:
    """A user's words as the model sees them: attributed, so it can tell speakers apart."""
    return f"{author_name}: {content}"


def _as_message(turn: Turn) -> ChatMessage:
    if turn.role == "assistant":
        return ChatMessage(role="assistant", content=turn.content)
    if turn.role == "system":
        return ChatMessage(role="system", content=turn.content)
    return ChatMessage(role="user", content=format_user_turn(turn.author_name, turn.content))


def build_prompt(
    *,
    system: str,
    history: Sequence[Turn],
    new_messages: Sequence[ChatMessage],
    num_ctx: int,
    num_predict: int,
) -> Prompt:
    """The messages for one request: ``system``, as much recent ``history`` (oldest first) as
    fits, then ``new_messages``. Raises `PromptTooLong` if the system and new messages alone
    do not fit."""
    reply_room = num_predict if num_predict > 0 else int(num_ctx * UNLIMITED_REPLY_SHARE)
    budget = num_ctx - reply_room - SAFETY_TOKENS
    fixed = estimate_tokens(system) + sum(estimate_tokens(m.content) for m in new_messages)
    if fixed > budget:
        raise PromptTooLong(fixed, budget)
    used = fixed
    kept: list[ChatMessage] = []
    for turn in reversed(history):
        message = _as_message(turn)
        cost = estimate_tokens(message.content)
        if used + cost > budget:
            break
        kept.append(message)
        used += cost
    kept.reverse()
    return Prompt(
        messages=(ChatMessage(role="system", content=system), *kept, *new_messages),
        history_used=len(kept),
        history_dropped=len(history) - len(kept),
        estimated_tokens=used,
        budget=budget,
    )
