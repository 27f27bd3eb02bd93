"""Follow-up windows on MockClock."""

from __future__ import annotations

import trio
import trio.testing

from trio_companion.services.chat.sessions import Sessions


async def test_window_opens_expires_and_ends(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(1000):
        sessions = Sessions(300)
        assert not sessions.is_open(1)
        sessions.touch(1)
        await trio.sleep(299)
        assert sessions.is_open(1)
        sessions.touch(1)  # a new reply extends it
        await trio.sleep(299)
        assert sessions.is_open(1)
        assert not sessions.is_open(2)
        await trio.sleep(2)
        assert not sessions.is_open(1)
        sessions.touch(1)
        assert sessions.end(1)
        assert not sessions.is_open(1)
        assert not sessions.end(1)
        assert sessions.statistics().open == 0


async def test_zero_window_never_opens(autojump_clock: trio.testing.MockClock) -> None:
    sessions = Sessions(0)
    sessions.touch(1)
    assert not sessions.is_open(1)


async def test_renew_does_not_reopen_an_ended_window(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sessions = Sessions(300)
    sessions.touch(1)
    await trio.sleep(200)
    sessions.renew(1)
    await trio.sleep(200)
    assert sessions.is_open(1)  # renewed at 200 s: open until 500 s
    sessions.end(1)
    sessions.renew(1)
    assert not sessions.is_open(1)
