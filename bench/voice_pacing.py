"""Voice: pacing jitter at the receiver, idle and under chat load, and /speak → first packet.

The whole app runs against the fake Discord (TLS websocket + HTTPS), the fake voice server
(voice gateway + UDP with real AEAD, DAVE and Opus decoding), a fake OpenAI speech server (a
tone of a chosen length) and a fake Ollama streaming at a fixed token rate; all in this process,
in one ``trio.run`` on the real clock. Two measurements:

A. Pacing: one /speak of ~10 s of audio, packet arrival times (``time.perf_counter`` when the
   fake's UDP task received each datagram) against the ideal grid ``first + n * 20 ms``, with
   the bot otherwise idle and while it streams 20 chat replies at once. Also the PacedSender's
   own late/skipped counts for each playback.
B. Latency: the /speak interaction dispatched → first RTP packet at the fake, for a 3-sentence
   text, per TTS engine: espeak-ng, Piper (packaged "joe" voice; the first call loads the
   model) and the fake OpenAI speech server; cold (first /speak of a fresh app) and warm.

Caveat: the fakes share the bot's trio loop and CPU, so receive-side delays (the fake decodes
Opus and DAVE on the trio thread) are part of what is measured.

    python bench/voice_pacing.py
"""

from __future__ import annotations

import importlib.util
import itertools
import math
import os
import shutil
import ssl
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests.fakes when run as a script

import msgspec  # noqa: E402
import trio  # noqa: E402
import trustme  # noqa: E402

from tests.fakes.discord import (  # noqa: E402
    CHANNEL_ID,
    GUILD_ID,
    USER_ID,
    FakeDiscord,
    last_message,
    open_fake_discord,
)
from tests.fakes.llm_servers import FakeOllama  # noqa: E402
from tests.fakes.tts_servers import FakeSpeechServer  # noqa: E402
from tests.fakes.voice_server import FakeVoiceServer  # noqa: E402
from tests.fakes.voice_udp import Packet  # noqa: E402
from trio_companion import app as app_module  # noqa: E402
from trio_companion.app import App  # noqa: E402
from trio_companion.gateway.tls import CA_FILE_ENV  # noqa: E402
from trio_companion.voice.pacing import SILENCE_FRAME_COUNT, PacedSenderStatistics  # noqa: E402

VOICE_CHANNEL: Final = 1_200_000_000_000_000_050
CHAT_CHANNEL_BASE: Final = CHANNEL_ID + 100
CHATS: Final = 20
TOKENS_PER_SECOND: Final = 25
CHAT_TOKENS: Final = 350  # 14 s of streaming: outlasts the 10 s /speak started after them
SPEAK_SECONDS: Final = 10.0
GRID: Final = 0.020
STEP_DEADLINE: Final = 60.0
LONG_TEXT: Final = (
    "This is a long announcement for the pacing benchmark, spoken as one steady tone "
    "so that every packet of the playback lands on the twenty millisecond grid, "
    "while the companion does its other work in the background"
)
THREE_SENTENCES: Final = (
    "Hello there, this is the companion speaking. "
    "The weather today is calm and mild. "
    "Thank you for listening to me."
)


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


@dataclass(slots=True)
class Rig:
    fake: FakeDiscord
    voice: FakeVoiceServer
    speech: FakeSpeechServer
    ollama: FakeOllama
    app: App


@dataclass(frozen=True, slots=True)
class Pacing:
    packets: int
    dev_p50: float
    dev_p99: float
    dev_max: float
    gap_p50: float
    gap_p99: float
    gap_max: float
    late: int
    skipped: int
    frames: int
    discord_writes: int


@asynccontextmanager
async def open_rig(
    server: ssl.SSLContext, data_dir: Path, engine: str, reply: str = "ok"
) -> AsyncIterator[Rig]:
    """The app, joined to the voice channel (DAVE group formed), with every fake running."""
    async with open_fake_discord(server) as fake, trio.open_nursery() as nursery:
        voice = FakeVoiceServer(ssl_context=server)
        await nursery.start(voice.run)
        speech = FakeSpeechServer()
        await nursery.start(speech.run)
        ollama = FakeOllama(reply=reply, tokens_per_second=TOKENS_PER_SECOND)
        await nursery.start(ollama.run)
        text_channels = [{"id": str(CHANNEL_ID), "type": 0, "name": "general"}] + [
            {"id": str(CHAT_CHANNEL_BASE + n), "type": 0, "name": f"chat{n}"} for n in range(CHATS)
        ]
        fake.gateway.guilds = [
            {
                "id": str(GUILD_ID),
                "name": "bench server",
                "channels": [*text_channels, {"id": str(VOICE_CHANNEL), "type": 2, "name": "v"}],
                "voice_states": [
                    {"channel_id": str(VOICE_CHANNEL), "user_id": str(USER_ID), "session_id": "u"}
                ],
            }
        ]
        fake.serve_voice(voice)
        base = fake.config(data_dir)
        config = msgspec.structs.replace(
            base,
            llm=msgspec.structs.replace(base.llm, url=ollama.url, max_concurrency=64),
            tts=msgspec.structs.replace(base.tts, engine=engine, url=speech.url),
        )
        with trio.fail_after(STEP_DEADLINE):
            app: App = await nursery.start(app_module.run, config)
            answer = await command(fake, "join")
            assert answer == f"Joined <#{VOICE_CHANNEL}>.", answer
            session = voice.session
            assert session is not None
            await voice.wait_until(lambda: session.dave_executed)
        yield Rig(fake, voice, speech, ollama, app)
        app.request_shutdown("benchmark over")
        nursery.cancel_scope.cancel()


async def command(fake: FakeDiscord, name: str, user_id: int = USER_ID, **options: str) -> str:
    interaction = await fake.interact(
        name, [{"name": k, "type": 3, "value": v} for k, v in options.items()], user_id=user_id
    )
    await fake.wait_answered(interaction)
    content = last_message(interaction)["content"]
    assert isinstance(content, str)
    return content


async def poll(condition: Callable[[], bool]) -> None:
    """Wait for a condition nothing signals (the fake Ollama, the player): check every 10 ms."""
    with trio.fail_after(STEP_DEADLINE):
        while True:
            if condition():
                return
            await trio.sleep(0.01)


def packets(voice: FakeVoiceServer) -> list[Packet]:
    session = voice.session
    stream = voice.streams.get(session.ssrc) if session is not None else None
    return stream.packets if stream is not None else []


def silences(voice: FakeVoiceServer) -> int:
    return sum(1 for p in packets(voice) if p.kind == "silence")


def sender_stats(app: App) -> PacedSenderStatistics:
    session = app.voice.session(GUILD_ID)
    assert session is not None
    assert session.link is not None
    stats = session.link.statistics().sender
    assert stats is not None
    return stats


async def speak(rig: Rig, text: str, user_id: int) -> tuple[float, int]:
    """Dispatch /speak; return (seconds to the first new RTP packet, index of that packet)."""
    before = len(packets(rig.voice))
    with trio.fail_after(STEP_DEADLINE):
        started = time.perf_counter()
        interaction = await rig.fake.interact(
            "speak", [{"name": "text", "type": 3, "value": text}], user_id=user_id
        )
        await rig.voice.wait_until(lambda: len(packets(rig.voice)) > before)
        first = packets(rig.voice)[before].perf_time
        await rig.fake.wait_answered(interaction)
    answer = last_message(interaction)["content"]
    assert answer == "Speaking.", answer
    return first - started, before


async def play_through(rig: Rig, text: str, user_id: int) -> Pacing:
    """One whole /speak; the grid statistics of its packets (audio and trailing silence)."""
    stats_before = sender_stats(rig.app)
    silence_before = silences(rig.voice)
    trio_start = trio.current_time()
    _, first = await speak(rig, text, user_id)
    with trio.fail_after(STEP_DEADLINE):
        await rig.voice.wait_until(
            lambda: silences(rig.voice) >= silence_before + SILENCE_FRAME_COUNT
        )
    trio_end = trio.current_time()
    stats = sender_stats(rig.app)
    arrivals = [p.perf_time for p in packets(rig.voice)[first:]]
    deviations = [abs(t - (arrivals[0] + n * GRID)) * 1000 for n, t in enumerate(arrivals)]
    gaps = [(b - a) * 1000 for a, b in itertools.pairwise(arrivals)]
    writes = [
        r
        for r in rig.fake.rest.requests
        if trio_start <= r.arrived_at <= trio_end and r.method in ("POST", "PATCH")
    ]
    return Pacing(
        packets=len(arrivals),
        dev_p50=percentile(deviations, 50),
        dev_p99=percentile(deviations, 99),
        dev_max=max(deviations),
        gap_p50=percentile(gaps, 50),
        gap_p99=percentile(gaps, 99),
        gap_max=max(gaps),
        late=stats.late_frames - stats_before.late_frames,
        skipped=stats.skipped_slots - stats_before.skipped_slots,
        frames=stats.frames_sent - stats_before.frames_sent,
        discord_writes=len(writes),
    )


async def measure_pacing(server: ssl.SSLContext, data_dir: Path) -> dict[str, Pacing]:
    reply = " ".join(f"w{n}" for n in range(CHAT_TOKENS))
    async with open_rig(server, data_dir, "openai", reply=reply) as rig:
        rig.speech.seconds_per_char = SPEAK_SECONDS / len(LONG_TEXT)
        baseline = await play_through(rig, LONG_TEXT, USER_ID)
        for n in range(CHATS):
            await rig.fake.say(
                "tell me",
                mention_bot=True,
                channel_id=CHAT_CHANNEL_BASE + n,
                username=f"u{n}",
                user_id=n + 1,
            )
        await poll(lambda: sum(1 for s in rig.ollama.streams if s.chunk_times) >= CHATS)
        loaded = await play_through(rig, LONG_TEXT, USER_ID + 1)
        streaming = rig.ollama.max_concurrent_streams
    return {"baseline (idle)": baseline, f"loaded ({CHATS} chats, max {streaming} live)": loaded}


async def measure_latency(
    server: ssl.SSLContext, data_dir: Path, engine: str
) -> tuple[float, float, float]:
    """(cold, warm) /speak → first packet, and how long the Piper model load took (else nan)."""
    async with open_rig(server, data_dir, engine) as rig:
        session = rig.app.voice.session(GUILD_ID)
        assert session is not None
        player = session.player
        results = []
        for n in range(2):
            seconds, _ = await speak(rig, THREE_SENTENCES, USER_ID + n)
            results.append(seconds)
            assert await command(rig.fake, "stop") == "Stopped."
            await poll(lambda: player.statistics().playing is None)
            await trio.sleep(0.3)  # let a cancelled synthesis thread finish
        load = getattr(rig.app.speaker.engine, "load_seconds", None)
        assert rig.voice.errors == [], rig.voice.errors
    return results[0], results[1], float("nan") if load is None else float(load)


def print_pacing(results: dict[str, Pacing]) -> None:
    print(
        f"A. pacing: one /speak of {SPEAK_SECONDS:.0f} s (fake OpenAI tone), arrival at the "
        "fake's UDP socket vs first + n*20 ms"
    )
    print(
        "  run                              packets  |dev| p50 / p99 / max ms   "
        "gap p50 / p99 / max ms   late  skipped  Discord writes"
    )
    for name, r in results.items():
        print(
            f"  {name:32s} {r.packets:7d}  {r.dev_p50:6.2f} / {r.dev_p99:6.2f} / {r.dev_max:6.2f}"
            f"    {r.gap_p50:5.2f} / {r.gap_p99:5.2f} / {r.gap_max:6.2f}"
            f"   {r.late:4d}  {r.skipped:7d}  {r.discord_writes:14d}"
        )


def print_latency(results: dict[str, tuple[float, float, float] | str]) -> None:
    print('B. /speak dispatched -> first RTP packet at the fake, 3 sentences ("Hello there, ...")')
    print("  engine                 cold ms    warm ms   model load ms")
    for name, r in results.items():
        if isinstance(r, str):
            print(f"  {name:20s}  {r}")
            continue
        cold, warm, load = r
        loaded = "" if math.isnan(load) else f"{load * 1000:13.0f}"  # nan: no model to load
        print(f"  {name:20s}  {cold * 1000:8.0f}  {warm * 1000:9.0f}   {loaded}")


async def main() -> None:
    started = time.perf_counter()
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server)
    with tempfile.TemporaryDirectory() as tmp:
        pem = Path(tmp) / "ca.pem"
        ca.cert_pem.write_to_path(str(pem))
        os.environ[CA_FILE_ENV] = str(pem)
        pacing = await measure_pacing(server, Path(tmp) / "pacing")
        latency: dict[str, tuple[float, float, float] | str] = {}
        if shutil.which("espeak-ng") is None:
            latency["espeak-ng"] = "skipped: espeak-ng is not installed"
        else:
            latency["espeak-ng"] = await measure_latency(server, Path(tmp) / "espeak", "espeak")
        if importlib.util.find_spec("piper") is None:
            latency["piper (joe)"] = "skipped: the piper extra is not installed"
        else:
            latency["piper (joe)"] = await measure_latency(server, Path(tmp) / "piper", "piper")
        latency["fake OpenAI speech"] = await measure_latency(server, Path(tmp) / "oai", "openai")
    print_pacing(pacing)
    print_latency(latency)
    print(f"  total benchmark time: {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    trio.run(main)
