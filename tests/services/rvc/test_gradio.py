"""`RVCWebUIConverter` against `FakeRVCWebUI` (Gradio 3 ``/run`` and Gradio 4 ``/call``)."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import httpx
import pytest
import trio

from tests.fakes.rvc_servers import FAKE_VOICE_GAIN, FAKE_VOICE_RATE, FakeRVCWebUI
from tests.services.rvc.conftest import tone
from trio_companion.services.audio import rms
from trio_companion.services.rvc import (
    RVCFailed,
    RVCModelNotFound,
    RVCParams,
    RVCUnavailable,
    RVCWebUIConverter,
)
from trio_companion.services.rvc.gradio import GradioProtocol


async def leftovers(folder: Path) -> list[Path]:
    """What is left in ``folder`` (read in a thread: no blocking file I/O on the trio thread)."""
    return await trio.to_thread.run_sync(lambda: list(folder.iterdir()))


@pytest.mark.parametrize("protocol", ["run", "call"])
async def test_converts_through_a_shared_file_and_cleans_up(
    fake_rvc_webui: FakeRVCWebUI,
    rvc_http: httpx.AsyncClient,
    shared_dir: Path,
    protocol: GradioProtocol,
) -> None:
    params = RVCParams(f0_up_key=-2, index_rate=0.6)
    converter = RVCWebUIConverter(
        rvc_http, fake_rvc_webui.url, params=params, shared_dir=shared_dir, protocol=protocol
    )
    audio = tone(1.0)
    with trio.fail_after(10):
        out = await converter.convert(audio, model="mira")
        await converter.convert(audio, model="mira")
    assert out.rate == FAKE_VOICE_RATE
    assert out.duration == pytest.approx(audio.duration, abs=1e-3)
    assert rms(out) == pytest.approx(rms(audio) * FAKE_VOICE_GAIN, rel=0.02)
    # The voice is changed once; the WebUI read our input from the shared folder.
    assert [p for p in fake_rvc_webui.paths() if p.startswith("POST")] == [
        f"POST /{protocol}/infer_change_voice",
        f"POST /{protocol}/infer_convert",
        f"POST /{protocol}/infer_convert",
    ]
    shared = await trio.to_thread.run_sync(shared_dir.resolve)
    assert all(shared in path.parents for path in fake_rvc_webui.inputs_seen)
    weights, inputs = fake_rvc_webui.conversions[0]
    assert weights == "mira.pth"
    assert inputs[2:] == [-2, None, "rmvpe", "", "logs/mira/added.index", 0.6, 3, 0, 0.25, 0.33]
    assert await leftovers(shared_dir) == []


async def test_lists_the_voices(
    fake_rvc_webui: FakeRVCWebUI, rvc_http: httpx.AsyncClient, shared_dir: Path
) -> None:
    converter = RVCWebUIConverter(rvc_http, fake_rvc_webui.url, shared_dir=shared_dir)
    with trio.fail_after(10):
        assert await converter.models() == ["mira.pth", "narrator.pth"]


async def test_cancellation_mid_request_removes_the_input(
    fake_rvc_webui: FakeRVCWebUI, rvc_http: httpx.AsyncClient, shared_dir: Path
) -> None:
    fake_rvc_webui.hold = trio.Event()
    converter = RVCWebUIConverter(rvc_http, fake_rvc_webui.url, shared_dir=shared_dir)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(partial(converter.convert, tone(0.5), model="mira"))
            await fake_rvc_webui.convert_started.wait()
            assert len(await leftovers(shared_dir)) == 1  # the input is there while converting
            nursery.cancel_scope.cancel()
    assert await leftovers(shared_dir) == []


async def test_unknown_model_is_model_not_found(
    fake_rvc_webui: FakeRVCWebUI, rvc_http: httpx.AsyncClient, shared_dir: Path
) -> None:
    converter = RVCWebUIConverter(rvc_http, fake_rvc_webui.url, shared_dir=shared_dir)
    with trio.fail_after(10), pytest.raises(RVCModelNotFound) as caught:
        await converter.convert(tone(0.2), model="gothmommy")
    assert caught.value.model == "gothmommy.pth"
    assert caught.value.available == ("mira.pth", "narrator.pth")
    assert await leftovers(shared_dir) == []


@pytest.mark.parametrize("protocol", ["run", "call"])
async def test_failed_conversion_says_the_webui_needs_the_same_host(
    fake_rvc_webui: FakeRVCWebUI,
    rvc_http: httpx.AsyncClient,
    shared_dir: Path,
    protocol: GradioProtocol,
) -> None:
    fake_rvc_webui.status = 500
    converter = RVCWebUIConverter(
        rvc_http, fake_rvc_webui.url, shared_dir=shared_dir, protocol=protocol
    )
    with trio.fail_after(10), pytest.raises(RVCFailed) as caught:
        await converter.convert(tone(0.2), model="mira")
    assert caught.value.hint is not None
    assert "same host" not in caught.value.detail
    assert "WebUI's host" in str(caught.value)
    assert await leftovers(shared_dir) == []


async def test_webui_down_is_rvc_unavailable(
    fake_rvc_webui: FakeRVCWebUI, rvc_http: httpx.AsyncClient, shared_dir: Path
) -> None:
    fake_rvc_webui.down = True
    converter = RVCWebUIConverter(rvc_http, fake_rvc_webui.url, shared_dir=shared_dir)
    with trio.fail_after(10), pytest.raises(RVCUnavailable):
        await converter.convert(tone(0.2), model="mira")
    assert await leftovers(shared_dir) == []
