"""Every `LLMError` is a sentence a Discord user can read, with no secret in it."""

from __future__ import annotations

import pytest

from trio_companion.errors import CompanionError
from trio_companion.services.llm.errors import (
    LLMBusy,
    LLMError,
    LLMHTTPError,
    LLMStreamCut,
    LLMTimeout,
    LLMUnreachable,
    ModelNotFound,
)


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (
            LLMUnreachable("http://localhost:11434"),
            "Can't reach the LLM server at http://localhost:11434: is Ollama running?",
        ),
        (
            LLMUnreachable("https://user:hunter2@llm.example/v1", provider="openai"),
            "Can't reach the LLM server at https://llm.example/v1: is the server running?",
        ),
        (
            ModelNotFound("llama3.2", "ollama"),
            "The model 'llama3.2' isn't installed on Ollama: "
            "run `ollama pull llama3.2` on the server, then try again.",
        ),
        (
            ModelNotFound("gpt-x", "openai"),
            "The LLM server has no model named 'gpt-x': check the model name in the configuration.",
        ),
        (
            LLMHTTPError(500, "  out of\nmemory  "),
            "The LLM server answered with an error (HTTP 500): out of memory.",
        ),
        (LLMHTTPError(502, ""), "The LLM server answered with an error (HTTP 502): no details."),
        (
            LLMHTTPError(200, "bad things happened!"),
            "The LLM server reported an error while replying: bad things happened!",
        ),
        (
            LLMHTTPError(403, "Forbidden"),
            "The LLM server refused our credentials (HTTP 403): Forbidden. "
            "Check the API key in the configuration.",
        ),
        (
            LLMStreamCut(0),
            "The LLM server closed the connection before finishing its reply.",
        ),
        (
            LLMStreamCut(42),
            "The reply was cut off after 42 characters: the connection to the LLM server broke.",
        ),
        (LLMBusy(None), "The LLM is busy right now: try again in a moment."),
        (LLMBusy(0.2), "The LLM is busy right now: try again in 1 second."),
        (LLMBusy(29.5), "The LLM is busy right now: try again in 30 seconds."),
    ],
)
def test_messages(error: LLMError, message: str) -> None:
    assert str(error) == message
    assert isinstance(error, CompanionError)


def test_timeout_messages_depend_on_progress() -> None:
    assert "took too long to answer" in str(LLMTimeout())
    assert "stopped in the middle of its reply" in str(LLMTimeout(received_chars=10))


def test_long_details_are_shortened() -> None:
    error = LLMHTTPError(500, "x" * 5000)
    assert len(error.detail) == 300
    assert error.detail.endswith("…")
    assert len(str(error)) < 400
