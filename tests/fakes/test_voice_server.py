"""Self-tests of the fake voice server, driven by a bare client: trio-websocket over loopback
TLS plus a trio UDP socket, using the bot's sans-IO voice modules to build what it sends."""

from __future__ import annotations

import json
import math
import ssl
import struct
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import trio
import trustme
from trio_websocket import ConnectionClosed, WebSocketConnection, wrap_client_stream

from tests.fakes.voice_server import LISTENER_ID, FakeVoiceServer, VoiceSession
from trio_companion.voice.crypto import AES256_GCM, XCHACHA20_POLY1305, TransportCipher
from trio_companion.voice.opus import FRAME_BYTES, OpusEncoder
from trio_companion.voice.protocol import (
    decode_ip_discovery_response,
    encode_heartbeat,
    encode_identify,
    encode_ip_discovery_request,
    encode_resume,
    encode_select_protocol,
    encode_speaking,
)
from trio_companion.voice.rtp import RtpHeader, RtpSender

GUILD, USER, CHANNEL = 81384788765712384, 1100000000000000001, 81384788765712999
SESSION, TOKEN = "voice-session-1", "voice-token-1"
SILENCE = b"\xf8\xff\xfe"
DEADLINE = 15


def tone_pcm(frames: int, hz: float = 440.0) -> bytes:
    """``frames`` 20 ms frames of a sine tone, 48 kHz stereo s16le."""
    samples = frames * 960
    values = (int(12_000 * math.sin(2 * math.pi * hz * i / 48_000)) for i in range(samples))
    return b"".join(struct.pack("<hh", v, v) for v in values)


def rms(pcm: bytes) -> float:
    count = len(pcm) // 2
    values = struct.unpack(f"<{count}h", pcm)
    return math.sqrt(sum(v * v for v in values) / max(count, 1))


@dataclass
class Established:
    ready: dict[str, Any]
    description: dict[str, Any]
    cipher: TransportCipher
    rtp: RtpSender


class Client:
    """A bare voice client: JSON text and DAVE binary frames, the last seq seen, one UDP socket."""

    def __init__(self, ws: WebSocketConnection, udp: trio.socket.SocketType) -> None:
        self.ws = ws
        self.udp = udp
        self.seq = -1

    async def recv(self) -> dict[str, Any]:
        message = await self.ws.get_message()
        if isinstance(message, bytes):
            seq, op = struct.unpack_from(">HB", message)
            self.seq = seq
            return {"op": op, "seq": seq, "binary": message[3:]}
        payload = dict(json.loads(message))
        if "seq" in payload:
            self.seq = payload["seq"]
        return payload

    async def recv_op(self, op: int) -> dict[str, Any]:
        """Read until a message with opcode ``op``, ignoring others (as a client must)."""
        while (message := await self.recv())["op"] != op:
            pass
        return message

    async def send(self, message: str) -> None:
        await self.ws.send_message(message)

    async def send_op(self, op: int, d: Any) -> None:
        await self.ws.send_message(json.dumps({"op": op, "d": d}))

    async def closed_code(self) -> int:
        """Read until the connection closes; return the close code (-1 if none)."""
        try:
            while True:
                await self.recv()
        except ConnectionClosed as closed:
            return -1 if closed.reason is None else closed.reason.code

    async def identify(self, **overrides: Any) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "server_id": GUILD,
            "user_id": USER,
            "session_id": SESSION,
            "token": TOKEN,
        }
        fields.update(overrides)
        await self.send(encode_identify(**fields))
        ready: dict[str, Any] = (await self.recv_op(2))["d"]
        return ready

    async def establish(self, mode: str = XCHACHA20_POLY1305) -> Established:
        """Identify, IP discovery, Select Protocol; returns Ready and Session Description."""
        ready = await self.identify()
        await self.udp.connect((ready["ip"], ready["port"]))
        await self.udp.send(encode_ip_discovery_request(ready["ssrc"]))
        address, port = decode_ip_discovery_response(await self.udp.recv(2048))
        await self.send(encode_select_protocol(address, port, mode))
        description = (await self.recv_op(4))["d"]
        cipher = TransportCipher(description["mode"], description["secret_key"])
        return Established(ready, description, cipher, RtpSender(ready["ssrc"], sequence=65_530))

    async def send_frames(self, state: Established, frames: list[bytes]) -> None:
        for frame in frames:
            await self.udp.send(state.cipher.encrypt(state.rtp.next_header(), frame))


@pytest.fixture
def client_ssl(fake_ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    fake_ca.configure_trust(context)
    return context


StartServer = Callable[..., AbstractAsyncContextManager[FakeVoiceServer]]
Connect = Callable[..., AbstractAsyncContextManager[Client]]


@pytest.fixture
def start_server(server_ssl_context: ssl.SSLContext) -> StartServer:
    @asynccontextmanager
    async def start(**knobs: Any) -> AsyncIterator[FakeVoiceServer]:
        server = FakeVoiceServer(ssl_context=server_ssl_context, **knobs)
        server.allow(
            server_id=GUILD, user_id=USER, session_id=SESSION, token=TOKEN, channel_id=CHANNEL
        )
        async with trio.open_nursery() as nursery:
            await nursery.start(server.run)
            yield server
            nursery.cancel_scope.cancel()

    return start


@pytest.fixture
def connect(client_ssl: ssl.SSLContext) -> Connect:
    """``async with connect(server, resource="/?v=8", hello=True) as client``."""

    @asynccontextmanager
    async def open_client(
        server: FakeVoiceServer,
        *,
        resource: str = "/?v=8",
        hello: bool = True,
        udp: trio.socket.SocketType | None = None,
    ) -> AsyncIterator[Client]:
        host, port = server.endpoint.rsplit(":", 1)
        stream = await trio.open_ssl_over_tcp_stream(
            host, int(port), ssl_context=client_ssl, https_compatible=True
        )
        own_udp = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
        with own_udp:
            await own_udp.bind(("127.0.0.1", 0))
            async with stream, trio.open_nursery() as nursery:
                ws = await wrap_client_stream(nursery, stream, host, resource)
                client = Client(ws, own_udp if udp is None else udp)
                if hello:
                    message = await client.recv()
                    assert message["op"] == 8, message
                yield client
                await ws.aclose()
                nursery.cancel_scope.cancel()

    return open_client


@pytest.mark.parametrize("mode", [AES256_GCM, XCHACHA20_POLY1305])
async def test_handshake_and_heartbeat(
    start_server: StartServer, connect: Connect, mode: str
) -> None:
    with trio.fail_after(DEADLINE):
        async with start_server(dave_protocol_version=0) as server:
            assert server.endpoint.startswith("localhost:")
            async with connect(server, hello=False) as client:
                hello = await client.recv()
                state = await client.establish(mode)
                acked = client.seq
                await client.send(encode_heartbeat(1234, acked))
                ack = await client.recv_op(6)
                connection = server.connections[0]
            await server.wait_until(connection.ended.is_set)
        assert hello == {"op": 8, "d": {"v": 8, "heartbeat_interval": 13_750}}
        ready, description = state.ready, state.description
        session = server.sessions[SESSION]
        assert ready["ssrc"] == session.ssrc
        assert (ready["ip"], ready["port"]) == ("127.0.0.1", server.udp_port)
        assert ready["modes"] == [AES256_GCM, XCHACHA20_POLY1305]
        assert description["mode"] == mode
        assert bytes(description["secret_key"]) == session.secret_key
        assert description["dave_protocol_version"] == 0
        assert description["audio_codec"] == "opus"
        assert ack == {"op": 6, "d": {"t": 1234}}
        assert session.discovered_peer == session.selected_peer
        assert connection.kind == "identify"
        assert connection.seq_acks == [acked]
        assert connection.client_close_code == 1000
        seqs = [s.seq for s in connection.sent if s.seq is not None]
        assert seqs == list(range(1, len(seqs) + 1))
        assert {12, 15, 18, 20} <= {s.op for s in connection.sent}  # undocumented ops
        assert server.errors == []


@pytest.mark.parametrize("mode", [AES256_GCM, XCHACHA20_POLY1305])
async def test_tone_stream_decodes(start_server: StartServer, connect: Connect, mode: str) -> None:
    frames = OpusEncoder().encode(tone_pcm(50))
    assert len(frames) == 50
    with trio.fail_after(DEADLINE):
        async with start_server(dave_protocol_version=0) as server, connect(server) as client:
            state = await client.establish(mode)
            await client.send(encode_speaking(state.ready["ssrc"]))
            await server.wait_until(lambda: bool(server.speaking))
            await client.send_frames(state, [*frames, *[SILENCE] * 5])
            stream = server.stream()
            await server.wait_until(lambda: len(stream.packets) == 55)
    assert server.errors == stream.errors == []
    assert len(stream.pcm) == 50 * FRAME_BYTES
    assert rms(stream.pcm[FRAME_BYTES:]) > 2_000  # the tone survived (skip the codec warm-up)
    assert stream.silence_frames == 5
    assert stream.plain_frames == 50
    assert stream.dave_frames == 0
    assert not stream.dave_active
    assert stream.sequences[:7] == [65_530, 65_531, 65_532, 65_533, 65_534, 65_535, 0]
    assert [p.nonce for p in stream.packets] == list(range(55))
    assert server.speaking[0][1] == 1


async def _send_bad(client: Client, state: Established, frame: bytes, kind: str) -> None:
    """Two good packets, then one bad packet of ``kind``."""
    await client.send_frames(state, [frame, frame])
    rtp, cipher = state.rtp, state.cipher
    if kind == "sequence-gap":
        rtp.next_header()  # a packet never sent
        packet = cipher.encrypt(rtp.next_header(), frame)
    elif kind == "nonce-repeat":
        again = TransportCipher(cipher.mode, state.description["secret_key"])
        packet = again.encrypt(rtp.next_header(), frame)
    elif kind == "tampered":
        packet = _flip(cipher.encrypt(rtp.next_header(), frame), 14, 0x01)
    elif kind == "unknown-ssrc":
        packet = cipher.encrypt(RtpSender(state.ready["ssrc"] ^ 1).next_header(), frame)
    elif kind == "timestamp":
        header = RtpHeader(sequence=rtp.sequence, timestamp=rtp.timestamp + 480, ssrc=rtp.ssrc)
        packet = cipher.encrypt(header.encode(), frame)
    else:  # payload type 96
        packet = _flip(cipher.encrypt(rtp.next_header(), frame), 1, 0x78 ^ 96)
    await client.udp.send(packet)


def _flip(packet: bytes, index: int, mask: int) -> bytes:
    changed = bytearray(packet)
    changed[index] ^= mask
    return bytes(changed)


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("sequence-gap", ["RTP sequence", "RTP timestamp"]),  # a lost packet skips both
        ("nonce-repeat", ["nonce 0 after 1"]),
        ("tampered", ["failed authentication"]),
        ("unknown-ssrc", ["unknown ssrc"]),
        ("timestamp", ["RTP timestamp"]),
        ("payload-type", ["payload type 96", "failed authentication"]),  # the header is AAD
    ],
)
async def test_bad_packets_are_flagged(
    start_server: StartServer, connect: Connect, kind: str, expected: list[str]
) -> None:
    frame = OpusEncoder().encode(tone_pcm(1))[0]
    with trio.fail_after(DEADLINE):
        async with start_server(dave_protocol_version=0) as server, connect(server) as client:
            state = await client.establish()
            await client.send(encode_speaking(state.ready["ssrc"]))
            await server.wait_until(lambda: bool(server.speaking))
            await _send_bad(client, state, frame, kind)
            await server.wait_until(lambda: len(server.errors) >= len(expected))
    assert len(server.errors) == len(expected), server.errors
    for error, text in zip(server.errors, expected, strict=True):
        assert text in error


async def test_audio_before_speaking_is_flagged(
    start_server: StartServer, connect: Connect
) -> None:
    with trio.fail_after(DEADLINE):
        async with start_server(dave_protocol_version=0) as server, connect(server) as client:
            state = await client.establish()
            await client.send_frames(state, [SILENCE] * 3)
            await server.wait_until(lambda: bool(server.errors))
    assert server.errors == [f"ssrc {state.ready['ssrc']}: audio before op 5 Speaking"]


async def test_resume_keeps_key_and_ssrc_and_replays(
    start_server: StartServer, connect: Connect
) -> None:
    udp = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
    await udp.bind(("127.0.0.1", 0))
    with trio.fail_after(DEADLINE), udp:
        async with start_server(dave_protocol_version=0) as server:
            async with connect(server, udp=udp) as client:
                state = await client.establish()
                acked = (await client.recv_op(11))["seq"] - 1  # pretend op 11 was lost
                last = client.seq
                await client.send(encode_speaking(state.ready["ssrc"]))
                await server.wait_until(lambda: bool(server.speaking))
                await client.send_frames(state, [SILENCE] * 2)
                await server.close_current(4015)
                assert await client.closed_code() == 4015
            async with connect(server, udp=udp) as client2:  # the same UDP socket carries on
                await client2.send(
                    encode_resume(server_id=GUILD, session_id=SESSION, token=TOKEN, seq_ack=acked)
                )
                resumed = await client2.recv()
                replayed = [await client2.recv() for _ in range(last - acked)]
                await client2.send_frames(state, [SILENCE] * 2)
                stream = server.stream()
                await server.wait_until(lambda: len(stream.packets) == 4)
                connection = server.connections[1]
    assert resumed == {"op": 9, "d": None}
    assert [m["seq"] for m in replayed] == list(range(acked + 1, last + 1))
    assert replayed[0]["op"] == 11
    assert connection.kind == "resume"
    assert len(server.sessions) == 1
    assert server.errors == []


async def test_resume_of_an_invalidated_session_gets_4006(
    start_server: StartServer, connect: Connect
) -> None:
    with trio.fail_after(DEADLINE):
        async with start_server(dave_protocol_version=0) as server:
            async with connect(server) as client:
                await client.establish()
                await server.close_current(4014)
                assert await client.closed_code() == 4014
            async with connect(server) as client2:
                await client2.send(
                    encode_resume(server_id=GUILD, session_id=SESSION, token=TOKEN, seq_ack=1)
                )
                assert await client2.closed_code() == 4006
    assert server.errors == []


@pytest.mark.parametrize("code", [4006, 4014, 4015, 4017])
async def test_scripted_close_reaches_the_client(
    start_server: StartServer, connect: Connect, code: int
) -> None:
    with trio.fail_after(DEADLINE):
        async with start_server(dave_protocol_version=0) as server:
            async with connect(server) as client:
                await client.establish()
                await server.close_current(code)
                assert await client.closed_code() == code
            assert server.sessions[SESSION].invalidated is (code != 4015)
            server.close_after_hello(code, times=2)
            for _ in range(2):
                async with connect(server) as client:
                    assert await client.closed_code() == code
            async with connect(server) as client:  # the script is used up
                await client.identify()
    assert [c.server_close_code for c in server.connections] == [code, code, code, None]


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        pytest.param({"token": "wrong"}, 4004, id="bad-token"),
        pytest.param({"user_id": 1}, 4004, id="other-user"),
        pytest.param({"session_id": "unknown"}, 4006, id="unknown-session"),
        pytest.param({"max_dave_protocol_version": 0}, 4017, id="no-dave"),
    ],
)
async def test_identify_is_checked(
    start_server: StartServer, connect: Connect, overrides: dict[str, Any], code: int
) -> None:
    with trio.fail_after(DEADLINE):
        async with start_server() as server, connect(server) as client:
            fields: dict[str, Any] = {
                "server_id": GUILD,
                "user_id": USER,
                "session_id": SESSION,
                "token": TOKEN,
            }
            await client.send(encode_identify(**(fields | overrides)))
            assert await client.closed_code() == code
    assert server.errors == []  # rejections, not protocol bugs


async def test_identify_without_dave_field_gets_4017_unless_not_required(
    start_server: StartServer, connect: Connect
) -> None:
    d = {"server_id": str(GUILD), "user_id": str(USER), "session_id": SESSION, "token": TOKEN}
    with trio.fail_after(DEADLINE):
        async with start_server() as server:
            async with connect(server) as client:
                await client.send_op(0, d)
                assert await client.closed_code() == 4017
            server.require_dave(False)
            async with connect(server) as client:
                await client.send_op(0, d)
                assert (await client.recv_op(2))["d"]["ssrc"] == server.sessions[SESSION].ssrc
    assert server.sessions[SESSION].dave_protocol_version == 0


@pytest.mark.parametrize("resource", ["/", "/?v=4", "/?v=7"])
async def test_wrong_gateway_version_is_refused(
    start_server: StartServer, connect: Connect, resource: str
) -> None:
    with trio.fail_after(DEADLINE):
        async with start_server() as server, connect(server, resource=resource, hello=False) as c:
            assert await c.closed_code() == 4020
    assert len(server.errors) == 1


async def test_protocol_bugs_are_recorded(start_server: StartServer, connect: Connect) -> None:
    with trio.fail_after(DEADLINE):
        async with start_server(dave_protocol_version=0) as server:
            async with connect(server) as client:
                await client.send(encode_speaking(1))  # before Identify
                assert await client.closed_code() == 4003
            async with connect(server) as client:
                state = await client.establish()
                await client.send(encode_heartbeat(1, client.seq + 5))
                await client.recv_op(6)
                await client.send(encode_speaking(state.ready["ssrc"] ^ 1))
                await server.wait_until(lambda: len(server.errors) == 3)
                await client.send_op(99, {})
                assert await client.closed_code() == 4001
    assert [e.split(": ", 1)[1].split(" ")[0] for e in server.errors] == [
        "op",
        "heartbeat",
        "Speaking",
        "client",
    ]


async def test_select_protocol_checks(start_server: StartServer, connect: Connect) -> None:
    with trio.fail_after(DEADLINE):
        async with start_server(dave_protocol_version=0, modes=[XCHACHA20_POLY1305]) as server:
            async with connect(server) as client:
                await client.identify()
                await client.send(encode_select_protocol("127.0.0.1", 1, AES256_GCM))
                assert await client.closed_code() == 4016
            async with connect(server) as client:
                await client.identify()
                await client.send(encode_select_protocol("127.0.0.1", 1, XCHACHA20_POLY1305))
                await client.recv_op(4)
    assert server.errors == [
        "connection 0: Select Protocol mode 'aead_aes256_gcm_rtpsize' was not offered",
        "connection 1: Select Protocol before UDP IP discovery",
    ]


# --- DAVE ------------------------------------------------------------------------------------


async def test_dave_v1_frames_are_end_to_end_encrypted(
    start_server: StartServer, connect: Connect
) -> None:
    davey = pytest.importorskip("davey")
    pytest.importorskip("tests.fakes.dave_external")
    frames = OpusEncoder().encode(tone_pcm(20))
    with trio.fail_after(DEADLINE):
        async with start_server() as server, connect(server) as client:
            state = await client.establish()
            assert state.description["dave_protocol_version"] == 1
            dave = davey.DaveSession(1, USER, CHANNEL)
            await client.ws.send_message(bytes([26]) + dave.get_serialized_key_package())
            clients = (await client.recv_op(11))["d"]["user_ids"]
            dave.set_external_sender((await client.recv_op(25))["binary"])
            proposals = (await client.recv_op(27))["binary"]
            op_type = davey.ProposalsOperationType.append
            assert proposals[0] == 0
            result = dave.process_proposals(op_type, proposals[1:], [int(u) for u in clients])
            assert result is not None
            await client.ws.send_message(bytes([28]) + result.commit + (result.welcome or b""))
            announce = (await client.recv_op(29))["binary"]
            transition_id = struct.unpack_from(">H", announce)[0]
            dave.process_commit(announce[2:])
            await client.send_op(23, {"transition_id": transition_id})
            execute = await client.recv_op(22)
            assert dave.ready
            await client.send(encode_speaking(state.ready["ssrc"]))
            await server.wait_until(lambda: bool(server.speaking))
            encrypted = [dave.encrypt_opus(f) for f in frames]
            await client.send_frames(state, [*encrypted, SILENCE])
            stream = server.stream()
            await server.wait_until(lambda: len(stream.packets) == 21)
    session = server.sessions[SESSION]
    assert isinstance(session, VoiceSession)
    assert clients == [str(LISTENER_ID)]
    assert execute["d"] == {"transition_id": transition_id}
    assert session.dave is not None
    assert session.dave.listener.ready
    assert stream.dave_active
    assert stream.dave_frames == 20
    assert stream.plain_frames == 0
    assert stream.silence_frames == 1
    assert len(stream.pcm) == 20 * FRAME_BYTES
    assert rms(stream.pcm[FRAME_BYTES:]) > 2_000
    assert server.errors == []


async def test_undecryptable_dave_frame_is_flagged(
    start_server: StartServer, connect: Connect
) -> None:
    with trio.fail_after(DEADLINE):
        async with start_server() as server, connect(server) as client:
            state = await client.establish()
            await client.send(encode_speaking(state.ready["ssrc"]))
            await server.wait_until(lambda: bool(server.speaking))
            # A frame with the DAVE magic but nothing the listener can decrypt.
            await client.send_frames(state, [b"\x01\x02\x03\xfa\xfa"])
            await server.wait_until(lambda: bool(server.errors))
    assert "DAVE frame the listener cannot decrypt" in server.errors[0]
