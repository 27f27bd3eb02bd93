"""Discord REST rate limits: per-route buckets, the global limit, 429s and the ban guard.

Theory of operation
===================

**Routes and buckets.** Every request is a `Route`: a method, a path template such as
``/channels/{channel_id}/messages`` and its parameters. Discord groups routes into *buckets* and
tells us which one a route belongs to with the opaque ``X-RateLimit-Bucket`` hash on each
response. The hash excludes the *major parameters* (``channel_id``, ``guild_id``, ``webhook_id``
and ``webhook_token``, and for interactions the application id plus the interaction token), so
the key of a bucket is ``hash + major parameters``: sending in channel A never waits for channel
B. Before the first response for a route we do not know its hash and key it on ``method +
template + major parameters``; when the hash arrives, the bucket object is also filed under the
hashed key, so requests already queued on it and requests that come later share one queue. A
route may report a different hash later (discord-api-docs#1295); we always file it under the
hash of its latest response.

**One request in flight per bucket, FIFO.** A `Bucket` owns a `trio.StrictFIFOLock` that a
request holds from before its first try until its last response: its waits for the bucket's
reset, its 429 waits and its 5xx backoff all happen with the lock held. So nothing is sent for a
bucket while it is waiting, the queued requests go out in the order they were made (messages in
a channel keep their order), and every response's ``X-RateLimit-Remaining`` is exact rather than
a guess raced by concurrent requests. The cost, one round trip per request per bucket, is far
below Discord's per-bucket limits (typically 5 per 5 s per channel).

**Pre-emptive waits.** When a response says ``Remaining: 0``, the bucket is exhausted until
``now + X-RateLimit-Reset-After``, measured on trio's clock (`trio.current_time`) when the
response arrived. The absolute ``X-RateLimit-Reset`` epoch is ignored: it would mix the wall
clock into trio's clock and break under clock skew and `trio.testing.MockClock`.

**Global limit.** At most `GLOBAL_LIMIT` requests per `GLOBAL_PERIOD` per bot, enforced as a
sliding log of send times behind one FIFO lock (`GlobalWindow`). Interaction callbacks and the
interaction webhook routes (followups, ``@original``) are exempt: routes with an
``interaction_token`` parameter skip the global wait entirely, so a deferral is never stuck
behind a burst of ordinary requests.

**429 flow.** A 429's wait comes from ``retry_after`` in its JSON body, else the ``Retry-After``
header. A global 429 (``"global": true``, ``X-RateLimit-Global`` or scope ``global``) blocks the
global window, so every non-exempt request waits; any other 429 blocks only its bucket. A 429
whose headers still show ``Remaining > 0`` is a sub-limit and is obeyed just the same. A 429
that is not Discord's JSON comes from Cloudflare: it is never retried (the client raises
`RateLimited`). If a wait would outlast the caller's deadline
(`trio.current_effective_deadline`), the client raises `RateLimited` at once instead of sleeping
into the cancellation.

**Invalid-request guard.** Cloudflare bans an IP for a while after
`DISCORD_INVALID_REQUEST_LIMIT` responses with 401, 403 or 429 (except 429s with scope
``shared``) within `INVALID_REQUEST_WINDOW`. `InvalidRequestWindow` counts them in a sliding
window; once the count reaches a threshold far below Discord's (`INVALID_REQUEST_THRESHOLD`)
every request is refused locally with `InvalidRequestGuard` until old entries leave the window.
Separately, after a 401 on the bot token `RestClient` stops sending altogether (Discord: stop
using a token after a 401); a 401 on an interaction route only means that token expired.

The parsing and key functions here are pure; `Bucket`, `GlobalWindow` and `InvalidRequestWindow`
are plain state machines fed with ``now``; only `RateLimiter` awaits.
"""

from __future__ import annotations

import math
import string
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, final
from urllib.parse import quote

import msgspec
import trio

from trio_companion.gateway.rest_errors import InvalidRequestGuard, RateLimited

__all__ = [
    "DEFAULT_RETRY_AFTER",
    "DISCORD_INVALID_REQUEST_LIMIT",
    "GLOBAL_LIMIT",
    "GLOBAL_MARGIN",
    "GLOBAL_PERIOD",
    "INVALID_REQUEST_THRESHOLD",
    "INVALID_REQUEST_WINDOW",
    "MAJOR_PARAMETERS",
    "Bucket",
    "BucketKey",
    "GlobalWindow",
    "InvalidRequestWindow",
    "RateLimitHeaders",
    "RateLimiter",
    "RateLimiterStatistics",
    "Route",
    "TooManyRequests",
    "bucket_key",
    "counts_as_invalid",
    "parse_rate_limit_headers",
    "parse_too_many_requests",
]

GLOBAL_LIMIT: Final = (
    50  # requests per second per bot: docs topics/rate-limits.mdx "Global Rate Limit"
)
GLOBAL_PERIOD: Final = 1.0  # seconds: same source
# Our margin on the global window: Discord counts arrivals, we count sends, and the network does
# not keep the spacing (seen in the 50-conversation test against the fake: 429s without it).
GLOBAL_MARGIN: Final = 0.1
INVALID_REQUEST_WINDOW: Final = 600.0  # 10 minutes: rate-limits.mdx "Invalid Request Limit"
DISCORD_INVALID_REQUEST_LIMIT: Final = 10_000  # per IP per window: same source
# Our own margin: a tenth of Discord's limit, because the limit is per IP and may be shared.
INVALID_REQUEST_THRESHOLD: Final = 1_000
DEFAULT_RETRY_AFTER: Final = 1.0  # a 429 without retry_after or Retry-After (our choice)
BUCKET_PRUNE_AT: Final = 1_024  # memory bound on idle buckets (ours, not Discord's)
# Per-resource parameters that split a bucket: rate-limits.mdx "Per-Resource Rate Limits"; the
# interaction ones so followups of different interactions never share a bucket (PROTOCOL P7).
MAJOR_PARAMETERS: Final = (
    "channel_id",
    "guild_id",
    "webhook_id",
    "webhook_token",
    "interaction_id",
    "interaction_token",
)
# Parameters that are credentials: kept out of reprs and error messages.
_SECRET_PARAMETERS: Final = frozenset({"webhook_token", "interaction_token"})


@final
class Route:
    """One REST call: ``Route("POST", "/channels/{channel_id}/messages", channel_id=123)``.

    ``path`` is the template with the URL-quoted parameters filled in. The template and the
    parameters must match exactly (`ValueError` otherwise). ``repr`` and `name` never show a
    token parameter.
    """

    __slots__ = ("major", "method", "params", "path", "template")

    def __init__(self, method: str, template: str, **params: int | str) -> None:
        names = {field for _, field, _, _ in string.Formatter().parse(template) if field}
        if names != set(params):
            raise ValueError(
                f"route {template!r} takes parameters {sorted(names)}, got {sorted(params)}"
            )
        self.method: Final = method.upper()
        self.template: Final = template
        self.params: Final[Mapping[str, str]] = {k: str(v) for k, v in params.items()}
        self.path: Final = template.format_map(
            {k: quote(v, safe="") for k, v in self.params.items()}
        )
        major: list[tuple[str, str]] = [
            (name, self.params[name]) for name in MAJOR_PARAMETERS if name in self.params
        ]
        if "interaction_token" in self.params and "application_id" in self.params:
            major.insert(0, ("application_id", self.params["application_id"]))
        self.major: Final[tuple[tuple[str, str], ...]] = tuple(major)

    @property
    def name(self) -> str:
        """``"METHOD /template"``: the route in messages, and its key until its hash is known."""
        return f"{self.method} {self.template}"

    @property
    def exempt_from_global(self) -> bool:
        """True for interaction callbacks, followups and ``@original``: no global limit."""
        return "interaction_token" in self.params

    @property
    def token_in_path(self) -> bool:
        """True when the path carries its own credential, so a 401 says nothing about the bot
        token (an expired interaction token is 401 50027)."""
        return not _SECRET_PARAMETERS.isdisjoint(self.params)

    @property
    def secrets(self) -> tuple[str, ...]:
        """The values of the credential parameters, for redaction."""
        return tuple(v for k, v in self.params.items() if k in _SECRET_PARAMETERS)

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{k}={'<redacted>' if k in _SECRET_PARAMETERS else v}" for k, v in self.params.items()
        )
        return f"Route({self.name!r}{', ' if shown else ''}{shown})"


@dataclass(frozen=True, slots=True)
class BucketKey:
    """``bucket`` is ``"hash:<X-RateLimit-Bucket>"`` or, before any response, ``"route:<name>"``."""

    bucket: str
    major: tuple[tuple[str, str], ...]


def bucket_key(route: Route, bucket_hash: str | None) -> BucketKey:
    """The key of ``route``'s bucket given its learned hash (``None`` before any response)."""
    if bucket_hash is None:
        return BucketKey(f"route:{route.name}", route.major)
    return BucketKey(f"hash:{bucket_hash}", route.major)


@dataclass(frozen=True, slots=True)
class RateLimitHeaders:
    """The rate-limit headers of one response; each is ``None`` when absent or unparseable."""

    bucket: str | None = None
    limit: int | None = None
    remaining: int | None = None
    reset_after: float | None = None
    is_global: bool = False
    scope: str | None = None


def _int_or_none(text: str | None) -> int | None:
    try:
        return None if text is None else int(text)
    except ValueError:
        return None


def _seconds_or_none(text: str | None) -> float | None:
    try:
        value = None if text is None else float(text)
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) and value >= 0 else None


def parse_rate_limit_headers(headers: Mapping[str, str]) -> RateLimitHeaders:
    """Read ``X-RateLimit-*`` from a response's headers (any capitalisation). Never raises."""
    lowered = {k.lower(): v for k, v in headers.items()}
    return RateLimitHeaders(
        bucket=lowered.get("x-ratelimit-bucket") or None,
        limit=_int_or_none(lowered.get("x-ratelimit-limit")),
        remaining=_int_or_none(lowered.get("x-ratelimit-remaining")),
        reset_after=_seconds_or_none(lowered.get("x-ratelimit-reset-after")),
        is_global=lowered.get("x-ratelimit-global", "").lower() == "true",
        scope=lowered.get("x-ratelimit-scope") or None,
    )


@dataclass(frozen=True, slots=True)
class TooManyRequests:
    """What a 429 asks for. ``from_discord`` is false for a non-JSON (Cloudflare) 429."""

    retry_after: float
    is_global: bool
    scope: str | None
    code: int | None
    message: str
    from_discord: bool


class _TooManyRequestsBody(msgspec.Struct):
    message: str = "You are being rate limited."
    retry_after: float | None = None
    code: int | None = None
    # "global" is a Python keyword, hence the rename.
    is_global: bool = msgspec.field(default=False, name="global")


def parse_too_many_requests(headers: Mapping[str, str], body: bytes) -> TooManyRequests:
    """Interpret a 429: the wait, whether it is global, its scope. Never raises."""
    limits = parse_rate_limit_headers(headers)
    lowered = {k.lower(): v for k, v in headers.items()}
    header_wait = _seconds_or_none(lowered.get("retry-after"))
    try:
        parsed = msgspec.json.decode(body, type=_TooManyRequestsBody)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return TooManyRequests(
            retry_after=DEFAULT_RETRY_AFTER if header_wait is None else header_wait,
            is_global=True,
            scope=None,
            code=None,
            message="Cloudflare answered 429 without Discord's JSON (a temporary IP ban?)",
            from_discord=False,
        )
    wait = parsed.retry_after
    if wait is None or not math.isfinite(wait) or wait < 0:
        wait = DEFAULT_RETRY_AFTER if header_wait is None else header_wait
    return TooManyRequests(
        retry_after=wait,
        is_global=parsed.is_global or limits.is_global or limits.scope == "global",
        scope=limits.scope,
        code=parsed.code,
        message=parsed.message,
        from_discord=True,
    )


def counts_as_invalid(status: int, scope: str | None) -> bool:
    """Whether a response counts towards Cloudflare's invalid-request limit."""
    return status in (401, 403) or (status == 429 and scope != "shared")


@final
class Bucket:
    """The state of one bucket, plus the FIFO lock its requests hold while they run.

    ``remaining`` and ``reset_at`` (trio time) come from the latest response; ``ready_at(now)``
    is when the next request may go. A bucket with no information is always ready.
    """

    __slots__ = ("limit", "lock", "remaining", "reset_at")

    def __init__(self) -> None:
        self.lock: Final = trio.StrictFIFOLock()
        self.limit: int | None = None
        self.remaining: int | None = None
        self.reset_at = -math.inf

    def ready_at(self, now: float) -> float:
        if self.remaining == 0 and self.reset_at > now:
            return self.reset_at
        return now

    def update(self, headers: RateLimitHeaders, now: float) -> None:
        if headers.limit is not None:
            self.limit = headers.limit
        if headers.remaining is not None:
            self.remaining = headers.remaining
        if headers.reset_after is not None:
            self.reset_at = now + headers.reset_after

    def block_until(self, until: float) -> None:
        """Obey a 429: nothing goes out before ``until``.

        A block never shortens a longer wait the bucket already had; but a reset time from a
        window that still had requests left (a sub-limit 429) is irrelevant and is replaced.
        """
        if self.remaining == 0 and self.reset_at > until:
            return
        self.remaining = 0
        self.reset_at = until

    def idle(self, now: float) -> bool:
        """Nobody holds or waits for it and it has nothing to wait for: safe to forget."""
        return not self.lock.locked() and self.ready_at(now) <= now


@final
class GlobalWindow:
    """Sliding log of the last `GLOBAL_LIMIT` send times, plus a block from a global 429."""

    __slots__ = ("_period", "_sent", "blocked_until")

    def __init__(
        self, *, limit: int = GLOBAL_LIMIT, period: float = GLOBAL_PERIOD + GLOBAL_MARGIN
    ) -> None:
        self._sent: deque[float] = deque(maxlen=limit)
        self._period = period
        self.blocked_until = -math.inf

    def next_slot(self, now: float) -> float:
        """The earliest time, at or after ``now``, at which one more request may be sent."""
        slot = max(now, self.blocked_until)
        if len(self._sent) == self._sent.maxlen:
            slot = max(slot, self._sent[0] + self._period)
        return slot

    def take(self, now: float) -> None:
        """Record a send at ``now``; only call it when ``next_slot(now) <= now``."""
        self._sent.append(now)

    def block_until(self, until: float) -> None:
        self.blocked_until = max(self.blocked_until, until)

    def sent_within_period(self, now: float) -> int:
        return sum(1 for t in self._sent if t > now - self._period)


@final
class InvalidRequestWindow:
    """Counts 401/403/429 responses over the last `INVALID_REQUEST_WINDOW` seconds."""

    __slots__ = ("_times", "_window", "threshold")

    def __init__(
        self, *, threshold: int = INVALID_REQUEST_THRESHOLD, window: float = INVALID_REQUEST_WINDOW
    ) -> None:
        if threshold < 1:
            raise ValueError("the invalid-request threshold must be at least 1")
        self._times: deque[float] = deque()
        self._window = window
        self.threshold: Final = threshold

    def record(self, now: float) -> None:
        self._times.append(now)

    def count(self, now: float) -> int:
        while self._times and self._times[0] <= now - self._window:
            self._times.popleft()
        return len(self._times)

    def reopens_at(self, now: float) -> float:
        """When sending is allowed again: ``now`` if the count is below the threshold."""
        count = self.count(now)
        if count < self.threshold:
            return now
        return self._times[count - self.threshold] + self._window


@dataclass(frozen=True, slots=True)
class RateLimiterStatistics:
    """A snapshot of `RateLimiter`. Times are on trio's clock."""

    buckets: int  #: distinct bucket states known
    exhausted_buckets: int  #: buckets that must wait for their reset right now
    routes_learned: int  #: routes whose ``X-RateLimit-Bucket`` hash is known
    global_sent_last_period: int  #: non-exempt sends in the last `GLOBAL_PERIOD`
    global_blocked_until: float | None  #: end of a global 429 block still in force
    invalid_requests: int  #: 401/403/429 responses in the current window
    invalid_request_threshold: int


@final
class RateLimiter:
    """Decides when a request may be sent. Used by `RestClient`; one per client.

    Protocol for one request: ``bucket = bucket_for(route)``; hold ``bucket.lock``; before each
    try ``await wait_for_turn(route, bucket)``; after each response ``on_response(...)`` and for
    a 429 ``on_too_many_requests(...)``.
    """

    def __init__(
        self,
        *,
        invalid_request_threshold: int = INVALID_REQUEST_THRESHOLD,
        global_limit: int = GLOBAL_LIMIT,
    ) -> None:
        self._hashes: dict[str, str] = {}
        self._buckets: dict[BucketKey, Bucket] = {}
        self._global = GlobalWindow(limit=global_limit)
        self._global_lock = trio.StrictFIFOLock()
        self._invalid = InvalidRequestWindow(threshold=invalid_request_threshold)

    def bucket_for(self, route: Route) -> Bucket:
        """The bucket ``route`` queues on now: by learned hash, else provisional."""
        key = bucket_key(route, self._hashes.get(route.name))
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= BUCKET_PRUNE_AT:
                self._prune(trio.current_time())
            bucket = self._buckets[key] = Bucket()
        return bucket

    def _prune(self, now: float) -> None:
        for key in [k for k, b in self._buckets.items() if b.idle(now)]:
            del self._buckets[key]

    async def wait_for_turn(self, route: Route, bucket: Bucket) -> None:
        """Return when ``route`` may be sent now; the caller holds ``bucket.lock``.

        Waits for the bucket's reset, then (unless exempt) for a global slot, taking it.

        Raises:
            RateLimited: a wait would end after the caller's deadline (nothing is sent).
            InvalidRequestGuard: too many invalid responses recently (nothing is sent).
        """
        await _sleep_until(bucket.ready_at(trio.current_time()), route, is_global=False)
        if not route.exempt_from_global:
            async with self._global_lock:
                while (slot := self._global.next_slot(now := trio.current_time())) > now:
                    await _sleep_until(slot, route, is_global=True)
                self._global.take(now)
        now = trio.current_time()
        if self._invalid.count(now) >= self._invalid.threshold:
            raise InvalidRequestGuard(
                count=self._invalid.count(now),
                threshold=self._invalid.threshold,
                retry_after=self._invalid.reopens_at(now) - now,
                method=route.method,
                route=route.template,
            )

    def on_response(
        self, route: Route, bucket: Bucket, status: int, headers: RateLimitHeaders, now: float
    ) -> None:
        """Learn from a response: the bucket hash, its state, and the invalid-request count."""
        if counts_as_invalid(status, headers.scope):
            self._invalid.record(now)
        bucket.update(headers, now)
        if headers.bucket is None:
            return
        self._hashes[route.name] = headers.bucket
        key = bucket_key(route, headers.bucket)
        filed = self._buckets.setdefault(key, bucket)
        if filed is not bucket:
            # The hashed bucket already exists (another route shares the hash): keep both
            # copies of the state current; new requests use the hashed one from now on.
            filed.update(headers, now)

    def on_too_many_requests(self, bucket: Bucket, info: TooManyRequests, now: float) -> None:
        """Obey a 429 (after `on_response` has recorded its headers)."""
        if info.is_global:
            self._global.block_until(now + info.retry_after)
        else:
            bucket.block_until(now + info.retry_after)

    def statistics(self) -> RateLimiterStatistics:
        now = trio.current_time()
        unique = {id(b): b for b in self._buckets.values()}.values()
        blocked = self._global.blocked_until
        return RateLimiterStatistics(
            buckets=len(unique),
            exhausted_buckets=sum(1 for b in unique if b.ready_at(now) > now),
            routes_learned=len(self._hashes),
            global_sent_last_period=self._global.sent_within_period(now),
            global_blocked_until=blocked if blocked > now else None,
            invalid_requests=self._invalid.count(now),
            invalid_request_threshold=self._invalid.threshold,
        )


async def _sleep_until(deadline: float, route: Route, *, is_global: bool) -> None:
    """Sleep until ``deadline`` unless that is past the caller's deadline: then raise."""
    now = trio.current_time()
    if deadline <= now:
        return
    if deadline > trio.current_effective_deadline():
        raise RateLimited(
            retry_after=deadline - now,
            scope=None,
            is_global=is_global,
            code=None,
            message="the wait for the rate limit outlasts the caller's deadline",
            method=route.method,
            route=route.template,
        )
    await trio.sleep_until(deadline)
