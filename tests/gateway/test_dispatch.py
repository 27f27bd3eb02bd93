"""The dispatcher: cache first, listeners in bounded tasks, errors contained."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
import trio
import trio.testing

from trio_companion.gateway.cache import StateCache
from trio_companion.gateway.dispatch import Dispatcher
from trio_companion.gateway.events import ChannelCreate, Event, MessageCreate, decode_event


def message(n: int) -> Event:
    data: dict[str, Any] = {
        "id": str(n),
        "channel_id": "5",
        "author": {"id": "30", "username": "bob"},
        "content": f"message {n}",
        "timestamp": "2026-11-28T12:00:00+00:00",
    }
    return decode_event("MESSAGE_CREATE", msgspec.json.encode(data))


async def test_listeners_run_concurrently_but_bounded(
    autojump_clock: trio.testing.MockClock,
) -> None:
    dispatcher = Dispatcher(StateCache(), max_handlers=3)
    running = 0
    peak = 0
    done: list[int] = []
    all_done = trio.Event()

    async def slow(event: MessageCreate) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await trio.sleep(1)
        running -= 1
        done.append(event.id)
        if len(done) == 9:
            all_done.set()

    dispatcher.add_listener(MessageCreate, slow)
    with trio.fail_after(100):
        async with trio.open_nursery() as nursery:
            await nursery.start(dispatcher.run)
            sender = dispatcher.sender()
            start = trio.current_time()
            for n in range(9):
                await sender.send((0, message(n)))
            await all_done.wait()
            elapsed = trio.current_time() - start
            nursery.cancel_scope.cancel()
    assert peak == 3
    assert sorted(done) == list(range(9))
    assert elapsed == pytest.approx(3.0)


async def test_a_failing_listener_is_contained(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    dispatcher = Dispatcher(StateCache())
    seen: list[int] = []

    async def broken(event: MessageCreate) -> None:
        raise RuntimeError("handler bug")

    async def fine(event: MessageCreate) -> None:
        seen.append(event.id)

    dispatcher.add_listener(MessageCreate, broken)
    dispatcher.add_listener(MessageCreate, fine)
    with trio.fail_after(100):
        async with trio.open_nursery() as nursery:
            await nursery.start(dispatcher.run)
            sender = dispatcher.sender()
            await sender.send((0, message(1)))
            await sender.send((0, message(2)))
            await trio.testing.wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()
    assert seen == [1, 2]
    assert dispatcher.statistics().handler_errors == 2
    assert "a handler for MessageCreate failed" in caplog.text


async def test_cache_is_updated_before_listeners_see_the_event(
    autojump_clock: trio.testing.MockClock,
) -> None:
    cache = StateCache()
    dispatcher = Dispatcher(cache)
    names: list[str | None] = []

    async def listener(event: ChannelCreate) -> None:
        info = cache.channel(event.id)
        names.append(info.name if info else None)

    dispatcher.add_listener(ChannelCreate, listener)
    guild = decode_event("GUILD_CREATE", b'{"id": "1", "name": "g"}')
    channel = decode_event(
        "CHANNEL_CREATE", b'{"id": "7", "type": 0, "guild_id": "1", "name": "new"}'
    )
    with trio.fail_after(100):
        async with trio.open_nursery() as nursery:
            await nursery.start(dispatcher.run)
            sender = dispatcher.sender()
            await sender.send((0, guild))
            await sender.send((0, channel))
            await trio.testing.wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()
    assert names == ["new"]
