"""Periodic housekeeping: trim old chat history and remove stale temporary files.

Theory of operation
-------------------
`Maintenance.run` calls ``task_status.started()`` at once, then runs one pass and sleeps
``every_hours`` on trio's clock, forever. A pass (`Maintenance.run_once`):

1. deletes every history turn whose ``created_at`` (unix seconds) is older than
   ``retention_days`` before now, read on the wall clock (``time.time()``), in one transaction;
2. in a worker thread (small file I/O: trio's default limiter), deletes the regular files
   directly in ``temp_dir`` whose modification time is older than ``temp_max_age_hours``.
   Subfolders and symlinks are left alone and never followed, so nothing outside the folder is
   touched; a missing folder counts as empty. A file that cannot be removed is logged and
   skipped;
3. logs a one-line report and updates `statistics`.

A pass that raises (the store refuses, the folder is unreadable) is logged and counted as
failed; the next pass still runs at its time, so the interval is the retry backoff.
Cancellation: a history delete already in its thread commits or rolls back before the
cancellation arrives (see `trio_companion.storage.db`); the file sweep likewise finishes.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, final

import trio

if TYPE_CHECKING:
    from pathlib import Path

    from trio_companion.storage import Store

__all__ = ["Maintenance", "MaintenanceStatistics", "PassReport"]

log = logging.getLogger(__name__)

_SECONDS_PER_HOUR: Final = 3600.0
_SECONDS_PER_DAY: Final = 86_400.0


@final
@dataclass(frozen=True, slots=True)
class PassReport:
    """What one maintenance pass removed."""

    turns_deleted: int
    files_deleted: int


@final
@dataclass(frozen=True, slots=True)
class MaintenanceStatistics:
    passes: int
    """Passes finished since start, failed ones included."""
    failed_passes: int
    turns_deleted: int
    """History turns deleted since start."""
    files_deleted: int
    """Temporary files deleted since start."""
    last_pass_at: float | None
    """Wall-clock time (unix seconds) the last pass finished; None before the first."""


@final
class Maintenance:
    """Deletes history older than `retention_days` and files in `temp_dir` older than
    `temp_max_age_hours`, once at start and then every `every_hours`.

    Raises `ValueError` when an interval or age is not positive.
    """

    def __init__(
        self,
        store: Store,
        *,
        retention_days: float,
        every_hours: float,
        temp_dir: Path,
        temp_max_age_hours: float,
    ) -> None:
        for name, value in (
            ("retention_days", retention_days),
            ("every_hours", every_hours),
            ("temp_max_age_hours", temp_max_age_hours),
        ):
            if not value > 0:
                raise ValueError(f"{name} must be more than 0, not {value}")
        self._store = store
        self._retention_s = retention_days * _SECONDS_PER_DAY
        self._every_s = every_hours * _SECONDS_PER_HOUR
        self._temp_dir = temp_dir
        self._temp_max_age_s = temp_max_age_hours * _SECONDS_PER_HOUR
        self._passes = 0
        self._failed = 0
        self._turns_deleted = 0
        self._files_deleted = 0
        self._last_pass_at: float | None = None
        self._pass_done = trio.Event()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run a pass now and then every `every_hours`, until cancelled; never returns."""
        task_status.started()
        while True:
            try:
                await self.run_once()
            except Exception:
                # A boundary: the next pass, one interval later, is the retry.
                log.exception("maintenance pass failed; the next one runs in %.0f s", self._every_s)
            await trio.sleep(self._every_s)

    async def run_once(self) -> PassReport:
        """Run one pass now and return what it removed; raises what the store or the file
        system raised (the pass then counts as failed; what was removed before stays counted)."""
        started = trio.current_time()
        try:
            cutoff = time.time() - self._retention_s
            turns = await self._store.history.delete_older_than(cutoff)
            self._turns_deleted += turns
            files = await trio.to_thread.run_sync(
                _remove_stale_files, self._temp_dir, time.time() - self._temp_max_age_s
            )
            self._files_deleted += files
        except Exception:
            self._failed += 1
            raise
        finally:
            self._passes += 1
            self._last_pass_at = time.time()
            self._pass_done.set()
            self._pass_done = trio.Event()
        log.info(
            "maintenance: deleted %d history turns and %d temporary files in %.2f s",
            turns,
            files,
            trio.current_time() - started,
        )
        return PassReport(turns_deleted=turns, files_deleted=files)

    async def wait_passes(self, count: int) -> None:
        """Return once `count` passes in all have finished (``statistics().passes``)."""
        while self._passes < count:
            await self._pass_done.wait()

    def statistics(self) -> MaintenanceStatistics:
        return MaintenanceStatistics(
            passes=self._passes,
            failed_passes=self._failed,
            turns_deleted=self._turns_deleted,
            files_deleted=self._files_deleted,
            last_pass_at=self._last_pass_at,
        )


def _remove_stale_files(folder: Path, cutoff: float) -> int:
    """Delete regular files directly in `folder` last modified before `cutoff` (unix seconds);
    return how many. Blocking: runs in a worker thread."""
    try:
        entries = os.scandir(folder)
    except FileNotFoundError:
        return 0
    removed = 0
    with entries:
        for entry in entries:
            try:
                # lstat-based: a symlink is neither a file here nor followed.
                if not entry.is_file(follow_symlinks=False):
                    continue
                if entry.stat(follow_symlinks=False).st_mtime >= cutoff:
                    continue
                # unlink removes a name, never a symlink's target, even if the entry was
                # swapped for a symlink since the check.
                os.unlink(entry.path)
            except FileNotFoundError:
                continue  # removed by someone else meanwhile
            except OSError as exc:
                log.warning("maintenance: cannot remove %s: %s", entry.path, exc)
                continue
            removed += 1
    return removed
