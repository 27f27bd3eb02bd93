"""`clean_for_speech` and `split_sentences`: table tests over Discord-style replies."""

from __future__ import annotations

import pytest

from trio_companion.services.tts.text import clean_for_speech, split_sentences

NAMES = {111: "Ann", 222: "Moderators", 333: "general"}


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        # mentions
        ("hi <@111>!", "hi Ann!"),
        ("hi <@!111>!", "hi Ann!"),
        ("hi <@999>!", "hi someone!"),
        ("ping <@&222>", "ping Moderators"),
        ("ping <@&998>", "ping a role"),
        ("see <#333>", "see general"),
        ("see <#997>", "see a channel"),
        ("run </remind:123456>", "run remind"),
        ("at <t:1700000000:R>", "at a time"),
        # emoji
        ("nice <:pepe_laugh:123456> one", "nice one"),
        ("nice <a:dance:123456>", "nice"),
        ("great job 🎉👍🏽!", "great job!"),
        ("so <:pepe:1> .", "so."),
        ("family 👨‍👩‍👧 flag 🇫🇷 love ❤️ star ⭐", "family flag love star"),
        ("😀", ""),
        # inline markdown
        ("**bold** and *it* and _it2_ and __under__", "bold and it and it2 and under"),
        ("~~gone~~ ||secret|| `code`", "gone secret code"),
        ("***both***", "both"),
        ("snake_case_name stays", "snake_case_name stays"),
        ("2 * 3 * 4 = 24", "2 * 3 * 4 = 24"),
        # links
        ("read [the docs](https://example.com/a?b=1) now", "read the docs now"),
        ("go to https://example.com/x.", "go to a link"),
        ("go to <https://example.com/x>", "go to a link"),
        # block markdown: each line becomes a sentence
        ("# Title\nbody", "Title. body."),
        ("> quoted\nreply", "quoted. reply."),
        (">>> all of this\nis quoted", "all of this. is quoted."),
        ("-# small print", "small print"),
        ("Shopping:\n- eggs\n- milk\n* bread", "Shopping: eggs. milk. bread."),
        ("Steps:\n1. mix\n2) bake", "Steps: mix. bake."),
        ("Code:\n```python\nprint(1)\n```\ndone", "Code: print(1). done."),
        # whitespace
        ("  lots   of\t space  ", "lots of space"),
        ("para one.\n\n\npara two", "para one. para two."),
    ],
)
def test_clean_for_speech(text: str, spoken: str) -> None:
    assert clean_for_speech(text, names=NAMES) == spoken


def test_clean_without_names() -> None:
    assert clean_for_speech("<@111> and <#333>") == "someone and a channel"


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        ("Hello. How are you?", ["Hello.", "How are you?"]),
        ("Wow!! Really?! Yes…  Fine", ["Wow!!", "Really?!", "Yes…", "Fine"]),
        ("It costs 3.5 dollars. Cheap.", ["It costs 3.5 dollars.", "Cheap."]),
        ("Bring snacks, e.g. chips. And drinks, i.e. soda.", ["Bring snacks, e.g. chips.",
                                                              "And drinks, i.e. soda."]),
        ("Mr. Smith met Dr. Jones. They talked.", ["Mr. Smith met Dr. Jones.", "They talked."]),
        ("J. R. R. Tolkien wrote it. Really.", ["J. R. R. Tolkien wrote it.", "Really."]),
        ("the end. and more", ["the end. and more"]),  # lower case next: not a boundary
        ('He said "stop." Then left.', ['He said "stop."', "Then left."]),
        ("(Like this.) Next.", ["(Like this.)", "Next."]),
        ("line one\nline two", ["line one", "line two"]),
        ("v1.2.3 is out. Update!", ["v1.2.3 is out.", "Update!"]),
        ("... ?! Okay.", ["Okay."]),  # nothing speakable before
        ("", []),
        ("   ", []),
    ],
)  # fmt: skip
def test_split_sentences(text: str, sentences: list[str]) -> None:
    assert split_sentences(text) == sentences


def test_overlong_sentence_splits_at_commas() -> None:
    text = "first part here, second part here, third part here, fourth part here."
    assert split_sentences(text, max_chars=40) == [
        "first part here, second part here,",
        "third part here, fourth part here.",
    ]


def test_overlong_sentence_without_commas_splits_at_spaces() -> None:
    pieces = split_sentences("word " * 60, max_chars=50)
    assert all(len(p) <= 50 for p in pieces)
    assert " ".join(pieces).split() == ["word"] * 60


def test_overlong_word_is_cut() -> None:
    assert split_sentences("x" * 25, max_chars=10) == ["x" * 10, "x" * 10, "x" * 5]


def test_every_piece_fits() -> None:
    text = ("A very long sentence, with clauses; and more: " * 20) + "The end. Short one."
    pieces = split_sentences(text, max_chars=100)
    assert all(0 < len(p) <= 100 for p in pieces)
    assert pieces[-1] == "Short one."


def test_bad_max_chars() -> None:
    with pytest.raises(ValueError, match="max_chars"):
        split_sentences("hi", max_chars=0)
