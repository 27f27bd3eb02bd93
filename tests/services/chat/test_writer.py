"""The reply writer streaming into a channel of the fake Discord, on MockClock.

Text is fed at a fixed rate; assertions are about the requests the fake received: when the
first message appeared, how often it was edited, how long replies continue in new messages,
the typing indicator and the progress note while the model is silent.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing

from tests.fakes.discord_rest import FakeDiscordRest, RecordedRequest
from trio_companion.gateway.rest import RestClient
from trio_companion.services.chat.sinks import ChannelSink
from trio_companion.services.chat.writer import (
    PROGRESS_NOTE,
    EditBudget,
    ReplyWriter,
    open_reply_writer,
)

CHANNEL = 555
DEADLINE = 1000


def of(fake: FakeDiscordRest, method: str, kind: str) -> list[RecordedRequest]:
    return [r for r in fake.requests if r.method == method and r.path.endswith(kind)]


async def feed(writer: ReplyWriter, pieces: list[str], every: float) -> None:
    for piece in pieces:
        await trio.sleep(every)
        writer.append(piece)


@pytest.fixture
def channel(fake_discord_rest: FakeDiscordRest) -> FakeDiscordRest:
    fake_discord_rest.add_channel(CHANNEL)
    return fake_discord_rest


async def test_first_text_shows_at_once_then_one_edit_per_interval(
    autojump_clock: trio.testing.MockClock, channel: FakeDiscordRest, rest_client: RestClient
) -> None:
    with trio.fail_after(DEADLINE):
        start = trio.current_time()
        sink = ChannelSink(rest_client, CHANNEL, reply_to=None)
        async with open_reply_writer(sink, EditBudget(50), interval=1.0) as writer:
            await feed(writer, ["word "] * 50, every=0.1)  # 10 pieces per second for 5 s
            writer.finish()
    creates = of(channel, "POST", "/messages")
    edits = of(channel, "PATCH", "")
    assert len(creates) == 1
    assert creates[0].arrived_at - start == pytest.approx(0.1, abs=0.01)
    gaps = [b.arrived_at - a.arrived_at for a, b in zip(creates + edits, edits, strict=False)]
    assert all(gap >= 1.0 - 1e-6 for gap in gaps[:-1])  # the last edit comes with finish()
    assert 4 <= len(edits) <= 6
    assert channel.messages(CHANNEL)[0]["content"] == ("word " * 50).strip()
    assert writer.first_visible_at is not None


async def test_long_replies_continue_in_new_messages(
    autojump_clock: trio.testing.MockClock, channel: FakeDiscordRest, rest_client: RestClient
) -> None:
    paragraph = "This sentence is part of a long answer. " * 10 + "\n\n"
    with trio.fail_after(DEADLINE):
        sink = ChannelSink(rest_client, CHANNEL, reply_to=None)
        async with open_reply_writer(sink, EditBudget(50), interval=1.0) as writer:
            await feed(writer, [paragraph] * 12, every=0.3)
    messages = [m["content"] for m in channel.messages(CHANNEL)]
    assert len(messages) >= 3
    assert all(len(m) <= 2000 for m in messages)
    assert " ".join(" ".join(messages).split()) == " ".join((paragraph * 12).split())


async def test_typing_then_progress_note_while_the_model_is_silent(
    autojump_clock: trio.testing.MockClock, channel: FakeDiscordRest, rest_client: RestClient
) -> None:
    with trio.fail_after(DEADLINE):
        start = trio.current_time()
        sink = ChannelSink(rest_client, CHANNEL, reply_to=None)
        async with open_reply_writer(sink, EditBudget(50), interval=1.0) as writer:
            await trio.sleep(30)
            writer.append("Finally.")
    typing = [r.arrived_at - start for r in of(channel, "POST", "/typing")]
    assert typing == pytest.approx([0, 8, 16, 24], abs=0.01)
    creates = of(channel, "POST", "/messages")
    assert len(creates) == 1  # the note, later edited into the answer
    assert creates[0].json["content"] == PROGRESS_NOTE
    assert creates[0].arrived_at - start == pytest.approx(16, abs=0.01)
    assert [m["content"] for m in channel.messages(CHANNEL)] == ["Finally."]


async def test_an_error_is_shown_under_the_partial_reply(
    autojump_clock: trio.testing.MockClock, channel: FakeDiscordRest, rest_client: RestClient
) -> None:
    with trio.fail_after(DEADLINE):
        sink = ChannelSink(rest_client, CHANNEL, reply_to=None)
        async with open_reply_writer(sink, EditBudget(50), interval=1.0) as writer:
            await feed(writer, ["It was a dark ", "and stormy"], every=0.5)
            writer.finish("The model stopped answering.")
    [message] = channel.messages(CHANNEL)
    assert message["content"] == "It was a dark and stormy\n\n*The model stopped answering.*"


async def test_an_empty_or_failed_reply_still_says_something(
    autojump_clock: trio.testing.MockClock, channel: FakeDiscordRest, rest_client: RestClient
) -> None:
    with trio.fail_after(DEADLINE):
        sink = ChannelSink(rest_client, CHANNEL, reply_to=None)
        async with open_reply_writer(sink, EditBudget(50), interval=1.0) as writer:
            writer.finish("Can't reach the LLM server.")
        async with open_reply_writer(sink, EditBudget(50), interval=1.0):
            pass
    contents = [m["content"] for m in channel.messages(CHANNEL)]
    assert contents == ["*Can't reach the LLM server.*", "*(no reply)*"]


async def test_the_first_message_replies_to_the_user(
    autojump_clock: trio.testing.MockClock, channel: FakeDiscordRest, rest_client: RestClient
) -> None:
    asked = await rest_client.create_message(CHANNEL, "hi bot")
    with trio.fail_after(DEADLINE):
        sink = ChannelSink(rest_client, CHANNEL, reply_to=asked.id)
        async with open_reply_writer(sink, EditBudget(50), interval=1.0) as writer:
            writer.append("x" * 2500)
    creates = of(channel, "POST", "/messages")[1:]
    assert len(creates) == 2
    assert creates[0].json["message_reference"]["message_id"] == str(asked.id)
    assert "message_reference" not in creates[1].json


async def test_shared_budget_paces_many_writers(
    autojump_clock: trio.testing.MockClock, channel: FakeDiscordRest, rest_client: RestClient
) -> None:
    """20 conversations streaming at once share 10 edits per second."""
    budget = EditBudget(10)
    channels = [CHANNEL + n for n in range(1, 21)]
    for c in channels:
        channel.add_channel(c)

    async def converse(channel_id: int) -> None:
        sink = ChannelSink(rest_client, channel_id, reply_to=None)
        async with open_reply_writer(sink, budget, interval=1.0) as writer:
            await feed(writer, ["token "] * 100, every=0.05)

    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            for c in channels:
                nursery.start_soon(converse, c)
    writes = sorted(
        r.arrived_at
        for r in channel.requests
        if (r.method == "POST" and r.path.endswith("/messages")) or r.method == "PATCH"
    )
    # Never more than the budget's burst plus its rate over any second.
    for t in writes:
        assert len([u for u in writes if t <= u < t + 1.0]) <= 20
    for c in channels:
        assert channel.messages(c)[0]["content"] == ("token " * 100).strip()
    assert all(r.status in (200, 204) for r in channel.requests)  # no 429
