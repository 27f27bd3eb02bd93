"""LLM backends: Ollama's native API and OpenAI-compatible servers, behind `LLMBackend`.

`factory` builds everything from `LLMConfig`; `errors` draws the error tree; `limits` is the
concurrency and per-minute budget every caller shares; `thinking` removes reasoning blocks.
"""

from trio_companion.services.llm._common import LLMStatistics
from trio_companion.services.llm.base import (
    ChatMessage,
    GenerationOptions,
    LLMBackend,
    ModelInfo,
    Role,
)
from trio_companion.services.llm.errors import (
    LLMBusy,
    LLMError,
    LLMHTTPError,
    LLMStreamCut,
    LLMTimeout,
    LLMUnreachable,
    ModelNotFound,
)
from trio_companion.services.llm.factory import (
    make_backend,
    make_limits,
    make_llm_http_client,
    options_from,
)
from trio_companion.services.llm.limits import LLMLimits, LLMLimitsStatistics
from trio_companion.services.llm.ollama import OllamaBackend
from trio_companion.services.llm.openai import OpenAICompatibleBackend
from trio_companion.services.llm.thinking import ThinkingFilter, strip_thinking

__all__ = [
    "ChatMessage",
    "GenerationOptions",
    "LLMBackend",
    "LLMBusy",
    "LLMError",
    "LLMHTTPError",
    "LLMLimits",
    "LLMLimitsStatistics",
    "LLMStatistics",
    "LLMStreamCut",
    "LLMTimeout",
    "LLMUnreachable",
    "ModelInfo",
    "ModelNotFound",
    "OllamaBackend",
    "OpenAICompatibleBackend",
    "Role",
    "ThinkingFilter",
    "make_backend",
    "make_limits",
    "make_llm_http_client",
    "options_from",
    "strip_thinking",
]
