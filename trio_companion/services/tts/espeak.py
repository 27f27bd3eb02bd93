"""`TTSEngine` on the ``espeak-ng`` command-line synthesiser: robotic, tiny, always available.

Theory of operation
-------------------
Each `EspeakEngine.synthesize` runs one ``espeak-ng --stdout -b 1 -v <voice> -s <wpm>`` process
with the text on its standard input (UTF-8, ``-b 1``; stdin rather than an argument so a text
starting with ``-`` is never read as an option) and reads a WAV file from its standard output.
espeak-ng writes that WAV as a stream, with 0x7FFFFFFF in its size fields; libsndfile reads it
anyway. The WAV is decoded in an audio worker thread (`audio.decode_in_thread`).

At most `MAX_PROCESSES` run at once (a `trio.CapacityLimiter`); each takes tens of milliseconds
for a sentence. Cancelling a synthesis kills its process (``trio.run_process``).

Failures: no binary (``FileNotFoundError``, ``PermissionError``) is `TTSUnavailable` with the
install hint; a non-zero exit (an unknown voice exits 1 with "voice does not exist" on stderr)
or undecodable output is `TTSFailed`.
"""

from __future__ import annotations

import subprocess
from typing import Final, final

import trio

from trio_companion.services.audio import Audio, AudioError, decode_in_thread
from trio_companion.services.tts.errors import TTSFailed, TTSUnavailable

__all__ = ["DEFAULT_SPEED", "DEFAULT_VOICE", "MAX_PROCESSES", "EspeakEngine", "parse_voices"]

DEFAULT_VOICE: Final = "en-us"  # espeak-ng's American English voice (``espeak-ng --voices``)
DEFAULT_SPEED: Final = 175  # words per minute: espeak-ng's own default (man espeak-ng, -s)
# Processes are cheap but each holds a core while it runs; two overlap the next sentence.
MAX_PROCESSES: Final = 2
_INSTALL_HINT: Final = "apt install espeak-ng"
_NAME: Final = "espeak"


def parse_voices(listing: str) -> list[str]:
    """The voice names (the "Language" column) of an ``espeak-ng --voices`` listing, in order.

    The listing is a header line ``Pty Language Age/Gender VoiceName File Other Languages`` and
    one whitespace-separated row per voice; anything else is skipped.
    """
    voices: list[str] = []
    for line in listing.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0].isdigit():
            voices.append(fields[1])
    return voices


@final
class EspeakEngine:
    """Speech from the ``espeak-ng`` binary (``binary``: a name on PATH or a path)."""

    def __init__(
        self,
        *,
        binary: str = "espeak-ng",
        voice: str = DEFAULT_VOICE,
        speed: int = DEFAULT_SPEED,
    ) -> None:
        self._binary = binary
        self._voice = voice
        self._speed = speed
        self._limiter = trio.CapacityLimiter(MAX_PROCESSES)

    @property
    def name(self) -> str:
        return _NAME

    async def synthesize(self, text: str, *, voice: str | None = None) -> Audio:
        """Speak ``text``; see `TTSEngine.synthesize`. Native format: 22.05 kHz mono."""
        command = [
            self._binary,
            "--stdout",
            "-b",
            "1",
            "-v",
            voice or self._voice,
            "-s",
            str(self._speed),
        ]
        async with self._limiter:
            result = await self._run(command, stdin=text.encode())
        try:
            return await decode_in_thread(result.stdout)
        except AudioError as error:
            raise TTSFailed(_NAME, f"unreadable output: {error.reason}") from error

    async def voices(self) -> list[str]:
        """The voice names ``espeak-ng --voices`` lists (e.g. "en-us", "en-gb", "fr-fr")."""
        result = await self._run([self._binary, "--voices"], stdin=b"")
        return parse_voices(result.stdout.decode(errors="replace"))

    async def _run(self, command: list[str], *, stdin: bytes) -> subprocess.CompletedProcess[bytes]:
        try:
            result = await trio.run_process(
                command, stdin=stdin, capture_stdout=True, capture_stderr=True, check=False
            )
        except (FileNotFoundError, PermissionError) as error:
            raise TTSUnavailable(
                _NAME, f"can't run {self._binary!r} ({error.strerror})", hint=_INSTALL_HINT
            ) from error
        if result.returncode != 0:
            detail = result.stderr.decode(errors="replace").strip()
            raise TTSFailed(_NAME, detail or "no error message", exit_code=result.returncode)
        return result
