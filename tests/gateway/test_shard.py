"""The shard against the fake gateway over real TLS websockets, on trio's MockClock.

Covers identify, heartbeat timing and jitter, server heartbeat requests, zombie detection,
op 7 / op 9 / close-code handling, resume at resume_gateway_url with replay, fatal closes,
reconnect backoff, the send budget, and a slow consumer not causing zombie closes.
"""

from __future__ import annotations

import itertools
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import trio
import trio.testing

from tests.fakes.discord_gateway import FakeGateway
from tests.fakes.discord_rest import FAKE_TOKEN
from trio_companion.gateway.errors import FatalGatewayClose
from trio_companion.gateway.events import MessageCreate, Ready, Resumed
from trio_companion.gateway.identify import IdentifyGate
from trio_companion.gateway.protocol import (
    Opcode,
    Presence,
    default_intents,
    encode_presence_update,
    reconnect_delay,
)
from trio_companion.gateway.shard import Shard, ShardEvent
from trio_companion.gateway.tls import make_ssl_context

DEADLINE = 10_000  # virtual seconds: the MockClock jumps, a hang fails fast
JITTER = 0.5


@dataclass
class Rig:
    fake: FakeGateway
    shard: Shard
    events: trio.MemoryReceiveChannel[ShardEvent]
    nursery: trio.Nursery

    async def next_event(self) -> Any:
        _, event = await self.events.receive()
        return event


def message_body(n: int) -> dict[str, Any]:
    return {
        "id": str(1000 + n),
        "channel_id": "5",
        "author": {"id": "30", "username": "ann"},
        "content": f"hello {n}",
        "timestamp": "2026-11-28T12:00:00+00:00",
    }


@asynccontextmanager
async def rig(
    server_ssl_context: ssl.SSLContext,
    *,
    queue: int = 100,
    token: str = FAKE_TOKEN,
    start: bool = True,
    **knobs: Any,
) -> AsyncIterator[Rig]:
    fake = FakeGateway(token=FAKE_TOKEN, **knobs)
    send, receive = trio.open_memory_channel[ShardEvent](queue)
    async with trio.open_nursery() as nursery:
        url = await nursery.start(fake.run, server_ssl_context)
        shard = Shard(
            token=token,
            intents=default_intents(members=False),
            shard_id=0,
            shard_count=1,
            gateway_url=url,
            identify_gate=IdentifyGate(1, total=1000, remaining=1000, reset_after=0),
            events=send,
            ssl_context=make_ssl_context(),
            rng=lambda: JITTER,
        )
        if start:
            await nursery.start(shard.run)
        yield Rig(fake, shard, receive, nursery)
        nursery.cancel_scope.cancel()


pytestmark = pytest.mark.usefixtures("trust_fake_ca")


async def test_identify_then_ready(
    autojump_clock: trio.testing.MockClock, server_ssl_context: ssl.SSLContext
) -> None:
    with trio.fail_after(DEADLINE):
        async with rig(server_ssl_context) as r:
            ready = await r.next_event()
            assert isinstance(ready, Ready)
            conn = await r.fake.wait_connection(0)
            assert conn.compress == "zlib-stream"
            assert conn.query["v"] == "10"
            identify = conn.identify
            assert identify is not None
            assert identify["token"] == FAKE_TOKEN
            assert identify["intents"] == 37505
            assert identify["shard"] == [0, 1]
            assert set(identify["properties"]) == {"os", "browser", "device"}
            stats = r.shard.statistics()
            assert stats.connected
            assert stats.session_id == ready.session_id
    assert r.fake.errors == []


async def test_heartbeats_jittered_then_every_interval(
    autojump_clock: trio.testing.MockClock, server_ssl_context: ssl.SSLContext
) -> None:
    with trio.fail_after(DEADLINE):
        async with rig(server_ssl_context, heartbeat_interval_ms=40_000) as r:
            conn = await r.fake.wait_connection(0)
            await conn.wait_op(Opcode.HEARTBEAT, count=3)
            beats = [t for t, op, _ in conn.received if op == Opcode.HEARTBEAT]
            hello_at = conn.opened_at
            # First beat after interval * jitter (0.5 here), then one per interval.
            assert beats[0] - hello_at == pytest.approx(20.0, abs=0.01)
            assert beats[1] - beats[0] == pytest.approx(40.0)
            assert beats[2] - beats[1] == pytest.approx(40.0)
            assert r.shard.latency is not None
    assert r.fake.errors == []


async def test_server_heartbeat_request_is_answered_at_once(
    autojump_clock: trio.testing.MockClock, server_ssl_context: ssl.SSLContext
) -> None:
    with trio.fail_after(DEADLINE):
        async with rig(server_ssl_context) as r:
            conn = await r.fake.wait_connection(0)
            await conn.wait_established()
            asked_at = trio.current_time()
            await conn.send_op(Opcode.HEARTBEAT)
            await conn.wait_op(Opcode.HEARTBEAT)
            answered = [t for t, op, _ in conn.received if op == Opcode.HEARTBEAT]
            assert answered[0] == pytest.approx(asked_at, abs=0.01)


async def test_zombie_connection_is_closed_and_resumed(
    autojump_clock: trio.testing.MockClock, server_ssl_context: ssl.SSLContext
) -> None:
    with trio.fail_after(DEADLINE):
        async with rig(server_ssl_context, heartbeat_interval_ms=10_000) as r:
            first = await r.fake.wait_connection(0)
            await first.wait_established()
            r.fake.ack_heartbeats = False
            second = await r.fake.wait_connection(1)
            # The first beat without an ACK is followed, one interval later, by the close.
            assert first.closed_code == 4000
            r.fake.ack_heartbeats = True
            await second.wait_established()
            assert second.resumed
            assert second.via_resume_url
            assert isinstance(await r.next_event(), Ready)
            assert isinstance(await r.next_event(), Resumed)


async def test_reconnect_request_resumes_with_replay(
    autojump_clock: trio.testing.MockClock, server_ssl_context: ssl.SSLContext
) -> None:
    with trio.fail_after(DEADLINE):
        async with rig(server_ssl_context) as r:
            first = await r.fake.wait_connection(0)
            await first.wait_established()
            assert isinstance(await r.next_event(), Ready)
            await first.dispatch("MESSAGE_CREATE", message_body(1))
            event = await r.next_event()
            assert isinstance(event, MessageCreate)
            await first.send_op(Opcode.RECONNECT)
            # Events dispatched while the bot is away are replayed on resume.
            await first.ended.wait()
            await r.fake.dispatch("MESSAGE_CREATE", message_body(2))
            second = await r.fake.wait_connection(1)
            await second.wait_established()
            assert second.resumed
            assert second.via_resume_url
            replayed = await r.next_event()
            assert isinstance(replayed, MessageCreate)
            assert replayed.content == "hello 2"
            assert isinstance(await r.next_event(), Resumed)
            assert first.closed_code == 4000  # not 1000: that would end the session
    assert r.fake.errors == []


@pytest.mark.parametrize(
    ("how", "resumes"),
    [
        ("op9-false", False),
        ("op9-true", True),
        ("close-4000", True),
        ("close-4007", False),
        ("close-4009", False),
        ("close-1001", True),
        ("drop", True),
    ],
)
async def test_session_endings(
    autojump_clock: trio.testing.MockClock,
    server_ssl_context: ssl.SSLContext,
    how: str,
    resumes: bool,
) -> None:
    with trio.fail_after(DEADLINE):
        async with rig(server_ssl_context) as r:
            first = await r.fake.wait_connection(0)
            await first.wait_established()
            ended_at = trio.current_time()
            if how.startswith("op9"):
                await first.send_op(Opcode.INVALID_SESSION, how == "op9-true")
            elif how == "drop":
                await first.drop()
            else:
                await first.close(int(how.removeprefix("close-")))
            second = await r.fake.wait_connection(1)
            await second.wait_established()
            assert second.resumed is resumes
            assert second.identified is not resumes
            if not resumes and how == "op9-false":
                # The docs: wait a random 1-5 s before identifying again.
                identified_at = r.fake.identifies[-1]
                assert 1.0 <= identified_at - ended_at <= 5.0 + 0.1


@pytest.mark.parametrize(
    ("code", "explanation"),
    [
        (4004, "Discord rejected the token (4004)"),
        (4010, "(4010)"),
        (4013, "(4013)"),
        (4014, "Discord refused a privileged intent (4014)"),
    ],
)
async def test_fatal_close_stops_the_shard(
    autojump_clock: trio.testing.MockClock,
    server_ssl_context: ssl.SSLContext,
    code: int,
    explanation: str,
) -> None:
    with (
        trio.fail_after(DEADLINE),
        pytest.RaisesGroup(
            pytest.RaisesExc(
                FatalGatewayClose, match=explanation.replace("(", r"\(").replace(")", r"\)")
            ),
            flatten_subgroups=True,
        ),
    ):
        async with rig(server_ssl_context, start=False) as r:
            r.nursery.start_soon(r.shard.run)
            conn = await r.fake.wait_connection(0)
            await conn.wait_established()
            await conn.close(code)
            await trio.sleep_forever()
    assert len(r.fake.connections) == 1  # no reconnect loop


async def test_bad_token_is_fatal_without_retry(
    autojump_clock: trio.testing.MockClock, server_ssl_context: ssl.SSLContext
) -> None:
    with (
        trio.fail_after(DEADLINE),
        pytest.RaisesGroup(
            pytest.RaisesExc(FatalGatewayClose, match="rejected the token"), flatten_subgroups=True
        ),
    ):
        async with rig(server_ssl_context, token="wrong.token.here", start=False) as r:
            await r.shard.run()
    assert len(r.fake.connections) == 1


async def test_quick_deaths_back_off_exponentially(
    autojump_clock: trio.testing.MockClock, server_ssl_context: ssl.SSLContext
) -> None:
    with trio.fail_after(DEADLINE):
        async with rig(server_ssl_context, start=False) as r:
            r.nursery.start_soon(r.shard.run)
            starts = []
            for index in range(6):
                conn = await r.fake.wait_connection(index)
                starts.append(conn.opened_at)
                await conn.wait_established()
                await conn.close(4000)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    expected = [reconnect_delay(attempt, JITTER) for attempt in range(5)]
    assert gaps == pytest.approx(expected, abs=0.05)
    assert expected == [0.5, 1.0, 2.0, 4.0, 8.0]


async def test_sends_stay_within_the_budget(
    autojump_clock: trio.testing.MockClock, server_ssl_context: ssl.SSLContext
) -> None:
    with trio.fail_after(DEADLINE):
        async with rig(server_ssl_context, heartbeat_interval_ms=5_000) as r:
            conn = await r.fake.wait_connection(0)
            await conn.wait_established()
            payload = encode_presence_update(Presence(status="idle"))
            for _ in range(200):
                await r.shard.send(payload)
            await conn.wait_op(Opcode.PRESENCE_UPDATE, count=200)
            assert conn.server_close_code is None  # never 4008
            assert len(r.fake.connections) == 1
            times = [t for t, _, _ in conn.received]
            for i, t in enumerate(times):
                assert len([u for u in times[: i + 1] if u > t - 60]) <= 120
    assert r.fake.errors == []


async def test_a_blocked_consumer_is_not_a_zombie(
    autojump_clock: trio.testing.MockClock, server_ssl_context: ssl.SSLContext
) -> None:
    """Nobody reads events: the reader blocks, but heartbeats go on and no zombie close."""
    with trio.fail_after(DEADLINE):
        async with rig(server_ssl_context, queue=0, heartbeat_interval_ms=10_000) as r:
            conn = await r.fake.wait_connection(0)
            await conn.wait_established()
            for n in range(5):
                await conn.dispatch("MESSAGE_CREATE", message_body(n))
            await conn.wait_op(Opcode.HEARTBEAT, count=6)
            assert conn.live
            assert len(r.fake.connections) == 1
            # Once the consumer reads, everything arrives in order.
            seen = [await r.next_event() for _ in range(6)]
            assert [type(e).__name__ for e in seen] == ["Ready"] + ["MessageCreate"] * 5
