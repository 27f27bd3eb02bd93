"""Commands about the bot itself."""

from __future__ import annotations

from typing import TYPE_CHECKING

from trio_companion import __version__

if TYPE_CHECKING:
    from trio_companion.app import App
    from trio_companion.gateway.commands import CommandRegistry
    from trio_companion.gateway.interactions import Interaction


def register(registry: CommandRegistry, app: App) -> None:
    @registry.command(description="Check that the companion is awake", cooldown=3.0)
    async def ping(ctx: Interaction) -> None:
        stats = app.statistics()
        latency = app.gateway.statistics().latency
        shown = "unknown yet" if latency is None else f"{latency * 1000:.0f} ms"
        await ctx.respond(
            f"Pong! Gateway latency {shown}, up {_duration(stats.uptime)}, "
            f"trio_companion {__version__}."
        )


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    parts = [(days, "d"), (hours, "h"), (minutes, "min"), (secs, "s")]
    shown = [f"{n} {unit}" for n, unit in parts if n][:2]
    return " ".join(shown) or "0 s"
