"""Fixtures for the storage tests: an unwritable directory, even for root."""

from __future__ import annotations

import os
import subprocess
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture
def readonly_dir(tmp_path: Path) -> Iterator[Path]:
    """An existing directory in which nothing can be created.

    Permission bits do not stop root, so as root this mounts a read-only tmpfs instead of using
    chmod; where mounting is not allowed (a container without CAP_SYS_ADMIN) the test is skipped.
    """
    directory = tmp_path / "readonly"
    directory.mkdir()
    if os.geteuid() != 0:
        directory.chmod(0o555)
        try:
            yield directory
        finally:
            directory.chmod(0o755)
        return
    try:
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(directory)],
            check=True,
            capture_output=True,
            text=True,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = exc.stderr.strip() if isinstance(exc, subprocess.CalledProcessError) else exc
        pytest.skip(f"cannot mount a read-only tmpfs as root: {detail}")
    try:
        yield directory
    finally:
        subprocess.run(["umount", str(directory)], check=True)


@pytest.fixture
def tiny_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory on a 256 KiB tmpfs, to fill the disk on purpose. Needs root; else skipped."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    directory = tmp_path / "tiny"
    directory.mkdir()
    try:
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(directory)],
            check=True,
            capture_output=True,
            text=True,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = exc.stderr.strip() if isinstance(exc, subprocess.CalledProcessError) else exc
        pytest.skip(f"cannot mount a small tmpfs: {detail}")
    try:
        yield directory
    finally:
        subprocess.run(["umount", str(directory)], check=True)
