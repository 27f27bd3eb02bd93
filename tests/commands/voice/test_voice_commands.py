"""/voices, /set_voice and /speak_as (voice conversion through the fake rvc-python server)."""

from __future__ import annotations

from typing import Final

import numpy as np
import pytest
import trio

from tests.commands.voice.helpers import DEADLINE, VOICE_CHANNEL, run_command, wait_stream
from tests.fakes.discord import MANAGER, USER_ID, FakeDiscord, last_message
from tests.fakes.rvc_servers import FakeRVCHttp
from tests.fakes.tts_servers import FakeSpeechServer
from tests.fakes.voice_server import FakeVoiceServer, Stream
from trio_companion.app import App

with_rvc: Final = pytest.mark.parametrize("rvc_enabled", [True])


def _rms(stream: Stream, start: int = 0) -> float:
    pcm = np.frombuffer(stream.pcm[start:], dtype=np.int16).astype(np.float64)
    return float(np.sqrt(np.mean(pcm**2)))


async def _set_voice(fake: FakeDiscord, permissions: int, **options: str) -> str:
    interaction = await fake.interact(
        "set_voice",
        [{"name": k, "type": 3, "value": v} for k, v in options.items()],
        permissions=permissions,
    )
    await fake.wait_answered(interaction)
    content = last_message(interaction)["content"]
    assert isinstance(content, str)
    return content


@with_rvc
async def test_voices_lists_speech_voices_and_voice_models(
    app: App, fake_discord: FakeDiscord
) -> None:
    with trio.fail_after(DEADLINE):
        answer = await run_command(fake_discord, "voices")
        assert "af_heart" in answer
        assert "mira" in answer
        assert "narrator" in answer


async def test_speak_as_without_voice_conversion_is_refused(
    app: App, fake_discord: FakeDiscord
) -> None:
    with trio.fail_after(DEADLINE):
        assert await run_command(fake_discord, "join") == f"Joined <#{VOICE_CHANNEL}>."
        answer = await run_command(fake_discord, "speak_as", voice="mira", text="Hello.")
        assert answer == "Voice conversion is off: set rvc.enabled in the configuration."


@with_rvc
async def test_speak_as_converts_and_an_unknown_model_is_refused(
    app: App,
    fake_discord: FakeDiscord,
    voice_server: FakeVoiceServer,
    rvc_server: FakeRVCHttp,
) -> None:
    with trio.fail_after(DEADLINE):
        assert await run_command(fake_discord, "join") == f"Joined <#{VOICE_CHANNEL}>."
        answer = await run_command(fake_discord, "speak_as", voice="mirra", text="Hello.")
        assert answer.startswith("There is no voice model “mirra”")
        assert "mira" in answer

        text = "A converted sentence. And a second one."
        assert await run_command(fake_discord, "speak", text=text, user_id=USER_ID + 1) == (
            "Speaking."
        )
        stream = await wait_stream(voice_server, lambda s: s.silence_frames >= 5)
        plain = _rms(stream)
        mark = len(stream.pcm)
        answer = await run_command(
            fake_discord, "speak_as", voice="mira", text=text, user_id=USER_ID + 2
        )
        assert answer == "Speaking."
        await wait_stream(voice_server, lambda s: s.silence_frames >= 10)
        # The fake model halves the level (and makes it mono): the listener hears the change.
        assert _rms(stream, mark) < 0.7 * plain
        assert [model for model, _ in rvc_server.conversions] == ["mira", "mira"]
        assert voice_server.errors == []


@with_rvc
async def test_speak_as_with_rvc_down_speaks_plainly_and_says_so_once(
    app: App,
    fake_discord: FakeDiscord,
    voice_server: FakeVoiceServer,
    rvc_server: FakeRVCHttp,
) -> None:
    with trio.fail_after(DEADLINE):
        assert await run_command(fake_discord, "join") == f"Joined <#{VOICE_CHANNEL}>."
        rvc_server.status = 500
        first = await fake_discord.interact(
            "speak_as",
            [
                {"name": "voice", "type": 3, "value": "mira"},
                {"name": "text", "type": 3, "value": "One. Two."},
            ],
        )
        stream = await wait_stream(voice_server, lambda s: s.silence_frames >= 5)
        assert len(stream.pcm) > 0  # spoken, unconverted
        await fake_discord.rest.wait_until(lambda: len(first.followups) >= 1)
        notices = [m["content"] for m in first.followups.values()]
        assert len(notices) == 1
        assert notices[0].startswith("Voice conversion isn't working")
        second = await fake_discord.interact(
            "speak_as",
            [
                {"name": "voice", "type": 3, "value": "mira"},
                {"name": "text", "type": 3, "value": "Three."},
            ],
            user_id=USER_ID + 1,
        )
        await wait_stream(voice_server, lambda s: s.silence_frames >= 10)
        await fake_discord.wait_answered(second)
        assert not any("isn't working" in m["content"] for m in second.followups.values())
        assert voice_server.errors == []


async def test_set_voice_needs_manage_server_and_sets_the_voice(
    app: App,
    fake_discord: FakeDiscord,
    speech_server: FakeSpeechServer,
    voice_server: FakeVoiceServer,
) -> None:
    with trio.fail_after(DEADLINE):
        refused = await _set_voice(fake_discord, permissions=0, voice="af_bella")
        assert "Manage Server" in refused
        unknown = await _set_voice(fake_discord, permissions=MANAGER, voice="zz_nobody")
        assert unknown == "There is no voice “zz_nobody”; /voices lists them."
        done = await _set_voice(fake_discord, permissions=MANAGER, voice="af_bella")
        assert done == "This server's voice is now **af_bella**."
        assert await run_command(fake_discord, "join") == f"Joined <#{VOICE_CHANNEL}>."
        assert await run_command(fake_discord, "speak", text="In my new voice.") == "Speaking."
        # Audio at the voice server means the speech server was asked first.
        await wait_stream(voice_server, lambda s: s.dave_frames > 0)
        assert speech_server.speech_bodies[-1]["voice"] == "af_bella"
