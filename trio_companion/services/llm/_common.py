"""What the Ollama and OpenAI-compatible backends share: one HTTP exchange, one reply stream.

Theory of operation
-------------------
A backend turns a chat request into a payload and each line of the streamed body into a `Chunk`;
everything else is here, once:

- `Exchange` sends requests on the injected ``httpx.AsyncClient`` and maps every failure to an
  `LLMError`. Before a response head: a failed or timed-out connect, or a server that hangs up,
  is `LLMUnreachable`; any other timeout (the wait for the head, i.e. for model loading and the
  first token) is `LLMTimeout`. A non-2xx head becomes `LLMBusy` (429/503), `ModelNotFound` (404
  whose JSON error names a model) or `LLMHTTPError`.
- `stream_reply` holds a `LLMLimits` slot for the whole stream, opens the response, and yields an
  async generator of visible text. The generator reads ``response.aiter_lines()`` and parses each
  line as it comes, feeds the text through `ThinkingFilter`, and ends only after the backend's
  final chunk; a body that ends (or a connection that breaks) before it is `LLMStreamCut`, a read
  timeout between chunks is `LLMTimeout`, an error line is `LLMHTTPError`.
- Leaving the ``async with`` (normally, on an error, or cancelled) closes the generator and then
  the response: httpx closes a connection whose body was not read to the end, so the server sees
  the client go away and stops generating.

Statistics (`LLMStatistics`) are counted here too, so both backends report the same numbers.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Final, TypeVar, final

import httpx
import msgspec
import trio

from trio_companion.services.llm.errors import (
    LLMBusy,
    LLMError,
    LLMHTTPError,
    LLMStreamCut,
    LLMTimeout,
    LLMUnreachable,
    ModelNotFound,
)
from trio_companion.services.llm.limits import LLMLimits
from trio_companion.services.llm.thinking import ThinkingFilter

__all__ = ["Chunk", "Exchange", "LLMStatistics", "Recorder", "decode_body", "stream_reply"]

_T = TypeVar("_T")

_JSON: Final = {"content-type": "application/json"}
# RFC 9110 15.5.30 / 15.6.4: "too many requests" and "service unavailable" both mean "later";
# Ollama answers 503 when its request queue (OLLAMA_MAX_QUEUE) is full.
_BUSY_STATUSES: Final = frozenset({429, 503})
# Bound on the shielded cleanup of a stream (STYLE.md 14); it takes no time unless a bug hangs it.
_CLEANUP_GRACE: Final = 5.0


@dataclass(frozen=True, slots=True)
class LLMStatistics:
    """A backend's counters since it was made (for ``/status`` and the benchmarks)."""

    provider: str
    model: str
    requests: int  #: chat and embedding requests sent (model listings are not counted)
    failures: int  #: of those, ended by an `LLMError`
    streaming: int  #: replies being streamed right now
    last_first_token_latency: float | None  #: seconds from sending to the first content token
    average_tokens_per_second: float | None  #: over replies whose server reported token counts
    generated_tokens: int  #: tokens the server reported generating


@final
class Recorder:
    """The mutable counters behind `LLMStatistics`."""

    def __init__(self, provider: str, model: str) -> None:
        self.provider = provider
        self.model = model
        self.requests = 0
        self.failures = 0
        self.streaming = 0
        self.last_first_token_latency: float | None = None
        self.tokens = 0
        self.token_seconds = 0.0

    def add_generation(self, tokens: int, seconds: float) -> None:
        if tokens > 0 and seconds > 0:
            self.tokens += tokens
            self.token_seconds += seconds

    def snapshot(self) -> LLMStatistics:
        return LLMStatistics(
            provider=self.provider,
            model=self.model,
            requests=self.requests,
            failures=self.failures,
            streaming=self.streaming,
            last_first_token_latency=self.last_first_token_latency,
            average_tokens_per_second=(
                self.tokens / self.token_seconds if self.token_seconds > 0 else None
            ),
            generated_tokens=self.tokens,
        )


@dataclass(frozen=True, slots=True)
class Chunk:
    """One parsed line of a streamed reply."""

    text: str = ""
    finished: bool = False  #: the reply is complete (more lines may still follow)
    done: bool = False  #: the final line: ignore whatever follows
    error: str | None = None  #: the server reported an error instead of text
    tokens: int | None = None  #: tokens generated, when the server says so
    seconds: float | None = None  #: time it spent generating them, when it says so


ParseLine = Callable[[str], Chunk | None]


@final
class Exchange:
    """Requests to one server on the injected client, with failures mapped to `LLMError`."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        provider: str,
        headers: Mapping[str, str] | None = None,
        secret: str = "",
    ) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.provider = provider
        self._headers = {**_JSON, **(headers or {})}
        self._secret = secret

    def redact(self, text: str) -> str:
        """``text`` with the API key replaced, should the server echo it back."""
        return text.replace(self._secret, "[redacted]") if self._secret else text

    @asynccontextmanager
    async def open_stream(
        self, path: str, payload: bytes, *, model: str
    ) -> AsyncIterator[httpx.Response]:
        """POST ``payload`` and yield the streaming response once its head says 2xx."""
        request = self._build("POST", path, payload)
        try:
            response = await self.http.send(request, stream=True)
        except httpx.TransportError as exc:
            raise self._before_response(exc) from None
        try:
            if not response.is_success:
                try:
                    body = await response.aread()
                except httpx.TransportError:
                    body = b""
                raise self.status_error(response, body, model=model)
            yield response
        finally:
            await response.aclose()

    async def request(
        self, method: str, path: str, payload: bytes | None = None, *, model: str
    ) -> bytes:
        """Send a small request and return its body; ``model`` names the model a 404 is about."""
        try:
            response = await self.http.send(self._build(method, path, payload))
        except httpx.TransportError as exc:
            raise self._before_response(exc) from None
        if not response.is_success:
            raise self.status_error(response, response.content, model=model)
        return response.content

    def _build(self, method: str, path: str, payload: bytes | None) -> httpx.Request:
        request = self.http.build_request(
            method, self.base_url + path, content=payload, headers=self._headers
        )
        request.stream = _Payload(payload or b"")  # see _Payload
        return request

    def status_error(self, response: httpx.Response, body: bytes, *, model: str) -> LLMError:
        status = response.status_code
        detail, from_json = _error_detail(body)
        detail = self.redact(detail or response.reason_phrase)
        if status in _BUSY_STATUSES:
            return LLMBusy(_retry_after(response.headers.get("retry-after")))
        if status == 404 and from_json and "model" in detail.lower():
            return ModelNotFound(model, self.provider)
        return LLMHTTPError(status, detail)

    def _before_response(self, exc: httpx.TransportError) -> LLMError:
        if isinstance(exc, httpx.TimeoutException) and not isinstance(exc, httpx.ConnectTimeout):
            return LLMTimeout(0)
        return LLMUnreachable(self.base_url, provider=self.provider)


@final
class _Payload(httpx.AsyncByteStream):
    """A request body that is not an async generator.

    httpx wraps ``content=bytes`` in a stream whose ``__aiter__`` is an async generator; when
    sending fails half-way (a pooled connection the server has just closed) it is abandoned, and
    trio reports that as a ResourceWarning (encode/httpx#3686). This one iterates with a plain
    object. ``build_request`` has already set Content-Length from the same bytes.
    """

    def __init__(self, data: bytes) -> None:
        self._data = data

    def __aiter__(self) -> AsyncIterator[bytes]:
        return _Once(self._data)


@final
class _Once:
    def __init__(self, data: bytes) -> None:
        self._data: bytes | None = data

    def __aiter__(self) -> _Once:
        return self

    async def __anext__(self) -> bytes:
        if self._data is None:
            raise StopAsyncIteration
        data, self._data = self._data, None
        return data


@asynccontextmanager
async def stream_reply(
    exchange: Exchange,
    limits: LLMLimits,
    recorder: Recorder,
    *,
    path: str,
    payload: bytes,
    parse_line: ParseLine,
    strip_thinking: bool,
) -> AsyncIterator[AsyncIterator[str]]:
    """The body of every backend's ``stream_chat``; see the module docstring."""
    async with limits.slot():
        recorder.requests += 1
        recorder.streaming += 1
        opened = False
        try:
            sent_at = trio.current_time()
            async with exchange.open_stream(path, payload, model=recorder.model) as response:
                opened = True
                reply = _Reply(
                    parse_line,
                    ThinkingFilter() if strip_thinking else None,
                    exchange,
                    recorder,
                    status=response.status_code,
                    sent_at=sent_at,
                )
                pieces = _pieces(response, reply, recorder)
                try:
                    yield pieces
                finally:
                    await pieces.aclose()
        except LLMError:
            if not opened:  # errors of the stream itself were counted by _pieces
                recorder.failures += 1
            raise
        finally:
            recorder.streaming -= 1


@final
class _Reply:
    """The state of one streamed reply, fed one body line at a time (no I/O)."""

    def __init__(
        self,
        parse_line: ParseLine,
        thinking: ThinkingFilter | None,
        exchange: Exchange,
        recorder: Recorder,
        *,
        status: int,
        sent_at: float,
    ) -> None:
        self._parse_line = parse_line
        self._thinking = thinking
        self._exchange = exchange
        self._recorder = recorder
        self._status = status
        self._sent_at = sent_at
        self._first_token_at: float | None = None
        self.delivered = 0  #: visible characters returned so far
        self.finished = False  #: the final chunk (or a finish reason) has arrived
        self.done = False  #: the final chunk has arrived: ignore the rest

    def take(self, line: str) -> str:
        """The visible text of ``line``; raises `LLMHTTPError` for an error or a garbled line.

        Lines after the final chunk are ignored: the body is still read to its end, so that the
        connection can be reused.
        """
        if self.done:
            return ""
        try:
            chunk = self._parse_line(line)
        except msgspec.DecodeError:
            raise self._error("its reply was not in the expected format") from None
        if chunk is None:
            return ""
        if chunk.error is not None:
            raise self._error(self._exchange.redact(chunk.error))
        visible = ""
        if chunk.text:
            now = trio.current_time()
            if self._first_token_at is None:
                self._first_token_at = now
                self._recorder.last_first_token_latency = now - self._sent_at
            visible = self._thinking.feed(chunk.text) if self._thinking else chunk.text
        if chunk.tokens is not None:
            seconds = chunk.seconds
            if seconds is None and self._first_token_at is not None:
                seconds = trio.current_time() - self._first_token_at
            self._recorder.add_generation(chunk.tokens, seconds or 0.0)
        self.finished = self.finished or chunk.finished or chunk.done
        self.done = chunk.done
        self.delivered += len(visible)
        return visible

    def end(self) -> str:
        """The body ended: the text held back; `LLMStreamCut` if the reply never finished."""
        if not self.finished:
            raise LLMStreamCut(self.delivered)
        tail = self._thinking.finish() if self._thinking else ""
        self.delivered += len(tail)
        return tail

    def _error(self, detail: str) -> LLMHTTPError:
        return LLMHTTPError(self._status, detail, received_chars=self.delivered)


async def _pieces(
    response: httpx.Response, reply: _Reply, recorder: Recorder
) -> AsyncGenerator[str, None]:
    lines = response.aiter_lines()
    try:
        try:
            async for line in lines:
                if visible := reply.take(line):
                    yield visible
        except httpx.TimeoutException:
            if not reply.finished:
                raise LLMTimeout(reply.delivered) from None
        except httpx.TransportError:
            if not reply.finished:
                raise LLMStreamCut(reply.delivered) from None
        finally:
            await _unwind(response, lines)
        if tail := reply.end():
            yield tail
    except LLMError:
        recorder.failures += 1
        raise


async def _unwind(response: httpx.Response, lines: AsyncIterator[str]) -> None:
    """Close ``response`` and finish every layer of httpx's iterator chain.

    ``aiter_lines`` sits on seven nested async generators (httpx's and httpcore's). Closing the
    outer one alone would leave the inner ones suspended for the garbage collector, which trio
    reports as a ResourceWarning per generator (encode/httpx#3686). So: close the response
    (httpx drops a connection whose body was not read to the end), then pull once more. The
    innermost read then fails on the closed socket, and that error unwinds every layer. Only
    data already buffered can come first, so this ends at once; it is shielded so that it also
    runs when we are here because of a cancellation.
    """
    with trio.move_on_after(_CLEANUP_GRACE, shield=True):
        await response.aclose()
        with contextlib.suppress(StopAsyncIteration, httpx.HTTPError):
            while True:
                await anext(lines)


def decode_body(decoder: msgspec.json.Decoder[_T], body: bytes) -> _T:
    """``body`` decoded, or `LLMHTTPError` when it is not the JSON the API documents."""
    try:
        return decoder.decode(body)
    except msgspec.DecodeError:
        raise LLMHTTPError(200, "its reply was not in the expected format") from None


def _error_detail(body: bytes) -> tuple[str, bool]:
    """The server's explanation in an error body, and whether it came from a JSON error field.

    Understands Ollama's ``{"error": "..."}``, OpenAI's ``{"error": {"message": ...}}``, vLLM's
    ``{"message": ...}`` and FastAPI's ``{"detail": "..."}``; falls back to the body as text.
    """
    try:
        data: Any = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return body.decode("utf-8", "replace").strip(), False
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict):
            error = error.get("message")
        for value in (error, data.get("message"), data.get("detail")):
            if isinstance(value, str) and value:
                return value, True
    return body.decode("utf-8", "replace").strip(), False


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header in its delay-seconds form; None otherwise."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None
