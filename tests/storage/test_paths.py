from __future__ import annotations

from pathlib import Path

import pytest

from trio_companion.storage import check_writable_dir
from trio_companion.storage.paths import DirProblem, find_dir_problem

_UNWRITABLE_REASONS = ("Read-only file system", "Permission denied")


def test_writable_directory_passes_and_the_probe_leaves_nothing(tmp_path: Path) -> None:
    assert check_writable_dir(tmp_path) is None
    assert list(tmp_path.iterdir()) == []


def test_missing_directory_under_a_writable_one_passes_and_is_not_created(tmp_path: Path) -> None:
    assert check_writable_dir(tmp_path / "a" / "b") is None
    assert not (tmp_path / "a").exists()


def test_regular_file_is_not_a_directory(tmp_path: Path) -> None:
    file = tmp_path / "file"
    file.write_text("x")
    assert check_writable_dir(file) == "not a directory"
    assert find_dir_problem(file / "sub" / "deeper") == DirProblem(file, "not a directory")


def test_read_only_directory_is_refused(readonly_dir: Path) -> None:
    assert check_writable_dir(readonly_dir) in _UNWRITABLE_REASONS


def test_missing_directory_under_a_read_only_one_is_refused(readonly_dir: Path) -> None:
    problem = find_dir_problem(readonly_dir / "data")
    assert problem is not None
    assert problem.where == readonly_dir
    assert problem.reason in _UNWRITABLE_REASONS


def test_relative_path_is_reported_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "file").write_text("x")
    monkeypatch.chdir(tmp_path)
    assert find_dir_problem(Path("file") / "data") == DirProblem(
        tmp_path / "file", "not a directory"
    )


def test_problems_describe_what_to_do(tmp_path: Path) -> None:
    assert DirProblem(tmp_path, "not a directory").describe() == (
        f"{tmp_path} is not a directory; choose another data path"
    )
    assert DirProblem(tmp_path, "Read-only file system").describe() == (
        f"directory {tmp_path} is not writable (Read-only file system); choose a writable data path"
    )
