"""Splitting long replies into Discord messages."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from trio_companion.gateway.text import MESSAGE_LIMIT, split_message


def test_short_text_is_one_chunk() -> None:
    assert split_message("hello") == ["hello"]
    assert split_message("  \n ") == []


def test_prefers_paragraphs_then_lines_then_sentences() -> None:
    para = "a" * 30
    assert split_message(f"{para}\n\n{para}", limit=40) == [para, para]
    assert split_message(f"{para}\n{para}", limit=40) == [para, para]
    sentence = "Word " * 5 + "end."
    text = f"{sentence} {sentence}"
    assert split_message(text, limit=len(sentence) + 3) == [sentence, sentence]


def test_hard_cut_when_no_break_exists() -> None:
    assert split_message("x" * 50, limit=20) == ["x" * 20, "x" * 20, "x" * 10]


def test_code_block_kept_whole_when_it_fits() -> None:
    code = "```py\nprint(1)\nprint(2)\n```"
    text = "intro text here.\n" + code + "\nafter"
    chunks = split_message(text, limit=len(code) + 5)
    assert code in chunks[1]
    assert all(c.count("```") % 2 == 0 for c in chunks)


def test_long_code_block_is_closed_and_reopened() -> None:
    body = "\n".join(f"line {i:03d}" for i in range(60))
    chunks = split_message(f"```python\n{body}\n```", limit=200)
    assert len(chunks) > 1
    for chunk in chunks:
        assert len(chunk) <= 200
        assert chunk.startswith("```python\n")
        assert chunk.endswith("```")
    lines = [ln for c in chunks for ln in c.splitlines() if not ln.startswith("```")]
    assert lines == body.splitlines()


@given(st.text(alphabet=st.sampled_from("ab .\n`"), max_size=3000))
def test_chunks_fit_and_keep_every_word(text: str) -> None:
    chunks = split_message(text, limit=100)
    assert all(0 < len(c) <= 100 for c in chunks)
    if "```" not in text:
        assert "".join(text.split()) == "".join("".join(chunks).split())


def test_discord_limit() -> None:
    chunks = split_message("word " * 1000)
    assert all(len(c) <= MESSAGE_LIMIT for c in chunks)
    assert len(chunks) == 3
