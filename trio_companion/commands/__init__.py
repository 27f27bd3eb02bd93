"""Slash commands and message triggers: thin glue between Discord and the services.

Each module registers its commands on the app's `CommandRegistry` in a ``register(registry,
app)`` function; `register_all` calls them in order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from trio_companion.commands import (
    ambient,
    chat,
    core,
    history,
    memory,
    notes,
    persona,
    profiles,
    rag,
    reminders,
    search,
    voice,
)

if TYPE_CHECKING:
    from trio_companion.app import App
    from trio_companion.gateway.commands import CommandRegistry

__all__ = ["register_all"]


def register_all(registry: CommandRegistry, app: App) -> None:
    core.register(registry, app)
    persona.register(registry, app)
    chat.register(registry, app)
    history.register(registry, app)
    search.register(registry, app)
    notes.register(registry, app)
    reminders.register(registry, app)
    rag.register(registry, app)
    profiles.register(registry, app)
    memory.register(registry, app)
    ambient.register(registry, app)
    voice.register(registry, app)
