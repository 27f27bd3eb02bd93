"""`RVCHttpConverter` against `FakeRVCHttp` (rvc-python's API) over loopback HTTP."""

from __future__ import annotations

import httpx
import pytest
import trio

from tests.fakes.rvc_servers import FAKE_VOICE_GAIN, FAKE_VOICE_RATE, FakeRVCHttp
from tests.services.rvc.conftest import tone
from trio_companion.services.audio import rms
from trio_companion.services.rvc import (
    RVCFailed,
    RVCHttpConverter,
    RVCModelNotFound,
    RVCParams,
    RVCUnavailable,
)


async def test_converts_with_the_model_and_the_settings(
    fake_rvc_http: FakeRVCHttp, rvc_http: httpx.AsyncClient
) -> None:
    params = RVCParams(f0_up_key=3, f0_method="harvest", index_rate=0.5, protect=0.4)
    converter = RVCHttpConverter(rvc_http, fake_rvc_http.url, params=params)
    audio = tone(1.0, channels=2)
    with trio.fail_after(10):
        out = await converter.convert(audio, model="mira")
        await converter.convert(audio, model="mira")
    assert out.rate == FAKE_VOICE_RATE
    assert out.channels == 1
    assert out.duration == pytest.approx(audio.duration, abs=1e-3)
    assert rms(out) == pytest.approx(rms(audio) * FAKE_VOICE_GAIN, rel=0.02)
    # The model is loaded and the settings sent once; then only conversions.
    assert fake_rvc_http.paths() == [
        "POST /models/mira",
        "POST /params",
        "POST /convert",
        "POST /convert",
    ]
    assert fake_rvc_http.requests[1].json == {
        "params": {
            "f0up_key": 3,
            "f0method": "harvest",
            "index_rate": 0.5,
            "filter_radius": 3,
            "resample_sr": 0,
            "rms_mix_rate": 0.25,
            "protect": 0.4,
        }
    }
    assert [model for model, _ in fake_rvc_http.conversions] == ["mira", "mira"]


async def test_switching_models_loads_the_other_one(
    fake_rvc_http: FakeRVCHttp, rvc_http: httpx.AsyncClient
) -> None:
    converter = RVCHttpConverter(rvc_http, fake_rvc_http.url)
    with trio.fail_after(10):
        await converter.convert(tone(0.2), model="mira")
        await converter.convert(tone(0.2), model="narrator")
    assert [model for model, _ in fake_rvc_http.conversions] == ["mira", "narrator"]


async def test_lists_the_models(fake_rvc_http: FakeRVCHttp, rvc_http: httpx.AsyncClient) -> None:
    converter = RVCHttpConverter(rvc_http, fake_rvc_http.url)
    with trio.fail_after(10):
        assert await converter.models() == ["mira", "narrator"]


async def test_unknown_model_names_the_ones_there_are(
    fake_rvc_http: FakeRVCHttp, rvc_http: httpx.AsyncClient
) -> None:
    converter = RVCHttpConverter(rvc_http, fake_rvc_http.url)
    with trio.fail_after(10), pytest.raises(RVCModelNotFound) as caught:
        await converter.convert(tone(0.2), model="gothmommy")
    assert caught.value.model == "gothmommy"
    assert caught.value.available == ("mira", "narrator")
    assert "gothmommy" in str(caught.value)
    assert fake_rvc_http.conversions == []


async def test_server_error_is_rvc_failed_with_its_detail(
    fake_rvc_http: FakeRVCHttp, rvc_http: httpx.AsyncClient
) -> None:
    fake_rvc_http.status = 500
    converter = RVCHttpConverter(rvc_http, fake_rvc_http.url)
    with trio.fail_after(10), pytest.raises(RVCFailed) as caught:
        await converter.convert(tone(0.2), model="mira")
    assert caught.value.status == 500
    assert caught.value.detail == "An error occurred: CUDA out of memory"
    assert "HTTP 500" in str(caught.value)
    # After a failure the converter no longer trusts the server's state: it loads again.
    fake_rvc_http.status = None
    with trio.fail_after(10):
        await converter.convert(tone(0.2), model="mira")
    assert fake_rvc_http.paths().count("POST /models/mira") == 2


async def test_server_down_is_rvc_unavailable(
    fake_rvc_http: FakeRVCHttp, rvc_http: httpx.AsyncClient
) -> None:
    fake_rvc_http.down = True
    converter = RVCHttpConverter(rvc_http, fake_rvc_http.url)
    with trio.fail_after(10), pytest.raises(RVCUnavailable) as caught:
        await converter.convert(tone(0.2), model="mira")
    assert caught.value.url == fake_rvc_http.url
    assert not caught.value.timed_out
    assert "Can't reach" in str(caught.value)


async def test_a_restarted_server_gets_the_model_again(
    fake_rvc_http: FakeRVCHttp, rvc_http: httpx.AsyncClient
) -> None:
    converter = RVCHttpConverter(rvc_http, fake_rvc_http.url)
    with trio.fail_after(10):
        await converter.convert(tone(0.2), model="mira")
        fake_rvc_http.restart()
        out = await converter.convert(tone(0.2), model="mira")
    assert out.rate == FAKE_VOICE_RATE
    assert fake_rvc_http.paths()[-4:] == [
        "POST /convert",  # refused: no model loaded
        "POST /models/mira",
        "POST /params",
        "POST /convert",
    ]
    assert fake_rvc_http.params["f0method"] == "rmvpe"
