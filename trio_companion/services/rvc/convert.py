"""Long speech through a `VoiceConverter`, and speaking on when the converter is down.

Theory of operation
-------------------
`convert_long` bounds what one request carries: RVC servers hold the whole clip in (GPU) memory
and take seconds per request, and the predecessor bot cut anything over 20 s. It splits the audio
into chunks of ``chunk_seconds`` overlapping by ``overlap_seconds`` (`audio.split_chunks`),
converts them one after the other (RVC servers convert one clip at a time anyway, and the order
keeps memory flat), brings every converted chunk to the first one's rate and channels, and
splices them with a linear crossfade over the overlap (`audio.crossfade_concat`), so the joins do
not click and the length stays that of the input. Splitting, resampling and splicing run in a
worker thread.

`SpeechConverter` is what the voice pipeline uses: it converts with `convert_long` and never
fails because of the converter. On any `RVCError` it returns the *unconverted* audio, so the
companion still speaks, in its plain TTS voice. The caller should tell the user, but once, not
on every sentence: the `Conversion` result carries a ``notice`` only for the first failure after
conversions worked (or since start); further failures return ``notice=None`` until a conversion
succeeds again, which ends the outage, so the next failure reports anew. `ConversionStatistics`
counts conversions and failures and says since when (trio time) the converter has been failing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Final, final

import trio

from trio_companion.services.audio import (
    Audio,
    crossfade_concat,
    in_audio_thread,
    resample,
    split_chunks,
    to_channels,
)
from trio_companion.services.rvc.base import VoiceConverter
from trio_companion.services.rvc.errors import RVCError

__all__ = [
    "DEFAULT_CHUNK_SECONDS",
    "DEFAULT_OVERLAP_SECONDS",
    "Conversion",
    "ConversionStatistics",
    "SpeechConverter",
    "convert_long",
]

logger = logging.getLogger(__name__)

DEFAULT_CHUNK_SECONDS: Final = 20.0  # the predecessor's RVC chunk length (rvc_http.py)
# Long enough to hide a click at the seam (a few pitch periods of speech, > 10 ms), short enough
# that little audio is converted twice.
DEFAULT_OVERLAP_SECONDS: Final = 0.1


def _splice(parts: list[Audio], overlap_seconds: float) -> Audio:
    first = parts[0]
    same = [resample(to_channels(part, first.channels), first.rate) for part in parts]
    return crossfade_concat(same, overlap_seconds)


async def convert_long(
    converter: VoiceConverter,
    audio: Audio,
    *,
    model: str,
    chunk_seconds: float = DEFAULT_CHUNK_SECONDS,
    overlap_seconds: float = DEFAULT_OVERLAP_SECONDS,
) -> Audio:
    """``audio`` converted with ``model``, in overlapping chunks crossfaded back together.

    Audio no longer than one chunk is one request. Raises what ``converter.convert`` raises (the
    first failing chunk ends the conversion) and `ValueError` unless ``0 <= overlap_seconds <
    chunk_seconds``. Cancellation abandons the chunk in flight.
    """
    chunks = await in_audio_thread(split_chunks, audio, chunk_seconds, overlap_seconds)
    if len(chunks) == 1:
        return await converter.convert(chunks[0], model=model)
    converted = [await converter.convert(chunk, model=model) for chunk in chunks]
    return await in_audio_thread(_splice, converted, overlap_seconds)


@dataclass(frozen=True, slots=True)
class Conversion:
    """The audio to play and whether it was converted."""

    audio: Audio
    converted: bool
    #: Set on the first failure of an outage: a sentence to tell the user, once.
    notice: str | None = None


@dataclass(frozen=True, slots=True)
class ConversionStatistics:
    """A `SpeechConverter`'s counters since it was made (for ``/status``)."""

    backend: str
    conversions: int  #: conversions that succeeded
    failures: int  #: conversions that failed (the audio was played unconverted)
    down_since: float | None  #: trio time of the first failure of the current outage
    last_error: str | None  #: ``str()`` of the latest failure


@final
class SpeechConverter:
    """`convert_long` on ``converter`` that falls back to the unconverted audio; see above."""

    def __init__(
        self,
        converter: VoiceConverter,
        *,
        chunk_seconds: float = DEFAULT_CHUNK_SECONDS,
        overlap_seconds: float = DEFAULT_OVERLAP_SECONDS,
    ) -> None:
        if not 0 <= overlap_seconds < chunk_seconds:
            raise ValueError(
                f"need 0 <= overlap < chunk, got {overlap_seconds}s and {chunk_seconds}s"
            )
        self._converter = converter
        self._chunk_seconds = chunk_seconds
        self._overlap_seconds = overlap_seconds
        self._conversions = 0
        self._failures = 0
        self._down_since: float | None = None
        self._last_error: str | None = None

    @property
    def converter(self) -> VoiceConverter:
        return self._converter

    async def convert(self, audio: Audio, *, model: str) -> Conversion:
        """``audio`` in the voice ``model``, or ``audio`` itself if the converter fails.

        Never raises an `RVCError`; cancellation propagates as usual (and counts as nothing).
        """
        try:
            converted = await convert_long(
                self._converter,
                audio,
                model=model,
                chunk_seconds=self._chunk_seconds,
                overlap_seconds=self._overlap_seconds,
            )
        except RVCError as error:
            self._failures += 1
            self._last_error = str(error)
            first = self._down_since is None
            if first:
                self._down_since = trio.current_time()
                logger.warning("voice conversion failed, speaking unconverted: %s", error)
            notice = (
                f"Voice conversion isn't working, so I'll speak in my plain voice for now. {error}"
                if first
                else None
            )
            return Conversion(audio=audio, converted=False, notice=notice)
        if self._down_since is not None:
            logger.info("voice conversion works again")
        self._conversions += 1
        self._down_since = None
        return Conversion(audio=converted, converted=True)

    def statistics(self) -> ConversionStatistics:
        return ConversionStatistics(
            backend=self._converter.name,
            conversions=self._conversions,
            failures=self._failures,
            down_since=self._down_since,
            last_error=self._last_error,
        )
