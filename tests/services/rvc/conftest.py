"""Fixtures of the voice-conversion tests: the fake RVC servers and a client for them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import trio

from tests.fakes.rvc_servers import FakeRVCHttp, FakeRVCWebUI
from trio_companion.services.audio import Audio


@pytest.fixture
async def fake_rvc_http(nursery: trio.Nursery) -> FakeRVCHttp:
    fake = FakeRVCHttp()
    await nursery.start(fake.run)
    return fake


@pytest.fixture
async def fake_rvc_webui(nursery: trio.Nursery, tmp_path: Path) -> FakeRVCWebUI:
    files = tmp_path / "gradio-temp"
    files.mkdir()
    fake = FakeRVCWebUI(files)
    await nursery.start(fake.run)
    return fake


@pytest.fixture
def shared_dir(tmp_path: Path) -> Path:
    """The folder the WebUI converter writes its input files to."""
    folder = tmp_path / "shared"
    folder.mkdir()
    return folder


@pytest.fixture
async def rvc_http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=httpx.Timeout(10.0)) as client:
        yield client


def tone(seconds: float, *, rate: int = 24_000, channels: int = 1, hz: float = 220.0) -> Audio:
    """A sine at ``hz``, half scale: a stand-in for TTS speech."""
    t = np.arange(round(seconds * rate), dtype=np.float64) / rate
    wave = (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)
    return Audio(np.repeat(wave.reshape(-1, 1), channels, axis=1), rate)
