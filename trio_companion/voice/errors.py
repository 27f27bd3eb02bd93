"""Errors of the `voice` package (voice gateway v8, UDP/RTP, transport crypto).

::

    CompanionError                          (trio_companion.errors)
    └── VoiceError                          (this module: root of the voice package)
        ├── MalformedPacket                 (rtp, protocol: a UDP packet we cannot parse)
        ├── DecryptionFailed                (crypto: a packet failed AEAD authentication)
        ├── UnsupportedEncryptionMode       (crypto: a mode we cannot or will not speak)
        ├── VoiceDisconnected               (gateway: the link ended; code + next action)
        ├── VoiceLinkLost                   (gateway: a playback cut by a lost connection)
        └── VoiceJoinFailed                 (session: /join did not complete; reason for the user)

Who raises what:

- The sans-IO core (`rtp`, `crypto`, `protocol`) raises these three leaves and nothing else on
  purpose; `ValueError` from it means a caller bug (a field out of range).
- The UDP receiver drops a packet that raises `MalformedPacket` or `DecryptionFailed` (one bad
  datagram is normal on the internet) and counts it; neither ends a voice session.
- `UnsupportedEncryptionMode` comes from `crypto.choose_mode` / `crypto.TransportCipher` when
  Discord offers or selects no mode we support; the session cannot continue.

New leaves (the voice shell's close errors, for example) go directly under `VoiceError`, with
typed fields and a docstring saying who raises them and when.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, final

from trio_companion.errors import CompanionError

if TYPE_CHECKING:
    from trio_companion.voice.protocol import VoiceCloseAction

__all__ = [
    "DecryptionFailed",
    "MalformedPacket",
    "UnsupportedEncryptionMode",
    "VoiceDisconnected",
    "VoiceError",
    "VoiceJoinFailed",
    "VoiceLinkLost",
]


class VoiceError(CompanionError):
    """Root of the errors raised on purpose by `trio_companion.voice`."""


@final
class MalformedPacket(VoiceError):
    """Bytes from the voice UDP socket do not parse as what they should be.

    Raised by `rtp.parse_header`, `rtp.strip_extension_body`, `crypto.TransportCipher.decrypt`
    (too short) and `protocol.decode_ip_discovery_response`. ``reason`` says what was wrong.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(f"Discord sent a voice packet we cannot parse: {reason}")
        self.reason = reason


@final
class DecryptionFailed(VoiceError):
    """A voice packet failed AEAD authentication: wrong key, tampered header or payload.

    Raised by `crypto.TransportCipher.decrypt`; the receiver drops the packet.
    """

    def __init__(self, mode: str) -> None:
        super().__init__(f"a voice packet failed authentication under {mode}; it was dropped")
        self.mode = mode


@final
class UnsupportedEncryptionMode(VoiceError):
    """No transport encryption mode we support was offered, or one we do not support was chosen.

    Raised by `crypto.choose_mode` (Ready's ``modes`` lacks both AEAD modes) and by
    `crypto.TransportCipher` (Session Description names another mode). ``modes`` are the offending
    mode names.
    """

    def __init__(self, modes: tuple[str, ...]) -> None:
        super().__init__(
            "Discord offered no supported voice encryption mode "
            f"({', '.join(modes) or 'none'}): update trio_companion"
        )
        self.modes = modes


@final
class VoiceDisconnected(VoiceError):
    """A voice connection ended and the link will not (or can no longer) resume it.

    Raised by `gateway.VoiceLink.run`. ``code`` is the websocket close code (None when the
    connection failed without one); ``action`` is what the session should do next
    (`protocol.VoiceCloseAction`: NEW_SESSION → run the main-gateway op 4 flow again, with a cap;
    STOP → leave and tell the user ``explanation``)."""

    def __init__(self, code: int | None, action: VoiceCloseAction, explanation: str) -> None:
        super().__init__(explanation)
        self.code = code
        self.action = action
        self.explanation = explanation


@final
class VoiceLinkLost(VoiceError):
    """A playback was cut because its voice connection went away (a move, a new voice server,
    a kick or shutdown). Raised by `gateway.VoiceLink.play`; the player drops that utterance
    and goes on with the next one on the new connection."""

    def __init__(self) -> None:
        super().__init__("the voice connection changed while speaking; that reply was cut")


@final
class VoiceJoinFailed(VoiceError):
    """Joining voice did not complete: Discord never sent the voice server/state updates in
    time, the channel is full or not allowed, or the voice server refused us.

    Raised by `session.VoiceSession.run` before it is started; ``reason`` is one line for the
    user who ran /join."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
