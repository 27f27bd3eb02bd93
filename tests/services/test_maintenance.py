"""Maintenance against the real store and a real temporary folder, on the real clock.

Storage works in worker threads, which MockClock's autojump would take for idleness, so the
schedule is tested on the real clock with a pass every ~0.1 s, waiting on `wait_passes`.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

import msgspec
import pytest
import trio

from tests.storage.helpers import make_turn
from trio_companion.services.maintenance import Maintenance
from trio_companion.storage import Store, open_store

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

DEADLINE = 10
DAY = 86_400.0
HOUR = 3600.0


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with open_store(tmp_path / "db.sqlite3") as opened:
        yield opened


def _maintenance(store: Store, temp_dir: Path, *, every_hours: float = 6.0) -> Maintenance:
    return Maintenance(
        store, retention_days=30, every_hours=every_hours, temp_dir=temp_dir, temp_max_age_hours=24
    )


def _file(path: Path, age_s: float) -> Path:
    path.write_text("x")
    stamp = time.time() - age_s
    os.utime(path, (stamp, stamp))
    return path


async def test_a_pass_deletes_old_turns_and_old_temp_files_only(
    store: Store, tmp_path: Path
) -> None:
    now = time.time()
    turns = [
        msgspec.structs.replace(make_turn(channel_id=7, content=name), created_at=now - age)
        for name, age in [("old", 31 * DAY), ("older", 400 * DAY), ("new", 29 * DAY), ("now", 0)]
    ]
    temp = tmp_path / "tmp"
    temp.mkdir()
    _file(temp / "stale.wav", 25 * HOUR)
    _file(temp / "fresh.wav", 23 * HOUR)
    (temp / "sub").mkdir()
    _file(temp / "sub" / "stale-in-sub.wav", 25 * HOUR)
    outside = _file(tmp_path / "outside.wav", 25 * HOUR)
    (temp / "link-out").symlink_to(outside)
    (temp / "link-dir").symlink_to(tmp_path, target_is_directory=True)
    maintenance = _maintenance(store, temp)
    with trio.fail_after(DEADLINE):
        await store.history.append_many(turns)
        report = await maintenance.run_once()
        left = await store.history.recent(7, 10)
    assert report.turns_deleted == 2
    assert report.files_deleted == 1
    assert [turn.content for turn in left] == ["new", "now"]
    assert sorted(p.name for p in temp.iterdir()) == ["fresh.wav", "link-dir", "link-out", "sub"]
    assert (temp / "sub" / "stale-in-sub.wav").exists()
    assert outside.exists()
    stats = maintenance.statistics()
    assert (stats.passes, stats.failed_passes, stats.turns_deleted, stats.files_deleted) == (
        1,
        0,
        2,
        1,
    )
    assert stats.last_pass_at is not None
    assert stats.last_pass_at >= now


async def test_a_missing_temp_folder_is_fine(store: Store, tmp_path: Path) -> None:
    maintenance = _maintenance(store, tmp_path / "never-made")
    with trio.fail_after(DEADLINE):
        report = await maintenance.run_once()
    assert (report.turns_deleted, report.files_deleted) == (0, 0)
    assert not (tmp_path / "never-made").exists()


async def test_run_passes_at_start_and_then_every_interval(store: Store, tmp_path: Path) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    maintenance = _maintenance(store, temp, every_hours=0.1 / HOUR)
    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            await nursery.start(maintenance.run)
            await maintenance.wait_passes(1)
            # A file that goes stale after the first pass is removed by a later one.
            stale = _file(temp / "stale.wav", 25 * HOUR)
            passes = maintenance.statistics().passes
            await maintenance.wait_passes(passes + 2)
            nursery.cancel_scope.cancel()
    assert not stale.exists()
    assert maintenance.statistics().files_deleted == 1
    assert maintenance.statistics().failed_passes == 0


async def test_a_failing_pass_is_logged_and_the_next_one_still_runs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A file where the folder should be: scanning it fails until it is replaced by a folder.
    temp = tmp_path / "tmp"
    temp.write_text("not a folder")
    with trio.fail_after(DEADLINE):
        async with open_store(tmp_path / "db.sqlite3") as store, trio.open_nursery() as nursery:
            maintenance = _maintenance(store, temp, every_hours=0.1 / HOUR)
            await nursery.start(maintenance.run)
            await maintenance.wait_passes(1)
            assert maintenance.statistics().failed_passes >= 1
            temp.unlink()
            temp.mkdir()
            failed = maintenance.statistics().failed_passes
            await maintenance.wait_passes(maintenance.statistics().passes + 2)
            nursery.cancel_scope.cancel()
    stats = maintenance.statistics()
    assert stats.failed_passes == failed
    assert stats.passes >= failed + 2
    assert "maintenance pass failed" in caplog.text


async def test_intervals_must_be_positive(store: Store, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="every_hours"):
        _maintenance(store, tmp_path, every_hours=0)
