"""Errors of the `voice` package (voice gateway v8, UDP/RTP, transport crypto).

::

    CompanionError                          (trio_companion.errors)
    └── VoiceError                          (this module: root of the voice package)
        ├── MalformedPacket                 (rtp, protocol: a UDP packet we cannot parse)
        ├── DecryptionFailed                (crypto: a packet failed AEAD authentication)
        └── UnsupportedEncryptionMode       (crypto: a mode we cannot or will not speak)

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

from typing import final

from trio_companion.errors import CompanionError

__all__ = ["DecryptionFailed", "MalformedPacket", "UnsupportedEncryptionMode", "VoiceError"]


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
