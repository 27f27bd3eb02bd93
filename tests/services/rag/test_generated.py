"""Generated documents (summaries) in the document index: kept by reindex, names reserved."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import pytest
import trio

from trio_companion.services.rag.index import GENERATED_PREFIX, DocumentIndex
from trio_companion.storage import open_store

if TYPE_CHECKING:
    from pathlib import Path

DEADLINE: Final = 20.0


async def test_generated_documents_survive_reindex_and_their_names_are_reserved(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "documents"
    folder.mkdir()
    (folder / f"{GENERATED_PREFIX}1:1.md").write_text("an impostor file about otters")
    (folder / "real.md").write_text("a real file about badgers")
    with trio.fail_after(DEADLINE):
        async with open_store(tmp_path / "db.sqlite3") as store:
            index = DocumentIndex(store, folder, backend=None, embedding_model="")
            await index.store_text(f"{GENERATED_PREFIX}1:1", "a summary about otters")
            report = await index.reindex()
            again = await index.reindex()
            found = await index.search("otters", k=3)
            with pytest.raises(ValueError, match="must start with"):
                await index.store_text("notes.md", "text")
    assert (report.added, report.skipped, report.removed) == (1, 1, 0)
    assert again.removed == 0
    assert [(p.source, p.text) for p in found] == [
        (f"{GENERATED_PREFIX}1:1", "a summary about otters")
    ]
