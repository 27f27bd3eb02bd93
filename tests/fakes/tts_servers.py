"""A fake OpenAI-compatible speech server (like Kokoro-FastAPI): real HTTP on loopback.

`FakeSpeechServer` runs on `tests.fakes.http.HTTPServer`: ``url = await nursery.start(fake.run)``.
It answers:

- ``POST /v1/audio/speech`` with ``{model, input, voice, response_format, speed}``: a real
  16-bit WAV of a sine tone, 24 kHz mono like Kokoro, lasting ``seconds_per_char`` per input
  character (at least ``min_seconds``) divided by ``speed``. ``response_format`` other than
  "wav", or a voice not in ``voices``, gets FastAPI's 400 ``{"detail": ...}``.
- ``GET /v1/audio/voices``: ``{"voices": [...]}``, or 404 when ``list_voices`` is False (as
  OpenAI itself has no such endpoint).

The tone is written with the stdlib ``wave`` module, so the fake never depends on the code under
test to produce its audio.

Fault modes (each stays on until reset): ``status = 500`` (any code) answers every request with
that status and a JSON ``detail``; ``down = True`` stops listening and closes open connections,
so connects are refused. ``api_key``, when set, makes requests without the Bearer key get 401.

Records: ``requests`` (every `Request` as it crossed the wire) and ``speech_bodies`` (the parsed
JSON of each speech request).
"""

from __future__ import annotations

import io
import json
import math
import wave
from typing import Any, Final

import numpy as np
import trio

from tests.fakes.http import HTTPServer, Request, Response

__all__ = ["KOKORO_RATE", "FakeSpeechServer", "sine_wav"]

KOKORO_RATE: Final = 24_000  # Kokoro-82M's output rate (hexgrad/Kokoro-82M model card)
TONE_HZ: Final = 220.0
_JSON: Final = (("content-type", "application/json"),)


def sine_wav(seconds: float, *, rate: int = KOKORO_RATE, hz: float = TONE_HZ) -> bytes:
    """A 16-bit mono WAV of a half-scale sine tone lasting ``seconds``."""
    frames = round(seconds * rate)
    t = np.arange(frames) / rate
    samples = np.round(0.5 * 32767 * np.sin(2 * math.pi * hz * t)).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())
    return buffer.getvalue()


class FakeSpeechServer:
    """See the module docstring."""

    def __init__(self) -> None:
        self.voices = ["af_heart", "af_bella", "am_adam"]
        self.list_voices = True
        self.seconds_per_char = 0.05
        self.min_seconds = 0.1
        self.status: int | None = None
        self.api_key = ""
        self.requests: list[Request] = []
        self.speech_bodies: list[dict[str, Any]] = []
        self._server = HTTPServer(self._handle)
        self._down = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.port}"

    @property
    def down(self) -> bool:
        return self._down

    @down.setter
    def down(self, value: bool) -> None:
        self._down = value
        if value:
            self._server.stop_listening()
        else:
            self._server.start_listening()

    async def run(self, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled; ``task_status.started(url)`` once listening."""
        async with trio.open_nursery() as nursery:
            await nursery.start(self._server.run)
            task_status.started(self.url)

    def duration_for(self, text: str, speed: float = 1.0) -> float:
        """How long the tone for ``text`` lasts."""
        return max(self.min_seconds, len(text) * self.seconds_per_char) / speed

    async def _handle(self, request: Request) -> Response:
        self.requests.append(request)
        if self.api_key and request.header("authorization") != f"Bearer {self.api_key}":
            return _error(401, "Invalid API key")
        if self.status is not None:
            return _error(self.status, "synthesis exploded")
        if request.method == "GET" and request.path == "/v1/audio/voices":
            if not self.list_voices:
                return _error(404, "Not Found")
            return Response(200, _JSON, json.dumps({"voices": self.voices}).encode())
        if request.method == "POST" and request.path == "/v1/audio/speech":
            body = json.loads(request.body)
            self.speech_bodies.append(body)
            if body.get("response_format", "mp3") != "wav":
                return _error(400, "only wav in this fake")
            if body.get("voice") not in self.voices:
                return _error(400, f"Voice '{body.get('voice')}' not found")
            seconds = self.duration_for(body["input"], float(body.get("speed", 1.0)))
            return Response(200, (("content-type", "audio/wav"),), sine_wav(seconds))
        return _error(404, "Not Found")


def _error(status: int, detail: str) -> Response:
    return Response(status, _JSON, json.dumps({"detail": detail}).encode())
