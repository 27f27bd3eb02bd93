"""What both RVC backends share: requests on the injected client, failures mapped to `RVCError`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, final

import httpx
import msgspec

from trio_companion.services.rvc.errors import RVCFailed, short_detail, transport_error

__all__ = ["Transport", "error_detail"]

_JSON = {"content-type": "application/json"}


def error_detail(body: bytes, fallback: str) -> str:
    """The explanation in an error body: FastAPI's ``detail``, Gradio's ``error``, or the text."""
    try:
        parsed: Any = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return short_detail(body.decode("utf-8", "replace")) or fallback
    if isinstance(parsed, dict):
        for key in ("detail", "error", "message"):
            value = parsed.get(key)
            if isinstance(value, str) and value:
                return value
    return fallback


@final
class Transport:
    """Requests to one server at ``base_url`` on ``http``."""

    def __init__(self, http: httpx.AsyncClient, base_url: str) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else self.base_url + path

    async def send(
        self,
        method: str,
        path: str,
        *,
        json: object = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send and read the whole response; transport failures become `RVCUnavailable`.

        The status is not checked: callers map their server's error statuses themselves.
        """
        payload = b"" if json is None else msgspec.json.encode(json)
        request = self.http.build_request(
            method,
            self.url(path),
            content=payload or None,
            headers={**(_JSON if json is not None else {}), **(headers or {})},
        )
        request.stream = _Payload(payload)  # see _Payload
        try:
            return await self.http.send(request)
        except httpx.TransportError as exc:
            raise transport_error(self.base_url, exc) from None

    async def json(self, method: str, path: str, *, json: object = None) -> Any:
        """Send, require a 2xx JSON answer and return it parsed; `RVCFailed` otherwise."""
        response = await self.send(method, path, json=json)
        if not response.is_success:
            raise RVCFailed(
                response.status_code, error_detail(response.content, response.reason_phrase)
            )
        try:
            return msgspec.json.decode(response.content)
        except msgspec.DecodeError:
            raise RVCFailed(response.status_code, "the server's answer is not JSON") from None


@final
class _Payload(httpx.AsyncByteStream):
    """A request body that is not an async generator.

    httpx wraps ``content=bytes`` in a stream whose ``__aiter__`` is an async generator; when
    sending fails half-way (a pooled connection the server has just closed) it is abandoned, and
    trio reports that as a ResourceWarning (encode/httpx#3686). ``build_request`` has already set
    Content-Length from the same bytes.
    """

    def __init__(self, data: bytes) -> None:
        self._data = data

    def __aiter__(self) -> AsyncIterator[bytes]:
        return _Once(self._data)


@final
class _Once:
    def __init__(self, data: bytes) -> None:
        self._data: bytes | None = data or None

    def __aiter__(self) -> _Once:
        return self

    async def __anext__(self) -> bytes:
        if self._data is None:
            raise StopAsyncIteration
        data, self._data = self._data, None
        return data
