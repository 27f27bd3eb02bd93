"""Long-term memory: older conversation turns summarised, stored, and made retrievable.

Theory of operation
-------------------
Every channel's history grows turn by turn; the chat service feeds only the newest
``keep_recent`` of them back to the model. When more than ``threshold + keep_recent`` turns lie
after the channel's *summary point* (the last turn already summarised, kept by
`trio_companion.storage.summaries`), the older ones, all but the newest ``keep_recent``, are
summarised by the LLM (topics, decisions, facts, notable quotes with speaker names), stored with
the new point in one transaction, and, when retrieval is on, indexed as a document under
`GENERATED_PREFIX` so ``/recall`` and the chat's retrieval find it. Turns up to the point are never
summarised again, also across restarts: the point lives in the database.

Triggering is cheap and never blocks the caller: `Summarizer.request` puts the channel id into a
bounded channel with ``send_nowait``. A channel already waiting is not queued twice, and when the
queue is full the request is dropped (logged at debug): the next message of that channel asks
again. `Summarizer.run` is the one consumer; it checks the counts in the store and summarises if
needed. One summary is made at a time (a `trio.CapacityLimiter` of 1 around the whole step), so a
background summary and ``/summarize_now`` never work on the same turns; the store refuses an
overlapping range anyway.

An LLM failure (server down, error, over `SUMMARY_DEADLINE`) stores nothing and leaves the point
where it was: the turns are tried again on a later request.
"""

from __future__ import annotations

import datetime
import logging
from typing import TYPE_CHECKING, Final, final

import msgspec
import trio

from trio_companion.services.llm.base import ChatMessage, GenerationOptions
from trio_companion.services.llm.errors import LLMError
from trio_companion.services.rag.index import GENERATED_PREFIX

if TYPE_CHECKING:
    from collections.abc import Sequence

    from trio_companion.services.llm.base import LLMBackend
    from trio_companion.services.rag import DocumentIndex
    from trio_companion.storage import Store, StoredTurn, Summary

__all__ = [
    "MAX_TURNS_PER_SUMMARY",
    "SUMMARY_DEADLINE",
    "Summarizer",
    "SummarizerStatistics",
    "SummaryFailed",
    "render_transcript",
    "summary_document_path",
]

log = logging.getLogger(__name__)

# Channels waiting to be checked; a full queue drops the request (the next message asks again).
QUEUE_SIZE: Final = 32
# One summary request to the model, at the call site (STYLE.md 11): a cold model load plus a few
# hundred tokens of output stays well within it on modest hardware.
SUMMARY_DEADLINE: Final = 180.0
# Turns per summary: more makes a prompt that small local models (8k context) cannot hold. A
# longer backlog is summarised in several rounds, each its own summary.
MAX_TURNS_PER_SUMMARY: Final = 200
# The transcript sent is cut to this many characters (about 6k tokens), keeping whole turns.
MAX_TRANSCRIPT_CHARS: Final = 24_000
# One turn in the transcript: a pasted wall of text must not crowd out the conversation.
MAX_TURN_CHARS: Final = 1_000
# Rounds one request may run for a long backlog before it lets other channels have a turn.
MAX_ROUNDS: Final = 5
# A factual summary, not a creative one; long enough for four short sections.
SUMMARY_TEMPERATURE: Final = 0.3
SUMMARY_TOKENS: Final = 700

SYSTEM_PROMPT: Final = (
    "You keep the long-term memory of a Discord chat. Summarise the conversation below so it "
    "can be recalled later. Write four short sections with these headings: Topics, Decisions, "
    "Facts (about the people, with their names), Notable quotes (verbatim, each with the "
    "speaker's name). Write 'none' under a heading with nothing to say. Use only what the "
    "conversation says; no preamble, no closing remarks."
)


class SummaryFailed(Exception):
    """The model did not produce a summary (raised by `Summarizer.summarize`); nothing was
    stored and the summary point did not move. ``str()`` is for the user."""


@final
class SummarizerStatistics(msgspec.Struct, frozen=True, kw_only=True):
    queued: int
    dropped: int
    summaries: int
    failures: int
    busy: bool


def summary_document_path(channel_id: int, summary_id: int) -> str:
    """The retrieval document a summary is indexed as."""
    return f"{GENERATED_PREFIX}{channel_id}:{summary_id}"


def render_transcript(
    turns: Sequence[StoredTurn], *, budget: int = MAX_TRANSCRIPT_CHARS
) -> tuple[str, int]:
    """`turns` as ``[date time] Name: text`` lines, oldest first, cut to whole turns within
    `budget` characters (the first turn is always kept, shortened if need be); and how many
    turns the text holds."""
    lines: list[str] = []
    used = 0
    for turn in turns:
        when = datetime.datetime.fromtimestamp(turn.created_at, datetime.UTC)
        text = " ".join(turn.content.split())
        if len(text) > MAX_TURN_CHARS:
            text = text[: MAX_TURN_CHARS - 1] + "…"
        line = f"[{when:%Y-%m-%d %H:%M}] {turn.author_name}: {text}"
        if lines and used + len(line) + 1 > budget:
            break
        lines.append(line[:budget])
        used += len(line) + 1
    return "\n".join(lines), len(lines)


@final
class Summarizer:
    """Summarises channels' older turns; see the module docstring.

    `threshold` and `keep_recent` are in turns. With `rag` None summaries are stored but not
    indexed for retrieval.
    """

    def __init__(
        self,
        store: Store,
        backend: LLMBackend,
        *,
        threshold: int,
        keep_recent: int,
        rag: DocumentIndex | None,
        options: GenerationOptions | None = None,
    ) -> None:
        if threshold < 1 or keep_recent < 0:
            raise ValueError(
                f"need threshold >= 1 and keep_recent >= 0, not {threshold}, {keep_recent}"
            )
        self._summaries = store.summaries
        self._backend = backend
        self._threshold = threshold
        self._keep_recent = keep_recent
        self._rag = rag
        self._options = msgspec.structs.replace(
            options or GenerationOptions(),
            temperature=SUMMARY_TEMPERATURE,
            num_predict=SUMMARY_TOKENS,
        )
        self._limiter = trio.CapacityLimiter(1)
        self._send, self._receive = trio.open_memory_channel[int](QUEUE_SIZE)
        self._waiting: set[int] = set()
        self._dropped = 0
        self._made = 0
        self._failures = 0
        self._handled = 0  # requests `run` finished with, successful or not
        self._handled_changed = trio.Event()

    def request(self, channel_id: int) -> None:
        """Ask for `channel_id` to be checked soon. Never blocks; see the module docstring."""
        if channel_id in self._waiting:
            return
        try:
            self._send.send_nowait(channel_id)
        except trio.WouldBlock:
            self._dropped += 1
            log.debug("summary queue full; dropped a request for channel %d", channel_id)
            return
        self._waiting.add(channel_id)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve `request`s until cancelled. Failures are logged, never raised (store errors
        included: the bot goes on without a summary)."""
        task_status.started()
        async for channel_id in self._receive:
            self._waiting.discard(channel_id)  # a message from now on asks again
            try:
                await self.maybe_summarize(channel_id)
            except Exception:
                log.exception("summarising channel %d failed", channel_id)
            self._handled += 1
            self._handled_changed.set()
            self._handled_changed = trio.Event()

    async def wait_handled(self, count: int) -> None:
        """Return once `run` has finished with `count` requests in all (for tests and tools
        that must know a background summary happened)."""
        while self._handled < count:
            await self._handled_changed.wait()

    async def maybe_summarize(self, channel_id: int) -> list[Summary]:
        """Summarise `channel_id`'s older turns if more than ``threshold + keep_recent`` lie
        after its summary point; return the summaries made (none if below the threshold or the
        model failed, which is logged)."""
        made: list[Summary] = []
        for _ in range(MAX_ROUNDS):
            _, pending = await self._summaries.pending(channel_id)
            if pending <= self._threshold + self._keep_recent:
                break
            try:
                summary = await self.summarize(
                    channel_id, keep_recent=self._keep_recent, min_turns=self._threshold + 1
                )
            except SummaryFailed as exc:
                log.warning("no summary of channel %d: %s", channel_id, exc)
                break
            if summary is None:
                break
            made.append(summary)
        return made

    async def summarize(
        self, channel_id: int, *, keep_recent: int = 0, min_turns: int = 1
    ) -> Summary | None:
        """Summarise the turns after `channel_id`'s summary point but the newest `keep_recent`
        (at most `MAX_TURNS_PER_SUMMARY`), and store the summary; return it, or None when fewer
        than `min_turns` turns are there to summarise.

        Raises `SummaryFailed` when the model fails or is slower than `SUMMARY_DEADLINE`, and
        the store's errors. Cancellation before the store's write stores nothing.
        """
        async with self._limiter:
            point, pending = await self._summaries.pending(channel_id)
            wanted = min(pending - keep_recent, MAX_TURNS_PER_SUMMARY)
            if wanted < min_turns or wanted <= 0:
                return None
            turns = await self._summaries.turns_after(channel_id, point, limit=wanted)
            if not turns:
                return None
            transcript, shown = render_transcript(turns)
            # The transcript may have been cut: the summary covers only the turns it shows.
            turns = turns[:shown]
            text = await self._complete(channel_id, transcript)
            summary = await self._summaries.add(channel_id, turns[0].id, turns[-1].id, text)
            if summary is None:  # pragma: no cover - the limiter makes this a belt and braces
                return None
            self._made += 1
        log.info(
            "summarised turns %d..%d of channel %d",
            summary.first_turn_id,
            summary.last_turn_id,
            channel_id,
        )
        if self._rag is not None:
            path = summary_document_path(channel_id, summary.id)
            await self._rag.store_text(path, _document_text(summary))
        return summary

    def statistics(self) -> SummarizerStatistics:
        return SummarizerStatistics(
            queued=len(self._waiting),
            dropped=self._dropped,
            summaries=self._made,
            failures=self._failures,
            busy=self._limiter.borrowed_tokens > 0,
        )

    async def _complete(self, channel_id: int, transcript: str) -> str:
        messages = [
            ChatMessage(role="system", content=SYSTEM_PROMPT),
            ChatMessage(role="user", content=f"The conversation:\n\n{transcript}"),
        ]
        try:
            with trio.fail_after(SUMMARY_DEADLINE):
                text = await self._backend.complete(messages, self._options)
        except LLMError as exc:
            self._failures += 1
            raise SummaryFailed(f"the model failed: {exc}") from exc
        except trio.TooSlowError as exc:
            self._failures += 1
            raise SummaryFailed(
                f"the model took over {SUMMARY_DEADLINE:.0f} s to summarise channel {channel_id}"
            ) from exc
        text = text.strip()
        if not text:
            self._failures += 1
            raise SummaryFailed("the model answered with nothing")
        return text


def _document_text(summary: Summary) -> str:
    when = datetime.datetime.fromtimestamp(summary.created_at, datetime.UTC)
    return f"Conversation summary ({when:%Y-%m-%d}):\n\n{summary.text}"
