"""Answering slash commands: the 3-second deadline, automatic defer, progress, visible errors.

Theory of operation
-------------------
Discord invalidates an interaction that has no callback 3 s after it was created (PROTOCOL.md 4,
P6). The router runs each command handler in a nursery beside a *watchdog*: if the handler has
not answered `DEFER_AFTER` seconds after the event arrived, the watchdog sends the type 5 defer
("thinking…") itself; if the handler is still busy after `PROGRESS_EVERY` seconds with nothing
shown, the watchdog edits the original response with a progress line until the handler answers.
So handlers never think about the deadline: they call `Interaction.respond` whenever they are
ready, and it picks the right route (callback, edit of ``@original``, or followup), splitting
text longer than one message.

Everything a user can get wrong gets an ephemeral answer before the handler runs: an unknown
command, a missing permission, a DM-only context, a cooldown ("try again in 2.4 s"), an option
over its limit. A handler that raises a `CompanionError` shows its message; any other exception
is logged with the interaction id and the user is told something went wrong, with that id.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Final, final

import trio

from trio_companion.errors import CompanionError
from trio_companion.gateway.commands import (
    ADMINISTRATOR,
    MANAGE_GUILD,
    CommandRegistry,
    CommandSpec,
    InvalidOption,
)
from trio_companion.gateway.cooldowns import Cooldowns
from trio_companion.gateway.errors import GatewayError
from trio_companion.gateway.events import CommandOption, InteractionCreate, User
from trio_companion.gateway.rest import RestClient
from trio_companion.gateway.rest_models import File
from trio_companion.gateway.text import split_message

__all__ = ["Interaction", "InteractionRouter"]

log = logging.getLogger(__name__)

# PROTOCOL.md 4: the callback must arrive within 3 s of the event; defer with a second to spare
# for the network and clock skew.
DEFER_AFTER: Final = 2.0
# The hardening pass's advice: users see "thinking…" for long; update every 10-15 s.
PROGRESS_EVERY: Final = 10.0
# Autocomplete answers must also arrive within 3 s; past this, answer with nothing.
AUTOCOMPLETE_BUDGET: Final = 2.5
MAX_AUTOCOMPLETE_CHOICES: Final = 25

# Interaction and callback types (PROTOCOL.md 4).
APPLICATION_COMMAND: Final = 2
AUTOCOMPLETE: Final = 4
REPLY: Final = 4
DEFER: Final = 5
AUTOCOMPLETE_RESULT: Final = 8
EPHEMERAL: Final = 1 << 6
# Option types that carry a subcommand path.
_SUB_COMMAND, _SUB_COMMAND_GROUP = 1, 2


@final
class Interaction:
    """What a command handler gets: who asked, where, and how to answer."""

    def __init__(
        self,
        event: InteractionCreate,
        rest: RestClient,
        spec: CommandSpec | None,
        *,
        admin_user_ids: frozenset[int] = frozenset(),
    ) -> None:
        self.event = event
        self.id = event.id
        self.guild_id = event.guild_id
        self.channel_id = event.channel_id
        self.user: User | None = event.invoker
        self.received_at = trio.current_time()
        self._rest = rest
        self._admins = admin_user_ids
        self._ephemeral_default = spec.ephemeral if spec is not None else False
        self._lock = trio.Lock()
        self.acknowledged = False
        self.deferred_ephemeral = False
        self.answered = False

    @property
    def user_id(self) -> int:
        return self.user.id if self.user is not None else 0

    def is_manager(self) -> bool:
        """Whether the caller may run admin commands: Manage Server (or Administrator) where
        they ran it, or listed in ``discord.admin_user_ids``. The one check behind ``admin=True``
        and behind subcommands that check for themselves."""
        if self.user_id in self._admins:
            return True
        member = self.event.member
        bits = member.permissions if member is not None and member.permissions else 0
        return bool(bits & (ADMINISTRATOR | MANAGE_GUILD))

    async def respond(
        self,
        content: str,
        *,
        ephemeral: bool | None = None,
        files: Sequence[File] = (),
    ) -> None:
        """Show ``content`` to the user (split into several messages when long)."""
        private = self._ephemeral_default if ephemeral is None else ephemeral
        chunks = split_message(content) or ["\u200b"]
        async with self._lock:
            first, rest = chunks[0], chunks[1:]
            attach_first = files if not rest else ()
            if not self.acknowledged and not files:
                await self._callback(
                    REPLY, {"content": first, "flags": EPHEMERAL if private else 0}
                )
            elif not self.answered and (
                not self.acknowledged or self.deferred_ephemeral == private
            ):
                if not self.acknowledged:
                    await self._callback(DEFER, {"flags": EPHEMERAL if private else 0})
                    self.deferred_ephemeral = private
                await self._rest.edit_original_response(
                    self.event.application_id, self.event.token, first, files=attach_first
                )
            else:
                if not self.answered and self.acknowledged:
                    # A public "thinking…" cannot become private: remove it, answer privately.
                    await self._rest.delete_original_response(
                        self.event.application_id, self.event.token
                    )
                await self._followup(first, private, attach_first)
            self.answered = True
            for index, chunk in enumerate(rest):
                last = index == len(rest) - 1
                await self._followup(chunk, private, files if last else ())

    async def send_message(self, content: str) -> object:
        """Show one more message of a streamed answer; returns a handle for `edit_message`.

        The first becomes the original response (deferring first if needed), later ones are
        followups. Content must fit one message (the caller splits)."""
        async with self._lock:
            if not self.acknowledged:
                await self._callback(DEFER, {"flags": EPHEMERAL if self._ephemeral_default else 0})
                self.deferred_ephemeral = self._ephemeral_default
            if not self.answered:
                await self._rest.edit_original_response(
                    self.event.application_id, self.event.token, content
                )
                self.answered = True
                return _ORIGINAL
            message = await self._rest.create_followup(
                self.event.application_id,
                self.event.token,
                content,
                ephemeral=self.deferred_ephemeral,
            )
            return message.id

    async def edit_message(self, handle: object, content: str) -> None:
        """Replace a message made by `send_message`."""
        async with self._lock:
            if handle is _ORIGINAL:
                await self._rest.edit_original_response(
                    self.event.application_id, self.event.token, content
                )
            else:
                assert isinstance(handle, int)
                await self._rest.edit_followup(
                    self.event.application_id, self.event.token, handle, content
                )

    async def error(self, message: str) -> None:
        """Tell the user what went wrong, privately."""
        await self.respond(message, ephemeral=True)

    async def defer(self, *, ephemeral: bool | None = None) -> None:
        """Acknowledge now ("thinking…"); `respond` later edits that message."""
        private = self._ephemeral_default if ephemeral is None else ephemeral
        async with self._lock:
            if not self.acknowledged:
                await self._callback(DEFER, {"flags": EPHEMERAL if private else 0})
                self.deferred_ephemeral = private

    async def show_progress(self, text: str) -> None:
        """Replace the "thinking…" line with ``text`` while the answer is not ready yet."""
        async with self._lock:
            if self.acknowledged and not self.answered:
                await self._rest.edit_original_response(
                    self.event.application_id, self.event.token, text
                )

    async def cancel_between_requests(self, scope: trio.CancelScope) -> None:
        """Cancel ``scope`` (the watchdog's) between two of this interaction's requests, never
        halfway through one: a defer cancelled on the wire may have reached Discord while we
        think it has not, and the next callback would get 40060. Shielded, so that an outer
        cancellation (which also cancels the request holding the lock) cannot skip it."""
        with trio.CancelScope(shield=True):
            async with self._lock:
                scope.cancel()

    async def _callback(self, kind: int, data: dict[str, Any]) -> None:
        await self._rest.create_interaction_response(self.id, self.event.token, kind, data)
        self.acknowledged = True

    async def _followup(self, content: str, private: bool, files: Sequence[File]) -> None:
        await self._rest.create_followup(
            self.event.application_id, self.event.token, content, ephemeral=private, files=files
        )


# The handle of the original response among the messages of `Interaction.send_message`.
_ORIGINAL: Final = object()

WorkGuard = Callable[[str], AbstractContextManager[None]]


@final
class InteractionRouter:
    """The INTERACTION_CREATE listener: checks, cooldowns, options, then the handler."""

    def __init__(
        self,
        registry: CommandRegistry,
        rest: RestClient,
        *,
        admin_user_ids: Sequence[int] = (),
        guard: WorkGuard | None = None,
    ) -> None:
        self._registry = registry
        self._rest = rest
        self._admins = frozenset(admin_user_ids)
        self._guard: WorkGuard = guard or (lambda _what: nullcontext())
        self.cooldowns = Cooldowns()

    async def handle(self, event: InteractionCreate) -> None:
        if event.type == AUTOCOMPLETE:
            await self._autocomplete(event)
            return
        if event.type != APPLICATION_COMMAND or event.data is None:
            return
        name, subcommand, options = _command_path(event)
        spec = self._registry.find(name, subcommand)
        ctx = Interaction(event, self._rest, spec, admin_user_ids=self._admins)
        try:
            with self._guard(f"interaction {event.id} (/{name})"):
                if spec is None:
                    await ctx.error(f"`/{name}` is not available any more.")
                    return
                problem = self._refusal(ctx, spec)
                if problem is not None:
                    await ctx.error(problem)
                    return
                values = spec.parse_options(
                    [_option_dict(o) for o in options], event.data.resolved or {}
                )
                await self._run(ctx, spec, values)
        except (InvalidOption, CompanionError) as exc:
            await _answer_error(ctx, str(exc))

    def _refusal(self, ctx: Interaction, spec: CommandSpec) -> str | None:
        if spec.guild_only and ctx.guild_id is None:
            return f"`/{spec.name}` works in servers only."
        if spec.admin and not ctx.is_manager():
            return f"`/{spec.name}` needs the Manage Server permission."
        if spec.cooldown:
            wait = self.cooldowns.try_acquire((spec.name, ctx.user_id), spec.cooldown)
            if wait > 0:
                return f"Slow down: try `/{spec.name}` again in {wait:.1f} s."
        return None

    async def _run(self, ctx: Interaction, spec: CommandSpec, values: dict[str, Any]) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._watchdog, ctx)
            try:
                await spec.handler(ctx, **values)
            except CompanionError as exc:
                await _answer_error(ctx, str(exc))
            except Exception:
                log.exception("interaction %d (/%s) failed", ctx.id, spec.name)
                await _answer_error(
                    ctx,
                    f"Something went wrong running `/{spec.name}`; it was logged "
                    f"(interaction {ctx.id}).",
                )
            finally:
                await ctx.cancel_between_requests(nursery.cancel_scope)
        if not ctx.answered:
            try:
                await ctx.respond("Done.", ephemeral=True)
            except GatewayError as exc:
                log.warning("interaction %d: could not answer: %s", ctx.id, exc)

    async def _watchdog(self, ctx: Interaction) -> None:
        """Defer before the deadline, then show progress; cancelled when the handler returns."""
        try:
            await trio.sleep_until(ctx.received_at + DEFER_AFTER)
            await ctx.defer()
            while True:
                await trio.sleep(PROGRESS_EVERY)
                elapsed = trio.current_time() - ctx.received_at
                await ctx.show_progress(f"Still working on it… ({elapsed:.0f} s)")
        except GatewayError as exc:
            log.warning("interaction %d: could not acknowledge: %s", ctx.id, exc)

    async def _autocomplete(self, event: InteractionCreate) -> None:
        name, subcommand, options = _command_path(event)
        spec = self._registry.find(name, subcommand)
        focused = next((o for o in options if o.focused), None)
        choices: Sequence[str] = ()
        if spec is not None and focused is not None:
            option = spec.option_by_name.get(focused.name)
            if option is not None and option.autocomplete is not None:
                ctx = Interaction(event, self._rest, spec, admin_user_ids=self._admins)
                with trio.move_on_after(AUTOCOMPLETE_BUDGET):
                    try:
                        choices = await option.autocomplete(ctx, str(focused.value or ""))
                    except Exception:
                        # A boundary: the user gets no suggestions, not a broken command box.
                        log.exception("autocomplete for /%s failed", name)
        data = {"choices": [{"name": c, "value": c} for c in choices[:MAX_AUTOCOMPLETE_CHOICES]]}
        try:
            await self._rest.create_interaction_response(
                event.id, event.token, AUTOCOMPLETE_RESULT, data
            )
        except GatewayError as exc:
            log.warning("autocomplete for /%s not delivered: %s", name, exc)


async def _answer_error(ctx: Interaction, message: str) -> None:
    try:
        await ctx.error(message)
    except GatewayError as exc:
        log.warning("could not tell the user of interaction %d: %s", ctx.id, exc)


def _command_path(event: InteractionCreate) -> tuple[str, str | None, tuple[CommandOption, ...]]:
    data = event.data
    assert data is not None
    options = data.options
    subcommand = None
    while options and options[0].type in (_SUB_COMMAND, _SUB_COMMAND_GROUP):
        subcommand = options[0].name
        options = options[0].options
    return data.name or "", subcommand, options


def _option_dict(option: CommandOption) -> dict[str, Any]:
    return {"name": option.name, "type": option.type, "value": option.value}
