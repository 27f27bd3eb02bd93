"""Gateway ingest: CPU seconds for 10,000 MESSAGE_CREATE events, bot vs. a bare decode loop.

The fake gateway runs in a child process (so its JSON encoding, compression and TLS do not count)
and sends 10,000 MESSAGE_CREATE dispatches over zlib-stream as fast as it can. In this process a
real `Shard` receives them over TLS and puts each decoded event on a channel that a consumer task
drains. We measure this process's CPU time from READY to the last event.

The floor, measured in the same run on the same bytes: one zlib decompressobj inflating the
frames, then `decode_frame` and `decode_event` on each message, in a plain loop with no I/O.
The ratio says what the websocket, TLS, trio scheduling and the channel cost on top of it.

    python bench/gateway_ingest.py
"""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests.fakes when run as a script

import msgspec  # noqa: E402
import trio  # noqa: E402
import trustme  # noqa: E402

from tests.fakes.discord_gateway import FakeGateway  # noqa: E402
from trio_companion.gateway.compression import ZlibStreamInflater  # noqa: E402
from trio_companion.gateway.events import MessageCreate, decode_event  # noqa: E402
from trio_companion.gateway.identify import IdentifyGate  # noqa: E402
from trio_companion.gateway.protocol import decode_frame, default_intents  # noqa: E402
from trio_companion.gateway.shard import Shard, ShardEvent  # noqa: E402
from trio_companion.gateway.tls import make_ssl_context  # noqa: E402

EVENTS = 10_000
TOKEN = "MTEwMDAwMDAwMDAwMDAwMDAwMQ.GfAkEt.bench-token-not-real-0123456789"


def message(n: int) -> dict[str, Any]:
    """A realistic guild MESSAGE_CREATE body (about 900 bytes of JSON)."""
    return {
        "id": str(1_300_000_000_000_000_000 + n),
        "channel_id": "1200000000000000002",
        "guild_id": "1200000000000000001",
        "author": {
            "id": "1200000000000000003",
            "username": "ann",
            "global_name": "Ann",
            "avatar": "a" * 32,
            "discriminator": "0",
            "public_flags": 0,
        },
        "member": {
            "nick": "Annie",
            "roles": ["1200000000000000010", "1200000000000000011"],
            "joined_at": "2025-01-01T00:00:00+00:00",
            "deaf": False,
            "mute": False,
        },
        "content": f"message number {n}: what do you think about the weather today?",
        "timestamp": "2026-11-28T12:00:00.000000+00:00",
        "edited_timestamp": None,
        "tts": False,
        "mention_everyone": False,
        "mentions": [],
        "mention_roles": [],
        "attachments": [],
        "embeds": [],
        "pinned": False,
        "type": 0,
        "flags": 0,
        "components": [],
        "nonce": str(n),
    }


# --- the child process: the fake gateway --------------------------------------------------------

SERVE = "--serve"


async def serve(ca_dir: Path) -> None:
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(ca_dir / "ca.pem"))
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server)
    gateway = FakeGateway(token=TOKEN, heartbeat_interval_ms=600_000)
    async with trio.open_nursery() as nursery:
        url = await nursery.start(gateway.run, server)
        print(url, flush=True)
        conn = await gateway.wait_connection(0)
        await conn.wait_established()
        for n in range(EVENTS):
            await conn.dispatch("MESSAGE_CREATE", message(n))
        print("sent", flush=True)
        await conn.ended.wait()
        nursery.cancel_scope.cancel()


# --- this process: the bot's shard --------------------------------------------------------------


async def ingest(url: str, backlog: trio.Event | None) -> tuple[float, float]:
    """CPU and wall seconds from READY (or, with ``backlog``, from when it is set: the events
    then wait in the socket buffers and the channel) to the last MESSAGE_CREATE."""
    send, receive = trio.open_memory_channel[ShardEvent](256)
    shard = Shard(
        token=TOKEN,
        intents=default_intents(members=False),
        shard_id=0,
        shard_count=1,
        gateway_url=url,
        identify_gate=IdentifyGate(1, total=1000, remaining=1000, reset_after=0),
        events=send,
        ssl_context=make_ssl_context(),
        compress="zlib-stream",
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(shard.run)
        if backlog is not None:
            await backlog.wait()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        seen = 0
        async for _, event in receive:
            if isinstance(event, MessageCreate):
                seen += 1
                if seen == EVENTS:
                    break
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        nursery.cancel_scope.cancel()
    return cpu, wall


def floor() -> float:
    """CPU seconds to inflate and decode the same dispatches with no I/O at all."""
    deflate = zlib.compressobj()
    frames = []
    for n in range(EVENTS):
        body = msgspec.json.encode({"op": 0, "s": n + 2, "t": "MESSAGE_CREATE", "d": message(n)})
        frames.append(deflate.compress(body) + deflate.flush(zlib.Z_SYNC_FLUSH))
    cpu0 = time.process_time()
    inflater = ZlibStreamInflater()
    for frame in frames:
        text = inflater.feed(frame)
        assert text is not None
        envelope = decode_frame(text)
        assert envelope.t is not None
        event = decode_event(envelope.t, envelope.d)
        assert isinstance(event, MessageCreate)
    return time.process_time() - cpu0


async def run_against_child(tmp: str, *, backlog: bool) -> tuple[float, float]:
    """Start the fake in a child process and ingest its events."""
    child = await trio.lowlevel.open_process(
        [sys.executable, __file__, SERVE, tmp], stdout=subprocess.PIPE
    )
    assert child.stdout is not None
    lines = child.stdout
    buffer = b""

    async def line() -> str:
        nonlocal buffer
        while b"\n" not in buffer:
            buffer += await lines.receive_some()
        text, _, buffer = buffer.partition(b"\n")
        return text.decode()

    try:
        url = await line()
        all_sent = trio.Event()

        async def wait_sent() -> None:
            # The fake reports when everything was written; if the socket buffers cannot hold
            # it all, start draining after a few seconds anyway.
            with trio.move_on_after(5):
                await line()
            all_sent.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(wait_sent)
            result = await ingest(url, all_sent if backlog else None)
            nursery.cancel_scope.cancel()
        return result
    finally:
        child.terminate()
        await child.wait()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["SSL_CERT_FILE"] = str(Path(tmp) / "ca.pem")
        streaming = trio.run(lambda: run_against_child(tmp, backlog=False))
        backlog = trio.run(lambda: run_against_child(tmp, backlog=True))
    bare = floor()
    print(f"gateway ingest of {EVENTS:,} MESSAGE_CREATE events over zlib-stream + TLS")
    print(f"  floor (inflate + decode only, no I/O):   {bare:6.3f} s CPU")
    for name, (cpu, wall) in (("streaming", streaming), ("backlog", backlog)):
        print(
            f"  bot, {name:9} (Shard, real websocket): {cpu:6.3f} s CPU ({wall:.3f} s wall)"
            f"  = {cpu / bare:5.1f}x the floor, {cpu / EVENTS * 1e6:5.1f} us/event"
        )
    print(f"  floor per event: {bare / EVENTS * 1e6:.1f} us")
    print("  streaming: events read as the fake sends them (one wakeup per frame);")
    print("  backlog: events already waiting in the socket buffers when reading starts.")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == SERVE:
        trio.run(serve, Path(sys.argv[2]))
    else:
        main()
