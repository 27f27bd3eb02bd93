"""`VoiceConverter` on RVC-WebUI's Gradio API (RVC-Project/Retrieval-based-Voice-Conversion-WebUI).

Theory of operation
-------------------
RVC-WebUI has no REST API of its own: ``infer-web.py`` builds a Gradio app and names three of
its events, which Gradio exposes over HTTP:

- ``infer_refresh`` (the "refresh voices" button, no inputs) → ``[{"choices": [...],
  "__type__": "update"}, {...index paths...}]``: the ``.pth`` files of its ``weight_root``;
- ``infer_change_voice`` (the voice dropdown; inputs ``[model.pth, protect, protect]``) loads the
  model into the WebUI's one global ``VC`` object → ``[..., {"value": index path}, ...]``, whose
  fourth output is the model's ``.index`` file, which we pass on to the conversion;
- ``infer_convert`` (inputs ``[speaker id, input path, f0_up_key, f0 file, f0 method, index path,
  index dropdown, index_rate, filter_radius, resample_sr, rms_mix_rate, protect]``) →
  ``[info text, audio]``.

The input audio is a **path on the WebUI's disk** (a Textbox, not an upload): RVC opens it with
ffmpeg itself. So this backend only works when the bot runs on the same host as the WebUI (or
writes to a folder the WebUI sees at the same path, ``shared_dir``). Each conversion writes a WAV
into a fresh folder there and removes the folder afterwards — in a ``finally``, shielded, so also
after an error or a cancellation.

The converted audio comes back as a Gradio *file*: Gradio writes the numpy result to its own temp
folder and answers with its path (Gradio 3: ``{"name": path, "is_file": true}``; 4 and later:
``{"path": path, "url": ".../file=path"}``). We download it through Gradio's ``/file=<path>`` route
(or the ``url`` given), which serves files from Gradio's temp folder; the output therefore needs
no shared disk, only the input does.

Two Gradio HTTP protocols (``protocol``):

- ``"run"`` (default; Gradio 3.x, which RVC-WebUI pins — ``gradio==3.34``/``3.29`` in its
  requirements): ``POST /run/<api_name>`` with ``{"data": [...]}`` → ``{"data": [...]}``; an
  exception in the handler is HTTP 500 ``{"error": null}`` (the message is hidden unless the
  WebUI was started with ``show_error``).
- ``"call"`` (Gradio 4+ forks): ``POST /call/<api_name>`` → ``{"event_id": id}``, then
  ``GET /call/<api_name>/<id>`` streams server-sent events until ``event: complete`` (``data:``
  the outputs) or ``event: error``. Gradio 5 puts all of it under ``/gradio_api``
  (``api_prefix``).

The WebUI has one loaded model for all its users, so a converter holds a `trio.Lock` across
"change voice if needed, convert" and remembers the model it loaded; any failure forgets it.
Timeouts are those of the injected ``httpx.AsyncClient``.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any, Final, Literal, final

import httpx
import msgspec
import trio

from trio_companion.services.audio import Audio, AudioError, decode_in_thread, encode_wav
from trio_companion.services.rvc._transport import Transport, error_detail
from trio_companion.services.rvc.base import RVCParams
from trio_companion.services.rvc.errors import RVCError, RVCFailed, RVCModelNotFound

__all__ = ["GradioProtocol", "RVCWebUIConverter"]

GradioProtocol = Literal["run", "call"]

# Event names given with api_name= in RVC-WebUI's infer-web.py.
_CONVERT: Final = "infer_convert"
_CHANGE_VOICE: Final = "infer_change_voice"
_REFRESH: Final = "infer_refresh"
_MODEL_SUFFIX: Final = ".pth"  # the WebUI lists and loads weight files by file name
_INPUT_NAME: Final = "input.wav"
# Bound on the shielded removal of the input folder (STYLE.md 14): a few small files.
_CLEANUP_GRACE: Final = 5.0
_SHARED_HOST_HINT: Final = (
    "RVC-WebUI reads the input audio from its own disk, so the bot must run on the WebUI's host "
    "(or share the input folder with it at the same path)."
)


def _model_file(model: str) -> str:
    return model if model.endswith(_MODEL_SUFFIX) else model + _MODEL_SUFFIX


def _choices(update: Any) -> list[str]:
    """The ``choices`` of a Gradio update: strings (Gradio 3) or [label, value] pairs (4+)."""
    choices = update.get("choices") if isinstance(update, dict) else None
    if not isinstance(choices, list):
        raise RVCFailed(200, "the WebUI's voice list has no choices")
    names: list[str] = []
    for choice in choices:
        if isinstance(choice, list) and choice:
            names.append(str(choice[-1]))
        elif isinstance(choice, str):
            names.append(choice)
    return names


def _sse_result(body: str) -> list[Any]:
    """The outputs of a Gradio ``/call`` event stream: the data of ``event: complete``."""
    for block in body.replace("\r\n", "\n").split("\n\n"):
        event, data = "", []
        for line in block.split("\n"):
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
        text = "\n".join(data)
        if event == "complete":
            try:
                outputs = msgspec.json.decode(text)
            except msgspec.DecodeError:
                raise RVCFailed(200, "the WebUI's result is not JSON") from None
            if not isinstance(outputs, list):
                raise RVCFailed(200, "the WebUI's result is not a list")
            return outputs
        if event == "error":
            detail = text if text and text != "null" else "the WebUI reported an error"
            raise RVCFailed(200, detail.strip('"'))
    raise RVCFailed(200, "the WebUI's event stream ended without a result")


def _input_base(shared_dir: Path | None) -> Path:
    """The absolute folder input files go in: the WebUI resolves relative paths against its own."""
    return (shared_dir or Path(tempfile.gettempdir())).resolve()


def _write_input(folder: Path, audio: Audio) -> None:
    folder.mkdir(mode=0o755)
    (folder / _INPUT_NAME).write_bytes(encode_wav(audio))


@final
class RVCWebUIConverter:
    """Conversions on RVC-WebUI at ``base_url`` (default port 7865); see the module docstring.

    ``shared_dir`` is where input files are written (default: the system temp folder); the WebUI
    must be able to read it at the same path. ``params`` are the inference settings.
    """

    name: Final = "rvc-webui"

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        *,
        params: RVCParams | None = None,
        shared_dir: Path | None = None,
        protocol: GradioProtocol = "run",
        api_prefix: str = "",
    ) -> None:
        self._transport = Transport(http, base_url)
        self._params = params or RVCParams()
        self._shared_dir = shared_dir
        self._protocol = protocol
        self._prefix = api_prefix.rstrip("/")
        self._lock = trio.Lock()
        self._loaded: str | None = None  # the .pth the WebUI has loaded for us, if known
        self._index = ""  # that model's feature index, as the WebUI reported it

    async def models(self) -> list[str]:
        """The WebUI's voices (``infer_refresh``): ``.pth`` file names, as `convert` takes them."""
        outputs = await self._predict(_REFRESH, [])
        if not outputs:
            raise RVCFailed(200, "the WebUI's voice list is empty")
        return _choices(outputs[0])

    async def convert(self, audio: Audio, *, model: str) -> Audio:
        """``audio`` in the voice ``model`` (``name`` or ``name.pth``); see `VoiceConverter`.

        Raises `RVCModelNotFound` when the WebUI has no such ``.pth``, `RVCFailed` when the
        conversion fails (with a hint about the shared disk) or the result is unreadable,
        `RVCUnavailable` when the WebUI cannot be reached or is too slow. The input folder is
        removed whatever happens, cancellation included.
        """
        weights = _model_file(model)
        base = await trio.to_thread.run_sync(_input_base, self._shared_dir)
        folder = base / f"trio-companion-rvc-{uuid.uuid4().hex}"
        try:
            await trio.to_thread.run_sync(_write_input, folder, audio)
            async with self._lock:
                try:
                    await self._change_voice(weights)
                    outputs = await self._predict(
                        _CONVERT, self._convert_inputs(folder / _INPUT_NAME), hint=True
                    )
                except BaseException:
                    self._loaded = None  # the WebUI's state is unknown now
                    raise
        finally:
            with trio.move_on_after(_CLEANUP_GRACE, shield=True):
                await trio.to_thread.run_sync(shutil.rmtree, folder, True)
        return await self._download(outputs)

    def _convert_inputs(self, path: Path) -> list[Any]:
        p = self._params
        return [
            0,  # speaker id: single-speaker models
            str(path),
            p.f0_up_key,
            None,  # f0 curve file: none
            p.f0_method,
            "",  # index path typed in: none, so the WebUI uses the dropdown's
            self._index,
            p.index_rate,
            p.filter_radius,
            p.resample_sr,
            p.rms_mix_rate,
            p.protect,
        ]

    async def _change_voice(self, weights: str) -> None:
        if self._loaded == weights:
            return
        self._loaded = None
        try:
            outputs = await self._predict(
                _CHANGE_VOICE, [weights, self._params.protect, self._params.protect]
            )
        except RVCFailed:
            known = await self._known_models()
            if known is not None and weights not in known:
                raise RVCModelNotFound(weights, tuple(known)) from None
            raise
        index = outputs[3] if len(outputs) > 3 else None  # file_index2's update
        value = index.get("value") if isinstance(index, dict) else index
        self._index = value if isinstance(value, str) else ""
        self._loaded = weights

    async def _known_models(self) -> list[str] | None:
        try:
            return await self.models()
        except RVCError:
            return None

    async def _predict(self, api_name: str, data: list[Any], *, hint: bool = False) -> list[Any]:
        """Run the WebUI event ``api_name`` on ``data`` and return its outputs."""
        body = {"data": data}
        if self._protocol == "run":
            response = await self._transport.send(
                "POST", f"{self._prefix}/run/{api_name}", json=body
            )
            self._check(response, hint=hint)
            try:
                answer = msgspec.json.decode(response.content)
            except msgspec.DecodeError:
                raise RVCFailed(200, "the WebUI's answer is not JSON") from None
            outputs = answer.get("data") if isinstance(answer, dict) else None
            if not isinstance(outputs, list):
                raise RVCFailed(200, "the WebUI's answer has no 'data' list")
            return outputs
        response = await self._transport.send("POST", f"{self._prefix}/call/{api_name}", json=body)
        self._check(response, hint=hint)
        try:
            event_id = msgspec.json.decode(response.content)["event_id"]
        except (msgspec.DecodeError, KeyError, TypeError):
            raise RVCFailed(200, "the WebUI's answer has no event_id") from None
        stream = await self._transport.send("GET", f"{self._prefix}/call/{api_name}/{event_id}")
        self._check(stream, hint=hint)
        try:
            return _sse_result(stream.text)
        except RVCFailed as error:
            raise RVCFailed(200, error.detail, hint=_SHARED_HOST_HINT if hint else None) from None

    @staticmethod
    def _check(response: httpx.Response, *, hint: bool) -> None:
        if not response.is_success:
            detail = error_detail(response.content, "")
            raise RVCFailed(
                response.status_code,
                detail or "the WebUI hid the error (start it with show_error for details)",
                hint=_SHARED_HOST_HINT if hint else None,
            )

    async def _download(self, outputs: list[Any]) -> Audio:
        """Fetch and decode the audio file of ``infer_convert``'s outputs."""
        info = outputs[0] if outputs and isinstance(outputs[0], str) else ""
        result = outputs[1] if len(outputs) > 1 else None
        if isinstance(result, dict):
            url = result.get("url")
            path = result.get("path") or result.get("name")
        else:
            url, path = None, result
        if isinstance(url, str) and url:
            location = url
        elif isinstance(path, str) and path:
            location = f"{self._prefix}/file={path}"
        else:
            raise RVCFailed(200, info or "the WebUI returned no audio", hint=_SHARED_HOST_HINT)
        response = await self._transport.send("GET", location)
        if not response.is_success:
            raise RVCFailed(
                response.status_code,
                "couldn't download the converted audio: "
                + error_detail(response.content, response.reason_phrase),
            )
        try:
            return await decode_in_thread(response.content)
        except AudioError as error:
            raise RVCFailed(200, f"the converted audio is unreadable: {error.reason}") from None
