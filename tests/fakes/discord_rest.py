"""A fake Discord REST API (v10) over real HTTPS on loopback, strict where Discord is strict.

`FakeDiscordRest` serves the routes `trio_companion.gateway.rest.RestClient` uses and checks
each request the way Discord does (PROTOCOL.md §3-4): the ``Authorization: Bot <token>`` header
(401 code 0 otherwise; interaction routes need none), a ``User-Agent`` starting
``DiscordBot (``, the Content-Type (50035), valid JSON (50109), content of at most 2000
characters (400 50035 with an ``errors`` body), empty messages (50006), unknown channels (404
10003) and messages (10008), the 3-second interaction deadline (404 10062), a second callback
(400 40060), interaction tokens past 15 minutes (401 50027).

Rate limits are real too. Every routed response carries ``X-RateLimit-Limit/Remaining/Reset/
Reset-After/Bucket`` from a fixed window per bucket hash and major parameter; the window is
configurable per route with `FakeDiscordRest.set_rate_limit` (the default is generous, so tests
that are not about limits never wait). A request over the limit gets a 429, as does a
non-interaction request past `GLOBAL_LIMIT` per second: the fake *enforces* the limits, so a
client that sends too early sees it. ``X-RateLimit-Reset`` is a wall-clock epoch and the
rest runs on trio's clock, so a client that used the epoch would misbehave under MockClock.

Tests script faults on requests that match a *matcher*: a string
``"METHOD /path-or-template"`` with ``fnmatch`` wildcards, compared to both the request's path
(``POST /channels/5/messages``) and its route template (``POST /channels/{channel_id}/messages``),
or a predicate on the raw `Request`. Each fires ``times`` times: `script_status` and
`script_drop` before any other check (like a proxy in front of Discord), `script_429` after the
auth and body checks (its wait is enforced: a retry before it elapses gets another 429).

A tiny CDN sits beside the API: `FakeDiscordRest.cdn` maps names to bytes, served without
authentication by ``GET /cdn/<name>`` (outside ``/api/v10``; `FakeDiscordRest.cdn_url`), as
Discord serves attachments. Faults can be scripted on it like on any route (``"GET /cdn/*"``).

Everything that arrives is kept in `FakeDiscordRest.requests` as a `RecordedRequest`: method,
path, query, headers, raw and parsed body, uploaded files, arrival time on trio's clock, and the
status answered (``None`` when dropped). Assertions are about what crossed the wire.

Fixtures (registered in ``tests/conftest.py``): `fake_discord_rest` (running for the test),
`discord_http` (an ``httpx.AsyncClient`` trusting the fake CA through ``SSL_CERT_FILE``) and
`rest_client` (a `RestClient` on both).
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import math
import re
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, final

import httpx
import pytest
import trio

from tests.fakes.https import DROP, Drop, Request, Response, serve_https
from trio_companion.gateway.rest import RestClient
from trio_companion.gateway.tls import make_ssl_context

__all__ = [
    "FAKE_TOKEN",
    "GLOBAL_LIMIT",
    "FakeDiscordRest",
    "FakeInteraction",
    "Matcher",
    "RateLimit",
    "RecordedRequest",
    "UploadedFile",
    "discord_http",
    "fake_discord_rest",
    "rest_client",
]

FAKE_TOKEN: Final = "MTEwMDAwMDAwMDAwMDAwMDAwMQ.GfAkEt.not-a-real-token-for-tests-only"
API_PREFIX: Final = "/api/v10"  # PROTOCOL §3.1
MAX_CONTENT: Final = 2000  # PROTOCOL §3.3
GLOBAL_LIMIT: Final = 50  # requests per second: PROTOCOL §3.2
INTERACTION_DEADLINE: Final = 3.0  # seconds to the first callback: PROTOCOL §4
INTERACTION_TOKEN_LIFETIME: Final = 15 * 60.0  # followups and @original: PROTOCOL §4
DEFAULT_LIMIT: Final = 1_000  # per window: generous on purpose, see the module docstring
DEFAULT_PERIOD: Final = 1.0
_EPSILON: Final = 1e-6  # float slack when comparing trio times the client computed
_EPOCH: Final = datetime(2026, 1, 1, tzinfo=UTC)  # trio time 0 in message timestamps
_FIRST_SNOWFLAKE: Final = 1_300_000_000_000_000_000
_CALLBACK_TYPES: Final = frozenset({1, 4, 5, 6, 7, 8, 9, 10, 12})  # PROTOCOL §4 table

Matcher = str | Callable[[Request], bool]


@dataclass(frozen=True, slots=True)
class UploadedFile:
    field_name: str  #: ``files[n]``
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request that reached the fake, and the status it got (``None``: dropped)."""

    method: str
    path: str  #: without the ``/api/v10`` prefix and the query
    route: str | None  #: ``"METHOD /template"`` when it matched a route
    query: dict[str, str]
    headers: dict[str, str]  #: lower-case names
    body: bytes
    json: Any  #: the JSON body, or ``payload_json`` of a multipart body; ``None`` without
    files: tuple[UploadedFile, ...]
    arrived_at: float
    connection: int
    status: int | None


@dataclass(frozen=True, slots=True)
class RateLimit:
    limit: int
    per: float
    bucket: str  #: the X-RateLimit-Bucket hash


@dataclass
class FakeInteraction:
    """An interaction the test says Discord created; the fake's view of its responses."""

    id: int
    token: str
    created_at: float
    channel_id: int
    callback_type: int | None = None
    original: dict[str, Any] | None = None
    followups: dict[int, dict[str, Any]] = field(default_factory=dict)


@dataclass
class _Parsed:
    payload: Any = None
    files: tuple[UploadedFile, ...] = ()


@dataclass
class _Fault:
    matcher: Matcher
    times: int
    kind: str  # "429", "status", "drop"
    status: int = 0
    body: bytes = b""
    retry_after: float = 0.0
    scope: str = "user"
    is_global: bool = False


@dataclass
class _Window:
    limit: int
    per: float
    remaining: int = 0
    reset_at: float = -math.inf
    blocked_until: float = -math.inf
    blocked_scope: str = "user"


class _Reject(Exception):
    def __init__(self, status: int, code: int, message: str, errors: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"message": message, "code": code}
        if errors is not None:
            self.body["errors"] = errors


def _max_length_errors(field_name: str) -> dict[str, Any]:
    return {
        field_name: {
            "_errors": [
                {
                    "code": "BASE_TYPE_MAX_LENGTH",
                    "message": f"Must be {MAX_CONTENT} or fewer in length.",
                }
            ]
        }
    }


# (method, template): the routes the fake serves, most specific first.
_ROUTES: Final = (
    ("GET", "/gateway/bot"),
    ("GET", "/users/@me"),
    ("GET", "/applications/@me"),
    ("POST", "/users/@me/channels"),
    ("GET", "/channels/{channel_id}/messages"),
    ("POST", "/channels/{channel_id}/messages"),
    ("PATCH", "/channels/{channel_id}/messages/{message_id}"),
    ("DELETE", "/channels/{channel_id}/messages/{message_id}"),
    ("POST", "/channels/{channel_id}/typing"),
    ("PUT", "/applications/{application_id}/commands"),
    ("PUT", "/applications/{application_id}/guilds/{guild_id}/commands"),
    ("POST", "/interactions/{interaction_id}/{interaction_token}/callback"),
    ("PATCH", "/webhooks/{application_id}/{interaction_token}/messages/@original"),
    ("DELETE", "/webhooks/{application_id}/{interaction_token}/messages/@original"),
    ("POST", "/webhooks/{application_id}/{interaction_token}"),
    ("PATCH", "/webhooks/{application_id}/{interaction_token}/messages/{message_id}"),
    ("DELETE", "/webhooks/{application_id}/{interaction_token}/messages/{message_id}"),
)
_MAJOR: Final = ("channel_id", "guild_id", "application_id", "interaction_id", "interaction_token")


def _compile(template: str) -> re.Pattern[str]:
    pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
    return re.compile(f"^{pattern}$")


_COMPILED: Final = tuple((m, t, _compile(t)) for m, t in _ROUTES)


def _matches(matcher: Matcher, request: Request, path: str, route: str | None) -> bool:
    if callable(matcher):
        return matcher(request)
    return fnmatch.fnmatchcase(f"{request.method} {path}", matcher) or (
        route is not None and fnmatch.fnmatchcase(route, matcher)
    )


def _parse_multipart(body: bytes, content_type: str) -> list[tuple[dict[str, str], bytes]]:
    """Split a multipart/form-data body into ``(disposition params + content-type, data)``."""
    found = re.search(r'boundary="?([^";]+)"?', content_type)
    if found is None:
        raise _Reject(400, 50035, "Invalid Form Body", {"_errors": [{"code": "NO_BOUNDARY"}]})
    delimiter = b"\r\n--" + found.group(1).encode()
    segments = (b"\r\n" + body).split(delimiter)
    parts = []
    for segment in segments[1:]:
        if segment.startswith(b"--"):
            break
        head, _, data = segment.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        fields: dict[str, str] = {}
        for line in head.decode("utf-8").split("\r\n"):
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-disposition":
                fields.update(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', value))
            elif name.strip().lower() == "content-type":
                fields["content-type"] = value.strip()
        parts.append((fields, data))
    return parts


@final
class FakeDiscordRest:
    """The fake; start it with ``await nursery.start(fake.run)`` (see `fake_discord_rest`).

    ``gateway_url`` is what ``GET /gateway/bot`` returns (set it once the fake gateway listens).
    ``global_limit`` ``None`` turns the global limit off.
    """

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext,
        token: str = FAKE_TOKEN,
        application_id: int = 1_100_000_000_000_000_001,
        bot_user_id: int = 1_100_000_000_000_000_001,
        gateway_url: str = "wss://127.0.0.1:1",
        shards: int = 1,
        global_limit: int | None = GLOBAL_LIMIT,
    ) -> None:
        self.ssl_context = ssl_context
        self.token = token
        self.application_id = application_id
        self.bot_user_id = bot_user_id
        self.gateway_url = gateway_url
        self.shards = shards
        self.max_concurrency = 1  #: session_start_limit.max_concurrency in GET /gateway/bot
        self.global_limit = global_limit
        self.port: int | None = None
        self.requests: list[RecordedRequest] = []
        self.channels: dict[int, dict[int, dict[str, Any]]] = {}
        self.dm_channels: dict[int, int] = {}  # user id -> channel id
        self.global_commands: list[dict[str, Any]] = []
        self.guild_commands: dict[int, list[dict[str, Any]]] = {}
        self.interactions: dict[int, FakeInteraction] = {}
        self.cdn: dict[str, bytes] = {}  #: served at `cdn_url` (name)
        self._next_id = _FIRST_SNOWFLAKE
        self._limits: dict[str, RateLimit] = {}
        self._windows: dict[tuple[str, tuple[str, ...]], _Window] = {}
        self._global_sent: deque[float] = deque()
        self._global_blocked_until = -math.inf
        self._faults: list[_Fault] = []
        self._changed = trio.Event()

    # --- test API -------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled; ``task_status.started(port)`` once listening."""
        async with trio.open_nursery() as nursery:
            self.port = await nursery.start(self._serve)
            task_status.started(self.port)

    async def _serve(self, *, task_status: trio.TaskStatus[int]) -> None:
        await serve_https(self._handle, ssl_context=self.ssl_context, task_status=task_status)

    @property
    def url(self) -> str:
        """The API base URL to give `RestClient` (``https://127.0.0.1:<port>/api/v10``)."""
        if self.port is None:
            raise RuntimeError("the fake is not running yet")
        return f"https://127.0.0.1:{self.port}{API_PREFIX}"

    async def wait_until(self, condition: Callable[[], bool]) -> None:
        """Return once ``condition()`` holds; it is checked after every request handled."""
        while not condition():
            await self._changed.wait()

    def cdn_url(self, name: str) -> str:
        """The https address at which the fake serves ``cdn[name]``."""
        if self.port is None:
            raise RuntimeError("the fake is not running yet")
        return f"https://127.0.0.1:{self.port}/cdn/{name}"

    def add_channel(self, channel_id: int) -> None:
        self.channels.setdefault(channel_id, {})

    def messages(self, channel_id: int) -> list[dict[str, Any]]:
        """The channel's messages, oldest first, as the fake stores them (JSON-shaped)."""
        return list(self.channels[channel_id].values())

    def register_interaction(
        self,
        interaction_id: int,
        token: str,
        *,
        created_at: float | None = None,
        channel_id: int | None = None,
    ) -> FakeInteraction:
        """Declare that Discord created an interaction at ``created_at`` (default: now)."""
        if channel_id is None:
            channel_id = self._snowflake()
        self.add_channel(channel_id)
        interaction = FakeInteraction(
            id=interaction_id,
            token=token,
            created_at=trio.current_time() if created_at is None else created_at,
            channel_id=channel_id,
        )
        self.interactions[interaction_id] = interaction
        return interaction

    def set_rate_limit(
        self, route: str, *, limit: int, per: float, bucket: str | None = None
    ) -> None:
        """Limit ``route`` (``"POST /channels/{channel_id}/messages"``) to ``limit`` per ``per``
        seconds per major parameter; routes given the same ``bucket`` share the hash."""
        if route not in {f"{m} {t}" for m, t in _ROUTES}:
            raise ValueError(f"the fake has no route {route!r}")
        self._limits[route] = RateLimit(limit, per, bucket or self._default_bucket(route))

    def script_429(
        self,
        matcher: Matcher,
        retry_after: float,
        *,
        scope: str = "user",
        is_global: bool | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` matching requests with 429 and block for ``retry_after``.

        ``scope`` ``"global"`` (or ``is_global``) blocks every non-interaction route; other
        scopes block the request's bucket.
        """
        self._faults.append(
            _Fault(
                matcher,
                times,
                "429",
                retry_after=retry_after,
                scope=scope,
                is_global=scope == "global" if is_global is None else is_global,
            )
        )

    def script_status(
        self, matcher: Matcher, status: int, *, times: int = 1, body: bytes | None = None
    ) -> None:
        """Answer the next ``times`` matching requests with ``status`` (JSON body by default)."""
        if body is None:
            body = json.dumps({"message": f"{status}: scripted by the test", "code": 0}).encode()
        self._faults.append(_Fault(matcher, times, "status", status=status, body=body))

    def script_drop(self, matcher: Matcher, *, times: int = 1) -> None:
        """Close the connection without answering the next ``times`` matching requests."""
        self._faults.append(_Fault(matcher, times, "drop"))

    def requests_to(self, matcher: Matcher) -> list[RecordedRequest]:
        """The recorded requests that ``matcher`` matches (string matchers only look at the
        method, the path and the route template)."""
        if callable(matcher):
            raise TypeError("requests_to takes a string matcher")
        return [
            r
            for r in self.requests
            if fnmatch.fnmatchcase(f"{r.method} {r.path}", matcher)
            or (r.route is not None and fnmatch.fnmatchcase(r.route, matcher))
        ]

    # --- request handling -----------------------------------------------------------------

    def _snowflake(self) -> int:
        self._next_id += 1
        return self._next_id

    @staticmethod
    def _default_bucket(route: str) -> str:
        return hashlib.sha1(route.encode()).hexdigest()[:32]

    async def _handle(self, request: Request) -> Response | Drop:
        path = request.path
        route, params = None, dict[str, str]()
        if path.startswith(API_PREFIX + "/"):
            path = path.removeprefix(API_PREFIX)
            for method, template, pattern in _COMPILED:
                if method == request.method and (found := pattern.match(path)):
                    route, params = f"{method} {template}", found.groupdict()
                    break
        parsed = _Parsed()
        response = self._respond(request, path, route, params, parsed)
        self.requests.append(
            RecordedRequest(
                method=request.method,
                path=path,
                route=route,
                query=request.query,
                headers=dict(request.headers),
                body=request.body,
                json=parsed.payload,
                files=parsed.files,
                arrived_at=request.arrived_at,
                connection=request.connection,
                status=None if isinstance(response, Drop) else response.status,
            )
        )
        self._changed.set()
        self._changed = trio.Event()
        return response

    def _respond(
        self,
        request: Request,
        path: str,
        route: str | None,
        params: dict[str, str],
        parsed: _Parsed,
    ) -> Response | Drop:
        headers: list[tuple[str, str]] = []
        try:
            fault = self._take_fault(request, path, route)
            if fault is not None and fault.kind == "drop":
                return DROP
            if fault is not None and fault.kind == "status":
                return Response(fault.status, (("content-type", "application/json"),), fault.body)
            if route is None and request.method == "GET" and path.startswith("/cdn/"):
                data = self.cdn.get(path.removeprefix("/cdn/"))
                if data is None:
                    raise _Reject(404, 0, "404: Not Found")
                return Response(200, (("content-type", "application/octet-stream"),), data)
            if route is None:
                raise _Reject(404, 0, "404: Not Found")
            exempt = "interaction_token" in params
            if not exempt and request.header("authorization") != f"Bot {self.token}":
                raise _Reject(401, 0, "401: Unauthorized")
            if not (request.header("user-agent") or "").startswith("DiscordBot ("):
                raise _Reject(400, 0, "User-Agent must look like 'DiscordBot (url, version)'")
            parsed.payload, parsed.files = self._parse_body(request)
            now = request.arrived_at
            if fault is not None:  # a scripted 429
                headers = self._window_headers(route, params, now, consume=False)
                return self._too_many(fault, route, params, now, headers)
            if not exempt:
                self._check_global(now)
            headers = self._window_headers(route, params, now, consume=True)
            status, body = self._dispatch(route, params, request, parsed.payload, parsed.files)
            return Response(status, (*headers, *self._json_type(body)), body)
        except _Reject as reject:
            body = json.dumps(reject.body).encode()
            return Response(reject.status, (*headers, *self._json_type(body)), body)
        except _TooMany as too_many:
            return too_many.response

    @staticmethod
    def _json_type(body: bytes) -> tuple[tuple[str, str], ...]:
        return (("content-type", "application/json"),) if body else ()

    def _take_fault(self, request: Request, path: str, route: str | None) -> _Fault | None:
        for fault in self._faults:
            if fault.times > 0 and _matches(fault.matcher, request, path, route):
                fault.times -= 1
                return fault
        return None

    def _parse_body(self, request: Request) -> tuple[Any, tuple[UploadedFile, ...]]:
        if not request.body:
            return None, ()
        content_type = (request.header("content-type") or "").lower()
        if content_type.startswith("application/json"):
            return self._decode_json(request.body), ()
        if content_type.startswith("multipart/form-data"):
            payload: Any = None
            files = []
            for fields, data in _parse_multipart(
                request.body, request.header("content-type") or ""
            ):
                name = fields.get("name", "")
                if name == "payload_json":
                    payload = self._decode_json(data)
                elif re.fullmatch(r"files\[\d+\]", name) and "filename" in fields:
                    ctype = fields.get("content-type", "application/octet-stream")
                    files.append(UploadedFile(name, fields["filename"], ctype, data))
                else:
                    raise _Reject(400, 50035, "Invalid Form Body", {name: {"_errors": []}})
            return payload, tuple(files)
        raise _Reject(
            400,
            50035,
            "Invalid Form Body",
            {"_errors": [{"code": "CONTENT_TYPE_INVALID", "message": "Unsupported Content-Type"}]},
        )

    @staticmethod
    def _decode_json(data: bytes) -> Any:
        try:
            return json.loads(data)
        except ValueError:
            raise _Reject(400, 50109, "The request body contains invalid JSON.") from None

    # --- rate limits ----------------------------------------------------------------------

    def _window(self, route: str, params: dict[str, str]) -> tuple[RateLimit, _Window]:
        limit = self._limits.get(route) or RateLimit(
            DEFAULT_LIMIT, DEFAULT_PERIOD, self._default_bucket(route)
        )
        major = tuple(params[name] for name in _MAJOR if name in params)
        window = self._windows.setdefault((limit.bucket, major), _Window(limit.limit, limit.per))
        return limit, window

    def _window_headers(
        self, route: str, params: dict[str, str], now: float, *, consume: bool
    ) -> list[tuple[str, str]]:
        limit, window = self._window(route, params)
        if now >= window.reset_at - _EPSILON:
            window.remaining, window.reset_at = window.limit, now + window.per
        if consume:
            if now < window.blocked_until - _EPSILON:
                wait = window.blocked_until - now
                fault = _Fault(route, 0, "429", retry_after=wait, scope=window.blocked_scope)
                headers = self._limit_headers(limit, window, now)
                raise _TooMany(self._too_many(fault, route, params, now, headers, block=False))
            if window.remaining == 0:
                fault = _Fault(route, 0, "429", retry_after=window.reset_at - now)
                headers = self._limit_headers(limit, window, now)
                raise _TooMany(self._too_many(fault, route, params, now, headers, block=False))
            window.remaining -= 1
        return self._limit_headers(limit, window, now)

    @staticmethod
    def _limit_headers(limit: RateLimit, window: _Window, now: float) -> list[tuple[str, str]]:
        # Discord gives milliseconds; round the wait up so an obedient client is never early.
        reset_after = math.ceil((window.reset_at - now) * 1000 - _EPSILON) / 1000
        return [
            ("x-ratelimit-limit", str(window.limit)),
            ("x-ratelimit-remaining", str(window.remaining)),
            ("x-ratelimit-reset", f"{time.time() + reset_after:.3f}"),
            ("x-ratelimit-reset-after", f"{reset_after:.3f}"),
            ("x-ratelimit-bucket", limit.bucket),
        ]

    def _check_global(self, now: float) -> None:
        if self.global_limit is None:
            return
        if now < self._global_blocked_until - _EPSILON:
            fault = _Fault("", 0, "429", retry_after=self._global_blocked_until - now)
            fault.scope, fault.is_global = "global", True
            raise _TooMany(self._too_many(fault, None, {}, now, [], block=False))
        while self._global_sent and self._global_sent[0] <= now - 1.0 + _EPSILON:
            self._global_sent.popleft()
        if len(self._global_sent) >= self.global_limit:
            wait = self._global_sent[0] + 1.0 - now
            fault = _Fault("", 0, "429", retry_after=wait, scope="global", is_global=True)
            raise _TooMany(self._too_many(fault, None, {}, now, [], block=False))
        self._global_sent.append(now)

    def _too_many(
        self,
        fault: _Fault,
        route: str | None,
        params: dict[str, str],
        now: float,
        headers: list[tuple[str, str]],
        *,
        block: bool = True,
    ) -> Response:
        if block and fault.is_global:
            self._global_blocked_until = max(self._global_blocked_until, now + fault.retry_after)
        elif block and route is not None:
            _, window = self._window(route, params)
            window.blocked_until = max(window.blocked_until, now + fault.retry_after)
            window.blocked_scope = fault.scope
        body = json.dumps(
            {
                "message": "You are being rate limited.",
                "retry_after": round(fault.retry_after, 3),
                "global": fault.is_global,
            }
        ).encode()
        extra = [
            ("content-type", "application/json"),
            ("retry-after", str(math.ceil(fault.retry_after))),
            ("x-ratelimit-scope", fault.scope),
        ]
        if fault.is_global:
            extra.append(("x-ratelimit-global", "true"))
            headers = []  # a global 429 says nothing about the route's bucket
        return Response(429, (*headers, *extra), body)

    # --- routes ---------------------------------------------------------------------------

    def _dispatch(
        self,
        route: str,
        params: dict[str, str],
        request: Request,
        payload: Any,
        files: tuple[UploadedFile, ...],
    ) -> tuple[int, bytes]:
        now = request.arrived_at
        result: Any
        if route == "GET /gateway/bot":
            result = {
                "url": self.gateway_url,
                "shards": self.shards,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 999,
                    "reset_after": 14_400_000,
                    "max_concurrency": self.max_concurrency,
                },
            }
        elif route == "GET /users/@me":
            result = self._bot_user()
        elif route == "GET /applications/@me":
            result = {
                "id": str(self.application_id),
                "name": "Companion",
                "description": "",
                "flags": 0,
                "bot": self._bot_user(),
            }
        elif route == "POST /users/@me/channels":
            result = self._create_dm(payload)
        elif route.endswith("/channels/{channel_id}/messages") and route.startswith("GET"):
            result = self._get_messages(self._channel(params), request.query)
        elif route == "POST /channels/{channel_id}/messages":
            channel_id = int(params["channel_id"])
            result = self._create_message(self._channel(params), channel_id, payload, files, now)
        elif route == "PATCH /channels/{channel_id}/messages/{message_id}":
            message = self._message(self._channel(params), params["message_id"])
            result = self._edit(message, payload, now)
        elif route == "DELETE /channels/{channel_id}/messages/{message_id}":
            channel = self._channel(params)
            self._message(channel, params["message_id"])
            del channel[int(params["message_id"])]
            return 204, b""
        elif route == "POST /channels/{channel_id}/typing":
            self._channel(params)
            return 204, b""
        elif route.startswith("PUT /applications/"):
            result = self._overwrite_commands(params, payload)
        elif route.startswith("POST /interactions/"):
            self._callback(params, payload, now)
            return 204, b""
        else:
            return self._webhook(route, params, payload, files, now)
        return 200, json.dumps(result).encode()

    def _bot_user(self) -> dict[str, Any]:
        return {"id": str(self.bot_user_id), "username": "companion", "bot": True}

    def _channel(self, params: dict[str, str]) -> dict[int, dict[str, Any]]:
        channel = self.channels.get(int(params["channel_id"]))
        if channel is None:
            raise _Reject(404, 10003, "Unknown Channel")
        return channel

    @staticmethod
    def _message(messages: dict[int, dict[str, Any]], message_id: str) -> dict[str, Any]:
        message = messages.get(int(message_id)) if message_id.isdigit() else None
        if message is None:
            raise _Reject(404, 10008, "Unknown Message")
        return message

    @staticmethod
    def _check_content(payload: Any, *, required: bool, files: Sequence[UploadedFile]) -> str:
        if not isinstance(payload, dict):
            raise _Reject(400, 50035, "Invalid Form Body", {"_errors": [{"code": "DICT_TYPE"}]})
        content = payload.get("content") or ""
        if not isinstance(content, str):
            raise _Reject(400, 50035, "Invalid Form Body", {"content": {"_errors": []}})
        if len(content) > MAX_CONTENT:
            raise _Reject(400, 50035, "Invalid Form Body", _max_length_errors("content"))
        if required and not content and not files:
            raise _Reject(400, 50006, "Cannot send an empty message")
        return content

    def _attachments(self, payload: Any, files: Sequence[UploadedFile]) -> list[dict[str, Any]]:
        by_index = {int(f.field_name[6:-1]): f for f in files}
        described = {int(a["id"]) for a in payload.get("attachments", []) if "id" in a}
        if not described <= set(by_index):
            raise _Reject(400, 50035, "Invalid Form Body", {"attachments": {"_errors": []}})
        return [
            {
                "id": str(self._snowflake()),
                "filename": f.filename,
                "size": len(f.data),
                "url": f"https://cdn.fake.invalid/attachments/{f.filename}",
                "content_type": f.content_type,
            }
            for _, f in sorted(by_index.items())
        ]

    def _new_message(
        self, channel_id: int, content: str, now: float, **extra: Any
    ) -> dict[str, Any]:
        return {
            "id": str(self._snowflake()),
            "channel_id": str(channel_id),
            "content": content,
            "author": self._bot_user(),
            "timestamp": (_EPOCH + timedelta(seconds=now)).isoformat(),
            "edited_timestamp": None,
            "attachments": [],
            "flags": 0,
            "type": 0,
            **extra,
        }

    def _create_message(
        self,
        channel: dict[int, dict[str, Any]],
        channel_id: int,
        payload: Any,
        files: Sequence[UploadedFile],
        now: float,
    ) -> dict[str, Any]:
        content = self._check_content(payload, required=True, files=files)
        nonce = payload.get("nonce")
        if nonce is not None and payload.get("enforce_nonce"):
            for existing in channel.values():
                if existing.get("nonce") == nonce:
                    return existing
        message = self._new_message(
            channel_id, content, now, attachments=self._attachments(payload, files)
        )
        if nonce is not None:
            message["nonce"] = nonce
        reference = payload.get("message_reference")
        if isinstance(reference, dict) and reference.get("message_id") is not None:
            message["type"] = 19
            message["message_reference"] = {
                "message_id": str(reference["message_id"]),
                "channel_id": str(channel_id),
            }
        channel[int(message["id"])] = message
        return message

    def _edit(self, message: dict[str, Any], payload: Any, now: float) -> dict[str, Any]:
        message["content"] = self._check_content(payload, required=False, files=())
        message["edited_timestamp"] = (_EPOCH + timedelta(seconds=now)).isoformat()
        return message

    @staticmethod
    def _get_messages(
        channel: dict[int, dict[str, Any]], query: dict[str, str]
    ) -> list[dict[str, Any]]:
        limit = int(query.get("limit", "50"))
        if not 1 <= limit <= 100:
            raise _Reject(400, 50035, "Invalid Form Body", {"limit": {"_errors": []}})
        newest_first = sorted(channel.values(), key=lambda m: int(m["id"]), reverse=True)
        if "before" in query:
            newest_first = [m for m in newest_first if int(m["id"]) < int(query["before"])]
        return newest_first[:limit]

    def _create_dm(self, payload: Any) -> dict[str, Any]:
        if not isinstance(payload, dict) or "recipient_id" not in payload:
            raise _Reject(400, 50035, "Invalid Form Body", {"recipient_id": {"_errors": []}})
        user_id = int(payload["recipient_id"])
        channel_id = self.dm_channels.get(user_id)
        if channel_id is None:
            channel_id = self.dm_channels[user_id] = self._snowflake()
            self.add_channel(channel_id)
        return {
            "id": str(channel_id),
            "type": 1,
            "recipients": [{"id": str(user_id), "username": f"user{user_id % 1000}"}],
        }

    def _overwrite_commands(self, params: dict[str, str], payload: Any) -> list[dict[str, Any]]:
        if int(params["application_id"]) != self.application_id:
            raise _Reject(403, 50001, "Missing Access")
        if not isinstance(payload, list):
            raise _Reject(400, 50035, "Invalid Form Body", {"_errors": [{"code": "LIST_TYPE"}]})
        guild_id = int(params["guild_id"]) if "guild_id" in params else None
        old = self.global_commands if guild_id is None else self.guild_commands.get(guild_id, [])
        ids = {(c["name"], c["type"]): c["id"] for c in old}
        stored = []
        for index, command in enumerate(payload):
            name = command.get("name") if isinstance(command, dict) else None
            if not isinstance(name, str) or not 1 <= len(name) <= 32:
                raise _Reject(400, 50035, "Invalid Form Body", {str(index): {"name": {}}})
            kind = int(command.get("type", 1))
            entry = {
                **command,
                "id": ids.get((name, kind)) or str(self._snowflake()),
                "application_id": str(self.application_id),
                "type": kind,
                "version": str(self._snowflake()),
            }
            if guild_id is not None:
                entry["guild_id"] = str(guild_id)
            stored.append(entry)
        if guild_id is None:
            self.global_commands = stored
        else:
            self.guild_commands[guild_id] = stored
        return stored

    def _callback(self, params: dict[str, str], payload: Any, now: float) -> None:
        interaction = self.interactions.get(int(params["interaction_id"]))
        if (
            interaction is None
            or interaction.token != params["interaction_token"]
            or now > interaction.created_at + INTERACTION_DEADLINE + _EPSILON
        ):
            raise _Reject(404, 10062, "Unknown interaction")
        if interaction.callback_type is not None:
            raise _Reject(400, 40060, "Interaction has already been acknowledged.")
        if not isinstance(payload, dict) or payload.get("type") not in _CALLBACK_TYPES:
            raise _Reject(400, 50035, "Invalid Form Body", {"type": {"_errors": []}})
        data = payload.get("data") or {}
        content = self._check_content(data, required=False, files=())
        interaction.callback_type = payload["type"]
        if payload["type"] in (4, 5):
            interaction.original = self._new_message(
                interaction.channel_id,
                content,
                now,
                webhook_id=str(self.application_id),
                flags=int(data.get("flags", 0)),
            )

    def _webhook(
        self,
        route: str,
        params: dict[str, str],
        payload: Any,
        files: Sequence[UploadedFile],
        now: float,
    ) -> tuple[int, bytes]:
        token = params["interaction_token"]
        interaction = next((i for i in self.interactions.values() if i.token == token), None)
        if interaction is None or int(params["application_id"]) != self.application_id:
            raise _Reject(404, 10015, "Unknown Webhook")
        if now > interaction.created_at + INTERACTION_TOKEN_LIFETIME:
            raise _Reject(401, 50027, "Invalid Webhook Token")
        if interaction.callback_type is None:
            raise _Reject(404, 10015, "Unknown Webhook")
        method = route.split(maxsplit=1)[0]
        if route.endswith("/@original"):
            if interaction.original is None:
                raise _Reject(404, 10008, "Unknown Message")
            if method == "DELETE":
                interaction.original = None
                return 204, b""
            message = self._edit(interaction.original, payload, now)
            if files:
                message["attachments"] = self._attachments(payload, files)
            return 200, json.dumps(message).encode()
        if method == "POST":
            content = self._check_content(payload, required=True, files=files)
            message = self._new_message(
                interaction.channel_id,
                content,
                now,
                webhook_id=str(self.application_id),
                flags=int(payload.get("flags", 0)),
                attachments=self._attachments(payload, files),
            )
            interaction.followups[int(message["id"])] = message
            return 200, json.dumps(message).encode()
        message = self._message(interaction.followups, params["message_id"])
        if method == "DELETE":
            del interaction.followups[int(message["id"])]
            return 204, b""
        return 200, json.dumps(self._edit(message, payload, now)).encode()


class _TooMany(Exception):
    def __init__(self, response: Response) -> None:
        super().__init__("429")
        self.response = response


# --- fixtures (registered in tests/conftest.py) ----------------------------------------------


@pytest.fixture
async def fake_discord_rest(
    nursery: trio.Nursery, server_ssl_context: ssl.SSLContext
) -> FakeDiscordRest:
    """A running `FakeDiscordRest` for the test's lifetime (stopped with its nursery)."""
    fake = FakeDiscordRest(ssl_context=server_ssl_context)
    await nursery.start(fake.run)
    return fake


@pytest.fixture
async def discord_http(trust_fake_ca: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The ``httpx.AsyncClient`` the app would make, trusting the fake CA via SSL_CERT_FILE.

    No transport timeout: under MockClock it would measure nothing real, and each test has its
    own ``trio.fail_after`` deadline.
    """
    async with httpx.AsyncClient(verify=make_ssl_context(), timeout=None) as client:
        yield client


@pytest.fixture
def rest_client(fake_discord_rest: FakeDiscordRest, discord_http: httpx.AsyncClient) -> RestClient:
    """A `RestClient` on the fake with the right token."""
    return RestClient(discord_http, token=FAKE_TOKEN, api_url=fake_discord_rest.url)
