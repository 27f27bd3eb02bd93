"""Errors of the REST client (`trio_companion.gateway.rest`).

::

    GatewayError                     (trio_companion.gateway.errors)
    ├── HTTPError                    Discord answered with an error status
    │   ├── BadRequest               400: invalid form body (50035), already acknowledged (40060)…
    │   ├── Unauthorized             401: the bot token (or an interaction token) is invalid
    │   ├── Forbidden                403: missing access or permissions (50001, 50013)
    │   ├── NotFound                 404: unknown channel 10003, message 10008, interaction 10062
    │   ├── RateLimited              429 not waited out: deadline, too many tries, Cloudflare
    │   └── ServerError              5xx that was still failing after the retries
    ├── DiscordUnavailable           no response at all (connection errors) after the retries
    ├── UnexpectedResponse           a 2xx body that does not match the documented shape
    ├── InvalidRequestGuard          refused locally: too many 401/403/429 in the 10-minute window
    └── RequestValidationError       refused locally: Discord would reject this request

Who raises what: `RestClient` raises all of them from its endpoint methods. The first two groups
mean a request crossed the wire (or tried to); the last two mean *nothing was sent*, which keeps
"refused by us" apart from "refused by Discord". After one 401 on the bot token every further
request raises `Unauthorized` again without being sent, the way trio keeps raising
`BrokenResourceError` on a broken stream.

``str(error)`` names the method and the route *template* (``POST /channels/{channel_id}/messages``),
never the formatted path: interaction and webhook tokens are path parameters and stay out of
messages, logs and tracebacks, like the bot token.
"""

from __future__ import annotations

from typing import Any, Final, final

import msgspec

from trio_companion.gateway.errors import GatewayError

__all__ = [
    "BadRequest",
    "DiscordUnavailable",
    "Forbidden",
    "HTTPError",
    "InvalidRequestGuard",
    "NotFound",
    "RateLimited",
    "RequestValidationError",
    "ServerError",
    "Unauthorized",
    "UnexpectedResponse",
    "error_from_response",
    "parse_error_body",
]

#: How much of a non-JSON error body (a Cloudflare HTML page, a proxy's text) goes in a message.
_TEXT_PREVIEW: Final = 120


class HTTPError(GatewayError):
    """Discord answered a request with an error status.

    ``status`` is the HTTP status; ``code`` is Discord's JSON error code (``50035``, ``10062``…)
    or ``None`` when the body was not Discord's JSON; ``message`` is Discord's message (or a
    description of the body); ``errors`` is the nested ``errors`` object of a 400 (field path →
    ``{"_errors": [...]}``) or ``None``. ``method`` and ``route`` identify the request by its
    template. Raised by `RestClient`; the leaf classes below cover the statuses callers branch
    on, and this class itself is raised for the others (405, 413…).
    """

    def __init__(
        self,
        *,
        status: int,
        code: int | None,
        message: str,
        errors: dict[str, Any] | None,
        method: str,
        route: str,
    ) -> None:
        shown_code = "" if code is None else f", code {code}"
        super().__init__(f"Discord refused {method} {route} (HTTP {status}{shown_code}): {message}")
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors
        self.method = method
        self.route = route


@final
class BadRequest(HTTPError):
    """400: Discord rejected the request's content.

    Typical codes: 50035 invalid form body (see ``errors``), 40060 interaction already
    acknowledged, 50006 empty message. Retrying the same request cannot succeed.
    """


@final
class Unauthorized(HTTPError):
    """401: the credentials were rejected.

    On a bot-authenticated route this means the bot token is invalid (reset or revoked): the
    client then refuses every further request locally with this same error (``code`` 0), because
    Discord counts each 401 towards the invalid-request ban. On an interaction route a 401
    (50027 invalid webhook token) only means that interaction's token expired; the client keeps
    working.
    """


@final
class Forbidden(HTTPError):
    """403: the bot lacks access or permissions (50001 missing access, 50013 missing
    permissions). It counts towards the invalid-request limit, so do not retry it blindly."""


@final
class NotFound(HTTPError):
    """404: the resource does not exist (10003 channel, 10008 message, 10015 webhook), or an
    interaction was not answered within 3 s (10062 unknown interaction)."""


@final
class RateLimited(HTTPError):
    """A rate limit we would not or could not wait out; ``status`` is always 429.

    ``retry_after`` is the wait in seconds that Discord asked for or that the bucket predicts;
    ``scope`` is Discord's ``X-RateLimit-Scope`` (``"user"``, ``"global"``, ``"shared"``) or
    ``None`` when the wait was predicted from earlier headers or the 429 came from Cloudflare;
    ``is_global`` is true when the global limit is hit. Raised in three cases only:

    - the wait would outlast the caller's deadline (the innermost ``trio.fail_after`` /
      ``move_on_after`` around the call): raised at once instead of sleeping into a
      cancellation. Nothing was sent for that wait. ``code`` is then ``None``;
    - the request met 429 on every one of its tries;
    - the 429 is not Discord's JSON (a Cloudflare ban page): retrying would make it worse.
    """

    def __init__(
        self,
        *,
        retry_after: float,
        scope: str | None,
        is_global: bool,
        code: int | None,
        message: str,
        method: str,
        route: str,
    ) -> None:
        super().__init__(
            status=429,
            code=code,
            message=f"{message} (retry after {retry_after:.3f} s)",
            errors=None,
            method=method,
            route=route,
        )
        self.retry_after = retry_after
        self.scope = scope
        self.is_global = is_global


@final
class ServerError(HTTPError):
    """5xx: Discord (or Cloudflare in front of it) failed on every try (500, 502, 503, 504, 524
    are retried with backoff first). The request may or may not have taken effect."""


@final
class DiscordUnavailable(GatewayError):
    """No HTTP response at all: connecting, TLS, or reading the response failed on every try.

    ``attempts`` is how many tries were made; the last transport error is the ``__cause__``. As
    with `ServerError` a POST may have taken effect before the connection dropped (pass a
    ``nonce`` to `RestClient.create_message` to make a retried send idempotent).
    """

    def __init__(self, *, method: str, route: str, attempts: int, detail: str) -> None:
        super().__init__(
            f"Discord did not answer {method} {route} after {attempts} tries: {detail}"
        )
        self.method = method
        self.route = route
        self.attempts = attempts
        self.detail = detail


@final
class UnexpectedResponse(GatewayError):
    """Discord answered 2xx with a body that does not decode into the endpoint's model.

    Raised by the `RestClient` endpoint methods; ``detail`` is the decoder's complaint (a JSON
    path and the expected type). It means the API changed or a proxy answered: not retried.
    """

    def __init__(self, *, method: str, route: str, detail: str) -> None:
        super().__init__(f"Discord's answer to {method} {route} has an unexpected shape: {detail}")
        self.method = method
        self.route = route
        self.detail = detail


@final
class InvalidRequestGuard(GatewayError):
    """Refused locally: sending now could get this IP banned by Cloudflare.

    Discord bans an IP for a while after 10 000 responses with status 401, 403 or 429 within 10
    minutes. The client counts them in a sliding window and refuses to send once ``count``
    reaches ``threshold``; ``retry_after`` is the time until the oldest counted response leaves
    the window. Nothing was sent.
    """

    def __init__(
        self, *, count: int, threshold: int, retry_after: float, method: str, route: str
    ) -> None:
        super().__init__(
            f"refused to send {method} {route}: {count} responses with 401/403/429 in the last"
            f" 10 minutes reached the safety threshold of {threshold}; retry in"
            f" {retry_after:.0f} s and fix whatever keeps failing"
        )
        self.count = count
        self.threshold = threshold
        self.retry_after = retry_after
        self.method = method
        self.route = route


@final
class RequestValidationError(GatewayError):
    """Refused locally: Discord would reject this request, so it was not sent.

    ``field`` names the offending argument (``"content"``, ``"nonce"``, ``"limit"``, ``"files"``)
    and ``problem`` says what is wrong with it. Raised by the endpoint methods of `RestClient`
    before any I/O, e.g. for content longer than 2000 characters.
    """

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"not sent to Discord: {field} {problem}")
        self.field = field
        self.problem = problem


class _ErrorBody(msgspec.Struct):
    """Discord's JSON error body: ``{"code", "message", "errors"?}``."""

    code: int | None = None
    message: str = ""
    errors: dict[str, Any] | None = None


def parse_error_body(status: int, body: bytes) -> tuple[int | None, str, dict[str, Any] | None]:
    """Return ``(code, message, errors)`` from an error response body.

    A body that is not Discord's JSON object yields ``code`` ``None`` and a short, printable
    description of the body instead of the body itself (it may be a whole HTML page).
    """
    try:
        parsed = msgspec.json.decode(body, type=_ErrorBody)
    except (msgspec.DecodeError, msgspec.ValidationError):
        text = body[:_TEXT_PREVIEW].decode("utf-8", "replace").strip()
        text = " ".join(text.split())
        return None, f"non-JSON body: {text!r}" if text else f"HTTP {status} with no body", None
    return parsed.code, parsed.message or f"HTTP {status}", parsed.errors


def error_from_response(status: int, body: bytes, *, method: str, route: str) -> HTTPError:
    """Map a final error response (not a 429 or a retried 5xx) to its `HTTPError` class.

    Pure function: the caller decides what a 401 does to the client's state.
    """
    code, message, errors = parse_error_body(status, body)
    cls: type[HTTPError]
    if status == 400:
        cls = BadRequest
    elif status == 401:
        cls = Unauthorized
    elif status == 403:
        cls = Forbidden
    elif status == 404:
        cls = NotFound
    elif status >= 500:
        cls = ServerError
    else:
        cls = HTTPError
    return cls(status=status, code=code, message=message, errors=errors, method=method, route=route)
