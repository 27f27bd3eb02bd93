"""The loaded personas, kept in step with the folder, and each guild's choice.

Theory of operation
-------------------
`PersonaLibrary.run` loads the shipped default and every file in ``personas_dir`` in a worker
thread, reports itself started, then every `RELOAD_EVERY` seconds lists the folder (in a thread)
and compares each file's (mtime, size, inode) stamp with the one it loaded. Only added or changed
files are read again; removed files are dropped. So editing a persona takes effect within
`RELOAD_EVERY` seconds, with no restart and no command.

A file that fails to load is logged once (one WARNING per bad version of a file, not one per
check) and listed in `statistics`; if an earlier version of it loaded, that version stays in
use. A bad file never stops the bot. Two files with the same id (``aria.toml`` and ``aria.md``):
the first by name wins, the other is reported as bad.

The shipped default (id ``default``) is always there unless a folder file with that id replaces
it. A guild's choice is stored in the settings under ``guild:{id}:persona`` and cached (only this
library writes that key). `for_guild` falls back from the guild's choice to the configured
``chat.default_persona`` to the default when a choice is missing or its file was deleted.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Final, Protocol, TypeVar, final

import trio

from trio_companion.services.persona.loader import (
    SHIPPED_DEFAULT_ID,
    FileStamp,
    load_persona,
    load_shipped_default,
    scan_folder,
)
from trio_companion.services.persona.model import Persona, PersonaFileError, UnknownPersona

__all__ = [
    "GUILD_PERSONA_KEY",
    "RELOAD_EVERY",
    "BadFile",
    "Offload",
    "PersonaLibrary",
    "PersonaLibraryStatistics",
    "Settings",
    "in_thread",
]

log = logging.getLogger(__name__)

# Seconds between two checks of the folder: an edit shows up "right away" for someone who saved
# a file and then talks to the bot, and a few stat() calls every 2 s cost nothing.
RELOAD_EVERY: Final = 2.0
# The settings key of a guild's chosen persona id.
GUILD_PERSONA_KEY: Final = "guild:{guild_id}:persona"
# How many close matches to suggest for an unknown persona name.
MAX_SUGGESTIONS: Final = 3

_T = TypeVar("_T")


class Settings(Protocol):
    """Key/value strings that survive a restart (`trio_companion.storage.MetaRepository`)."""

    async def get(self, key: str) -> str | None: ...

    async def set(self, key: str, value: str) -> None: ...


class Offload(Protocol):
    """Runs a blocking ``fn()`` away from the trio thread and returns its result."""

    def __call__(self, fn: Callable[[], _T], /) -> Awaitable[_T]: ...


async def in_thread(fn: Callable[[], _T], /) -> _T:
    """The production `Offload`: a worker thread under trio's default limiter, which suits
    small file reads (STYLE.md 12)."""
    return await trio.to_thread.run_sync(fn)


@dataclass(frozen=True, slots=True)
class BadFile:
    path: str
    problem: str


@dataclass(frozen=True, slots=True)
class PersonaLibraryStatistics:
    count: int
    """Personas available, the shipped default included."""
    files: int
    """Persona files seen in the folder, bad ones included."""
    bad_files: tuple[BadFile, ...]
    last_reload: float | None
    """trio.current_time() of the last load that changed something; None before the first."""
    checks: int
    """How many times the folder was listed."""


@dataclass(slots=True)
class _File:
    stamp: FileStamp
    persona: Persona | None  # the last version that loaded, if any
    problem: str | None  # why the current version did not load


@final
class PersonaLibrary:
    """Every persona the companion can play, and which one each guild chose.

    ``offload`` runs the blocking file work; tests may pass one that runs it inline.
    """

    def __init__(
        self,
        personas_dir: Path,
        *,
        default_id: str,
        settings: Settings,
        offload: Offload = in_thread,
    ) -> None:
        self._dir = personas_dir
        self._default_id = default_id.lower()
        self._settings = settings
        self._offload = offload
        self._shipped: Persona | None = None
        self._files: dict[Path, _File] = {}
        self._by_id: dict[str, Persona] = {}
        self._conflicts: dict[Path, str] = {}
        self._guild_choice: dict[int, str | None] = {}
        self._loaded = trio.Event()
        self._reload_lock = trio.Lock()
        self._last_reload: float | None = None
        self._checks = 0
        self._default_missing = False
        self._folder_problem: str | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Load every persona, report started, then follow the folder's changes until
        cancelled. Raises only if the shipped default cannot be loaded (a packaging bug)."""
        await self.reload()
        task_status.started()
        while True:
            await trio.sleep(RELOAD_EVERY)
            await self.reload()

    async def reload(self) -> None:
        """Check the folder now and load what was added or changed (`run` does this
        periodically). Problems are logged, never raised."""
        async with self._reload_lock:
            if self._shipped is None:
                self._shipped = await self._offload(load_shipped_default)
                self._rebuild()
            await self._check_folder()
            self._check_default()
            self._loaded.set()

    def get(self, persona_id: str) -> Persona | None:
        """The persona with this id (case-insensitive), or None."""
        return self._by_id.get(persona_id.lower())

    def all(self) -> list[Persona]:
        """Every available persona, by name."""
        return sorted(self._by_id.values(), key=lambda p: (p.name.casefold(), p.id))

    def find(self, query: str) -> Persona | None:
        """The persona whose id or display name is ``query`` (case-insensitive), or None."""
        wanted = query.strip().casefold()
        found = self._by_id.get(wanted)
        if found is not None:
            return found
        return next((p for p in self.all() if p.name.casefold() == wanted), None)

    def suggest(self, query: str, limit: int = MAX_SUGGESTIONS) -> tuple[str, ...]:
        """Ids of the personas whose id or name is close to ``query``, best first."""
        wanted = query.strip().casefold()
        keys: dict[str, str] = {}
        for persona in self.all():
            keys.setdefault(persona.id, persona.id)
            keys.setdefault(persona.name.casefold(), persona.id)
        ids = [keys[key] for key in keys if wanted and wanted in key]
        ids += [keys[key] for key in difflib.get_close_matches(wanted, keys, n=limit, cutoff=0.5)]
        return tuple(dict.fromkeys(ids))[:limit]

    def default(self) -> Persona:
        """The configured default persona, or the shipped one if that does not exist."""
        if not self._by_id:
            raise RuntimeError("the persona library has not loaded yet")
        return self._by_id.get(self._default_id) or self._by_id[SHIPPED_DEFAULT_ID]

    async def for_guild(self, guild_id: int | None) -> Persona:
        """The persona the guild chose, falling back to the default (also for DMs, and when
        the chosen one was deleted). Waits for the first load. Storage errors propagate."""
        await self._loaded.wait()
        if guild_id is not None:
            chosen = await self._choice(guild_id)
            persona = self._by_id.get(chosen) if chosen is not None else None
            if persona is not None:
                return persona
        return self.default()

    async def set_for_guild(self, guild_id: int, persona_id: str) -> Persona:
        """Make ``persona_id`` the guild's persona (stored; survives restarts). Raises
        `UnknownPersona` if no such persona is loaded."""
        await self._loaded.wait()
        persona = self.get(persona_id)
        if persona is None:
            raise UnknownPersona(persona_id, self.suggest(persona_id))
        await self._settings.set(GUILD_PERSONA_KEY.format(guild_id=guild_id), persona.id)
        self._guild_choice[guild_id] = persona.id
        return persona

    def statistics(self) -> PersonaLibraryStatistics:
        bad = [BadFile(str(path), f.problem) for path, f in self._files.items() if f.problem]
        bad += [BadFile(str(path), problem) for path, problem in self._conflicts.items()]
        return PersonaLibraryStatistics(
            count=len(self._by_id),
            files=len(self._files),
            bad_files=tuple(sorted(bad, key=lambda b: b.path)),
            last_reload=self._last_reload,
            checks=self._checks,
        )

    async def _choice(self, guild_id: int) -> str | None:
        if guild_id not in self._guild_choice:
            stored = await self._settings.get(GUILD_PERSONA_KEY.format(guild_id=guild_id))
            # A set_for_guild that finished while we read wins over what we read.
            self._guild_choice.setdefault(guild_id, stored)
        return self._guild_choice[guild_id]

    async def _check_folder(self) -> None:
        try:
            stamps = await self._offload(partial(scan_folder, self._dir))
        except OSError as exc:
            problem = f"cannot list the personas folder {self._dir}: {exc.strerror or exc}"
            if problem != self._folder_problem:
                log.warning("%s; keeping the personas loaded so far", problem)
            self._folder_problem = problem
            return
        finally:
            self._checks += 1
        self._folder_problem = None
        changed = [
            path
            for path, stamp in sorted(stamps.items())
            if path not in self._files or self._files[path].stamp != stamp
        ]
        removed = [path for path in self._files if path not in stamps]
        if not changed and not removed:
            return
        results = await self._offload(partial(_load_all, changed))
        for path in removed:
            del self._files[path]
            log.info("%s was removed", path)
        for path in changed:
            self._apply(path, stamps[path], results[path])
        self._rebuild()
        self._last_reload = trio.current_time()

    def _apply(self, path: Path, stamp: FileStamp, result: Persona | PersonaFileError) -> None:
        before = self._files.get(path)
        if isinstance(result, Persona):
            self._files[path] = _File(stamp, result, None)
            log.info("%s persona %r from %s", "reloaded" if before else "loaded", result.id, path)
            return
        kept = before.persona if before is not None else None
        self._files[path] = _File(stamp, kept, result.problem)
        if kept is not None:
            log.warning("%s (keeping the version loaded before)", result)
        else:
            log.warning("%s", result)

    def _rebuild(self) -> None:
        assert self._shipped is not None
        by_id = {SHIPPED_DEFAULT_ID: self._shipped}
        owners: dict[str, Path] = {}
        conflicts: dict[Path, str] = {}
        for path, entry in sorted(self._files.items()):
            persona = entry.persona
            if persona is None:
                continue
            if persona.id in owners:
                conflicts[path] = (
                    f"the id {persona.id!r} is also used by {owners[persona.id]}; "
                    "this file is ignored"
                )
                continue
            owners[persona.id] = path
            by_id[persona.id] = persona
        for path, problem in conflicts.items():
            if self._conflicts.get(path) != problem:
                log.warning("%s: %s", path, problem)
        self._conflicts = conflicts
        self._by_id = by_id

    def _check_default(self) -> None:
        missing = self._default_id not in self._by_id
        if missing and not self._default_missing:
            log.warning(
                "chat.default_persona is %r, but %s has no such persona; using the shipped "
                "default persona instead",
                self._default_id,
                self._dir,
            )
        self._default_missing = missing


def _load_all(paths: Iterable[Path]) -> dict[Path, Persona | PersonaFileError]:
    """Load each file (blocking; runs in a worker thread)."""
    results: dict[Path, Persona | PersonaFileError] = {}
    for path in paths:
        try:
            results[path] = load_persona(path)
        except PersonaFileError as exc:
            results[path] = exc
        except Exception as exc:
            # A boundary: a loader bug on one odd file must not stop the bot.
            log.exception("unexpected error loading %s", path)
            results[path] = PersonaFileError(str(path), f"could not be loaded ({exc!r})")
    return results
