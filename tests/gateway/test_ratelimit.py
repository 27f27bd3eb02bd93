"""Table tests for the sans-IO parts of `ratelimit`, and `RateLimiter` on trio's MockClock."""

from __future__ import annotations

import math

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from trio_companion.gateway.ratelimit import (
    DEFAULT_RETRY_AFTER,
    GLOBAL_LIMIT,
    GLOBAL_MARGIN,
    GLOBAL_PERIOD,
    INVALID_REQUEST_THRESHOLD,
    INVALID_REQUEST_WINDOW,
    Bucket,
    BucketKey,
    GlobalWindow,
    InvalidRequestWindow,
    RateLimiter,
    RateLimitHeaders,
    Route,
    TooManyRequests,
    bucket_key,
    counts_as_invalid,
    parse_rate_limit_headers,
    parse_too_many_requests,
)
from trio_companion.gateway.rest_errors import InvalidRequestGuard, RateLimited

# --- Route ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "path", "major", "exempt", "token_in_path"),
    [
        (Route("GET", "/gateway/bot"), "/gateway/bot", (), False, False),
        (
            Route("post", "/channels/{channel_id}/messages", channel_id=5),
            "/channels/5/messages",
            (("channel_id", "5"),),
            False,
            False,
        ),
        (
            Route(
                "PATCH",
                "/channels/{channel_id}/messages/{message_id}",
                channel_id=5,
                message_id=9,
            ),
            "/channels/5/messages/9",
            (("channel_id", "5"),),
            False,
            False,
        ),
        (
            Route(
                "PUT",
                "/applications/{application_id}/guilds/{guild_id}/commands",
                application_id=1,
                guild_id=2,
            ),
            "/applications/1/guilds/2/commands",
            (("guild_id", "2"),),  # the application id alone is not major
            False,
            False,
        ),
        (
            Route(
                "POST",
                "/webhooks/{application_id}/{interaction_token}",
                application_id=1,
                interaction_token="tok/en",
            ),
            "/webhooks/1/tok%2Fen",
            (("application_id", "1"), ("interaction_token", "tok/en")),
            True,
            True,
        ),
        (
            Route(
                "POST",
                "/interactions/{interaction_id}/{interaction_token}/callback",
                interaction_id=7,
                interaction_token="abc",
            ),
            "/interactions/7/abc/callback",
            (("interaction_id", "7"), ("interaction_token", "abc")),
            True,
            True,
        ),
        (
            Route(
                "POST", "/webhooks/{webhook_id}/{webhook_token}", webhook_id=3, webhook_token="w"
            ),
            "/webhooks/3/w",
            (("webhook_id", "3"), ("webhook_token", "w")),
            False,
            True,
        ),
    ],
)
def test_route_path_major_parameters_and_exemption(
    route: Route,
    path: str,
    major: tuple[tuple[str, str], ...],
    exempt: bool,
    token_in_path: bool,
) -> None:
    assert route.path == path
    assert route.major == major
    assert route.exempt_from_global is exempt
    assert route.token_in_path is token_in_path
    assert route.name == f"{route.method} {route.template}"
    assert route.method == route.method.upper()


def test_route_rejects_missing_or_extra_parameters() -> None:
    with pytest.raises(ValueError, match="takes parameters"):
        Route("GET", "/channels/{channel_id}/messages")
    with pytest.raises(ValueError, match="takes parameters"):
        Route("GET", "/gateway/bot", channel_id=1)


def test_route_repr_hides_tokens() -> None:
    route = Route(
        "POST",
        "/interactions/{interaction_id}/{interaction_token}/callback",
        interaction_id=7,
        interaction_token="secret-interaction-token",
    )
    assert "secret-interaction-token" not in repr(route)
    assert "interaction_id=7" in repr(route)
    assert route.secrets == ("secret-interaction-token",)


@pytest.mark.parametrize(
    ("route", "bucket_hash", "expected"),
    [
        (
            Route("POST", "/channels/{channel_id}/messages", channel_id=1),
            None,
            BucketKey("route:POST /channels/{channel_id}/messages", (("channel_id", "1"),)),
        ),
        (
            Route("POST", "/channels/{channel_id}/messages", channel_id=1),
            "abc",
            BucketKey("hash:abc", (("channel_id", "1"),)),
        ),
        (Route("GET", "/gateway/bot"), "abc", BucketKey("hash:abc", ())),
    ],
)
def test_bucket_key(route: Route, bucket_hash: str | None, expected: BucketKey) -> None:
    assert bucket_key(route, bucket_hash) == expected


def test_two_channels_never_share_a_bucket_key() -> None:
    one = Route("POST", "/channels/{channel_id}/messages", channel_id=1)
    two = Route("POST", "/channels/{channel_id}/messages", channel_id=2)
    assert bucket_key(one, "h") != bucket_key(two, "h")
    assert bucket_key(one, None) != bucket_key(two, None)


# --- header parsing ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, RateLimitHeaders()),
        (
            {
                "X-RateLimit-Limit": "5",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": "1470173023.123",
                "X-RateLimit-Reset-After": "1.337",
                "X-RateLimit-Bucket": "abcd1234",
            },
            RateLimitHeaders(bucket="abcd1234", limit=5, remaining=0, reset_after=1.337),
        ),
        (
            {"x-ratelimit-global": "true", "x-ratelimit-scope": "global"},
            RateLimitHeaders(is_global=True, scope="global"),
        ),
        (
            {"x-ratelimit-remaining": "lots", "x-ratelimit-reset-after": "nan"},
            RateLimitHeaders(),
        ),
        ({"x-ratelimit-reset-after": "-1"}, RateLimitHeaders()),
        ({"x-ratelimit-scope": "shared"}, RateLimitHeaders(scope="shared")),
    ],
)
def test_parse_rate_limit_headers(headers: dict[str, str], expected: RateLimitHeaders) -> None:
    assert parse_rate_limit_headers(headers) == expected


@pytest.mark.parametrize(
    ("headers", "body", "expected"),
    [
        (
            {"x-ratelimit-scope": "user", "retry-after": "1"},
            b'{"message": "You are being rate limited.", "retry_after": 0.25, "global": false}',
            TooManyRequests(0.25, False, "user", None, "You are being rate limited.", True),
        ),
        (
            {"x-ratelimit-scope": "global", "x-ratelimit-global": "true", "retry-after": "3"},
            b'{"message": "m", "retry_after": 2.5, "global": true, "code": 0}',
            TooManyRequests(2.5, True, "global", 0, "m", True),
        ),
        (  # no retry_after in the body: the Retry-After header
            {"retry-after": "4"},
            b'{"message": "m"}',
            TooManyRequests(4.0, False, None, None, "m", True),
        ),
        (  # neither: our default
            {},
            b'{"message": "m"}',
            TooManyRequests(DEFAULT_RETRY_AFTER, False, None, None, "m", True),
        ),
        (  # the scope header alone marks it global
            {"x-ratelimit-scope": "global"},
            b'{"message": "m", "retry_after": 1}',
            TooManyRequests(1.0, True, "global", None, "m", True),
        ),
        (  # shared: a per-resource limit, not global
            {"x-ratelimit-scope": "shared"},
            b'{"message": "m", "retry_after": 1, "global": false}',
            TooManyRequests(1.0, False, "shared", None, "m", True),
        ),
    ],
)
def test_parse_too_many_requests(
    headers: dict[str, str], body: bytes, expected: TooManyRequests
) -> None:
    assert parse_too_many_requests(headers, body) == expected


def test_a_non_json_429_is_cloudflare() -> None:
    info = parse_too_many_requests({"retry-after": "60"}, b"<html>Access denied</html>")
    assert not info.from_discord
    assert info.is_global
    assert info.retry_after == 60.0


@pytest.mark.parametrize(
    ("status", "scope", "counted"),
    [
        (200, None, False),
        (400, None, False),
        (401, None, True),
        (403, None, True),
        (404, None, False),
        (429, None, True),
        (429, "user", True),
        (429, "global", True),
        (429, "shared", False),
        (500, None, False),
    ],
)
def test_counts_as_invalid(status: int, scope: str | None, counted: bool) -> None:
    assert counts_as_invalid(status, scope) is counted


# --- state machines ------------------------------------------------------------------------------


def test_bucket_waits_only_when_exhausted() -> None:
    bucket = Bucket()
    assert bucket.ready_at(10.0) == 10.0
    bucket.update(RateLimitHeaders(limit=5, remaining=1, reset_after=2.0), 10.0)
    assert bucket.ready_at(10.0) == 10.0
    bucket.update(RateLimitHeaders(remaining=0, reset_after=1.5), 10.5)
    assert bucket.ready_at(10.5) == 12.0
    assert bucket.ready_at(12.0) == 12.0  # reset passed: ready, whatever Remaining said
    bucket.block_until(20.0)
    assert bucket.remaining == 0
    assert bucket.ready_at(12.0) == 20.0
    bucket.block_until(15.0)  # a shorter block never shortens a longer one
    assert bucket.ready_at(12.0) == 20.0


def test_global_window_is_a_sliding_log() -> None:
    window = GlobalWindow(limit=3, period=1.0)
    for t in (0.0, 0.2, 0.4):
        assert window.next_slot(t) == t
        window.take(t)
    assert window.next_slot(0.5) == 1.0
    assert window.sent_within_period(0.5) == 3
    window.take(1.0)
    assert window.next_slot(1.0) == 1.2
    window.block_until(5.0)
    assert window.next_slot(1.5) == 5.0


@given(
    arrivals=st.lists(st.floats(0, 10, allow_nan=False), max_size=200),
    limit=st.integers(1, 10),
    block=st.none() | st.tuples(st.floats(0, 10), st.floats(0, 5)),
)
def test_global_window_never_grants_more_than_its_limit_per_period(
    arrivals: list[float], limit: int, block: tuple[float, float] | None
) -> None:
    window = GlobalWindow(limit=limit, period=1.0)
    granted: list[float] = []
    for arrival in sorted(arrivals):
        if block is not None and arrival >= block[0]:
            window.block_until(block[0] + block[1])
        # FIFO: nobody goes before the request ahead of it.
        slot = window.next_slot(max([arrival, *granted[-1:]]))
        assert slot >= arrival
        window.take(slot)
        granted.append(slot)
    for start in granted:
        assert sum(1 for t in granted if start <= t < start + 1.0) <= limit


def test_invalid_request_window_slides() -> None:
    window = InvalidRequestWindow(threshold=3, window=600.0)
    for t in (0.0, 10.0, 20.0):
        window.record(t)
    assert window.count(30.0) == 3
    assert window.reopens_at(30.0) == 600.0  # when the entry at 0.0 leaves
    assert window.count(600.0) == 2
    assert window.reopens_at(600.0) == 600.0
    assert window.count(1_000.0) == 0


def test_default_policy_numbers() -> None:
    assert GLOBAL_LIMIT == 50
    assert INVALID_REQUEST_WINDOW == 600.0
    assert 0 < INVALID_REQUEST_THRESHOLD <= 10_000 // 5
    with pytest.raises(ValueError, match="at least 1"):
        InvalidRequestWindow(threshold=0)


# --- RateLimiter on the MockClock -----------------------------------------------------------------

MESSAGES = Route("POST", "/channels/{channel_id}/messages", channel_id=1)


async def test_limiter_learns_the_hash_and_keeps_one_queue(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # No await in here: nothing can block, so no deadline is needed.
    limiter = RateLimiter()
    provisional = limiter.bucket_for(MESSAGES)
    assert limiter.bucket_for(MESSAGES) is provisional
    headers = RateLimitHeaders(bucket="h1", limit=5, remaining=4, reset_after=5.0)
    limiter.on_response(MESSAGES, provisional, 200, headers, trio.current_time())
    assert limiter.bucket_for(MESSAGES) is provisional  # filed under the hash too
    other_channel = Route("POST", "/channels/{channel_id}/messages", channel_id=2)
    assert limiter.bucket_for(other_channel) is not provisional
    stats = limiter.statistics()
    assert stats.buckets == 2
    assert stats.routes_learned == 1


async def test_routes_sharing_a_hash_share_the_bucket(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # No await in here: nothing can block, so no deadline is needed.
    limiter = RateLimiter()
    edit = Route(
        "PATCH", "/channels/{channel_id}/messages/{message_id}", channel_id=1, message_id=2
    )
    first = limiter.bucket_for(MESSAGES)
    now = trio.current_time()
    limiter.on_response(MESSAGES, first, 200, RateLimitHeaders(bucket="same"), now)
    second = limiter.bucket_for(edit)
    limiter.on_response(edit, second, 200, RateLimitHeaders(bucket="same"), now)
    assert limiter.bucket_for(edit) is first


async def test_limiter_waits_for_the_reset(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(10):
        limiter = RateLimiter()
        bucket = limiter.bucket_for(MESSAGES)
        start = trio.current_time()
        headers = RateLimitHeaders(bucket="h", limit=1, remaining=0, reset_after=2.5)
        limiter.on_response(MESSAGES, bucket, 200, headers, start)
        assert limiter.statistics().exhausted_buckets == 1
        await limiter.wait_for_turn(MESSAGES, bucket)
        assert trio.current_time() == start + 2.5


async def test_limiter_raises_instead_of_sleeping_past_the_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    limiter = RateLimiter()
    bucket = limiter.bucket_for(MESSAGES)
    start = trio.current_time()
    headers = RateLimitHeaders(bucket="h", limit=1, remaining=0, reset_after=5.0)
    limiter.on_response(MESSAGES, bucket, 200, headers, start)
    with trio.fail_after(1), pytest.raises(RateLimited) as caught:
        await limiter.wait_for_turn(MESSAGES, bucket)
    assert trio.current_time() == start  # raised at once
    assert caught.value.retry_after == 5.0
    assert caught.value.status == 429
    assert not caught.value.is_global


async def test_global_window_spreads_a_burst(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(10):
        limiter = RateLimiter(global_limit=3)
        times: list[float] = []

        async def one(channel: int) -> None:
            route = Route("POST", "/channels/{channel_id}/messages", channel_id=channel)
            await limiter.wait_for_turn(route, limiter.bucket_for(route))
            times.append(trio.current_time())

        start = trio.current_time()
        async with trio.open_nursery() as nursery:
            for channel in range(7):
                nursery.start_soon(one, channel)
        # Each second (plus the safety margin) lets three through.
        period = GLOBAL_PERIOD + GLOBAL_MARGIN
        assert sorted(t - start for t in times) == pytest.approx(
            [0, 0, 0, period, period, period, 2 * period]
        )


async def test_interaction_routes_skip_the_global_window(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(60):
        limiter = RateLimiter()
        start = trio.current_time()
        limiter.on_too_many_requests(
            limiter.bucket_for(MESSAGES),
            TooManyRequests(30.0, True, "global", None, "m", True),
            start,
        )
        assert limiter.statistics().global_blocked_until == start + 30.0
        callback = Route(
            "POST",
            "/interactions/{interaction_id}/{interaction_token}/callback",
            interaction_id=1,
            interaction_token="t",
        )
        await limiter.wait_for_turn(callback, limiter.bucket_for(callback))
        assert trio.current_time() == start
        await limiter.wait_for_turn(MESSAGES, limiter.bucket_for(MESSAGES))
        assert trio.current_time() == start + 30.0


async def test_guard_refuses_at_the_threshold(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(INVALID_REQUEST_WINDOW + 60):
        limiter = RateLimiter(invalid_request_threshold=2)
        bucket = limiter.bucket_for(MESSAGES)
        limiter.on_response(MESSAGES, bucket, 403, RateLimitHeaders(), trio.current_time())
        limiter.on_response(
            MESSAGES, bucket, 429, RateLimitHeaders(scope="shared"), trio.current_time()
        )
        await limiter.wait_for_turn(MESSAGES, bucket)  # one counted, below the threshold
        limiter.on_response(MESSAGES, bucket, 401, RateLimitHeaders(), trio.current_time())
        with pytest.raises(InvalidRequestGuard) as caught:
            await limiter.wait_for_turn(MESSAGES, bucket)
        assert caught.value.count == 2
        assert math.isclose(caught.value.retry_after, INVALID_REQUEST_WINDOW)
        await trio.sleep(INVALID_REQUEST_WINDOW)
        await limiter.wait_for_turn(MESSAGES, bucket)
        assert limiter.statistics().invalid_requests == 0
