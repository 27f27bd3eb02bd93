"""Self-tests of the fakes: `FakeDiscordRest` must be as strict as Discord, or the client's
tests prove nothing. These talk to it with raw httpx requests, not with `RestClient`."""

from __future__ import annotations

import json
import ssl
import time
from functools import partial
from typing import Any

import httpx
import pytest
import trio
import trio.testing

from tests.fakes.discord_rest import FAKE_TOKEN, GLOBAL_LIMIT, FakeDiscordRest
from tests.fakes.https import DROP, Drop, Request, Response, serve_https

UA = "DiscordBot (https://example.invalid/bot, 0.1.0)"
CHANNEL = 7_000


class Raw:
    """Send hand-made requests to the fake with a valid token and User-Agent by default."""

    def __init__(self, http: httpx.AsyncClient, fake: FakeDiscordRest) -> None:
        self.http = http
        self.fake = fake

    async def __call__(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        sent = {"Authorization": f"Bot {FAKE_TOKEN}", "User-Agent": UA, **(headers or {})}
        if json_body is not None:
            kwargs["content"] = json.dumps(json_body).encode()
            sent.setdefault("Content-Type", "application/json")
        return await self.http.request(method, self.fake.url + path, headers=sent, **kwargs)


@pytest.fixture
def raw(fake_discord_rest: FakeDiscordRest, discord_http: httpx.AsyncClient) -> Raw:
    fake_discord_rest.add_channel(CHANNEL)
    return Raw(discord_http, fake_discord_rest)


async def test_tls_keep_alive_and_recording(
    autojump_clock: trio.testing.MockClock, raw: Raw
) -> None:
    with trio.fail_after(10):
        start = trio.current_time()
        first = await raw("GET", "/gateway/bot")
        await trio.sleep(1)
        second = await raw("GET", "/applications/@me?with_counts=true")
    assert first.status_code == second.status_code == 200
    assert first.json()["url"] == raw.fake.gateway_url
    assert second.json()["id"] == str(raw.fake.application_id)
    one, two = raw.fake.requests
    assert one.connection == two.connection  # kept alive
    assert (one.arrived_at, two.arrived_at) == (start, start + 1)
    assert two.path == "/applications/@me"
    assert two.query == {"with_counts": "true"}
    assert two.route == "GET /applications/@me"
    assert two.headers["authorization"] == f"Bot {FAKE_TOKEN}"


async def test_auth_user_agent_and_unknown_routes(
    autojump_clock: trio.testing.MockClock, raw: Raw
) -> None:
    with trio.fail_after(10):
        missing = await raw("GET", "/gateway/bot", headers={"Authorization": ""})
        wrong = await raw("GET", "/gateway/bot", headers={"Authorization": "Bot nope"})
        bearer = await raw("GET", "/gateway/bot", headers={"Authorization": FAKE_TOKEN})
        agent = await raw("GET", "/gateway/bot", headers={"User-Agent": "python-httpx/0.28"})
        nowhere = await raw("GET", "/nowhere")
    for response in (missing, wrong, bearer):
        assert response.status_code == 401
        assert response.json() == {"message": "401: Unauthorized", "code": 0}
    assert agent.status_code == 400
    assert nowhere.status_code == 404


async def test_body_checks(autojump_clock: trio.testing.MockClock, raw: Raw) -> None:
    path = f"/channels/{CHANNEL}/messages"
    with trio.fail_after(10):
        text = await raw(
            "POST", path, content=b"content=hi", headers={"Content-Type": "text/plain"}
        )
        broken = await raw(
            "POST", path, content=b"{nope", headers={"Content-Type": "application/json"}
        )
        too_long = await raw("POST", path, json_body={"content": "x" * 2001})
        empty = await raw("POST", path, json_body={"content": ""})
        at_limit = await raw("POST", path, json_body={"content": "x" * 2000})
    assert (text.status_code, text.json()["code"]) == (400, 50035)
    assert (broken.status_code, broken.json()["code"]) == (400, 50109)
    assert too_long.status_code == 400
    assert too_long.json() == {
        "message": "Invalid Form Body",
        "code": 50035,
        "errors": {
            "content": {
                "_errors": [
                    {"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 2000 or fewer in length."}
                ]
            }
        },
    }
    assert (empty.status_code, empty.json()["code"]) == (400, 50006)
    assert at_limit.status_code == 200


async def test_messages_crud_and_unknown_ids(
    autojump_clock: trio.testing.MockClock, raw: Raw
) -> None:
    path = f"/channels/{CHANNEL}/messages"
    with trio.fail_after(10):
        ids = [
            int((await raw("POST", path, json_body={"content": str(n)})).json()["id"])
            for n in range(3)
        ]
        assert ids == sorted(ids)
        assert len(set(ids)) == 3
        page = await raw("GET", path, params={"limit": "2", "before": str(ids[2])})
        assert [m["content"] for m in page.json()] == ["1", "0"]
        edited = await raw("PATCH", f"{path}/{ids[0]}", json_body={"content": "zero"})
        assert edited.json()["content"] == "zero"
        assert (await raw("DELETE", f"{path}/{ids[1]}")).status_code == 204
        assert (await raw("POST", f"/channels/{CHANNEL}/typing")).status_code == 204
        gone = await raw("DELETE", f"{path}/{ids[1]}")
        nowhere = await raw("POST", "/channels/1/messages", json_body={"content": "hi"})
        deduped = [
            (
                await raw(
                    "POST", path, json_body={"content": "n", "nonce": "a", "enforce_nonce": True}
                )
            )
            for _ in range(2)
        ]
        bad_limit = await raw("GET", path, params={"limit": "101"})
    assert (gone.status_code, gone.json()["code"]) == (404, 10008)
    assert (nowhere.status_code, nowhere.json()["code"]) == (404, 10003)
    assert deduped[0].json()["id"] == deduped[1].json()["id"]
    assert bad_limit.status_code == 400
    assert [m["content"] for m in raw.fake.messages(CHANNEL)] == ["zero", "2", "n"]


async def test_rate_limit_headers_and_enforcement(
    autojump_clock: trio.testing.MockClock, raw: Raw
) -> None:
    raw.fake.set_rate_limit("POST /channels/{channel_id}/messages", limit=2, per=5.0, bucket="b1")
    raw.fake.add_channel(CHANNEL + 1)
    path = f"/channels/{CHANNEL}/messages"
    with trio.fail_after(30):
        before = time.time()
        first = await raw("POST", path, json_body={"content": "1"})
        second = await raw("POST", path, json_body={"content": "2"})
        third = await raw("POST", path, json_body={"content": "3"})
        elsewhere = await raw(
            "POST", f"/channels/{CHANNEL + 1}/messages", json_body={"content": "x"}
        )
        await trio.sleep(5)
        later = await raw("POST", path, json_body={"content": "4"})
    assert first.headers["x-ratelimit-limit"] == "2"
    assert first.headers["x-ratelimit-remaining"] == "1"
    assert first.headers["x-ratelimit-bucket"] == "b1"
    assert first.headers["x-ratelimit-reset-after"] == "5.000"
    assert float(first.headers["x-ratelimit-reset"]) == pytest.approx(before + 5, abs=60)
    assert second.headers["x-ratelimit-remaining"] == "0"
    assert third.status_code == 429
    assert third.headers["x-ratelimit-scope"] == "user"
    assert third.json()["retry_after"] == 5.0
    assert third.json()["global"] is False
    assert elsewhere.status_code == 200  # another channel: another window
    assert later.status_code == 200
    assert later.headers["x-ratelimit-remaining"] == "1"


async def test_global_limit_is_enforced_except_for_interactions(
    autojump_clock: trio.testing.MockClock, raw: Raw
) -> None:
    raw.fake.register_interaction(1, "tok")
    with trio.fail_after(30):
        ok = [(await raw("GET", "/gateway/bot")).status_code for _ in range(GLOBAL_LIMIT)]
        over = await raw("GET", "/applications/@me")
        exempt = await raw("POST", "/interactions/1/tok/callback", json_body={"type": 5})
        await trio.sleep(1)
        again = await raw("GET", "/applications/@me")
    assert set(ok) == {200}
    assert over.status_code == 429
    assert over.headers["x-ratelimit-global"] == "true"
    assert over.headers["x-ratelimit-scope"] == "global"
    assert over.json()["global"] is True
    assert exempt.status_code == 204
    assert again.status_code == 200


async def test_scripted_faults(autojump_clock: trio.testing.MockClock, raw: Raw) -> None:
    fake = raw.fake
    fake.script_429("GET /gateway/bot", retry_after=2.0)
    fake.script_status("GET /applications/*", 502, times=2)
    fake.script_drop("GET /users/@me")
    with trio.fail_after(30):
        limited = await raw("GET", "/gateway/bot")
        early = await raw("GET", "/gateway/bot")  # the scripted wait is enforced
        await trio.sleep(2)
        after = await raw("GET", "/gateway/bot")
        bad = [(await raw("GET", "/applications/@me")).status_code for _ in range(3)]
        with pytest.raises(httpx.RemoteProtocolError):
            await raw("GET", "/users/@me")
        me = await raw("GET", "/users/@me")
    assert limited.status_code == early.status_code == 429
    assert limited.headers["retry-after"] == "2"
    assert limited.headers["x-ratelimit-remaining"] == str(1000)  # a sub-limit look
    assert early.json()["retry_after"] == 2.0
    assert after.status_code == 200
    assert bad == [502, 502, 200]
    assert me.json()["bot"] is True
    assert [r.status for r in fake.requests_to("GET /users/@me")] == [None, 200]


async def test_scripted_global_429_blocks_everything_but_interactions(
    autojump_clock: trio.testing.MockClock, raw: Raw
) -> None:
    raw.fake.script_429("GET /gateway/bot", retry_after=1.0, scope="global")
    raw.fake.register_interaction(2, "tok")
    with trio.fail_after(30):
        first = await raw("GET", "/gateway/bot")
        other = await raw("GET", "/applications/@me")
        exempt = await raw("POST", "/interactions/2/tok/callback", json_body={"type": 5})
        await trio.sleep(1)
        after = await raw("GET", "/applications/@me")
    assert first.headers["x-ratelimit-global"] == "true"
    assert (other.status_code, other.headers["x-ratelimit-scope"]) == (429, "global")
    assert exempt.status_code == 204
    assert after.status_code == 200


async def test_interaction_rules(autojump_clock: trio.testing.MockClock, raw: Raw) -> None:
    fake = raw.fake
    app = fake.application_id
    fake.register_interaction(10, "on-time")
    late = fake.register_interaction(11, "late")
    fake.register_interaction(12, "old", created_at=trio.current_time() - 15 * 60 - 1)
    with trio.fail_after(30):
        early_followup = await raw("POST", f"/webhooks/{app}/on-time", json_body={"content": "x"})
        ok = await raw("POST", "/interactions/10/on-time/callback", json_body={"type": 5})
        twice = await raw("POST", "/interactions/10/on-time/callback", json_body={"type": 4})
        wrong_token = await raw("POST", "/interactions/10/other/callback", json_body={"type": 5})
        original = await raw(
            "PATCH",
            f"/webhooks/{app}/on-time/messages/@original",
            json_body={"content": "done"},
        )
        followup = await raw(
            "POST", f"/webhooks/{app}/on-time", json_body={"content": "more", "flags": 64}
        )
        await trio.sleep(3.001)
        too_late = await raw("POST", "/interactions/11/late/callback", json_body={"type": 5})
        expired = await raw("POST", f"/webhooks/{app}/old", json_body={"content": "x"})
        no_auth = await raw(
            "POST",
            f"/webhooks/{app}/on-time",
            json_body={"content": "no bot token needed"},
            headers={"Authorization": ""},
        )
    assert (early_followup.status_code, early_followup.json()["code"]) == (404, 10015)
    assert ok.status_code == 204
    assert (twice.status_code, twice.json()["code"]) == (400, 40060)
    assert (wrong_token.status_code, wrong_token.json()["code"]) == (404, 10062)
    assert original.json()["content"] == "done"
    assert followup.json()["flags"] == 64
    assert (too_late.status_code, too_late.json()["code"]) == (404, 10062)
    assert late.callback_type is None
    assert (expired.status_code, expired.json()["code"]) == (401, 50027)
    assert no_auth.status_code == 200


async def test_multipart_and_commands(autojump_clock: trio.testing.MockClock, raw: Raw) -> None:
    fake = raw.fake
    payload = {"content": "file", "attachments": [{"id": 0, "filename": "a.bin"}]}
    with trio.fail_after(10):
        uploaded = await raw(
            "POST",
            f"/channels/{CHANNEL}/messages",
            files=[("files[0]", ("a.bin", b"\r\n\x00data", "application/octet-stream"))],
            data={"payload_json": json.dumps(payload)},
        )
        dangling = await raw(
            "POST",
            f"/channels/{CHANNEL}/messages",
            files=[("files[0]", ("a.bin", b"x", "application/octet-stream"))],
            data={"payload_json": json.dumps({"attachments": [{"id": 3}]})},
        )
        commands = await raw(
            "PUT",
            f"/applications/{fake.application_id}/commands",
            json_body=[{"name": "chat", "description": "d"}],
        )
        foreign = await raw("PUT", "/applications/1/commands", json_body=[])
    assert uploaded.status_code == 200
    attachment = uploaded.json()["attachments"][0]
    assert (attachment["filename"], attachment["size"]) == ("a.bin", 7)
    assert fake.requests[0].files[0].data == b"\r\n\x00data"
    assert fake.requests[0].json == payload
    assert dangling.status_code == 400
    assert commands.json()[0]["application_id"] == str(fake.application_id)
    assert fake.global_commands[0]["name"] == "chat"
    assert foreign.status_code == 403


async def test_https_server_is_generic(
    autojump_clock: trio.testing.MockClock,
    nursery: trio.Nursery,
    server_ssl_context: ssl.SSLContext,
    discord_http: httpx.AsyncClient,
) -> None:
    seen: list[Request] = []

    async def handler(request: Request) -> Response | Drop:
        seen.append(request)
        if request.path == "/drop":
            return DROP
        return Response(201, (("x-echo", request.method),), request.body[::-1])

    with trio.fail_after(10):
        port = await nursery.start(partial(serve_https, handler, ssl_context=server_ssl_context))
        base = f"https://127.0.0.1:{port}"
        echoed = await discord_http.post(f"{base}/echo", content=b"abc")
        with pytest.raises(httpx.RemoteProtocolError):
            await discord_http.get(f"{base}/drop")
        again = await discord_http.put(f"{base}/echo", content=b"xyz")
    assert (echoed.status_code, echoed.headers["x-echo"], echoed.content) == (201, "POST", b"cba")
    assert again.content == b"zyx"
    assert [r.method for r in seen] == ["POST", "GET", "PUT"]
    assert seen[0].header("Content-Length") == "3"
