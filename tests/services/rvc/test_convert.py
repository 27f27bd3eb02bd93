"""`convert_long` (chunks and crossfades) and `SpeechConverter` (unconverted speech, one notice)."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
import trio

from tests.fakes.rvc_servers import FAKE_VOICE_RATE, FakeRVCHttp, fake_voice
from tests.services.rvc.conftest import tone
from trio_companion.services.audio import Audio
from trio_companion.services.rvc import (
    RVCHttpConverter,
    RVCUnavailable,
    SpeechConverter,
    convert_long,
)


async def test_long_audio_goes_in_overlapping_chunks_and_comes_back_seamless(
    fake_rvc_http: FakeRVCHttp, rvc_http: httpx.AsyncClient
) -> None:
    converter = RVCHttpConverter(rvc_http, fake_rvc_http.url)
    audio = tone(5.0)
    with trio.fail_after(20):
        out = await convert_long(
            converter, audio, model="mira", chunk_seconds=1.0, overlap_seconds=0.1
        )
    assert len(fake_rvc_http.conversions) == 6  # starts 0, 0.9, ..., 4.5 (the last: 0.5 s)
    assert out.rate == FAKE_VOICE_RATE
    assert abs(out.frames - round(audio.duration * FAKE_VOICE_RATE)) <= 1
    # Chunked and spliced is (nearly) the same as converting it whole: no gap, no click.
    whole = fake_voice(audio)
    assert np.max(np.abs(out.samples - whole.samples[: out.frames])) < 0.01
    steps = np.abs(np.diff(out.samples[:, 0]))
    assert steps.max() <= np.abs(np.diff(whole.samples[:, 0])).max() * 1.05


async def test_short_audio_is_one_request(
    fake_rvc_http: FakeRVCHttp, rvc_http: httpx.AsyncClient
) -> None:
    converter = RVCHttpConverter(rvc_http, fake_rvc_http.url)
    with trio.fail_after(10):
        out = await convert_long(converter, tone(0.5), model="mira", chunk_seconds=1.0)
    assert len(fake_rvc_http.conversions) == 1
    assert out.rate == FAKE_VOICE_RATE


async def test_falls_back_to_the_unconverted_audio_with_one_notice_per_outage(
    fake_rvc_http: FakeRVCHttp, rvc_http: httpx.AsyncClient
) -> None:
    speech = SpeechConverter(RVCHttpConverter(rvc_http, fake_rvc_http.url))
    audio = tone(0.3)
    with trio.fail_after(20):
        ok = await speech.convert(audio, model="mira")
        assert ok.converted
        assert ok.notice is None
        assert ok.audio.rate == FAKE_VOICE_RATE

        fake_rvc_http.down = True
        failed = [await speech.convert(audio, model="mira") for _ in range(3)]
        assert all(not result.converted for result in failed)
        assert all(result.audio is audio for result in failed)  # spoken unconverted
        notices = [result.notice for result in failed]
        assert notices[0] is not None
        assert "plain voice" in notices[0]
        assert "Can't reach" in notices[0]
        assert notices[1:] == [None, None]
        stats = speech.statistics()
        assert stats.failures == 3
        assert stats.conversions == 1
        assert stats.down_since is not None
        assert stats.backend == "rvc-http"

        fake_rvc_http.down = False
        recovered = await speech.convert(audio, model="mira")
        assert recovered.converted
        assert recovered.notice is None
        assert speech.statistics().down_since is None

        fake_rvc_http.status = 500
        again = [await speech.convert(audio, model="mira") for _ in range(2)]
        assert again[0].notice is not None
        assert "HTTP 500" in again[0].notice
        assert again[1].notice is None
    assert speech.statistics().failures == 5
    assert speech.statistics().conversions == 2


class _Broken:
    """A converter that is always unreachable."""

    name = "broken"

    async def convert(self, audio: Audio, *, model: str) -> Audio:
        await trio.lowlevel.checkpoint()
        raise RVCUnavailable("http://rvc.invalid:5050")

    async def models(self) -> list[str]:
        await trio.lowlevel.checkpoint()
        raise RVCUnavailable("http://rvc.invalid:5050")


async def test_a_failing_chunk_falls_back_to_the_whole_unconverted_audio() -> None:
    speech = SpeechConverter(_Broken(), chunk_seconds=1.0, overlap_seconds=0.1)
    audio = tone(3.0)
    with trio.fail_after(10):
        result = await speech.convert(audio, model="mira")
    assert result.audio is audio
    assert result.notice is not None


def test_overlap_must_be_shorter_than_a_chunk() -> None:
    with pytest.raises(ValueError, match="overlap"):
        SpeechConverter(_Broken(), chunk_seconds=1.0, overlap_seconds=1.0)
