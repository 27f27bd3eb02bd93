"""`synthesize_stream`: sentences are sent one by one as each is synthesised.

A scripted engine holds each sentence until the test releases it, so the ordering (the first
sentence reaches the player while the second is still being synthesised) is proven with events,
not timing.
"""

from __future__ import annotations

from typing import Final, final

import numpy as np
import pytest
import trio
import trio.testing

from trio_companion.services.audio import Audio
from trio_companion.services.tts.errors import TTSFailed
from trio_companion.services.tts.pipeline import synthesize_stream

REPLY: Final = "Hi <@1>! This is **great**. See https://example.com for more."


@final
class ScriptedEngine:
    """Synthesises ``len(text)`` frames per sentence once the test releases that sentence."""

    def __init__(self, *, fail_on: str | None = None) -> None:
        self.started: list[str] = []
        self.finished: list[str] = []
        self.voices_used: list[str | None] = []
        self.fail_on = fail_on
        self._release: dict[int, trio.Event] = {}

    @property
    def name(self) -> str:
        return "scripted"

    def release(self, index: int) -> None:
        self._release.setdefault(index, trio.Event()).set()

    def release_all(self, count: int) -> None:
        for index in range(count):
            self.release(index)

    async def synthesize(self, text: str, *, voice: str | None = None) -> Audio:
        index = len(self.started)
        self.started.append(text)
        self.voices_used.append(voice)
        await self._release.setdefault(index, trio.Event()).wait()
        if text == self.fail_on:
            raise TTSFailed("scripted", "no")
        self.finished.append(text)
        return Audio(np.zeros((len(text), 1), dtype=np.float32), 24_000)

    async def voices(self) -> list[str]:
        return ["only"]


async def test_first_sentence_plays_before_the_rest_are_synthesised() -> None:
    engine = ScriptedEngine()
    send, receive = trio.open_memory_channel[Audio](0)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery, receive:
            nursery.start_soon(
                lambda: synthesize_stream(engine, REPLY, send, voice="v", names={1: "Ann"})
            )
            engine.release(0)
            first = await receive.receive()
            # The player has the first sentence; the second is not synthesised yet.
            assert first.frames == len("Hi Ann!")
            assert engine.finished == ["Hi Ann!"]
            engine.release_all(3)
            rest = [audio.frames async for audio in receive]
    assert engine.started == ["Hi Ann!", "This is great.", "See a link for more."]
    assert rest == [len("This is great."), len("See a link for more.")]
    assert engine.voices_used == ["v", "v", "v"]


async def test_backpressure_one_sentence_ahead() -> None:
    engine = ScriptedEngine()
    engine.release_all(3)
    send, receive = trio.open_memory_channel[Audio](0)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery, receive:
            nursery.start_soon(synthesize_stream, engine, REPLY, send)
            await trio.testing.wait_all_tasks_blocked()
            # Nobody is listening: the first sentence is done and waits in send().
            assert engine.started == ["Hi someone!"]
            await receive.receive()
            await trio.testing.wait_all_tasks_blocked()
            assert len(engine.started) == 2
            async for _ in receive:
                pass


async def test_result_counts_sentences_and_closes() -> None:
    engine = ScriptedEngine()
    engine.release_all(3)
    send, receive = trio.open_memory_channel[Audio](3)
    with trio.fail_after(5):
        assert await synthesize_stream(engine, REPLY, send) == 3
        assert len([a async for a in receive]) == 3


async def test_nothing_speakable_closes_at_once() -> None:
    send, receive = trio.open_memory_channel[Audio](0)
    with trio.fail_after(5):
        assert await synthesize_stream(ScriptedEngine(), "🎉 <:pepe:1> ...", send) == 0
        assert [a async for a in receive] == []


async def test_error_stops_the_stream_after_what_was_sent() -> None:
    engine = ScriptedEngine(fail_on="This is great.")
    engine.release_all(3)
    send, receive = trio.open_memory_channel[Audio](0)
    got: list[int] = []
    with trio.fail_after(5), pytest.RaisesGroup(TTSFailed):
        async with trio.open_nursery() as nursery, receive:
            nursery.start_soon(synthesize_stream, engine, REPLY, send)
            async for audio in receive:  # ends: the channel was closed by the failure
                got.append(audio.frames)
    assert got == [len("Hi someone!")]
    assert engine.started == ["Hi someone!", "This is great."]


async def test_cancelled_stream_closes_the_channel() -> None:
    engine = ScriptedEngine()  # never releases: synthesis hangs until cancelled
    send, receive = trio.open_memory_channel[Audio](0)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(synthesize_stream, engine, REPLY, send)
            await trio.testing.wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()
        with pytest.raises(trio.EndOfChannel):
            await receive.receive()
