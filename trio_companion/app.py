"""The composition root: builds every component from the config and owns their lifetimes.

Theory of operation
-------------------
``run`` opens the root nursery and starts, in reading order: storage, the HTTP client and the
Discord REST client, the event dispatcher, the slash-command sync, the gateway, then any extra
components. Each long-running one is started with ``await nursery.start(...)``, so it is really
up before the next one starts, and ``task_status.started(app)`` means the whole app is up (every
shard READY). Storage and the HTTP client are opened outside the components' nursery: they close
(storage flushing last) only after every component has stopped.

Shutdown (see `trio_companion.lifecycle`): the first SIGINT/SIGTERM, or `App.request_shutdown`,
stops new work; in-flight work gets ``config.shutdown_grace`` seconds to finish; then the
components' nursery is cancelled, storage closes, and ``run`` returns exit code 0. A second signal
cancels everything at once (storage still closes, shielded) and ``run`` returns 128 + the signal
number, as a shell reports a process killed by it.
"""

from __future__ import annotations

import logging
import random
import signal
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Final, Protocol, final

import httpx
import trio

from trio_companion.commands import register_all
from trio_companion.commands.ambient import speak_ambient
from trio_companion.commands.reminders import deliver_reminder
from trio_companion.config import Config
from trio_companion.gateway.cache import StateCache
from trio_companion.gateway.client import GatewayClient, TokenRejected, presence_for
from trio_companion.gateway.commands import CommandRegistry
from trio_companion.gateway.dispatch import Dispatcher
from trio_companion.gateway.events import InteractionCreate, VoiceServerUpdate, VoiceStateUpdate
from trio_companion.gateway.interactions import InteractionRouter
from trio_companion.gateway.protocol import default_intents
from trio_companion.gateway.rest import RestClient
from trio_companion.gateway.rest_errors import Unauthorized
from trio_companion.gateway.sync import sync_commands
from trio_companion.gateway.tls import make_ssl_context
from trio_companion.lifecycle import Lifecycle, wait_then_cancel
from trio_companion.services.ambient import AmbientChannels, AmbientPolicy, AmbientRunner
from trio_companion.services.chat.context import DocumentContext, ProfileContext, SearchContext
from trio_companion.services.chat.service import ChatService
from trio_companion.services.chat.sessions import Sessions
from trio_companion.services.chat.writer import EditBudget
from trio_companion.services.llm.factory import (
    make_backend,
    make_limits,
    make_llm_http_client,
    options_from,
)
from trio_companion.services.maintenance import Maintenance
from trio_companion.services.memory import Summarizer
from trio_companion.services.persona import PersonaLibrary
from trio_companion.services.profiles import ProfileLearner
from trio_companion.services.rag import DocumentIndex
from trio_companion.services.reminders.scheduler import ReminderScheduler
from trio_companion.services.search.factory import make_search_provider
from trio_companion.services.speech import make_speaker
from trio_companion.storage import Store, open_store
from trio_companion.voice.manager import VoiceManager

__all__ = ["App", "AppStatistics", "Component", "ComponentFactory", "run"]

log = logging.getLogger(__name__)

# The signals that ask for an orderly shutdown: Ctrl-C and what service managers send.
SHUTDOWN_SIGNALS: Final = (signal.SIGINT, signal.SIGTERM)
# Exit code of a forced shutdown is 128 + signal number, the shell's convention for a kill.
_SIGNAL_EXIT_BASE: Final = 128
# The one HTTP client's timeouts (seconds); the only timeouts of REST calls (STYLE.md 11).
HTTP_TIMEOUT: Final = httpx.Timeout(30.0, connect=10.0)
# Message creates and edits of streamed replies, bot-wide: a fifth of Discord's global 50/s
# (PROTOCOL.md 3.2), leaving room for everything else; 20 conversations get one edit each 2 s.
EDITS_PER_SECOND: Final = 10.0


class Component(Protocol):
    """A long-running part of the app: calls ``task_status.started()`` once really up."""

    def __call__(self, *, task_status: trio.TaskStatus[Any] = ...) -> Awaitable[None]: ...


ComponentFactory = Callable[["App"], Component]


@dataclass(frozen=True, slots=True)
class AppStatistics:
    uptime: float
    stopping: bool
    in_flight: int


@final
class App:
    """What the components share: config, store, lifecycle, Discord clients. Made by `run`."""

    def __init__(
        self,
        config: Config,
        store: Store,
        lifecycle: Lifecycle,
        force_scope: trio.CancelScope,
        http: httpx.AsyncClient,
        ssl_context: ssl.SSLContext,
        llm_http: httpx.AsyncClient,
    ) -> None:
        self.config = config
        self.store = store
        self.lifecycle = lifecycle
        self._started_at = trio.current_time()
        self._force_scope = force_scope
        self.http = http
        discord = config.discord
        self.rest = RestClient(http, token=discord.token, api_url=discord.api_url)
        self.cache = StateCache()
        self.dispatcher = Dispatcher(self.cache)
        self.personas = PersonaLibrary(
            Path(config.chat.personas_dir),
            default_id=config.chat.default_persona,
            settings=store.meta,
        )
        self.llm = make_backend(config.llm, llm_http, make_limits(config.llm))
        self.sessions = Sessions(config.chat.session_window)
        self.search = make_search_provider(config.memory, http)
        self.rag = (
            DocumentIndex(
                store,
                Path(config.memory.documents_dir),
                backend=self.llm if config.memory.embedding_model else None,
                embedding_model=config.memory.embedding_model,
            )
            if config.memory.rag_enabled
            else None
        )
        self.chat = ChatService(
            backend=self.llm,
            store=store,
            personas=self.personas,
            options=options_from(config.llm),
            budget=EditBudget(EDITS_PER_SECOND),
            history_turns=config.chat.history_turns,
            edit_interval=config.chat.stream_edit_interval,
            context_sources=[
                *([DocumentContext(self.rag, k=config.memory.rag_top_k)] if self.rag else []),
                *([ProfileContext(store)] if config.memory.profiles_enabled else []),
                *(
                    [SearchContext(self.search)]
                    if self.search is not None and config.memory.auto_search
                    else []
                ),
            ],
        )
        self.reminders = ReminderScheduler(store.reminders, partial(deliver_reminder, self.rest))
        self.profiles = ProfileLearner(store.profiles, self.llm, options_from(config.llm))
        self.memory = Summarizer(
            store,
            self.llm,
            threshold=config.memory.summarize_after_turns,
            keep_recent=config.chat.history_turns,
            rag=self.rag,
            options=options_from(config.llm),
        )
        self.ambient = AmbientRunner(
            AmbientPolicy(config.ambient, random.Random()),
            partial(speak_ambient, self),
            AmbientChannels(store.meta),
        )
        self.maintenance = Maintenance(
            store,
            retention_days=config.memory.history_retention_days,
            every_hours=config.memory.maintenance_every,
            temp_dir=config.data_path / "tmp",
            temp_max_age_hours=config.memory.temp_file_max_age,
        )
        self.ambient_guilds: dict[int, int] = {}  # channel -> guild, see commands/ambient.py
        self.registry = CommandRegistry()
        register_all(self.registry, self)
        self.router = InteractionRouter(
            self.registry, self.rest, admin_user_ids=discord.admin_user_ids, guard=lifecycle.work
        )
        self.dispatcher.add_listener(InteractionCreate, self.router.handle)
        self.gateway = GatewayClient(
            rest=self.rest,
            token=discord.token,
            intents=default_intents(members=discord.members_intent),
            shard_count=discord.shard_count,
            events=self.dispatcher.sender(),
            ssl_context=ssl_context,
            presence=presence_for(discord.activity),
        )
        self.application_id: int | None = None
        self.speaker = make_speaker(config, llm_http)
        self.voice = VoiceManager(
            gateway=self.gateway,
            user_id=self._own_user_id,
            ssl_context=ssl_context,
            queue_limit=config.voice.queue_limit,
            others_in=self._others_in_voice,
            leave_when_alone=config.voice.leave_when_alone,
        )
        self.dispatcher.add_listener(VoiceStateUpdate, self._voice_state)
        self.dispatcher.add_listener(VoiceServerUpdate, self._voice_server)

    def _others_in_voice(self, guild_id: int, channel_id: int) -> int:
        me = self._own_user_id()
        return sum(user != me for user in self.cache.voice_members(guild_id, channel_id))

    def _own_user_id(self) -> int:
        user = self.cache.user
        return user.id if user is not None else 0

    async def _voice_state(self, event: VoiceStateUpdate) -> None:
        if event.guild_id is not None:
            self.voice.on_voice_state(
                event.guild_id, event.user_id, event.channel_id, event.session_id
            )

    async def _voice_server(self, event: VoiceServerUpdate) -> None:
        self.voice.on_voice_server(event.guild_id, event.token, event.endpoint)

    def request_shutdown(self, reason: str) -> None:
        """Begin an orderly shutdown (idempotent)."""
        self.lifecycle.request_stop(reason)

    def force_shutdown(self, reason: str, exit_code: int = 1) -> None:
        """Cancel everything now (storage still closes); ``run`` returns ``exit_code``."""
        self.lifecycle.force(reason, exit_code)
        self._force_scope.cancel(reason)

    def statistics(self) -> AppStatistics:
        life = self.lifecycle.statistics()
        return AppStatistics(
            uptime=trio.current_time() - self._started_at,
            stopping=life.stopping,
            in_flight=life.in_flight,
        )


async def run(
    config: Config,
    *,
    extra_components: Sequence[ComponentFactory] = (),
    handle_signals: bool = False,
    task_status: trio.TaskStatus[App] = trio.TASK_STATUS_IGNORED,
) -> int:
    """Run the companion until shutdown; return the process exit code.

    ``extra_components`` are started after the built-in ones, in order. ``handle_signals`` (the
    CLI sets it; it needs the main thread) turns SIGINT/SIGTERM into shutdown requests.
    Raises the errors of components that failed (as an exception group, as nurseries do) and
    `trio_companion.storage.StorageError` when the database cannot be opened.
    """
    lifecycle = Lifecycle()
    with trio.CancelScope() as force_scope:
        async with trio.open_nursery() as watchers:
            if handle_signals:
                await watchers.start(_watch_signals, lifecycle, force_scope)
            # Reads certificate files: once, in a thread.
            ssl_context = await trio.to_thread.run_sync(make_ssl_context)
            async with (
                open_store(config.database_path, synchronous=config.storage.synchronous) as store,
                httpx.AsyncClient(verify=ssl_context, timeout=HTTP_TIMEOUT) as http,
                make_llm_http_client(config.llm, ssl_context=ssl_context) as llm_http,
            ):
                app = App(config, store, lifecycle, force_scope, http, ssl_context, llm_http)
                await _run_components(app, extra_components, task_status)
            watchers.cancel_scope.cancel("the app has stopped")
    if lifecycle.forced_exit_code is not None:
        log.warning("trio_companion stopped by force (%s)", lifecycle.reason)
        return lifecycle.forced_exit_code
    log.info("trio_companion stopped (%s)", lifecycle.reason or "done")
    return 0


async def _run_components(
    app: App, factories: Sequence[ComponentFactory], task_status: trio.TaskStatus[App]
) -> None:
    async with trio.open_nursery() as nursery:
        await nursery.start(app.dispatcher.run)
        try:
            application = await app.rest.get_current_application()
        except Unauthorized:
            raise TokenRejected() from None
        app.application_id = application.id
        await sync_commands(
            app.rest,
            app.registry,
            app.store.meta,
            application_id=application.id,
            guild_id=app.config.discord.dev_guild_id,
        )
        await nursery.start(app.personas.run)
        if app.rag is not None:
            await app.rag.reindex()  # logs its report
        await nursery.start(app.gateway.run)
        await nursery.start(app.voice.run)
        nursery.start_soon(app.speaker.warm_up)  # ends once the model is loaded
        await nursery.start(app.profiles.run)
        await nursery.start(app.memory.run)
        await nursery.start(app.ambient.run)
        await nursery.start(app.reminders.run)
        await nursery.start(app.maintenance.run)
        for factory in factories:
            await nursery.start(factory(app))
        log.info("trio_companion ready")
        task_status.started(app)
        await wait_then_cancel(app.lifecycle, app.config.shutdown_grace, nursery.cancel_scope)


async def _watch_signals(
    lifecycle: Lifecycle,
    force_scope: trio.CancelScope,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    with trio.open_signal_receiver(*SHUTDOWN_SIGNALS) as signals:
        task_status.started()
        async for signum in signals:
            name = signal.Signals(signum).name
            if not lifecycle.stopping:
                log.info("received %s: shutting down (send it again to force)", name)
                lifecycle.request_stop(f"received {name}")
            else:
                log.warning("received %s again: forcing shutdown", name)
                lifecycle.force(f"received {name} twice", _SIGNAL_EXIT_BASE + signum)
                force_scope.cancel(f"received {name} twice")
