from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from tests.storage.helpers import DEADLINE_S
from trio_companion.storage import open_store

if TYPE_CHECKING:
    from pathlib import Path


async def test_missing_key_reads_as_none(tmp_path: Path) -> None:
    with trio.fail_after(DEADLINE_S):
        async with open_store(tmp_path / "db.sqlite3") as store:
            assert await store.meta.get("nothing") is None


async def test_set_get_replace(tmp_path: Path) -> None:
    with trio.fail_after(DEADLINE_S):
        async with open_store(tmp_path / "db.sqlite3") as store:
            await store.meta.set("commands-hash", "abc")
            assert await store.meta.get("commands-hash") == "abc"
            await store.meta.set("commands-hash", "")
            assert await store.meta.get("commands-hash") == ""
            await store.meta.set("ünïcode ✓", "välue\n✓")
            assert await store.meta.get("ünïcode ✓") == "välue\n✓"


async def test_delete_says_whether_the_key_was_there(tmp_path: Path) -> None:
    with trio.fail_after(DEADLINE_S):
        async with open_store(tmp_path / "db.sqlite3") as store:
            await store.meta.set("k", "v")
            assert await store.meta.delete("k") is True
            assert await store.meta.delete("k") is False
            assert await store.meta.get("k") is None


async def test_values_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    with trio.fail_after(DEADLINE_S):
        async with open_store(path) as store:
            await store.meta.set("k", "v")
        async with open_store(path) as store:
            assert await store.meta.get("k") == "v"


async def test_keys_by_prefix(tmp_path: Path) -> None:
    with trio.fail_after(DEADLINE_S):
        async with open_store(tmp_path / "db.sqlite3") as store:
            for key in ("channel:2:ambient", "channel:1:ambient", "chan", "guild:1:persona"):
                await store.meta.set(key, "on")
            await store.meta.set("50%_off", "v")
            await store.meta.set("5000_off", "v")
            assert await store.meta.keys("channel:") == ["channel:1:ambient", "channel:2:ambient"]
            assert await store.meta.keys("50%_") == ["50%_off"]  # no LIKE wildcards
            assert await store.meta.keys("nothing") == []
            assert "chan" in await store.meta.keys("")
