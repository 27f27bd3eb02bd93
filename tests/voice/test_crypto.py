"""Tests of voice transport encryption: both rtpsize AEAD modes, nonces, AAD, byte layout."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from nacl.bindings import crypto_aead_xchacha20poly1305_ietf_encrypt

from trio_companion.voice.crypto import (
    AES256_GCM,
    XCHACHA20_POLY1305,
    TransportCipher,
    choose_mode,
)
from trio_companion.voice.errors import (
    DecryptionFailed,
    MalformedPacket,
    UnsupportedEncryptionMode,
    VoiceError,
)
from trio_companion.voice.rtp import RtpExtension, RtpHeader, RtpSender

MODES = [AES256_GCM, XCHACHA20_POLY1305]
KEY = bytes(range(32))
HEADER = bytes.fromhex("80 78 1234 00abcdef 0badf00d")
EXT_HEADER = RtpHeader(sequence=1, timestamp=2, ssrc=3, extension=RtpExtension(0xBEDE, 1)).encode()
OPUS = b"\xfc\x01\x02\x03 some opus bytes"


def _independent_seal(mode: str, nonce: bytes, header: bytes, payload: bytes) -> bytes:
    """Expected ``ciphertext|tag`` straight from the library primitives."""
    if mode == AES256_GCM:
        return AESGCM(KEY).encrypt(nonce + bytes(8), payload, header)
    return crypto_aead_xchacha20poly1305_ietf_encrypt(payload, header, nonce + bytes(20), KEY)


@pytest.mark.parametrize(
    ("offered", "expected"),
    [
        pytest.param([AES256_GCM, XCHACHA20_POLY1305], AES256_GCM, id="both"),
        pytest.param([XCHACHA20_POLY1305, AES256_GCM], AES256_GCM, id="both-reversed"),
        pytest.param(["xsalsa20_poly1305", XCHACHA20_POLY1305], XCHACHA20_POLY1305, id="no-aes"),
        pytest.param(
            ["aead_aes256_gcm", XCHACHA20_POLY1305, "xsalsa20_poly1305_lite"],
            XCHACHA20_POLY1305,
            id="discontinued-aes-without-rtpsize",
        ),
        pytest.param((m for m in [AES256_GCM]), AES256_GCM, id="iterator"),
    ],
)
def test_choose_mode(offered: list[str], expected: str) -> None:
    assert choose_mode(offered) == expected


@pytest.mark.parametrize("offered", [[], ["xsalsa20_poly1305", "aead_aes256_gcm"]])
def test_choose_mode_none_supported(offered: list[str]) -> None:
    with pytest.raises(UnsupportedEncryptionMode) as info:
        choose_mode(offered)
    assert info.value.modes == tuple(offered)
    assert isinstance(info.value, VoiceError)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("nonce", "header", "payload"),
    [
        pytest.param(0, HEADER, OPUS, id="first"),
        pytest.param(0xDEADBEEF, HEADER, b"", id="empty-payload"),
        pytest.param(0xFFFFFFFF, HEADER, b"\xf8\xff\xfe", id="last-nonce-silence"),
    ],
)
def test_exact_packet_layout(mode: str, nonce: int, header: bytes, payload: bytes) -> None:
    packet = TransportCipher(mode, KEY, nonce=nonce).encrypt(header, payload)
    wire_nonce = nonce.to_bytes(4, "big")
    sealed = _independent_seal(mode, wire_nonce, header, payload)
    assert len(sealed) == len(payload) + 16
    assert packet == header + sealed + wire_nonce


@pytest.mark.parametrize("mode", MODES)
def test_exact_layout_with_extension_header_as_aad(mode: str) -> None:
    # rtpsize: the 4-byte extension preamble is clear and in the AAD; the body is encrypted.
    body_and_opus = b"\x10\x7f\x00\x00" + OPUS
    packet = TransportCipher(mode, KEY, nonce=7).encrypt(EXT_HEADER, body_and_opus)
    assert len(EXT_HEADER) == 16
    assert packet[:16] == EXT_HEADER
    expected = _independent_seal(mode, b"\0\0\0\x07", EXT_HEADER, body_and_opus)
    assert packet == EXT_HEADER + expected + b"\0\0\0\x07"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("header", "payload"),
    [
        pytest.param(HEADER, OPUS, id="plain"),
        pytest.param(HEADER, b"", id="empty"),
        pytest.param(EXT_HEADER, b"\x10\x7f\x00\x00" + OPUS, id="extension"),
        pytest.param(HEADER, bytes(range(256)) * 4, id="large"),
    ],
)
def test_round_trip(mode: str, header: bytes, payload: bytes) -> None:
    sender = TransportCipher(mode, KEY)
    receiver = TransportCipher(mode, list(KEY))  # Session Description sends a list of ints
    assert receiver.decrypt(sender.encrypt(header, payload)) == (header, payload)


@pytest.mark.parametrize("mode", MODES)
def test_decrypt_audio_strips_extension_body(mode: str) -> None:
    cipher = TransportCipher(mode, KEY)
    packet = cipher.encrypt(EXT_HEADER, b"\x10\x7f\x00\x00" + OPUS)
    header, frame = cipher.decrypt_audio(packet)
    assert header == RtpHeader(sequence=1, timestamp=2, ssrc=3, extension=RtpExtension(0xBEDE, 1))
    assert frame == OPUS


@pytest.mark.parametrize("mode", MODES)
def test_decrypt_audio_without_extension(mode: str) -> None:
    cipher = TransportCipher(mode, KEY)
    rtp = RtpSender(42, sequence=9, timestamp=960)
    header, frame = cipher.decrypt_audio(cipher.encrypt(rtp.next_header(), OPUS))
    assert (header.sequence, header.timestamp, header.ssrc, frame) == (9, 960, 42, OPUS)


def _flip(packet: bytes, index: int, mask: int = 0x01) -> bytes:
    data = bytearray(packet)
    data[index] ^= mask
    return bytes(data)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("header", "index"),
    [
        pytest.param(HEADER, 1, id="payload-type"),  # still parses: 0x79
        pytest.param(HEADER, 3, id="sequence"),
        pytest.param(HEADER, 7, id="timestamp"),
        pytest.param(HEADER, 11, id="ssrc"),
        pytest.param(EXT_HEADER, 13, id="extension-profile"),
        pytest.param(EXT_HEADER, 15, id="extension-length"),
        pytest.param(HEADER, 12, id="ciphertext"),
        pytest.param(EXT_HEADER, 16, id="encrypted-extension-body"),
        pytest.param(HEADER, -5, id="tag"),
        pytest.param(HEADER, -1, id="nonce"),
    ],
)
def test_any_flipped_bit_fails_authentication(mode: str, header: bytes, index: int) -> None:
    cipher = TransportCipher(mode, KEY)
    packet = cipher.encrypt(header, b"\x10\x7f\x00\x00" + OPUS)
    assert cipher.decrypt(packet)  # sanity: the untouched packet opens
    with pytest.raises(DecryptionFailed) as info:
        cipher.decrypt(_flip(packet, index))
    assert info.value.mode == mode


@pytest.mark.parametrize("mode", MODES)
def test_wrong_key_fails(mode: str) -> None:
    packet = TransportCipher(mode, KEY).encrypt(HEADER, OPUS)
    with pytest.raises(DecryptionFailed):
        TransportCipher(mode, bytes(32)).decrypt(packet)


def test_modes_do_not_open_each_other() -> None:
    packet = TransportCipher(AES256_GCM, KEY).encrypt(HEADER, OPUS)
    with pytest.raises(DecryptionFailed):
        TransportCipher(XCHACHA20_POLY1305, KEY).decrypt(packet)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "packet",
    [
        pytest.param(HEADER + bytes(19), id="no-room-for-tag-and-nonce"),
        pytest.param(b"\x80\x78", id="shorter-than-header"),
        pytest.param(b"\x00" * 40, id="not-rtp-v2"),
    ],
)
def test_malformed_packets(mode: str, packet: bytes) -> None:
    with pytest.raises(MalformedPacket):
        TransportCipher(mode, KEY).decrypt(packet)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("start", "expected_wire"),
    [
        pytest.param(0, [0, 1, 2], id="from-zero"),
        pytest.param(0xFFFFFFFE, [0xFFFFFFFE, 0xFFFFFFFF, 0], id="wraps-at-2**32"),
    ],
)
def test_nonce_increments_and_wraps(mode: str, start: int, expected_wire: list[int]) -> None:
    cipher = TransportCipher(mode, KEY, nonce=start)
    receiver = TransportCipher(mode, KEY)
    for expected in expected_wire:
        assert cipher.nonce == expected
        packet = cipher.encrypt(HEADER, OPUS)
        assert int.from_bytes(packet[-4:], "big") == expected
        assert receiver.decrypt(packet) == (HEADER, OPUS)  # receiver uses the packet's nonce
    assert receiver.nonce == 0  # decrypting never advances our own counter


@pytest.mark.parametrize(
    ("mode", "key", "nonce", "error"),
    [
        pytest.param("xsalsa20_poly1305", KEY, 0, UnsupportedEncryptionMode, id="old-mode"),
        pytest.param("aead_aes256_gcm", KEY, 0, UnsupportedEncryptionMode, id="non-rtpsize"),
        pytest.param(AES256_GCM, bytes(16), 0, ValueError, id="short-key"),
        pytest.param(XCHACHA20_POLY1305, bytes(33), 0, ValueError, id="long-key"),
        pytest.param(AES256_GCM, KEY, 1 << 32, ValueError, id="nonce-too-big"),
        pytest.param(AES256_GCM, KEY, -1, ValueError, id="nonce-negative"),
    ],
)
def test_constructor_rejects(mode: str, key: bytes, nonce: int, error: type[Exception]) -> None:
    with pytest.raises(error):
        TransportCipher(mode, key, nonce=nonce)


def test_repr_hides_key() -> None:
    text = repr(TransportCipher(AES256_GCM, KEY))
    assert KEY.hex() not in text
    assert "nonce=0" in text
