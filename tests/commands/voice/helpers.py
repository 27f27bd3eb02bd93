"""What the voice command tests share: ids, deadlines, running a command, waiting for audio."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from tests.fakes.discord import USER_ID, FakeDiscord, last_message
from tests.fakes.voice_server import FakeVoiceServer, Stream

VOICE_CHANNEL: Final = 1_200_000_000_000_000_050
OTHER_VOICE_CHANNEL: Final = 1_200_000_000_000_000_051
# Users in the voice channel besides USER_ID, one per command in the concurrent test, so that
# the per-user /speak cooldown never answers first.
CROWD: Final = tuple(USER_ID + 100 + n for n in range(10))
DEADLINE: Final = 30


async def run_command(
    fake: FakeDiscord, name: str, *, user_id: int = USER_ID, **options: str
) -> str:
    """Run ``/name`` with string ``options``; return what the user sees last."""
    interaction = await fake.interact(
        name, [{"name": k, "type": 3, "value": v} for k, v in options.items()], user_id=user_id
    )
    await fake.wait_answered(interaction)
    content = last_message(interaction)["content"]
    assert isinstance(content, str)
    return content


async def wait_stream(server: FakeVoiceServer, condition: Callable[[Stream], bool]) -> Stream:
    """The newest session's stream, once ``condition`` holds for it."""

    def ready() -> bool:
        session = server.session
        stream = server.streams.get(session.ssrc) if session else None
        return stream is not None and condition(stream)

    await server.wait_until(ready)
    return server.stream()
