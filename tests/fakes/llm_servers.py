"""Fake Ollama and OpenAI-compatible servers: real HTTP on loopback, scripted on trio's clock.

`FakeOllama` speaks Ollama's native API (``POST /api/chat`` streaming NDJSON, ``GET /api/tags``,
``POST /api/show``, ``POST /api/embed``); `FakeOpenAI` speaks the OpenAI API (``POST
/v1/chat/completions`` streaming SSE, ``GET /v1/models``, ``POST /v1/embeddings``). Both run on
`tests.fakes.http.HTTPServer`: ``url = await nursery.start(fake.run)``.

What they answer (attributes; set them before or between requests):

- ``reply``: the reply, as one string (streamed word by word) or a sequence of exact chunks;
  ``responder(messages)``, when set, computes it from the request's messages instead, so a test
  can answer differently depending on what the model was sent.
- ``tokens_per_second``: pace of the chunks on trio's clock (None: as fast as possible).
- ``reasoning``: reasoning streamed first in the separate field (Ollama ``message.thinking``,
  OpenAI ``delta.reasoning_content``), which clients must ignore.
- ``models``: the models the server has; chat or embeddings for another model get the server's
  404 "model not found". Ollama matches ``name`` and ``name:latest`` alike.
- ``context_length`` (``/api/show``, ``max_model_len`` in ``/v1/models``), ``embedding_dim``.
- `FakeOpenAI` only: ``api_key`` (when set, requests without ``Authorization: Bearer <key>`` get
  401) and ``send_usage`` (a ``usage`` chunk before ``[DONE]``).

Fault modes (each stays on until reset):

- ``down = True``: stop listening and close open connections: connects are refused;
- ``slow_first_token = s``: wait ``s`` seconds before the response head and first chunk;
- ``stall_after = (n, s)``: after ``n`` chunks, go quiet for ``s`` seconds;
- ``status = 500`` (any code; ``retry_after`` adds a ``Retry-After`` header): answer every chat
  and embeddings request with that error status and the API's error body;
- ``cut_after = n``: close the connection after ``n`` chunks, without the final chunk (``0``:
  hang up before the response head, like a server that accepts and closes at once);
- ``error_after = (n, "message")``: after ``n`` chunks, send the API's mid-stream error line.

What they record: ``requests`` (every `RecordedRequest`: method, path, headers, raw and parsed
JSON body, arrival time on trio's clock, connection serial), ``streams`` (a `StreamRecord` per
streamed reply: chunks sent, how it ended — ``done``, ``cut``, ``error`` or ``disconnected``
when the client went away — and an ``ended`` event), ``max_concurrent_streams``.

Fixtures (registered in ``tests/conftest.py``): `fake_ollama` and `fake_openai`, running for the
test in its nursery, and `llm_http`, the client `make_llm_http_client` makes (default timeouts,
which run on trio's clock: under MockClock they fire only when a fake stalls).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, ClassVar, Final, Literal

import httpx
import pytest
import trio

from tests.fakes.http import (
    DROP,
    Drop,
    HTTPServer,
    Request,
    Response,
    Send,
    StreamingResponse,
)
from trio_companion.config.model import LLMConfig
from trio_companion.services.llm.factory import make_llm_http_client

__all__ = [
    "FakeOllama",
    "FakeOpenAI",
    "RecordedRequest",
    "Responder",
    "StreamRecord",
    "fake_embedding",
    "fake_ollama",
    "fake_openai",
    "llm_http",
    "split_words",
]

DEFAULT_REPLY: Final = "Hello! How can I help you today?"
_WORDS: Final = re.compile(r"\s+|\S+\s*")
_CREATED_AT: Final = "2024-01-01T00:00:00Z"

Responder = Callable[[list[dict[str, Any]]], str | Sequence[str]]
Outcome = Literal["streaming", "done", "cut", "error", "disconnected"]


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as it crossed the wire; header names are lower-case."""

    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    json: Any  #: the parsed body (None when empty or not JSON)
    arrived_at: float
    connection: int

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((v for k, v in self.headers if k == name), None)


@dataclass(slots=True)
class StreamRecord:
    """One streamed reply, from the server's side."""

    request: RecordedRequest
    chunks_sent: int = 0
    chunk_times: list[float] = field(default_factory=list)  #: trio time each chunk was sent
    outcome: Outcome = "streaming"
    ended: trio.Event = field(default_factory=trio.Event)


def split_words(text: str) -> list[str]:
    """How a string ``reply`` is streamed: words with their trailing whitespace."""
    return _WORDS.findall(text)


def fake_embedding(text: str, dim: int) -> list[float]:
    """The fakes' deterministic embedding of ``text``."""
    digest = hashlib.sha256(text.encode()).digest()
    return [digest[i % len(digest)] / 255 for i in range(dim)]


class _FakeLLMServer:
    """What both fakes share: knobs, records, the HTTP server and the streaming loop."""

    content_type: ClassVar[str]
    chat_path: ClassVar[str]

    def __init__(
        self,
        *,
        models: Sequence[str],
        reply: str | Sequence[str] = DEFAULT_REPLY,
        responder: Responder | None = None,
        tokens_per_second: float | None = None,
    ) -> None:
        self.models = list(models)
        self.reply = reply
        self.responder = responder
        self.tokens_per_second = tokens_per_second
        self.reasoning = ""
        self.context_length = 131_072
        self.embedding_dim = 8
        # fault modes
        self.slow_first_token = 0.0
        self.stall_after: tuple[int, float] | None = None
        self.status: int | None = None
        self.retry_after: float | None = None
        self.cut_after: int | None = None
        self.error_after: tuple[int, str] | None = None
        # records
        self.requests: list[RecordedRequest] = []
        self.streams: list[StreamRecord] = []
        self.max_concurrent_streams = 0
        self._active_streams = 0
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

    @property
    def open_connections(self) -> int:
        return self._server.open_connections

    async def run(self, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled; ``task_status.started(url)`` once listening."""
        async with trio.open_nursery() as nursery:
            await nursery.start(self._server.run)
            task_status.started(self.url)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == path]

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        return self.requests_to(self.chat_path)

    @property
    def chat_bodies(self) -> list[Any]:
        """The parsed JSON of every chat request, in order."""
        return [r.json for r in self.chat_requests]

    # --- for subclasses ---------------------------------------------------------------------

    async def _handle(self, request: Request) -> Response | StreamingResponse | Drop:
        raise NotImplementedError

    def _record(self, request: Request) -> RecordedRequest:
        try:
            parsed = json.loads(request.body) if request.body else None
        except ValueError:
            parsed = None
        recorded = RecordedRequest(
            method=request.method,
            path=request.path,
            headers=request.headers,
            body=request.body,
            json=parsed,
            arrived_at=request.arrived_at,
            connection=request.connection,
        )
        self.requests.append(recorded)
        return recorded

    def _reply_chunks(self, messages: list[dict[str, Any]]) -> list[str]:
        reply = self.responder(messages) if self.responder is not None else self.reply
        return split_words(reply) if isinstance(reply, str) else list(reply)

    def _retry_headers(self) -> tuple[tuple[str, str], ...]:
        if self.retry_after is None:
            return ()
        return (("retry-after", f"{self.retry_after:g}"),)

    def _streaming(
        self,
        recorded: RecordedRequest,
        *,
        reasoning: list[bytes],
        chunks: list[bytes],
        error: Callable[[str], bytes],
        final: bytes,
    ) -> StreamingResponse:
        return StreamingResponse(
            200,
            (("content-type", self.content_type),),
            partial(self._stream, recorded, reasoning, chunks, error, final),
        )

    async def _stream(
        self,
        recorded: RecordedRequest,
        reasoning: list[bytes],
        chunks: list[bytes],
        error: Callable[[str], bytes],
        final: bytes,
        send: Send,
    ) -> Drop | None:
        record = StreamRecord(recorded)
        self.streams.append(record)
        self._active_streams += 1
        self.max_concurrent_streams = max(self.max_concurrent_streams, self._active_streams)
        try:
            if self.slow_first_token:
                await trio.sleep(self.slow_first_token)
            for line in reasoning:
                await send(line)
            for index, line in enumerate(chunks):
                if self.stall_after is not None and index == self.stall_after[0]:
                    await trio.sleep(self.stall_after[1])
                if self.cut_after is not None and index == self.cut_after:
                    record.outcome = "cut"
                    return DROP
                if self.error_after is not None and index == self.error_after[0]:
                    await send(error(self.error_after[1]))
                    record.outcome = "error"
                    return None
                if index and self.tokens_per_second:
                    await trio.sleep(1 / self.tokens_per_second)
                await send(line)
                record.chunks_sent += 1
                record.chunk_times.append(trio.current_time())
            if self.cut_after is not None and self.cut_after >= len(chunks):
                record.outcome = "cut"
                return DROP
            await send(final)
            record.outcome = "done"
            return None
        finally:
            if record.outcome == "streaming":
                record.outcome = "disconnected"  # cancelled or broken: the client went away
            self._active_streams -= 1
            record.ended.set()

    def _generation_seconds(self, chunks: int) -> float:
        return chunks / self.tokens_per_second if self.tokens_per_second else chunks * 0.01


def _json(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


class FakeOllama(_FakeLLMServer):
    """Ollama's native API; see the module docstring for the knobs."""

    content_type = "application/x-ndjson"
    chat_path = "/api/chat"

    def __init__(
        self,
        *,
        models: Sequence[str] = ("llama3.2:latest", "nomic-embed-text:latest"),
        reply: str | Sequence[str] = DEFAULT_REPLY,
        responder: Responder | None = None,
        tokens_per_second: float | None = None,
    ) -> None:
        super().__init__(
            models=models, reply=reply, responder=responder, tokens_per_second=tokens_per_second
        )

    def has_model(self, name: str) -> bool:
        full = name if ":" in name else f"{name}:latest"
        return full in self.models or name in self.models

    async def _handle(self, request: Request) -> Response | StreamingResponse | Drop:
        recorded = self._record(request)
        route = (request.method, request.path)
        if route == ("GET", "/api/tags"):
            return _ok({"models": [{"name": m, "model": m, "size": 1} for m in self.models]})
        body = recorded.json if isinstance(recorded.json, dict) else {}
        if route == ("POST", "/api/show"):
            return self._show(body)
        if route == ("POST", "/api/embed"):
            return self._embed(body)
        if route == ("POST", "/api/chat"):
            return self._chat(recorded, body)
        return Response(404, (("content-type", "text/plain"),), b"404 page not found")

    def _error(self, status: int, message: str) -> Response:
        return Response(
            status,
            (("content-type", "application/json"), *self._retry_headers()),
            _json({"error": message}),
        )

    def _missing(self, model: str) -> Response:
        return self._error(404, f'model "{model}" not found, try pulling it first')

    def _show(self, body: dict[str, Any]) -> Response:
        model = str(body.get("model", ""))
        if not self.has_model(model):
            return self._error(404, f"model '{model}' not found")
        info = {"general.architecture": "llama", "llama.context_length": self.context_length}
        return _ok({"details": {"family": "llama"}, "model_info": info})

    def _embed(self, body: dict[str, Any]) -> Response:
        if self.status is not None:
            return self._error(self.status, "fake failure")
        model = str(body.get("model", ""))
        if not self.has_model(model):
            return self._missing(model)
        texts = body.get("input", [])
        texts = [texts] if isinstance(texts, str) else texts
        vectors = [fake_embedding(t, self.embedding_dim) for t in texts]
        return _ok({"model": model, "embeddings": vectors})

    def _chat(
        self, recorded: RecordedRequest, body: dict[str, Any]
    ) -> Response | StreamingResponse:
        if self.status is not None:
            return self._error(self.status, "fake failure")
        model = str(body.get("model", ""))
        if not self.has_model(model):
            return self._missing(model)
        pieces = self._reply_chunks(list(body.get("messages", [])))

        def line(content: str = "", **extra: Any) -> bytes:
            message = {"role": "assistant", "content": content, **extra}
            data = {"model": model, "created_at": _CREATED_AT, "message": message, "done": False}
            return _json(data) + b"\n"

        final = {
            "model": model,
            "created_at": _CREATED_AT,
            "message": {"role": "assistant", "content": ""},
            "done": True,
            "done_reason": "stop",
            "total_duration": 1,
            "prompt_eval_count": len(json.dumps(body.get("messages", []))) // 4,
            "eval_count": len(pieces),
            "eval_duration": int(self._generation_seconds(len(pieces)) * 1e9),
        }
        return self._streaming(
            recorded,
            reasoning=[line(thinking=t) for t in split_words(self.reasoning)],
            chunks=[line(p) for p in pieces],
            error=lambda message: _json({"error": message}) + b"\n",
            final=_json(final) + b"\n",
        )


class FakeOpenAI(_FakeLLMServer):
    """An OpenAI-compatible API under ``/v1``; see the module docstring for the knobs."""

    content_type = "text/event-stream"
    chat_path = "/v1/chat/completions"

    def __init__(
        self,
        *,
        models: Sequence[str] = ("qwen2.5-7b-instruct", "text-embedding-3-small"),
        reply: str | Sequence[str] = DEFAULT_REPLY,
        responder: Responder | None = None,
        tokens_per_second: float | None = None,
        api_key: str | None = None,
    ) -> None:
        super().__init__(
            models=models, reply=reply, responder=responder, tokens_per_second=tokens_per_second
        )
        self.api_key = api_key
        self.send_usage = False

    async def _handle(self, request: Request) -> Response | StreamingResponse | Drop:
        recorded = self._record(request)
        if self.api_key is not None and request.header("authorization") != (
            f"Bearer {self.api_key}"
        ):
            return self._error(
                401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key"
            )
        route = (request.method, request.path)
        if route == ("GET", "/v1/models"):
            data = [
                {
                    "id": m,
                    "object": "model",
                    "owned_by": "fake",
                    "max_model_len": self.context_length,
                }
                for m in self.models
            ]
            return _ok({"object": "list", "data": data})
        body = recorded.json if isinstance(recorded.json, dict) else {}
        if route == ("POST", "/v1/embeddings"):
            return self._embed(body)
        if route == ("POST", "/v1/chat/completions"):
            return self._chat(recorded, body)
        return self._error(404, f"Unknown route {request.path}", "invalid_request_error", None)

    def _error(self, status: int, message: str, kind: str, code: str | int | None) -> Response:
        error = {"message": message, "type": kind, "param": None, "code": code}
        return Response(
            status,
            (("content-type", "application/json"), *self._retry_headers()),
            _json({"error": error}),
        )

    def _fault(self) -> Response | None:
        if self.status is None:
            return None
        return self._error(self.status, "fake failure", "server_error", self.status)

    def _missing(self, model: str) -> Response:
        message = f"The model `{model}` does not exist or you do not have access to it."
        return self._error(404, message, "invalid_request_error", "model_not_found")

    def _embed(self, body: dict[str, Any]) -> Response:
        if (fault := self._fault()) is not None:
            return fault
        model = str(body.get("model", ""))
        if model not in self.models:
            return self._missing(model)
        texts = body.get("input", [])
        texts = [texts] if isinstance(texts, str) else texts
        data = [
            {"object": "embedding", "index": i, "embedding": fake_embedding(t, self.embedding_dim)}
            for i, t in enumerate(texts)
        ]
        data.reverse()  # clients must order by "index", not by position
        return _ok({"object": "list", "data": data, "model": model})

    def _chat(
        self, recorded: RecordedRequest, body: dict[str, Any]
    ) -> Response | StreamingResponse:
        if (fault := self._fault()) is not None:
            return fault
        model = str(body.get("model", ""))
        if model not in self.models:
            return self._missing(model)
        pieces = self._reply_chunks(list(body.get("messages", [])))

        def event(choices: list[Any], **extra: Any) -> bytes:
            data = {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": 1_700_000_000,
                "model": model,
                "choices": choices,
                **extra,
            }
            return b"data: " + _json(data) + b"\n\n"

        def delta(**fields: Any) -> bytes:
            return event([{"index": 0, "delta": fields, "finish_reason": None}])

        final = event([{"index": 0, "delta": {}, "finish_reason": "stop"}])
        if self.send_usage:
            usage = {"prompt_tokens": 10, "completion_tokens": len(pieces), "total_tokens": 0}
            final += event([], usage=usage)
        error = {"message": "", "type": "server_error", "code": 500}
        return self._streaming(
            recorded,
            reasoning=[delta(reasoning_content=t) for t in split_words(self.reasoning)],
            chunks=[delta(content=p) for p in pieces],
            error=lambda m: b"data: " + _json({"error": {**error, "message": m}}) + b"\n\n",
            final=final + b"data: [DONE]\n\n",
        )


def _ok(data: Any) -> Response:
    return Response(200, (("content-type", "application/json"),), _json(data))


# --- fixtures (registered in tests/conftest.py) ----------------------------------------------


@pytest.fixture
async def fake_ollama(nursery: trio.Nursery) -> FakeOllama:
    """A running `FakeOllama` for the test's lifetime (stopped with its nursery)."""
    fake = FakeOllama()
    await nursery.start(fake.run)
    return fake


@pytest.fixture
async def fake_openai(nursery: trio.Nursery) -> FakeOpenAI:
    """A running `FakeOpenAI` for the test's lifetime (stopped with its nursery)."""
    fake = FakeOpenAI()
    await nursery.start(fake.run)
    return fake


@pytest.fixture
async def llm_http() -> AsyncIterator[httpx.AsyncClient]:
    """The client the app makes for the LLM (`make_llm_http_client`) with default timeouts."""
    async with make_llm_http_client(LLMConfig()) as client:
        yield client
