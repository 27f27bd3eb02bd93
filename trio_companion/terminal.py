"""Talking to a persona in the terminal: ``python -m trio_companion chat``.

Theory of operation
-------------------
`run_chat` builds what the bot's chat needs the way `trio_companion.app` does (storage, the
persona library started in the session's nursery, the LLM client, limits and backend, a
`ChatService`) but nothing of Discord. The conversation is stored in the history under a
pseudo-channel derived from the user's name (`terminal_channel_id`), so it continues across runs
in the same data dir and never mixes with a Discord channel.

`TerminalChat.run` reads a line, handles ``/commands``, and otherwise has the chat service answer
into a `TerminalSink`. The reply writer sends a message's whole content on every edit; the sink
prints only what is new (`plan_output` says how other changes are shown). Blocking I/O never runs
on the trio thread: lines are read and text is written in worker threads (`StdioTerminal`).

Signals (`TerminalChat.watch_signals`): SIGINT during a reply cancels that reply, so nothing of it
is stored and the prompt returns; SIGINT at the prompt, or SIGTERM at any time, ends the session.
EOF (Ctrl-D) and ``/quit`` end it too. Every way out closes storage and returns exit code 0.
"""

from __future__ import annotations

import getpass
import io
import re
import signal
import sys
import zlib
from pathlib import Path
from typing import Final, Literal, Protocol, TextIO, TypeAlias, final

import trio

from trio_companion.config import Config
from trio_companion.gateway.tls import make_ssl_context
from trio_companion.services.chat.errors import ChatError
from trio_companion.services.chat.service import ChatRequest, ChatService
from trio_companion.services.chat.writer import EditBudget
from trio_companion.services.llm.factory import (
    make_backend,
    make_limits,
    make_llm_http_client,
    options_from,
)
from trio_companion.services.persona import PersonaLibrary
from trio_companion.services.persona.model import Persona, UnknownPersona
from trio_companion.storage import Store, open_store

__all__ = [
    "Output",
    "SessionPersona",
    "StdioTerminal",
    "Terminal",
    "TerminalChat",
    "TerminalSink",
    "default_user_name",
    "plan_output",
    "run_chat",
    "terminal_channel_id",
]

# A terminal has no rate limit; the writer takes a token per edit, so give it plenty.
TERMINAL_EDITS_PER_SECOND: Final = 1000.0
# 50 redraws a second: token by token for any model one can read along with, and at most 50
# thread hops a second for a very fast one (edits are "latest wins", so nothing is lost).
TERMINAL_EDIT_INTERVAL: Final = 0.02
# The name in the prompt and the history when the OS has none to offer.
FALLBACK_USER_NAME: Final = "you"
# The writer shows its note (why a reply stopped, or "no reply") in italics after a blank line.
_NOTE_BREAK: Final = "\n\n"
# What the writer shows in a message that has no text yet (after a split).
_PLACEHOLDER: Final = "…"
# Control characters (ESC, CR, C1, …) the model could use to redraw the user's terminal.
_CONTROL: Final = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

_Match: TypeAlias = Literal["continues", "shorter", "differs"]

HELP: Final = """\
  /persona        list the personas
  /persona NAME   talk to another persona (by id or name) for this session
  /clear          forget this conversation's history
  /help           this list
  /quit           leave (or Ctrl-D); Ctrl-C stops a reply
"""


def terminal_channel_id(user_name: str) -> int:
    """The history's channel id of ``user_name``'s terminal conversation.

    A 32-bit checksum of the name: nonzero, and far below every Discord snowflake (those carry
    milliseconds since 2015 shifted left by 22 bits), so it is never a real channel's id.
    """
    return zlib.crc32(user_name.casefold().encode()) or 1


def default_user_name() -> str:
    """The OS user's name, else ``"you"``."""
    try:
        name = getpass.getuser()
    except (OSError, KeyError, ImportError):  # no variable set and no passwd entry
        return FALLBACK_USER_NAME
    return name.strip() or FALLBACK_USER_NAME


# --- printing a streamed reply -------------------------------------------------------------


def plan_output(shown: str, document: str) -> tuple[str, str]:
    """What to print when the reply's text changes from ``shown`` to ``document``; returns
    ``(text to print, the new shown)``. Pure: the sink's rules, in one place.

    - A pure extension prints the new part.
    - Whitespace is matched loosely, and fence lines that only ``document`` has are skipped:
      that is how a split into a new message (and a code block closed and reopened) changes
      what was shown. While the writer shortens the full message before it sends the next one,
      the document is shorter than what was shown: nothing is printed, and ``shown`` is kept.
    - A last paragraph in italics that nothing was printed of yet is held back: it may be the
      writer's note, which `TerminalSink.close` shows as one line once the reply's outcome is
      known (or as written, if it was the model's text after all).
    - Anything else (text was rewritten) prints the document again from the start of the line
      where it differs, on a new line.
    """
    end, match = _match(shown, document)
    if match == "shorter":
        return "", shown
    visible = len(document)
    note = _note_start(document)
    if note is not None and note >= end:
        visible = len(document[:note].rstrip())
    now_shown = document[: max(end, visible)]
    if match == "continues":
        return document[end:visible], now_shown
    line_start = document.rfind("\n", 0, end) + 1
    return "\n" + now_shown[line_start:], now_shown


def _match(shown: str, document: str) -> tuple[int, _Match]:
    """Where ``shown`` ends (or stops matching) in ``document``, and how they relate."""
    if document.startswith(shown):  # nearly every edit: no character loop
        return len(shown), "continues"
    i = j = 0
    while i < len(shown):
        if shown[i].isspace() or (j < len(document) and document[j].isspace()):
            i, j = _skip_space(shown, i), _skip_space(document, j)
        elif j < len(document) and document[j] == shown[i]:
            i, j = i + 1, j + 1
        elif (fence_end := _fence_line_end(document, j)) is not None:
            j = fence_end
        else:
            return j, "shorter" if j == len(document) else "differs"
    return j, "continues"


def _skip_space(text: str, index: int) -> int:
    while index < len(text) and text[index].isspace():
        index += 1
    return index


def _fence_line_end(text: str, index: int) -> int | None:
    if (index and text[index - 1] != "\n") or not text.startswith("```", index):
        return None
    newline = text.find("\n", index)
    return len(text) if newline < 0 else newline + 1


def _note_start(document: str) -> int | None:
    """Where the last paragraph starts if it is in italics (``*…*``, not ``**bold**``)."""
    cut = document.rfind(_NOTE_BREAK)
    start = cut + len(_NOTE_BREAK) if cut >= 0 else 0
    last = document[start:]
    italic = len(last) > 2 and last[0] == last[-1] == "*" and not last.startswith("**")
    return start if italic else None


def _messages(count: int) -> str:
    return f"{count} message" if count == 1 else f"{count} messages"


def _printable(text: str) -> str:
    return _CONTROL.sub("", text)


class Output(Protocol):
    """Where the terminal's text goes."""

    async def write(self, text: str) -> None:
        """Print ``text`` (no newline added), in order with earlier writes."""


class Terminal(Output, Protocol):
    async def read_line(self) -> str | None:
        """The next line typed, without its line break; None at end of input."""


@final
class TerminalSink:
    """A `MessageSink` that prints a reply as it streams, after ``speaker> ``.

    Messages are joined into one text (the terminal has no 2000-character limit) and only what
    is new is printed (`plan_output`). Call `close` once the reply is over.
    """

    def __init__(self, out: Output, speaker: str) -> None:
        self._out = out
        self._speaker = speaker
        self._messages: list[str] = []
        self._document = ""
        self._shown = ""
        self._printed = False

    async def typing(self) -> None:
        """Nothing: a terminal cannot take an indicator back once printed."""

    async def send(self, content: str) -> object:
        self._messages.append(content)
        await self._update()
        return len(self._messages) - 1

    async def edit(self, handle: object, content: str) -> None:
        assert isinstance(handle, int)
        self._messages[handle] = content
        await self._update()

    async def close(self, *, failed: str | None = None, cancelled: bool = False) -> None:
        """End the reply: a failure (``Reply.failed``) shows as one line, a cancelled reply as
        "(cancelled)"; text held back as a possible note is printed if it was not one."""
        held = self._document[len(self._shown) :]
        if cancelled:
            await self._print("\n" if self._printed else "", "(cancelled)\n")
        elif failed is not None:
            await self._print("\n" if self._printed else "", f"! {failed}\n")
        elif held.strip():
            await self._print(self._prefix() + _printable(held), "\n")
        elif self._printed:
            await self._print("\n")

    async def _update(self) -> None:
        # The writer shows a placeholder in a new message that has no text yet.
        parts = [m for i, m in enumerate(self._messages) if not (i and m == _PLACEHOLDER)]
        self._document = "\n\n".join(parts)
        text, self._shown = plan_output(self._shown, self._document)
        if text:
            await self._print(self._prefix() + _printable(text))

    def _prefix(self) -> str:
        return "" if self._printed else f"{self._speaker}> "

    async def _print(self, *parts: str) -> None:
        text = "".join(parts)
        if text:
            self._printed = True
            await self._out.write(text)


@final
class StdioTerminal:
    """`Terminal` on stdin/stdout, used from worker threads."""

    def __init__(self, stdin: TextIO | None = None, stdout: TextIO | None = None) -> None:
        self._in = stdin or sys.stdin
        self._out = stdout or sys.stdout
        if isinstance(self._out, io.TextIOWrapper):
            # Model text may hold characters a legacy terminal encoding lacks: show "?" instead
            # of ending the session.
            self._out.reconfigure(errors="replace")
        # One write at a time, in arrival order (CapacityLimiter is FIFO): chunks stay in order
        # even when a write waits on a slow terminal.
        self._writing = trio.CapacityLimiter(1)

    async def write(self, text: str) -> None:
        await trio.to_thread.run_sync(self._write_now, text, limiter=self._writing)

    def _write_now(self, text: str) -> None:
        self._out.write(text)
        self._out.flush()

    async def read_line(self) -> str | None:
        # A blocked readline cannot be interrupted. It is abandoned only when the session ends
        # (a signal at the prompt), after which nobody reads stdin again.
        line = await trio.to_thread.run_sync(self._in.readline, abandon_on_cancel=True)
        return line.rstrip("\r\n") if line else None


# --- the session ---------------------------------------------------------------------------


@final
class SessionPersona:
    """The chat service's persona source for one session: the persona chosen with
    ``--persona`` or ``/persona``, else the configured default. Follows edits of its file."""

    def __init__(self, library: PersonaLibrary) -> None:
        self._library = library
        self._chosen: str | None = None

    def choose(self, query: str) -> Persona:
        """Talk to the persona with this id or name from now on. Raises `UnknownPersona`."""
        persona = self._library.find(query)
        if persona is None:
            raise UnknownPersona(query.strip(), self._library.suggest(query))
        self._chosen = persona.id
        return persona

    async def for_guild(self, guild_id: int | None) -> Persona:
        default = await self._library.for_guild(None)
        chosen = self._library.get(self._chosen) if self._chosen is not None else None
        return chosen or default


@final
class TerminalChat:
    """The conversation loop; see the module docstring."""

    def __init__(
        self,
        *,
        chat: ChatService,
        personas: PersonaLibrary,
        persona: SessionPersona,
        store: Store,
        terminal: Terminal,
        user_name: str,
        use_history: bool = True,
    ) -> None:
        self._chat = chat
        self._library = personas
        self._persona = persona
        self._store = store
        self._terminal = terminal
        self._user = user_name
        self._channel = terminal_channel_id(user_name)
        self._use_history = use_history
        self._turn_scope: trio.CancelScope | None = None
        self._reply_scope: trio.CancelScope | None = None
        self._ending = False

    async def run(self) -> None:
        """Greet, then take turns until the user leaves (EOF, ``/quit``, a signal)."""
        await self._greet()
        while not self._ending:
            with trio.CancelScope() as scope:
                self._turn_scope = scope
                self._ending = not await self._turn()
            self._turn_scope = None
            if scope.cancelled_caught:
                await self._terminal.write("\n")

    async def watch_signals(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Turn SIGINT and SIGTERM into cancelling the reply or ending the session (needs the
        main thread)."""
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            task_status.started()
            async for signum in signals:
                if signum == signal.SIGINT and self._reply_scope is not None:
                    self._reply_scope.cancel("Ctrl-C during the reply")
                    continue
                self._ending = True
                if self._turn_scope is not None:
                    self._turn_scope.cancel(f"received {signal.Signals(signum).name}")

    async def _greet(self) -> None:
        persona = await self._persona.for_guild(None)
        lines = [f"Talking to {persona.name} as {self._user}. /help lists the commands."]
        if not self._use_history:
            lines.append("History is off: every message stands alone.")
        elif earlier := await self._store.history.count(self._channel):
            lines.append(f"{_messages(earlier)} earlier in this conversation; /clear forgets them.")
        lines += [f"! {bad.path}: {bad.problem}" for bad in self._library.statistics().bad_files]
        await self._terminal.write("".join(f"{line}\n" for line in lines))

    async def _turn(self) -> bool:
        """One prompt and its answer; False when the user leaves."""
        await self._terminal.write(f"{self._user}> ")
        line = await self._terminal.read_line()
        if line is None:
            await self._terminal.write("\n")
            return False
        text = line.strip()
        if text.startswith("/"):
            return await self._command(text)
        if text:
            await self._answer(text)
        return True

    async def _answer(self, text: str) -> None:
        persona = await self._persona.for_guild(None)
        sink = TerminalSink(self._terminal, persona.name)
        request = ChatRequest(
            channel_id=self._channel,
            guild_id=None,
            author_id=self._channel,
            author_name=self._user,
            content=text,
            use_history=self._use_history,
        )
        with trio.CancelScope() as scope:
            self._reply_scope = scope
            try:
                reply = await self._chat.reply(request, sink)
            except ChatError as exc:  # the message does not fit: nothing was shown
                await self._terminal.write(f"! {exc}\n")
                return
            finally:
                self._reply_scope = None
        if scope.cancelled_caught:
            await sink.close(cancelled=True)
        else:
            await sink.close(failed=reply.failed)

    async def _command(self, text: str) -> bool:
        name, _, argument = text[1:].partition(" ")
        argument = argument.strip()
        match name.lower():
            case "quit" | "exit":
                return False
            case "help":
                await self._terminal.write(HELP)
            case "clear":
                forgotten = await self._store.history.clear(self._channel)
                await self._terminal.write(f"History cleared ({_messages(forgotten)}).\n")
            case "persona" if argument:
                try:
                    persona = self._persona.choose(argument)
                except UnknownPersona as exc:
                    await self._terminal.write(f"! {exc}\n")
                else:
                    await self._terminal.write(f"Now talking to {persona.name}.\n")
            case "persona":
                current = await self._persona.for_guild(None)
                await self._terminal.write(
                    "".join(
                        f"{'*' if p.id == current.id else ' '} {p.id}: {p.name}"
                        + (f" - {p.description}" if p.description else "")
                        + "\n"
                        for p in self._library.all()
                    )
                )
            case _:
                await self._terminal.write(f"Unknown command /{name}: /help lists them.\n")
        return True


async def run_chat(
    config: Config,
    *,
    persona: str | None = None,
    user_name: str = FALLBACK_USER_NAME,
    use_history: bool = True,
    terminal: Terminal | None = None,
    handle_signals: bool = True,
) -> int:
    """Run a terminal chat session until the user leaves; return the exit code (0).

    Raises `UnknownPersona` for an unknown ``persona`` and `trio_companion.storage.StorageError`
    when the database cannot be opened (in an exception group, as nurseries do).
    ``handle_signals`` needs the main thread.
    """
    # Reads certificate files: once, in a thread (as the app does).
    ssl_context = await trio.to_thread.run_sync(make_ssl_context)
    async with (
        open_store(config.database_path, synchronous=config.storage.synchronous) as store,
        make_llm_http_client(config.llm, ssl_context=ssl_context) as llm_http,
    ):
        library = PersonaLibrary(
            Path(config.chat.personas_dir),
            default_id=config.chat.default_persona,
            settings=store.meta,
        )
        async with trio.open_nursery() as nursery:
            await nursery.start(library.run)
            session_persona = SessionPersona(library)
            if persona is not None:
                session_persona.choose(persona)
            chat = ChatService(
                backend=make_backend(config.llm, llm_http, make_limits(config.llm)),
                store=store,
                personas=session_persona,
                options=options_from(config.llm),
                budget=EditBudget(TERMINAL_EDITS_PER_SECOND),
                history_turns=config.chat.history_turns,
                edit_interval=TERMINAL_EDIT_INTERVAL,
            )
            session = TerminalChat(
                chat=chat,
                personas=library,
                persona=session_persona,
                store=store,
                terminal=terminal or StdioTerminal(),
                user_name=user_name,
                use_history=use_history,
            )
            if handle_signals:
                await nursery.start(session.watch_signals)
            await session.run()
            nursery.cancel_scope.cancel("the chat session ended")
    return 0
