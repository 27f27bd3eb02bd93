"""DAVE end-to-end encryption for the bot's voice session (PROTOCOL.md 6), sans-IO, over davey.

Theory of operation
-------------------

`DaveState` is one client-side DAVE state machine per voice websocket connection. It wraps a
`davey.DaveSession` (the MLS member; OpenMLS inside) and never does I/O: every handler returns the
frames to send, as `Outgoing` values (``str`` for JSON text frames, ``bytes`` for binary frames,
already prefixed with their opcode byte). The voice shell feeds it like this:

- op 4 Session Description -> `start(dave_protocol_version)`: a version above 0 (re)creates the
  session and sends our key package (op 26); version 0 (stage channels) resets it and passes plain
  Opus through. Call it again after every reconnect: keys never survive a new session (6.3 step 10).
- op 11 / op 13 -> `clients_connect` / `client_disconnect`: the expected member set. Proposals that
  add anybody else are refused (the whitepaper's rule; davey raises ``UnexpectedUser``).
- ops 21, 22, 24 (JSON) -> `handle_json`; ops 25, 27, 29, 30 (binary, after `parse_binary_frame`
  removed ``[seq u16][op u8]``) -> `handle_binary`.
- every Opus frame to send -> `encrypt`, before transport encryption; every received frame, after
  transport decryption -> `decrypt`.

Transitions (6.2, 6.3): the server announces a change (op 21 a protocol version, op 29/30 a new MLS
epoch) under a ``transition_id``. Id 0 means "now": nothing is announced back. Any other id is
remembered as pending together with the protocol version it leads to, and answered with op 23
transition_ready; op 22 executes it, and only then does the *send* protocol version change. Op 24
with ``epoch == 1`` means the server is building a new group: re-create the session, send a new
key package.

Group formation (what davey does, checked against the fake external sender in tests): op 25 makes
davey create a *pending* one-member group at epoch 0; op 27 Add proposals for the other members are
committed by whoever gets them first, which we send as op 28 (commit, then Welcome if somebody was
added); the server then announces the winning commit to its author (op 29) and the Welcome to the
new members (op 30).

Failures never leave this class. A commit or Welcome that davey rejects gets op 31
``{transition_id}`` ("remove and re-add me") followed by a fresh session and key package, exactly as
discord.js and discord.py do. Unexpected or undecodable proposals are dropped without a commit. A
frame that fails to encrypt is replaced by Opus silence rather than sent in the clear. Each of these
is counted in `statistics`.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, TypeAlias, final

import davey
import msgspec

from trio_companion.voice.errors import MalformedPacket
from trio_companion.voice.protocol import VoiceOpcode

__all__ = [
    "OPUS_SILENCE",
    "DaveState",
    "DaveStatistics",
    "Outgoing",
    "encode_binary",
    "parse_binary_frame",
]

log = logging.getLogger(__name__)

Outgoing: TypeAlias = str | bytes
"""A frame for the voice websocket: ``str`` is a JSON text frame, ``bytes`` a binary one."""

OPUS_SILENCE: Final = b"\xf8\xff\xfe"  # PROTOCOL.md 5.6: never DAVE-encrypted (whitepaper).
_SERVER_HEADER: Final = struct.Struct(">HB")  # PROTOCOL.md 6.2: server binary = [seq u16][op u8]
_TRANSITION_ID: Final = struct.Struct(">H")  # PROTOCOL.md 6.2: ops 29/30 start with a u16 BE id
_DOWNGRADE_PASSTHROUGH_S: Final = 120  # PROTOCOL.md 6.3 step 7: op 21 to version 0 (discord.js)
_TRANSITION_PASSTHROUGH_S: Final = 10  # PROTOCOL.md 6.3 step 7: reinit to 0, re-upgrade
_NEW_GROUP_EPOCH: Final = 1  # PROTOCOL.md 6.2 op 24: epoch 1 means the server builds a new group
_PROPOSAL_OPS: Final = {  # PROTOCOL.md 6.2 op 27 operation_type
    0: davey.ProposalsOperationType.append,
    1: davey.ProposalsOperationType.revoke,
}


def parse_binary_frame(data: bytes) -> tuple[int, int, bytes]:
    """Split a server binary frame into ``(seq, opcode, payload)`` (PROTOCOL.md 6.2).

    The seq feeds the heartbeat's ``seq_ack`` like the JSON ``seq``. Raises `MalformedPacket` when
    the frame is shorter than its 3-byte header.
    """
    if len(data) < _SERVER_HEADER.size:
        raise MalformedPacket(f"DAVE binary frame of {len(data)} bytes has no [seq u16][op u8]")
    seq, op = _SERVER_HEADER.unpack_from(data)
    return seq, op, bytes(data[_SERVER_HEADER.size :])


def encode_binary(op: int, payload: bytes) -> bytes:
    """A client binary frame: ``[op u8][payload]``, no seq (PROTOCOL.md 6.2)."""
    if not 0 <= op <= 0xFF:
        raise ValueError(f"opcode {op} does not fit in a byte")
    return bytes([op]) + payload


class _Transition(msgspec.Struct, frozen=True):
    """Op 21 prepare_transition / op 22 execute_transition ``d``."""

    transition_id: int
    protocol_version: int = 0


class _Epoch(msgspec.Struct, frozen=True):
    """Op 24 prepare_epoch ``d``."""

    epoch: int
    protocol_version: int
    transition_id: int = 0


_encoder: Final = msgspec.json.Encoder()


def _encode_json(op: VoiceOpcode, transition_id: int) -> str:
    return _encoder.encode({"op": int(op), "d": {"transition_id": transition_id}}).decode()


@dataclass(frozen=True, slots=True)
class DaveStatistics:
    """A snapshot of one `DaveState` (for ``/status`` and tests)."""

    protocol_version: int  # the version frames are sent with now (0: plain Opus)
    session_version: int  # the version the davey session was last (re)initialised with
    epoch: int | None  # MLS epoch; None without a group
    ready: bool  # frames are being E2E-encrypted right now
    status: str  # davey's SessionStatus name, "none" without a session
    pending_transitions: int
    expected_users: int
    key_packages_sent: int
    encrypted_frames: int
    passthrough_frames: int
    decrypted_frames: int
    failures: int  # rejected proposals/commits/welcomes, bad payloads, crypto errors


@final
class DaveState:
    """Client-side DAVE for one voice connection. Not thread-safe; drive it from one task."""

    def __init__(self, *, user_id: int, channel_id: int) -> None:
        self._user_id = user_id
        self._channel_id = channel_id
        self._session: davey.DaveSession | None = None
        self._session_version = 0
        self._protocol_version = 0
        self._downgraded = False
        self._pending: dict[int, int] = {}  # transition_id -> protocol version it leads to
        self._early_external_sender: bytes | None = None  # an op 25 that came before op 4
        self._expected: set[int] = set()
        self._key_packages_sent = 0
        self._encrypted = 0
        self._passthrough = 0
        self._decrypted = 0
        self._failures = 0

    @property
    def protocol_version(self) -> int:
        """The DAVE version used for sending now; 0 means plain Opus."""
        return self._protocol_version

    @property
    def ready(self) -> bool:
        """Whether `encrypt` E2E-encrypts (non-silent) frames right now."""
        return self._protocol_version != 0 and self._session is not None and self._session.ready

    @property
    def voice_privacy_code(self) -> str | None:
        """The group's displayable privacy code, None without an established group."""
        return self._session.voice_privacy_code if self._session is not None else None

    def statistics(self) -> DaveStatistics:
        """A frozen snapshot of the counters and state."""
        session = self._session
        return DaveStatistics(
            protocol_version=self._protocol_version,
            session_version=self._session_version,
            epoch=session.epoch if session is not None else None,
            ready=self.ready,
            # pyo3 enums have no ``.name``; their str() is "SessionStatus.<name>".
            status=str(session.status).rpartition(".")[2] if session is not None else "none",
            pending_transitions=len(self._pending),
            expected_users=len(self._expected),
            key_packages_sent=self._key_packages_sent,
            encrypted_frames=self._encrypted,
            passthrough_frames=self._passthrough,
            decrypted_frames=self._decrypted,
            failures=self._failures,
        )

    # --- Session lifecycle -------------------------------------------------------------------

    def start(self, dave_protocol_version: int) -> list[Outgoing]:
        """Op 4 Session Description: (re)initialise for ``dave_protocol_version``.

        Above 0: create the davey session, or ``reinit`` the existing one, and return the op 26 key
        package. 0: reset any session, accept plain frames for a while, send plain Opus, return [].
        Pending transitions are forgotten; the expected member set is kept (op 11/13 still hold).
        Raises ``ValueError`` (from davey) for a version davey does not speak: the server chose
        more than the ``max_dave_protocol_version`` we identified with, a protocol violation.
        """
        self._pending.clear()
        self._protocol_version = dave_protocol_version
        return self._reinit(dave_protocol_version)

    def _reinit(self, version: int) -> list[Outgoing]:
        self._session_version = version
        if version <= 0:
            if self._session is not None:
                self._session.reset()
                self._session.set_passthrough_mode(True, _TRANSITION_PASSTHROUGH_S)
            return []
        if self._session is None:
            self._session = davey.DaveSession(version, self._user_id, self._channel_id)
            if self._early_external_sender is not None:
                # Op 25 came before op 4; davey keeps it across reinit from now on.
                self._external_sender(self._early_external_sender)
                self._early_external_sender = None
        else:
            self._session.reinit(version, self._user_id, self._channel_id)
        self._key_packages_sent += 1
        key_package = self._session.get_serialized_key_package()
        return [encode_binary(VoiceOpcode.DAVE_MLS_KEY_PACKAGE, key_package)]

    def clients_connect(self, user_ids: Iterable[int]) -> None:
        """Op 11: these users are (now) in the call and may be added to the group."""
        self._expected.update(int(uid) for uid in user_ids)

    def client_disconnect(self, user_id: int) -> None:
        """Op 13: this user left; proposals adding them are refused from now on."""
        self._expected.discard(int(user_id))

    # --- Signalling ----------------------------------------------------------------------------

    def handle_json(self, op: int, d: object) -> list[Outgoing]:
        """Ops 21, 22, 24 with their decoded ``d``; other ops and malformed ``d`` are ignored."""
        try:
            if op == VoiceOpcode.DAVE_PREPARE_TRANSITION:
                return self._prepare_transition(msgspec.convert(d, _Transition))
            if op == VoiceOpcode.DAVE_EXECUTE_TRANSITION:
                self._execute_transition(msgspec.convert(d, _Transition).transition_id)
                return []
            if op == VoiceOpcode.DAVE_PREPARE_EPOCH:
                return self._prepare_epoch(msgspec.convert(d, _Epoch))
        except msgspec.ValidationError as exc:
            self._fail("malformed DAVE op %d payload: %s", op, exc)
        return []

    def _prepare_transition(self, t: _Transition) -> list[Outgoing]:
        if t.protocol_version == 0 and self._session is not None:
            # Downgrade: accept plain frames from members who switch before we do.
            self._session.set_passthrough_mode(True, _DOWNGRADE_PASSTHROUGH_S)
        self._pending[t.transition_id] = t.protocol_version
        if t.transition_id == 0:
            self._execute_transition(0)
            return []
        return [_encode_json(VoiceOpcode.DAVE_TRANSITION_READY, t.transition_id)]

    def _execute_transition(self, transition_id: int) -> None:
        version = self._pending.pop(transition_id, None)
        if version is None:
            log.debug("DAVE execute_transition %d was never prepared; ignored", transition_id)
            return
        if version == 0 and self._protocol_version != 0:
            self._downgraded = True
        elif version != 0 and self._downgraded:
            self._downgraded = False
            if self._session is not None:
                # Upgrade after a downgrade: plain frames still in flight are accepted a bit longer.
                self._session.set_passthrough_mode(True, _TRANSITION_PASSTHROUGH_S)
        self._protocol_version = version

    def _prepare_epoch(self, e: _Epoch) -> list[Outgoing]:
        if e.epoch != _NEW_GROUP_EPOCH:
            return []
        self._protocol_version = e.protocol_version
        return self._reinit(e.protocol_version)

    def handle_binary(self, op: int, payload: bytes) -> list[Outgoing]:
        """Ops 25, 27, 29, 30 (``payload`` is what follows ``[seq u16][op u8]``); others ignored."""
        if op == VoiceOpcode.DAVE_MLS_EXTERNAL_SENDER:
            return self._external_sender(payload)
        if op == VoiceOpcode.DAVE_MLS_PROPOSALS:
            return self._proposals(payload)
        if op in (VoiceOpcode.DAVE_MLS_ANNOUNCE_COMMIT_TRANSITION, VoiceOpcode.DAVE_MLS_WELCOME):
            return self._commit_or_welcome(op, payload)
        return []

    def _external_sender(self, payload: bytes) -> list[Outgoing]:
        if self._session is None:
            self._early_external_sender = payload  # applied when op 4 creates the session
            return []
        try:
            self._session.set_external_sender(payload)
        except ValueError as exc:  # davey maps every Rust error to ValueError
            self._fail("DAVE external sender rejected: %s", exc)
        return []

    def _proposals(self, payload: bytes) -> list[Outgoing]:
        if self._session is None or not payload or payload[0] not in _PROPOSAL_OPS:
            self._fail("DAVE proposals ignored (no session or bad operation type)")
            return []
        expected = [*self._expected, self._user_id]
        try:
            op_type = _PROPOSAL_OPS[payload[0]]
            result = self._session.process_proposals(op_type, payload[1:], expected)
        except ValueError as exc:  # UnexpectedUser, bad signature, wrong epoch...: no commit
            self._fail("DAVE proposals refused: %s", exc)
            return []
        if result is None:
            return []
        commit_welcome = result.commit + (result.welcome or b"")
        return [encode_binary(VoiceOpcode.DAVE_MLS_COMMIT_WELCOME, commit_welcome)]

    def _commit_or_welcome(self, op: int, payload: bytes) -> list[Outgoing]:
        if len(payload) < _TRANSITION_ID.size:
            self._fail("DAVE op %d without a transition id", op)
            return []
        (transition_id,) = _TRANSITION_ID.unpack_from(payload)
        message = payload[_TRANSITION_ID.size :]
        try:
            if self._session is None:
                raise ValueError("no DAVE session")
            if op == VoiceOpcode.DAVE_MLS_WELCOME:
                self._session.process_welcome(message)
            else:
                self._session.process_commit(message)
        except ValueError as exc:
            self._fail("DAVE op %d (transition %d) rejected: %s", op, transition_id, exc)
            out: list[Outgoing] = [
                _encode_json(VoiceOpcode.DAVE_MLS_INVALID_COMMIT_WELCOME, transition_id)
            ]
            return out + self._reinit(self._session_version)
        if transition_id == 0:
            return []
        self._pending[transition_id] = self._session_version
        return [_encode_json(VoiceOpcode.DAVE_TRANSITION_READY, transition_id)]

    # --- Media ---------------------------------------------------------------------------------

    def encrypt(self, frame: bytes) -> bytes:
        """An Opus frame to send -> the DAVE frame, or ``frame`` itself when not encrypting.

        Passes through unchanged: silence ``F8 FF FE``, protocol version 0, or a session that is not
        ready yet. If davey fails to encrypt, the frame becomes silence: never leak it in the clear.
        """
        session = self._session
        if self._protocol_version == 0 or session is None or not session.ready:
            self._passthrough += 1
            return frame
        if frame == OPUS_SILENCE:
            self._passthrough += 1
            return frame
        try:
            encrypted = session.encrypt_opus(frame)
        except ValueError as exc:
            self._fail("DAVE encryption failed, sending silence instead: %s", exc)
            return OPUS_SILENCE
        self._encrypted += 1
        return encrypted

    def decrypt(self, user_id: int, frame: bytes) -> bytes | None:
        """A received frame from ``user_id`` -> Opus, or None to drop it (it failed to decrypt).

        Silence and frames received while nothing is E2E-encrypted (no session, or version 0 with
        no group) come back unchanged; davey's passthrough windows cover the transitions.
        """
        session = self._session
        if frame == OPUS_SILENCE or session is None:
            return frame
        if self._protocol_version == 0 and not session.ready:
            return frame
        try:
            plain = session.decrypt(user_id, davey.MediaType.audio, frame)
        except ValueError as exc:
            self._fail("DAVE frame from user %d dropped: %s", user_id, exc)
            return None
        self._decrypted += 1
        return plain

    def _fail(self, message: str, *args: object) -> None:
        self._failures += 1
        log.warning(message, *args)
