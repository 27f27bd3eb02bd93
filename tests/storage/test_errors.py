from __future__ import annotations

from pathlib import Path

import pytest

from trio_companion.errors import CompanionError
from trio_companion.storage import (
    StorageError,
    StorageIOError,
    StorageOpenError,
    StorageSchemaError,
)


@pytest.mark.parametrize("leaf", [StorageOpenError, StorageSchemaError, StorageIOError])
def test_every_leaf_is_a_storage_error(leaf: type[Exception]) -> None:
    assert issubclass(leaf, StorageError)
    assert issubclass(StorageError, CompanionError)


def test_open_error_carries_path_and_reason() -> None:
    error = StorageOpenError(
        Path("/x/db.sqlite3"), "directory /x is not writable (Permission denied)"
    )
    assert error.path == Path("/x/db.sqlite3")
    assert error.reason == "directory /x is not writable (Permission denied)"
    assert str(error) == (
        "Cannot open the database /x/db.sqlite3: directory /x is not writable (Permission denied)."
    )


def test_schema_error_carries_the_file_version() -> None:
    error = StorageSchemaError(Path("/x/db.sqlite3"), 7, "it is too new")
    assert (error.path, error.version, error.reason) == (Path("/x/db.sqlite3"), 7, "it is too new")
    assert str(error) == "Cannot open the database /x/db.sqlite3: it is too new."


def test_io_error_names_the_file() -> None:
    error = StorageIOError(Path("/x/db.sqlite3"), "the disk is full; free some space")
    assert str(error) == "The database /x/db.sqlite3 failed: the disk is full; free some space."
