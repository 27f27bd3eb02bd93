"""`OpenAISpeechEngine` against `FakeSpeechServer` over loopback HTTP.

The answers are decoded in worker threads, so these run on the real clock (an autojumping
MockClock would fire the deadlines while a thread works); the fake answers at once and nothing
sleeps.
"""

from __future__ import annotations

import httpx
import pytest
import trio

from tests.fakes.tts_servers import KOKORO_RATE, FakeSpeechServer
from trio_companion.services.audio import rms
from trio_companion.services.tts.errors import TTSFailed, TTSUnavailable
from trio_companion.services.tts.openai_speech import (
    DEFAULT_VOICE,
    OpenAISpeechEngine,
    api_base,
)


def engine(
    fake: FakeSpeechServer, http: httpx.AsyncClient, *, voice: str = DEFAULT_VOICE
) -> OpenAISpeechEngine:
    return OpenAISpeechEngine(http, url=fake.url, voice=voice)


@pytest.mark.parametrize(
    ("url", "base"),
    [
        ("http://localhost:8880", "http://localhost:8880/v1"),
        ("http://localhost:8880/", "http://localhost:8880/v1"),
        ("https://api.openai.com/v1", "https://api.openai.com/v1"),
        ("https://api.openai.com/v1/", "https://api.openai.com/v1"),
    ],
)
def test_api_base(url: str, base: str) -> None:
    assert api_base(url) == base


async def test_request_and_audio(
    fake_speech: FakeSpeechServer, speech_http: httpx.AsyncClient
) -> None:
    text = "Hello from the fake Kokoro."
    with trio.fail_after(10):
        audio = await engine(fake_speech, speech_http).synthesize(text, voice="af_bella")
    assert fake_speech.speech_bodies == [
        {"model": "kokoro", "input": text, "voice": "af_bella", "response_format": "wav",
         "speed": 1.0}
    ]  # fmt: skip
    request = fake_speech.requests[0]
    assert (request.method, request.path) == ("POST", "/v1/audio/speech")
    assert request.header("authorization") is None
    assert request.header("content-type") == "application/json"
    assert (audio.rate, audio.channels) == (KOKORO_RATE, 1)
    assert audio.duration == pytest.approx(fake_speech.duration_for(text), abs=1e-3)
    assert rms(audio) == pytest.approx(0.5 / 2**0.5, rel=0.01)


async def test_default_voice_speed_and_key(
    fake_speech: FakeSpeechServer, speech_http: httpx.AsyncClient
) -> None:
    fake_speech.api_key = "sk-test"
    tts = OpenAISpeechEngine(speech_http, url=fake_speech.url + "/v1", speed=2.0, api_key="sk-test")
    with trio.fail_after(10):
        audio = await tts.synthesize("Twenty characters!!")
    assert fake_speech.speech_bodies[0]["voice"] == "af_heart"
    assert fake_speech.requests[0].header("authorization") == "Bearer sk-test"
    assert audio.duration == pytest.approx(fake_speech.duration_for("Twenty characters!!", 2.0))


async def test_voices(fake_speech: FakeSpeechServer, speech_http: httpx.AsyncClient) -> None:
    tts = engine(fake_speech, speech_http, voice="am_adam")
    with trio.fail_after(10):
        assert await tts.voices() == ["af_heart", "af_bella", "am_adam"]
        fake_speech.list_voices = False  # OpenAI itself: 404, fall back to the configured voice
        assert await tts.voices() == ["am_adam"]
    assert fake_speech.requests[0].path == "/v1/audio/voices"


async def test_server_error_is_failed(
    fake_speech: FakeSpeechServer, speech_http: httpx.AsyncClient
) -> None:
    fake_speech.status = 500
    with trio.fail_after(10), pytest.raises(TTSFailed) as caught:
        await engine(fake_speech, speech_http).synthesize("Hello.")
    assert caught.value.status == 500
    assert caught.value.detail == "synthesis exploded"
    assert str(caught.value) == "Text-to-speech (openai) failed (HTTP 500): synthesis exploded."


async def test_unknown_voice_is_failed(
    fake_speech: FakeSpeechServer, speech_http: httpx.AsyncClient
) -> None:
    with trio.fail_after(10), pytest.raises(TTSFailed) as caught:
        await engine(fake_speech, speech_http).synthesize("Hello.", voice="nobody")
    assert caught.value.status == 400
    assert "Voice 'nobody' not found" in caught.value.detail


async def test_api_key_never_shown(
    fake_speech: FakeSpeechServer, speech_http: httpx.AsyncClient
) -> None:
    fake_speech.api_key = "right-key"
    tts = OpenAISpeechEngine(speech_http, url=fake_speech.url, api_key="wrong-key")
    with trio.fail_after(10), pytest.raises(TTSFailed) as caught:
        await tts.synthesize("Hello.")
    assert caught.value.status == 401
    assert "wrong-key" not in str(caught.value)


async def test_down_is_unavailable_then_recovers(
    fake_speech: FakeSpeechServer, speech_http: httpx.AsyncClient
) -> None:
    tts = engine(fake_speech, speech_http)
    fake_speech.down = True
    with trio.fail_after(10):
        with pytest.raises(TTSUnavailable) as caught:
            await tts.synthesize("Hello.")
        with pytest.raises(TTSUnavailable):
            await tts.voices()
        fake_speech.down = False
        audio = await tts.synthesize("Hello.")
    assert fake_speech.url in str(caught.value)
    assert audio.frames > 0


async def test_undecodable_body_is_failed() -> None:
    def not_audio(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"<html>surprise</html>")

    async with httpx.AsyncClient(transport=httpx.MockTransport(not_audio)) as http:
        tts = OpenAISpeechEngine(http, url="http://tts.invalid")
        with trio.fail_after(10), pytest.raises(TTSFailed, match="unreadable audio"):
            await tts.synthesize("Hello.")
