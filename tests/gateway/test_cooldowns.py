"""Per-user cooldowns on MockClock."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from trio_companion.gateway.cooldowns import Cooldowns


async def test_cooldown_per_key(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        cooldowns = Cooldowns()
        assert cooldowns.try_acquire(("chat", 1), 3.0) == 0.0
        await trio.sleep(0.6)
        assert cooldowns.try_acquire(("chat", 1), 3.0) == pytest.approx(2.4)
        assert cooldowns.try_acquire(("chat", 2), 3.0) == 0.0
        assert cooldowns.try_acquire(("ask", 1), 3.0) == 0.0
        await trio.sleep(2.4)
        assert cooldowns.try_acquire(("chat", 1), 3.0) == 0.0
        assert cooldowns.statistics().tracked == 3
