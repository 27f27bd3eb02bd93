"""`RestClient` against the fake Discord REST API over real loopback HTTPS, on the MockClock.

Every assertion about timing reads the arrival times the fake recorded: "no request during the
wait" means no recorded request between the two instants, not that some method was not called.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from pathlib import Path

import httpx
import msgspec
import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from tests.fakes.discord_rest import FAKE_TOKEN, FakeDiscordRest, RecordedRequest, _parse_multipart
from trio_companion import __version__
from trio_companion.gateway.errors import GatewayError
from trio_companion.gateway.ratelimit import Route
from trio_companion.gateway.rest import EPHEMERAL, USER_AGENT, RestClient
from trio_companion.gateway.rest_errors import (
    BadRequest,
    DiscordUnavailable,
    Forbidden,
    HTTPError,
    InvalidRequestGuard,
    NotFound,
    RateLimited,
    RequestValidationError,
    ServerError,
    Unauthorized,
)
from trio_companion.gateway.rest_models import AllowedMentions, Channel, File, encode_multipart
from trio_companion.gateway.tls import CA_FILE_ENV, make_ssl_context

CHANNEL = 4_000
OTHER_CHANNEL = 4_001
MESSAGES = "POST /channels/{channel_id}/messages"


@pytest.fixture
def fake(fake_discord_rest: FakeDiscordRest) -> FakeDiscordRest:
    fake_discord_rest.add_channel(CHANNEL)
    fake_discord_rest.add_channel(OTHER_CHANNEL)
    return fake_discord_rest


@pytest.fixture
def client(rest_client: RestClient, fake: FakeDiscordRest) -> RestClient:
    return rest_client


def arrivals(requests: Sequence[RecordedRequest]) -> list[float]:
    return [r.arrived_at for r in requests]


def statuses(requests: Sequence[RecordedRequest]) -> list[int | None]:
    return [r.status for r in requests]


# --- what crosses the wire -----------------------------------------------------------------------


async def test_every_request_carries_the_bot_token_and_user_agent(
    autojump_clock: trio.testing.MockClock, fake: FakeDiscordRest, client: RestClient
) -> None:
    with trio.fail_after(10):
        await client.get_gateway_bot()
        await client.get_current_application()
        await client.create_message(CHANNEL, "hello")
        await client.trigger_typing(CHANNEL)
    assert (
        f"DiscordBot (https://github.com/trio-companion/trio-companion, {__version__})"
    ) == USER_AGENT
    for request in fake.requests:
        assert request.headers["authorization"] == f"Bot {FAKE_TOKEN}"
        assert request.headers["user-agent"] == USER_AGENT
        assert request.status in (200, 204)
    post = fake.requests_to(MESSAGES)[0]
    assert post.headers["content-type"] == "application/json"
    assert post.json == {
        "content": "hello",
        "allowed_mentions": {"parse": [], "users": [], "roles": [], "replied_user": True},
    }


async def test_endpoints_round_trip(
    autojump_clock: trio.testing.MockClock, fake: FakeDiscordRest, client: RestClient
) -> None:
    with trio.fail_after(10):
        fake.gateway_url = "wss://127.0.0.1:9999"
        gateway = await client.get_gateway_bot()
        assert gateway.url == "wss://127.0.0.1:9999"
        assert gateway.session_start_limit.max_concurrency == 1
        app = await client.get_current_application()
        assert app.id == fake.application_id

        first = await client.create_message(CHANNEL, "one", nonce="n-1")
        second = await client.create_message(
            CHANNEL,
            "two",
            reply_to=first.id,
            allowed_mentions=AllowedMentions(parse=("users",), replied_user=False),
        )
        assert isinstance(first.id, int)
        assert second.id > first.id
        assert second.message_reference is not None
        assert second.message_reference.message_id == first.id
        sent = fake.requests_to(MESSAGES)
        assert sent[0].json["nonce"] == "n-1"
        assert sent[0].json["enforce_nonce"] is True
        assert sent[1].json["message_reference"] == {
            "message_id": str(first.id),
            "fail_if_not_exists": False,
        }
        assert sent[1].json["allowed_mentions"]["parse"] == ["users"]

        edited = await client.edit_message(CHANNEL, first.id, "one, edited")
        assert edited.content == "one, edited"
        assert edited.edited_timestamp is not None
        newest_first = await client.get_messages(CHANNEL, limit=10)
        assert [m.id for m in newest_first] == [second.id, first.id]
        older = await client.get_messages(CHANNEL, before=second.id, limit=1)
        assert [m.id for m in older] == [first.id]
        assert fake.requests[-1].query == {"limit": "1", "before": str(second.id)}
        await client.delete_message(CHANNEL, first.id)
        assert [m["content"] for m in fake.messages(CHANNEL)] == ["two"]

        dm = await client.create_dm(77)
        assert isinstance(dm, Channel)
        assert dm.type == 1
        assert [u.id for u in dm.recipients] == [77]
        assert (await client.create_dm(77)).id == dm.id

        commands = [{"name": "chat", "description": "Talk to me", "type": 1}]
        stored = await client.bulk_overwrite_global_commands(app.id, commands)
        assert [c.name for c in stored] == ["chat"]
        assert fake.global_commands[0]["description"] == "Talk to me"
        again = await client.bulk_overwrite_global_commands(app.id, commands)
        assert again[0].id == stored[0].id  # same name and type keep their id
        in_guild = await client.bulk_overwrite_guild_commands(app.id, 55, commands)
        assert in_guild[0].guild_id == 55
        assert await client.bulk_overwrite_guild_commands(app.id, 55, []) == []
        assert fake.guild_commands[55] == []


async def test_interaction_flow(
    autojump_clock: trio.testing.MockClock, fake: FakeDiscordRest, client: RestClient
) -> None:
    with trio.fail_after(10):
        app_id = fake.application_id
        interaction = fake.register_interaction(900, "itoken")
        await client.create_interaction_response(900, "itoken", 5, {"flags": EPHEMERAL})
        assert interaction.callback_type == 5
        original = await client.edit_original_response(app_id, "itoken", "thought about it")
        assert original.content == "thought about it"
        followup = await client.create_followup(app_id, "itoken", "more", ephemeral=True)
        assert followup.flags == EPHEMERAL
        assert fake.requests_to("POST /webhooks/*")[0].json["flags"] == EPHEMERAL
        edited = await client.edit_followup(app_id, "itoken", followup.id, "more!")
        assert edited.content == "more!"
        await client.delete_followup(app_id, "itoken", followup.id)
        await client.delete_original_response(app_id, "itoken")
        assert interaction.original is None
        assert interaction.followups == {}
        assert all(r.status in (200, 204) for r in fake.requests)


async def test_multipart_upload_round_trip(
    autojump_clock: trio.testing.MockClock, fake: FakeDiscordRest, client: RestClient
) -> None:
    # Bytes that would break a naive parser: CRLFs, a fake boundary, NULs, every byte value.
    tricky = b"line\r\n--not-a-boundary\r\n\x00\xff" + bytes(range(256))
    files = [
        File("notes.txt", b"hello", "text/plain", description="a note"),
        File('we"ird\nname.bin', tricky),
    ]
    with trio.fail_after(10):
        message = await client.create_message(CHANNEL, "with files", files=files)
        fake.register_interaction(901, "tok2")
        await client.create_interaction_response(901, "tok2", 5)
        followup = await client.create_followup(
            fake.application_id, "tok2", files=[File("x.ogg", b"OggS", "audio/ogg")]
        )
    post = fake.requests_to(MESSAGES)[0]
    assert post.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert post.json["content"] == "with files"
    assert post.json["attachments"] == [
        {"id": 0, "filename": "notes.txt", "description": "a note"},
        {"id": 1, "filename": 'we"ird\nname.bin'},
    ]
    assert [(f.field_name, f.content_type, f.data) for f in post.files] == [
        ("files[0]", "text/plain", b"hello"),
        ("files[1]", "application/octet-stream", tricky),
    ]
    assert [(a.filename, a.size) for a in message.attachments] == [
        ("notes.txt", 5),
        ("we%22ird%0Aname.bin", len(tricky)),
    ]
    assert [a.size for a in followup.attachments] == [4]


@given(
    payload=st.dictionaries(st.text(max_size=5), st.text(max_size=20), max_size=3),
    files=st.lists(
        st.builds(
            File,
            filename=st.text(min_size=1, max_size=20),
            data=st.binary(max_size=300),
            content_type=st.sampled_from(["text/plain", "image/png", "audio/ogg"]),
        ),
        max_size=4,
    ),
)
def test_multipart_encoding_round_trips_through_the_fakes_parser(
    payload: dict[str, str], files: list[File]
) -> None:
    body, content_type = encode_multipart(payload, files, "b0undary")
    parts = _parse_multipart(body, content_type)
    assert parts[0][0]["name"] == "payload_json"
    decoded = msgspec.json.decode(parts[0][1])
    assert [a["id"] for a in decoded.pop("attachments")] == list(range(len(files)))
    assert decoded == payload
    assert [(p[0]["name"], p[0]["content-type"], p[1]) for p in parts[1:]] == [
        (f"files[{n}]", f.content_type, f.data) for n, f in enumerate(files)
    ]


# --- buckets -------------------------------------------------------------------------------------


async def test_bucket_learned_from_headers_and_waited_out_pre_emptively(
    autojump_clock: trio.testing.MockClock, fake: FakeDiscordRest, client: RestClient
) -> None:
    fake.set_rate_limit(MESSAGES, limit=2, per=5.0)
    with trio.fail_after(30):
        start = trio.current_time()
        await client.create_message(CHANNEL, "1")
        await client.create_message(CHANNEL, "2")  # Remaining: 0, Reset-After: 5
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.create_message, CHANNEL, "3")
            await trio.testing.wait_all_tasks_blocked()
            stats = client.statistics()
            assert stats.waiting_requests == 1
            assert stats.in_flight == 0
            assert stats.rate_limits.exhausted_buckets == 1
            assert stats.rate_limits.routes_learned == 1
            assert len(fake.requests) == 2  # the third is held back
    sent = fake.requests_to(MESSAGES)
    assert statuses(sent) == [200, 200, 200]
    assert arrivals(sent) == [start, start, start + 5.0]
    assert client.statistics().waiting_requests == 0


async def test_channels_do_not_share_a_bucket(
    autojump_clock: trio.testing.MockClock, fake: FakeDiscordRest, client: RestClient
) -> None:
    fake.set_rate_limit(MESSAGES, limit=1, per=5.0)
    with trio.fail_after(30):
        start = trio.current_time()
        await client.create_message(CHANNEL, "a")
        await client.create_message(OTHER_CHANNEL, "b")  # same route, other channel: no wait
        await client.create_message(CHANNEL, "c")  # waits for CHANNEL's reset
    sent = fake.requests_to(MESSAGES)
    assert [(r.path, r.arrived_at - start) for r in sent] == [
        (f"/channels/{CHANNEL}/messages", 0.0),
        (f"/channels/{OTHER_CHANNEL}/messages", 0.0),
        (f"/channels/{CHANNEL}/messages", 5.0),
    ]
    assert statuses(sent) == [200, 200, 200]


async def test_concurrent_requests_queue_fifo_per_bucket(
    autojump_clock: trio.testing.MockClock, fake: FakeDiscordRest, client: RestClient
) -> None:
    fake.set_rate_limit(MESSAGES, limit=2, per=1.0)
    with trio.fail_after(30):
        start = trio.current_time()
        async with trio.open_nursery() as nursery:
            for n in range(7):
                nursery.start_soon(client.create_message, CHANNEL, str(n))
                # Let it reach the bucket's queue before the next one starts.
                await trio.testing.wait_all_tasks_blocked()
    sent = fake.requests_to(MESSAGES)
    assert [r.json["content"] for r in sent] == [str(n) for n in range(7)]
    assert [r.arrived_at - start for r in sent] == [0, 0, 1, 1, 2, 2, 3]
    assert set(statuses(sent)) == {200}


async def test_wait_past_the_callers_deadline_raises_rate_limited_at_once(
    autojump_clock: trio.testing.MockClock, fake: FakeDiscordRest, client: RestClient
) -> None:
    fake.set_rate_limit(MESSAGES, limit=1, per=5.0)
    with trio.fail_after(30):
        await client.create_message(CHANNEL, "1")
        start = trio.current_time()
        with trio.fail_after(2), pytest.raises(RateLimited) as caught:
            await client.create_message(CHANNEL, "2")
        assert trio.current_time() == start
    assert caught.value.retry_after == 5.0
    assert caught.value.code is None
    assert len(fake.requests) == 1


# --- 429s ----------------------------------------------------------------------------------------


async def test_429_waits_retry_after_then_succeeds(
    autojump_clock: trio.testing.MockClock, fake: FakeDiscordRest, client: RestClient
) -> None:
    fake.script_429(MESSAGES, retry_after=2.5)
    with trio.fail_after(30):
        start = trio.current_time()
        message = await client.create_message(CHANNEL, "patient")
    assert message.content == "patient"
    assert statuses(fake.requests) == [429, 200]
    assert arrivals(fake.requests) == [start, start + 2.5]
    stats = client.statistics()
    assert stats.retries == 1
    assert stats.rate_limits.invalid_requests == 1


async def test_global_429_blocks_other_routes_but_not_interactions(
    autojump_clock: trio.testing.MockClock, fake: FakeDiscordRest, client: RestClient
) -> None:
    fake.script_429("GET /gateway/bot", retry_after=3.0, scope="global")
    with trio.fail_after(30):
        start = trio.current_time()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.get_gateway_bot)
            await trio.testing.wait_all_tasks_blocked()
            assert statuses(fake.requests) == [429]
            stats = client.statistics().rate_limits
            assert stats.global_blocked_until == start + 3.0
            nursery.start_soon(client.create_message, CHANNEL, "blocked")
            fake.register_interaction(902, "tok")
            nursery.start_soon(client.create_interaction_response, 902, "tok", 5)
    by_route = {(r.route, r.status): r.arrived_at - start for r in fake.requests}
    assert by_route == {
        ("GET /gateway/bot", 429): 0.0,
        ("POST /interactions/{interaction_id}/{interaction_token}/callback", 204): 0.0,
        ("GET /gateway/bot", 200): 3.0,
        (MESSAGES, 200): 3.0,
    }


async def test_sub_limit_429_is_obeyed_although_remaining_is_positive(
    autojump_clock: trio.testing.MockClock, fake: FakeDiscordRest, client: RestClient
) -> None:
    fake.set_rate_limit(MESSAGES, limit=5, per=10.0)
    fake.script_429(MESSAGES, retry_after=1.5, scope="shared")
    with trio.fail_after(30):
        start = trio.current_time()
        await client.create_message(CHANNEL, "x")
    first, second = fake.requests
    assert first.status == 429
    assert second.status == 200
    assert second.arrived_at == start + 1.5
    assert client.statistics().rate_limits.invalid_requests == 0  # shared 429s do not count


async def test_too_many_429s_raise_rate_limited(
    autojump_clock: trio.testing.MockClock, fake: FakeDiscordRest, client: RestClient
) -> None:
    fake.script_429(MESSAGES, retry_after=0.5, times=10)
    with trio.fail_after(30), pytest.raises(RateLimited) as caught:
        await client.create_message(CHANNEL, "x")
    assert caught.value.scope == "user"
    assert caught.value.retry_after == 0.5
    assert statuses(fake.requests) == [429] * 5


async def test_cloudflare_429_is_not_retried(
    autojump_clock: trio.testing.MockClock, fake: FakeDiscordRest, client: RestClient
) -> None:
    fake.script_status("GET /gateway/bot", 429, body=b"<html>error 1015</html>")
    with trio.fail_after(30), pytest.raises(RateLimited) as caught:
        await client.get_gateway_bot()
    assert caught.value.is_global
    assert caught.value.code is None
    assert len(fake.requests) == 1


async def test_429_wait_past_the_deadline_raises(
    autojump_clock: trio.testing.MockClock, fake: FakeDiscordRest, client: RestClient
) -> None:
    fake.script_429(MESSAGES, retry_after=60.0)
    with trio.fail_after(5), pytest.raises(RateLimited) as caught:
        await client.create_message(CHANNEL, "x")
    assert caught.value.retry_after == 60.0
    assert len(fake.requests) == 1


# --- the global limit ----------------------------------------------------------------------------


async def test_global_limit_spreads_60_requests_over_more_than_a_second(
    autojump_clock: trio.testing.MockClock, fake: FakeDiscordRest, client: RestClient
) -> None:
    channels = range(5_000, 5_060)
    for channel in channels:
        fake.add_channel(channel)
    with trio.fail_after(30):
        start = trio.current_time()
        async with trio.open_nursery() as nursery:
            for channel in channels:
                nursery.start_soon(client.create_message, channel, "hi")
    sent = fake.requests_to(MESSAGES)
    assert len(sent) == 60
    assert set(statuses(sent)) == {200}  # the fake enforces 50/s: no 429 means we obeyed
    offsets = sorted(t - start for t in arrivals(sent))
    assert offsets[-1] - offsets[0] >= 1.0
    assert offsets.count(0.0) == 50
    for t in offsets:  # never more than 50 in any one-second window
        assert sum(1 for u in offsets if t <= u < t + 1.0) <= 50


async def test_interaction_routes_are_exempt_from_the_global_limit(
    autojump_clock: trio.testing.MockClock, fake: FakeDiscordRest, client: RestClient
) -> None:
    for n in range(60):
        fake.register_interaction(10_000 + n, f"tok{n}")
    with trio.fail_after(30):
        start = trio.current_time()
        async with trio.open_nursery() as nursery:
            for n in range(60):
                nursery.start_soon(client.create_interaction_response, 10_000 + n, f"tok{n}", 5)
    assert arrivals(fake.requests) == [start] * 60
    assert set(statuses(fake.requests)) == {204}


# --- retries -------------------------------------------------------------------------------------


async def test_5xx_is_retried_with_backoff(
    autojump_clock: trio.testing.MockClock, fake: FakeDiscordRest, client: RestClient
) -> None:
    fake.script_status(MESSAGES, 502, times=2)
    with trio.fail_after(30):
        start = trio.current_time()
        await client.create_message(CHANNEL, "eventually")
    assert statuses(fake.requests) == [502, 502, 200]
    assert arrivals(fake.requests) == [start, start + 1.0, start + 4.0]  # 1 s, then 3 s
    assert client.statistics().retries == 2


async def test_5xx_gives_up_with_server_error(
    autojump_clock: trio.testing.MockClock, fake: FakeDiscordRest, client: RestClient
) -> None:
    fake.script_status("GET /gateway/bot", 500, times=10)
    with trio.fail_after(60), pytest.raises(ServerError) as caught:
        await client.get_gateway_bot()
    start = fake.requests[0].arrived_at
    assert [t - start for t in arrivals(fake.requests)] == [0, 1, 4, 9, 16]
    assert caught.value.status == 500


async def test_backoff_past_the_deadline_raises_at_once(
    autojump_clock: trio.testing.MockClock, fake: FakeDiscordRest, client: RestClient
) -> None:
    fake.script_status("GET /gateway/bot", 503, times=10)
    with trio.fail_after(0.5), pytest.raises(ServerError):
        await client.get_gateway_bot()
    assert len(fake.requests) == 1


async def test_dropped_connection_is_retried(
    autojump_clock: trio.testing.MockClock, fake: FakeDiscordRest, client: RestClient
) -> None:
    fake.script_drop(MESSAGES)
    with trio.fail_after(30):
        start = trio.current_time()
        message = await client.create_message(CHANNEL, "again", nonce="once")
    assert message.content == "again"
    assert statuses(fake.requests) == [None, 200]
    assert arrivals(fake.requests) == [start, start + 1.0]
    assert [m["content"] for m in fake.messages(CHANNEL)] == ["again"]


async def test_connection_errors_give_up_with_discord_unavailable(
    autojump_clock: trio.testing.MockClock, fake: FakeDiscordRest, client: RestClient
) -> None:
    fake.script_drop("GET /gateway/bot", times=10)
    with trio.fail_after(60), pytest.raises(DiscordUnavailable) as caught:
        await client.get_gateway_bot()
    assert caught.value.attempts == 5
    assert isinstance(caught.value.__cause__, httpx.TransportError)
    assert statuses(fake.requests) == [None] * 5


# --- auth and the invalid-request guard ---------------------------------------------------------


async def test_401_makes_the_client_refuse_everything_after(
    autojump_clock: trio.testing.MockClock,
    fake: FakeDiscordRest,
    discord_http: httpx.AsyncClient,
) -> None:
    wrong = "WRONG-token-that-must-never-be-printed"
    client = RestClient(discord_http, token=wrong, api_url=fake.url)
    with trio.fail_after(10):
        with pytest.raises(Unauthorized) as first:
            await client.get_gateway_bot()
        assert first.value.status == 401
        assert first.value.code == 0
        with pytest.raises(Unauthorized) as later:
            await client.create_message(CHANNEL, "nope")
        fake.register_interaction(903, "tok")
        with pytest.raises(Unauthorized):
            await client.create_interaction_response(903, "tok", 5)
    assert len(fake.requests) == 1  # nothing after the 401 reached Discord
    assert "refused locally" in str(later.value)
    assert client.statistics().token_invalid
    for error in (first.value, later.value):
        assert wrong not in str(error)
        assert wrong not in repr(error)
    assert wrong not in repr(client)


async def test_401_from_an_expired_interaction_token_keeps_the_client(
    autojump_clock: trio.testing.MockClock, fake: FakeDiscordRest, client: RestClient
) -> None:
    interaction = fake.register_interaction(
        904, "old-token", created_at=trio.current_time() - 16 * 60
    )
    interaction.callback_type = 5  # answered long ago
    with trio.fail_after(10):
        with pytest.raises(Unauthorized) as caught:
            await client.create_followup(fake.application_id, "old-token", "too late")
        assert caught.value.code == 50027
        assert "old-token" not in str(caught.value)
        await client.get_gateway_bot()  # still usable
    assert not client.statistics().token_invalid


async def test_invalid_request_guard_trips_and_recovers(
    autojump_clock: trio.testing.MockClock,
    fake: FakeDiscordRest,
    discord_http: httpx.AsyncClient,
) -> None:
    client = RestClient(
        discord_http, token=FAKE_TOKEN, api_url=fake.url, invalid_request_threshold=3
    )
    fake.script_status("POST /channels/*/messages", 403, times=3)
    with trio.fail_after(700):
        for _ in range(3):
            with pytest.raises(Forbidden):
                await client.create_message(CHANNEL, "forbidden")
        with pytest.raises(InvalidRequestGuard) as caught:
            await client.get_gateway_bot()
        assert caught.value.count == 3
        assert caught.value.threshold == 3
        assert len(fake.requests) == 3  # refused locally
        assert client.statistics().rate_limits.invalid_requests == 3
        await trio.sleep(caught.value.retry_after)
        await client.get_gateway_bot()
    assert fake.requests[-1].status == 200


# --- validation and Discord's error codes -------------------------------------------------------


async def test_invalid_requests_are_refused_locally(
    autojump_clock: trio.testing.MockClock, fake: FakeDiscordRest, client: RestClient
) -> None:
    too_long = "x" * 2001
    app_id = fake.application_id
    with trio.fail_after(10):
        with pytest.raises(RequestValidationError) as caught:
            await client.create_message(CHANNEL, too_long)
        assert caught.value.field == "content"
        assert "2001" in str(caught.value)
        cases = [
            client.edit_message(CHANNEL, 1, too_long),
            client.create_followup(app_id, "t", too_long),
            client.edit_original_response(app_id, "t", too_long),
            client.edit_followup(app_id, "t", 1, too_long),
            client.create_interaction_response(1, "t", 4, {"content": too_long}),
            client.create_message(CHANNEL, ""),
            client.create_message(CHANNEL, "x", nonce="n" * 26),
            client.create_message(CHANNEL, "x", files=[File(f"{n}", b"") for n in range(11)]),
            client.get_messages(CHANNEL, limit=101),
            client.get_messages(CHANNEL, limit=0),
        ]
        for call in cases:
            with pytest.raises(RequestValidationError):
                await call
        await client.create_message(CHANNEL, "x" * 2000)  # the limit itself is fine
    assert len(fake.requests) == 1


async def test_discord_error_codes_map_to_typed_errors(
    autojump_clock: trio.testing.MockClock, fake: FakeDiscordRest, client: RestClient
) -> None:
    with trio.fail_after(30):
        # 50035: bypass the local check to see what Discord would say.
        route = Route("POST", "/channels/{channel_id}/messages", channel_id=CHANNEL)
        with pytest.raises(BadRequest) as invalid_form:
            await client.request(route, json={"content": "x" * 2001})
        assert invalid_form.value.code == 50035
        assert invalid_form.value.errors is not None
        assert "content" in invalid_form.value.errors

        fake.register_interaction(905, "tok")
        await client.create_interaction_response(905, "tok", 5)
        with pytest.raises(BadRequest) as twice:
            await client.create_interaction_response(905, "tok", 5)
        assert twice.value.code == 40060

        fake.register_interaction(906, "late")
        await trio.sleep(3.5)
        with pytest.raises(NotFound) as late:
            await client.create_interaction_response(906, "late", 5)
        assert late.value.code == 10062

        with pytest.raises(NotFound) as unknown:
            await client.create_message(999, "anyone there?")
        assert unknown.value.code == 10003
        assert unknown.value.route == MESSAGES.split(" ", 1)[1]
        assert unknown.value.method == "POST"
        with pytest.raises(NotFound) as gone:
            await client.delete_message(CHANNEL, 12345)
        assert gone.value.code == 10008
    for error in (invalid_form.value, twice.value, late.value, unknown.value):
        assert isinstance(error, HTTPError)
        assert isinstance(error, GatewayError)
        assert "tok" not in str(error).replace("token", "")


async def test_unexpected_status_is_a_plain_http_error(
    autojump_clock: trio.testing.MockClock, fake: FakeDiscordRest, client: RestClient
) -> None:
    fake.script_status("GET /gateway/bot", 405)
    with trio.fail_after(10), pytest.raises(HTTPError) as caught:
        await client.get_gateway_bot()
    assert type(caught.value) is HTTPError
    assert caught.value.status == 405


# --- statistics, TLS -----------------------------------------------------------------------------


async def test_statistics_start_empty(
    autojump_clock: trio.testing.MockClock, client: RestClient
) -> None:
    stats = client.statistics()
    assert stats.waiting_requests == 0
    assert stats.in_flight == 0
    assert stats.requests_sent == 0
    assert not stats.token_invalid
    assert stats.rate_limits.buckets == 0
    assert stats.rate_limits.global_blocked_until is None
    with trio.fail_after(10):
        await client.get_gateway_bot()
    stats = client.statistics()
    assert stats.requests_sent == 1
    assert stats.rate_limits.global_sent_last_period == 1
    assert stats.rate_limits.buckets == 1


async def test_without_ssl_cert_file_the_fake_is_not_trusted(
    autojump_clock: trio.testing.MockClock,
    fake: FakeDiscordRest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(CA_FILE_ENV)
    async with httpx.AsyncClient(verify=make_ssl_context(), timeout=None) as http:
        client = RestClient(http, token=FAKE_TOKEN, api_url=fake.url)
        with trio.fail_after(60), pytest.raises(DiscordUnavailable) as caught:
            await client.get_gateway_bot()
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
    assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value)
    assert caught.value.attempts == 1  # a certificate failure is not retried
    assert fake.requests == []


def test_make_ssl_context_verifies(trust_fake_ca: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    context = make_ssl_context()
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.cert_store_stats()["x509_ca"] == 1  # only the file SSL_CERT_FILE names
    monkeypatch.delenv(CA_FILE_ENV)
    assert make_ssl_context().cert_store_stats()["x509_ca"] > 1  # certifi's bundle
    monkeypatch.setenv(CA_FILE_ENV, str(trust_fake_ca.with_name("missing.pem")))
    with pytest.raises(FileNotFoundError):
        make_ssl_context()
