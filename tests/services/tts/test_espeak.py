"""`EspeakEngine`: real synthesis with the ``espeak-ng`` binary (skipped where it is missing),
the voice listing parser, and the failures (missing binary, unknown voice).

These run real processes and worker threads, so they use the real clock (an autojumping
MockClock would fire the deadlines while a process runs); nothing sleeps.
"""

from __future__ import annotations

import shutil

import pytest
import trio

from trio_companion.services.audio import rms
from trio_companion.services.tts.errors import TTSFailed, TTSUnavailable
from trio_companion.services.tts.espeak import EspeakEngine, parse_voices

needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None,
    reason="espeak-ng is not installed (apt install espeak-ng)",
)

LISTING = """\
Pty Language       Age/Gender VoiceName          File                 Other Languages
 5  af              --/M      Afrikaans          gmw/af
 2  en-gb           --/M      English_(Great_Britain) gmw/en               (en 2)
 2  en-us           --/M      English_(America)  gmw/en-US            (en 3)
"""


def test_parse_voices() -> None:
    assert parse_voices(LISTING) == ["af", "en-gb", "en-us"]
    assert parse_voices("") == []


@needs_espeak
async def test_speaks_a_sentence() -> None:
    engine = EspeakEngine()
    with trio.fail_after(20):
        short = await engine.synthesize("Hello.")
        long = await engine.synthesize("Hello there, this is a longer sentence to speak aloud.")
    assert engine.name == "espeak"
    assert (long.rate, long.channels) == (22_050, 1)
    # About 2.5 words per second at 175 wpm, plus pauses: a plausible range, not a golden value.
    assert 1.5 < long.duration < 8.0
    assert long.duration > 2 * short.duration
    assert rms(long) > 0.01


@needs_espeak
async def test_text_is_not_read_as_options() -> None:
    with trio.fail_after(20):
        audio = await EspeakEngine().synthesize("--version and -v are words here")
    assert audio.duration > 1.0


@needs_espeak
async def test_voices_and_speed() -> None:
    engine = EspeakEngine()
    with trio.fail_after(20):
        voices = await engine.voices()
        normal = await engine.synthesize("One two three four five six.", voice="en-gb")
        fast = await EspeakEngine(speed=350).synthesize("One two three four five six.")
    assert "en-us" in voices
    assert "en-gb" in voices
    assert fast.duration < normal.duration


@needs_espeak
async def test_unknown_voice_fails() -> None:
    with trio.fail_after(20), pytest.raises(TTSFailed) as caught:
        await EspeakEngine().synthesize("Hello.", voice="xx-nonexistent")
    assert caught.value.exit_code not in (None, 0)
    assert "voice does not exist" in caught.value.detail


async def test_missing_binary_is_unavailable() -> None:
    engine = EspeakEngine(binary="/nonexistent/espeak-ng")
    with trio.fail_after(20):
        with pytest.raises(TTSUnavailable) as caught:
            await engine.synthesize("Hello.")
        with pytest.raises(TTSUnavailable):
            await engine.voices()
    assert caught.value.hint == "apt install espeak-ng"
    assert "apt install espeak-ng" in str(caught.value)
