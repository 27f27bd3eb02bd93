"""`factory`: the LLM side of the app built from `LLMConfig`, against a fake Ollama."""

from __future__ import annotations

import httpx
import trio
import trio.testing

from tests.fakes.llm_servers import FakeOllama, FakeOpenAI
from trio_companion.config.model import LLMConfig
from trio_companion.services.llm.base import ChatMessage, GenerationOptions
from trio_companion.services.llm.factory import (
    make_backend,
    make_limits,
    make_llm_http_client,
    options_from,
)
from trio_companion.services.llm.ollama import OllamaBackend
from trio_companion.services.llm.openai import OpenAICompatibleBackend


async def test_http_client_carries_the_configured_timeouts() -> None:
    config = LLMConfig(connect_timeout=3.0, read_timeout=90.0)
    with trio.fail_after(10):
        async with make_llm_http_client(config) as http:
            assert http.timeout == httpx.Timeout(connect=3.0, read=90.0, write=3.0, pool=90.0)


def test_options_from_config() -> None:
    config = LLMConfig(
        temperature=1.1,
        top_k=10,
        top_p=0.7,
        min_p=0.2,
        repeat_penalty=1.3,
        num_predict=-1,
        num_ctx=4096,
    )
    assert options_from(config) == GenerationOptions(
        temperature=1.1,
        top_k=10,
        top_p=0.7,
        min_p=0.2,
        repeat_penalty=1.3,
        num_predict=-1,
        num_ctx=4096,
    )


def test_defaults_agree() -> None:
    """GenerationOptions() and the config's defaults are the same settings."""
    assert options_from(LLMConfig()) == GenerationOptions()


async def test_backend_by_provider_end_to_end(
    autojump_clock: trio.testing.MockClock, fake_ollama: FakeOllama, fake_openai: FakeOpenAI
) -> None:
    ollama_config = LLMConfig(
        url=fake_ollama.url,
        model="llama3.2",
        num_ctx=2048,
        max_concurrency=3,
        requests_per_minute=30,
    )
    openai_config = LLMConfig(
        provider="openai", url=fake_openai.url, model="qwen2.5-7b-instruct", api_key="k"
    )
    messages = [ChatMessage(role="user", content="hi")]
    with trio.fail_after(10):
        async with make_llm_http_client(ollama_config) as http:
            limits = make_limits(ollama_config)
            stats = limits.statistics()
            assert (stats.max_concurrency, stats.requests_per_minute) == (3, 30)
            ollama = make_backend(ollama_config, http, limits)
            openai = make_backend(openai_config, http, limits)
            assert isinstance(ollama, OllamaBackend)
            assert isinstance(openai, OpenAICompatibleBackend)
            assert (ollama.model, openai.model) == ("llama3.2", "qwen2.5-7b-instruct")
            assert await ollama.complete(messages, options_from(ollama_config)) == fake_ollama.reply
            assert await openai.complete(messages, options_from(openai_config)) == fake_openai.reply
    assert fake_ollama.chat_bodies[0]["options"]["num_ctx"] == 2048
    assert fake_openai.chat_requests[0].header("authorization") == "Bearer k"
