"""Self-tests of the fake gateway, driven by trio-websocket's own client over loopback TLS.

The bot's gateway client is not used here: these tests pin down what the fake does, so that the
client's tests can rely on it. Timed behaviour runs under ``autojump_clock``.
"""

from __future__ import annotations

import json
import ssl
import zlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import pytest
import trio
import trustme
from trio_websocket import ConnectionClosed, WebSocketConnection, wrap_client_stream

from tests.fakes.discord_gateway import FakeGateway, open_fake_gateway
from trio_companion.gateway.compression import ZLIB_SUFFIX
from trio_companion.gateway.events import Ready, decode_event

TOKEN = "fake-token"
QUERY = "v=10&encoding=json"
INTENTS = 37505  # PROTOCOL.md 2: GUILDS|GUILD_VOICE_STATES|GUILD_MESSAGES|DMS|MESSAGE_CONTENT
GUILD = {"id": "81384788765712384", "name": "Fake guild", "channels": [], "voice_states": []}


class Client:
    """A bare gateway client: JSON text frames out; text, zlib- or zstd-stream frames in."""

    def __init__(self, ws: WebSocketConnection, compress: str | None = None) -> None:
        self.ws = ws
        self._inflate: Callable[[bytes], bytes] | None = None
        self._buffer = b""
        if compress == "zlib-stream":
            self._inflate = zlib.decompressobj().decompress
        elif compress == "zstd-stream":
            zstandard = pytest.importorskip("zstandard")
            self._inflate = zstandard.ZstdDecompressor().decompressobj().decompress
        self.compress = compress

    async def recv(self) -> dict[str, Any]:
        while True:
            message = await self.ws.get_message()
            if isinstance(message, str):
                assert self._inflate is None, "text frame on a compressed connection"
                return dict(json.loads(message))
            assert self._inflate is not None, "binary frame on an uncompressed connection"
            self._buffer += message
            if self.compress == "zlib-stream" and not self._buffer.endswith(ZLIB_SUFFIX):
                continue
            data, self._buffer = self._inflate(self._buffer), b""
            return dict(json.loads(data))

    async def send(self, op: int, d: Any) -> None:
        await self.ws.send_message(json.dumps({"op": op, "d": d}))

    async def identify(self, **overrides: Any) -> dict[str, Any]:
        """Send Identify; return READY."""
        await self.send(2, identify_body(**overrides))
        ready = await self.recv()
        assert (ready["op"], ready["t"]) == (0, "READY"), ready
        return ready

    async def closed_code(self) -> int:
        """Read until the connection closes; return the close code (-1 if none is known)."""
        try:
            while True:
                await self.recv()
        except ConnectionClosed as closed:
            return -1 if closed.reason is None else closed.reason.code


def identify_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "token": TOKEN,
        "intents": INTENTS,
        "properties": {"os": "linux", "browser": "tests", "device": "tests"},
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


@pytest.fixture
def client_ssl(fake_ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    fake_ca.configure_trust(context)
    return context


@pytest.fixture
async def gateway(nursery: trio.Nursery, server_ssl_context: ssl.SSLContext) -> FakeGateway:
    fake = FakeGateway(token=TOKEN, heartbeat_interval_ms=1_000, guilds=[GUILD])
    await nursery.start(fake.run, server_ssl_context)
    return fake


Connect = Callable[..., AbstractAsyncContextManager[Client]]


@pytest.fixture
def connect(client_ssl: ssl.SSLContext) -> Connect:
    """``async with connect(url, query=..., compress=..., hello=True) as client``: a `Client`
    that has read Hello unless ``hello`` is False; closes with 1000 on exit."""

    @asynccontextmanager
    async def open_client(
        url: str, *, query: str = QUERY, compress: str | None = None, hello: bool = True
    ) -> AsyncIterator[Client]:
        # trio-websocket's open_websocket_url leaves the client socket open when the *server*
        # closes first (a ResourceWarning, an error here), so the test owns the TLS stream.
        parts = urlsplit(url)
        assert parts.hostname is not None
        assert parts.port is not None
        resource = f"{parts.path}?{query}" + (f"&compress={compress}" if compress else "")
        stream = await trio.open_ssl_over_tcp_stream(
            parts.hostname, parts.port, ssl_context=client_ssl, https_compatible=True
        )
        async with stream, trio.open_nursery() as nursery:
            ws = await wrap_client_stream(nursery, stream, parts.hostname, resource)
            client = Client(ws, compress)
            if hello:
                message = await client.recv()
                assert message["op"] == 10, message
            yield client
            await ws.aclose()
            nursery.cancel_scope.cancel()

    return open_client


async def test_hello_comes_first_and_the_connection_is_recorded(
    gateway: FakeGateway, connect: Connect
) -> None:
    with trio.fail_after(10):
        async with connect(gateway.url, hello=False) as client:
            hello = await client.recv()
            conn = await gateway.wait_connection(0)
            assert conn.compress is None
        assert hello == {"op": 10, "d": {"heartbeat_interval": 1_000}, "s": None, "t": None}
        assert (conn.path, conn.query, conn.compress) == (
            "/",
            {"v": "10", "encoding": "json"},
            None,
        )
        await conn.ended.wait()
        assert conn.closed_code == 1000  # trio-websocket's default close
        assert gateway.errors == []


async def test_identify_gets_ready_then_guild_create(
    gateway: FakeGateway, connect: Connect
) -> None:
    with trio.fail_after(10):
        async with connect(gateway.url) as client:
            ready = await client.identify(shard=[0, 1])
            guild_create = await client.recv()
            conn = await gateway.wait_connection(0)
            assert conn.live
        assert ready["s"] == 1
        assert ready["d"]["resume_gateway_url"] == gateway.resume_url
        assert ready["d"]["guilds"] == [{"id": GUILD["id"], "unavailable": True}]
        event = decode_event("READY", json.dumps(ready["d"]))
        assert isinstance(event, Ready)
        assert event.session_id == conn.session_id == "sess-1"
        assert event.user.bot
        assert event.user.id == gateway.bot_user_id
        assert event.application.id == gateway.application_id
        assert event.shard == (0, 1)
        assert (guild_create["t"], guild_create["s"], guild_create["d"]) == (
            "GUILD_CREATE",
            2,
            GUILD,
        )
        assert conn.identify is not None
        assert conn.identify["intents"] == INTENTS
        assert len(gateway.identifies) == 1
        assert gateway.errors == []


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        pytest.param({"token": "wrong"}, 4004, id="bad-token"),
        pytest.param({"intents": 1 << 18}, 4013, id="unknown-intent-bit"),
        pytest.param({"intents": "37505"}, 4013, id="intents-not-int"),
        pytest.param({"shard": [1, 1]}, 4010, id="shard-out-of-range"),
        pytest.param({"properties": {"os": "linux"}}, 4002, id="incomplete-properties"),
    ],
)
async def test_identify_is_validated(
    gateway: FakeGateway, connect: Connect, overrides: dict[str, Any], code: int
) -> None:
    with trio.fail_after(10):
        async with connect(gateway.url) as client:
            await client.send(2, identify_body(**overrides))
            assert await client.closed_code() == code
        conn = gateway.connections[0]
        assert conn.server_close_code == code
        assert not conn.established


async def test_privileged_intents_need_allowing(gateway: FakeGateway, connect: Connect) -> None:
    gateway.allowed_privileged = 1 << 1  # GUILD_MEMBERS only; INTENTS has MESSAGE_CONTENT
    with trio.fail_after(10):
        async with connect(gateway.url) as client:
            await client.send(2, identify_body())
            assert await client.closed_code() == 4014
        async with connect(gateway.url) as client:
            await client.identify(intents=INTENTS & ~(1 << 15) | 1 << 1)


async def test_second_identify_closes_4005(gateway: FakeGateway, connect: Connect) -> None:
    with trio.fail_after(10):
        async with connect(gateway.url) as client:
            await client.identify()
            await client.recv()  # GUILD_CREATE
            await client.send(2, identify_body())
            assert await client.closed_code() == 4005


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        pytest.param('{"op":3,"d":{"status":"online"}}', 4003, id="presence-before-identify"),
        pytest.param('{"op":5,"d":null}', 4001, id="unknown-op"),
        pytest.param('{"op":10,"d":null}', 4001, id="server-only-op"),
        pytest.param('{"op":1,"d":nul', 4002, id="invalid-json"),
        pytest.param('{"d":null}', 4002, id="no-op"),
        pytest.param("[1]", 4002, id="not-an-object"),
    ],
)
async def test_bad_frames_close(
    gateway: FakeGateway, connect: Connect, frame: str, code: int
) -> None:
    with trio.fail_after(10):
        async with connect(gateway.url) as client:
            await client.ws.send_message(frame)
            assert await client.closed_code() == code


@pytest.mark.parametrize(
    ("query", "code"),
    [("v=9&encoding=json", 4012), ("v=10&encoding=etf", 4002), (QUERY + "&compress=br", 4002)],
)
async def test_bad_query_closes(
    gateway: FakeGateway, connect: Connect, query: str, code: int
) -> None:
    with trio.fail_after(10):
        async with connect(gateway.url, query=query, hello=False) as client:
            assert await client.closed_code() == code


async def test_frames_are_limited_to_4096_bytes(gateway: FakeGateway, connect: Connect) -> None:
    def heartbeat_of(size: int) -> str:
        head = '{"op":1,"d":null,"pad":"'
        return head + "x" * (size - len(head) - 2) + '"}'

    with trio.fail_after(10):
        async with connect(gateway.url) as client:
            await client.ws.send_message(heartbeat_of(4096))
            assert (await client.recv())["op"] == 11
            await client.ws.send_message(heartbeat_of(4097))
            assert await client.closed_code() == 4002
        assert len(gateway.connections[0].received) == 1


async def test_heartbeats_are_acked_unless_withheld(gateway: FakeGateway, connect: Connect) -> None:
    with trio.fail_after(10):
        async with connect(gateway.url) as client:
            await client.send(1, None)
            assert await client.recv() == {"op": 11, "d": None, "s": None, "t": None}
            gateway.ack_heartbeats = False
            await client.send(1, None)
            conn = gateway.connections[0]
            await conn.wait_op(1, count=2)
            gateway.ack_heartbeats = True
            await client.send(1, None)
            assert (await client.recv())["op"] == 11
            ready = await client.identify()  # nothing else was queued before READY
        acks = [p for _, p in conn.sent if p["op"] == 11]
        assert len(acks) == 2
        assert len(conn.frames(1)) == 3
        assert ready["s"] == 1


async def test_heartbeat_seq_is_checked(gateway: FakeGateway, connect: Connect) -> None:
    with trio.fail_after(10):
        async with connect(gateway.url) as client:
            await client.identify()
            await client.recv()  # GUILD_CREATE, seq 2
            await client.send(1, 2)
            await client.recv()
            assert gateway.errors == []
            await client.send(1, None)  # forgot the seq it had for a whole interval
            await client.recv()
            await client.send(1, 7)  # a seq never sent
            await client.recv()
        assert len(gateway.errors) == 2, gateway.errors
        assert "d=None" in gateway.errors[0]
        assert "d=7" in gateway.errors[1]


async def test_server_asks_for_a_heartbeat(gateway: FakeGateway, connect: Connect) -> None:
    with trio.fail_after(10):
        async with connect(gateway.url) as client:
            conn = await gateway.wait_connection(0)
            assert await conn.send_op(1)
            assert await client.recv() == {"op": 1, "d": None, "s": None, "t": None}
            await client.send(1, None)
            assert await conn.wait_op(1) is None


async def test_resume_replays_missed_dispatches_then_resumed(
    gateway: FakeGateway, connect: Connect
) -> None:
    with trio.fail_after(10):
        async with connect(gateway.url) as client:
            ready = await client.identify()
            await client.recv()  # GUILD_CREATE 2
            first = await gateway.wait_live_connection()
            assert await first.dispatch("TYPING_START", {"n": 3}) == 3
            assert (await client.recv())["s"] == 3
            await client.ws.aclose(4000)  # resumable, unlike 1000/1001
        await first.ended.wait()
        assert first.closed_code == 4000
        session_id = ready["d"]["session_id"]
        assert await gateway.dispatch("MESSAGE_CREATE", {"n": 4}) == 4  # missed: kept for replay
        assert await gateway.dispatch("MESSAGE_CREATE", {"n": 5}, session_id=session_id) == 5
        async with connect(ready["d"]["resume_gateway_url"]) as client:
            await client.send(6, {"token": TOKEN, "session_id": session_id, "seq": 3})
            replayed = [await client.recv() for _ in range(3)]
            second = await gateway.wait_live_connection()
            assert await second.dispatch("MESSAGE_CREATE", {"n": 7}) == 7
            assert (await client.recv())["d"] == {"n": 7}
            await client.send(1, 7)
            assert (await client.recv())["op"] == 11
        assert [(m["s"], m["t"], m["d"]) for m in replayed] == [
            (4, "MESSAGE_CREATE", {"n": 4}),
            (5, "MESSAGE_CREATE", {"n": 5}),
            (6, "RESUMED", {}),
        ]
        assert second.via_resume_url
        assert second.resumed
        assert second.path == "/resume/"
        assert second.session_id == session_id
        assert second.seq == 7
        assert len(gateway.resumes) == 1
        assert gateway.errors == []


async def test_resume_with_seq_the_session_never_reached_closes_4007(
    gateway: FakeGateway, connect: Connect
) -> None:
    with trio.fail_after(10):
        async with connect(gateway.url) as client:
            ready = await client.identify()
            await client.ws.aclose(4000)
        async with connect(gateway.resume_url) as client:
            await client.send(6, {"token": TOKEN, "session_id": ready["d"]["session_id"], "seq": 9})
            assert await client.closed_code() == 4007


@pytest.mark.parametrize("how", ["client-close-1000", "client-close-1001", "invalidated", "op9"])
async def test_resume_of_an_ended_session_gets_op9_false(
    gateway: FakeGateway, connect: Connect, how: str
) -> None:
    gateway.max_concurrency = 2  # the second Identify follows the first at once
    with trio.fail_after(10):
        async with connect(gateway.url) as client:
            ready = await client.identify()
            conn = gateway.connections[0]
            if how == "op9":
                await conn.send_op(9, False)
                assert (await client.recv())["t"] == "GUILD_CREATE"
                assert (await client.recv())["op"] == 9
            code = 1001 if how == "client-close-1001" else 1000 if how.startswith("c") else 4000
            await client.ws.aclose(code)
        await conn.ended.wait()
        if how == "invalidated":
            gateway.invalidate_session()
        async with connect(gateway.resume_url) as client:
            await client.send(6, {"token": TOKEN, "session_id": ready["d"]["session_id"], "seq": 1})
            assert await client.recv() == {"op": 9, "d": False, "s": None, "t": None}
            await client.identify()  # the same connection may Identify afresh
        assert gateway.errors == []


async def test_resume_with_unknown_session_or_wrong_token_gets_op9_false(
    gateway: FakeGateway, connect: Connect
) -> None:
    with trio.fail_after(10):
        async with connect(gateway.url) as client:
            ready = await client.identify()
            await client.ws.aclose(4000)
        for body in (
            {"token": TOKEN, "session_id": "nope", "seq": 1},
            {"token": "wrong", "session_id": ready["d"]["session_id"], "seq": 1},
        ):
            async with connect(gateway.resume_url) as client:
                await client.send(6, body)
                assert (await client.recv())["op"] == 9


async def test_resume_to_the_identify_url_is_recorded(
    gateway: FakeGateway, connect: Connect
) -> None:
    with trio.fail_after(10):
        async with connect(gateway.url) as client:
            ready = await client.identify()
            await client.ws.aclose(4000)
        async with connect(gateway.url) as client:
            await client.send(6, {"token": TOKEN, "session_id": ready["d"]["session_id"], "seq": 1})
            assert (await client.recv())["t"] == "GUILD_CREATE"
            assert (await client.recv())["t"] == "RESUMED"
        assert len(gateway.errors) == 1
        assert "resume_gateway_url" in gateway.errors[0]


async def test_server_close_and_drop(gateway: FakeGateway, connect: Connect) -> None:
    with trio.fail_after(10):
        async with connect(gateway.url) as client:
            ready = await client.identify()
            conn = gateway.connections[0]
            await conn.close(4000)
            assert await client.closed_code() == 4000
        await conn.ended.wait()
        assert conn.server_close_code == 4000
        assert conn.closed_code is None
        async with connect(gateway.resume_url) as client:
            await client.send(6, {"token": TOKEN, "session_id": ready["d"]["session_id"], "seq": 2})
            assert (await client.recv())["t"] == "RESUMED"
            conn = await gateway.wait_connection(1)
            await conn.wait_established()
            await conn.drop()
            assert await client.closed_code() == 1006  # no close frame
        await conn.ended.wait()
        assert conn.dropped
        assert conn.closed_code is None
        assert conn.server_close_code is None
        assert not gateway.sessions[ready["d"]["session_id"]].invalidated


@pytest.mark.parametrize("split", [False, True])
async def test_zlib_stream_is_one_stream_of_sync_flushed_messages(
    gateway: FakeGateway, connect: Connect, split: bool
) -> None:
    gateway.split_compressed_frames = split
    with trio.fail_after(10):
        async with connect(gateway.url, compress="zlib-stream", hello=False) as client:
            frame = await client.ws.get_message()
            assert isinstance(frame, bytes)
            if split:
                assert not frame.endswith(ZLIB_SUFFIX)
                frame += await client.ws.get_message()  # type: ignore[operator]
            assert frame.endswith(ZLIB_SUFFIX)
            inflate = zlib.decompressobj()
            assert json.loads(inflate.decompress(frame))["op"] == 10
            client._inflate = inflate.decompress  # the same stream continues
            ready = await client.identify()
            guild_create = await client.recv()
        assert ready["d"]["session_id"] == "sess-1"
        assert guild_create["d"] == GUILD
        assert gateway.connections[0].compress == "zlib-stream"


async def test_zstd_stream(gateway: FakeGateway, connect: Connect) -> None:
    with trio.fail_after(10):
        async with connect(gateway.url, compress="zstd-stream") as client:
            await client.identify()
            await client.send(1, 1)
            assert (await client.recv())["t"] == "GUILD_CREATE"
            assert (await client.recv())["op"] == 11


async def test_identifies_beyond_max_concurrency_get_op9(
    autojump_clock: trio.testing.MockClock, gateway: FakeGateway, connect: Connect
) -> None:
    with trio.fail_after(30):
        async with connect(gateway.url) as first, connect(gateway.url) as second:
            await first.identify()
            await second.send(2, identify_body())
            assert await second.recv() == {"op": 9, "d": False, "s": None, "t": None}
            await trio.sleep(5.0)  # IDENTIFY_WINDOW
            ready = await second.identify()
        assert ready["d"]["session_id"] == "sess-2"
        assert len(gateway.identifies) == 3
        assert gateway.identifies[2] - gateway.identifies[0] >= 5.0


async def test_more_than_120_frames_in_60_s_close_4008(
    autojump_clock: trio.testing.MockClock, gateway: FakeGateway, connect: Connect
) -> None:
    gateway.ack_heartbeats = False
    with trio.fail_after(200):
        async with connect(gateway.url) as client:
            for _ in range(120):
                await client.send(1, None)
            await trio.sleep(60.0)  # the whole window slides past
            for _ in range(120):
                await client.send(1, None)
            conn = gateway.connections[0]
            await conn.wait_op(1, count=240)
            assert conn.server_close_code is None
            await client.send(1, None)
            assert await client.closed_code() == 4008
        assert len(conn.frames(1)) == 241


async def test_reconnect_before_hello(gateway: FakeGateway, connect: Connect) -> None:
    gateway.send_reconnect_before_hello = True
    with trio.fail_after(10):
        async with connect(gateway.url, hello=False) as client:
            assert (await client.recv())["op"] == 7
            assert (await client.recv())["op"] == 10


async def test_wait_op_returns_the_clients_payload(gateway: FakeGateway, connect: Connect) -> None:
    presence: dict[str, Any] = {"since": None, "activities": [], "status": "idle", "afk": False}
    with trio.fail_after(10):
        async with connect(gateway.url) as client:
            await client.identify()
            await client.send(3, presence)
            assert await gateway.connections[0].wait_op(3) == presence
        with pytest.raises(RuntimeError, match="ended"):
            await gateway.connections[0].wait_op(4)


async def test_cancelling_run_ends_every_connection(
    server_ssl_context: ssl.SSLContext, connect: Connect
) -> None:
    with trio.fail_after(10):
        async with (
            open_fake_gateway(server_ssl_context, token=TOKEN) as gateway,
            connect(gateway.url) as client,
        ):
            await client.identify()
            conn = gateway.connections[0]
        await conn.ended.wait()
        async with trio.open_nursery() as nursery:
            gateway = FakeGateway(token=TOKEN)
            serving = trio.CancelScope()

            async def serve(*, task_status: trio.TaskStatus[str]) -> None:
                with serving:
                    await gateway.run(server_ssl_context, task_status=task_status)

            url = await nursery.start(serve)
            async with connect(url) as client:
                serving.cancel()
                assert await client.closed_code() == 1006
            assert gateway.connections[0].ended.is_set()
