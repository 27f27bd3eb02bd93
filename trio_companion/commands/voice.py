"""Voice commands: /join, /leave, /speak, /speak_as, /stop, /voices, /set_voice.

Thin glue between interactions and `voice.manager.VoiceManager` + `services.speech.Speaker`.
Every failure is answered to the caller only (ephemeral): not in a server, caller not in voice,
the bot not in voice, text too long or empty, queue full, voice conversion off, an unknown voice
model. When a session ends on its own (a kick, a fatal close code such as 4017 or 4021), the
channel where /join was run hears the reason once. A TTS failure during playback is told to
whoever asked for that speech, as a followup.

The guild's default TTS voice and RVC model (``/set_voice``) live in the meta table, keys
``voice.tts.<guild>`` and ``voice.model.<guild>``.

No ``from __future__ import annotations`` here: the registry evaluates the annotations of the
commands declared inside `register` (see ``commands/chat.py``).
"""

import difflib
import logging
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Annotated, Final

from trio_companion.errors import CompanionError
from trio_companion.gateway.commands import CommandRegistry, Param
from trio_companion.gateway.errors import GatewayError
from trio_companion.gateway.interactions import Interaction
from trio_companion.services.speech import TextFeed
from trio_companion.voice.errors import VoiceError
from trio_companion.voice.manager import JoinResult

if TYPE_CHECKING:
    from trio_companion.app import App

__all__ = ["register", "speak_reply", "spoken_reply"]

log = logging.getLogger(__name__)

SPEAK_COOLDOWN: Final = 3.0  # The issue: /speak and /speak_as, 3 s per user.
MAX_CHOICES: Final = 25  # Discord shows at most 25 autocomplete choices.
_TTS_KEY: Final = "voice.tts."
_MODEL_KEY: Final = "voice.model."


def register(registry: CommandRegistry, app: "App") -> None:
    limit = app.config.voice.max_speak_chars

    async def complete_model(ctx: Interaction, typed: str) -> list[str]:
        return _matching(await _models(app), typed)

    async def complete_voice(ctx: Interaction, typed: str) -> list[str]:
        try:
            voices = await app.speaker.engine.voices()
        except CompanionError:
            return []
        return _matching(voices, typed)

    Text = Annotated[str, Param("What to say", max_length=limit)]
    Model = Annotated[
        str, Param("A voice model (RVC)", max_length=100, autocomplete=complete_model)
    ]

    @registry.command(description="Join your voice channel", guild_only=True, ephemeral=True)
    async def join(ctx: Interaction) -> None:
        await _join(app, ctx)

    @registry.command(description="Leave the voice channel", guild_only=True, ephemeral=True)
    async def leave(ctx: Interaction) -> None:
        if ctx.guild_id is None:
            await ctx.error("Voice works in servers only.")
            return
        try:
            await app.voice.leave(ctx.guild_id)
        except VoiceError as exc:
            await ctx.error(str(exc))
            return
        await ctx.respond("Left the voice channel.")

    @registry.command(
        description="Say something in the voice channel",
        cooldown=SPEAK_COOLDOWN,
        guild_only=True,
        ephemeral=True,
    )
    async def speak(ctx: Interaction, text: Text) -> None:
        await _speak(app, ctx, text, model=None)

    @registry.command(
        description="Say something in another voice (RVC model)",
        cooldown=SPEAK_COOLDOWN,
        guild_only=True,
        ephemeral=True,
    )
    async def speak_as(ctx: Interaction, voice: Model, text: Text) -> None:
        await _speak_as(app, ctx, voice, text)

    @registry.command(
        description="Stop speaking and drop the queue", guild_only=True, ephemeral=True
    )
    async def stop(ctx: Interaction) -> None:
        if ctx.guild_id is None:
            await ctx.error("Voice works in servers only.")
            return
        try:
            dropped = app.voice.stop(ctx.guild_id)
        except VoiceError as exc:
            await ctx.error(str(exc))
            return
        await ctx.respond("Stopped." if dropped else "Nothing was playing.")

    @registry.command(description="List the voices I can speak with", ephemeral=True)
    async def voices(ctx: Interaction) -> None:
        await ctx.defer()
        lines = [f"**Speech engine:** {app.speaker.engine.name}"]
        try:
            names = await app.speaker.engine.voices()
            lines.append("**Voices:** " + (", ".join(names[:40]) or "the default voice"))
        except CompanionError as exc:
            lines.append(f"Voices unavailable: {exc}")
        if app.speaker.converter is not None:
            models = await _models(app)
            lines.append("**Voice models (/speak_as):** " + (", ".join(models) or "none found"))
        await ctx.respond("\n".join(lines))

    @registry.command(
        description="Set this server's voice (needs Manage Server)",
        admin=True,
        guild_only=True,
        ephemeral=True,
    )
    async def set_voice(
        ctx: Interaction,
        voice: Annotated[
            str, Param("A speech voice (see /voices)", max_length=100, autocomplete=complete_voice)
        ],
        model: Annotated[
            str,
            Param("A voice model for RVC, or 'none'", max_length=100, autocomplete=complete_model),
        ] = "",
    ) -> None:
        await _set_voice(app, ctx, voice, model)


async def _set_voice(app: "App", ctx: Interaction, voice: str, model: str) -> None:
    if ctx.guild_id is None:
        await ctx.error("Voice works in servers only.")
        return
    try:
        known = await app.speaker.engine.voices()
    except CompanionError:
        known = []
    if known and voice not in known:
        await ctx.error(f"There is no voice “{voice}”; /voices lists them.")
        return
    await app.store.meta.set(f"{_TTS_KEY}{ctx.guild_id}", voice)
    text = f"This server's voice is now **{voice}**."
    if model:
        chosen = "" if model == "none" else model
        if chosen and app.speaker.converter is None:
            await ctx.error("Voice conversion is off: set rvc.enabled in the configuration.")
            return
        await app.store.meta.set(f"{_MODEL_KEY}{ctx.guild_id}", chosen)
        text += f" Voice model: **{chosen or 'none'}**."
    await ctx.respond(text)


async def _speak_as(app: "App", ctx: Interaction, voice: str, text: str) -> None:
    if app.speaker.converter is None:
        await ctx.error("Voice conversion is off: set rvc.enabled in the configuration.")
        return
    models = await _models(app)
    if models and voice not in models:
        close = difflib.get_close_matches(voice, models, n=5, cutoff=0.5) or models[:5]
        hint = f" Try: {', '.join(close)}." if close else ""
        await ctx.error(f"There is no voice model “{voice}”.{hint}")
        return
    await _speak(app, ctx, text, model=voice)


async def _join(app: "App", ctx: Interaction) -> None:
    if ctx.guild_id is None:
        await ctx.error("Voice works in servers only.")
        return
    channel = app.cache.voice_channel_of(ctx.guild_id, ctx.user_id)
    if channel is None:
        await ctx.error("Join a voice channel first, then run /join.")
        return
    await ctx.defer()
    notice_channel = ctx.channel_id

    async def on_ended(reason: str) -> None:
        if notice_channel is not None:
            await app.rest.create_message(notice_channel, f"Left voice: {reason}")

    try:
        result = await app.voice.join(ctx.guild_id, channel, on_ended=on_ended)
    except VoiceError as exc:
        await ctx.error(str(exc))
        return
    text = {
        JoinResult.JOINED: f"Joined <#{channel}>.",
        JoinResult.MOVED: f"Moving to <#{channel}>.",
        JoinResult.ALREADY_THERE: f"I'm already in <#{channel}>.",
    }[result]
    await ctx.respond(text)


async def _speak(app: "App", ctx: Interaction, text: str, *, model: str | None) -> None:
    if ctx.guild_id is None:
        await ctx.error("Voice works in servers only.")
        return
    text = text.strip()
    if not text:
        await ctx.error("Tell me what to say.")
        return
    try:
        ahead = await speak_reply(app, ctx.guild_id, text, model=model, interaction=ctx)
    except VoiceError as exc:
        await ctx.error(str(exc))
        return
    await ctx.respond("Speaking." if ahead == 0 else f"Queued ({ahead} ahead).")


async def speak_reply(
    app: "App",
    guild_id: int,
    text: str | TextFeed,
    *,
    model: str | None = None,
    interaction: Interaction | None = None,
) -> int:
    """Queue ``text`` (or a feed of it still arriving) in the guild's voice; returns how many
    are ahead. Raises `VoiceError` (`NotInVoice`, `QueueFull`)."""
    voice = await app.store.meta.get(f"{_TTS_KEY}{guild_id}")
    if model is None:
        model = await app.store.meta.get(f"{_MODEL_KEY}{guild_id}") or app.config.rvc.model

    async def tell(message: str) -> None:
        if interaction is None:
            return
        try:
            await interaction.respond(message, ephemeral=True)
        except GatewayError as exc:  # the interaction token may have expired (15 minutes)
            log.info("could not tell the speaker: %s", exc)

    async def on_error(error: CompanionError) -> None:
        await tell(f"I couldn't say that: {error}")

    feed = text if isinstance(text, TextFeed) else TextFeed.of(text)
    utterance = app.speaker.utterance(
        feed,
        label="a chat reply" if isinstance(text, TextFeed) else _label(text),
        voice=voice,
        model=model or None,
        names=_names(app, guild_id),
        on_error=on_error,
        on_notice=tell,
    )
    return app.voice.speak(guild_id, utterance)


async def spoken_reply(app: "App", guild_id: int | None) -> TextFeed | None:
    """A feed to stream a chat reply into voice as it is written, when
    ``voice.speak_chat_replies`` is on and the bot is in voice in that guild; else None. Close
    it when the reply ends. A full queue skips this reply (logged): the text is in the channel
    anyway, so nothing is lost."""
    if not app.config.voice.speak_chat_replies or guild_id is None:
        return None
    if app.voice.session(guild_id) is None:
        return None
    feed = TextFeed()
    try:
        await speak_reply(app, guild_id, feed)
    except VoiceError as exc:
        log.info("voice %s: chat reply not spoken: %s", guild_id, exc)
        return None
    return feed


def _label(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."


class _CacheNames(Mapping[int, str]):
    """Mention ids to display names, looked up in the gateway cache as the text is cleaned."""

    def __init__(self, app: "App", guild_id: int) -> None:
        self._cache = app.cache
        self._guild_id = guild_id

    def __getitem__(self, key: int) -> str:
        name = self._cache.display_name(key, self._guild_id)
        if name is None:
            raise KeyError(key)
        return name

    def __iter__(self) -> Iterator[int]:
        return iter(())

    def __len__(self) -> int:
        return 0


def _names(app: "App", guild_id: int) -> Mapping[int, str]:
    return _CacheNames(app, guild_id)


async def _models(app: "App") -> list[str]:
    converter = app.speaker.converter
    if converter is None:
        return []
    try:
        return await converter.converter.models()
    except CompanionError:
        return []


def _matching(options: list[str], typed: str) -> list[str]:
    typed = typed.strip().casefold()
    starts = [o for o in options if o.casefold().startswith(typed)]
    contains = [o for o in options if typed in o.casefold() and o not in starts]
    return (starts + contains)[:MAX_CHOICES]
