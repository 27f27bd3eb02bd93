"""Can a directory hold the database? A synchronous probe of the filesystem.

The probe creates and removes a temporary file instead of asking `os.access`, because permission
bits say nothing for root (who can write through mode 0o555) and nothing about a read-only mount.
These functions block on the filesystem: call them from a worker thread or before trio starts.
"""

from __future__ import annotations

import stat
import tempfile
from typing import TYPE_CHECKING, Final, NamedTuple, final

if TYPE_CHECKING:
    from pathlib import Path

_NOT_A_DIRECTORY: Final = "not a directory"


@final
class DirProblem(NamedTuple):
    """Why a directory cannot hold the database, and where the fault was found."""

    where: Path
    """The nearest existing ancestor (or the path itself) that failed the probe."""
    reason: str
    """A short reason: "Read-only file system", "Permission denied", "not a directory"."""

    def describe(self) -> str:
        """A clause fit for `StorageOpenError.reason`, saying what to do."""
        if self.reason == _NOT_A_DIRECTORY:
            return f"{self.where} is not a directory; choose another data path"
        return (
            f"directory {self.where} is not writable ({self.reason}); choose a writable data path"
        )


def find_dir_problem(directory: Path) -> DirProblem | None:
    """Return why `directory` cannot hold files, or None if it can.

    A missing directory is fine when its nearest existing ancestor is a writable directory, since
    it can then be created; this function creates nothing but its short-lived probe file.
    """
    where = directory.absolute()
    while True:
        try:
            mode = where.stat().st_mode
        except (FileNotFoundError, NotADirectoryError):
            # Walk up to the nearest thing that exists; if that is a regular file, the check below
            # reports it as the fault ("/x/file is not a directory").
            if where.parent == where:
                return DirProblem(where, "no such directory")
            where = where.parent
            continue
        except OSError as exc:
            return DirProblem(where, exc.strerror or str(exc))
        break
    if not stat.S_ISDIR(mode):
        return DirProblem(where, _NOT_A_DIRECTORY)
    try:
        with tempfile.NamedTemporaryFile(dir=where, prefix=".trio-companion-probe-"):
            pass
    except OSError as exc:
        return DirProblem(where, exc.strerror or str(exc))
    return None


def check_writable_dir(path: Path) -> str | None:
    """Return None if the directory `path` can hold the database, else a short reason why not.

    The directory may be missing if it can be created under a writable ancestor. The reason is
    the OS's wording (``"Read-only file system"``, ``"Permission denied"``) or ``"not a
    directory"`` when `path` or an ancestor is a regular file. Blocks on the filesystem.
    """
    problem = find_dir_problem(path)
    return None if problem is None else problem.reason
