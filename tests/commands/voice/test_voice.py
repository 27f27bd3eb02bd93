"""/join, /speak, /stop, /leave through the whole app: fake Discord (REST + gateway), the fake
voice server (WSS + UDP, real AEAD, real Opus decoding, a real DAVE group with a listener) and a
fake OpenAI-compatible speech server that answers with a tone of a known length.

Real clock: audio is produced in worker threads and paced at 20 ms on trio's clock, and the fake
voice server records arrival times; MockClock's autojump would treat the thread waits as idle.
"""

from __future__ import annotations

import numpy as np
import pytest
import trio

from tests.commands.voice.helpers import (
    CROWD,
    DEADLINE,
    VOICE_CHANNEL,
    run_command,
    wait_stream,
)
from tests.fakes.discord import GUILD_ID, USER_ID, FakeDiscord
from tests.fakes.llm_servers import FakeOllama
from tests.fakes.tts_servers import FakeSpeechServer
from tests.fakes.voice_server import FakeVoiceServer
from trio_companion.app import App


async def test_join_speak_leave_end_to_end(
    app: App, fake_discord: FakeDiscord, voice_server: FakeVoiceServer
) -> None:
    with trio.fail_after(DEADLINE):
        assert await run_command(fake_discord, "join") == f"Joined <#{VOICE_CHANNEL}>."
        session = voice_server.session
        assert session is not None
        # Identify offered DAVE; the group formed with the fake's listener.
        await voice_server.wait_until(lambda: session.dave_executed)

        text = "Hello there. This is a test. Goodbye now."
        assert await run_command(fake_discord, "speak", text=text) == "Speaking."
        stream = await wait_stream(voice_server, lambda s: s.silence_frames >= 5)

        assert voice_server.errors == []
        # Every audio frame was end-to-end encrypted and the listener could decrypt it.
        assert stream.dave_frames > 0
        assert stream.plain_frames == 0
        pcm = np.frombuffer(stream.pcm, dtype=np.int16).astype(np.float64)
        pcm_seconds = len(pcm) / (48_000 * 2)
        assert pcm_seconds == pytest.approx(len(text) * 0.01, abs=0.2)
        assert np.sqrt(np.mean(pcm**2)) > 1000  # a tone, not silence
        status = await run_command(fake_discord, "status", user_id=USER_ID + 1)
        assert "**Voice**: 1 session(s), 1 end-to-end encrypted, 0 queued, 0 late frames" in status

        assert await run_command(fake_discord, "leave") == "Left the voice channel."
        await fake_discord.gateway.wait_until(
            lambda: fake_discord.voice_requests[-1]["channel_id"] is None
        )
        assert app.voice.session(GUILD_ID) is None


async def test_speak_without_join_is_refused(app: App, fake_discord: FakeDiscord) -> None:
    with trio.fail_after(DEADLINE):
        answer = await run_command(fake_discord, "speak", text="hi")
        assert "not in a voice channel" in answer


async def test_join_when_caller_not_in_voice(app: App, fake_discord: FakeDiscord) -> None:
    with trio.fail_after(DEADLINE):
        answer = await run_command(fake_discord, "join", user_id=USER_ID + 99)
        assert answer == "Join a voice channel first, then run /join."


async def test_fatal_close_tells_the_channel_once(
    app: App, fake_discord: FakeDiscord, voice_server: FakeVoiceServer
) -> None:
    with trio.fail_after(DEADLINE):
        assert await run_command(fake_discord, "join") == f"Joined <#{VOICE_CHANNEL}>."
        await voice_server.close_current(4021)
        await fake_discord.wait_bot_messages(1)
        (message,) = fake_discord.bot_messages()
        assert message["content"].startswith("Left voice")
        assert "4021" in message["content"]
        await fake_discord.rest.wait_until(lambda: app.voice.session(GUILD_ID) is None)
        # No reconnect loop: one voice connection in all.
        assert len(voice_server.connections) == 1


async def test_4006_rejoins_then_gives_up(
    app: App, fake_discord: FakeDiscord, voice_server: FakeVoiceServer
) -> None:
    with trio.fail_after(DEADLINE):
        voice_server.close_after_hello(4006, times=10)
        answer = await run_command(fake_discord, "join")
        assert "4006" in answer
        assert "Gave up" in answer
        # The first try and exactly MAX_NEW_SESSIONS fresh op 4 flows (leave, join), then a
        # final leave; the leave may reach the fake gateway just after the answer.
        channel = str(VOICE_CHANNEL)
        expected = [channel, None, channel, None, channel, None, channel, None]
        await fake_discord.gateway.wait_until(
            lambda: len(fake_discord.voice_requests) == len(expected)
        )
        assert [r["channel_id"] for r in fake_discord.voice_requests] == expected
        assert len(voice_server.connections) == 4
        assert app.voice.session(GUILD_ID) is None


@pytest.mark.parametrize("code", [4014, 4017, 4021, 4022])
async def test_a_fatal_close_while_joining_is_answered_without_retrying(
    app: App, fake_discord: FakeDiscord, voice_server: FakeVoiceServer, code: int
) -> None:
    with trio.fail_after(DEADLINE):
        voice_server.close_after_hello(code, times=10)
        answer = await run_command(fake_discord, "join")
        assert str(code) in answer
        assert len(voice_server.connections) == 1
        assert app.voice.session(GUILD_ID) is None


async def test_4015_resumes_and_keeps_playing(
    app: App, fake_discord: FakeDiscord, voice_server: FakeVoiceServer
) -> None:
    with trio.fail_after(DEADLINE):
        assert await run_command(fake_discord, "join") == f"Joined <#{VOICE_CHANNEL}>."
        await voice_server.close_current(4015)
        await voice_server.wait_until(
            lambda: any(c.kind == "resume" for c in voice_server.connections)
        )
        assert (
            await run_command(fake_discord, "speak", text="Still here after a resume.")
            == "Speaking."
        )
        await wait_stream(voice_server, lambda s: s.silence_frames >= 5)
        assert voice_server.errors == []
        assert len(voice_server.sessions) == 1  # resumed, not a new session


async def test_stop_interrupts_and_queue_is_bounded(
    app: App, fake_discord: FakeDiscord, voice_server: FakeVoiceServer
) -> None:
    with trio.fail_after(DEADLINE):
        assert await run_command(fake_discord, "join") == f"Joined <#{VOICE_CHANNEL}>."
        long_text = "This sentence is rather long and takes a while to say. " * 8
        assert await run_command(fake_discord, "speak", text=long_text) == "Speaking."
        await wait_stream(voice_server, lambda s: s.dave_frames >= 10)
        limit = app.config.voice.queue_limit
        # Other users, so the per-user 3 s cooldown does not answer first.
        answers = [
            await run_command(fake_discord, "speak", text=f"Queued {n}.", user_id=USER_ID + 1 + n)
            for n in range(limit + 1)
        ]
        assert answers[0] == "Queued (1 ahead)."
        assert "queue is full" in answers[-1]
        assert await run_command(fake_discord, "stop") == "Stopped."
        session = app.voice.session(GUILD_ID)
        assert session is not None
        stats = session.player.statistics()
        assert stats.queued == 0
        # Speaking 0 follows the cut; then no more audio for the dropped queue.
        await voice_server.wait_until(lambda: voice_server.speaking[-1][1] == 0)
        await session.player.wait_idle()
        assert session.player.statistics().interrupted == 1
        assert session.player.statistics().played == 0
        assert voice_server.errors == []


@pytest.mark.parametrize("speak_replies", [True])
async def test_chat_replies_are_spoken_when_configured(
    app: App,
    fake_discord: FakeDiscord,
    voice_server: FakeVoiceServer,
    speech_server: FakeSpeechServer,
) -> None:
    with trio.fail_after(DEADLINE):
        assert await run_command(fake_discord, "join") == f"Joined <#{VOICE_CHANNEL}>."
        await fake_discord.say("how are you today?", mention_bot=True)
        await fake_discord.wait_bot_messages(1)
        await wait_stream(voice_server, lambda s: s.silence_frames >= 5)
        (reply,) = fake_discord.bot_messages()
        # The same words were sent to the speech server as were posted in the channel.
        spoken = " ".join(body["input"] for body in speech_server.speech_bodies)
        assert spoken.split()[:3] == reply["content"].split()[:3]
        assert voice_server.errors == []


@pytest.mark.parametrize("speak_replies", [True])
async def test_a_spoken_reply_starts_before_the_text_is_finished(
    app: App,
    fake_discord: FakeDiscord,
    fake_ollama: FakeOllama,
    voice_server: FakeVoiceServer,
    speech_server: FakeSpeechServer,
) -> None:
    fake_ollama.reply = "The first sentence is here. And then the model thinks for a while."
    # Chunks 0-5 are "The first sentence is here. And": the sentence is complete, then the
    # model stalls before the rest.
    fake_ollama.stall_after = (6, 2.0)
    with trio.fail_after(DEADLINE):
        assert await run_command(fake_discord, "join") == f"Joined <#{VOICE_CHANNEL}>."
        await fake_discord.say("tell me something", mention_bot=True)
        await wait_stream(voice_server, lambda s: s.dave_frames > 0)
        # Already heard while the model is still writing.
        assert fake_ollama.streams[-1].outcome == "streaming"
        assert [body["input"] for body in speech_server.speech_bodies] == [
            "The first sentence is here."
        ]
        # The stall is a pause: five silence frames end the first talk spurt, five the second.
        await wait_stream(voice_server, lambda s: s.silence_frames >= 10)
        (link,) = app.voice.statistics().links
        assert link.sender is not None
        assert link.sender.underruns == 1
        assert [body["input"] for body in speech_server.speech_bodies] == [
            "The first sentence is here.",
            "And then the model thinks for a while.",
        ]
        assert voice_server.errors == []


async def test_shutdown_closes_the_voice_connection_cleanly(
    app: App, fake_discord: FakeDiscord, voice_server: FakeVoiceServer
) -> None:
    with trio.fail_after(DEADLINE):
        assert await run_command(fake_discord, "join") == f"Joined <#{VOICE_CHANNEL}>."
        connection = voice_server.current_connection
        assert connection is not None
        app.request_shutdown("test: shutdown while in voice")
        await connection.ended.wait()
        # 1000: the voice session ends at once (a 4xxx close would leave it resumable).
        assert connection.client_close_code == 1000
        assert voice_server.errors == []


@pytest.mark.parametrize("leave_when_alone", [0.2])
async def test_the_bot_leaves_when_everyone_else_left(
    app: App, fake_discord: FakeDiscord, voice_server: FakeVoiceServer
) -> None:
    with trio.fail_after(DEADLINE):
        assert await run_command(fake_discord, "join") == f"Joined <#{VOICE_CHANNEL}>."
        for user in (USER_ID, *CROWD):
            await fake_discord.voice_state(GUILD_ID, user, None)
        await fake_discord.wait_bot_messages(1)
        (message,) = fake_discord.bot_messages()
        assert message["content"] == (
            "Left voice: Everyone else left the voice channel, so I left too."
        )
        await fake_discord.gateway.wait_until(
            lambda: fake_discord.voice_requests[-1]["channel_id"] is None
        )
        assert app.voice.session(GUILD_ID) is None
