"""Streaming a reply into Discord messages while the model writes it.

Theory of operation
-------------------
``async with open_reply_writer(sink, budget, interval=1.0) as writer:`` starts two tasks in the
writer's own nursery: a *waiting* task that shows the typing indicator (and, after
`PROGRESS_NOTE_AFTER` seconds without a word, a visible "thinking" note) until the first text
arrives, and an *editor* task. The caller feeds text with `ReplyWriter.append` (no await: the
model's stream is never slowed by Discord) and ends with `ReplyWriter.finish`, optionally with a
note (an error: "the model stopped answering") that is shown under the text.

The editor shows the newest text, at most once per ``interval`` per message, and each edit
takes a token from the bot-wide `EditBudget`, so twenty conversations at once stay within
Discord's limits. Creating a message does not wait for the budget: the first words appear as
soon as they exist (bench/chat_streaming.py: with 50 conversations, budgeting creates too put
the p99 of "first token to first visible" at 4.8 s instead of under 2 s). Edits are *latest
wins*: text that arrived while waiting is sent in one edit; no stale edit is ever queued.
When the text outgrows a message (2000 characters), the message is finished at a paragraph,
line or sentence boundary (`gateway.text.split_message`, code blocks kept whole or closed and
reopened) and the reply continues in a new message.

A `MessageSink` hides where the messages go: channel messages, or an interaction's original
response and followups, or a terminal.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Final, Protocol, final

import trio

from trio_companion.gateway.text import MESSAGE_LIMIT, split_message

__all__ = ["EditBudget", "MessageSink", "ReplyWriter", "open_reply_writer"]

# Discord shows "typing" for 10 s (PROTOCOL.md 3.3): repeat it a little sooner.
TYPING_EVERY: Final = 8.0
# The hardening pass's advice: show progress when users would otherwise wait in silence.
PROGRESS_NOTE_AFTER: Final = 15.0
PROGRESS_NOTE: Final = "*Thinking…*"
EMPTY_REPLY: Final = "*(no reply)*"


class MessageSink(Protocol):
    """Where a reply's messages go."""

    async def typing(self) -> None:
        """Show that a reply is coming (may do nothing)."""

    async def send(self, content: str) -> object:
        """Create a message; return a handle for `edit`."""

    async def edit(self, handle: object, content: str) -> None:
        """Replace the content of a message made by `send`."""


@final
class EditBudget:
    """A bot-wide token bucket for message creates and edits, on trio's clock."""

    def __init__(self, per_second: float, *, burst: int | None = None) -> None:
        self._rate = per_second
        self._capacity = float(burst if burst is not None else max(1, math.ceil(per_second)))
        self._tokens = self._capacity
        self._updated: float | None = None
        self._lock = trio.Lock()  # FIFO: waiters are served in order
        self.used = 0

    async def acquire(self) -> None:
        async with self._lock:
            now = trio.current_time()
            if self._updated is not None:
                self._tokens = min(
                    self._capacity, self._tokens + (now - self._updated) * self._rate
                )
            self._updated = now
            if self._tokens < 1:
                wait = (1 - self._tokens) / self._rate
                await trio.sleep(wait)
                self._tokens = 1.0
                self._updated = trio.current_time()
            self._tokens -= 1
            self.used += 1


@dataclass(slots=True)
class _Message:
    handle: object
    shown: str  # what Discord shows now


@final
class ReplyWriter:
    """See the module docstring. Made by `open_reply_writer`."""

    def __init__(self, sink: MessageSink, budget: EditBudget, interval: float) -> None:
        self._sink = sink
        self._budget = budget
        self._interval = interval
        self._text = ""  # everything the model said
        self._done: list[str] = []  # texts of finished messages
        self._tail = ""  # the part of the reply after the finished messages
        self._note = ""
        self._finished = False
        self._changed = trio.Event()
        self._first_text = trio.Event()
        self._waiting_done = trio.Event()
        self._messages: list[_Message] = []
        self.first_visible_at: float | None = None

    @property
    def text(self) -> str:
        """The reply as the model wrote it so far."""
        return self._text

    @property
    def message_count(self) -> int:
        return len(self._messages)

    def append(self, piece: str) -> None:
        if not piece or self._finished:
            return
        self._text += piece
        self._tail += piece
        if len(self._tail) > MESSAGE_LIMIT:
            # The split drops whitespace at the cut and the ends; keep the tail's trailing space,
            # or the next piece would be glued to the last word.
            trailing = self._tail[len(self._tail.rstrip()) :]
            chunks = split_message(self._tail)
            self._done.extend(chunks[:-1])
            self._tail = chunks[-1] + trailing
        if self._text.strip():
            self._first_text.set()
        self._changed.set()

    def finish(self, note: str = "") -> None:
        """No more text; show ``note`` (in italics) under it, e.g. why the reply stopped."""
        self._note = note
        self._finished = True
        self._first_text.set()
        self._changed.set()

    # --- tasks ------------------------------------------------------------------------------

    async def _wait_visibly(self) -> None:
        """Typing indicator until the first text; a progress note if it takes long.

        Ends by itself once the first text is there (never cancelled mid-request, which could
        leave a note on Discord that the writer does not know about)."""
        started = trio.current_time()
        try:
            while not self._first_text.is_set():
                await self._sink.typing()
                with trio.move_on_after(TYPING_EVERY):
                    await self._first_text.wait()
                late = trio.current_time() - started >= PROGRESS_NOTE_AFTER
                if not self._first_text.is_set() and not self._messages and late:
                    handle = await self._sink.send(PROGRESS_NOTE)
                    self._messages.append(_Message(handle, PROGRESS_NOTE))
        finally:
            self._waiting_done.set()

    async def _edit_loop(self) -> None:
        await self._first_text.wait()
        await self._waiting_done.wait()
        last_edit = -math.inf
        while True:
            await self._changed.wait()
            self._changed = trio.Event()
            if not self._finished:
                await trio.sleep_until(last_edit + self._interval)
            await self._show()
            last_edit = trio.current_time()
            if self._finished and not self._changed.is_set():
                return

    async def _show(self) -> None:
        """Make Discord show the current state: finished messages, then the tail (+ note)."""
        wanted = [*self._done, self._tail]
        if self._finished:
            last = wanted[-1].rstrip()
            if self._note:
                last = f"{last}\n\n*{self._note}*" if last else f"*{self._note}*"
            wanted[-1] = last or EMPTY_REPLY
            if len(wanted[-1]) > MESSAGE_LIMIT:
                wanted[-1:] = split_message(wanted[-1])
        for index, raw in enumerate(wanted):
            content = raw.strip() or ("…" if index == len(wanted) - 1 else "")
            if not content:
                continue
            if index < len(self._messages):
                message = self._messages[index]
                if message.shown != content:
                    await self._budget.acquire()
                    await self._sink.edit(message.handle, content)
                    message.shown = content
            else:
                # Creates skip the edit budget: the first words are what people wait for, and
                # a reply creates few messages; the REST client's global limit still applies.
                handle = await self._sink.send(content)
                self._messages.append(_Message(handle, content))
                if self.first_visible_at is None:
                    self.first_visible_at = trio.current_time()


@asynccontextmanager
async def open_reply_writer(
    sink: MessageSink, budget: EditBudget, *, interval: float
) -> AsyncIterator[ReplyWriter]:
    """A `ReplyWriter` whose tasks live for the ``async with``. On a normal exit it is finished
    (if the caller did not) and the last edit is made before the block ends."""
    writer = ReplyWriter(sink, budget, interval)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(writer._wait_visibly)
        nursery.start_soon(writer._edit_loop)
        yield writer
        if not writer._finished:
            writer.finish()
