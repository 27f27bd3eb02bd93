"""The whole app started inside a test nursery: startup, shutdown, in-flight work, signals.

These run on the real clock: the app's storage works in threads, and MockClock's autojump would
treat a task waiting for a thread as idle. Nothing here sleeps; timed behaviour of the shutdown
protocol is tested on MockClock in test_lifecycle.py.
"""

from __future__ import annotations

import signal
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from tests.fakes.discord import FakeDiscord
from trio_companion import app as app_module
from trio_companion.app import App, Component
from trio_companion.config import Config
from trio_companion.storage import StorageOpenError

DEADLINE = 20


@pytest.fixture
def config(fake_discord: FakeDiscord, tmp_path: Path) -> Config:
    """The app's configuration, pointing at the fake Discord."""
    return fake_discord.config(tmp_path / "data")


async def start_app(nursery: trio.Nursery, config: Config, **kwargs: Any) -> tuple[App, list[int]]:
    """Start the app in ``nursery``; the list receives ``run``'s exit code when it returns."""
    codes: list[int] = []

    async def runner(*, task_status: trio.TaskStatus[App]) -> None:
        codes.append(await app_module.run(config, task_status=task_status, **kwargs))

    started: App = await nursery.start(runner)
    return started, codes


def component(body: Callable[[App], Awaitable[None]]) -> Callable[[App], Component]:
    """A component whose task runs ``body(app)`` after reporting itself started."""

    def factory(app: App) -> Component:
        async def run(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            task_status.started()
            await body(app)

        return run

    return factory


async def test_starts_and_stops_cleanly(config: Config) -> None:
    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            app, codes = await start_app(nursery, config)
            await app.store.meta.set("greeting", "hello")
            assert app.statistics().stopping is False
            app.request_shutdown("test over")
    assert codes == [0]
    # The database was closed and what was acknowledged is there for a new reader.
    with sqlite3.connect(config.database_path) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'greeting'").fetchone() == (
            "hello",
        )


async def test_cancelling_the_parent_stops_the_app(config: Config) -> None:
    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            app, codes = await start_app(nursery, config)
            await app.store.meta.set("k", "v")
            nursery.cancel_scope.cancel()
    assert codes == []  # cancelled, not returned
    with sqlite3.connect(config.database_path) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'k'").fetchone() == ("v",)


async def test_in_flight_work_finishes_and_is_stored(config: Config) -> None:
    """Work in flight when shutdown begins completes, and its write is durable."""
    release = trio.Event()

    async def worker(app: App) -> None:
        with app.lifecycle.work("reply"):
            await release.wait()
            await app.store.meta.set("reply", "delivered")
        await trio.sleep_forever()

    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            app, codes = await start_app(nursery, config, extra_components=[component(worker)])
            await trio.testing.wait_all_tasks_blocked()
            app.request_shutdown("test")
            await trio.testing.wait_all_tasks_blocked()
            assert app.statistics().in_flight == 1
            release.set()
    assert codes == [0]
    with sqlite3.connect(config.database_path) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'reply'").fetchone() == (
            "delivered",
        )


async def test_forced_shutdown_abandons_work_and_still_closes_storage(config: Config) -> None:
    cancelled = trio.Event()
    waiting = trio.Event()

    async def stuck(app: App) -> None:
        with app.lifecycle.work("stuck"):
            await app.store.meta.set("before", "1")
            try:
                waiting.set()
                await trio.sleep_forever()
            finally:
                cancelled.set()

    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            app, codes = await start_app(nursery, config, extra_components=[component(stuck)])
            # Not wait_all_tasks_blocked: a task waiting for a storage thread counts as blocked.
            await waiting.wait()
            app.request_shutdown("test")
            app.force_shutdown("impatient", exit_code=7)
    assert cancelled.is_set()
    assert codes == [7]
    with sqlite3.connect(config.database_path) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'before'").fetchone() == ("1",)


async def test_a_crashing_component_stops_the_app_with_its_error(config: Config) -> None:

    async def crash(app: App) -> None:
        await app.store.meta.set("seen", "yes")
        raise RuntimeError("boom")

    with (
        trio.fail_after(DEADLINE),
        pytest.RaisesGroup(pytest.RaisesExc(RuntimeError, match="boom"), flatten_subgroups=True),
    ):
        await app_module.run(config, extra_components=[component(crash)])
    with sqlite3.connect(config.database_path) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'seen'").fetchone() == ("yes",)


async def test_unusable_database_is_a_clear_error(config: Config) -> None:
    config.database_path.parent.mkdir(parents=True)
    config.database_path.write_bytes(b"this is not a database" * 100)
    with (
        trio.fail_after(DEADLINE),
        pytest.RaisesGroup(
            pytest.RaisesExc(StorageOpenError, match="not a SQLite database"),
            flatten_subgroups=True,
            allow_unwrapped=True,
        ),
    ):
        await app_module.run(config)


async def test_signals_shut_down_then_force(config: Config) -> None:
    """SIGTERM asks for an orderly stop; a second one forces it (exit 128 + 15)."""

    async def busy(app: App) -> None:
        with app.lifecycle.work("long job"):
            await trio.sleep_forever()

    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            app, codes = await start_app(
                nursery, config, handle_signals=True, extra_components=[component(busy)]
            )
            await trio.testing.wait_all_tasks_blocked()
            signal.raise_signal(signal.SIGTERM)
            await app.lifecycle.wait_stopping()
            assert app.lifecycle.reason == "received SIGTERM"
            assert codes == []  # the job is still in flight: no exit yet
            signal.raise_signal(signal.SIGTERM)
    assert codes == [128 + signal.SIGTERM]


async def test_whole_app_against_the_fake_discord(
    config: Config, fake_discord: FakeDiscord
) -> None:
    """Start, sync commands, come online, answer a slash command, shut down cleanly."""
    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            app, codes = await start_app(nursery, config)
            commands = {c["name"] for c in fake_discord.rest.global_commands}
            assert "ping" in commands
            connection = fake_discord.gateway.connections[0]
            assert connection.identified
            interaction = await fake_discord.interact("ping")
            await fake_discord.wait_answered(interaction)
            assert interaction.callback_type == 4
            assert interaction.original is not None
            assert interaction.original["content"].startswith("Pong!")
            app.request_shutdown("test over")
    assert codes == [0]
    assert connection.closed_code == 1000
    assert fake_discord.gateway.errors == []


async def test_restart_does_not_resync_unchanged_commands(
    config: Config, fake_discord: FakeDiscord
) -> None:
    # The second run identifies within 5 s of the first: a fresh process does not know.
    fake_discord.gateway.max_concurrency = 2
    with trio.fail_after(DEADLINE):
        for _ in range(2):
            async with trio.open_nursery() as nursery:
                app, _ = await start_app(nursery, config)
                app.request_shutdown("restart")
    puts = [r for r in fake_discord.rest.requests if r.method == "PUT"]
    assert len(puts) == 1


async def test_two_shards_and_guild_scoped_commands(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    """shard_count = 2: two connections identify as [0, 2] and [1, 2]; dev_guild_id syncs the
    commands to that guild only."""
    config = fake_discord.config(tmp_path / "data", shard_count=2, dev_guild_id=42)
    fake_discord.allow_concurrent_identifies(2)
    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            app, codes = await start_app(nursery, config)
            identifies = [c.identify for c in fake_discord.gateway.connections]
            shards = sorted(i["shard"] for i in identifies if i is not None)
            assert shards == [[0, 2], [1, 2]]
            assert len(app.gateway.statistics().shards) == 2
            app.request_shutdown("test over")
    assert codes == [0]
    assert "ping" in {c["name"] for c in fake_discord.rest.guild_commands[42]}
    assert fake_discord.rest.global_commands == []


async def test_auto_shard_count_follows_discord(fake_discord: FakeDiscord, config: Config) -> None:
    fake_discord.rest.shards = 3
    fake_discord.allow_concurrent_identifies(3)
    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            app, _ = await start_app(nursery, config)
            assert len(fake_discord.gateway.connections) == 3
            app.request_shutdown("test over")
