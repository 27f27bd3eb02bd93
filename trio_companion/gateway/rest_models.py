"""What the REST client sends and receives: the models, files, mentions, multipart bodies.

Snowflakes are ``int``; the models are frozen msgspec Structs that ignore fields they do not
name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec

__all__ = [
    "NO_MENTIONS",
    "AllowedMentions",
    "Application",
    "ApplicationCommand",
    "Attachment",
    "Channel",
    "File",
    "GatewayBot",
    "Message",
    "MessageReference",
    "SessionStartLimit",
    "User",
    "encode_multipart",
]


# --- models -----------------------------------------------------------------------------------


class User(msgspec.Struct, frozen=True):
    id: int
    username: str
    bot: bool = False
    global_name: str | None = None


class Attachment(msgspec.Struct, frozen=True):
    id: int
    filename: str
    size: int
    url: str
    content_type: str | None = None


class MessageReference(msgspec.Struct, frozen=True):
    message_id: int | None = None
    channel_id: int | None = None
    guild_id: int | None = None


class Message(msgspec.Struct, frozen=True):
    id: int
    channel_id: int
    content: str = ""
    author: User | None = None
    timestamp: str = ""
    edited_timestamp: str | None = None
    attachments: tuple[Attachment, ...] = ()
    flags: int = 0
    type: int = 0
    message_reference: MessageReference | None = None
    webhook_id: int | None = None


class Channel(msgspec.Struct, frozen=True):
    id: int
    type: int
    recipients: tuple[User, ...] = ()


class SessionStartLimit(msgspec.Struct, frozen=True):
    total: int
    remaining: int
    reset_after: int  # milliseconds
    max_concurrency: int


class GatewayBot(msgspec.Struct, frozen=True):
    url: str
    shards: int
    session_start_limit: SessionStartLimit


class Application(msgspec.Struct, frozen=True):
    id: int
    name: str
    description: str = ""
    flags: int = 0
    bot: User | None = None


class ApplicationCommand(msgspec.Struct, frozen=True):
    id: int
    application_id: int
    name: str
    type: int = 1
    description: str = ""
    guild_id: int | None = None
    version: int = 0
    options: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class AllowedMentions:
    """Who a message may ping. The default pings nobody but the author of the replied message:
    text written by a model must never reach ``@everyone`` or a role."""

    parse: tuple[str, ...] = ()  # subset of "users", "roles", "everyone"
    users: tuple[int, ...] = ()
    roles: tuple[int, ...] = ()
    replied_user: bool = True

    def to_json(self) -> dict[str, object]:
        return {
            "parse": list(self.parse),
            "users": [str(u) for u in self.users],
            "roles": [str(r) for r in self.roles],
            "replied_user": self.replied_user,
        }


NO_MENTIONS: Final = AllowedMentions()


@dataclass(frozen=True, slots=True)
class File:
    """A file to upload as ``files[n]``; ``data`` is held in memory (≤ 10 MiB per file)."""

    filename: str
    data: bytes = field(repr=False)
    content_type: str = "application/octet-stream"
    description: str | None = None


def _quote_disposition(value: str) -> str:
    # The escaping browsers and httpx apply to form-data names and filenames.
    return value.replace("\\", "\\\\").replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


def encode_multipart(
    payload: Mapping[str, object], files: Sequence[File], boundary: str
) -> tuple[bytes, str]:
    """Encode ``payload_json`` plus ``files[n]`` parts; return ``(body, content_type)``.

    ``payload["attachments"]`` is set to reference each file by its index ``n``, as Discord
    requires (PROTOCOL §3.1).
    """
    attachments = []
    for index, file in enumerate(files):
        entry: dict[str, object] = {"id": index, "filename": file.filename}
        if file.description is not None:
            entry["description"] = file.description
        attachments.append(entry)
    parts = [
        (
            'form-data; name="payload_json"',
            "application/json",
            msgspec.json.encode({**payload, "attachments": attachments}),
        )
    ]
    for index, file in enumerate(files):
        disposition = (
            f'form-data; name="files[{index}]"; filename="{_quote_disposition(file.filename)}"'
        )
        parts.append((disposition, file.content_type, file.data))
    chunks = []
    for disposition, content_type, data in parts:
        head = f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
        head += f"Content-Type: {content_type}\r\n\r\n"
        chunks += [head.encode(), data, b"\r\n"]
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"
