"""Fixtures of the TTS tests: the fake speech server and an HTTP client for it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import trio

from tests.fakes.tts_servers import FakeSpeechServer


@pytest.fixture
async def fake_speech(nursery: trio.Nursery) -> FakeSpeechServer:
    """A running `FakeSpeechServer` for the test's lifetime (stopped with its nursery)."""
    fake = FakeSpeechServer()
    await nursery.start(fake.run)
    return fake


@pytest.fixture
async def speech_http() -> AsyncIterator[httpx.AsyncClient]:
    """A plain client with short timeouts: the fake answers at once."""
    async with httpx.AsyncClient(timeout=httpx.Timeout(5.0)) as client:
        yield client
