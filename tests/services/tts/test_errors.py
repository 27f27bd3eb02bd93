"""The TTS error tree: fields and the sentences users see."""

from __future__ import annotations

import pytest

from trio_companion.errors import CompanionError
from trio_companion.services.audio import AudioError
from trio_companion.services.tts.errors import TTSError, TTSFailed, TTSUnavailable


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (
            TTSUnavailable("espeak", "can't run 'espeak-ng'", hint="apt install espeak-ng"),
            "Text-to-speech (espeak) is unavailable: can't run 'espeak-ng'. "
            "To fix it: apt install espeak-ng.",
        ),
        (
            TTSUnavailable("piper", "no voice model at /x.onnx"),
            "Text-to-speech (piper) is unavailable: no voice model at /x.onnx.",
        ),
        (
            TTSFailed("openai", "Voice 'x' not found", status=400),
            "Text-to-speech (openai) failed (HTTP 400): Voice 'x' not found.",
        ),
        (
            TTSFailed("espeak", "bad voice.\n", exit_code=1),
            "Text-to-speech (espeak) failed (exit code 1): bad voice.",
        ),
        (TTSFailed("piper", ""), "Text-to-speech (piper) failed: no details."),
    ],
)
def test_messages(error: TTSError, message: str) -> None:
    assert str(error) == message
    assert isinstance(error, CompanionError)


def test_fields_and_long_detail() -> None:
    error = TTSFailed("openai", "x" * 1000, status=500)
    assert (error.engine, error.status, error.exit_code) == ("openai", 500, None)
    assert len(error.detail) == 200
    assert error.detail.endswith("…")
    unavailable = TTSUnavailable("espeak", "missing", hint="install it")
    assert (unavailable.engine, unavailable.reason, unavailable.hint) == (
        "espeak",
        "missing",
        "install it",
    )


def test_audio_error_is_its_own_root() -> None:
    error = AudioError("the data is empty")
    assert error.reason == "the data is empty"
    assert isinstance(error, CompanionError)
    assert not issubclass(AudioError, TTSError)
