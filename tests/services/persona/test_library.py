"""The persona library: loading, per-guild choice, fallbacks and hot reload.

Loading and the per-guild choice run on the real clock with real worker threads and, where a
store is involved, the real SQLite store (MockClock's autojump would treat a task waiting for a
thread as idle). The hot-reload timing tests run on MockClock; there the library's blocking
file work runs inline (`inline`) and guild choices live in `MemorySettings`, a fake of the
library's own two-method settings interface.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

import pytest
import trio
import trio.testing

from trio_companion.services.persona import (
    RELOAD_EVERY,
    BadFile,
    PersonaLibrary,
    UnknownPersona,
    load_shipped_default,
)
from trio_companion.services.persona.library import Offload, in_thread
from trio_companion.storage import open_store

DEADLINE = 20
LOGGER = "trio_companion.services.persona.library"
SHIPPED_NAME = load_shipped_default().name

_T = TypeVar("_T")


def persona_toml(name: str, prompt: str = "Be nice.") -> str:
    return f'name = "{name}"\ndescription = "About {name}"\nsystem_prompt = "{prompt}"\n'


def persona_md(name: str) -> str:
    return f'+++\nname = "{name}"\n+++\nYou are {name}.\n'


def edit(path: Path, text: str) -> None:
    """Write ``text`` and move the mtime clearly forward: a real edit a second later."""
    previous = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text, encoding="utf-8")
    stamp = max(path.stat().st_mtime_ns, previous + 1_000_000_000)
    os.utime(path, ns=(stamp, stamp))


class MemorySettings:
    """The library's settings interface, in memory."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    async def get(self, key: str) -> str | None:
        return self.values.get(key)

    async def set(self, key: str, value: str) -> None:
        self.values[key] = value


async def inline(fn: Callable[[], _T], /) -> _T:
    """Run the blocking work right here (tests on MockClock only: the files are tiny)."""
    return fn()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    folder = tmp_path / "personas"
    folder.mkdir()
    edit(folder / "aria.toml", persona_toml("Aria"))
    edit(folder / "sage.md", persona_md("Sage"))
    return folder


@asynccontextmanager
async def running(
    folder: Path,
    *,
    default_id: str = "default",
    settings: MemorySettings | None = None,
    offload: Offload = in_thread,
) -> AsyncIterator[PersonaLibrary]:
    library = PersonaLibrary(
        folder, default_id=default_id, settings=settings or MemorySettings(), offload=offload
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(library.run)
        yield library
        nursery.cancel_scope.cancel()


def warnings_about(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == LOGGER and r.levelno == logging.WARNING and text in r.getMessage()
    ]


# --- loading (real clock, real threads) --------------------------------------------------------


async def test_initial_load(folder: Path, caplog: pytest.LogCaptureFixture) -> None:
    edit(folder / "broken.toml", 'name = "Broken"\n')
    with trio.fail_after(DEADLINE):
        async with running(folder) as library:
            ids = sorted(p.id for p in library.all())
            assert ids == ["aria", "default", "sage"]
            aria = library.get("ARIA")
            assert aria is not None
            assert aria.name == "Aria"
            assert library.get("broken") is None
            assert library.get("nobody") is None
            stats = library.statistics()
            assert stats.count == 3
            assert stats.files == 3
            assert stats.bad_files == (
                BadFile(str(folder / "broken.toml"), "system_prompt is missing"),
            )
            assert stats.last_reload is not None
            assert (await library.for_guild(None)).name == SHIPPED_NAME
    assert warnings_about(caplog, f"{folder / 'broken.toml'}: system_prompt is missing")


async def test_all_is_sorted_by_name(tmp_path: Path) -> None:
    edit(tmp_path / "zed.toml", persona_toml("Alice"))
    edit(tmp_path / "amy.toml", persona_toml("Zoe"))
    with trio.fail_after(DEADLINE):
        async with running(tmp_path) as library:
            names = [p.name for p in library.all()]
    assert names == sorted(names, key=str.casefold)


async def test_missing_folder_means_just_the_default(tmp_path: Path) -> None:
    with trio.fail_after(DEADLINE):
        async with running(tmp_path / "nowhere") as library:
            assert [p.id for p in library.all()] == ["default"]
            assert (await library.for_guild(123)).name == SHIPPED_NAME
            assert library.statistics().bad_files == ()


async def test_a_folder_file_replaces_the_shipped_default(folder: Path) -> None:
    edit(folder / "default.toml", persona_toml("House"))
    with trio.fail_after(DEADLINE):
        async with running(folder) as library:
            assert (await library.for_guild(None)).name == "House"
            assert library.statistics().count == 3


async def test_configured_default_is_used(folder: Path) -> None:
    with trio.fail_after(DEADLINE):
        async with running(folder, default_id="Sage") as library:
            assert (await library.for_guild(None)).id == "sage"
            assert (await library.for_guild(5)).id == "sage"


async def test_missing_configured_default_warns_and_uses_the_shipped_one(
    folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with trio.fail_after(DEADLINE):
        async with running(folder, default_id="ghost") as library:
            assert (await library.for_guild(None)).id == "default"
            await library.reload()
    assert len(warnings_about(caplog, "chat.default_persona is 'ghost'")) == 1


async def test_two_files_with_one_id(folder: Path, caplog: pytest.LogCaptureFixture) -> None:
    edit(folder / "aria.md", persona_md("Other Aria"))
    with trio.fail_after(DEADLINE):
        async with running(folder) as library:
            aria = library.get("aria")
            assert aria is not None
            assert aria.name == "Other Aria"  # aria.md sorts before aria.toml
            (bad,) = library.statistics().bad_files
            assert bad.path == str(folder / "aria.toml")
            assert "is also used by" in bad.problem
            await library.reload()
    assert len(warnings_about(caplog, "is also used by")) == 1


async def test_find_and_suggest(folder: Path) -> None:
    edit(folder / "dagoth.toml", persona_toml("Dagoth Ur"))
    with trio.fail_after(DEADLINE):
        async with running(folder) as library:
            found = library.find("dagoth ur")
            assert found is not None
            assert found.id == "dagoth"
            found = library.find(" SAGE ")
            assert found is not None
            assert found.id == "sage"
            assert library.find("dagoth u") is None
            assert library.suggest("dagot")[0] == "dagoth"
            assert library.suggest("arria") == ("aria",)
            assert library.suggest("qqqqq") == ()


# --- the per-guild choice, in the real store ---------------------------------------------------


async def test_guild_choice_is_stored_and_survives_a_restart(folder: Path, tmp_path: Path) -> None:
    database = tmp_path / "data" / "db.sqlite3"
    with trio.fail_after(DEADLINE):
        async with open_store(database) as store:
            library = PersonaLibrary(folder, default_id="default", settings=store.meta)
            async with trio.open_nursery() as nursery:
                await nursery.start(library.run)
                chosen = await library.set_for_guild(1, "sage")
                assert chosen.name == "Sage"
                assert (await library.for_guild(1)).id == "sage"
                assert (await library.for_guild(2)).id == "default"
                assert (await library.for_guild(None)).id == "default"
                with pytest.raises(UnknownPersona, match=r"`sagee`\. Did you mean `sage`\?"):
                    await library.set_for_guild(1, "sagee")
                nursery.cancel_scope.cancel()
            assert await store.meta.get("guild:1:persona") == "sage"
        async with open_store(database) as store:
            restarted = PersonaLibrary(folder, default_id="default", settings=store.meta)
            async with trio.open_nursery() as nursery:
                await nursery.start(restarted.run)
                assert (await restarted.for_guild(1)).id == "sage"
                nursery.cancel_scope.cancel()


async def test_a_deleted_choice_falls_back_to_the_default(folder: Path, tmp_path: Path) -> None:
    with trio.fail_after(DEADLINE):
        async with open_store(tmp_path / "db.sqlite3") as store:
            library = PersonaLibrary(folder, default_id="aria", settings=store.meta)
            await library.reload()
            await library.set_for_guild(7, "sage")
            (folder / "sage.md").unlink()
            await library.reload()
            assert (await library.for_guild(7)).id == "aria"  # the configured default
            (folder / "aria.toml").unlink()
            await library.reload()
            assert (await library.for_guild(7)).id == "default"  # then the shipped one
            # The stored choice is kept: the persona comes back with its file.
            edit(folder / "sage.md", persona_md("Sage"))
            await library.reload()
            assert (await library.for_guild(7)).id == "sage"


# --- hot reload (MockClock) --------------------------------------------------------------------


async def waited_for(condition: Callable[[], bool]) -> float:
    """Virtual seconds until ``condition()`` holds, checked every 10 ms."""
    start = trio.current_time()
    # Polling the library's public state is the point: it measures when a change shows.
    while not condition():  # noqa: ASYNC110
        await trio.sleep(0.01)
    return trio.current_time() - start


async def test_a_changed_file_is_picked_up_within_reload_every(
    autojump_clock: trio.testing.MockClock, folder: Path
) -> None:
    with trio.fail_after(DEADLINE):
        async with running(folder, offload=inline) as library:
            for version in range(2, 5):
                await trio.sleep(0.7)  # not in step with the checks
                edit(folder / "aria.toml", persona_toml(f"Aria {version}"))

                def updated(version: int = version) -> bool:
                    aria = library.get("aria")
                    return aria is not None and aria.name == f"Aria {version}"

                assert await waited_for(updated) <= RELOAD_EVERY + 0.01


async def test_a_broken_file_keeps_the_old_version_and_warns_once(
    autojump_clock: trio.testing.MockClock, folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = folder / "aria.toml"
    with trio.fail_after(DEADLINE):
        async with running(folder, offload=inline) as library:
            edit(path, 'name = "Aria"\nsystem_prompt = "unclosed\n')
            await waited_for(lambda: bool(library.statistics().bad_files))
            await trio.sleep(5 * RELOAD_EVERY)
            aria = library.get("aria")
            assert aria is not None
            assert aria.system_prompt == "Be nice."
            (bad,) = library.statistics().bad_files
            assert bad.path == str(path)
            assert bad.problem.startswith("not valid TOML at line 2")
            assert len(warnings_about(caplog, str(path))) == 1
            assert "keeping the version loaded before" in warnings_about(caplog, str(path))[0]
            # Fixed: the new version, and no bad file any more.
            edit(path, persona_toml("Aria", "Be kind."))
            await waited_for(lambda: not library.statistics().bad_files)
            aria = library.get("aria")
            assert aria is not None
            assert aria.system_prompt == "Be kind."


async def test_a_deleted_file_is_gone_and_its_guilds_fall_back(
    autojump_clock: trio.testing.MockClock, folder: Path
) -> None:
    settings = MemorySettings()
    with trio.fail_after(DEADLINE):
        async with running(folder, settings=settings, offload=inline) as library:
            await library.set_for_guild(1, "aria")
            assert settings.values == {"guild:1:persona": "aria"}
            (folder / "aria.toml").unlink()
            elapsed = await waited_for(lambda: library.get("aria") is None)
            assert elapsed <= RELOAD_EVERY + 0.01
            assert (await library.for_guild(1)).id == "default"
            assert library.statistics().files == 1


async def test_an_added_file_appears(autojump_clock: trio.testing.MockClock, folder: Path) -> None:
    with trio.fail_after(DEADLINE):
        async with running(folder, default_id="nova", offload=inline) as library:
            assert (await library.for_guild(None)).id == "default"
            checks = library.statistics().checks
            edit(folder / "Nova.md", persona_md("Nova"))
            elapsed = await waited_for(lambda: library.get("nova") is not None)
            assert elapsed <= RELOAD_EVERY + 0.01
            assert library.statistics().checks == checks + 1
            assert (await library.for_guild(None)).id == "nova"  # the configured default now


async def test_a_bad_new_file_never_appears_and_nothing_stops(
    autojump_clock: trio.testing.MockClock, folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with trio.fail_after(DEADLINE):
        async with running(folder, offload=inline) as library:
            edit(folder / "nova.toml", 'name = "Nova"\nsytem_prompt = "x"\n')
            await trio.sleep(3 * RELOAD_EVERY)
            assert library.get("nova") is None
            assert sorted(p.id for p in library.all()) == ["aria", "default", "sage"]
    (warning,) = warnings_about(caplog, "nova.toml")
    assert "did you mean 'system_prompt'?" in warning
