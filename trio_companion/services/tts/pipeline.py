"""Speak a whole reply sentence by sentence, so playback starts after the first one.

Theory of operation
-------------------
`synthesize_stream` is the producer half of a two-task pipeline::

    reply text ─► clean_for_speech ─► split_sentences ─► engine.synthesize ─► send_channel ─► player

It synthesises one sentence at a time and sends each `Audio` as soon as it is ready. With the
usual unbuffered channel (``trio.open_memory_channel[Audio](0)``) the send completes when the
player takes the audio, and the next sentence is synthesised while that one plays: the spoken
reply starts after one sentence's synthesis rather than the whole reply's, and at most one
sentence is synthesised ahead of playback (backpressure, STYLE 13).

The send channel is closed when the function returns, fails or is cancelled, which ends the
player's ``async for``. A `TTSError` for any sentence stops the stream and propagates: the
player has already received (and may have played) the sentences before it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import trio

from trio_companion.services.audio import Audio
from trio_companion.services.tts.base import TTSEngine
from trio_companion.services.tts.text import clean_for_speech, split_sentences

__all__ = ["MAX_SENTENCE_CHARS", "synthesize_stream"]

# Kokoro reads up to ~510 phoneme tokens per pass and Piper is fastest on short inputs; 300
# characters keeps one chunk well inside both while rarely splitting a real sentence.
MAX_SENTENCE_CHARS: Final = 300
_NO_NAMES: Final[Mapping[int, str]] = {}


async def synthesize_stream(
    engine: TTSEngine,
    text: str,
    send_channel: trio.MemorySendChannel[Audio],
    *,
    voice: str | None = None,
    names: Mapping[int, str] = _NO_NAMES,
    max_chars: int = MAX_SENTENCE_CHARS,
) -> int:
    """Clean ``text``, split it into sentences, send each one's audio on ``send_channel``.

    ``names`` resolves mentions (see `clean_for_speech`). Returns the number of sentences sent
    (0 when nothing was speakable). Always closes ``send_channel``. Raises what the engine
    raises (`TTSUnavailable`, `TTSFailed`); ``trio.BrokenResourceError`` if the player closed
    its receive side.
    """
    async with send_channel:
        sentences = split_sentences(clean_for_speech(text, names=names), max_chars=max_chars)
        for sentence in sentences:
            audio = await engine.synthesize(sentence, voice=voice)
            await send_channel.send(audio)
        return len(sentences)
