"""Fake RVC servers: rvc-python's API server and RVC-WebUI's Gradio API, over loopback HTTP.

Both run on `tests.fakes.http.HTTPServer` (``url = await nursery.start(fake.run)``) and speak the
request and response shapes documented in `trio_companion.services.rvc.http` and
`trio_companion.services.rvc.gradio`. Their "conversion" is real signal processing that a test
can recognise: `fake_voice` mixes down to mono, halves the level and resamples to 40 kHz (the rate
of RVC v2 "40k" models), so the result differs from the input in rate, channels and loudness but
keeps its duration and shape.

`FakeRVCHttp` (rvc-python): ``GET /models``, ``POST /models/{name}``, ``POST /params``,
``POST /convert`` (base64 WAV in, WAV out). Knobs: ``models``; ``status`` (answer every
conversion with that error status and FastAPI's ``{"detail": ...}``); ``down``; `restart`
(forget the loaded model and params, as a restarted server would).

`FakeRVCWebUI` (Gradio 3 ``/run/<api>`` and Gradio 4 ``/call/<api>`` + SSE, ``/file=<path>``):
events ``infer_refresh``, ``infer_change_voice``, ``infer_convert``. It reads the input WAV from
the path it is given, as the WebUI does, and writes its result into ``files_dir``, served by
``/file=``. Knobs: ``weights``; ``status`` (fail conversions as Gradio does: 500 ``{"error":
null}``, or an ``error`` event); ``down``; ``hold`` (an event the conversion waits for, after
setting ``convert_started``), to cancel a client mid-request.

Both record ``requests`` (`RecordedRequest`: method, path, parsed JSON) and ``conversions``.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import unquote

import numpy as np
import trio

from tests.fakes.http import HTTPServer, Request, Response
from trio_companion.services.audio import Audio, decode, encode_wav, resample, to_channels

__all__ = [
    "FAKE_VOICE_GAIN",
    "FAKE_VOICE_RATE",
    "FakeRVCHttp",
    "FakeRVCWebUI",
    "RecordedRequest",
    "fake_voice",
]

FAKE_VOICE_RATE: Final = 40_000  # RVC v2 "40k" models answer at 40 kHz
FAKE_VOICE_GAIN: Final = 0.5
_JSON: Final = (("content-type", "application/json"),)


def fake_voice(audio: Audio) -> Audio:
    """The fakes' "voice conversion": mono, half the level, at `FAKE_VOICE_RATE`."""
    mono = to_channels(audio, 1)
    quieter = Audio((mono.samples * FAKE_VOICE_GAIN).astype(np.float32), mono.rate)
    return resample(quieter, FAKE_VOICE_RATE)


def _convert_wav(data: bytes) -> bytes:
    return encode_wav(fake_voice(decode(data)))


def _json(status: int, body: Any) -> Response:
    return Response(status, _JSON, json.dumps(body).encode())


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    method: str
    path: str
    json: Any  #: the parsed body (None when empty or not JSON)


def _record(request: Request) -> RecordedRequest:
    try:
        parsed = json.loads(request.body) if request.body else None
    except ValueError:
        parsed = None
    return RecordedRequest(request.method, unquote(request.path), parsed)


class _Fake:
    def __init__(self) -> None:
        self.status: int | None = None
        self.requests: list[RecordedRequest] = []
        self._server = HTTPServer(self._handle)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.port}"

    @property
    def down(self) -> bool:
        return not self._server.listening

    @down.setter
    def down(self, down: bool) -> None:
        if down:
            self._server.stop_listening()
        else:
            self._server.start_listening()

    async def run(self, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(self._server.run)
            task_status.started(self.url)

    def paths(self) -> list[str]:
        return [f"{r.method} {r.path}" for r in self.requests]

    async def _handle(self, request: Request) -> Response:
        self.requests.append(_record(request))
        return await self.answer(request, self.requests[-1])

    async def answer(self, request: Request, recorded: RecordedRequest) -> Response:
        raise NotImplementedError


class FakeRVCHttp(_Fake):
    """rvc-python's FastAPI server (``rvc_python/api.py``)."""

    def __init__(self, models: tuple[str, ...] = ("mira", "narrator")) -> None:
        super().__init__()
        self.models = list(models)
        self.loaded: str | None = None
        self.params: dict[str, Any] = {}
        self.conversions: list[tuple[str, dict[str, Any]]] = []  #: (model, params) of each

    def restart(self) -> None:
        self.loaded = None
        self.params = {}

    async def answer(self, request: Request, recorded: RecordedRequest) -> Response:
        path = recorded.path
        if request.method == "GET" and path == "/models":
            return _json(200, {"models": self.models})
        if request.method == "POST" and path.startswith("/models/"):
            name = path.removeprefix("/models/")
            if name not in self.models:
                return _json(400, {"detail": f"Model {name} not found."})
            self.loaded = name
            return _json(200, {"message": f"Model {name} loaded successfully"})
        if request.method == "POST" and path == "/params":
            self.params.update(recorded.json["params"])
            return _json(200, {"message": "Parameters updated successfully"})
        if request.method == "POST" and path == "/convert":
            if self.loaded is None:
                return _json(400, {"detail": "No model loaded. Please load a model first."})
            if self.status is not None:
                return _json(self.status, {"detail": "An error occurred: CUDA out of memory"})
            data = base64.b64decode(recorded.json["audio_data"])
            out = await trio.to_thread.run_sync(_convert_wav, data)
            self.conversions.append((self.loaded, dict(self.params)))
            return Response(200, (("content-type", "audio/wav"),), out)
        return _json(404, {"detail": "Not Found"})


@dataclass
class _Failed(Exception):
    message: str | None = None


@dataclass
class _Job:
    outputs: list[Any] | None
    error: str | None = None


@dataclass
class _WebUIState:
    loaded: str | None = None
    jobs: dict[str, _Job] = field(default_factory=dict)


class FakeRVCWebUI(_Fake):
    """RVC-WebUI's Gradio app (``infer-web.py`` on Gradio 3, or a Gradio 4 fork with ``/call``)."""

    def __init__(
        self, files_dir: Path, weights: tuple[str, ...] = ("mira.pth", "narrator.pth")
    ) -> None:
        super().__init__()
        self.files_dir = files_dir
        self.weights = list(weights)
        self.hold: trio.Event | None = None
        self.convert_started = trio.Event()
        self.conversions: list[tuple[str, list[Any]]] = []  #: (weights, inputs) of each
        self.inputs_seen: list[Path] = []  #: input paths, which existed when read
        self._state = _WebUIState()

    @property
    def loaded(self) -> str | None:
        return self._state.loaded

    async def answer(self, request: Request, recorded: RecordedRequest) -> Response:
        path = recorded.path
        if request.method == "GET" and path.startswith("/file="):
            return await self._file(Path(path.removeprefix("/file=")))
        if request.method == "POST" and path.startswith("/run/"):
            try:
                outputs = await self._event(path.removeprefix("/run/"), recorded.json["data"])
            except _Failed as failed:
                return _json(500, {"error": failed.message})
            return _json(200, {"data": outputs, "is_generating": False, "duration": 0.1})
        if request.method == "POST" and path.startswith("/call/"):
            event_id = uuid.uuid4().hex
            try:
                outputs = await self._event(path.removeprefix("/call/"), recorded.json["data"])
                job = _Job([self._file_data(output) for output in outputs])
            except _Failed as failed:
                job = _Job(None, failed.message)
            self._state.jobs[event_id] = job
            return _json(200, {"event_id": event_id})
        if request.method == "GET" and path.startswith("/call/"):
            job = self._state.jobs.pop(path.rsplit("/", 1)[1])
            if job.outputs is None:
                body = f"event: error\ndata: {json.dumps(job.error)}\n\n"
            else:
                body = f"event: complete\ndata: {json.dumps(job.outputs)}\n\n"
            return Response(200, (("content-type", "text/event-stream"),), body.encode())
        return _json(404, {"detail": "Not Found"})

    def _file_data(self, output: Any) -> Any:
        """A Gradio 3 file value as Gradio 4 sends it: ``path`` and a ``url`` to fetch it."""
        if isinstance(output, dict) and output.get("is_file"):
            name = output["name"]
            return {
                "path": name,
                "url": f"{self.url}/file={name}",
                "orig_name": output["orig_name"],
                "meta": {"_type": "gradio.FileData"},
            }
        return output

    async def _event(self, api_name: str, data: list[Any]) -> list[Any]:
        if api_name == "infer_refresh":
            indexes = [f"logs/{w.removesuffix('.pth')}/added.index" for w in self.weights]
            return [
                {"choices": sorted(self.weights), "__type__": "update"},
                {"choices": indexes, "__type__": "update"},
            ]
        if api_name == "infer_change_voice":
            weights = data[0]
            if weights not in self.weights:
                raise _Failed()  # torch.load: FileNotFoundError; Gradio hides the message
            self._state.loaded = weights
            index = {"value": f"logs/{weights.removesuffix('.pth')}/added.index"}
            update = {"visible": True, "value": data[1], "__type__": "update"}
            return [{"visible": True, "maximum": 1}, update, update, index, index]
        if api_name == "infer_convert":
            return await self._convert(data)
        raise _Failed(f"no event named {api_name}")

    async def _convert(self, data: list[Any]) -> list[Any]:
        self.convert_started.set()
        if self.hold is not None:
            await self.hold.wait()
        if self.status is not None or self._state.loaded is None:
            raise _Failed()
        source = Path(data[1])
        try:
            wav = await trio.to_thread.run_sync(source.read_bytes)
        except OSError:
            raise _Failed() from None  # vc_single's (info, (None, None)) breaks Gradio's Audio
        self.inputs_seen.append(source)
        out = await trio.to_thread.run_sync(_convert_wav, wav)
        target = self.files_dir / uuid.uuid4().hex / "audio.wav"
        await trio.to_thread.run_sync(_write, target, out)
        self.conversions.append((self._state.loaded, data))
        return [
            "Success.\nIndex not used.\nTime:\nnpy: 0.01s, f0: 0.02s, infer: 0.03s.",
            {"name": str(target), "data": None, "is_file": True, "orig_name": "audio.wav"},
        ]

    async def _file(self, path: Path) -> Response:
        if self.files_dir not in path.parents:
            return _json(403, {"detail": "File not allowed"})
        try:
            body = await trio.to_thread.run_sync(path.read_bytes)
        except OSError:
            return _json(404, {"detail": "File not found"})
        return Response(200, (("content-type", "audio/wav"),), body)


def _write(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True)
    target.write_bytes(data)
