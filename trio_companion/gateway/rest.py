"""Discord's HTTP API (v10): the endpoints a companion bot uses, on an injected httpx client.

`RestClient` sends every request through one pipeline, `RestClient.request`:

1. the endpoint method validates what Discord would reject (content over 2000 characters, an
   empty message, a long nonce…) and raises `RequestValidationError` before any I/O;
2. the request queues on its rate-limit bucket and waits its turn (`ratelimit.RateLimiter`: the
   bucket's reset, the global limit, the invalid-request guard);
3. it is sent with ``Authorization: Bot …`` and Discord's required ``User-Agent``;
4. a 429 is waited out and retried; 500/502/503/504/524 and network errors (connect, read,
   timeouts, a dropped connection) are retried with backoff ``1 + 2·n`` seconds (discord.py's
   policy), for `MAX_TRIES` tries in all; a certificate that fails verification is not retried;
   any other error status becomes its `rest_errors.HTTPError` subclass. A 401 on the bot token
   makes the client refuse all later requests.

Deadlines belong to the caller (``with trio.fail_after(...)`` around the call); a rate-limit or
backoff wait that cannot finish before that deadline raises at once rather than sleeping into
the cancellation. Cancelling a request that is on the wire abandons it: Discord may or may not
have acted on it.

Snowflakes are ``int`` in and out; the models are frozen msgspec Structs that ignore fields they
do not name.
"""

from __future__ import annotations

import secrets
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar, final

import httpx
import msgspec
import trio

from trio_companion import __version__
from trio_companion.gateway.ratelimit import (
    INVALID_REQUEST_THRESHOLD,
    Bucket,
    RateLimiter,
    RateLimiterStatistics,
    Route,
    parse_rate_limit_headers,
    parse_too_many_requests,
)
from trio_companion.gateway.rest_errors import (
    DiscordUnavailable,
    HTTPError,
    RateLimited,
    RequestValidationError,
    Unauthorized,
    UnexpectedResponse,
    error_from_response,
)
from trio_companion.gateway.rest_models import (
    NO_MENTIONS,
    AllowedMentions,
    Application,
    ApplicationCommand,
    Channel,
    File,
    GatewayBot,
    Message,
    encode_multipart,
)

__all__ = ["DEFAULT_API_URL", "EPHEMERAL", "USER_AGENT", "RestClient", "RestStatistics"]

DEFAULT_API_URL: Final = "https://discord.com/api/v10"  # PROTOCOL §3.1: version in the path
# PROTOCOL §3.1: "DiscordBot ($url, $versionNumber)"; without it Cloudflare may block us.
USER_AGENT: Final = f"DiscordBot (https://github.com/trio-companion/trio-companion, {__version__})"
MAX_TRIES: Final = 5  # tries per request across 429s, 5xx and transport errors: discord.py http.py
BACKOFF_BASE: Final = 1.0  # seconds before the 2nd try: discord.py sleeps 1 + tries * 2
BACKOFF_STEP: Final = 2.0  # added per further try: same source
RETRY_STATUSES: Final = frozenset({500, 502, 503, 504, 524})  # PROTOCOL §3.2 (+503, transient)
MAX_CONTENT_LENGTH: Final = 2000  # characters: resources/message.mdx "Create Message"
MAX_FILES: Final = 10  # attachments per message: resources/message.mdx
MAX_NONCE_LENGTH: Final = 25  # resources/message.mdx "Create Message" nonce
MAX_MESSAGES_PER_PAGE: Final = 100  # resources/message.mdx "Get Channel Messages" limit
_RETRIED_TRANSPORT_ERRORS: Final = (
    httpx.NetworkError,
    httpx.TimeoutException,
    httpx.RemoteProtocolError,  # the server closed the connection without answering
)
EPHEMERAL: Final = 1 << 6  # message flag 64: resources/message.mdx "Message Flags"

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class RestStatistics:
    """A snapshot of `RestClient`."""

    waiting_requests: int  #: inside `RestClient.request`, not on the wire (queued, sleeping)
    in_flight: int  #: on the wire now
    requests_sent: int  #: HTTP requests sent, retries included
    retries: int  #: tries after the first, for 429, 5xx and transport errors
    token_invalid: bool  #: a 401 on the bot token: every request is refused
    rate_limits: RateLimiterStatistics


# --- pure helpers -----------------------------------------------------------------------------


def _check_content(content: str | None, *, required: bool = False, has_files: bool = False) -> None:
    if content is None:
        content = ""
    if len(content) > MAX_CONTENT_LENGTH:
        raise RequestValidationError(
            "content",
            f"is {len(content)} characters long; Discord allows at most {MAX_CONTENT_LENGTH}",
        )
    if required and not content and not has_files:
        raise RequestValidationError("content", "is empty and there are no files (50006)")


def _check_files(files: Sequence[File]) -> None:
    if len(files) > MAX_FILES:
        raise RequestValidationError("files", f"has {len(files)} files; at most {MAX_FILES}")


def _describe(error: BaseException) -> str:
    """``"ConnectError: <reason>"``, digging through the chain when the outer message is empty
    (httpx's ConnectError hides the TLS verification failure in its cause)."""
    reason, seen = "", 0
    inner: BaseException | None = error
    while inner is not None and not reason and seen < 5:
        reason, seen = str(inner), seen + 1
        inner = inner.__cause__ or inner.__context__
    return f"{type(error).__name__}: {reason or 'no details'}"


def _worth_retrying(error: httpx.TransportError) -> bool:
    """Network trouble and timeouts may pass; a bad URL, a proxy misconfiguration or a
    certificate that fails verification will not, so those fail on the first try."""
    if not isinstance(
        error, httpx.NetworkError | httpx.TimeoutException | httpx.RemoteProtocolError
    ):
        return False
    inner: BaseException | None = error
    for _ in range(5):
        if inner is None:
            break
        if isinstance(inner, ssl.SSLCertVerificationError):
            return False
        inner = inner.__cause__ or inner.__context__
    return True


def _redact(text: str, secret_values: Sequence[str]) -> str:
    for value in secret_values:
        if value:
            text = text.replace(value, "<redacted>")
    return text


# --- the client -------------------------------------------------------------------------------


@final
class RestClient:
    """Discord's REST API for one bot token, over an ``httpx.AsyncClient`` the app owns.

    The client holds no connection and needs no closing: the app closes ``http`` at shutdown.
    Make ``http`` with ``verify=tls.make_ssl_context()`` and the timeouts the app wants (they
    are the only timeouts here; callers put deadlines around calls).

    ``invalid_request_threshold`` is the invalid-request guard's limit (see `ratelimit`).
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        token: str,
        api_url: str = DEFAULT_API_URL,
        invalid_request_threshold: int = INVALID_REQUEST_THRESHOLD,
    ) -> None:
        if not token:
            raise ValueError("the bot token is empty")
        self._http = http
        self._token = token
        self._api_url = api_url.rstrip("/")
        self._limiter = RateLimiter(invalid_request_threshold=invalid_request_threshold)
        self._token_invalid = False
        self._active = 0
        self._in_flight = 0
        self._sent = 0
        self._retries = 0

    def __repr__(self) -> str:
        return f"<RestClient {self._api_url} token=<redacted>>"

    def statistics(self) -> RestStatistics:
        return RestStatistics(
            waiting_requests=self._active - self._in_flight,
            in_flight=self._in_flight,
            requests_sent=self._sent,
            retries=self._retries,
            token_invalid=self._token_invalid,
            rate_limits=self._limiter.statistics(),
        )

    async def request(
        self,
        route: Route,
        *,
        json: object = None,
        files: Sequence[File] = (),
        query: Mapping[str, str] | None = None,
    ) -> bytes:
        """Send ``route`` and return the body of its 2xx response (``b""`` for 204).

        ``json`` is the JSON body (``None``: no body); with ``files`` the request becomes
        multipart with ``json`` as ``payload_json``.

        Raises:
            Unauthorized, Forbidden, NotFound, BadRequest, HTTPError: Discord refused it.
            RateLimited: a rate-limit wait would outlast the caller's deadline, the request
                met 429 on every try, or Cloudflare answered 429.
            ServerError, DiscordUnavailable: still failing after `MAX_TRIES` tries.
            InvalidRequestGuard: refused locally, nothing sent.
        """
        self._check_token(route)
        content, content_type = self._encode_body(json, files)
        self._active += 1
        try:
            bucket = self._limiter.bucket_for(route)
            async with bucket.lock:
                return await self._send_with_retries(route, bucket, content, content_type, query)
        finally:
            self._active -= 1

    def _check_token(self, route: Route) -> None:
        if self._token_invalid:
            raise Unauthorized(
                status=401,
                code=0,
                message="refused locally: an earlier request got 401, the bot token is invalid",
                errors=None,
                method=route.method,
                route=route.template,
            )

    @staticmethod
    def _encode_body(json: object, files: Sequence[File]) -> tuple[bytes | None, str | None]:
        if files:
            payload = json if isinstance(json, Mapping) else {}
            return encode_multipart(payload, files, secrets.token_hex(16))
        if json is None:
            return None, None
        return msgspec.json.encode(json), "application/json"

    async def _send_with_retries(
        self,
        route: Route,
        bucket: Bucket,
        content: bytes | None,
        content_type: str | None,
        query: Mapping[str, str] | None,
    ) -> bytes:
        headers = {"Authorization": f"Bot {self._token}", "User-Agent": USER_AGENT}
        if content_type is not None:
            headers["Content-Type"] = content_type
        url = self._api_url + route.path
        for attempt in range(1, MAX_TRIES + 1):
            if attempt > 1:
                self._retries += 1
            await self._limiter.wait_for_turn(route, bucket)
            self._check_token(route)
            self._in_flight += 1
            self._sent += 1
            try:
                response = await self._http.request(
                    route.method, url, content=content, headers=headers, params=query
                )
            except httpx.TransportError as exc:
                detail = _redact(_describe(exc), (self._token, *route.secrets))
                unavailable = DiscordUnavailable(
                    method=route.method, route=route.template, attempts=attempt, detail=detail
                )
                if attempt == MAX_TRIES or not _worth_retrying(exc):
                    raise unavailable from exc
                await self._backoff(attempt, unavailable, exc)
                continue
            finally:
                self._in_flight -= 1
            now = trio.current_time()
            status = response.status_code
            limits = parse_rate_limit_headers(response.headers)
            self._limiter.on_response(route, bucket, status, limits, now)
            if 200 <= status < 300:
                return response.content
            if status == 429:
                self._after_429(route, bucket, response, attempt, now)
                continue
            if status in RETRY_STATUSES and attempt < MAX_TRIES:
                error = error_from_response(
                    status, response.content, method=route.method, route=route.template
                )
                await self._backoff(attempt, error, None)
                continue
            if status == 401 and not route.token_in_path:
                self._token_invalid = True
            raise error_from_response(
                status, response.content, method=route.method, route=route.template
            )
        raise AssertionError("unreachable: the last try returns or raises")  # pragma: no cover

    def _after_429(
        self, route: Route, bucket: Bucket, response: httpx.Response, attempt: int, now: float
    ) -> None:
        """Record a 429 so the next try waits for it, or raise `RateLimited` if it must not."""
        info = parse_too_many_requests(response.headers, response.content)
        self._limiter.on_too_many_requests(bucket, info, now)
        error = RateLimited(
            retry_after=info.retry_after,
            scope=info.scope,
            is_global=info.is_global,
            code=info.code,
            message=info.message,
            method=route.method,
            route=route.template,
        )
        # A Cloudflare 429 is never retried; nor is one whose wait outlasts the deadline.
        if (
            not info.from_discord
            or attempt == MAX_TRIES
            or now + info.retry_after > trio.current_effective_deadline()
        ):
            raise error

    async def _backoff(
        self, attempt: int, error: HTTPError | DiscordUnavailable, cause: Exception | None
    ) -> None:
        """Sleep before try ``attempt + 1``, or raise ``error`` if that outlasts the deadline."""
        wake = trio.current_time() + BACKOFF_BASE + BACKOFF_STEP * (attempt - 1)
        if wake > trio.current_effective_deadline():
            raise error from cause
        await trio.sleep_until(wake)

    async def _json(self, kind: type[_T], route: Route, **kwargs: Any) -> _T:
        body = await self.request(route, **kwargs)
        try:
            return msgspec.json.decode(body, type=kind, strict=False)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise UnexpectedResponse(
                method=route.method, route=route.template, detail=str(exc)
            ) from exc

    # --- endpoints ----------------------------------------------------------------------------

    async def get_gateway_bot(self) -> GatewayBot:
        """``GET /gateway/bot``: the gateway URL, recommended shards and identify budget."""
        return await self._json(GatewayBot, Route("GET", "/gateway/bot"))

    async def get_current_application(self) -> Application:
        """``GET /applications/@me``: the application id commands and followups need."""
        return await self._json(Application, Route("GET", "/applications/@me"))

    async def create_message(
        self,
        channel_id: int,
        content: str = "",
        *,
        reply_to: int | None = None,
        allowed_mentions: AllowedMentions = NO_MENTIONS,
        files: Sequence[File] | None = None,
        nonce: str | None = None,
    ) -> Message:
        """Send a message. With ``nonce`` Discord deduplicates retries (``enforce_nonce``).

        Raises `RequestValidationError` for content over 2000 characters, an empty message, a
        nonce over 25 characters or more than 10 files.
        """
        files = files or ()
        _check_content(content, required=True, has_files=bool(files))
        _check_files(files)
        body: dict[str, object] = {
            "content": content,
            "allowed_mentions": allowed_mentions.to_json(),
        }
        if reply_to is not None:
            body["message_reference"] = {"message_id": str(reply_to), "fail_if_not_exists": False}
        if nonce is not None:
            if not 0 < len(nonce) <= MAX_NONCE_LENGTH:
                raise RequestValidationError("nonce", f"must be 1 to {MAX_NONCE_LENGTH} characters")
            body["nonce"] = nonce
            body["enforce_nonce"] = True
        route = Route("POST", "/channels/{channel_id}/messages", channel_id=channel_id)
        return await self._json(Message, route, json=body, files=files)

    async def edit_message(
        self,
        channel_id: int,
        message_id: int,
        content: str,
        *,
        allowed_mentions: AllowedMentions = NO_MENTIONS,
    ) -> Message:
        """Replace the content of one of the bot's own messages."""
        _check_content(content)
        route = Route(
            "PATCH",
            "/channels/{channel_id}/messages/{message_id}",
            channel_id=channel_id,
            message_id=message_id,
        )
        body = {"content": content, "allowed_mentions": allowed_mentions.to_json()}
        return await self._json(Message, route, json=body)

    async def delete_message(self, channel_id: int, message_id: int) -> None:
        route = Route(
            "DELETE",
            "/channels/{channel_id}/messages/{message_id}",
            channel_id=channel_id,
            message_id=message_id,
        )
        await self.request(route)

    async def trigger_typing(self, channel_id: int) -> None:
        """Show "typing…" for about 10 s; repeat every ~8 s during a long generation."""
        await self.request(Route("POST", "/channels/{channel_id}/typing", channel_id=channel_id))

    async def create_dm(self, user_id: int) -> Channel:
        """Open (or fetch) the DM channel with ``user_id``."""
        route = Route("POST", "/users/@me/channels")
        return await self._json(Channel, route, json={"recipient_id": str(user_id)})

    async def get_messages(
        self, channel_id: int, *, before: int | None = None, limit: int = 50
    ) -> list[Message]:
        """Up to ``limit`` (1 to 100) messages, newest first; page with ``before=<oldest id>``."""
        if not 1 <= limit <= MAX_MESSAGES_PER_PAGE:
            raise RequestValidationError("limit", f"must be 1 to {MAX_MESSAGES_PER_PAGE}")
        query = {"limit": str(limit)}
        if before is not None:
            query["before"] = str(before)
        route = Route("GET", "/channels/{channel_id}/messages", channel_id=channel_id)
        return await self._json(list[Message], route, query=query)

    async def bulk_overwrite_global_commands(
        self, app_id: int, commands: Sequence[Mapping[str, object]]
    ) -> list[ApplicationCommand]:
        """Replace *all* global commands (every type) with ``commands``."""
        route = Route("PUT", "/applications/{application_id}/commands", application_id=app_id)
        return await self._json(list[ApplicationCommand], route, json=list(commands))

    async def bulk_overwrite_guild_commands(
        self, app_id: int, guild_id: int, commands: Sequence[Mapping[str, object]]
    ) -> list[ApplicationCommand]:
        """Replace one guild's commands; takes effect at once (use in development)."""
        route = Route(
            "PUT",
            "/applications/{application_id}/guilds/{guild_id}/commands",
            application_id=app_id,
            guild_id=guild_id,
        )
        return await self._json(list[ApplicationCommand], route, json=list(commands))

    async def create_interaction_response(
        self,
        interaction_id: int,
        token: str,
        type: int,  # Discord's field name, shadowing the builtin on purpose
        data: Mapping[str, object] | None = None,
    ) -> None:
        """Answer an interaction (type 4 reply, 5 defer, 9 modal…) within 3 s of its creation.

        Exempt from the global limit. A late answer raises `NotFound` (code 10062); a second
        one `BadRequest` (code 40060).
        """
        if data is not None and isinstance(data.get("content"), str):
            _check_content(str(data["content"]))
        body: dict[str, object] = {"type": type}
        if data is not None:
            body["data"] = dict(data)
        route = Route(
            "POST",
            "/interactions/{interaction_id}/{interaction_token}/callback",
            interaction_id=interaction_id,
            interaction_token=token,
        )
        await self.request(route, json=body)

    async def edit_original_response(
        self,
        app_id: int,
        token: str,
        content: str,
        *,
        allowed_mentions: AllowedMentions = NO_MENTIONS,
        files: Sequence[File] | None = None,
    ) -> Message:
        """Replace the interaction's original response (after a type 5 defer, for example)."""
        files = files or ()
        _check_content(content)
        _check_files(files)
        route = self._original_route("PATCH", app_id, token)
        body = {"content": content, "allowed_mentions": allowed_mentions.to_json()}
        return await self._json(Message, route, json=body, files=files)

    async def delete_original_response(self, app_id: int, token: str) -> None:
        await self.request(self._original_route("DELETE", app_id, token))

    async def create_followup(
        self,
        app_id: int,
        token: str,
        content: str = "",
        *,
        ephemeral: bool = False,
        allowed_mentions: AllowedMentions = NO_MENTIONS,
        files: Sequence[File] | None = None,
    ) -> Message:
        """Send a followup message to an interaction (valid 15 min after it was created)."""
        files = files or ()
        _check_content(content, required=True, has_files=bool(files))
        _check_files(files)
        body: dict[str, object] = {
            "content": content,
            "allowed_mentions": allowed_mentions.to_json(),
        }
        if ephemeral:
            body["flags"] = EPHEMERAL
        route = Route(
            "POST",
            "/webhooks/{application_id}/{interaction_token}",
            application_id=app_id,
            interaction_token=token,
        )
        return await self._json(Message, route, json=body, files=files)

    async def edit_followup(
        self,
        app_id: int,
        token: str,
        message_id: int,
        content: str,
        *,
        allowed_mentions: AllowedMentions = NO_MENTIONS,
    ) -> Message:
        _check_content(content)
        route = self._webhook_message_route("PATCH", app_id, token, message_id)
        body = {"content": content, "allowed_mentions": allowed_mentions.to_json()}
        return await self._json(Message, route, json=body)

    async def delete_followup(self, app_id: int, token: str, message_id: int) -> None:
        await self.request(self._webhook_message_route("DELETE", app_id, token, message_id))

    @staticmethod
    def _webhook_message_route(method: str, app_id: int, token: str, message_id: int) -> Route:
        return Route(
            method,
            "/webhooks/{application_id}/{interaction_token}/messages/{message_id}",
            application_id=app_id,
            interaction_token=token,
            message_id=message_id,
        )

    @staticmethod
    def _original_route(method: str, app_id: int, token: str) -> Route:
        return Route(
            method,
            "/webhooks/{application_id}/{interaction_token}/messages/@original",
            application_id=app_id,
            interaction_token=token,
        )
