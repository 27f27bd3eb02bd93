"""`LLMBackend` on an OpenAI-compatible server (llama.cpp, vLLM, LM Studio, OpenAI itself…).

Theory of operation
-------------------
``stream_chat`` POSTs ``{model, messages, stream: true, temperature, top_p, max_tokens}`` to
``/chat/completions`` under the base URL, with ``Authorization: Bearer <api_key>`` only when a
key is configured. ``max_tokens`` is left out for ``num_predict == -1`` ("no limit"). Only the
parameters of OpenAI's own API are sent: OpenAI rejects unknown ones such as ``top_k``, and the
context size of a compatible server is fixed when it starts, so ``top_k``, ``min_p``,
``repeat_penalty`` and ``num_ctx`` apply to Ollama only.

The reply is Server-Sent Events: ``data: {"choices": [{"delta": {"content": "..."},
"finish_reason": null}]}`` lines, a chunk whose ``finish_reason`` is set, possibly a ``usage``
chunk, then ``data: [DONE]``. Each ``data:`` line is one JSON object, as every compatible
server sends them; comment lines (``: keep-alive``) and other fields are skipped. A stream that
ends after a finish reason but without ``[DONE]`` is accepted (the reply is whole); one that ends
before both is `LLMStreamCut`. Servers that report an error mid-stream send ``data: {"error":
{"message": ...}}``. Reasoning in ``delta.reasoning_content`` (or ``reasoning``) is ignored;
``<think>`` blocks in the content are removed by `ThinkingFilter`.

The base URL is ``url`` as configured when it has a path (``https://api.openai.com/v1``,
``http://host:8080/v1``, ``…/v1beta/openai``); a bare ``http://host:port`` gets ``/v1``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Final, final
from urllib.parse import urlsplit

import httpx
import msgspec

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

__all__ = ["OpenAICompatibleBackend", "base_url"]

_DONE: Final = "[DONE]"  # the SSE data of the last event (OpenAI API reference, streaming)


class _ChatRequest(msgspec.Struct, frozen=True, kw_only=True):
    model: str
    messages: Sequence[ChatMessage]
    stream: bool
    temperature: float
    top_p: float
    max_tokens: int | msgspec.UnsetType = msgspec.UNSET


class _Delta(msgspec.Struct, frozen=True):
    content: str | None = None  # reasoning_content / reasoning are ignored


class _Choice(msgspec.Struct, frozen=True):
    delta: _Delta | None = None
    finish_reason: str | None = None


class _Usage(msgspec.Struct, frozen=True):
    completion_tokens: int | None = None


class _Error(msgspec.Struct, frozen=True):
    message: str = ""


class _ChatChunk(msgspec.Struct, frozen=True):
    choices: list[_Choice] = msgspec.field(default_factory=list)
    usage: _Usage | None = None
    error: _Error | str | None = None


class _Model(msgspec.Struct, frozen=True):
    id: str
    # Not in OpenAI's API; vLLM and some others say how long the context is.
    max_model_len: int | None = None
    context_length: int | None = None


class _Models(msgspec.Struct, frozen=True):
    data: list[_Model] = msgspec.field(default_factory=list)


class _EmbedRequest(msgspec.Struct, frozen=True, kw_only=True):
    model: str
    input: Sequence[str]


class _Embedding(msgspec.Struct, frozen=True):
    embedding: list[float]
    index: int = 0


class _Embeddings(msgspec.Struct, frozen=True):
    data: list[_Embedding]


_chunk_decoder: Final = msgspec.json.Decoder(_ChatChunk)
_models_decoder: Final = msgspec.json.Decoder(_Models)
_embed_decoder: Final = msgspec.json.Decoder(_Embeddings)


def base_url(url: str) -> str:
    """The API base for ``url``: as given when it has a path, else with ``/v1`` appended."""
    url = url.rstrip("/")
    return url if urlsplit(url).path else url + "/v1"


@final
class OpenAICompatibleBackend:
    """Chat, model listing and embeddings on an OpenAI-compatible server at ``url``.

    ``http`` carries the timeouts (see `trio_companion.services.llm.factory`); ``limits`` is
    shared with every other LLM caller. ``api_key`` is sent as a Bearer token when not empty and
    never appears in an error. Safe to share between tasks.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        url: str,
        model: str,
        api_key: str,
        limits: LLMLimits,
        strip_thinking: bool = True,
    ) -> None:
        headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._exchange = Exchange(
            http, base_url=base_url(url), provider="openai", headers=headers, secret=api_key
        )
        self._model = model
        self._limits = limits
        self._strip_thinking = strip_thinking
        self._recorder = Recorder("openai", model)

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
        early, or being cancelled, closes the connection.
        """
        request = _ChatRequest(
            model=self._model,
            messages=messages,
            stream=True,
            temperature=options.temperature,
            top_p=options.top_p,
            max_tokens=msgspec.UNSET if options.num_predict < 0 else options.num_predict,
        )
        async with stream_reply(
            self._exchange,
            self._limits,
            self._recorder,
            path="/chat/completions",
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
        """The server's models (``/models``); the context length when the server says it.

        Does not take a `LLMLimits` slot. Raises `LLMUnreachable`, `LLMTimeout` or `LLMHTTPError`.
        """
        body = await self._exchange.request("GET", "/models", model=self._model)
        return [
            ModelInfo(name=m.id, context_length=m.max_model_len or m.context_length)
            for m in decode_body(_models_decoder, body).data
        ]

    async def embed(self, texts: Sequence[str], *, model: str) -> list[list[float]]:
        """One embedding vector per text, in order, from ``model`` (``/embeddings``).

        Takes a `LLMLimits` slot. Raises `ModelNotFound` when the server does not have
        ``model``, and the connection errors of `list_models`.
        """
        if not texts:
            return []
        payload = msgspec.json.encode(_EmbedRequest(model=model, input=texts))
        async with self._limits.slot():
            self._recorder.requests += 1
            try:
                body = await self._exchange.request("POST", "/embeddings", payload, model=model)
                data = sorted(decode_body(_embed_decoder, body).data, key=lambda e: e.index)
                if len(data) != len(texts):
                    raise LLMHTTPError(200, f"{len(data)} embeddings for {len(texts)} texts")
            except LLMError:
                self._recorder.failures += 1
                raise
        return [item.embedding for item in data]

    def statistics(self) -> LLMStatistics:
        return self._recorder.snapshot()


def _parse_line(line: str) -> Chunk | None:
    if not line.startswith("data:"):
        return None  # blank lines end events; ":" comments, "event:", "id:" carry nothing
    data = line[5:].strip()
    if data == _DONE:
        return Chunk(finished=True, done=True)
    chunk = _chunk_decoder.decode(data)
    if chunk.error is not None:
        error = chunk.error if isinstance(chunk.error, str) else chunk.error.message
        return Chunk(error=error or "unknown error")
    text = "".join(c.delta.content for c in chunk.choices if c.delta and c.delta.content)
    finished = any(c.finish_reason is not None for c in chunk.choices)
    tokens = chunk.usage.completion_tokens if chunk.usage else None
    return Chunk(text=text, finished=finished, tokens=tokens)
