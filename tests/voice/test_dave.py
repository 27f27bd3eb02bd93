"""Tests of `voice.dave`: binary framing, and the DAVE state machine against real davey groups.

The voice server's role (the MLS external sender) is played by `FakeExternalSender`, a second call
member by `FakeDaveMember`; nothing touches the network.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import msgspec
import pytest

from tests.fakes.dave_external import FakeDaveMember, FakeExternalSender, split_commit_welcome
from trio_companion.voice.dave import (
    OPUS_SILENCE,
    DaveState,
    Outgoing,
    encode_binary,
    parse_binary_frame,
)
from trio_companion.voice.errors import MalformedPacket, VoiceError
from trio_companion.voice.protocol import VoiceOpcode as Op

CHANNEL = 1_234_567_890_123_456_789
BOT = 111_111_111_111_111_111
LISTENER = 222_222_222_222_222_222
STRANGER = 333_333_333_333_333_333
OPUS = bytes(range(40, 100))


# --- Framing -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\x00\x05\x19abc", (5, 25, b"abc")),
        (b"\xff\xff\x1d", (65535, 29, b"")),
        (b"\x01\x00\x1e\x00\x07w", (256, 30, b"\x00\x07w")),
    ],
)
def test_parse_binary_frame(data: bytes, expected: tuple[int, int, bytes]) -> None:
    assert parse_binary_frame(data) == expected


@pytest.mark.parametrize("data", [b"", b"\x00", b"\x00\x01"])
def test_parse_binary_frame_too_short(data: bytes) -> None:
    with pytest.raises(MalformedPacket) as info:
        parse_binary_frame(data)
    assert isinstance(info.value, VoiceError)


@pytest.mark.parametrize(
    ("op", "payload", "expected"),
    [(26, b"kp", b"\x1akp"), (28, b"", b"\x1c"), (255, b"\x00", b"\xff\x00")],
)
def test_encode_binary(op: int, payload: bytes, expected: bytes) -> None:
    assert encode_binary(op, payload) == expected


@pytest.mark.parametrize("op", [-1, 256])
def test_encode_binary_rejects_wide_opcode(op: int) -> None:
    with pytest.raises(ValueError, match="byte"):
        encode_binary(op, b"")


# --- Helpers -------------------------------------------------------------------------------------


def server_binary(state: DaveState, op: int, payload: bytes, seq: int = 1) -> list[Outgoing]:
    """Deliver a server binary frame the way the voice shell does: parse, then dispatch."""
    _seq, parsed_op, parsed = parse_binary_frame(struct.pack(">HB", seq, op) + payload)
    return state.handle_binary(parsed_op, parsed)


def binary(out: Outgoing, op: int) -> bytes:
    """The payload of a client binary frame, checking its opcode."""
    assert isinstance(out, bytes)
    assert out[0] == op
    return out[1:]


def json(out: Outgoing) -> tuple[int, Any]:
    """(op, d) of a client JSON frame."""
    assert isinstance(out, str)
    msg = msgspec.json.decode(out)
    return msg["op"], msg["d"]


def transition(transition_id: int, message: bytes) -> bytes:
    """An op 29/30 payload."""
    return struct.pack(">H", transition_id) + message


@dataclass
class Call:
    bot: DaveState
    server: FakeExternalSender
    listener: FakeDaveMember


def form_group(bot: DaveState, server: FakeExternalSender, *, transition_id: int = 7) -> Call:
    """Run the DAVE handshake from op 25 on; the bot commits and the listener is welcomed."""
    listener = FakeDaveMember(user_id=LISTENER, channel_id=CHANNEL)
    bot.clients_connect([LISTENER])
    package = server.package()
    assert server_binary(bot, Op.DAVE_MLS_EXTERNAL_SENDER, package) == []
    listener.set_external_sender(package)
    assert bot.statistics().epoch == 0  # davey's pending one-member group

    proposals = server.add_proposals(
        channel_id=CHANNEL, epoch=0, key_packages=[listener.key_package()]
    )
    (out,) = server_binary(bot, Op.DAVE_MLS_PROPOSALS, proposals)
    commit, welcome = split_commit_welcome(binary(out, Op.DAVE_MLS_COMMIT_WELCOME))
    assert welcome is not None
    listener.process_welcome(welcome)  # op 30 to the listener
    assert listener.ready

    out_29 = server_binary(
        bot, Op.DAVE_MLS_ANNOUNCE_COMMIT_TRANSITION, transition(transition_id, commit)
    )
    if transition_id:
        assert [json(o) for o in out_29] == [
            (Op.DAVE_TRANSITION_READY, {"transition_id": transition_id})
        ]
        assert bot.statistics().pending_transitions == 1
        assert bot.handle_json(Op.DAVE_EXECUTE_TRANSITION, {"transition_id": transition_id}) == []
    else:
        assert out_29 == []
    assert bot.statistics().pending_transitions == 0
    assert bot.statistics().epoch == 1
    assert bot.ready
    return Call(bot, server, listener)


def started_bot() -> tuple[DaveState, bytes]:
    bot = DaveState(user_id=BOT, channel_id=CHANNEL)
    (out,) = bot.start(1)
    return bot, binary(out, Op.DAVE_MLS_KEY_PACKAGE)


def assert_e2e(call: Call) -> None:
    frame = call.bot.encrypt(OPUS)
    assert frame != OPUS
    assert frame.endswith(b"\xfa\xfa")
    assert call.listener.decrypt(BOT, frame) == OPUS
    reply = call.listener.encrypt(OPUS[::-1])
    assert call.bot.decrypt(LISTENER, reply) == OPUS[::-1]


# --- Happy path ----------------------------------------------------------------------------------


def test_start_sends_key_package() -> None:
    bot, key_package = started_bot()
    assert key_package[:4] == b"\x00\x01\x00\x02"  # MLS 1.0, ciphersuite 2
    stats = bot.statistics()
    assert (stats.protocol_version, stats.ready, stats.key_packages_sent) == (1, False, 1)
    assert bot.encrypt(OPUS) == OPUS  # not ready yet: plain, like discord.js


@pytest.mark.parametrize("transition_id", [7, 0])
def test_full_handshake_then_e2e_audio(transition_id: int) -> None:
    bot, _ = started_bot()
    call = form_group(bot, FakeExternalSender(), transition_id=transition_id)
    assert_e2e(call)
    stats = bot.statistics()
    assert (stats.protocol_version, stats.status, stats.failures) == (1, "active", 0)
    assert (stats.encrypted_frames, stats.decrypted_frames) == (1, 1)
    assert bot.voice_privacy_code


def test_silence_is_never_encrypted() -> None:
    bot, _ = started_bot()
    form_group(bot, FakeExternalSender())
    assert bot.encrypt(OPUS_SILENCE) == OPUS_SILENCE
    assert bot.decrypt(LISTENER, OPUS_SILENCE) == OPUS_SILENCE
    assert bot.statistics().encrypted_frames == 0


def test_remove_proposal_commits_without_welcome() -> None:
    bot, _ = started_bot()
    call = form_group(bot, FakeExternalSender())
    bot.client_disconnect(LISTENER)
    proposals = call.server.remove_proposals(channel_id=CHANNEL, epoch=1, leaf_indexes=[1])
    (out,) = server_binary(bot, Op.DAVE_MLS_PROPOSALS, proposals)
    commit, welcome = split_commit_welcome(binary(out, Op.DAVE_MLS_COMMIT_WELCOME))
    assert welcome is None
    out_29 = server_binary(bot, Op.DAVE_MLS_ANNOUNCE_COMMIT_TRANSITION, transition(8, commit))
    assert [json(o) for o in out_29] == [(Op.DAVE_TRANSITION_READY, {"transition_id": 8})]
    bot.handle_json(Op.DAVE_EXECUTE_TRANSITION, {"transition_id": 8})
    assert bot.statistics().epoch == 2
    assert bot.ready


def test_listener_follows_a_commit_it_saw_the_proposals_of() -> None:
    """The fake member can follow later epochs too (what a fake server needs for a second user)."""
    bot, _ = started_bot()
    call = form_group(bot, FakeExternalSender())
    newcomer = FakeDaveMember(user_id=STRANGER, channel_id=CHANNEL)
    bot.clients_connect([STRANGER])
    proposals = call.server.add_proposals(
        channel_id=CHANNEL, epoch=1, key_packages=[newcomer.key_package()]
    )
    assert call.listener.process_proposals(proposals, [BOT, STRANGER]) is not None
    (out,) = server_binary(bot, Op.DAVE_MLS_PROPOSALS, proposals)
    commit, welcome = split_commit_welcome(binary(out, Op.DAVE_MLS_COMMIT_WELCOME))
    assert welcome is not None
    server_binary(bot, Op.DAVE_MLS_ANNOUNCE_COMMIT_TRANSITION, transition(0, commit))
    call.listener.process_commit(commit)  # the bot's commit won; the listener drops its own
    assert call.listener.epoch == bot.statistics().epoch == 2
    assert_e2e(call)


# --- Refusals and recovery -----------------------------------------------------------------------


def test_proposal_for_unexpected_user_is_refused() -> None:
    bot, _ = started_bot()
    server = FakeExternalSender()
    server_binary(bot, Op.DAVE_MLS_EXTERNAL_SENDER, server.package())
    stranger = FakeDaveMember(user_id=STRANGER, channel_id=CHANNEL)
    proposals = server.add_proposals(
        channel_id=CHANNEL, epoch=0, key_packages=[stranger.key_package()]
    )
    assert server_binary(bot, Op.DAVE_MLS_PROPOSALS, proposals) == []  # no commit, no op 31
    stats = bot.statistics()
    assert (stats.failures, stats.epoch, stats.status) == (1, 0, "pending")
    # The session is untouched: the expected user can still be added afterwards.
    call = form_group(bot, server)
    assert_e2e(call)


def test_proposal_signed_by_another_server_is_refused() -> None:
    bot, _ = started_bot()
    server_binary(bot, Op.DAVE_MLS_EXTERNAL_SENDER, FakeExternalSender().package())
    bot.clients_connect([LISTENER])
    member = FakeDaveMember(user_id=LISTENER, channel_id=CHANNEL)
    forged = FakeExternalSender().add_proposals(
        channel_id=CHANNEL, epoch=0, key_packages=[member.key_package()]
    )
    assert server_binary(bot, Op.DAVE_MLS_PROPOSALS, forged) == []
    assert bot.statistics().failures == 1


@pytest.mark.parametrize(
    ("payload"), [b"", b"\x02\x00", b"\x00\x05junk"], ids=["empty", "bad-optype", "garbage"]
)
def test_bad_proposals_payload_is_dropped(payload: bytes) -> None:
    bot, _ = started_bot()
    server_binary(bot, Op.DAVE_MLS_EXTERNAL_SENDER, FakeExternalSender().package())
    assert server_binary(bot, Op.DAVE_MLS_PROPOSALS, payload) == []
    assert bot.statistics().failures == 1


@pytest.mark.parametrize("op", [Op.DAVE_MLS_ANNOUNCE_COMMIT_TRANSITION, Op.DAVE_MLS_WELCOME])
def test_corrupt_commit_or_welcome_asks_to_be_readded(op: Op) -> None:
    bot, first_key_package = started_bot()
    call = form_group(bot, FakeExternalSender())
    out = server_binary(bot, op, transition(9, b"\x00\x01\x00\x01corrupt"))
    assert len(out) == 2
    assert json(out[0]) == (Op.DAVE_MLS_INVALID_COMMIT_WELCOME, {"transition_id": 9})
    assert binary(out[1], Op.DAVE_MLS_KEY_PACKAGE) != first_key_package
    stats = bot.statistics()
    assert (stats.ready, stats.failures, stats.key_packages_sent) == (False, 1, 2)
    assert bot.encrypt(OPUS) == OPUS  # nothing to encrypt with until re-added
    # The server removes and re-adds us: a new group from scratch, and E2E works again.
    assert_e2e(form_group(bot, call.server))


def test_op_29_without_transition_id_is_dropped() -> None:
    bot, _ = started_bot()
    assert server_binary(bot, Op.DAVE_MLS_ANNOUNCE_COMMIT_TRANSITION, b"\x01") == []
    assert bot.statistics().failures == 1


def test_malformed_json_and_unknown_ops_are_ignored() -> None:
    bot, _ = started_bot()
    assert bot.handle_json(Op.DAVE_PREPARE_TRANSITION, {"protocol_version": 1}) == []
    assert bot.handle_json(Op.DAVE_PREPARE_EPOCH, None) == []
    assert bot.statistics().failures == 2
    assert bot.handle_json(99, {"anything": True}) == []
    assert bot.handle_binary(99, b"\x00") == []
    assert bot.handle_json(Op.DAVE_EXECUTE_TRANSITION, {"transition_id": 42}) == []  # unknown id
    assert bot.statistics().failures == 2


# --- Versions, transitions, epochs ---------------------------------------------------------------


def test_version_zero_is_plain_opus() -> None:
    bot = DaveState(user_id=BOT, channel_id=CHANNEL)
    assert bot.start(0) == []
    assert bot.encrypt(OPUS) == OPUS
    assert bot.encrypt(OPUS_SILENCE) == OPUS_SILENCE
    assert bot.decrypt(LISTENER, OPUS) == OPUS
    assert server_binary(bot, Op.DAVE_MLS_EXTERNAL_SENDER, FakeExternalSender().package()) == []
    stats = bot.statistics()
    assert (stats.protocol_version, stats.ready, stats.status) == (0, False, "none")
    assert (stats.passthrough_frames, stats.encrypted_frames) == (2, 0)


def test_downgrade_then_upgrade_transition() -> None:
    bot, _ = started_bot()
    call = form_group(bot, FakeExternalSender())

    out = bot.handle_json(Op.DAVE_PREPARE_TRANSITION, {"transition_id": 5, "protocol_version": 0})
    assert [json(o) for o in out] == [(Op.DAVE_TRANSITION_READY, {"transition_id": 5})]
    assert bot.encrypt(OPUS) != OPUS  # still encrypting until the server executes
    assert bot.decrypt(LISTENER, OPUS) == OPUS  # but plain frames from early movers are accepted
    assert bot.handle_json(Op.DAVE_EXECUTE_TRANSITION, {"transition_id": 5}) == []
    assert (bot.protocol_version, bot.ready) == (0, False)
    assert bot.encrypt(OPUS) == OPUS
    assert bot.encrypt(OPUS_SILENCE) == OPUS_SILENCE

    out = bot.handle_json(Op.DAVE_PREPARE_TRANSITION, {"transition_id": 6, "protocol_version": 1})
    assert [json(o) for o in out] == [(Op.DAVE_TRANSITION_READY, {"transition_id": 6})]
    assert bot.encrypt(OPUS) == OPUS
    bot.handle_json(Op.DAVE_EXECUTE_TRANSITION, {"transition_id": 6})
    assert (bot.protocol_version, bot.ready) == (1, True)
    assert_e2e(call)


def test_transition_zero_executes_immediately() -> None:
    bot, _ = started_bot()
    form_group(bot, FakeExternalSender())
    now = {"transition_id": 0, "protocol_version": 0}
    assert bot.handle_json(Op.DAVE_PREPARE_TRANSITION, now) == []  # no op 23 for id 0
    assert bot.protocol_version == 0
    assert bot.statistics().pending_transitions == 0


def test_prepare_epoch_one_recreates_the_group() -> None:
    bot, first_key_package = started_bot()
    call = form_group(bot, FakeExternalSender())
    later_epoch = {"transition_id": 3, "epoch": 2, "protocol_version": 1}
    assert bot.handle_json(Op.DAVE_PREPARE_EPOCH, later_epoch) == []  # an ordinary epoch change
    assert bot.statistics().ready
    new_group = {"transition_id": 3, "epoch": 1, "protocol_version": 1}
    (out,) = bot.handle_json(Op.DAVE_PREPARE_EPOCH, new_group)
    assert binary(out, Op.DAVE_MLS_KEY_PACKAGE) != first_key_package
    assert not bot.statistics().ready
    assert bot.statistics().epoch == 0  # davey kept the external sender: a fresh pending group
    assert_e2e(form_group(bot, call.server))


def test_reconnect_starts_fresh() -> None:
    bot, first_key_package = started_bot()
    form_group(bot, FakeExternalSender())
    bot.handle_json(Op.DAVE_PREPARE_TRANSITION, {"transition_id": 4, "protocol_version": 1})
    assert bot.statistics().pending_transitions == 1

    (out,) = bot.start(1)  # op 4 of the new voice connection
    assert binary(out, Op.DAVE_MLS_KEY_PACKAGE) != first_key_package
    stats = bot.statistics()
    assert (stats.ready, stats.pending_transitions, stats.key_packages_sent) == (False, 0, 2)
    assert bot.encrypt(OPUS) == OPUS
    # The new server (a new external sender) forms a new group with us.
    assert_e2e(form_group(bot, FakeExternalSender()))


def test_reconnect_to_a_version_zero_call() -> None:
    bot, _ = started_bot()
    form_group(bot, FakeExternalSender())
    assert bot.start(0) == []
    assert (bot.protocol_version, bot.ready) == (0, False)
    assert bot.encrypt(OPUS) == OPUS
    assert bot.decrypt(LISTENER, OPUS) == OPUS


# --- The fake itself -----------------------------------------------------------------------------


def test_split_commit_welcome_rejects_non_mls() -> None:
    with pytest.raises(ValueError, match="PublicMessage"):
        split_commit_welcome(b"\x00\x01\x00\x03")
    with pytest.raises(ValueError, match="truncated"):
        split_commit_welcome(b"\x00\x01\x00\x01\x08abc")


def test_bot_joining_an_existing_call_is_welcomed() -> None:
    """The usual real-world case: someone is in the channel and runs /join. The group exists;
    the voice server proposes the bot to the members, one of them commits, and the bot gets the
    Welcome (op 30), not a commit."""
    server = FakeExternalSender()
    package = server.package()
    member = FakeDaveMember(user_id=LISTENER, channel_id=CHANNEL)
    member.set_external_sender(package)

    bot, key_package = started_bot()
    bot.clients_connect([LISTENER])
    assert server_binary(bot, Op.DAVE_MLS_EXTERNAL_SENDER, package) == []
    proposals = server.add_proposals(channel_id=CHANNEL, epoch=0, key_packages=[key_package])
    commit_welcome = member.process_proposals(proposals, expected_user_ids=[LISTENER, BOT])
    assert commit_welcome is not None
    commit, welcome = split_commit_welcome(commit_welcome)
    assert welcome is not None
    member.process_commit(commit)  # op 29 back to the committer

    out = server_binary(bot, Op.DAVE_MLS_WELCOME, transition(3, welcome))
    assert [json(o) for o in out] == [(Op.DAVE_TRANSITION_READY, {"transition_id": 3})]
    assert bot.handle_json(Op.DAVE_EXECUTE_TRANSITION, {"transition_id": 3}) == []
    assert bot.ready
    assert bot.statistics().epoch == 1
    assert_e2e(Call(bot, server, member))


def test_external_sender_before_session_description_is_kept() -> None:
    bot = DaveState(user_id=BOT, channel_id=CHANNEL)
    server = FakeExternalSender()
    package = server.package()
    assert server_binary(bot, Op.DAVE_MLS_EXTERNAL_SENDER, package) == []  # before op 4
    bot.clients_connect([LISTENER])
    (out,) = bot.start(1)
    binary(out, Op.DAVE_MLS_KEY_PACKAGE)
    listener = FakeDaveMember(user_id=LISTENER, channel_id=CHANNEL)
    listener.set_external_sender(package)
    proposals = server.add_proposals(
        channel_id=CHANNEL, epoch=0, key_packages=[listener.key_package()]
    )
    (out,) = server_binary(bot, Op.DAVE_MLS_PROPOSALS, proposals)
    commit, welcome = split_commit_welcome(binary(out, Op.DAVE_MLS_COMMIT_WELCOME))
    assert welcome is not None
    listener.process_welcome(welcome)
    assert server_binary(bot, Op.DAVE_MLS_ANNOUNCE_COMMIT_TRANSITION, transition(0, commit)) == []
    assert_e2e(Call(bot, server, listener))
