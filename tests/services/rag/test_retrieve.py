from __future__ import annotations

import pytest

from trio_companion.services.rag.retrieve import (
    RRF_K,
    Passage,
    VectorTable,
    decode_vector,
    encode_vector,
    format_context,
    reciprocal_rank_fusion,
)


def test_fusion_sums_reciprocal_ranks() -> None:
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["c", "a", "d"]])
    scores = dict(fused)
    assert [key for key, _ in fused] == ["a", "c", "b", "d"]
    assert scores["a"] == pytest.approx(1 / (RRF_K + 1) + 1 / (RRF_K + 2))
    assert scores["d"] == pytest.approx(1 / (RRF_K + 3))


def test_fusion_puts_agreement_first_and_keeps_first_seen_order_on_ties() -> None:
    # "x" is second in both lists: it beats both lists' winners, which tie; "w" came first.
    fused = reciprocal_rank_fusion([["w", "x"], ["y", "x"]])
    assert [key for key, _ in fused] == ["x", "w", "y"]


def test_fusion_counts_a_repeated_key_once_per_ranking() -> None:
    assert dict(reciprocal_rank_fusion([["a", "a", "b"]]))["a"] == pytest.approx(1 / (RRF_K + 1))
    assert reciprocal_rank_fusion([]) == []


def test_vectors_round_trip_as_float32_bytes() -> None:
    blob = encode_vector([1.0, -0.5, 0.25])
    assert len(blob) == 12
    assert decode_vector(blob).tolist() == [1.0, -0.5, 0.25]


def test_cosine_ranks_by_direction_not_length() -> None:
    vectors = [decode_vector(encode_vector(v)) for v in ([1, 0], [10, 1], [0, 1], [0, 0], [1])]
    table = VectorTable([1, 2, 3, 4, 5], vectors)
    assert len(table) == 3  # the zero vector and the odd-sized one are dropped
    ranked = table.top([2.0, 0.0], 2)
    assert [key for key, _ in ranked] == [1, 2]
    assert ranked[0][1] == pytest.approx(1.0)
    assert table.top([1.0, 0.0, 0.0], 2) == []  # another model's size
    assert table.top([0.0, 0.0], 2) == []
    assert VectorTable([], []).top([1.0], 3) == []


def _passage(source: str, text: str) -> Passage:
    return Passage(source=source, text=text, score=1.0)


def test_context_has_sources_and_keeps_to_the_budget() -> None:
    passages = [_passage("a.md", "alpha " * 20), _passage("b/c.txt", "beta " * 40)]
    whole = format_context(passages, 10_000)
    assert (
        whole
        == f"[source: a.md]\n{('alpha ' * 20).strip()}\n\n[source: b/c.txt]\n"
        + ("beta " * 40).strip()
    )
    cut = format_context(passages, 250)
    assert len(cut) <= 250
    assert cut.startswith("[source: a.md]\n")
    assert "[source: b/c.txt]\nbeta" in cut
    assert cut.endswith("…")
    # Too little room for a useful piece of the second passage: it is left out.
    assert format_context(passages, 160) == f"[source: a.md]\n{('alpha ' * 20).strip()}"
    assert format_context(passages, 10) == ""
    assert format_context([], 100) == ""
