"""Tests of gateway transport compression and the connect URL.

The compressed streams are made the way Discord makes them: one compressor for the connection,
flushed after every message (zlib Z_SYNC_FLUSH, zstd FLUSH_BLOCK).
"""

from __future__ import annotations

import itertools
import tracemalloc
import zlib

import msgspec
import pytest
import zstandard
from hypothesis import given
from hypothesis import strategies as st

from trio_companion.gateway import compression
from trio_companion.gateway.compression import (
    MAX_MESSAGE_SIZE,
    ZLIB_SUFFIX,
    InflaterStatistics,
    ZlibStreamInflater,
    ZstdStreamInflater,
    available_compressions,
    gateway_connect_url,
    gateway_query,
    make_inflater,
)
from trio_companion.gateway.errors import DecompressionError, UnsupportedCompression

MESSAGES: list[bytes] = [
    b'{"op":10,"d":{"heartbeat_interval":41250,"_trace":["[\\"gateway-prd\\"]"]},"s":null,"t":null}',
    b'{"op":11,"d":null}',
    b'{"op":0,"s":1,"t":"READY","d":{"v":10,"session_id":"abc","resume_gateway_url":"wss://x"}}',
    msgspec.json.encode(
        {
            "op": 0,
            "s": 2,
            "t": "GUILD_CREATE",
            "d": {
                "id": "111",
                "name": "Cozy Corner",
                "channels": [
                    {"id": str(10**17 + i), "type": i % 5, "name": f"channel-{i}", "position": i}
                    for i in range(1500)
                ],
            },
        }
    ),
    b'{"op":11,"d":null}',
    '{"op":0,"s":3,"t":"MESSAGE_CREATE","d":{"content":"h\u00e9llo \u2603"}}'.encode(),
]


def zlib_stream(messages: list[bytes]) -> list[bytes]:
    """One compressed chunk per message, as Discord sends them on one connection."""
    compressor = zlib.compressobj()
    return [compressor.compress(m) + compressor.flush(zlib.Z_SYNC_FLUSH) for m in messages]


def zstd_stream(messages: list[bytes]) -> list[bytes]:
    compressor = zstandard.ZstdCompressor().compressobj()
    return [
        compressor.compress(m) + compressor.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
        for m in messages
    ]


def split(chunk: bytes, cuts: list[int]) -> list[bytes]:
    points = [0, *sorted({c for c in cuts if 0 < c < len(chunk)}), len(chunk)]
    return [chunk[a:b] for a, b in itertools.pairwise(points)]


# --- zlib-stream --------------------------------------------------------------------------------


def test_zlib_one_frame_per_message() -> None:
    inflater = ZlibStreamInflater()
    chunks = zlib_stream(MESSAGES)
    assert all(chunk.endswith(ZLIB_SUFFIX) for chunk in chunks)
    assert [inflater.feed(chunk) for chunk in chunks] == MESSAGES
    assert inflater.statistics() == InflaterStatistics(
        compressed_bytes=sum(map(len, chunks)),
        inflated_bytes=sum(map(len, MESSAGES)),
        messages=len(MESSAGES),
        buffered_bytes=0,
    )


@pytest.mark.parametrize(
    "cuts",
    [
        [1],  # first byte alone
        [-1],  # all but the last byte, then the last byte of the suffix alone
        [-4],  # the suffix alone
        [-2],  # the suffix split in two frames
        [1, 2, 3, -3, -2, -1],  # several one-byte frames
        [7, 100, 1000, 5000],
    ],
)
def test_zlib_messages_split_across_frames(cuts: list[int]) -> None:
    inflater = ZlibStreamInflater()
    for message, chunk in zip(MESSAGES, zlib_stream(MESSAGES), strict=True):
        frames = split(chunk, [c % len(chunk) for c in cuts])
        results = [inflater.feed(frame) for frame in frames]
        assert results[:-1] == [None] * (len(frames) - 1)
        assert results[-1] == message


def _safe_cuts(chunk: bytes, cuts: list[int]) -> list[int]:
    """Drop cut points right after a ``00 00 FF FF`` inside the data: Discord's frames never end
    there (only a message's last frame ends with the suffix), so neither do ours."""
    return [c for c in cuts if not chunk[:c].endswith(ZLIB_SUFFIX)]


@given(
    messages=st.lists(st.binary(max_size=3000), min_size=1, max_size=8),
    cut_fractions=st.lists(st.lists(st.floats(0.0, 1.0), max_size=6), min_size=8, max_size=8),
)
def test_zlib_random_split_points(messages: list[bytes], cut_fractions: list[list[float]]) -> None:
    inflater = ZlibStreamInflater()
    for message, chunk, fractions in zip(
        messages, zlib_stream(messages), cut_fractions, strict=False
    ):
        cuts = _safe_cuts(chunk, [int(f * len(chunk)) for f in fractions])
        results = [inflater.feed(frame) for frame in split(chunk, cuts)]
        assert [r for r in results if r is not None] == [message]
        assert results[-1] == message


def test_zlib_partial_frames_return_none_and_buffer() -> None:
    inflater = ZlibStreamInflater()
    chunk = zlib_stream([MESSAGES[0]])[0]
    assert inflater.feed(chunk[:10]) is None
    assert inflater.feed(chunk[10:-4]) is None
    assert inflater.statistics().buffered_bytes == len(chunk) - 4
    assert inflater.statistics().messages == 0
    assert inflater.feed(chunk[-4:]) == MESSAGES[0]
    assert inflater.statistics().buffered_bytes == 0


def test_zlib_inflater_is_per_connection() -> None:
    """A fresh inflater cannot read the middle of another connection's stream."""
    chunks = zlib_stream(MESSAGES)
    ZlibStreamInflater().feed(chunks[0])
    with pytest.raises(DecompressionError) as info:
        ZlibStreamInflater().feed(chunks[1])
    assert info.value.limit is None


@pytest.mark.parametrize(
    "garbage", [b"\xff\xfe\xfd" + ZLIB_SUFFIX, b"not zlib at all" + ZLIB_SUFFIX]
)
def test_zlib_corrupt_stream(garbage: bytes) -> None:
    inflater = ZlibStreamInflater()
    with pytest.raises(DecompressionError):
        inflater.feed(garbage)


@pytest.mark.parametrize(("size", "accepted"), [(1 << 20, True), ((1 << 20) + 1, False)])
def test_zlib_bomb_guard(size: int, accepted: bool) -> None:
    inflater = ZlibStreamInflater(max_size=1 << 20)
    (chunk,) = zlib_stream([b"\0" * size])
    assert len(chunk) < 5000  # a small frame that inflates a lot
    if accepted:
        assert inflater.feed(chunk) == b"\0" * size
    else:
        with pytest.raises(DecompressionError) as info:
            inflater.feed(chunk)
        assert info.value.limit == 1 << 20


def test_zlib_default_limit_is_16_mib() -> None:
    assert MAX_MESSAGE_SIZE == 16 * 1024 * 1024
    (chunk,) = zlib_stream([b"{" * (MAX_MESSAGE_SIZE + 1)])
    with pytest.raises(DecompressionError, match="16777216"):
        ZlibStreamInflater().feed(chunk)


def test_zlib_unterminated_buffer_is_bounded() -> None:
    inflater = ZlibStreamInflater(max_size=1000)
    assert inflater.feed(b"\x01" * 1000) is None
    with pytest.raises(DecompressionError) as info:
        inflater.feed(b"\x01")
    assert info.value.limit == 1000


def test_zlib_failed_inflater_stays_failed() -> None:
    inflater = ZlibStreamInflater(max_size=100)
    chunks = zlib_stream([b"x" * 101, b"ok"])
    with pytest.raises(DecompressionError):
        inflater.feed(chunks[0])
    with pytest.raises(DecompressionError, match="already failed"):
        inflater.feed(chunks[1])


# --- zstd-stream --------------------------------------------------------------------------------


def test_zstd_stream_across_messages() -> None:
    inflater = ZstdStreamInflater()
    chunks = zstd_stream(MESSAGES)
    assert [inflater.feed(chunk) for chunk in chunks] == MESSAGES
    stats = inflater.statistics()
    assert (stats.messages, stats.inflated_bytes) == (len(MESSAGES), sum(map(len, MESSAGES)))
    assert stats.compressed_bytes == sum(map(len, chunks))


@given(messages=st.lists(st.binary(min_size=1, max_size=5000), min_size=1, max_size=10))
def test_zstd_stream_random_messages(messages: list[bytes]) -> None:
    inflater = ZstdStreamInflater()
    assert [inflater.feed(chunk) for chunk in zstd_stream(messages)] == messages


def test_zstd_later_messages_need_the_earlier_ones() -> None:
    """The stream is one zstd frame: a fresh inflater cannot start in the middle of it."""
    chunks = zstd_stream(MESSAGES)
    fresh = ZstdStreamInflater()
    with pytest.raises(DecompressionError):
        fresh.feed(chunks[3])


def test_zstd_empty_frame_returns_none() -> None:
    assert ZstdStreamInflater().feed(b"") is None


@pytest.mark.parametrize(("size", "accepted"), [(1 << 20, True), ((1 << 20) + 1, False)])
def test_zstd_bomb_guard(size: int, accepted: bool) -> None:
    inflater = ZstdStreamInflater(max_size=1 << 20)
    (chunk,) = zstd_stream([b"\0" * size])
    if accepted:
        assert inflater.feed(chunk) == b"\0" * size
    else:
        with pytest.raises(DecompressionError) as info:
            inflater.feed(chunk)
        assert info.value.limit == 1 << 20


def test_zstd_bomb_stops_early() -> None:
    """64 MiB of zeros compresses to about 2 KiB; inflating it must stop near the 1 MiB limit
    rather than build the whole 64 MiB first."""
    compressor = zstandard.ZstdCompressor().compressobj()
    chunk = compressor.compress(b"\0" * (64 << 20))
    chunk += compressor.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
    assert len(chunk) < 4096
    inflater = ZstdStreamInflater(max_size=1 << 20)
    tracemalloc.start()
    try:
        with pytest.raises(DecompressionError) as info:
            inflater.feed(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.value.limit == 1 << 20
    assert peak < 16 << 20
    with pytest.raises(DecompressionError, match="already failed"):
        inflater.feed(b"")


def test_zstd_corrupt_stream() -> None:
    with pytest.raises(DecompressionError):
        ZstdStreamInflater().feed(b"this is not zstd")


# --- Choosing a compression ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "inflater_type"),
    [("zlib-stream", ZlibStreamInflater), ("zstd-stream", ZstdStreamInflater)],
)
def test_make_inflater(name: str, inflater_type: type[object]) -> None:
    first, second = make_inflater(name), make_inflater(name)
    assert isinstance(first, inflater_type)
    assert first is not second  # one per connection


@pytest.mark.parametrize("name", ["zlib", "zstd", "gzip", ""])
def test_make_inflater_unknown(name: str) -> None:
    with pytest.raises(UnsupportedCompression) as info:
        make_inflater(name)
    assert info.value.name == name
    assert info.value.available == available_compressions()


def test_available_compressions_with_zstandard() -> None:
    assert available_compressions() == ("zstd-stream", "zlib-stream")


def test_without_zstandard(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compression, "_HAVE_ZSTD", False)
    assert available_compressions() == ("zlib-stream",)
    with pytest.raises(UnsupportedCompression, match=r"pip install"):
        make_inflater("zstd-stream")
    assert isinstance(make_inflater("zlib-stream"), ZlibStreamInflater)


# --- Connect URL --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("compress", "query"),
    [
        (None, "v=10&encoding=json"),
        ("zlib-stream", "v=10&encoding=json&compress=zlib-stream"),
        ("zstd-stream", "v=10&encoding=json&compress=zstd-stream"),
    ],
)
def test_gateway_query(compress: str | None, query: str) -> None:
    assert gateway_query(compress) == query


def test_gateway_query_refuses_unknown_compression() -> None:
    with pytest.raises(UnsupportedCompression):
        gateway_query("lz4")


@pytest.mark.parametrize(
    ("base", "compress", "url"),
    [
        ("wss://gateway.discord.gg", None, "wss://gateway.discord.gg/?v=10&encoding=json"),
        ("wss://gateway.discord.gg/", None, "wss://gateway.discord.gg/?v=10&encoding=json"),
        (
            "wss://gateway-us-east1-b.discord.gg",
            "zlib-stream",
            "wss://gateway-us-east1-b.discord.gg/?v=10&encoding=json&compress=zlib-stream",
        ),
        (
            "wss://gateway.discord.gg/?foo=bar",
            "zstd-stream",
            "wss://gateway.discord.gg/?foo=bar&v=10&encoding=json&compress=zstd-stream",
        ),
        (
            "wss://gateway.discord.gg/?v=9&encoding=etf&compress=zlib-stream",
            None,
            "wss://gateway.discord.gg/?v=10&encoding=json",
        ),
        ("ws://127.0.0.1:8765/gw", None, "ws://127.0.0.1:8765/gw?v=10&encoding=json"),
        ("ws://127.0.0.1:8765/gw/", None, "ws://127.0.0.1:8765/gw/?v=10&encoding=json"),
        ("wss://gateway.discord.gg?", None, "wss://gateway.discord.gg/?v=10&encoding=json"),
    ],
)
def test_gateway_connect_url(base: str, compress: str | None, url: str) -> None:
    assert gateway_connect_url(base, compress) == url
