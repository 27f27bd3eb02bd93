"""Commands about the bot itself: /ping and /status."""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING, Final

import trio

from trio_companion import __version__
from trio_companion.services.llm.errors import LLMError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from trio_companion.app import App
    from trio_companion.gateway.commands import CommandRegistry
    from trio_companion.gateway.interactions import Interaction

# How long /status waits for the LLM server to list its models.
LLM_CHECK_BUDGET: Final = 5.0


def register(registry: CommandRegistry, app: App) -> None:
    @registry.command(description="Check that the companion is awake", cooldown=3.0)
    async def ping(ctx: Interaction) -> None:
        latency = app.gateway.statistics().latency
        shown = "unknown yet" if latency is None else f"{latency * 1000:.0f} ms"
        await ctx.respond(
            f"Pong! Gateway latency {shown}, up {_duration(app.statistics().uptime)}, "
            f"trio_companion {__version__}."
        )

    @registry.command(description="How the companion is doing", cooldown=5.0, ephemeral=True)
    async def status(ctx: Interaction) -> None:
        await ctx.respond("\n".join(await status_lines(app)))


async def status_lines(app: App) -> list[str]:
    """The lines of /status: the LLM, recent replies, the gateway, storage, uptime."""
    llm = app.config.llm
    started = trio.current_time()
    with trio.move_on_after(LLM_CHECK_BUDGET) as waited:
        try:
            models = await app.llm.list_models()
            reach = f"reachable ({trio.current_time() - started:.2f} s, {len(models)} models)"
        except LLMError as exc:
            reach = f"not reachable: {exc}"
    if waited.cancelled_caught:
        reach = f"no answer within {LLM_CHECK_BUDGET:.0f} s"
    chat = app.chat.statistics()
    gateway = app.gateway.statistics()
    connected = sum(1 for s in gateway.shards if s.connected)
    latency = "unknown" if gateway.latency is None else f"{gateway.latency * 1000:.0f} ms"
    store = app.store.statistics()
    return [
        f"**LLM** ({llm.provider}, model `{llm.model}`): {reach}",
        f"**Replies**: {chat.replies} ({chat.failures} failed); "
        f"first words after {_median(chat.recent_first_visible)}, "
        f"whole reply after {_median(chat.recent_total)} (median of the last "
        f"{len(chat.recent_total)})",
        f"**Gateway**: {connected}/{len(gateway.shards)} shards connected, latency {latency}",
        f"**Storage**: {store.writes_done} writes, schema v{store.schema_version}",
        _voice_line(app),
        f"**Uptime**: {_duration(app.statistics().uptime)} · trio_companion {__version__}",
    ]


def _voice_line(app: App) -> str:
    voice = app.voice.statistics()
    if not voice.sessions:
        return f"**Voice**: not connected · speech: {app.speaker.engine.name}"
    late = sum(link.sender.late_frames for link in voice.links if link.sender)
    queued = sum(player.queued for player in voice.players)
    dave = sum(link.dave_protocol_version > 0 for link in voice.links)
    return (
        f"**Voice**: {voice.sessions} session(s), {dave} end-to-end encrypted, {queued} queued, "
        f"{late} late frames · speech: {app.speaker.engine.name}"
    )


def _median(samples: Sequence[float]) -> str:
    return f"{statistics.median(samples):.1f} s" if samples else "n/a"


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    parts = [(days, "d"), (hours, "h"), (minutes, "min"), (secs, "s")]
    shown = [f"{n} {unit}" for n, unit in parts if n][:2]
    return " ".join(shown) or "0 s"
