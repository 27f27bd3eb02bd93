"""The chat service: one reply, from the request to the stored history.

Theory of operation
-------------------
`ChatService.reply` runs under the channel's lock (`ChannelLocks`): messages in one channel are
answered one after another, in arrival order, so each reply sees the previous exchange in its
history; different channels run in parallel. It builds the prompt (persona, trimmed history,
the new message), streams the model's answer into the given `MessageSink` through a
`ReplyWriter`, and stores the exchange. An LLM failure becomes a visible note on the reply
("the model stopped answering: …"), never silence and never a crash; the user's message is kept
in the history either way, the answer only when there was one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Final, Protocol, final

import trio

from trio_companion.errors import CompanionError
from trio_companion.services.chat.context import CONTEXT_DEADLINE, ContextSource
from trio_companion.services.chat.prompt import build_prompt, format_user_turn
from trio_companion.services.chat.writer import EditBudget, MessageSink, open_reply_writer
from trio_companion.services.llm.base import ChatMessage, GenerationOptions, LLMBackend
from trio_companion.services.llm.errors import LLMError
from trio_companion.storage import Store, Turn

__all__ = ["ChannelLocks", "ChatRequest", "ChatService", "ChatStatistics", "Reply"]

log = logging.getLogger(__name__)

# Latencies remembered for /status.
_LATENCY_SAMPLES: Final = 20


class PersonaLike(Protocol):
    @property
    def name(self) -> str: ...

    def system_message(self) -> str: ...


class PersonaSource(Protocol):
    """What the chat service needs of the persona library."""

    async def for_guild(self, guild_id: int | None) -> PersonaLike:
        """The active persona of a guild (or of DMs: None)."""
        ...


@dataclass(frozen=True, slots=True)
class ChatRequest:
    channel_id: int
    guild_id: int | None
    author_id: int
    author_name: str
    content: str
    message_id: int | None = None
    use_history: bool = True
    context: str = ""  # extra lines for the system message (where we are, who is here)


@dataclass(frozen=True, slots=True)
class Reply:
    text: str
    failed: str | None  # the note shown when the model failed
    first_visible: float | None  # seconds from the request to the first visible text
    total: float
    messages: int


@dataclass(frozen=True, slots=True)
class ChatStatistics:
    replies: int
    failures: int
    active_channels: int
    recent_first_visible: tuple[float, ...]
    recent_total: tuple[float, ...]


@final
class ChannelLocks:
    """One FIFO lock per channel, created on use and dropped when nobody holds or waits."""

    def __init__(self) -> None:
        self._locks: dict[int, tuple[trio.Lock, list[int]]] = {}

    @asynccontextmanager
    async def hold(self, channel_id: int) -> AsyncIterator[None]:
        lock, users = self._locks.setdefault(channel_id, (trio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if users[0] == 0:
                del self._locks[channel_id]

    def __len__(self) -> int:
        return len(self._locks)


@final
@dataclass(slots=True)
class _Counters:
    replies: int = 0
    failures: int = 0
    first_visible: list[float] = field(default_factory=list)
    total: list[float] = field(default_factory=list)

    def record(self, reply: Reply) -> None:
        self.replies += 1
        self.failures += reply.failed is not None
        if reply.first_visible is not None:
            self.first_visible = [*self.first_visible, reply.first_visible][-_LATENCY_SAMPLES:]
        self.total = [*self.total, reply.total][-_LATENCY_SAMPLES:]


@final
class ChatService:
    def __init__(
        self,
        *,
        backend: LLMBackend,
        store: Store,
        personas: PersonaSource,
        options: GenerationOptions,
        budget: EditBudget,
        history_turns: int,
        edit_interval: float,
        context_sources: Sequence[ContextSource] = (),
    ) -> None:
        self._backend = backend
        self._store = store
        self._personas = personas
        self._options = options
        self._budget = budget
        self._history_turns = history_turns
        self._interval = edit_interval
        self._sources = tuple(context_sources)
        self._locks = ChannelLocks()
        self._counters = _Counters()

    async def reply(
        self,
        request: ChatRequest,
        sink: MessageSink,
        *,
        on_text: Callable[[str], None] | None = None,
    ) -> Reply:
        """Answer ``request`` into ``sink``; see the module docstring. Raises `PromptTooLong`
        (before anything is shown) when the message cannot fit the context window.

        ``on_text`` also gets each piece of the reply as it streams (a spoken reply follows the
        text this way); it must not block."""
        async with self._locks.hold(request.channel_id):
            return await self._reply_locked(request, sink, on_text)

    async def _reply_locked(
        self, request: ChatRequest, sink: MessageSink, on_text: Callable[[str], None] | None
    ) -> Reply:
        started = trio.current_time()
        persona = await self._personas.for_guild(request.guild_id)
        name, system = persona.name, persona.system_message()
        extra = [
            request.context,
            *[await self._context(source, request) for source in self._sources],
        ]
        system = "\n\n".join([system, *(part for part in extra if part)])
        history = (
            await self._store.history.recent(request.channel_id, self._history_turns)
            if request.use_history
            else []
        )
        said = format_user_turn(request.author_name, request.content)
        prompt = build_prompt(
            system=system,
            history=history,
            new_messages=[ChatMessage(role="user", content=said)],
            num_ctx=self._options.num_ctx,
            num_predict=self._options.num_predict,
        )
        if prompt.history_dropped:
            log.debug(
                "channel %d: %d old turns left out", request.channel_id, prompt.history_dropped
            )
        failed: str | None = None
        async with open_reply_writer(sink, self._budget, interval=self._interval) as writer:
            try:
                async with self._backend.stream_chat(prompt.messages, self._options) as pieces:
                    async for piece in pieces:
                        writer.append(piece)
                        if on_text is not None:
                            on_text(piece)
            except LLMError as exc:
                failed = str(exc)
                log.warning("channel %d: %s", request.channel_id, exc)
            writer.finish(failed or "")
        reply = Reply(
            text=writer.text,
            failed=failed,
            first_visible=(
                writer.first_visible_at - started if writer.first_visible_at is not None else None
            ),
            total=trio.current_time() - started,
            messages=writer.message_count,
        )
        if request.use_history:
            await self._remember(request, reply, name)
        self._counters.record(reply)
        return reply

    async def _context(self, source: ContextSource, request: ChatRequest) -> str:
        with trio.move_on_after(CONTEXT_DEADLINE):
            try:
                return await source.context_for(request)
            except CompanionError as exc:
                log.warning("context for channel %d left out: %s", request.channel_id, exc)
                return ""
        log.warning(
            "context for channel %d left out: slower than %s s",
            request.channel_id,
            CONTEXT_DEADLINE,
        )
        return ""

    async def _remember(self, request: ChatRequest, reply: Reply, bot_name: str) -> None:
        now = time.time()  # wall-clock: history is shown and exported with real dates
        turns = [
            Turn(
                channel_id=request.channel_id,
                author_id=request.author_id,
                author_name=request.author_name,
                role="user",
                content=request.content,
                created_at=now,
                message_id=request.message_id,
            )
        ]
        if reply.text.strip() and reply.failed is None:
            turns.append(
                Turn(
                    channel_id=request.channel_id,
                    author_id=0,
                    author_name=bot_name,
                    role="assistant",
                    content=reply.text.strip(),
                    created_at=now,
                )
            )
        await self._store.history.append_many(turns)

    def statistics(self) -> ChatStatistics:
        c = self._counters
        return ChatStatistics(
            replies=c.replies,
            failures=c.failures,
            active_channels=len(self._locks),
            recent_first_visible=tuple(c.first_visible),
            recent_total=tuple(c.total),
        )
