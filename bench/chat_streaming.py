"""Streaming replies: first LLM token → first visible Discord message, and requests per reply.

The whole app runs against the fake Discord (TLS websocket + HTTPS) and a fake Ollama that
streams every reply at a fixed token rate; all in this process, on the real clock. For 1 and
for 50 simultaneous conversations (one per channel) we measure, per reply:

* the delay from the fake Ollama sending its first token to the fake Discord receiving the
  message that shows it (p50/p99) — what a user perceives as "it started answering";
* Discord requests per reply (message creates + edits, and typing indicators), against the
  baseline of the naive design: one edit per token.

    python bench/chat_streaming.py
"""

from __future__ import annotations

import os
import ssl
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests.fakes when run as a script

import msgspec  # noqa: E402
import trio  # noqa: E402
import trustme  # noqa: E402

from tests.fakes.discord import CHANNEL_ID, open_fake_discord  # noqa: E402
from tests.fakes.llm_servers import FakeOllama  # noqa: E402
from trio_companion import app as app_module  # noqa: E402

TOKENS_PER_SECOND = 25
WORDS = 60  # a reply of 60 tokens: 2.4 s of streaming


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


async def measure(conversations: int, data_dir: Path, server: ssl.SSLContext) -> dict[str, float]:
    """Run ``conversations`` replies at once; return the delay percentiles and request counts."""
    reply = " ".join(f"word{n}" for n in range(WORDS))
    async with open_fake_discord(server) as fake, trio.open_nursery() as nursery:
        ollama = FakeOllama(reply=reply, tokens_per_second=TOKENS_PER_SECOND)
        await nursery.start(ollama.run)
        base = fake.config(data_dir)
        config = msgspec.structs.replace(
            base, llm=msgspec.structs.replace(base.llm, url=ollama.url, max_concurrency=64)
        )
        app = await nursery.start(app_module.run, config)
        channels = [CHANNEL_ID + n for n in range(conversations)]
        for n, channel in enumerate(channels):
            await fake.say(
                "tell me", mention_bot=True, channel_id=channel, username=f"u{n}", user_id=n + 1
            )
        for channel in channels:

            def done(channel: int = channel) -> bool:
                return [m["content"] for m in fake.bot_messages(channel)] == [reply]

            await fake.rest.wait_until(done)
        app.request_shutdown("benchmark over")
        first_token: dict[int, float] = {}
        for stream in ollama.streams:
            body = stream.request.json
            assert isinstance(body, dict)
            speaker = body["messages"][-1]["content"].split(":")[0]  # "U7: tell me" -> "U7"
            first_token[channels[int(speaker[1:])]] = stream.chunk_times[0]
        delays, writes, typing = [], [], []
        for channel in channels:
            mine = [r for r in fake.rest.requests if r.path.startswith(f"/channels/{channel}/")]
            creates = [r for r in mine if r.method == "POST" and r.path.endswith("/messages")]
            edits = [r for r in mine if r.method == "PATCH"]
            delays.append(creates[0].arrived_at - first_token[channel])
            writes.append(len(creates) + len(edits))
            typing.append(sum(1 for r in mine if r.path.endswith("/typing")))
        limited = sum(1 for r in fake.rest.requests if r.status == 429)
        nursery.cancel_scope.cancel()
    return {
        "p50": percentile(delays, 50),
        "p99": percentile(delays, 99),
        "writes": statistics.mean(writes),
        "typing": statistics.mean(typing),
        "rate_limited": float(limited),
    }


async def main() -> None:
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server)
    with tempfile.TemporaryDirectory() as tmp:
        pem = Path(tmp) / "ca.pem"
        ca.cert_pem.write_to_path(str(pem))
        os.environ["SSL_CERT_FILE"] = str(pem)
        results = {n: await measure(n, Path(tmp) / f"data{n}", server) for n in (1, 50)}
    print(
        f"streaming replies: {WORDS} tokens at {TOKENS_PER_SECOND} tokens/s, "
        "edit interval 1.0 s, bot-wide edit budget 10/s"
    )
    print("  conversations  first token->visible p50 / p99   Discord writes/reply  typing")
    for n, r in results.items():
        print(
            f"  {n:13d}  {r['p50'] * 1000:16.0f} ms / {r['p99'] * 1000:6.0f} ms"
            f"   {r['writes']:10.1f}           {r['typing']:5.1f}"
        )
    print(f"  baseline (one edit per token): {WORDS} writes/reply")
    limited = sum(r["rate_limited"] for r in results.values())
    print(f"  429 answers from the fake Discord: {limited:.0f}")


if __name__ == "__main__":
    trio.run(main)
