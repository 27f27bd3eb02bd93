"""A fake DAVE/MLS external sender (the voice server's role) and a fake second call member.

Theory of operation
-------------------

In DAVE (PROTOCOL.md 6) the voice server is an MLS *external sender*: it announces its signature key
and credential (op 25), and it signs Add/Remove proposals (op 27) that the members commit. davey can
only play the member role, so this module writes the server's messages by hand, in the TLS
presentation language of RFC 9420, and signs them with `cryptography` (ciphersuite 2:
MLS_128_DHKEMP256_AES128GCM_SHA256_P256, so ECDSA P-256 over SHA-256, DER signatures, SEC1
uncompressed public keys, exactly what OpenMLS expects).

What davey needs from us (read from its ``session.rs``):

- the MLS group id is the channel id as **u64 big-endian**; credentials are basic, identity = user
  id as u64 big-endian;
- each member creates a *pending* group (epoch 0, itself alone) as soon as it gets op 25; the
  server's proposals name that group and epoch, and whichever member commits first wins;
- op 27 is ``operation_type u8`` then ONE MLS vector (varint length) holding the concatenated
  ``MLSMessage``s (append) or ``ProposalRef``s (revoke);
- op 28 is the commit ``MLSMessage`` immediately followed by a bare ``Welcome`` (no MLSMessage
  wrapper); `split_commit_welcome` cuts them apart by parsing the commit.

Messages are ``PublicMessage``s from ``sender_type external (2)``, ``sender_index 0``; the signature
is SignWithLabel("FramedContentTBS") over a FramedContentTBS without a GroupContext (external
senders carry none), and there is no membership tag.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Final, final

import davey
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

__all__ = [
    "FakeDaveMember",
    "FakeExternalSender",
    "encode_varint",
    "split_commit_welcome",
]

_MLS10: Final = 1  # RFC 9420 ProtocolVersion mls10
_WIRE_PUBLIC_MESSAGE: Final = 1  # RFC 9420 WireFormat mls_public_message
_SENDER_EXTERNAL: Final = 2  # RFC 9420 SenderType external
_SENDER_MEMBER: Final = 1  # RFC 9420 SenderType member
_CONTENT_APPLICATION: Final = 1  # RFC 9420 ContentType application
_CONTENT_PROPOSAL: Final = 2  # RFC 9420 ContentType proposal
_CONTENT_COMMIT: Final = 3  # RFC 9420 ContentType commit
_PROPOSAL_ADD: Final = 1  # RFC 9420 ProposalType add
_PROPOSAL_REMOVE: Final = 3  # RFC 9420 ProposalType remove
_CREDENTIAL_BASIC: Final = 1  # RFC 9420 CredentialType basic
_LEAF_SOURCE_KEY_PACKAGE: Final = 1  # RFC 9420 LeafNodeSource key_package
_LEAF_SOURCE_COMMIT: Final = 3  # RFC 9420 LeafNodeSource commit
_SIGN_LABEL_PREFIX: Final = b"MLS 1.0 "  # RFC 9420 5.1.2 SignWithLabel
_OP_APPEND: Final = 0  # PROTOCOL.md 6.2 op 27 operation_type append
_EXTERNAL_SENDER_USER_ID: Final = 0  # davey never inspects the server's identity; any u64 will do


def encode_varint(n: int) -> bytes:
    """RFC 9420 2.1.2 variable-size length: 1, 2 or 4 bytes, minimal encoding, max 2**30 - 1."""
    if n < 0x40:
        return bytes([n])
    if n < 0x4000:
        return struct.pack(">H", 0x4000 | n)
    if n < 0x4000_0000:
        return struct.pack(">I", 0x8000_0000 | n)
    raise ValueError(f"MLS vector too long: {n}")


def _vec(data: bytes) -> bytes:
    """``opaque data<V>``: a varint length prefix then the bytes."""
    return encode_varint(len(data)) + data


def _u64(n: int) -> bytes:
    return struct.pack(">Q", n)


@final
class FakeExternalSender:
    """The voice server's MLS external sender, signing proposals for real davey groups."""

    def __init__(self) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._public = self._key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )

    def package(self) -> bytes:
        """The op 25 payload: ``ExternalSender {signature_key<V>, Credential basic}``."""
        credential = struct.pack(">H", _CREDENTIAL_BASIC) + _vec(_u64(_EXTERNAL_SENDER_USER_ID))
        return _vec(self._public) + credential

    def add_proposals(self, *, channel_id: int, epoch: int, key_packages: Sequence[bytes]) -> bytes:
        """The op 27 payload (operation type 0, append) adding one member per key package.

        ``epoch`` is the epoch of the group the members hold (0 for a fresh pending group).
        """
        proposals = [struct.pack(">H", _PROPOSAL_ADD) + kp for kp in key_packages]
        return self._append(channel_id, epoch, proposals)

    def remove_proposals(
        self, *, channel_id: int, epoch: int, leaf_indexes: Sequence[int]
    ) -> bytes:
        """The op 27 payload (operation type 0, append) removing the members at ``leaf_indexes``."""
        proposals = [struct.pack(">HI", _PROPOSAL_REMOVE, leaf) for leaf in leaf_indexes]
        return self._append(channel_id, epoch, proposals)

    def _append(self, channel_id: int, epoch: int, proposals: Sequence[bytes]) -> bytes:
        messages = b"".join(self._public_message(channel_id, epoch, p) for p in proposals)
        return bytes([_OP_APPEND]) + _vec(messages)

    def _public_message(self, channel_id: int, epoch: int, proposal: bytes) -> bytes:
        framed_content = (
            _vec(_u64(channel_id))  # group_id: davey uses the channel id as u64 BE
            + _u64(epoch)
            + struct.pack(">BI", _SENDER_EXTERNAL, 0)  # sender_index 0: the only external sender
            + _vec(b"")  # authenticated_data
            + bytes([_CONTENT_PROPOSAL])
            + proposal
        )
        header = struct.pack(">HH", _MLS10, _WIRE_PUBLIC_MESSAGE)
        tbs = header + framed_content  # FramedContentTBS: no GroupContext for external senders
        sign_content = _vec(_SIGN_LABEL_PREFIX + b"FramedContentTBS") + _vec(tbs)
        signature = self._key.sign(sign_content, ec.ECDSA(hashes.SHA256()))  # DER, as OpenMLS
        # MLSMessage{version, wire_format, PublicMessage{content, auth{signature}}}; no
        # confirmation tag (proposal) and no membership tag (external sender).
        return header + framed_content + _vec(signature)


@final
class FakeDaveMember:
    """A second user in the call: a real davey member, so the fake server can hear the bot."""

    def __init__(self, *, user_id: int, channel_id: int) -> None:
        self.user_id = user_id
        self.channel_id = channel_id
        self._session = davey.DaveSession(davey.DAVE_PROTOCOL_VERSION, user_id, channel_id)

    @property
    def ready(self) -> bool:
        """Whether the member joined a group and can decrypt."""
        return self._session.ready

    @property
    def epoch(self) -> int | None:
        """The member's MLS epoch, None before it has any group."""
        return self._session.epoch

    def key_package(self) -> bytes:
        """A fresh serialized KeyPackage (what the member would send as op 26)."""
        return self._session.get_serialized_key_package()

    def set_external_sender(self, package: bytes) -> None:
        """Op 25."""
        self._session.set_external_sender(package)

    def process_proposals(
        self, payload: bytes, expected_user_ids: Sequence[int] | None = None
    ) -> bytes | None:
        """Op 27 (``payload`` includes the operation type byte); returns an op 28 payload or None.

        Every member must see the proposals a commit refers to, or `process_commit` fails with
        ``MissingProposal``.
        """
        op_type = davey.ProposalsOperationType.append
        if payload[0] == 1:
            op_type = davey.ProposalsOperationType.revoke
        expected = None if expected_user_ids is None else list(expected_user_ids)
        result = self._session.process_proposals(op_type, payload[1:], expected)
        if result is None:
            return None
        return result.commit + (result.welcome or b"")

    def process_welcome(self, welcome: bytes) -> None:
        """Op 30 (without its transition id)."""
        self._session.process_welcome(welcome)

    def process_commit(self, commit: bytes) -> None:
        """Op 29 (without its transition id)."""
        self._session.process_commit(commit)

    def decrypt(self, sender_user_id: int, frame: bytes) -> bytes:
        """DAVE frame from ``sender_user_id`` -> Opus frame; raises davey's error if it fails."""
        return self._session.decrypt(sender_user_id, davey.MediaType.audio, frame)

    def encrypt(self, frame: bytes) -> bytes:
        """Opus frame -> DAVE frame, so tests can also feed the bot's receive path."""
        return self._session.encrypt_opus(frame)


# --- Splitting op 28 -----------------------------------------------------------------------------


class _Reader:
    """Walks a TLS-presentation-language buffer; raises ValueError when it runs short."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ValueError("MLS message truncated")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def uint(self, n: int) -> int:
        return int.from_bytes(self.take(n), "big")

    def varint(self) -> int:
        first = self.data[self.pos] if self.pos < len(self.data) else None
        if first is None:
            raise ValueError("MLS message truncated")
        size = 1 << (first >> 6)
        if size == 8:
            raise ValueError("invalid MLS varint prefix")
        return self.uint(size) & ((1 << (8 * size - 2)) - 1)

    def vec(self) -> bytes:
        return self.take(self.varint())


def _skip_credential(r: _Reader) -> None:
    r.uint(2)  # credential_type: basic (identity<V>) and x509 (certificates<V>) both are one vector
    r.vec()


def _skip_leaf_node(r: _Reader) -> None:
    r.vec()  # encryption_key
    r.vec()  # signature_key
    _skip_credential(r)
    for _ in range(5):  # capabilities: versions, ciphersuites, extensions, proposals, credentials
        r.vec()
    source = r.uint(1)
    if source == _LEAF_SOURCE_KEY_PACKAGE:
        r.take(16)  # lifetime: not_before u64, not_after u64
    elif source == _LEAF_SOURCE_COMMIT:
        r.vec()  # parent_hash
    r.vec()  # extensions
    r.vec()  # signature


def _mls_message_length(data: bytes) -> int:
    """Length of the PublicMessage ``MLSMessage`` at the start of ``data`` (RFC 9420 6, 6.2)."""
    r = _Reader(data)
    if r.uint(2) != _MLS10 or r.uint(2) != _WIRE_PUBLIC_MESSAGE:
        raise ValueError("not an MLS 1.0 PublicMessage")
    r.vec()  # group_id
    r.take(8)  # epoch
    sender_type = r.uint(1)
    if sender_type in (_SENDER_MEMBER, _SENDER_EXTERNAL):
        r.take(4)
    r.vec()  # authenticated_data
    content_type = r.uint(1)
    if content_type == _CONTENT_APPLICATION:
        r.vec()
    elif content_type == _CONTENT_COMMIT:
        r.vec()  # proposals: ProposalOrRef<V>
        if r.uint(1):  # optional<UpdatePath>
            _skip_leaf_node(r)
            r.vec()  # nodes: UpdatePathNode<V>
    else:
        raise ValueError(f"unexpected content type {content_type} in op 28")
    r.vec()  # signature
    if content_type == _CONTENT_COMMIT:
        r.vec()  # confirmation_tag
    if sender_type == _SENDER_MEMBER:
        r.vec()  # membership_tag
    return r.pos


def split_commit_welcome(data: bytes) -> tuple[bytes, bytes | None]:
    """Split an op 28 payload into the commit ``MLSMessage`` and the bare ``Welcome`` (or None)."""
    end = _mls_message_length(data)
    return data[:end], (data[end:] or None)
