"""Both backends against their fake server's fault modes, on the MockClock.

Each fault must reach the caller as its typed `LLMError` with a message a user can read, the
statistics must count it, and leaving a stream early (or being cancelled) must close the
connection: the fake sees the client go away, and no ResourceWarning is left behind.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec
import pytest
import trio
import trio.testing

from tests.fakes.llm_servers import FakeOllama, FakeOpenAI, split_words
from trio_companion.config.model import LLMConfig
from trio_companion.services.llm.base import ChatMessage, GenerationOptions, LLMBackend
from trio_companion.services.llm.errors import (
    LLMBusy,
    LLMHTTPError,
    LLMStreamCut,
    LLMTimeout,
    LLMUnreachable,
    ModelNotFound,
)
from trio_companion.services.llm.factory import make_backend, make_limits, make_llm_http_client
from trio_companion.services.llm.limits import LLMLimits
from trio_companion.services.llm.ollama import OllamaBackend
from trio_companion.services.llm.openai import OpenAICompatibleBackend

Fake = FakeOllama | FakeOpenAI
MESSAGES = [ChatMessage(role="user", content="Tell me a story.")]
REPLY = "Once upon a time there was a small robot who loved tea."
WORDS = split_words(REPLY)
READ_TIMEOUT = 30.0


@pytest.fixture(params=["ollama", "openai"])
async def fake(request: pytest.FixtureRequest, nursery: trio.Nursery) -> Fake:
    server: Fake = FakeOllama(reply=REPLY) if request.param == "ollama" else FakeOpenAI(reply=REPLY)
    await nursery.start(server.run)
    return server


def config_for(fake: Fake, **overrides: Any) -> LLMConfig:
    ollama = isinstance(fake, FakeOllama)
    config = LLMConfig(
        provider="ollama" if ollama else "openai",
        url=fake.url,
        model="llama3.2" if ollama else "qwen2.5-7b-instruct",
        read_timeout=READ_TIMEOUT,
    )
    return msgspec.structs.replace(config, **overrides)


@pytest.fixture
async def http(fake: Fake) -> AsyncIterator[httpx.AsyncClient]:
    async with make_llm_http_client(config_for(fake)) as client:
        yield client


def backend_for(
    fake: Fake, http: httpx.AsyncClient, limits: LLMLimits | None = None, **overrides: Any
) -> LLMBackend:
    config = config_for(fake, **overrides)
    return make_backend(config, http, limits or make_limits(config))


def stats(llm: LLMBackend) -> tuple[int, int, int]:
    assert isinstance(llm, OllamaBackend | OpenAICompatibleBackend)
    s = llm.statistics()
    return s.requests, s.failures, s.streaming


async def read_until_error(llm: LLMBackend, received: list[str]) -> None:
    async with llm.stream_chat(MESSAGES, GenerationOptions()) as pieces:
        async for piece in pieces:
            received.append(piece)


def unreachable_message(fake: Fake) -> str:
    if isinstance(fake, FakeOllama):
        return f"Can't reach the LLM server at {fake.url}: is Ollama running?"
    return f"Can't reach the LLM server at {fake.url}/v1: is the server running?"


async def test_happy_path_streams_then_reuses_the_connection(
    autojump_clock: trio.testing.MockClock, fake: Fake, http: httpx.AsyncClient
) -> None:
    llm = backend_for(fake, http)
    received: list[str] = []
    with trio.fail_after(10):
        await read_until_error(llm, received)
        assert await llm.complete(MESSAGES, GenerationOptions()) == REPLY
    assert received == WORDS
    assert [s.outcome for s in fake.streams] == ["done", "done"]
    # The body was read to its end, so the second request rode the same connection.
    assert [r.connection for r in fake.requests] == [1, 1]
    assert stats(llm) == (2, 0, 0)


async def test_server_down_is_unreachable_and_recovers(
    autojump_clock: trio.testing.MockClock, fake: Fake, http: httpx.AsyncClient
) -> None:
    llm = backend_for(fake, http)
    with trio.fail_after(10):
        await llm.complete(MESSAGES, GenerationOptions())  # leaves a pooled connection
        fake.down = True
        for call in (llm.complete(MESSAGES, GenerationOptions()), llm.list_models()):
            with pytest.raises(LLMUnreachable) as caught:
                await call
            assert str(caught.value) == unreachable_message(fake)
        fake.down = False
        assert await llm.complete(MESSAGES, GenerationOptions()) == REPLY
    assert stats(llm) == (3, 1, 0)


async def test_hanging_up_before_answering_is_unreachable(
    autojump_clock: trio.testing.MockClock, fake: Fake, http: httpx.AsyncClient
) -> None:
    fake.cut_after = 0  # the fake closes the connection before its response head
    with trio.fail_after(10), pytest.raises(LLMUnreachable):
        await backend_for(fake, http).complete(MESSAGES, GenerationOptions())


async def test_slow_first_token_within_the_read_timeout_is_fine(
    autojump_clock: trio.testing.MockClock, fake: Fake, http: httpx.AsyncClient
) -> None:
    fake.slow_first_token = READ_TIMEOUT - 1
    llm = backend_for(fake, http)
    with trio.fail_after(READ_TIMEOUT * 2):
        assert await llm.complete(MESSAGES, GenerationOptions()) == REPLY
    assert isinstance(llm, OllamaBackend | OpenAICompatibleBackend)
    assert llm.statistics().last_first_token_latency == pytest.approx(READ_TIMEOUT - 1)


async def test_first_token_slower_than_the_read_timeout(
    autojump_clock: trio.testing.MockClock, fake: Fake, http: httpx.AsyncClient
) -> None:
    fake.slow_first_token = READ_TIMEOUT * 3
    llm = backend_for(fake, http)
    start = trio.current_time()
    with trio.fail_after(READ_TIMEOUT * 2), pytest.raises(LLMTimeout) as caught:
        await llm.complete(MESSAGES, GenerationOptions())
    # The client's read timeout fired, on trio's clock.
    assert trio.current_time() - start == pytest.approx(READ_TIMEOUT)
    assert caught.value.received_chars == 0
    assert str(caught.value) == (
        "The LLM server took too long to answer: it may be loading the model or overloaded. "
        "Try again in a moment."
    )
    assert stats(llm) == (1, 1, 0)


async def test_stall_between_chunks_longer_than_the_read_timeout(
    autojump_clock: trio.testing.MockClock, fake: Fake, http: httpx.AsyncClient
) -> None:
    fake.stall_after = (3, READ_TIMEOUT + 1)
    llm = backend_for(fake, http)
    received: list[str] = []
    with trio.fail_after(READ_TIMEOUT * 2), pytest.raises(LLMTimeout) as caught:
        await read_until_error(llm, received)
    assert received == WORDS[:3]
    assert caught.value.received_chars == len("".join(WORDS[:3]))
    assert "stopped in the middle of its reply" in str(caught.value)
    assert stats(llm) == (1, 1, 0)


async def test_a_stall_shorter_than_the_read_timeout_is_fine(
    autojump_clock: trio.testing.MockClock, fake: Fake, http: httpx.AsyncClient
) -> None:
    fake.stall_after = (3, READ_TIMEOUT - 1)
    with trio.fail_after(READ_TIMEOUT * 2):
        assert await backend_for(fake, http).complete(MESSAGES, GenerationOptions()) == REPLY


async def test_server_error_status(
    autojump_clock: trio.testing.MockClock, fake: Fake, http: httpx.AsyncClient
) -> None:
    fake.status = 500
    llm = backend_for(fake, http)
    with trio.fail_after(10), pytest.raises(LLMHTTPError) as caught:
        await llm.complete(MESSAGES, GenerationOptions())
    assert (caught.value.status, caught.value.detail) == (500, "fake failure")
    assert str(caught.value) == "The LLM server answered with an error (HTTP 500): fake failure."
    assert stats(llm) == (1, 1, 0)


@pytest.mark.parametrize("status", [429, 503])
async def test_busy_server(
    autojump_clock: trio.testing.MockClock, fake: Fake, http: httpx.AsyncClient, status: int
) -> None:
    fake.status = status
    fake.retry_after = 7
    with trio.fail_after(10), pytest.raises(LLMBusy) as caught:
        await backend_for(fake, http).complete(MESSAGES, GenerationOptions())
    assert caught.value.retry_after == 7.0
    assert str(caught.value) == "The LLM is busy right now: try again in 7 seconds."


@pytest.mark.parametrize("after", [3, len(WORDS)])
async def test_stream_cut_mid_reply(
    autojump_clock: trio.testing.MockClock, fake: Fake, http: httpx.AsyncClient, after: int
) -> None:
    fake.cut_after = after
    llm = backend_for(fake, http)
    received: list[str] = []
    with trio.fail_after(10), pytest.raises(LLMStreamCut) as caught:
        await read_until_error(llm, received)
    assert received == WORDS[:after]
    assert caught.value.received_chars == len("".join(WORDS[:after]))
    assert str(caught.value) == (
        f"The reply was cut off after {caught.value.received_chars} characters: "
        "the connection to the LLM server broke."
    )
    assert fake.streams[0].outcome == "cut"
    assert stats(llm) == (1, 1, 0)


async def test_error_line_mid_stream(
    autojump_clock: trio.testing.MockClock, fake: Fake, http: httpx.AsyncClient
) -> None:
    fake.error_after = (2, "CUDA error: out of memory")
    llm = backend_for(fake, http)
    received: list[str] = []
    with trio.fail_after(10), pytest.raises(LLMHTTPError) as caught:
        await read_until_error(llm, received)
    assert received == WORDS[:2]
    assert caught.value.status == 200
    assert caught.value.received_chars == len("".join(WORDS[:2]))
    assert str(caught.value) == (
        "The LLM server reported an error while replying: CUDA error: out of memory."
    )
    assert stats(llm) == (1, 1, 0)


async def test_missing_model(
    autojump_clock: trio.testing.MockClock, fake: Fake, http: httpx.AsyncClient
) -> None:
    llm = backend_for(fake, http, model="no-such-model")
    with trio.fail_after(10), pytest.raises(ModelNotFound) as caught:
        await llm.complete(MESSAGES, GenerationOptions())
    assert caught.value.model == "no-such-model"
    if isinstance(fake, FakeOllama):
        assert "`ollama pull no-such-model`" in str(caught.value)
    else:
        assert str(caught.value) == (
            "The LLM server has no model named 'no-such-model': "
            "check the model name in the configuration."
        )


async def test_cancellation_mid_stream_closes_the_connection(
    autojump_clock: trio.testing.MockClock, fake: Fake, http: httpx.AsyncClient
) -> None:
    fake.tokens_per_second = 1
    llm = backend_for(fake, http)
    received: list[str] = []
    with trio.fail_after(30):
        with trio.move_on_after(2.5):
            await read_until_error(llm, received)
        await fake.streams[0].ended.wait()
        assert received == WORDS[:3]
        assert fake.streams[0].outcome == "disconnected"
        assert fake.streams[0].chunks_sent < len(WORDS)
        await trio.testing.wait_all_tasks_blocked()
        assert fake.open_connections == 0
        gc.collect()  # an abandoned generator or socket would warn now (warnings are errors)
        assert stats(llm) == (1, 0, 0)  # cancelled by us: not a failure
        # The backend is still good for the next request.
        fake.tokens_per_second = None
        assert await llm.complete(MESSAGES, GenerationOptions()) == REPLY


async def test_leaving_the_stream_early_closes_the_connection(
    autojump_clock: trio.testing.MockClock, fake: Fake, http: httpx.AsyncClient
) -> None:
    fake.tokens_per_second = 5
    llm = backend_for(fake, http)
    with trio.fail_after(30):
        async with llm.stream_chat(MESSAGES, GenerationOptions()) as pieces:
            async for piece in pieces:
                assert piece == WORDS[0]
                break
        await fake.streams[0].ended.wait()
        assert fake.streams[0].outcome == "disconnected"
        gc.collect()
        assert stats(llm) == (1, 0, 0)


async def test_concurrency_limit_is_what_the_server_sees(
    autojump_clock: trio.testing.MockClock, fake: Fake, http: httpx.AsyncClient
) -> None:
    fake.tokens_per_second = 10
    llm = backend_for(fake, http, LLMLimits(max_concurrency=2, requests_per_minute=1000))
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            for _ in range(5):
                nursery.start_soon(llm.complete, MESSAGES, GenerationOptions())
    assert fake.max_concurrent_streams == 2
    assert [s.outcome for s in fake.streams] == ["done"] * 5


async def test_per_minute_budget_is_what_the_server_sees(
    autojump_clock: trio.testing.MockClock, fake: Fake, http: httpx.AsyncClient
) -> None:
    llm = backend_for(fake, http, LLMLimits(max_concurrency=64, requests_per_minute=120))
    with trio.fail_after(300):
        start = trio.current_time()
        async with trio.open_nursery() as nursery:
            for _ in range(121):
                nursery.start_soon(llm.complete, MESSAGES, GenerationOptions())
    arrivals = sorted(r.arrived_at - start for r in fake.chat_requests)
    assert len(arrivals) == 121
    assert arrivals[119] < 1  # the first 120 go at once
    assert arrivals[120] == pytest.approx(60, abs=0.5)  # the last waits for the window
