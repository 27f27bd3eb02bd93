"""`LLMBackend` on Ollama's native API: ``/api/chat``, ``/api/tags``, ``/api/show``, ``/api/embed``.

Theory of operation
-------------------
``stream_chat`` POSTs ``{model, messages, stream: true, options, keep_alive}`` to ``/api/chat``.
Every sampling option is sent explicitly, ``num_ctx`` included: Ollama's own default context is
small and would silently cut the history off. Ollama answers with NDJSON, one object per line:
``{"message": {"content": "..."}, "done": false}`` for each token, and a last line with
``"done": true`` and the generation counters (``eval_count`` tokens in ``eval_duration``
nanoseconds) that feed `LLMStatistics.average_tokens_per_second`. An error after the head comes
as a line ``{"error": "..."}``; a missing model is a 404 ``{"error": "model \"x\" not found"}``.
Reasoning that Ollama puts in ``message.thinking`` is ignored; ``<think>`` blocks inside the
content are removed by `ThinkingFilter` when ``strip_thinking`` is on.

``keep_alive`` comes from the config as text (``"5m"``, ``"0"``, ``"-1"``). Ollama parses a JSON
*string* with Go's ``time.ParseDuration``, which rejects a bare ``"-1"`` (no unit), so a number
without a unit is sent as a JSON number of seconds, which Ollama accepts (negative: forever).

HTTP, streaming, limits and error mapping are shared with the OpenAI backend (``_common``).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, Final, final

import httpx
import msgspec
import trio

from trio_companion.services.llm._common import (
    Chunk,
    Exchange,
    LLMStatistics,
    Recorder,
    decode_body,
    stream_reply,
)
from trio_companion.services.llm.base import ChatMessage, GenerationOptions, ModelInfo
from trio_companion.services.llm.errors import LLMError, LLMHTTPError
from trio_companion.services.llm.limits import LLMLimits

__all__ = ["OllamaBackend"]

_NANOSECONDS: Final = 1e9  # Ollama reports durations in nanoseconds (api/types.go)
_BARE_NUMBER: Final = re.compile(r"^-?\d+$")
# /api/show requests at once while listing models: a handful is plenty for a local server.
_SHOW_CONCURRENCY: Final = 4


class _Options(msgspec.Struct, frozen=True, kw_only=True):
    temperature: float
    top_k: int
    top_p: float
    min_p: float
    repeat_penalty: float
    num_predict: int
    num_ctx: int


class _ChatRequest(msgspec.Struct, frozen=True, kw_only=True):
    model: str
    messages: Sequence[ChatMessage]
    stream: bool
    options: _Options
    keep_alive: int | str


class _Message(msgspec.Struct, frozen=True):
    content: str = ""  # role and thinking are ignored


class _ChatChunk(msgspec.Struct, frozen=True):
    message: _Message | None = None
    done: bool = False
    error: str | None = None
    eval_count: int | None = None
    eval_duration: int | None = None


class _TagModel(msgspec.Struct, frozen=True):
    name: str


class _Tags(msgspec.Struct, frozen=True):
    models: list[_TagModel] = msgspec.field(default_factory=list)


class _ShowRequest(msgspec.Struct, frozen=True):
    model: str


class _Show(msgspec.Struct, frozen=True):
    model_info: dict[str, Any] = msgspec.field(default_factory=dict)


class _EmbedRequest(msgspec.Struct, frozen=True, kw_only=True):
    model: str
    input: Sequence[str]
    keep_alive: int | str


class _Embeddings(msgspec.Struct, frozen=True):
    embeddings: list[list[float]]


_chunk_decoder: Final = msgspec.json.Decoder(_ChatChunk)
_tags_decoder: Final = msgspec.json.Decoder(_Tags)
_show_decoder: Final = msgspec.json.Decoder(_Show)
_embed_decoder: Final = msgspec.json.Decoder(_Embeddings)


@final
class OllamaBackend:
    """Chat, model listing and embeddings on an Ollama server at ``url``.

    ``http`` carries the timeouts (see `trio_companion.services.llm.factory`); ``limits`` is
    shared with every other LLM caller. Safe to share between tasks.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        url: str,
        model: str,
        keep_alive: str,
        limits: LLMLimits,
        strip_thinking: bool = True,
    ) -> None:
        self._exchange = Exchange(http, base_url=url, provider="ollama")
        self._model = model
        self._keep_alive = keep_alive_value(keep_alive)
        self._limits = limits
        self._strip_thinking = strip_thinking
        self._recorder = Recorder("ollama", model)

    @property
    def model(self) -> str:
        return self._model

    @asynccontextmanager
    async def stream_chat(
        self, messages: Sequence[ChatMessage], options: GenerationOptions
    ) -> AsyncIterator[AsyncIterator[str]]:
        """Stream the reply to ``messages``; see `LLMBackend.stream_chat`.

        Waits for a `LLMLimits` slot first (put a deadline around the call). Raises
        `LLMUnreachable`, `ModelNotFound`, `LLMBusy`, `LLMHTTPError` or `LLMTimeout` on entry,
        and `LLMStreamCut`, `LLMTimeout` or `LLMHTTPError` while iterating. Leaving the block
        early, or being cancelled, closes the connection: Ollama stops generating.
        """
        request = _ChatRequest(
            model=self._model,
            messages=messages,
            stream=True,
            options=_Options(
                temperature=options.temperature,
                top_k=options.top_k,
                top_p=options.top_p,
                min_p=options.min_p,
                repeat_penalty=options.repeat_penalty,
                num_predict=options.num_predict,
                num_ctx=options.num_ctx,
            ),
            keep_alive=self._keep_alive,
        )
        async with stream_reply(
            self._exchange,
            self._limits,
            self._recorder,
            path="/api/chat",
            payload=msgspec.json.encode(request),
            parse_line=_parse_line,
            strip_thinking=self._strip_thinking,
        ) as pieces:
            yield pieces

    async def complete(self, messages: Sequence[ChatMessage], options: GenerationOptions) -> str:
        """The whole reply (the streamed pieces joined); raises as `stream_chat` does."""
        async with self.stream_chat(messages, options) as pieces:
            return "".join([piece async for piece in pieces])

    async def list_models(self) -> list[ModelInfo]:
        """The installed models, with their context length when ``/api/show`` gives it.

        Does not take a `LLMLimits` slot: listing is cheap and must work while replies stream.
        Raises `LLMUnreachable`, `LLMTimeout` or `LLMHTTPError`.
        """
        body = await self._exchange.request("GET", "/api/tags", model=self._model)
        tags = decode_body(_tags_decoder, body)
        infos: list[ModelInfo] = [ModelInfo(name=tag.name) for tag in tags.models]
        limiter = trio.CapacityLimiter(_SHOW_CONCURRENCY)

        async def fill(index: int) -> None:
            async with limiter:
                # A model whose details fail is still worth listing, without its context length.
                with contextlib.suppress(LLMError):
                    infos[index] = await self.show(infos[index].name)

        async with trio.open_nursery() as nursery:
            for index in range(len(infos)):
                nursery.start_soon(fill, index)
        return infos

    async def show(self, name: str | None = None) -> ModelInfo:
        """One model's details (``/api/show``); the configured model by default.

        Raises `ModelNotFound` when Ollama does not have it.
        """
        name = name or self._model
        payload = msgspec.json.encode(_ShowRequest(model=name))
        body = await self._exchange.request("POST", "/api/show", payload, model=name)
        show = decode_body(_show_decoder, body)
        context_length = next(
            (
                value
                for key, value in show.model_info.items()
                if key.endswith(".context_length") and isinstance(value, int)
            ),
            None,
        )
        return ModelInfo(name=name, context_length=context_length)

    async def embed(self, texts: Sequence[str], *, model: str) -> list[list[float]]:
        """One embedding vector per text, from ``model`` (``/api/embed``).

        Takes a `LLMLimits` slot. Raises `ModelNotFound` when Ollama does not have ``model``,
        and the connection errors of `list_models`.
        """
        if not texts:
            return []
        payload = msgspec.json.encode(
            _EmbedRequest(model=model, input=texts, keep_alive=self._keep_alive)
        )
        async with self._limits.slot():
            self._recorder.requests += 1
            try:
                body = await self._exchange.request("POST", "/api/embed", payload, model=model)
                vectors = decode_body(_embed_decoder, body).embeddings
                if len(vectors) != len(texts):
                    raise LLMHTTPError(200, f"{len(vectors)} embeddings for {len(texts)} texts")
            except LLMError:
                self._recorder.failures += 1
                raise
        return vectors

    def statistics(self) -> LLMStatistics:
        return self._recorder.snapshot()


def keep_alive_value(keep_alive: str) -> int | str:
    """``keep_alive`` as Ollama accepts it: a bare number of seconds as a JSON number."""
    return int(keep_alive) if _BARE_NUMBER.match(keep_alive) else keep_alive


def _parse_line(line: str) -> Chunk | None:
    if not line.strip():
        return None
    chunk = _chunk_decoder.decode(line)
    if chunk.error is not None:
        return Chunk(error=chunk.error)
    text = chunk.message.content if chunk.message is not None else ""
    if not chunk.done:
        return Chunk(text=text)
    seconds = chunk.eval_duration / _NANOSECONDS if chunk.eval_duration else None
    return Chunk(text=text, done=True, tokens=chunk.eval_count, seconds=seconds)
