"""Voice transport encryption: the two AEAD "rtpsize" modes (PROTOCOL.md 5.5), sans-IO.

Theory of operation
-------------------

A packet on the wire is::

    unencrypted RTP header (AAD) | ciphertext | tag (16 B) | nonce counter (4 B, u32 BE)

- The AAD is the rtpsize header: 12 bytes + 4 * CC + the 4-byte extension preamble when X=1
  (`rtp.header_length`). The extension *body*, if any, is the start of the plaintext.
- The AEAD nonce is the 32-bit counter big-endian in the first 4 bytes, zero-padded to 12 bytes
  (AES-256-GCM) or 24 bytes (XChaCha20-Poly1305 IETF). Only the 4 counter bytes go on the wire,
  and a receiver strips them before decrypting.
- Our counter starts at 0, increments per packet and wraps at 2**32 as PROTOCOL.md 5.5 says. A
  wrap would reuse a nonce under the same key, but at 50 packets/s that takes 994 days; a voice
  session (and its ``secret_key``) never lives that long.

`choose_mode` picks AES-256-GCM when Ready offers it, else XChaCha20-Poly1305, which every server
offers and every client must support.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from typing import Final, final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from nacl.bindings import (
    crypto_aead_xchacha20poly1305_ietf_decrypt as _xchacha_decrypt,
)
from nacl.bindings import (
    crypto_aead_xchacha20poly1305_ietf_encrypt as _xchacha_encrypt,
)
from nacl.exceptions import CryptoError

from trio_companion.voice.errors import DecryptionFailed, MalformedPacket, UnsupportedEncryptionMode
from trio_companion.voice.rtp import RtpHeader, header_length, parse_header, strip_extension_body

__all__ = [
    "AES256_GCM",
    "NONCE_WIRE_SIZE",
    "SUPPORTED_MODES",
    "TAG_SIZE",
    "XCHACHA20_POLY1305",
    "TransportCipher",
    "choose_mode",
]

AES256_GCM: Final = "aead_aes256_gcm_rtpsize"  # PROTOCOL.md 5.5: preferred when offered.
XCHACHA20_POLY1305: Final = "aead_xchacha20_poly1305_rtpsize"  # PROTOCOL.md 5.5: always offered.
SUPPORTED_MODES: Final = (AES256_GCM, XCHACHA20_POLY1305)  # in order of preference
KEY_SIZE: Final = 32  # PROTOCOL.md 5.5: the 32-byte secret_key of Session Description.
TAG_SIZE: Final = 16  # Both AEADs append a 16-byte tag (AES-GCM, Poly1305).
NONCE_WIRE_SIZE: Final = 4  # PROTOCOL.md 5.5: the u32 BE counter appended after the tag.
# PROTOCOL.md 5.5: AEAD nonce lengths, 12 for AES-GCM (RFC 5116), 24 for XChaCha20 (IETF draft).
NONCE_SIZES: Final = {AES256_GCM: 12, XCHACHA20_POLY1305: 24}
_NONCE_MOD: Final = 1 << 32  # PROTOCOL.md 5.5: the counter wraps at 2**32.
_U32: Final = struct.Struct(">I")


def choose_mode(offered: Iterable[str]) -> str:
    """The mode to put in Select Protocol: AES-256-GCM if ``offered`` has it, else XChaCha.

    Raises `UnsupportedEncryptionMode` if neither is offered."""
    modes = tuple(offered)
    for mode in SUPPORTED_MODES:
        if mode in modes:
            return mode
    raise UnsupportedEncryptionMode(modes)


def _xchacha_seal(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
    # PyNaCl >= 1.6 ships type hints (py.typed); the argument order differs from AESGCM's.
    return _xchacha_encrypt(plaintext, aad, nonce, key)


def _xchacha_open(key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
    return _xchacha_decrypt(ciphertext, aad, nonce, key)


@final
class TransportCipher:
    """Seals outgoing and opens incoming RTP packets under one mode and ``secret_key``.

    ``secret_key`` is the 32 bytes of Session Description (a list of ints is accepted as sent).
    Raises `UnsupportedEncryptionMode` for a mode not in `SUPPORTED_MODES` and `ValueError` for
    a key of the wrong length. Owned by one sender task; not thread-safe."""

    def __init__(self, mode: str, secret_key: bytes | Sequence[int], *, nonce: int = 0) -> None:
        if mode not in SUPPORTED_MODES:
            raise UnsupportedEncryptionMode((mode,))
        key = bytes(secret_key)
        if len(key) != KEY_SIZE:
            raise ValueError(f"voice secret_key must be {KEY_SIZE} bytes, got {len(key)}")
        if not 0 <= nonce < _NONCE_MOD:
            raise ValueError(f"nonce counter {nonce} is not a u32")
        self.mode: Final = mode
        self._key = key
        self._nonce = nonce
        self._nonce_size = NONCE_SIZES[mode]
        self._aes = AESGCM(key) if mode == AES256_GCM else None

    def __repr__(self) -> str:
        # Never show the key.
        return f"TransportCipher(mode={self.mode!r}, nonce={self._nonce})"

    @property
    def nonce(self) -> int:
        """The counter the next `encrypt` will use."""
        return self._nonce

    def _full_nonce(self, wire: bytes) -> bytes:
        return wire.ljust(self._nonce_size, b"\0")

    def encrypt(self, header: bytes, payload: bytes) -> bytes:
        """``header | ciphertext | tag | nonce`` for one packet, then advance the counter.

        ``header`` is the unencrypted rtpsize header (`rtp.RtpHeader.encode`, or
        `rtp.RtpSender.next_header`) and becomes the AAD; ``payload`` is everything after it in
        the plaintext: the extension body if X is set, then the Opus (or DAVE) frame."""
        wire = _U32.pack(self._nonce)
        self._nonce = (self._nonce + 1) % _NONCE_MOD
        nonce = self._full_nonce(wire)
        if self._aes is not None:
            sealed = self._aes.encrypt(nonce, payload, header)
        else:
            sealed = _xchacha_seal(self._key, nonce, payload, header)
        return b"".join((header, sealed, wire))

    def decrypt(self, packet: bytes) -> tuple[bytes, bytes]:
        """The inverse of `encrypt`: ``(header, plaintext)``; the plaintext still starts with the
        extension body when X is set (see `decrypt_audio`).

        Raises `MalformedPacket` for a packet too short to hold header, tag and nonce, and
        `DecryptionFailed` when authentication fails (a changed header bit, payload, tag or
        nonce, or another key)."""
        size = header_length(packet)
        if len(packet) < size + TAG_SIZE + NONCE_WIRE_SIZE:
            raise MalformedPacket(f"{len(packet)} bytes is too short for an encrypted packet")
        header = packet[:size]
        sealed = packet[size:-NONCE_WIRE_SIZE]
        nonce = self._full_nonce(packet[-NONCE_WIRE_SIZE:])
        try:
            if self._aes is not None:
                plaintext = self._aes.decrypt(nonce, sealed, header)
            else:
                plaintext = _xchacha_open(self._key, nonce, sealed, header)
        except (InvalidTag, CryptoError):
            raise DecryptionFailed(self.mode) from None
        return header, plaintext

    def decrypt_audio(self, packet: bytes) -> tuple[RtpHeader, bytes]:
        """Receiving steps 3-5 of PROTOCOL.md 5.5: decrypt, then drop the extension body.

        Returns the parsed header and the frame (Opus, or DAVE ciphertext). Raises as `decrypt`
        and `rtp.strip_extension_body` do."""
        header_bytes, plaintext = self.decrypt(packet)
        header = parse_header(header_bytes)
        return header, strip_extension_body(header, plaintext)
