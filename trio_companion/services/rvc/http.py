"""`VoiceConverter` on an RVC HTTP server with rvc-python's API (``python -m rvc_python api``).

Theory of operation
-------------------
Target: the FastAPI server of rvc-python (github.com/daswer123/rvc-python, ``rvc_python/api.py``,
also the PyPI package ``rvc-python``). Its API, as that file defines it:

- ``GET /models`` → ``{"models": ["name", ...]}``: one name per folder of its models directory
  holding a ``.pth`` (and maybe an ``.index``);
- ``POST /models/{name}`` loads that model → 200, or 400 ``{"detail": "Model x not found."}``;
- ``POST /params`` with ``{"params": {"f0up_key", "f0method", "index_rate", "filter_radius",
  "resample_sr", "rms_mix_rate", "protect"}}`` sets the inference settings → 200 (400 if bad);
- ``POST /convert`` with ``{"audio_data": "<base64 of a WAV file>"}`` → 200 ``audio/wav`` bytes
  at the model's rate; 400 ``{"detail": "No model loaded..."}`` (newer versions) or 500
  ``{"detail": "An error occurred: ..."}``.

The loaded model and the settings are *global server state*, not part of a conversion request.
So a converter holds a `trio.Lock` across "load model if needed, set params, convert" and
remembers which model it loaded; it assumes it is the server's only client. Anything unexpected
(an error, a cancellation mid-exchange) forgets that state, so the next call loads and sets again.
A conversion refused with 400 right after a server restart ("no model loaded") is retried once
after loading. All paths are configurable (`RVCHttpPaths`) for servers with the same shape at
other routes.

Timeouts are those of the injected ``httpx.AsyncClient``: its read timeout bounds one conversion
(the predecessor allowed 120 s for ~20 s of speech on a GPU). Encoding the WAV and decoding the
answer run in a worker thread (`trio_companion.services.audio.in_audio_thread`).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Final, final
from urllib.parse import quote

import httpx
import trio

from trio_companion.services.audio import (
    Audio,
    AudioError,
    decode_in_thread,
    encode_wav,
    in_audio_thread,
)
from trio_companion.services.rvc._transport import Transport, error_detail
from trio_companion.services.rvc.base import RVCParams
from trio_companion.services.rvc.errors import RVCError, RVCFailed, RVCModelNotFound

__all__ = ["RVCHttpConverter", "RVCHttpPaths"]

# rvc-python answers 400 both for a model it does not have ("Model x not found.") and, from
# 2024 on, for a conversion without a loaded model ("No model loaded...") (rvc_python/api.py).
_BAD_REQUEST: Final = 400


@dataclass(frozen=True, slots=True, kw_only=True)
class RVCHttpPaths:
    """The server's routes; defaults are rvc-python's. ``{model}`` is the URL-quoted name."""

    convert: str = "/convert"
    models: str = "/models"
    load_model: str = "/models/{model}"
    params: str = "/params"


def _wav_base64(audio: Audio) -> str:
    return base64.b64encode(encode_wav(audio)).decode("ascii")


@final
class RVCHttpConverter:
    """Conversions on an rvc-python API server at ``base_url`` (see the module docstring).

    ``http`` carries the timeouts; ``params`` the inference settings sent before the first
    conversion with each model.
    """

    name: Final = "rvc-http"

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        *,
        params: RVCParams | None = None,
        paths: RVCHttpPaths | None = None,
    ) -> None:
        self._transport = Transport(http, base_url)
        self._params = params or RVCParams()
        self._paths = paths or RVCHttpPaths()
        self._lock = trio.Lock()
        self._loaded: str | None = None  # the model the server has loaded for us, if known

    async def models(self) -> list[str]:
        """The server's models (``GET /models``); raises `RVCUnavailable` or `RVCFailed`."""
        body = await self._transport.json("GET", self._paths.models)
        names = body.get("models") if isinstance(body, dict) else None
        if not isinstance(names, list):
            raise RVCFailed(200, "the model list has no 'models' array")
        return [str(name) for name in names]

    async def convert(self, audio: Audio, *, model: str) -> Audio:
        """``audio`` in the voice ``model``; see `VoiceConverter.convert`.

        Raises `RVCModelNotFound` when the server has no such model, `RVCFailed` when it fails
        the conversion or sends back something that is not audio, `RVCUnavailable` when it cannot
        be reached or takes longer than the client's read timeout.
        """
        payload = {"audio_data": await in_audio_thread(_wav_base64, audio)}
        async with self._lock:
            try:
                loaded_now = await self._prepare(model)
                response = await self._transport.send("POST", self._paths.convert, json=payload)
                if response.status_code == _BAD_REQUEST and not loaded_now:
                    # The server may have restarted and lost the model: load it again, once.
                    self._loaded = None
                    await self._prepare(model)
                    response = await self._transport.send("POST", self._paths.convert, json=payload)
                if not response.is_success:
                    raise RVCFailed(
                        response.status_code,
                        error_detail(response.content, response.reason_phrase),
                    )
            except BaseException:
                # An error or a cancellation mid-exchange: the server's state is unknown now.
                self._loaded = None
                raise
        try:
            return await decode_in_thread(response.content)
        except AudioError as error:
            raise RVCFailed(
                response.status_code, f"the converted audio is unreadable: {error.reason}"
            ) from None

    async def _prepare(self, model: str) -> bool:
        """Load ``model`` and send the settings unless done already; True if it did."""
        if self._loaded == model:
            return False
        self._loaded = None
        path = self._paths.load_model.format(model=quote(model, safe=""))
        response = await self._transport.send("POST", path)
        if response.status_code == _BAD_REQUEST:
            detail = error_detail(response.content, response.reason_phrase)
            if "not found" in detail.lower():
                raise RVCModelNotFound(model, await self._known_models())
            raise RVCFailed(response.status_code, detail)
        if not response.is_success:
            raise RVCFailed(
                response.status_code, error_detail(response.content, response.reason_phrase)
            )
        await self._transport.json("POST", self._paths.params, json={"params": self._settings()})
        self._loaded = model
        return True

    async def _known_models(self) -> tuple[str, ...]:
        """The server's models for an error message; empty if they cannot be listed."""
        try:
            return tuple(await self.models())
        except RVCError:
            return ()

    def _settings(self) -> dict[str, Any]:
        p = self._params
        return {
            "f0up_key": p.f0_up_key,
            "f0method": p.f0_method,
            "index_rate": p.index_rate,
            "filter_radius": p.filter_radius,
            "resample_sr": p.resample_sr,
            "rms_mix_rate": p.rms_mix_rate,
            "protect": p.protect,
        }
