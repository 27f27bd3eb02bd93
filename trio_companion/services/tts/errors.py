"""Errors of the text-to-speech engines (`trio_companion.services.tts`).

::

    CompanionError                 (trio_companion.errors)
    ├── AudioError                 (trio_companion.services.audio: bytes that are not audio)
    └── TTSError                   (this module: root of the TTS engines)
        ├── TTSUnavailable         (the engine can't be used: server down, binary or extra missing)
        └── TTSFailed              (the engine ran but failed: error status, exit code, bad audio)

Who raises what: each engine (`espeak`, `openai_speech`, `piper`) turns every failure of its
backend into one of these leaves, including audio it cannot decode (`TTSFailed`, the
`AudioError` chained as the cause). `pipeline.synthesize_stream` lets them propagate. Nothing
else escapes an engine on purpose: an ``httpx`` or ``OSError`` reaching a caller is a bug.

`TTSUnavailable` is "broken before we started" — retrying is pointless until someone installs or
starts something, and `hint` says what. `TTSFailed` is "broken by the peer for this request":
another sentence may work. Cancellation is not an error: a cancelled synthesis raises trio's
``Cancelled`` (and a child process is killed).

``str(error)`` is a sentence a Discord user can read; it never includes an API key.
"""

from __future__ import annotations

from typing import Final, final

from trio_companion.errors import CompanionError

__all__ = ["TTSError", "TTSFailed", "TTSUnavailable"]

# Server and process error texts are shown to users: keep them to a readable length.
_MAX_DETAIL: Final = 200


def _short(detail: str) -> str:
    detail = " ".join(detail.split())
    if len(detail) > _MAX_DETAIL:
        detail = detail[: _MAX_DETAIL - 1] + "…"
    return detail


class TTSError(CompanionError):
    """Root of the errors raised on purpose by the TTS engines; `engine` names the engine."""

    def __init__(self, message: str, *, engine: str) -> None:
        self.engine = engine
        super().__init__(message)


@final
class TTSUnavailable(TTSError):
    """The `engine` can't be used at all: `reason` says why, `hint` what to do about it.

    Raised when a TTS server refuses connections or can't be resolved, the ``espeak-ng``
    binary is missing, or the Piper extra (or its voice file) is not installed.
    """

    def __init__(self, engine: str, reason: str, *, hint: str = "") -> None:
        self.reason = reason
        self.hint = hint
        message = f"Text-to-speech ({engine}) is unavailable: {reason}."
        if hint:
            message += f" To fix it: {hint}."
        super().__init__(message, engine=engine)


@final
class TTSFailed(TTSError):
    """The `engine` ran but did not produce speech; `detail` is its own explanation.

    `status` is the HTTP status of a server's error answer, `exit_code` the exit status of a
    process; whichever does not apply is None. Also raised when the audio an engine returned
    cannot be decoded (both None then).
    """

    def __init__(
        self,
        engine: str,
        detail: str,
        *,
        status: int | None = None,
        exit_code: int | None = None,
    ) -> None:
        self.detail = _short(detail) or "no details"
        self.status = status
        self.exit_code = exit_code
        if status is not None:
            where = f" (HTTP {status})"
        elif exit_code is not None:
            where = f" (exit code {exit_code})"
        else:
            where = ""
        super().__init__(
            f"Text-to-speech ({engine}) failed{where}: {self.detail.rstrip('.')}.", engine=engine
        )
