"""Voice flows through the whole app: concurrent commands, real TTS engines, a TTS failure, a
moderator moving the bot, and a kick.

Same fakes as `tests.commands.test_voice` (fake Discord, fake voice server with real AEAD, Opus
and DAVE, fake speech server); real clock for the same reason (audio is paced on worker threads).
Every wait is on a fake's condition, bounded by ``trio.fail_after``.
"""

from __future__ import annotations

import random
from typing import Any, Final

import numpy as np
import pytest
import trio

from tests.commands.voice.helpers import (
    CROWD,
    DEADLINE,
    OTHER_VOICE_CHANNEL,
    VOICE_CHANNEL,
    run_command,
    wait_stream,
)
from tests.fakes.discord import GUILD_ID, FakeDiscord
from tests.fakes.discord_rest import FakeInteraction
from tests.fakes.tts_servers import FakeSpeechServer
from tests.fakes.voice_server import FakeVoiceServer
from trio_companion.app import App
from trio_companion.services.tts.text import clean_for_speech, split_sentences

REAL_TTS_DEADLINE: Final = 60
FRAME_SECONDS: Final = 0.02
BYTES_PER_SECOND: Final = 48_000 * 2 * 2  # 48 kHz stereo s16le


# --- helpers ---------------------------------------------------------------------------------


def _visible_answers(interaction: FakeInteraction) -> list[str]:
    """Every message the user can see for ``interaction``: the original (unless it is still
    the empty "thinking…" or a progress line) and each followup."""
    shown: list[str] = []
    original = interaction.original
    if original is not None:
        content = original["content"]
        if content and not content.startswith("Still working"):
            shown.append(content)
    shown.extend(m["content"] for m in interaction.followups.values())
    return shown


def _pcm_seconds(pcm: bytes) -> float:
    return len(pcm) / BYTES_PER_SECOND


def _rms(pcm: bytes) -> float:
    samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float64)
    return float(np.sqrt(np.mean(samples**2))) if len(samples) else 0.0


def _last_op4_channel(fake: FakeDiscord) -> Any:
    return fake.voice_requests[-1]["channel_id"] if fake.voice_requests else None


# --- 1. concurrent commands ------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_ten_concurrent_commands_leave_one_consistent_state(
    app: App, fake_discord: FakeDiscord, voice_server: FakeVoiceServer, seed: int
) -> None:
    rng = random.Random(seed)
    commands: list[tuple[str, dict[str, str]]] = [
        *[("join", {}) for _ in range(4)],
        *[("speak", {"text": f"Concurrent line {n}."}) for n in range(3)],
        *[("leave", {}) for _ in range(3)],
    ]
    rng.shuffle(commands)
    interactions: dict[int, FakeInteraction] = {}

    async def one(index: int, name: str, options: dict[str, str]) -> None:
        interaction = await fake_discord.interact(
            name,
            [{"name": k, "type": 3, "value": v} for k, v in options.items()],
            user_id=CROWD[index],
        )
        interactions[index] = interaction
        await fake_discord.wait_answered(interaction)

    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            for index, (name, options) in enumerate(commands):
                nursery.start_soon(one, index, name, options)

        for index, (name, _) in enumerate(commands):
            answers = _visible_answers(interactions[index])
            assert len(answers) == 1, (name, answers)
            (answer,) = answers
            if name == "join":
                assert answer in (
                    f"Joined <#{VOICE_CHANNEL}>.",
                    f"I'm already in <#{VOICE_CHANNEL}>.",
                ), answer
            elif name == "speak":
                assert (
                    answer == "Speaking."
                    or answer.startswith("Queued (")
                    or "not in a voice channel" in answer
                ), answer
            else:
                assert answer == "Left the voice channel." or "not in a voice channel" in answer, (
                    answer
                )

        # The op 4 the bot sent last reaches the fake's gateway a moment after the answer may.
        session = app.voice.session(GUILD_ID)

        def consistent() -> bool:
            return (_last_op4_channel(fake_discord) is None) == (session is None)

        await fake_discord.gateway.wait_until(consistent)
        if session is not None:
            assert _last_op4_channel(fake_discord) == str(VOICE_CHANNEL)
        expected_live = 0 if session is None else 1
        await voice_server.wait_until(
            lambda: sum(c.live for c in voice_server.connections) == expected_live
        )
        assert app.voice.session(GUILD_ID) is session
        assert sum(c.live for c in voice_server.connections) <= 1
        assert app.voice.statistics().sessions == expected_live
        assert voice_server.errors == []


async def test_join_right_after_leave_is_not_removed_by_the_stale_update(
    app: App, fake_discord: FakeDiscord, voice_server: FakeVoiceServer
) -> None:
    with trio.fail_after(DEADLINE):
        assert await run_command(fake_discord, "join") == f"Joined <#{VOICE_CHANNEL}>."
        leave = await fake_discord.interact("leave", user_id=CROWD[0])
        join = await fake_discord.interact("join", user_id=CROWD[1])
        await fake_discord.wait_answered(leave)
        await fake_discord.wait_answered(join)
        assert _visible_answers(leave) == ["Left the voice channel."]
        assert _visible_answers(join) == [f"Joined <#{VOICE_CHANNEL}>."]
        session = app.voice.session(GUILD_ID)
        assert session is not None
        await fake_discord.gateway.wait_until(
            lambda: _last_op4_channel(fake_discord) == str(VOICE_CHANNEL)
        )


# --- 2, 3. real TTS engines ------------------------------------------------------------------


async def _speak_and_measure(
    app: App, fake_discord: FakeDiscord, voice_server: FakeVoiceServer, text: str
) -> bytes:
    """/join, /speak ``text``, wait for the trailing silence; returns the decoded PCM."""
    assert await run_command(fake_discord, "join") == f"Joined <#{VOICE_CHANNEL}>."
    assert await run_command(fake_discord, "speak", text=text) == "Speaking."
    stream = await wait_stream(voice_server, lambda s: s.silence_frames >= 5)
    assert voice_server.errors == []
    assert stream.dave_frames > 0
    assert stream.plain_frames == 0
    return stream.pcm


def _assert_duration(measured: float, expected: float) -> None:
    # Opus frames of 20 ms: the last one is padded, and the encoder may add a frame of delay.
    tolerance = 0.25 * expected + 2 * FRAME_SECONDS
    assert abs(measured - expected) <= tolerance, (measured, expected)


TWO_SENTENCES: Final = "The quick brown fox jumps over the lazy dog. Then it runs far away."


@pytest.mark.parametrize("tts_engine", ["piper"])
async def test_piper_speaks_end_to_end(
    app: App, fake_discord: FakeDiscord, voice_server: FakeVoiceServer
) -> None:
    from trio_companion.services.tts.piper import PiperEngine  # noqa: PLC0415 - optional extra

    with trio.fail_after(REAL_TTS_DEADLINE):
        pcm = await _speak_and_measure(app, fake_discord, voice_server, TWO_SENTENCES)
        assert _rms(pcm) > 300  # speech, not silence

        sentences = split_sentences(clean_for_speech(TWO_SENTENCES))
        assert len(sentences) == 2
        engine = PiperEngine()
        expected = 0.0
        for sentence in sentences:
            expected += (await engine.synthesize(sentence)).duration
        _assert_duration(_pcm_seconds(pcm), expected)


@pytest.mark.parametrize("tts_engine", ["espeak"])
async def test_espeak_speaks_end_to_end(
    app: App, fake_discord: FakeDiscord, voice_server: FakeVoiceServer
) -> None:
    from trio_companion.services.tts.espeak import EspeakEngine  # noqa: PLC0415

    with trio.fail_after(REAL_TTS_DEADLINE):
        pcm = await _speak_and_measure(app, fake_discord, voice_server, TWO_SENTENCES)
        assert _rms(pcm) > 300

        sentences = split_sentences(clean_for_speech(TWO_SENTENCES))
        assert len(sentences) == 2
        engine = app.speaker.engine  # the configured voice and speed
        assert isinstance(engine, EspeakEngine)
        expected = 0.0
        for sentence in sentences:
            expected += (await engine.synthesize(sentence)).duration
        _assert_duration(_pcm_seconds(pcm), expected)


# --- 4. a TTS failure ------------------------------------------------------------------------


async def test_tts_failure_is_told_and_the_session_stays_up(
    app: App,
    fake_discord: FakeDiscord,
    voice_server: FakeVoiceServer,
    speech_server: FakeSpeechServer,
) -> None:
    with trio.fail_after(DEADLINE):
        assert await run_command(fake_discord, "join") == f"Joined <#{VOICE_CHANNEL}>."
        session = app.voice.session(GUILD_ID)
        assert session is not None
        connection = voice_server.current_connection
        assert connection is not None

        speech_server.down = True
        interaction = await fake_discord.interact(
            "speak", [{"name": "text", "type": 3, "value": "This will not be heard."}]
        )
        await fake_discord.rest.wait_until(lambda: bool(interaction.followups))
        assert interaction.original is not None
        assert interaction.original["content"] == "Speaking."
        (followup,) = interaction.followups.values()
        assert followup["content"].startswith("I couldn't say that")
        assert followup["flags"] & (1 << 6)  # ephemeral: only the speaker sees it
        await session.player.wait_idle()
        assert session.player.statistics().failed == 1

        # The session is untouched: same session, same voice connection, nothing said.
        assert app.voice.session(GUILD_ID) is session
        assert connection.live
        assert len(voice_server.connections) == 1
        assert fake_discord.bot_messages() == []

        speech_server.down = False
        ssrc = voice_server.session.ssrc if voice_server.session else None
        before = voice_server.streams.get(ssrc) if ssrc is not None else None
        pcm_before = len(before.pcm) if before is not None else 0
        silence_before = before.silence_frames if before is not None else 0
        text = "Back again and speaking fine."
        # Another user: the first one's /speak cooldown (3 s) is still running.
        assert await run_command(fake_discord, "speak", text=text, user_id=CROWD[0]) == "Speaking."
        stream = await wait_stream(voice_server, lambda s: s.silence_frames >= silence_before + 5)
        assert voice_server.errors == []
        played = stream.pcm[pcm_before:]
        assert _pcm_seconds(played) == pytest.approx(speech_server.duration_for(text), abs=0.2)
        assert _rms(played) > 1000
        assert session.player.statistics().played == 1
        assert len(voice_server.connections) == 1


# --- 5. a move by a moderator ----------------------------------------------------------------


async def test_moved_by_a_moderator_relinks_with_the_new_token(
    app: App, fake_discord: FakeDiscord, voice_server: FakeVoiceServer
) -> None:
    with trio.fail_after(DEADLINE):
        assert await run_command(fake_discord, "join") == f"Joined <#{VOICE_CHANNEL}>."
        old_session = voice_server.session
        assert old_session is not None
        await voice_server.wait_until(lambda: old_session.dave_executed)
        old_connection = voice_server.current_connection
        assert old_connection is not None
        op4_count = len(fake_discord.voice_requests)

        bot = fake_discord.rest.bot_user_id
        session_id = old_session.session_id
        voice_server.allow(
            server_id=GUILD_ID,
            user_id=bot,
            session_id=session_id,
            token="moved-token",
            channel_id=OTHER_VOICE_CHANNEL,
        )
        await fake_discord.voice_state(GUILD_ID, bot, OTHER_VOICE_CHANNEL, session_id=session_id)
        await fake_discord.gateway.dispatch(
            "VOICE_SERVER_UPDATE",
            {"token": "moved-token", "guild_id": str(GUILD_ID), "endpoint": voice_server.endpoint},
        )

        await voice_server.wait_until(
            lambda: (
                len(voice_server.connections) >= 2
                and voice_server.connections[1].kind == "identify"
            )
        )
        new_connection = voice_server.connections[1]
        (identify,) = new_connection.ops(0)
        assert identify["token"] == "moved-token"
        assert str(identify["session_id"]) == session_id
        await old_connection.ended.wait()
        assert not old_connection.live
        assert old_connection.client_close_code == 1000  # the bot closed the old link

        new_session = voice_server.session
        assert new_session is not None
        assert new_session is not old_session
        assert new_session.channel_id == OTHER_VOICE_CHANNEL
        await voice_server.wait_until(lambda: new_session.dave_executed)
        voice = app.voice.session(GUILD_ID)
        assert voice is not None
        assert voice.channel_id == OTHER_VOICE_CHANNEL

        text = "Speaking from the other channel."
        assert await run_command(fake_discord, "speak", text=text) == "Speaking."
        stream = await wait_stream(voice_server, lambda s: s.silence_frames >= 5)
        assert stream.ssrc == new_session.ssrc
        assert stream.dave_frames > 0
        assert stream.plain_frames == 0
        assert _rms(stream.pcm) > 1000
        assert voice_server.errors == []
        # A move needs no op 4 from the bot, and nothing went to the channel.
        assert len(fake_discord.voice_requests) == op4_count
        assert len(voice_server.connections) == 2
        assert fake_discord.bot_messages() == []


# --- 6. a kick -------------------------------------------------------------------------------


async def test_kick_ends_the_session_without_reconnecting(
    app: App, fake_discord: FakeDiscord, voice_server: FakeVoiceServer
) -> None:
    with trio.fail_after(DEADLINE):
        assert await run_command(fake_discord, "join") == f"Joined <#{VOICE_CHANNEL}>."
        session = voice_server.session
        assert session is not None
        connection = voice_server.current_connection
        assert connection is not None
        op4_count = len(fake_discord.voice_requests)

        bot = fake_discord.rest.bot_user_id
        await fake_discord.voice_state(GUILD_ID, bot, None, session_id=session.session_id)
        await connection.close(4014)  # a no-op if the bot already closed it

        await fake_discord.wait_bot_messages(1)
        (message,) = fake_discord.bot_messages()
        assert message["content"].startswith("Left voice")
        await fake_discord.rest.wait_until(lambda: app.voice.session(GUILD_ID) is None)
        assert app.voice.statistics().sessions == 0
        await connection.ended.wait()
        assert len(voice_server.connections) == 1
        # Removed by Discord: no rejoin and no op 4 "leave" either.
        assert len(fake_discord.voice_requests) == op4_count
        assert voice_server.errors == []
