"""Text to Opus frames: TTS sentence by sentence, optional RVC, resampling and encoding in threads.

Theory of operation
-------------------

`Speaker.utterance` builds a `voice.player.Utterance` whose ``produce`` runs this pipeline for
the text of a `TextFeed`::

    TextFeed ──chunks──► synthesize_stream ──Audio per sentence──► [RVC] ──► to_discord_pcm
    (a reply as it          (TTS engine)          (channel of 0)  (thread)     (thread)
     streams, or a                                                              ──► Opus ──► frames
     whole /speak)                                                                 (thread)

A feed is either complete (`TextFeed.of`, for /speak) or filled while a chat reply streams, so a
spoken reply starts after the reply's first sentence is written, not its last.

Each sentence's audio is converted (when a voice model is asked for), resampled to 48 kHz
stereo and Opus-encoded in worker threads under one `trio.CapacityLimiter` (`AUDIO_THREADS`),
then its 20 ms frames go to the player's frame channel, whose small buffer is the only thing
between this pipeline and the pacing grid. The next sentence is synthesised while the previous
one plays, so playback starts after the first sentence, not the whole reply.

Failures: a TTS error ends the utterance and reaches ``on_error`` (the user hears about it); an
RVC failure never does: `rvc.SpeechConverter` hands back the unconverted audio and a notice
the first time, which goes to ``on_notice``.
"""

from __future__ import annotations

import logging
import re
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Final, final

import httpx
import trio

from trio_companion.config import Config
from trio_companion.errors import CompanionError
from trio_companion.services.audio import Audio, to_discord_pcm
from trio_companion.services.rvc.base import RVCParams, VoiceConverter
from trio_companion.services.rvc.convert import SpeechConverter
from trio_companion.services.rvc.gradio import RVCWebUIConverter
from trio_companion.services.rvc.http import RVCHttpConverter
from trio_companion.services.tts.base import TTSEngine
from trio_companion.services.tts.espeak import DEFAULT_SPEED as ESPEAK_DEFAULT_SPEED
from trio_companion.services.tts.espeak import DEFAULT_VOICE as ESPEAK_DEFAULT_VOICE
from trio_companion.services.tts.espeak import EspeakEngine
from trio_companion.services.tts.openai_speech import DEFAULT_VOICE as OPENAI_DEFAULT_VOICE
from trio_companion.services.tts.openai_speech import OpenAISpeechEngine
from trio_companion.services.tts.pipeline import synthesize_stream
from trio_companion.services.tts.piper import PiperEngine
from trio_companion.voice.opus import OpusEncoder
from trio_companion.voice.player import Utterance

__all__ = ["AUDIO_THREADS", "Speaker", "SpeechStatistics", "TextFeed", "make_speaker"]

log = logging.getLogger(__name__)

# Our choice: resampling and encoding a sentence take milliseconds; two threads let two guilds
# prepare audio at once without starving the SQLite and TTS threads on a small machine.
AUDIO_THREADS: Final = 2

Notify = Callable[[str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class SpeechStatistics:
    utterances: int
    sentences: int
    frames: int
    failures: int


@final
class Speaker:
    """Makes utterances from text with one TTS engine and, optionally, a voice converter."""

    def __init__(
        self,
        engine: TTSEngine,
        *,
        converter: SpeechConverter | None = None,
        bitrate: int,
        default_voice: str | None = None,
    ) -> None:
        self.engine = engine
        self.converter = converter
        self._bitrate = bitrate
        self.default_voice = default_voice or None
        self._limiter = trio.CapacityLimiter(AUDIO_THREADS)
        self._utterances = self._sentences = self._frames = self._failures = 0

    def statistics(self) -> SpeechStatistics:
        return SpeechStatistics(self._utterances, self._sentences, self._frames, self._failures)

    async def warm_up(self) -> None:
        """Load a local voice model now (Piper: about 0.5 s in a thread), so the first /speak
        does not pay for it. A failure is only logged: /speak reports it to the user."""
        if isinstance(self.engine, PiperEngine):
            try:
                await self.engine.load()
            except CompanionError as exc:
                log.warning("speech: could not load the voice model: %s", exc)

    def utterance(
        self,
        feed: TextFeed,
        *,
        label: str,
        voice: str | None = None,
        model: str | None = None,
        names: Mapping[int, str] | None = None,
        on_error: Callable[[CompanionError], Awaitable[None]] | None = None,
        on_notice: Notify | None = None,
    ) -> Utterance:
        """An utterance saying what ``feed`` hands out, sentence by sentence as it arrives: a
        streamed chat reply starts being spoken after its first sentence, not its last."""

        async def produce(frames: trio.MemorySendChannel[bytes]) -> None:
            await self._produce(
                feed, frames, voice=voice, model=model, names=names or {}, on_notice=on_notice
            )

        return Utterance(label=label, produce=produce, on_error=self._count(on_error))

    def _count(
        self, on_error: Callable[[CompanionError], Awaitable[None]] | None
    ) -> Callable[[CompanionError], Awaitable[None]]:
        async def counted(error: CompanionError) -> None:
            self._failures += 1
            if on_error is not None:
                await on_error(error)

        return counted

    async def _produce(
        self,
        chunks: TextFeed,
        frames: trio.MemorySendChannel[bytes],
        *,
        voice: str | None,
        model: str | None,
        names: Mapping[int, str],
        on_notice: Notify | None,
    ) -> None:
        self._utterances += 1
        encoder = OpusEncoder(self._bitrate)
        send, receive = trio.open_memory_channel[Audio](0)
        failures: list[CompanionError] = []
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(
                    _synthesize,
                    self.engine,
                    chunks,
                    send,
                    voice or self.default_voice,
                    names,
                    failures,
                )
                async with receive:
                    async for audio in receive:
                        self._sentences += 1
                        await self._encode(audio, frames, encoder, model=model, on_notice=on_notice)
            if failures:
                raise failures[0]
            for frame in await trio.to_thread.run_sync(encoder.flush, limiter=self._limiter):
                await frames.send(frame)
                self._frames += 1
        except* trio.BrokenResourceError:
            pass  # the playback ended first (/stop, a lost link): nothing more to say

    async def _encode(
        self,
        audio: Audio,
        frames: trio.MemorySendChannel[bytes],
        encoder: OpusEncoder,
        *,
        model: str | None,
        on_notice: Notify | None,
    ) -> None:
        if model and self.converter is not None:
            conversion = await self.converter.convert(audio, model=model)
            audio = conversion.audio
            if conversion.notice and on_notice is not None:
                await on_notice(conversion.notice)
        pcm = await trio.to_thread.run_sync(to_discord_pcm, audio, limiter=self._limiter)
        for frame in await trio.to_thread.run_sync(encoder.encode, pcm, limiter=self._limiter):
            await frames.send(frame)
            self._frames += 1


async def _synthesize(
    engine: TTSEngine,
    chunks: TextFeed,
    send: trio.MemorySendChannel[Audio],
    voice: str | None,
    names: Mapping[int, str],
    failures: list[CompanionError],
) -> None:
    """`synthesize_stream` for each chunk of text as it arrives, keeping a TTS failure for the
    consumer to raise after the sentences before it were played (``send`` is closed either
    way)."""
    async with send:
        try:
            async for chunk in chunks:
                await synthesize_stream(engine, chunk, send.clone(), voice=voice, names=names)
        except CompanionError as exc:
            failures.append(exc)


@final
class TextFeed:
    """Text arriving piece by piece (a streamed chat reply), handed out in whole sentences.

    `append` and `close` are synchronous (the chat service calls them as tokens arrive);
    ``async for chunk in feed`` yields text up to the last sentence end seen so far, then the
    rest once the feed is closed. A sentence ends at ``.``, ``!``, ``?`` or ``…`` (closing quotes
    and brackets included) followed by space and a capital letter or digit, or at a blank line:
    "e.g. this" and "3.5" do not end one."""

    # Closing quotes: " ' \u201d \u2019; opening: " ' \u201c \u2018 (escaped: ruff RUF001).
    _BOUNDARY: Final = re.compile(
        r"[.!?\u2026]+[\"'\u201d\u2019)\]]*\s+(?=[A-Z0-9\"'\u201c\u2018(\[])|\n\s*\n"
    )

    def __init__(self) -> None:
        self._buffer = ""
        self._ready: deque[str] = deque()
        self._closed = False
        self._changed = trio.Event()

    def append(self, piece: str) -> None:
        if self._closed:
            raise RuntimeError("TextFeed.append after close")
        self._buffer += piece
        last = None
        for last in self._BOUNDARY.finditer(self._buffer):  # noqa: B007 - the last one counts
            pass
        if last is not None:
            self._ready.append(self._buffer[: last.end()])
            self._buffer = self._buffer[last.end() :]
            self._wake()

    def close(self) -> None:
        """No more text: hand out the rest. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._buffer.strip():
            self._ready.append(self._buffer)
        self._buffer = ""
        self._wake()

    @classmethod
    def of(cls, text: str) -> TextFeed:
        """A closed feed holding all of ``text``."""
        feed = cls()
        feed.append(text)
        feed.close()
        return feed

    def __aiter__(self) -> TextFeed:
        return self

    async def __anext__(self) -> str:
        while not self._ready:
            if self._closed:
                raise StopAsyncIteration
            await self._changed.wait()
        return self._ready.popleft()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = trio.Event()


def make_speaker(config: Config, http: httpx.AsyncClient) -> Speaker:
    """The configured TTS engine and, when ``rvc.enabled``, voice converter."""
    tts = config.tts
    engine: TTSEngine
    if tts.engine == "openai":
        engine = OpenAISpeechEngine(
            http,
            url=tts.url,
            voice=tts.voice or OPENAI_DEFAULT_VOICE,
            speed=tts.speed,
            api_key=tts.api_key,
        )
    elif tts.engine == "piper":
        engine = PiperEngine(model=tts.piper_model or None)
    else:
        engine = EspeakEngine(
            voice=tts.voice or ESPEAK_DEFAULT_VOICE, speed=round(ESPEAK_DEFAULT_SPEED * tts.speed)
        )
    converter: SpeechConverter | None = None
    rvc = config.rvc
    if rvc.enabled:
        params = RVCParams(
            f0_up_key=rvc.pitch_shift, index_rate=rvc.index_rate, protect=rvc.protect
        )
        backend: VoiceConverter = (
            RVCWebUIConverter(http, rvc.url, params=params)
            if rvc.mode == "webui"
            else RVCHttpConverter(http, rvc.url, params=params)
        )
        converter = SpeechConverter(backend)
    return Speaker(
        engine, converter=converter, bitrate=config.voice.bitrate, default_voice=tts.voice or None
    )
