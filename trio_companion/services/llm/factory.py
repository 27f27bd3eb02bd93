"""Build the LLM side of the app from `LLMConfig`: its HTTP client, limits, backend and options.

This is the only place where LLM timeouts live (STYLE.md 11): `make_llm_http_client` puts them
on the ``httpx.AsyncClient`` that every backend call goes through, so the backends take none.
Start-up reads like::

    limits = make_limits(config.llm)
    async with make_llm_http_client(config.llm) as http:
        backend = make_backend(config.llm, http, limits)
"""

from __future__ import annotations

import ssl

import httpx

from trio_companion.config.model import LLMConfig
from trio_companion.gateway.tls import make_ssl_context
from trio_companion.services.llm.base import GenerationOptions, LLMBackend
from trio_companion.services.llm.limits import LLMLimits
from trio_companion.services.llm.ollama import OllamaBackend
from trio_companion.services.llm.openai import OpenAICompatibleBackend

__all__ = ["make_backend", "make_limits", "make_llm_http_client", "options_from"]


def make_llm_http_client(
    config: LLMConfig, *, ssl_context: ssl.SSLContext | None = None
) -> httpx.AsyncClient:
    """A new (not yet entered) client for the LLM server, with the configured timeouts.

    - ``connect``: ``connect_timeout``, to open a connection (and the TLS handshake);
    - ``read``: ``read_timeout``, for the response head (model loading and the first token)
      and then for each gap between two chunks of a streamed reply;
    - ``write``: ``connect_timeout``: a healthy server reads a request of a few kilobytes at once;
    - ``pool``: ``read_timeout``: waiting for a free pooled connection is waiting for a reply.

    ``ssl_context`` is the app's client context (`make_ssl_context`); without one, a new one is
    made here, which reads certificate files: pass one from async code.
    """
    timeout = httpx.Timeout(
        connect=config.connect_timeout,
        read=config.read_timeout,
        write=config.connect_timeout,
        pool=config.read_timeout,
    )
    return httpx.AsyncClient(timeout=timeout, verify=ssl_context or make_ssl_context())


def make_limits(config: LLMConfig) -> LLMLimits:
    """The one `LLMLimits` every LLM caller shares."""
    return LLMLimits(config.max_concurrency, config.requests_per_minute)


def make_backend(config: LLMConfig, http: httpx.AsyncClient, limits: LLMLimits) -> LLMBackend:
    """The backend for ``config.provider`` on ``http`` (from `make_llm_http_client`)."""
    if config.provider == "ollama":
        return OllamaBackend(
            http,
            url=config.url,
            model=config.model,
            keep_alive=config.keep_alive,
            limits=limits,
            strip_thinking=config.strip_thinking,
        )
    return OpenAICompatibleBackend(
        http,
        url=config.url,
        model=config.model,
        api_key=config.api_key,
        limits=limits,
        strip_thinking=config.strip_thinking,
    )


def options_from(config: LLMConfig) -> GenerationOptions:
    """The configured sampling settings, for requests that do not override them."""
    return GenerationOptions(
        temperature=config.temperature,
        top_k=config.top_k,
        top_p=config.top_p,
        min_p=config.min_p,
        repeat_penalty=config.repeat_penalty,
        num_predict=config.num_predict,
        num_ctx=config.num_ctx,
    )
