"""Logging: one format for every line, and secrets redacted from every line and error message.

The format is ``2026-11-28 13:30:00,123 INFO    trio_companion.app: message``. Levels are used
consistently: DEBUG for protocol traffic, INFO for lifecycle (started, connected, stopped),
WARNING for something that went wrong and was handled (a reconnect, a retried request), ERROR
for something a person should look at (a handler crashed, a component failed).

Redaction happens in the formatter, after the message and any traceback are rendered, so a
secret reaches no log line by any path: the configured secrets themselves, plus anything shaped
like a Discord bot token or an ``Authorization`` header value. `redact` is the same function for
text shown to users.
"""

from __future__ import annotations

import logging
import logging.handlers
import queue
import re
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

__all__ = ["REDACTED", "RedactingFormatter", "logging_configured", "redact", "register_secrets"]

REDACTED: Final = "[redacted]"
LOG_FORMAT: Final = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"

# A Discord bot token is three base64url parts: user id, timestamp, HMAC (discord.py's regex,
# documented in Discord's "Reference: Authentication").
_TOKEN_SHAPE: Final = re.compile(r"[A-Za-z\d_-]{23,28}\.[A-Za-z\d_-]{6}\.[A-Za-z\d_-]{27,}")
_AUTH_HEADER: Final = re.compile(r"(?i)\b(Bot|Bearer)\s+[A-Za-z\d._~+/=-]{8,}")
# Records waiting for the writer thread; past this a flood of logging drops lines, not memory.
_QUEUE_SIZE: Final = 10_000
# Shorter strings are too likely to occur in ordinary text to be replaced everywhere.
_MIN_SECRET_LENGTH: Final = 6

_secrets: set[str] = set()


def register_secrets(values: Iterable[str]) -> None:
    """Add values that must never appear in a log line or a user-visible message."""
    _secrets.update(v for v in values if len(v) >= _MIN_SECRET_LENGTH)


def redact(text: str) -> str:
    """Return ``text`` with every known secret and token-shaped string replaced."""
    for secret in sorted(_secrets, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    text = _AUTH_HEADER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    return _TOKEN_SHAPE.sub(REDACTED, text)


class RedactingFormatter(logging.Formatter):
    """A `logging.Formatter` whose every output line has passed through `redact`."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


@contextmanager
def logging_configured(
    level: str, *, file: str = "", max_bytes: int = 10_000_000, backup_count: int = 5
) -> Iterator[None]:
    """Route every log record through a queue to stderr (and a rotating file when ``file`` is set).

    The writing happens on the `logging.handlers.QueueListener`'s thread, so a log call on the trio
    thread never blocks on a slow terminal or disk; the listener is flushed and stopped when the
    block exits. The CLI wraps the whole run in it, before trio starts.
    """
    sinks: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if file:
        Path(file).parent.mkdir(parents=True, exist_ok=True)
        sinks.append(
            logging.handlers.RotatingFileHandler(
                file, maxBytes=max_bytes, backupCount=backup_count, encoding="utf-8"
            )
        )
    for sink in sinks:
        sink.setFormatter(RedactingFormatter(LOG_FORMAT))
    records: queue.Queue[logging.LogRecord] = queue.Queue(maxsize=_QUEUE_SIZE)
    front = logging.handlers.QueueHandler(records)
    # The queue handler renders message and traceback once, redacted, before the record leaves
    # the calling thread; the sinks only add the time, level and logger name.
    front.setFormatter(RedactingFormatter("%(message)s"))
    listener = logging.handlers.QueueListener(records, *sinks, respect_handler_level=True)

    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    for old in saved_handlers:
        root.removeHandler(old)
    root.addHandler(front)
    root.setLevel(level)
    # Libraries' protocol chatter stays at WARNING unless we are debugging.
    for noisy in ("httpx", "httpcore", "trio-websocket"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if level == "DEBUG" else logging.WARNING)
    listener.start()
    try:
        yield
    finally:
        listener.stop()
        root.removeHandler(front)
        for sink in sinks:
            sink.close()
        for old in saved_handlers:
            root.addHandler(old)
        root.setLevel(saved_level)
