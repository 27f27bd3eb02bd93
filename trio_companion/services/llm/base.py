"""The LLM capability the companion needs, apart from any server's API.

Backends (``ollama.py``, ``openai.py``) implement `LLMBackend`; the chat service asks for an
`LLMBackend`, never for a backend class. Streaming is an async context manager yielding an async
iterator of text pieces, so the HTTP response is always closed, even when the consumer stops
early or is cancelled::

    async with backend.stream_chat(messages, options) as pieces:
        async for piece in pieces:
            ...

Errors (`trio_companion.services.llm.errors`) say what happened in words a user can act on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Literal, Protocol

import msgspec

__all__ = ["ChatMessage", "GenerationOptions", "LLMBackend", "ModelInfo", "Role"]

Role = Literal["system", "user", "assistant"]


class ChatMessage(msgspec.Struct, frozen=True, kw_only=True):
    """One message of a conversation as the model sees it."""

    role: Role
    content: str


class GenerationOptions(msgspec.Struct, frozen=True, kw_only=True):
    """Sampling settings of one request (from `trio_companion.config.LLMConfig` by default)."""

    temperature: float = 0.8
    top_k: int = 40
    top_p: float = 0.9
    min_p: float = 0.05
    repeat_penalty: float = 1.1
    num_predict: int = 512  # -1: no limit
    num_ctx: int = 8192


class ModelInfo(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    context_length: int | None = None


class LLMBackend(Protocol):
    """A chat model behind some server. Implementations are safe to share between tasks."""

    @property
    def model(self) -> str: ...

    def stream_chat(
        self, messages: Sequence[ChatMessage], options: GenerationOptions
    ) -> AbstractAsyncContextManager[AsyncIterator[str]]:
        """Stream the reply to ``messages`` as text pieces (thinking blocks already removed)."""
        ...

    async def complete(self, messages: Sequence[ChatMessage], options: GenerationOptions) -> str:
        """The whole reply at once (for background jobs: summaries, extraction)."""
        ...

    async def list_models(self) -> list[ModelInfo]:
        """Models the server offers; raises if the server cannot be reached."""
        ...

    async def embed(self, texts: Sequence[str], *, model: str) -> list[list[float]]:
        """One embedding vector per text."""
        ...
