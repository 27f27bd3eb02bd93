"""`ThinkingFilter`: reasoning blocks never shown, whatever way the stream is split."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trio_companion.services.llm.thinking import ThinkingFilter, strip_thinking


def feed_all(pieces: list[str]) -> str:
    thinking = ThinkingFilter()
    return "".join(thinking.feed(piece) for piece in pieces) + thinking.finish()


@pytest.mark.parametrize(
    ("text", "visible"),
    [
        ("Hello there", "Hello there"),
        ("<think>pondering</think>Hello", "Hello"),
        ("<think>\nlet me see\n</think>\n\nHello", "Hello"),
        ("<thinking>hmm</thinking>Hi", "Hi"),
        ("<THINK>Loud</Think>quiet", "quiet"),
        ("a<think>x</think>b<think>y</think>c", "abc"),
        ("Sure. <think>is it?</think>Yes.", "Sure. Yes."),
        # unterminated: never shown
        ("<think>still reasoning when num_predict ran out", ""),
        ("Answer first<think>then a block that never ends", "Answer first"),
        # an orphan close tag (template put <think> in the prompt) is dropped
        ("reasoning</think>Answer", "reasoningAnswer"),
        # text that merely looks like a tag is text
        ("1 < 2 and 3 > 2", "1 < 2 and 3 > 2"),
        ("<b>bold</b>", "<b>bold</b>"),
        ("ends with <thin", "ends with <thin"),
        ("ends with <", "ends with <"),
        ("<thinker>", "<thinker>"),
        ("<<think>>x</think>>", "<>"),
        ("   padded  ", "padded  "),
        ("", ""),
    ],
)
def test_visible_text(text: str, visible: str) -> None:
    assert strip_thinking(text) == visible


def test_tags_split_across_pieces() -> None:
    pieces = ["Hi <th", "ink>secret", " stuff</thi", "nk> there"]
    thinking = ThinkingFilter()
    out = [thinking.feed(p) for p in pieces]
    assert out == ["Hi ", "", "", " there"]
    assert thinking.finish() == ""


def test_held_back_prefix_is_released_when_it_is_not_a_tag() -> None:
    thinking = ThinkingFilter()
    assert thinking.feed("a <thi") == "a "
    assert thinking.feed("s is fine") == "<this is fine"


def test_unterminated_block_stays_hidden_at_finish() -> None:
    thinking = ThinkingFilter()
    assert thinking.feed("<think>reasoning <thi") == ""
    assert thinking.inside
    assert thinking.finish() == ""


def test_leading_whitespace_after_a_block_is_dropped_across_pieces() -> None:
    assert feed_all(["<think>x</think>", "\n", "\n  ", "Hello", " world"]) == "Hello world"


_TAGS = ["<think>", "</think>", "<thinking>", "</thinking>", "<THINK>", "<", ">", "</"]
_texts = st.lists(
    st.one_of(st.sampled_from(_TAGS), st.text(alphabet="<>/thinkgab \n", max_size=6)),
    max_size=12,
).map("".join)


@given(text=_texts, cuts=st.lists(st.integers(min_value=0, max_value=80), max_size=10))
def test_any_split_gives_the_one_shot_result(text: str, cuts: list[int]) -> None:
    bounds = sorted({0, len(text), *(c for c in cuts if c <= len(text))})
    pieces = [text[a:b] for a, b in itertools.pairwise(bounds)]
    assert feed_all(pieces) == strip_thinking(text)


@given(
    before=st.text(alphabet="ab <>\n", max_size=10),
    hidden=st.text(alphabet="xyz <>/\n", max_size=20),
    after=st.text(alphabet="ab <>\n", max_size=10),
    size=st.integers(min_value=1, max_value=5),
)
def test_nothing_inside_a_block_is_ever_shown(
    before: str, hidden: str, after: str, size: int
) -> None:
    text = f"{before}<think>{hidden}</think>{after}"
    pieces = [text[i : i + size] for i in range(0, len(text), size)]
    visible = feed_all(pieces)
    assert not set(visible) & set("xyz")
