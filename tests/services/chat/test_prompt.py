"""The prompt: persona first, attributed history oldest-first, trimmed to the context window."""

from __future__ import annotations

import pytest

from trio_companion.services.chat.errors import PromptTooLong
from trio_companion.services.chat.prompt import build_prompt, estimate_tokens
from trio_companion.services.llm.base import ChatMessage
from trio_companion.storage import Turn


def turn(n: int, role: str = "user", name: str = "Ann", size: int = 30) -> Turn:
    return Turn(
        channel_id=1,
        author_id=2,
        author_name=name,
        role=role,  # type: ignore[arg-type]
        content=f"turn {n} " + "x" * size,
        created_at=float(n),
    )


NEW = [ChatMessage(role="user", content="Bob: and now?")]


def test_everything_fits() -> None:
    history = [turn(1, name="Ann"), turn(2, role="assistant"), turn(3, name="Bob")]
    prompt = build_prompt(
        system="You are Aria.", history=history, new_messages=NEW, num_ctx=8192, num_predict=512
    )
    assert [m.role for m in prompt.messages] == ["system", "user", "assistant", "user", "user"]
    assert prompt.messages[0].content == "You are Aria."
    assert prompt.messages[1].content.startswith("Ann: turn 1")
    assert prompt.messages[2].content.startswith("turn 2")  # the bot's own words, unprefixed
    assert prompt.messages[3].content.startswith("Bob: turn 3")
    assert prompt.messages[-1] == NEW[0]
    assert (prompt.history_used, prompt.history_dropped) == (3, 0)


def test_oldest_turns_are_dropped_to_fit() -> None:
    history = [turn(n, size=300) for n in range(100)]
    prompt = build_prompt(
        system="sys", history=history, new_messages=NEW, num_ctx=2048, num_predict=512
    )
    assert prompt.history_dropped > 0
    assert prompt.estimated_tokens <= prompt.budget
    kept = [m.content for m in prompt.messages[1:-1]]
    # The newest turns are the ones kept, still in order.
    assert kept[-1].startswith("Ann: turn 99")
    numbers = [int(c.split()[2]) for c in kept]
    assert numbers == sorted(numbers)
    assert numbers[0] == 100 - prompt.history_used


def test_unlimited_replies_keep_a_quarter_free() -> None:
    prompt = build_prompt(system="s", history=[], new_messages=NEW, num_ctx=4096, num_predict=-1)
    assert prompt.budget == 4096 - 1024 - 64


def test_a_message_too_long_for_the_window_is_refused() -> None:
    huge = [ChatMessage(role="user", content="x" * 10_000)]
    with pytest.raises(PromptTooLong, match="too long for the model's context window"):
        build_prompt(system="s", history=[], new_messages=huge, num_ctx=2048, num_predict=512)


def test_estimate_is_conservative() -> None:
    assert estimate_tokens("a" * 300) == 104
