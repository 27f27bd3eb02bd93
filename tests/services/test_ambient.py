"""AmbientPolicy and AmbientRunner on trio's MockClock, with seeded random sources.

The policy's ``now`` is read from trio's clock, which the autojump MockClock moves only when
every task sleeps, so times are exact: a lull of 600 s is due at 600.0, not "about then".
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest
import trio
import trio.testing

from trio_companion.config import AmbientConfig
from trio_companion.services.ambient import AmbientPolicy, AmbientRunner, interest_pattern

DEADLINE = 100_000  # simulated seconds; MockClock makes them free
LULL = 600.0
CHANNEL = 10
OTHER = 20
SEED = 1234


def config(**changes: float) -> AmbientConfig:
    values: dict[str, float] = {
        "lull_seconds": LULL,
        "min_interval": 0.0,
        "chance": 1.0,
        "proactive_chance": 1.0,
        "proactive_cooldown": 300.0,
    }
    values.update(changes)
    return AmbientConfig(**values)


def policy(**changes: float) -> AmbientPolicy:
    return AmbientPolicy(config(**changes), random.Random(SEED))


def now() -> float:
    return trio.current_time()


# -- the policy ---------------------------------------------------------------------------------


async def test_lull_timing_is_exact_and_once_per_lull(
    autojump_clock: trio.testing.MockClock,
) -> None:
    ambient = policy()
    ambient.enable(CHANNEL, now())
    start = now()
    assert ambient.lull_deadline(CHANNEL) == start + LULL
    await trio.sleep(LULL - 0.5)
    assert not ambient.lull_due(CHANNEL, now())
    await trio.sleep(0.5)
    assert ambient.lull_due(CHANNEL, now())
    # Never twice in one lull, however long it lasts.
    assert ambient.lull_deadline(CHANNEL) is None
    for _ in range(5):
        await trio.sleep(LULL)
        assert not ambient.lull_due(CHANNEL, now())
    # A human message starts the next lull.
    ambient.on_message(CHANNEL, False, now())
    await trio.sleep(LULL)
    assert ambient.lull_due(CHANNEL, now())


async def test_a_failed_draw_uses_up_the_lull(autojump_clock: trio.testing.MockClock) -> None:
    ambient = policy(chance=0.0)
    ambient.enable(CHANNEL, now())
    await trio.sleep(LULL)
    assert not ambient.lull_due(CHANNEL, now())
    assert ambient.lull_deadline(CHANNEL) is None


async def test_min_interval_is_the_configured_one(autojump_clock: trio.testing.MockClock) -> None:
    # The predecessor doubled its interval (§5.7): here 1800 s means 1800 s.
    ambient = policy(min_interval=1800.0)
    start = now()
    ambient.enable(CHANNEL, start)
    await trio.sleep(LULL)
    assert ambient.lull_due(CHANNEL, now())
    await trio.sleep(100)
    ambient.on_message(CHANNEL, False, now())  # a new lull, due at 1300 by lull_seconds alone
    assert ambient.lull_deadline(CHANNEL) == start + LULL + 1800.0
    await trio.sleep(LULL)
    assert not ambient.lull_due(CHANNEL, now())
    await trio.sleep(start + LULL + 1800.0 - now() - 0.5)
    assert not ambient.lull_due(CHANNEL, now())
    await trio.sleep(0.5)
    assert ambient.lull_due(CHANNEL, now())


async def test_chance_per_lull_with_a_fixed_seed(autojump_clock: trio.testing.MockClock) -> None:
    chance, lulls = 0.3, 2000
    ambient = policy(chance=chance)
    ambient.enable(CHANNEL, now())
    spoken = 0
    for _ in range(lulls):
        await trio.sleep(LULL)
        spoken += ambient.lull_due(CHANNEL, now())
        assert not ambient.lull_due(CHANNEL, now())  # one draw per lull
        await trio.sleep(1)
        ambient.on_message(CHANNEL, False, now())
    assert spoken == 549  # this seed's draws
    sigma = (lulls * chance * (1 - chance)) ** 0.5
    assert abs(spoken - chance * lulls) < 4 * sigma


async def test_bot_messages_neither_start_nor_extend_a_lull(
    autojump_clock: trio.testing.MockClock,
) -> None:
    ambient = policy()
    start = now()
    ambient.enable(CHANNEL, start)
    await trio.sleep(300)
    ambient.on_message(CHANNEL, True, now())  # does not extend
    assert ambient.lull_deadline(CHANNEL) == start + LULL
    await trio.sleep(300)
    assert ambient.lull_due(CHANNEL, now())
    ambient.on_message(CHANNEL, True, now())  # its own remark: no new lull
    await trio.sleep(10 * LULL)
    assert not ambient.lull_due(CHANNEL, now())


async def test_disabled_channels_never_speak(autojump_clock: trio.testing.MockClock) -> None:
    ambient = policy()
    ambient.on_message(OTHER, False, now())  # never enabled
    ambient.enable(CHANNEL, now())
    ambient.disable(CHANNEL)
    await trio.sleep(10 * LULL)
    for channel in (CHANNEL, OTHER):
        assert not ambient.lull_due(channel, now())
        assert not ambient.should_jump_in(channel, "games", ("games",), now())
    assert ambient.next_deadline() is None
    assert ambient.enabled_channels() == []
    ambient.enable(CHANNEL, now())  # re-enabling starts a fresh lull
    assert ambient.lull_deadline(CHANNEL) == now() + LULL


@pytest.mark.parametrize(
    ("text", "matches"),
    [
        ("I love Games!", True),
        ("GAMES", True),
        ("games, anyone?", True),
        ("any speed   runs today", True),
        ("(speed runs)", True),
        ("gamesmaster", False),
        ("endgames", False),
        ("speed", False),
        ("", False),
    ],
)
def test_interests_match_whole_words_ignoring_case(text: str, matches: bool) -> None:
    pattern = interest_pattern(("games", "speed runs", "c++"))
    assert pattern is not None
    assert (pattern.search(text) is not None) is matches


def test_no_interests_no_pattern() -> None:
    assert interest_pattern(()) is None
    assert interest_pattern(("  ",)) is None


async def test_jump_in_cooldown(autojump_clock: trio.testing.MockClock) -> None:
    ambient = policy(proactive_cooldown=300.0)
    ambient.enable(CHANNEL, now())
    interests = ("games",)
    assert ambient.should_jump_in(CHANNEL, "new games out", interests, now())
    await trio.sleep(299.5)
    assert not ambient.should_jump_in(CHANNEL, "more games", interests, now())
    await trio.sleep(0.5)
    assert ambient.should_jump_in(CHANNEL, "more games", interests, now())
    # The cooldown is per channel.
    ambient.enable(OTHER, now())
    assert ambient.should_jump_in(OTHER, "games", interests, now())


async def test_jump_in_draws_only_for_a_matching_message_after_the_cooldown(
    autojump_clock: trio.testing.MockClock,
) -> None:
    rng = random.Random(SEED)
    ambient = AmbientPolicy(config(proactive_chance=0.25, proactive_cooldown=0.0), rng)
    ambient.enable(CHANNEL, now())
    state = rng.getstate()
    assert not ambient.should_jump_in(CHANNEL, "the weather", ("games",), now())
    assert not ambient.should_jump_in(CHANNEL, "games", (), now())
    assert rng.getstate() == state  # no draw spent
    answered = sum(
        ambient.should_jump_in(CHANNEL, "games?", ("games",), now()) for _ in range(1000)
    )
    assert answered == 223  # this seed's draws
    assert abs(answered - 250) < 4 * (1000 * 0.25 * 0.75) ** 0.5


# -- the runner ---------------------------------------------------------------------------------


@dataclass
class MemoryChannels:
    """The opt-in store, in memory."""

    enabled: set[int] = field(default_factory=set)

    async def load(self) -> list[int]:
        return sorted(self.enabled)

    async def set(self, channel_id: int, enabled: bool) -> None:
        if enabled:
            self.enabled.add(channel_id)
        else:
            self.enabled.discard(channel_id)


@dataclass
class Recorder:
    """The runner's ``speak``: records (channel, time); takes ``duration`` s; fails on demand."""

    spoken: list[tuple[int, float]] = field(default_factory=list)
    duration: float = 0.0
    failing: bool = False
    running: int = 0
    most_running: int = 0

    async def __call__(self, channel_id: int) -> None:
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            self.spoken.append((channel_id, trio.current_time()))
            await trio.sleep(self.duration)
            if self.failing:
                raise RuntimeError("the model is down")
        finally:
            self.running -= 1


async def start_runner(
    nursery: trio.Nursery,
    enabled: Sequence[int] = (CHANNEL,),
    speak: Recorder | None = None,
    **changes: float,
) -> tuple[AmbientRunner, Recorder, MemoryChannels]:
    recorder = speak or Recorder()
    channels = MemoryChannels(set(enabled))
    runner = AmbientRunner(policy(**changes), recorder, channels)
    await nursery.start(runner.run)
    return runner, recorder, channels


async def test_runner_sleeps_until_the_deadline(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            start = now()
            runner, recorder, _ = await start_runner(nursery)
            await trio.sleep(20 * LULL)
            assert recorder.spoken == [(CHANNEL, start + LULL)]
            # One wake-up, at the deadline: no polling, and nothing after the lull was used.
            stats = runner.statistics()
            assert stats.wakeups == 1
            assert stats.remarks == 1
            assert stats.next_deadline is None
            nursery.cancel_scope.cancel()


async def test_activity_postpones(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            start = now()
            runner, recorder, _ = await start_runner(nursery)
            await trio.sleep(300)
            runner.on_message(CHANNEL, author_is_bot=False)
            assert runner.statistics().next_deadline == start + LULL  # not woken for a delay
            await trio.sleep(400)
            runner.on_message(CHANNEL, author_is_bot=True)  # a bot's message: no delay
            await trio.sleep(20 * LULL)
            assert recorder.spoken == [(CHANNEL, start + 300 + LULL)]
            # At the old deadline (nothing due), then at the new one.
            assert runner.statistics().wakeups == 2
            # The next human message starts a lull the runner is woken for.
            runner.on_message(CHANNEL, author_is_bot=False)
            again = now()
            await trio.sleep(2 * LULL)
            assert recorder.spoken[-1] == (CHANNEL, again + LULL)
            assert runner.statistics().wakeups == 4
            nursery.cancel_scope.cancel()


async def test_enable_wakes_an_idle_runner_and_disable_stops(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            runner, recorder, channels = await start_runner(nursery, enabled=())
            await trio.sleep(5 * LULL)
            assert runner.statistics().wakeups == 0
            await runner.enable(CHANNEL)
            assert channels.enabled == {CHANNEL}
            enabled_at = now()
            await trio.sleep(2 * LULL)
            assert recorder.spoken == [(CHANNEL, enabled_at + LULL)]
            runner.on_message(CHANNEL, author_is_bot=False)
            await trio.sleep(LULL / 2)
            await runner.disable(CHANNEL)
            assert channels.enabled == set()
            await trio.sleep(20 * LULL)
            assert len(recorder.spoken) == 1
            assert runner.statistics().enabled_channels == 0
            nursery.cancel_scope.cancel()


async def test_opt_ins_are_loaded_at_start(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            start = now()
            runner, recorder, _ = await start_runner(nursery, enabled=(CHANNEL, OTHER))
            assert runner.is_enabled(OTHER)
            runner.on_message(OTHER, author_is_bot=False)
            await trio.sleep(100)
            runner.on_message(OTHER, author_is_bot=False)
            await trio.sleep(20 * LULL)
            assert recorder.spoken == [(CHANNEL, start + LULL), (OTHER, start + 100 + LULL)]
            nursery.cancel_scope.cancel()


async def test_one_remark_at_a_time_per_channel_and_failures_are_survived(
    autojump_clock: trio.testing.MockClock,
) -> None:
    slow = Recorder(duration=LULL * 3, failing=True)
    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            start = now()
            runner, recorder, _ = await start_runner(nursery, speak=slow)
            await trio.sleep(LULL + 1)
            # A new lull begins and passes while the first remark is still being written.
            runner.on_message(CHANNEL, author_is_bot=False)
            await trio.sleep(LULL * 3 - 10)
            assert recorder.spoken == [(CHANNEL, start + LULL)]
            await trio.sleep(20)
            # Once it failed, at once, the due lull gets its remark.
            assert recorder.spoken[1] == (CHANNEL, start + LULL * 4)
            assert recorder.most_running == 1
            assert runner.statistics().failures == 1
            nursery.cancel_scope.cancel()
