from __future__ import annotations

import itertools

import pytest

from trio_companion.services.rag.chunking import CHUNK_OVERLAP, CHUNK_SIZE, chunk_text


def _sentences(count: int, words: int = 12) -> list[str]:
    return [" ".join(f"s{n}w{w}" for w in range(words)) + "." for n in range(count)]


def test_blank_text_has_no_chunks() -> None:
    assert chunk_text("") == []
    assert chunk_text(" \n\n \t\n") == []


def test_short_text_is_one_chunk_with_paragraphs_kept_apart_and_sentences_spaced() -> None:
    assert chunk_text("  # Title\n\nFirst line.\nSame paragraph.\n\n\n  Second.  ") == [
        "# Title\n\nFirst line. Same paragraph.\n\nSecond."
    ]


def test_long_text_is_cut_into_overlapping_chunks_within_the_size() -> None:
    sentences = _sentences(60)  # about 6,000 characters
    text = "\n\n".join(" ".join(sentences[i : i + 5]) for i in range(0, 60, 5))
    chunks = chunk_text(text)
    assert len(chunks) > 5
    assert all(len(chunk) <= CHUNK_SIZE for chunk in chunks)
    # Every sentence is in some chunk, in order, and consecutive chunks share a sentence.
    assert all(any(s in chunk for chunk in chunks) for s in sentences)
    for before, after in itertools.pairwise(chunks):
        shared = [s for s in sentences if s in before and s in after]
        assert shared
        assert sum(len(s) + 1 for s in shared) <= CHUNK_OVERLAP + 1


def test_a_sentence_longer_than_a_chunk_is_cut_at_spaces_then_anywhere() -> None:
    long_sentence = " ".join(["word"] * 400)
    chunks = chunk_text(long_sentence, size=100, overlap=20)
    assert all(len(chunk) <= 100 for chunk in chunks)
    assert " ".join(chunks).split().count("word") >= 400
    assert chunk_text("x" * 250, size=100, overlap=0) == ["x" * 100, "x" * 100, "x" * 50]


def test_no_overlap_means_disjoint_chunks() -> None:
    sentences = _sentences(20)
    chunks = chunk_text(" ".join(sentences), size=300, overlap=0)
    assert " ".join(chunks) == " ".join(sentences)


@pytest.mark.parametrize(("size", "overlap"), [(100, 100), (100, -1), (10, 20)])
def test_overlap_must_be_below_the_size(size: int, overlap: int) -> None:
    with pytest.raises(ValueError, match="overlap"):
        chunk_text("text", size=size, overlap=overlap)
