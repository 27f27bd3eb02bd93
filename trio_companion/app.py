"""The composition root: builds every component from the config and owns their lifetimes.

Theory of operation
-------------------
``run`` opens the root nursery and starts, in reading order, each component with
``await nursery.start(...)``, so a component is really up before the next one starts and
``task_status.started(app)`` means the whole app is up. Storage is opened outside the components'
nursery: it closes (and flushes) only after every component has stopped.

Shutdown (see `trio_companion.lifecycle`): the first SIGINT/SIGTERM, or `App.request_shutdown`,
stops new work; in-flight work gets ``config.shutdown_grace`` seconds to finish; then the
components' nursery is cancelled, storage closes, and ``run`` returns exit code 0. A second signal
cancels everything at once (storage still closes, shielded) and ``run`` returns 128 + the signal
number, as a shell reports a process killed by it.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol, final

import trio

from trio_companion.config import Config
from trio_companion.lifecycle import Lifecycle, wait_then_cancel
from trio_companion.storage import Store, open_store

__all__ = ["App", "AppStatistics", "Component", "ComponentFactory", "run"]

log = logging.getLogger(__name__)

# The signals that ask for an orderly shutdown: Ctrl-C and what service managers send.
SHUTDOWN_SIGNALS: Final = (signal.SIGINT, signal.SIGTERM)
# Exit code of a forced shutdown is 128 + signal number, the shell's convention for a kill.
_SIGNAL_EXIT_BASE: Final = 128


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
    """What the components share: the config, the store, the lifecycle. Made only by `run`."""

    def __init__(
        self, config: Config, store: Store, lifecycle: Lifecycle, force_scope: trio.CancelScope
    ) -> None:
        self.config = config
        self.store = store
        self.lifecycle = lifecycle
        self._started_at = trio.current_time()
        self._force_scope = force_scope

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
            async with open_store(
                config.database_path, synchronous=config.storage.synchronous
            ) as store:
                app = App(config, store, lifecycle, force_scope)
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
