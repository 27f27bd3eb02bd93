"""`OllamaBackend` against `FakeOllama` over loopback HTTP, on the MockClock.

Assertions are about what crossed the wire (the request bodies the fake recorded) and what the
caller received; the fault modes shared with the OpenAI backend are in ``test_faults.py``.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import trio
import trio.testing

from tests.fakes.llm_servers import FakeOllama, fake_embedding, split_words
from trio_companion.services.llm.base import ChatMessage, GenerationOptions, ModelInfo
from trio_companion.services.llm.errors import LLMHTTPError, ModelNotFound
from trio_companion.services.llm.limits import LLMLimits
from trio_companion.services.llm.ollama import OllamaBackend, keep_alive_value

HISTORY = [
    ChatMessage(role="system", content="You are Mira, a friendly companion."),
    ChatMessage(role="user", content="Hi, I'm Sam."),
    ChatMessage(role="assistant", content="Hi Sam! Nice to meet you."),
    ChatMessage(role="user", content="What's my name?"),
]


def backend(
    fake: FakeOllama,
    http: httpx.AsyncClient,
    *,
    model: str = "llama3.2",
    keep_alive: str = "5m",
    limits: LLMLimits | None = None,
    strip_thinking: bool = True,
) -> OllamaBackend:
    return OllamaBackend(
        http,
        url=fake.url,
        model=model,
        keep_alive=keep_alive,
        limits=limits or LLMLimits(4, 1000),
        strip_thinking=strip_thinking,
    )


async def collect(llm: OllamaBackend, messages: list[ChatMessage] = HISTORY) -> list[str]:
    async with llm.stream_chat(messages, GenerationOptions()) as pieces:
        return [piece async for piece in pieces]


async def test_streams_the_reply_piece_by_piece_at_the_servers_pace(
    autojump_clock: trio.testing.MockClock, fake_ollama: FakeOllama, llm_http: httpx.AsyncClient
) -> None:
    fake_ollama.tokens_per_second = 10
    fake_ollama.reply = reply = "Hello! How can I help you today?"
    llm = backend(fake_ollama, llm_http)
    arrivals: list[tuple[float, str]] = []
    with trio.fail_after(10):
        start = trio.current_time()
        async with llm.stream_chat(HISTORY, GenerationOptions()) as pieces:
            async for piece in pieces:
                arrivals.append((trio.current_time() - start, piece))
    assert [piece for _, piece in arrivals] == split_words(reply)
    # Each piece is delivered as it arrives, not after the whole reply.
    assert [at for at, _ in arrivals] == pytest.approx([i * 0.1 for i in range(len(arrivals))])
    assert fake_ollama.streams[0].outcome == "done"


async def test_request_body_carries_model_history_options_and_keep_alive(
    autojump_clock: trio.testing.MockClock, fake_ollama: FakeOllama, llm_http: httpx.AsyncClient
) -> None:
    llm = backend(fake_ollama, llm_http, keep_alive="30m")
    options = GenerationOptions(
        temperature=0.3,
        top_k=20,
        top_p=0.8,
        min_p=0.1,
        repeat_penalty=1.2,
        num_predict=-1,
        num_ctx=16384,
    )
    with trio.fail_after(10):
        await llm.complete(HISTORY, options)
    request = fake_ollama.requests_to("/api/chat")[0]
    assert request.method == "POST"
    assert request.header("content-type") == "application/json"
    assert request.header("authorization") is None
    assert request.json == {
        "model": "llama3.2",
        "messages": [
            {"role": "system", "content": "You are Mira, a friendly companion."},
            {"role": "user", "content": "Hi, I'm Sam."},
            {"role": "assistant", "content": "Hi Sam! Nice to meet you."},
            {"role": "user", "content": "What's my name?"},
        ],
        "stream": True,
        "options": {
            "temperature": 0.3,
            "top_k": 20,
            "top_p": 0.8,
            "min_p": 0.1,
            "repeat_penalty": 1.2,
            "num_predict": -1,
            "num_ctx": 16384,
        },
        "keep_alive": "30m",
    }


@pytest.mark.parametrize(
    ("configured", "sent"), [("5m", "5m"), ("1h", "1h"), ("300s", "300s"), ("-1", -1), ("0", 0)]
)
async def test_keep_alive_is_sent_as_ollama_parses_it(
    autojump_clock: trio.testing.MockClock,
    fake_ollama: FakeOllama,
    llm_http: httpx.AsyncClient,
    configured: str,
    sent: int | str,
) -> None:
    assert keep_alive_value(configured) == sent
    with trio.fail_after(10):
        await backend(fake_ollama, llm_http, keep_alive=configured).complete(
            HISTORY, GenerationOptions()
        )
    assert fake_ollama.chat_bodies[0]["keep_alive"] == sent


async def test_the_model_sees_the_whole_history(
    autojump_clock: trio.testing.MockClock, fake_ollama: FakeOllama, llm_http: httpx.AsyncClient
) -> None:
    def responder(messages: list[dict[str, Any]]) -> str:
        said = [m["content"] for m in messages if m["role"] == "user"]
        return f"You said {len(said)} things; first: {said[0]}"

    fake_ollama.responder = responder
    with trio.fail_after(10):
        reply = await backend(fake_ollama, llm_http).complete(HISTORY, GenerationOptions())
    assert reply == "You said 2 things; first: Hi, I'm Sam."


async def test_thinking_is_removed_across_chunks_and_the_thinking_field_ignored(
    autojump_clock: trio.testing.MockClock, fake_ollama: FakeOllama, llm_http: httpx.AsyncClient
) -> None:
    fake_ollama.reply = ["<th", "ink>The user wants", " a greeting.</thi", "nk>\n\nHel", "lo!"]
    fake_ollama.reasoning = "separate reasoning field"
    with trio.fail_after(10):
        pieces = await collect(backend(fake_ollama, llm_http))
        raw = await backend(fake_ollama, llm_http, strip_thinking=False).complete(
            HISTORY, GenerationOptions()
        )
    assert pieces == ["Hel", "lo!"]
    assert raw == "<think>The user wants a greeting.</think>\n\nHello!"


async def test_unterminated_thinking_shows_nothing(
    autojump_clock: trio.testing.MockClock, fake_ollama: FakeOllama, llm_http: httpx.AsyncClient
) -> None:
    fake_ollama.reply = ["<think>", "I should", " think more but num_predict ran out"]
    with trio.fail_after(10):
        assert await collect(backend(fake_ollama, llm_http)) == []


async def test_missing_model_says_to_pull_it(
    autojump_clock: trio.testing.MockClock, fake_ollama: FakeOllama, llm_http: httpx.AsyncClient
) -> None:
    llm = backend(fake_ollama, llm_http, model="mistral-nemo")
    with trio.fail_after(10), pytest.raises(ModelNotFound) as caught:
        await llm.complete(HISTORY, GenerationOptions())
    assert caught.value.model == "mistral-nemo"
    assert str(caught.value) == (
        "The model 'mistral-nemo' isn't installed on Ollama: "
        "run `ollama pull mistral-nemo` on the server, then try again."
    )
    assert llm.statistics().failures == 1


async def test_a_404_that_is_not_about_a_model_is_an_http_error(
    autojump_clock: trio.testing.MockClock, fake_ollama: FakeOllama, llm_http: httpx.AsyncClient
) -> None:
    llm = OllamaBackend(
        llm_http, url=fake_ollama.url + "/wrong", model="llama3.2", keep_alive="5m",
        limits=LLMLimits(1, 10),
    )  # fmt: skip
    with trio.fail_after(10), pytest.raises(LLMHTTPError) as caught:
        await llm.complete(HISTORY, GenerationOptions())
    assert caught.value.status == 404
    assert str(caught.value) == (
        "The LLM server answered with an error (HTTP 404): 404 page not found."
    )


async def test_list_models_with_context_lengths(
    autojump_clock: trio.testing.MockClock, fake_ollama: FakeOllama, llm_http: httpx.AsyncClient
) -> None:
    fake_ollama.context_length = 32768
    llm = backend(fake_ollama, llm_http)
    with trio.fail_after(10):
        models = await llm.list_models()
        shown = await llm.show()
    assert models == [
        ModelInfo(name="llama3.2:latest", context_length=32768),
        ModelInfo(name="nomic-embed-text:latest", context_length=32768),
    ]
    assert shown == ModelInfo(name="llama3.2", context_length=32768)
    assert fake_ollama.requests_to("/api/show")[-1].json == {"model": "llama3.2"}
    assert llm.statistics().requests == 0  # listings are not model work


async def test_show_missing_model(
    autojump_clock: trio.testing.MockClock, fake_ollama: FakeOllama, llm_http: httpx.AsyncClient
) -> None:
    with trio.fail_after(10), pytest.raises(ModelNotFound):
        await backend(fake_ollama, llm_http).show("nope")


async def test_embed(
    autojump_clock: trio.testing.MockClock, fake_ollama: FakeOllama, llm_http: httpx.AsyncClient
) -> None:
    llm = backend(fake_ollama, llm_http)
    texts = ["the cat sat", "on the mat", "the cat sat"]
    with trio.fail_after(10):
        vectors = await llm.embed(texts, model="nomic-embed-text")
        assert await llm.embed([], model="nomic-embed-text") == []
    assert vectors == [fake_embedding(t, fake_ollama.embedding_dim) for t in texts]
    assert [r.json for r in fake_ollama.requests_to("/api/embed")] == [
        {"model": "nomic-embed-text", "input": texts, "keep_alive": "5m"}
    ]


async def test_embed_with_a_missing_model(
    autojump_clock: trio.testing.MockClock, fake_ollama: FakeOllama, llm_http: httpx.AsyncClient
) -> None:
    llm = backend(fake_ollama, llm_http)
    with trio.fail_after(10), pytest.raises(ModelNotFound) as caught:
        await llm.embed(["x"], model="mxbai-embed-large")
    assert "ollama pull mxbai-embed-large" in str(caught.value)
    assert (llm.statistics().requests, llm.statistics().failures) == (1, 1)


async def test_statistics(
    autojump_clock: trio.testing.MockClock, fake_ollama: FakeOllama, llm_http: httpx.AsyncClient
) -> None:
    fake_ollama.tokens_per_second = 20
    fake_ollama.slow_first_token = 1.5
    fake_ollama.reply = ["a"] * 10
    llm = backend(fake_ollama, llm_http)
    fresh = llm.statistics()
    assert (fresh.requests, fresh.last_first_token_latency, fresh.average_tokens_per_second) == (
        0,
        None,
        None,
    )
    with trio.fail_after(30):
        await llm.complete(HISTORY, GenerationOptions())
        await llm.complete(HISTORY, GenerationOptions())
    stats = llm.statistics()
    assert stats.provider == "ollama"
    assert stats.model == "llama3.2"
    assert (stats.requests, stats.failures, stats.streaming) == (2, 0, 0)
    assert stats.last_first_token_latency == pytest.approx(1.5)
    # From the final chunk's eval_count / eval_duration: 10 tokens in 0.5 s, twice.
    assert stats.generated_tokens == 20
    assert stats.average_tokens_per_second == pytest.approx(20)
