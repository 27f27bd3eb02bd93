"""`services.speech.TextFeed`: a streamed reply handed out in whole sentences."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from trio_companion.services.speech import TextFeed


async def _drain(feed: TextFeed) -> list[str]:
    return [chunk async for chunk in feed]


@pytest.mark.parametrize(
    ("pieces", "chunks"),
    [
        (["Hello there", ". How are", " you? Fine"], ["Hello there. ", "How are you? ", "Fine"]),
        # Abbreviations before a lowercase word and decimals do not end a sentence.
        (["Use e.g. this one at 3.5 volts. Done"], ["Use e.g. this one at 3.5 volts. ", "Done"]),
        (["He said “Go.” Then", " left."], ["He said “Go.” ", "Then left."]),
        (["First paragraph\n\nsecond one"], ["First paragraph\n\n", "second one"]),
        # One chunk holds everything up to the last sentence end seen (TTS splits it again).
        (["Wait… What?! Yes"], ["Wait… What?! ", "Yes"]),
        (["no end at all"], ["no end at all"]),
        (["Trailing space. ", "   "], ["Trailing space.    "]),
        ([], []),
    ],
)
async def test_sentences(pieces: list[str], chunks: list[str]) -> None:
    feed = TextFeed()
    for piece in pieces:
        feed.append(piece)
    feed.close()
    with trio.fail_after(5):
        assert await _drain(feed) == chunks


async def test_a_sentence_is_handed_out_before_the_reply_ends() -> None:
    feed = TextFeed()
    got: list[str] = []

    async def consume() -> None:
        async for chunk in feed:
            got.append(chunk)

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(consume)
            feed.append("The first sentence")
            await trio.testing.wait_all_tasks_blocked()
            assert got == []
            feed.append(" is done. The second")
            await trio.testing.wait_all_tasks_blocked()
            assert got == ["The first sentence is done. "]
            feed.close()
    assert got == ["The first sentence is done. ", "The second"]


def test_append_after_close_is_a_bug() -> None:
    feed = TextFeed.of("Done.")
    feed.close()  # idempotent
    with pytest.raises(RuntimeError):
        feed.append("more")
