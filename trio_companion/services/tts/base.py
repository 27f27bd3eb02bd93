"""The `TTSEngine` capability: text in, `Audio` out.

An engine speaks one sentence-ish chunk per call (see `text.split_sentences` and
`pipeline.synthesize_stream`, which feed it). The returned `Audio` is at the engine's native
rate and channel count; `audio.to_discord_pcm` converts it for voice. Engines are safe to share
between tasks: each bounds its own concurrency (a thread limiter, the server's queue).
"""

from __future__ import annotations

from typing import Protocol

from trio_companion.services.audio import Audio

__all__ = ["TTSEngine"]


class TTSEngine(Protocol):
    """A text-to-speech backend (``espeak-ng``, Piper, an OpenAI-compatible speech server)."""

    @property
    def name(self) -> str:
        """Short engine name for logs and errors ("espeak", "piper", "openai")."""
        ...

    async def synthesize(self, text: str, *, voice: str | None = None) -> Audio:
        """Speak ``text`` (a sentence or so, already cleaned) in ``voice`` (None: the default).

        Raises `TTSUnavailable` or `TTSFailed`. Cancellation stops the work where the engine
        can (a child process is killed, an HTTP request closed) and raises ``Cancelled``.
        """
        ...

    async def voices(self) -> list[str]:
        """The voice names ``synthesize`` accepts; raises `TTSUnavailable`/`TTSFailed`."""
        ...
