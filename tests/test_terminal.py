"""The terminal chat: the sink's printing rules, then ``python -m trio_companion chat`` as a real
subprocess talking to the fake Ollama of the test.

Real clock (the child is another process); nothing here sleeps: every wait is for text on the
child's stdout or for what the fake recorded.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.fakes.llm_servers import FakeOllama
from trio_companion.terminal import TerminalSink, plan_output, terminal_channel_id

DEADLINE = 30
NAME = "tester"

# --- the sink --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shown", "document", "printed", "now_shown"),
    [
        ("", "Hel", "Hel", "Hel"),
        ("Hel", "Hello", "lo", "Hello"),
        ("Hello", "Hello, world", ", world", "Hello, world"),
        # The writer's note (or an italic last paragraph) is held back until the reply ends.
        ("Hello", "Hello\n\n*The model stopped.*", "", "Hello"),
        ("", "*Can't reach the LLM server.*", "", ""),
        # Once it is not the last paragraph any more, it was the model's text: printed.
        ("Hi", "Hi\n\n*waves* and smiles", "\n\n*waves* and smiles", "Hi\n\n*waves* and smiles"),
        # Italic text already being printed is not held back; bold never is.
        ("Hi\n\n*wav", "Hi\n\n*waves*", "es*", "Hi\n\n*waves*"),
        ("", "**Bold**", "**Bold**", "**Bold**"),
        # A split into a new message: whitespace at the cut differs, nothing is repeated.
        ("One. Two thr", "One.\n\nTwo three", "ee", "One.\n\nTwo three"),
        # ... and while the first message is already cut but the next not sent: nothing.
        ("One. Two thr", "One.", "", "One. Two thr"),
        # A code block closed at the cut and reopened in the next message.
        (
            "```py\na = 1\nb = 2",
            "```py\na = 1\n```\n\n```py\nb = 2\nc = 3",
            "\nc = 3",
            "```py\na = 1\n```\n\n```py\nb = 2\nc = 3",
        ),
        # Rewritten text: shown again from the start of the line that differs, on a new line.
        ("Line one\nThinking hard", "Line one\nThinking deeply", "\nThinking deeply", None),
    ],
)
def test_plan_output(shown: str, document: str, printed: str, now_shown: str | None) -> None:
    assert plan_output(shown, document) == (printed, document if now_shown is None else now_shown)


class Recorder:
    """An `Output` that keeps every write."""

    def __init__(self) -> None:
        self.writes: list[str] = []

    async def write(self, text: str) -> None:
        self.writes.append(text)

    @property
    def text(self) -> str:
        return "".join(self.writes)


async def test_sink_prints_only_the_new_part_of_each_edit() -> None:
    out = Recorder()
    sink = TerminalSink(out, "Mira")
    await sink.typing()
    handle = await sink.send("Hel")
    await sink.edit(handle, "Hello")
    await sink.edit(handle, "Hello")  # unchanged: nothing
    await sink.edit(handle, "Hello, world!")
    await sink.close()
    assert out.writes == ["Mira> Hel", "lo", ", world!", "\n"]


async def test_sink_shows_a_failure_as_one_line_under_the_text() -> None:
    out = Recorder()
    sink = TerminalSink(out, "Mira")
    handle = await sink.send("Hello")
    note = "The reply was cut off after 5 characters: the connection to the LLM server broke."
    await sink.edit(handle, f"Hello\n\n*{note}*")
    await sink.close(failed=note)
    assert out.text == f"Mira> Hello\n! {note}\n"


async def test_sink_shows_a_failure_without_text_as_one_line() -> None:
    out = Recorder()
    sink = TerminalSink(out, "Mira")
    note = "Can't reach the LLM server at http://127.0.0.1:1: is Ollama running?"
    await sink.send(f"*{note}*")
    await sink.close(failed=note)
    assert out.text == f"! {note}\n"


async def test_sink_prints_held_italics_when_they_were_the_models() -> None:
    out = Recorder()
    sink = TerminalSink(out, "Mira")
    handle = await sink.send("Hi")
    await sink.edit(handle, "Hi\n\n*waves*")
    await sink.close()
    assert out.text == "Mira> Hi\n\n*waves*\n"
    out = Recorder()
    sink = TerminalSink(out, "Mira")
    await sink.send("*(no reply)*")
    await sink.close()
    assert out.text == "Mira> *(no reply)*\n"


async def test_sink_joins_split_messages_without_repeating() -> None:
    """The writer's order at a split: shorten the full message, then send the rest, which may
    start as a placeholder."""
    out = Recorder()
    sink = TerminalSink(out, "Mira")
    first = await sink.send("First para.\n\nSecond sta")
    await sink.edit(first, "First para.")
    second = await sink.send("…")
    await sink.edit(second, "Second start")
    await sink.edit(second, "Second start here.")
    await sink.close()
    assert out.text == "Mira> First para.\n\nSecond start here.\n"


async def test_sink_cancelled_and_control_characters() -> None:
    out = Recorder()
    sink = TerminalSink(out, "Mira")
    await sink.send("a\x1b[2Jb\rc")
    await sink.close(cancelled=True)
    assert out.text == "Mira> a[2Jbc\n(cancelled)\n"


def test_terminal_channel_is_per_name_and_never_a_snowflake() -> None:
    assert terminal_channel_id("Tester") == terminal_channel_id("tester")
    assert terminal_channel_id("alice") != terminal_channel_id("bob")
    assert 0 < terminal_channel_id("alice") < 2**32


# --- the subprocess --------------------------------------------------------------------------


class ChatProcess:
    """A running ``python -m trio_companion chat`` with its stdin and stdout piped."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.output = b""
        self._read = 0  # how much of `output` earlier `expect` calls consumed

    async def say(self, line: str) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.send_all(line.encode() + b"\n")

    async def expect(self, text: str) -> str:
        """Wait until ``text`` is printed (after what earlier calls waited for); return the
        output up to and including it."""
        assert self.process.stdout is not None
        needle = text.encode()
        while (found := self.output.find(needle, self._read)) < 0:
            chunk = await self.process.stdout.receive_some()
            if not chunk:
                raise AssertionError(
                    f"the chat ended before printing {text!r}:\n{self.output.decode()}"
                    f"\nstderr:\n{await self.stderr()}"
                )
            self.output += chunk
        start, self._read = self._read, found + len(needle)
        return self.output[start : self._read].decode()

    async def prompt(self) -> str:
        return await self.expect(f"{NAME}> ")

    async def end_input(self) -> int:
        """Close stdin (Ctrl-D); return the exit code."""
        assert self.process.stdin is not None
        await self.process.stdin.aclose()
        return await self.wait()

    async def wait(self) -> int:
        assert self.process.stdout is not None
        while chunk := await self.process.stdout.receive_some():
            self.output += chunk
        return await self.process.wait()

    async def stderr(self) -> str:
        assert self.process.stderr is not None
        if self.process.returncode is None:
            return "(still running)"
        data = b""
        while chunk := await self.process.stderr.receive_some():
            data += chunk
        return data.decode()


def chat_env(tmp_path: Path, fake: FakeOllama) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPANION_")}
    env.pop("DISCORD_TOKEN", None)  # chat needs none
    env.update(
        COMPANION_DATA_DIR=str(tmp_path / "data"),
        COMPANION_LLM_URL=fake.url,
        COMPANION_CHAT_PERSONAS_DIR=str(tmp_path / "personas"),
    )
    return env


@asynccontextmanager
async def chatting(
    tmp_path: Path, fake: FakeOllama, *args: str, name: str = NAME
) -> AsyncIterator[ChatProcess]:
    """The chat as ``name``; killed if the block exits before it ended."""
    argv = [sys.executable, "-m", "trio_companion", "chat", "--name", name, *args]
    process = await trio.lowlevel.open_process(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=chat_env(tmp_path, fake),
        cwd=tmp_path,  # no companion.toml or .env of the developer's
    )
    try:
        yield ChatProcess(process)
    finally:
        if process.returncode is None:
            process.kill()
        with trio.CancelScope(shield=True):
            await process.wait()


def messages(body: Any) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in body["messages"]]


def conversation(body: Any) -> list[tuple[str, str]]:
    """The messages of a chat request after the system message."""
    sent = messages(body)
    assert sent[0][0] == "system"
    return sent[1:]


def answer_by_turn(replies: Sequence[str]) -> Any:
    """A responder answering the n-th request with ``replies[n]``."""
    count = iter(replies)
    return lambda _messages: next(count)


@pytest.fixture
def personas(tmp_path: Path) -> Path:
    folder = tmp_path / "personas"
    folder.mkdir()
    (folder / "aria.toml").write_text(
        'name = "Aria"\ndescription = "A pirate"\nsystem_prompt = "You are Aria, a pirate."\n'
    )
    return folder


async def test_two_turns_stream_and_carry_history(tmp_path: Path, fake_ollama: FakeOllama) -> None:
    fake_ollama.responder = answer_by_turn(["Hello there, tester!", "Still fine, thanks."])
    with trio.fail_after(DEADLINE):
        async with chatting(tmp_path, fake_ollama) as chat:
            greeting = await chat.prompt()
            assert greeting.startswith("Talking to Mira as tester.")
            await chat.say("hi")
            assert await chat.prompt() == "Mira> Hello there, tester!\ntester> "
            await chat.say("how are you?")
            assert await chat.prompt() == "Mira> Still fine, thanks.\ntester> "
            assert await chat.end_input() == 0
    first, second = fake_ollama.chat_bodies
    assert conversation(first) == [("user", "tester: hi")]
    assert "You are Mira" in messages(first)[0][1]
    assert conversation(second) == [
        ("user", "tester: hi"),
        ("assistant", "Hello there, tester!"),
        ("user", "tester: how are you?"),
    ]


async def test_ctrl_c_cancels_the_streaming_reply_then_exits_at_the_prompt(
    tmp_path: Path, fake_ollama: FakeOllama
) -> None:
    fake_ollama.reply = "Once upon a time there was a very long story."
    fake_ollama.stall_after = (3, DEADLINE * 2)  # three words, then silence
    with trio.fail_after(DEADLINE):
        async with chatting(tmp_path, fake_ollama) as chat:
            await chat.prompt()
            await chat.say("tell me a story")
            # Streamed: the first words are on the terminal while the model is still "writing".
            await chat.expect("Mira> Once upon a")
            stream = fake_ollama.streams[0]
            assert (stream.chunks_sent, stream.outcome) == (3, "streaming")
            chat.process.send_signal(signal.SIGINT)
            assert await chat.prompt() == "\n(cancelled)\ntester> "
            await stream.ended.wait()
            assert stream.outcome == "disconnected"

            fake_ollama.stall_after = None
            fake_ollama.reply = "Short one."
            await chat.say("a short one then")
            assert await chat.prompt() == "Mira> Short one.\ntester> "
            chat.process.send_signal(signal.SIGINT)
            assert await chat.wait() == 0
    # Nothing of the cancelled reply (nor its question) is in the history.
    assert conversation(fake_ollama.chat_bodies[1]) == [("user", "tester: a short one then")]


async def test_persona_switching(tmp_path: Path, fake_ollama: FakeOllama, personas: Path) -> None:
    with trio.fail_after(DEADLINE):
        async with chatting(tmp_path, fake_ollama) as chat:
            await chat.prompt()
            await chat.say("/persona")
            listing = await chat.prompt()
            assert "  aria: Aria - A pirate\n" in listing
            assert "* default: Mira" in listing
            await chat.say("/persona arai")
            assert (await chat.prompt()).startswith(
                "! There is no persona called `arai`. Did you mean `aria`"
            )
            await chat.say("/persona Aria")
            assert await chat.prompt() == "Now talking to Aria.\ntester> "
            await chat.say("ahoy")
            assert (await chat.prompt()).startswith("Aria> Hello!")
            assert await chat.end_input() == 0
    assert messages(fake_ollama.chat_bodies[0])[0][1].startswith("You are Aria, a pirate.")

    # Chosen on the command line, by id; an unknown one is one line and exit 2.
    with trio.fail_after(DEADLINE):
        async with chatting(tmp_path, fake_ollama, "--persona", "aria") as chat:
            assert (await chat.prompt()).startswith("Talking to Aria as tester.")
            assert await chat.end_input() == 0
        async with chatting(tmp_path, fake_ollama, "--persona", "nobody") as chat:
            assert await chat.end_input() == 2
            assert (await chat.stderr()).splitlines() == ["There is no persona called `nobody`."]


async def test_clear_forgets_the_conversation(tmp_path: Path, fake_ollama: FakeOllama) -> None:
    with trio.fail_after(DEADLINE):
        async with chatting(tmp_path, fake_ollama) as chat:
            await chat.prompt()
            await chat.say("hi")
            await chat.prompt()
            await chat.say("/clear")
            assert await chat.prompt() == "History cleared (2 messages).\ntester> "
            await chat.say("hi again")
            await chat.prompt()
            await chat.say("/help")
            assert "/clear" in await chat.prompt()
            await chat.say("/nope")
            assert await chat.prompt() == "Unknown command /nope: /help lists them.\ntester> "
            await chat.say("/quit")
            assert await chat.wait() == 0
    assert conversation(fake_ollama.chat_bodies[1]) == [("user", "tester: hi again")]


async def test_llm_down_is_one_line_and_the_session_goes_on(
    tmp_path: Path, fake_ollama: FakeOllama
) -> None:
    with trio.fail_after(DEADLINE):
        async with chatting(tmp_path, fake_ollama) as chat:
            await chat.prompt()
            fake_ollama.down = True
            await chat.say("hi")
            assert await chat.prompt() == (
                f"! Can't reach the LLM server at {fake_ollama.url}: is Ollama running?\ntester> "
            )
            fake_ollama.down = False
            await chat.say("hi again")
            assert await chat.prompt() == "Mira> Hello! How can I help you today?\ntester> "
            assert await chat.end_input() == 0
            assert await chat.stderr() == ""  # no log lines between the conversation's


async def test_history_persists_across_runs_per_name(
    tmp_path: Path, fake_ollama: FakeOllama
) -> None:
    fake_ollama.responder = answer_by_turn(["Got it: 42.", "It was 42.", "Hello, stranger."])
    with trio.fail_after(DEADLINE):
        async with chatting(tmp_path, fake_ollama) as chat:
            await chat.prompt()
            await chat.say("remember 42")
            await chat.prompt()
            assert await chat.end_input() == 0
        async with chatting(tmp_path, fake_ollama) as chat:
            greeting = await chat.prompt()
            assert "2 messages earlier in this conversation" in greeting
            await chat.say("what was the number?")
            await chat.prompt()
            assert await chat.end_input() == 0
        async with chatting(tmp_path, fake_ollama, name="someone else") as chat:
            greeting = await chat.expect("someone else> ")
            assert "earlier" not in greeting
            await chat.say("hi")
            await chat.expect("someone else> ")
            assert await chat.end_input() == 0
    assert conversation(fake_ollama.chat_bodies[1]) == [
        ("user", "tester: remember 42"),
        ("assistant", "Got it: 42."),
        ("user", "tester: what was the number?"),
    ]
    assert conversation(fake_ollama.chat_bodies[2]) == [("user", "someone else: hi")]
    with sqlite3.connect(tmp_path / "data" / "companion.sqlite3") as db:
        rows = db.execute(
            "SELECT count(*) FROM history WHERE channel_id = ?", (terminal_channel_id(NAME),)
        ).fetchone()
    assert rows == (4,)


async def test_no_history_answers_each_message_alone(
    tmp_path: Path, fake_ollama: FakeOllama
) -> None:
    with trio.fail_after(DEADLINE):
        async with chatting(tmp_path, fake_ollama, "--no-history") as chat:
            assert "History is off" in await chat.prompt()
            await chat.say("one")
            await chat.prompt()
            await chat.say("two")
            await chat.prompt()
            assert await chat.end_input() == 0
    assert [conversation(body) for body in fake_ollama.chat_bodies] == [
        [("user", "tester: one")],
        [("user", "tester: two")],
    ]
    assert not (tmp_path / "data" / "companion.sqlite3").exists() or _history_rows(tmp_path) == 0


def _history_rows(tmp_path: Path) -> int:
    with sqlite3.connect(tmp_path / "data" / "companion.sqlite3") as db:
        return int(db.execute("SELECT count(*) FROM history").fetchone()[0])


async def test_unusable_database_is_one_line_and_exit_2(
    tmp_path: Path, fake_ollama: FakeOllama
) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "companion.sqlite3").write_bytes(b"garbage" * 1000)
    with trio.fail_after(DEADLINE):
        async with chatting(tmp_path, fake_ollama) as chat:
            assert await chat.end_input() == 2
            err = await chat.stderr()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1
    assert err.startswith("Cannot open the database")
    assert chat.output == b""
