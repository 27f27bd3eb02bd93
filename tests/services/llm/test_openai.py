"""`OpenAICompatibleBackend` against `FakeOpenAI` over loopback HTTP, on the MockClock.

The fault modes shared with Ollama are in ``test_faults.py``; here: the exact request, the
Bearer header, SSE parsing, reasoning fields, usage, models and embeddings.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx
import pytest
import trio
import trio.testing

from tests.fakes.llm_servers import FakeOpenAI, fake_embedding
from trio_companion.services.llm._common import Chunk
from trio_companion.services.llm.base import ChatMessage, GenerationOptions, ModelInfo
from trio_companion.services.llm.errors import LLMHTTPError, ModelNotFound
from trio_companion.services.llm.limits import LLMLimits
from trio_companion.services.llm.openai import OpenAICompatibleBackend, _parse_line, base_url

MODEL = "qwen2.5-7b-instruct"
HISTORY = [
    ChatMessage(role="system", content="You are Mira."),
    ChatMessage(role="user", content="Remember: my cat is called Tofu."),
    ChatMessage(role="assistant", content="Tofu, got it!"),
    ChatMessage(role="user", content="What's my cat called?"),
]


def backend(
    fake: FakeOpenAI,
    http: httpx.AsyncClient,
    *,
    api_key: str = "",
    model: str = MODEL,
    strip_thinking: bool = True,
) -> OpenAICompatibleBackend:
    return OpenAICompatibleBackend(
        http,
        url=fake.url,
        model=model,
        api_key=api_key,
        limits=LLMLimits(4, 1000),
        strip_thinking=strip_thinking,
    )


@pytest.mark.parametrize(
    ("num_predict", "max_tokens"), [(256, {"max_tokens": 256}), (-1, {})], ids=["256", "none"]
)
async def test_request_body(
    autojump_clock: trio.testing.MockClock,
    fake_openai: FakeOpenAI,
    llm_http: httpx.AsyncClient,
    num_predict: int,
    max_tokens: dict[str, int],
) -> None:
    options = GenerationOptions(temperature=0.6, top_p=0.95, num_predict=num_predict)
    with trio.fail_after(10):
        await backend(fake_openai, llm_http).complete(HISTORY, options)
    assert fake_openai.chat_bodies == [
        {
            "model": MODEL,
            "messages": [
                {"role": "system", "content": "You are Mira."},
                {"role": "user", "content": "Remember: my cat is called Tofu."},
                {"role": "assistant", "content": "Tofu, got it!"},
                {"role": "user", "content": "What's my cat called?"},
            ],
            "stream": True,
            "temperature": 0.6,
            "top_p": 0.95,
            **max_tokens,
        }
    ]


async def test_bearer_header_only_with_a_key(
    autojump_clock: trio.testing.MockClock, fake_openai: FakeOpenAI, llm_http: httpx.AsyncClient
) -> None:
    with trio.fail_after(10):
        await backend(fake_openai, llm_http).complete(HISTORY, GenerationOptions())
        fake_openai.api_key = "sk-local-123"
        await backend(fake_openai, llm_http, api_key="sk-local-123").complete(
            HISTORY, GenerationOptions()
        )
        await backend(fake_openai, llm_http, api_key="sk-local-123").list_models()
    assert [r.header("authorization") for r in fake_openai.requests] == [
        None,
        "Bearer sk-local-123",
        "Bearer sk-local-123",
    ]


async def test_wrong_key_is_refused_without_showing_it(
    autojump_clock: trio.testing.MockClock, fake_openai: FakeOpenAI, llm_http: httpx.AsyncClient
) -> None:
    fake_openai.api_key = "sk-right"
    with trio.fail_after(10), pytest.raises(LLMHTTPError) as caught:
        await backend(fake_openai, llm_http, api_key="sk-wrong-9876").complete(
            HISTORY, GenerationOptions()
        )
    assert caught.value.status == 401
    assert str(caught.value) == (
        "The LLM server refused our credentials (HTTP 401): Incorrect API key provided. "
        "Check the API key in the configuration."
    )


async def test_a_key_echoed_by_the_server_is_redacted(
    autojump_clock: trio.testing.MockClock, fake_openai: FakeOpenAI, llm_http: httpx.AsyncClient
) -> None:
    secret = "sk-very-secret-key-1234"
    fake_openai.error_after = (1, f"quota exceeded for key {secret}")
    with trio.fail_after(10), pytest.raises(LLMHTTPError) as caught:
        await backend(fake_openai, llm_http, api_key=secret).complete(HISTORY, GenerationOptions())
    assert secret not in str(caught.value)
    assert caught.value.detail == "quota exceeded for key [redacted]"


async def test_the_model_sees_the_whole_history(
    autojump_clock: trio.testing.MockClock, fake_openai: FakeOpenAI, llm_http: httpx.AsyncClient
) -> None:
    def responder(messages: list[dict[str, Any]]) -> Sequence[str]:
        remembered = messages[1]["content"].rsplit(" ", 1)[-1].rstrip(".")
        return ["Your cat ", "is ", remembered, "."]

    fake_openai.responder = responder
    with trio.fail_after(10):
        async with backend(fake_openai, llm_http).stream_chat(HISTORY, GenerationOptions()) as it:
            pieces = [piece async for piece in it]
    assert pieces == ["Your cat ", "is ", "Tofu", "."]


async def test_thinking_removed_and_reasoning_content_ignored(
    autojump_clock: trio.testing.MockClock, fake_openai: FakeOpenAI, llm_http: httpx.AsyncClient
) -> None:
    fake_openai.reasoning = "the user asks about the cat"
    fake_openai.reply = ["<think>", "Tofu, from earlier", "</th", "ink>", "It's Tofu!"]
    with trio.fail_after(10):
        visible = await backend(fake_openai, llm_http).complete(HISTORY, GenerationOptions())
        raw = await backend(fake_openai, llm_http, strip_thinking=False).complete(
            HISTORY, GenerationOptions()
        )
    assert visible == "It's Tofu!"
    assert raw == "<think>Tofu, from earlier</think>It's Tofu!"


async def test_usage_feeds_tokens_per_second(
    autojump_clock: trio.testing.MockClock, fake_openai: FakeOpenAI, llm_http: httpx.AsyncClient
) -> None:
    fake_openai.send_usage = True
    fake_openai.tokens_per_second = 4
    fake_openai.reply = ["a"] * 9  # 8 gaps of 0.25 s after the first token
    llm = backend(fake_openai, llm_http)
    with trio.fail_after(10):
        await llm.complete(HISTORY, GenerationOptions())
    stats = llm.statistics()
    assert stats.provider == "openai"
    assert stats.generated_tokens == 9
    assert stats.average_tokens_per_second == pytest.approx(9 / 2.0)


async def test_no_usage_no_tokens_per_second(
    autojump_clock: trio.testing.MockClock, fake_openai: FakeOpenAI, llm_http: httpx.AsyncClient
) -> None:
    llm = backend(fake_openai, llm_http)
    with trio.fail_after(10):
        await llm.complete(HISTORY, GenerationOptions())
    assert llm.statistics().average_tokens_per_second is None


async def test_list_models(
    autojump_clock: trio.testing.MockClock, fake_openai: FakeOpenAI, llm_http: httpx.AsyncClient
) -> None:
    fake_openai.context_length = 32768
    with trio.fail_after(10):
        models = await backend(fake_openai, llm_http).list_models()
    assert models == [
        ModelInfo(name="qwen2.5-7b-instruct", context_length=32768),
        ModelInfo(name="text-embedding-3-small", context_length=32768),
    ]
    assert fake_openai.requests[0].path == "/v1/models"


async def test_embeddings_in_input_order(
    autojump_clock: trio.testing.MockClock, fake_openai: FakeOpenAI, llm_http: httpx.AsyncClient
) -> None:
    texts = ["alpha", "beta", "gamma"]
    llm = backend(fake_openai, llm_http)
    with trio.fail_after(10):
        vectors = await llm.embed(texts, model="text-embedding-3-small")
    # The fake lists them in reverse: the client orders them by "index".
    assert vectors == [fake_embedding(t, fake_openai.embedding_dim) for t in texts]
    assert fake_openai.requests_to("/v1/embeddings")[0].json == {
        "model": "text-embedding-3-small",
        "input": texts,
    }
    assert llm.statistics().requests == 1


async def test_embeddings_missing_model(
    autojump_clock: trio.testing.MockClock, fake_openai: FakeOpenAI, llm_http: httpx.AsyncClient
) -> None:
    with trio.fail_after(10), pytest.raises(ModelNotFound) as caught:
        await backend(fake_openai, llm_http).embed(["x"], model="bge-m3")
    assert caught.value.model == "bge-m3"


@pytest.mark.parametrize(
    ("url", "base"),
    [
        ("http://localhost:8080", "http://localhost:8080/v1"),
        ("http://localhost:8080/", "http://localhost:8080/v1"),
        ("http://localhost:8080/v1", "http://localhost:8080/v1"),
        ("https://api.openai.com/v1/", "https://api.openai.com/v1"),
        (
            "https://generativelanguage.googleapis.com/v1beta/openai",
            "https://generativelanguage.googleapis.com/v1beta/openai",
        ),
    ],
)
def test_base_url(url: str, base: str) -> None:
    assert base_url(url) == base


@pytest.mark.parametrize(
    ("line", "chunk"),
    [
        ("", None),
        (": keep-alive", None),
        ("event: message", None),
        ("data: [DONE]", Chunk(finished=True, done=True)),
        ('data: {"choices":[{"delta":{"content":"Hi"},"finish_reason":null}]}', Chunk(text="Hi")),
        ('data:{"choices":[{"delta":{"content":null,"role":"assistant"}}]}', Chunk()),
        (
            'data: {"choices":[{"delta":{"reasoning_content":"hmm","content":""}}]}',
            Chunk(),
        ),
        ('data: {"choices":[{"delta":{},"finish_reason":"length"}]}', Chunk(finished=True)),
        (
            'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":7}}',
            Chunk(tokens=7),
        ),
        ('data: {"error":{"message":"boom","type":"x"}}', Chunk(error="boom")),
        ('data: {"error":"plain"}', Chunk(error="plain")),
    ],
)
def test_parse_sse_line(line: str, chunk: Chunk | None) -> None:
    assert _parse_line(line) == chunk
