"""Gateway transport compression (zlib-stream, zstd-stream) and the connect URL that asks for it.

Theory of operation (PROTOCOL.md 1.1). With transport compression every server→client websocket
message is a piece of *one* compressed stream that spans the whole connection, so each connection
gets its own inflater and drops it when it ends; an inflater is never reused or shared.

- zlib-stream: Discord ends every gateway message with a Z_SYNC_FLUSH, whose last four bytes are
  ``00 00 FF FF``. `ZlibStreamInflater.feed` buffers frames until the buffer ends with that
  suffix, then inflates the buffer into exactly one message.
- zstd-stream: every websocket message is one whole gateway message, flushed but *not* ending the
  zstd frame, so the same streaming decompressor is fed message after message. Needs the optional
  `zstandard` package (Python < 3.14 has no zstd in the standard library).

Both guard against decompression bombs: a message that inflates past ``max_size`` raises
`DecompressionError` after at most ``max_size`` plus a few MiB of output, and the inflater refuses
further input, since its stream state is lost; the shell then drops the connection and resumes.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Final, Protocol, final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from trio_companion.gateway.errors import DecompressionError, UnsupportedCompression
from trio_companion.gateway.protocol import API_VERSION, ENCODING

try:
    import zstandard
except ImportError:  # pragma: no cover - depends on the installation
    _HAVE_ZSTD = False
else:
    _HAVE_ZSTD = True

ZLIB_STREAM: Final = "zlib-stream"
ZSTD_STREAM: Final = "zstd-stream"
ZLIB_SUFFIX: Final = b"\x00\x00\xff\xff"  # PROTOCOL.md 1.1: the Z_SYNC_FLUSH that ends a message.
# Our choice: a GUILD_CREATE of a very large guild is a few MiB; 16 MiB leaves room and still
# stops a bomb long before it hurts.
MAX_MESSAGE_SIZE: Final = 16 * 1024 * 1024
# zstandard's decompressobj has no output cap, so input goes in small slices and the output is
# checked after each one. One zstd block inflates to at most 128 KiB from about 4 bytes of input,
# so a 128-byte slice overshoots the limit by at most ~4 MiB.
_ZSTD_INPUT_SLICE: Final = 128


class Inflater(Protocol):
    """One connection's decompressor: ``feed`` each binary websocket message in order."""

    def feed(self, frame: bytes) -> bytes | None:
        """Add one frame; return the next whole gateway message, or None if it is incomplete.

        Raises `DecompressionError` on corrupt input or a message over the size limit; the
        inflater is then unusable.
        """
        ...

    def statistics(self) -> InflaterStatistics: ...


@dataclass(frozen=True, slots=True)
class InflaterStatistics:
    """Totals since the inflater was made: compressed bytes in, inflated bytes and messages out,
    and the compressed bytes waiting for the rest of a message."""

    compressed_bytes: int
    inflated_bytes: int
    messages: int
    buffered_bytes: int


class _Counters:
    def __init__(self, max_size: int) -> None:
        if max_size <= 0:
            raise ValueError("max_size must be positive")
        self._max_size = max_size
        self._failed = False
        self._compressed = 0
        self._inflated = 0
        self._messages = 0

    def _check_usable(self) -> None:
        if self._failed:
            raise DecompressionError("the stream already failed; open a new connection")

    def _fail(self, detail: str, *, limit: int | None = None) -> DecompressionError:
        self._failed = True
        return DecompressionError(detail, limit=limit)

    def _too_large(self) -> DecompressionError:
        return self._fail(f"a message inflates past {self._max_size} bytes", limit=self._max_size)

    def _count(self, message: bytes) -> bytes:
        self._inflated += len(message)
        self._messages += 1
        return message


@final
class ZlibStreamInflater(_Counters):
    """zlib-stream: one ``zlib.decompressobj`` for the connection, one message per sync flush."""

    def __init__(self, *, max_size: int = MAX_MESSAGE_SIZE) -> None:
        super().__init__(max_size)
        self._zlib = zlib.decompressobj()
        self._buffer = bytearray()

    def feed(self, frame: bytes) -> bytes | None:
        """See `Inflater.feed`. The suffix is looked for at the end of the buffer, not only of
        this frame, so a suffix split across two frames still ends the message."""
        self._check_usable()
        self._compressed += len(frame)
        self._buffer += frame
        if not self._buffer.endswith(ZLIB_SUFFIX):
            if len(self._buffer) > self._max_size:
                raise self._too_large()
            return None
        try:
            # max_length one past the limit: getting that many bytes means "too large", and
            # zlib stops there instead of inflating the rest.
            message = self._zlib.decompress(self._buffer, self._max_size + 1)
        except zlib.error as exc:
            raise self._fail(str(exc)) from exc
        finally:
            self._buffer.clear()
        if len(message) > self._max_size:
            raise self._too_large()
        return self._count(message)

    def statistics(self) -> InflaterStatistics:
        return InflaterStatistics(
            self._compressed, self._inflated, self._messages, len(self._buffer)
        )


@final
class ZstdStreamInflater(_Counters):
    """zstd-stream: one streaming zstd decompressor for the connection, one message per frame.

    Raises `UnsupportedCompression` when `zstandard` is not installed.
    """

    def __init__(self, *, max_size: int = MAX_MESSAGE_SIZE) -> None:
        super().__init__(max_size)
        if not _HAVE_ZSTD:
            raise UnsupportedCompression(ZSTD_STREAM, available_compressions(), _ZSTD_HINT)
        # read_across_frames: should Discord ever end a zstd frame, the next one just follows.
        self._zstd = zstandard.ZstdDecompressor().decompressobj(read_across_frames=True)

    def feed(self, frame: bytes) -> bytes | None:
        """See `Inflater.feed`; returns None only for a frame that inflates to nothing."""
        self._check_usable()
        self._compressed += len(frame)
        view = memoryview(frame)
        out = bytearray()
        try:
            for start in range(0, len(view), _ZSTD_INPUT_SLICE):
                out += self._zstd.decompress(view[start : start + _ZSTD_INPUT_SLICE])
                if len(out) > self._max_size:
                    raise self._too_large()
        except zstandard.ZstdError as exc:
            raise self._fail(str(exc)) from exc
        return self._count(bytes(out)) if out else None

    def statistics(self) -> InflaterStatistics:
        return InflaterStatistics(self._compressed, self._inflated, self._messages, 0)


_ZSTD_HINT: Final = "; zstd-stream needs the zstandard package: pip install 'trio-companion[zstd]'"


def available_compressions() -> tuple[str, ...]:
    """Transport compressions usable here, preferred first (zstd is smaller and faster)."""
    return (ZSTD_STREAM, ZLIB_STREAM) if _HAVE_ZSTD else (ZLIB_STREAM,)


def make_inflater(name: str, *, max_size: int = MAX_MESSAGE_SIZE) -> Inflater:
    """A fresh inflater for one connection using compression ``name``.

    Raises `UnsupportedCompression` for an unknown name, or zstd-stream without `zstandard`.
    """
    if name == ZLIB_STREAM:
        return ZlibStreamInflater(max_size=max_size)
    if name == ZSTD_STREAM:
        return ZstdStreamInflater(max_size=max_size)
    raise UnsupportedCompression(name, available_compressions())


_OURS: Final = frozenset({"v", "encoding", "compress"})


def _query_pairs(compress: str | None) -> list[tuple[str, str]]:
    pairs = [("v", str(API_VERSION)), ("encoding", ENCODING)]
    if compress is not None:
        if compress not in (ZLIB_STREAM, ZSTD_STREAM):
            raise UnsupportedCompression(compress, available_compressions())
        pairs.append(("compress", compress))
    return pairs


def gateway_query(compress: str | None) -> str:
    """``v=10&encoding=json``, plus ``&compress=<compress>`` unless it is None.

    Raises `UnsupportedCompression` for an unknown compression name.
    """
    return urlencode(_query_pairs(compress))


def gateway_connect_url(base_url: str, compress: str | None) -> str:
    """``base_url`` (``/gateway/bot``'s url or READY's resume_gateway_url) with the gateway query.

    An empty path becomes ``/``; query parameters already in ``base_url`` are kept, except
    ``v``, ``encoding`` and ``compress``, which this function alone decides.
    """
    parts = urlsplit(base_url)
    ours = _query_pairs(compress)
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in _OURS]
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", urlencode(kept + ours), ""))
