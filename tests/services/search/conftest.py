"""The HTTP client the search providers get in these tests: the app's kind, short timeouts."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

# Under the MockClock these are trio-clock seconds: they fire only when a fake stalls.
TIMEOUT = httpx.Timeout(5.0, connect=2.0)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        yield client
