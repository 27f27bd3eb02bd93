"""``/persona set|list|show``: choose and inspect who the companion is in a server.

This module does not use ``from __future__ import annotations``: the ``name`` option's
autocomplete is a closure over the app, and the registry evaluates string annotations in the
module's globals, where that closure does not exist.

Discord sets permissions per top-level command, so ``/persona`` is visible to everyone and
``/persona set`` checks Manage Server itself, the way the interaction router does.
"""

from collections.abc import Iterable
from typing import TYPE_CHECKING, Annotated, Final

from trio_companion.gateway.commands import CommandRegistry, Param
from trio_companion.gateway.interactions import Interaction
from trio_companion.services.persona import Persona, UnknownPersona

if TYPE_CHECKING:
    from trio_companion.app import App

__all__ = ["register"]

# Discord shows at most 25 autocomplete choices.
MAX_CHOICES: Final = 25
# /persona show keeps within one 2000-character message: the prompt and the style are cut near
# these lengths, at a line or sentence break.
PROMPT_PREVIEW: Final = 700
STYLE_PREVIEW: Final = 300
GREETING_PREVIEW: Final = 200


def register(registry: CommandRegistry, app: "App") -> None:
    group = registry.group("persona", description="Who the companion is in this server")

    async def complete(ctx: Interaction, typed: str) -> list[str]:
        return matching_ids(app.personas.all(), typed)

    # A type alias, local because its autocomplete closes over the app.
    PersonaName = Annotated[
        str, Param("The persona's id or name", max_length=100, autocomplete=complete)
    ]

    @group.command("set", description="Choose this server's persona (needs Manage Server)")
    async def set_persona(ctx: Interaction, name: PersonaName) -> None:
        if ctx.guild_id is None:
            await ctx.error("`/persona set` works in servers only.")
            return
        if not ctx.is_manager():
            await ctx.error("`/persona set` needs the Manage Server permission.")
            return
        persona = app.personas.find(name)
        if persona is None:
            await ctx.error(_unknown(name, app.personas.suggest(name)))
            return
        await app.personas.set_for_guild(ctx.guild_id, persona.id)
        text = f"This server's persona is now **{persona.name}** (`{persona.id}`)."
        if persona.greeting:
            text += f"\n{persona.greeting}"
        await ctx.respond(text)

    @group.command("list", description="The personas to choose from")
    async def list_personas(ctx: Interaction) -> None:
        active = await app.personas.for_guild(ctx.guild_id)
        personas = app.personas.all()
        lines = [f"**Personas** ({len(personas)}):"]
        for persona in personas:
            about = f" — {persona.description}" if persona.description else ""
            mark = " ✅ *active here*" if persona.id == active.id else ""
            lines.append(f"• **{persona.name}** (`{persona.id}`){about}{mark}")
        if ctx.guild_id is not None:
            lines.append("Server managers choose with `/persona set`.")
        await ctx.respond("\n".join(lines))

    @group.command("show", description="What a persona is like (default: the active one)")
    async def show(ctx: Interaction, name: PersonaName = "") -> None:
        active = await app.personas.for_guild(ctx.guild_id)
        persona = active
        if name:
            found = app.personas.find(name)
            if found is None:
                await ctx.error(_unknown(name, app.personas.suggest(name)))
                return
            persona = found
        await ctx.respond(_describe(persona, app, active=persona.id == active.id))


def matching_ids(personas: Iterable[Persona], typed: str) -> list[str]:
    """Autocomplete: ids whose id or name starts with ``typed``, then those containing it."""
    wanted = typed.strip().casefold()
    starts, contains = [], []
    for persona in personas:
        keys = (persona.id, persona.name.casefold())
        if any(key.startswith(wanted) for key in keys):
            starts.append(persona.id)
        elif any(wanted in key for key in keys):
            contains.append(persona.id)
    return (starts + contains)[:MAX_CHOICES]


def _unknown(name: str, suggestions: tuple[str, ...]) -> str:
    return f"{UnknownPersona(name, suggestions)} `/persona list` shows them all."


def _describe(persona: Persona, app: "App", *, active: bool) -> str:
    title = f"**{persona.name}** (`{persona.id}`)" + (" ✅ *active here*" if active else "")
    lines = [title]
    if persona.description:
        lines.append(persona.description)
    if persona.style:
        lines.append(f"**Style:** {_preview(persona.style, STYLE_PREVIEW)[0]}")
    lines.append(f"**Voice:** {_voice(persona, app)}")
    if app.config.rvc.enabled:
        model = persona.rvc_model or app.config.rvc.model or "none"
        lines.append(f"**RVC model:** {model}" + ("" if persona.rvc_model else " (configured)"))
    if persona.interests:
        lines.append(f"**Interests:** {', '.join(persona.interests)}")
    if persona.examples:
        lines.append(f"**Example exchanges:** {len(persona.examples)}")
    if persona.greeting:
        lines.append(f"**Greeting:** {_preview(persona.greeting, GREETING_PREVIEW)[0]}")
    prompt, cut = _preview(persona.system_prompt, PROMPT_PREVIEW)
    total = len(persona.system_prompt)
    heading = (
        f"**System prompt** (the first {len(prompt) - 1} of {total} characters):"
        if cut
        else "**System prompt:**"
    )
    lines.append(heading)
    lines.extend(f"> {line}" if line else ">" for line in prompt.splitlines())
    return "\n".join(lines)


def _voice(persona: Persona, app: "App") -> str:
    if persona.tts_voice:
        return persona.tts_voice
    tts = app.config.tts
    if tts.voice:
        return f"{tts.voice} (configured)"
    return f"the {tts.engine} engine's default"


def _preview(text: str, limit: int) -> tuple[str, bool]:
    """``text`` cut near ``limit`` at a line, sentence or word break, with "…"; and whether it
    was cut."""
    text = text.strip()
    if len(text) <= limit:
        return text, False
    head = text[:limit]
    floor = limit * 2 // 3  # do not cut away more than a third for a nicer break
    for mark in ("\n", ". ", " "):
        at = head.rfind(mark)
        if at >= floor:
            head = head[: at + (1 if mark == ". " else 0)]
            break
    return head.rstrip() + "…", True
