"""`TTSEngine` on an OpenAI-compatible speech server (Kokoro-FastAPI, openedai-speech, OpenAI).

Theory of operation
-------------------
`OpenAISpeechEngine.synthesize` POSTs ``{model, input, voice, response_format: "wav", speed}``
to ``/audio/speech`` under the API base (OpenAI API reference, "Create speech") on the injected
``httpx.AsyncClient``, with ``Authorization: Bearer <api_key>`` only when a key is configured.
The whole WAV body is read, then decoded in an audio worker thread. WAV rather than the default
MP3 because it decodes exactly and fast; Kokoro answers 24 kHz mono.

`voices` asks ``GET /audio/voices``, which Kokoro-FastAPI answers with ``{"voices": [...]}``
(names, or objects with an ``id``/``name``). OpenAI itself has no such endpoint: any error
status or unexpected body falls back to the configured voice alone; a server that can't be
reached still raises.

The API base is ``url`` when it already ends in ``/v1``, else ``url + "/v1"`` — so both
``http://localhost:8880`` (Kokoro's documented address) and ``https://api.openai.com/v1`` work.

Errors: no connection (refused, unknown host, connect timeout) is `TTSUnavailable`; an error
status is `TTSFailed` with the status and a short excerpt of the body (the API key redacted); a
read timeout, a connection that breaks mid-answer or an undecodable body is `TTSFailed` too.
Timeouts are the injected client's; deadlines belong to the caller.
"""

from __future__ import annotations

from typing import Any, Final, final

import httpx
import msgspec

from trio_companion.services.audio import Audio, AudioError, decode_in_thread
from trio_companion.services.tts.errors import TTSFailed, TTSUnavailable

__all__ = ["DEFAULT_MODEL", "DEFAULT_VOICE", "OpenAISpeechEngine", "api_base"]

DEFAULT_MODEL: Final = "kokoro"  # Kokoro-FastAPI's model name (OpenAI's would be "tts-1")
DEFAULT_VOICE: Final = "af_heart"  # Kokoro-v1.0's default voice (hexgrad/Kokoro-82M VOICES.md)
_NAME: Final = "openai"
_MAX_EXCERPT: Final = 200  # characters of an error body worth showing a user


class _SpeechRequest(msgspec.Struct, frozen=True):
    model: str
    input: str
    voice: str
    response_format: str
    speed: float


def api_base(url: str) -> str:
    """The API base for ``url``: as given when it ends in ``/v1``, else with ``/v1`` added."""
    url = url.rstrip("/")
    return url if url.endswith("/v1") else url + "/v1"


@final
class OpenAISpeechEngine:
    """Speech from an OpenAI-compatible ``/v1/audio/speech`` endpoint at ``url``.

    ``http`` carries the timeouts; ``api_key`` is sent as a Bearer token when not empty and never
    appears in an error. Safe to share between tasks (the server queues concurrent requests).
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        url: str,
        model: str = DEFAULT_MODEL,
        voice: str = DEFAULT_VOICE,
        speed: float = 1.0,
        api_key: str = "",
    ) -> None:
        self._http = http
        self._base = api_base(url)
        self._model = model
        self._voice = voice
        self._speed = speed
        self._api_key = api_key
        self._headers = {"authorization": f"Bearer {api_key}"} if api_key else {}

    @property
    def name(self) -> str:
        return _NAME

    async def synthesize(self, text: str, *, voice: str | None = None) -> Audio:
        """Speak ``text``; see `TTSEngine.synthesize`."""
        request = _SpeechRequest(
            model=self._model,
            input=text,
            voice=voice or self._voice,
            response_format="wav",
            speed=self._speed,
        )
        response = await self._send(
            "POST",
            "/audio/speech",
            content=msgspec.json.encode(request),
            headers={**self._headers, "content-type": "application/json"},
        )
        if not response.is_success:
            raise TTSFailed(_NAME, self._excerpt(response), status=response.status_code)
        try:
            return await decode_in_thread(response.content)
        except AudioError as error:
            raise TTSFailed(_NAME, f"unreadable audio from the server: {error.reason}") from error

    async def voices(self) -> list[str]:
        """The server's voices, or just the configured voice if it can't list them."""
        response = await self._send("GET", "/audio/voices", headers=self._headers)
        names: list[str] = []
        if response.is_success:
            try:
                body = msgspec.json.decode(response.content)
            except msgspec.DecodeError:
                body = None
            names = _voice_names(body)
        return names or [self._voice]

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        url = self._base + path
        try:
            return await self._http.request(method, url, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.UnsupportedProtocol) as error:
            raise TTSUnavailable(
                _NAME,
                f"can't reach the speech server at {self._base}",
                hint="check that the TTS server is running and its URL is right",
            ) from error
        except httpx.TimeoutException as error:
            raise TTSFailed(_NAME, "the speech server took too long to answer") from error
        except httpx.TransportError as error:
            raise TTSFailed(_NAME, "the connection to the speech server broke") from error

    def _excerpt(self, response: httpx.Response) -> str:
        text = response.content.decode(errors="replace")
        try:
            body = msgspec.json.decode(response.content)
        except msgspec.DecodeError:
            body = None
        # OpenAI: {"error": {"message": ...}}; FastAPI (Kokoro): {"detail": ... or {"message"}}.
        if isinstance(body, dict):
            for key in ("error", "detail"):
                value = body.get(key)
                if isinstance(value, dict):
                    value = value.get("message", value)
                if value:
                    text = str(value)
                    break
        if self._api_key:
            text = text.replace(self._api_key, "***")
        text = " ".join(text.split())
        return text[:_MAX_EXCERPT] or response.reason_phrase or "no details"


def _voice_names(body: object) -> list[str]:
    voices = body.get("voices") if isinstance(body, dict) else body
    if not isinstance(voices, list):
        return []
    names: list[str] = []
    for voice in voices:
        if isinstance(voice, str):
            names.append(voice)
        elif isinstance(voice, dict):
            name = voice.get("id") or voice.get("name") or voice.get("voice_id")
            if isinstance(name, str):
                names.append(name)
    return names
