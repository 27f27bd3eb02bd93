"""The voice-conversion capability the companion needs, apart from any server's API.

Backends (``http.py`` for an RVC HTTP server, ``gradio.py`` for RVC-WebUI) implement
`VoiceConverter`; the voice pipeline asks for a `VoiceConverter` (usually wrapped in
`trio_companion.services.rvc.convert.SpeechConverter`), never for a backend class.

Errors (`trio_companion.services.rvc.errors`) say what happened in words a user can act on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Protocol

from trio_companion.services.audio import Audio

__all__ = ["F0_METHODS", "RVCParams", "VoiceConverter"]

# Pitch extractors both RVC-WebUI (infer-web.py, "f0method0" choices) and rvc-python (README,
# ``--method``) accept; "rmvpe" is the WebUI's default and the best of them for speech.
F0_METHODS: Final = frozenset({"pm", "harvest", "crepe", "rmvpe"})


@dataclass(frozen=True, slots=True, kw_only=True)
class RVCParams:
    """The RVC inference settings both backends send with a conversion.

    Defaults are RVC-WebUI's own for one-file inference (infer-web.py, "模型推理" tab), which the
    predecessor bot used as well.
    """

    f0_up_key: int = 0  #: transpose in semitones (+12: an octave up)
    f0_method: str = "rmvpe"  #: pitch extractor, one of `F0_METHODS`
    index_rate: float = 0.75  #: 0..1, how much of the model's feature index to blend in
    filter_radius: int = 3  #: 0..7, median filter on the pitch curve (harvest)
    resample_sr: int = 0  #: resample the output to this rate; 0 keeps the model's rate
    rms_mix_rate: float = 0.25  #: 0..1, 1 keeps the output's loudness envelope
    protect: float = 0.33  #: 0..0.5, protects breaths and consonants; 0.5 turns it off

    def __post_init__(self) -> None:
        if self.f0_method not in F0_METHODS:
            raise ValueError(
                f"f0_method must be one of {sorted(F0_METHODS)}, not {self.f0_method!r}"
            )
        if not 0.0 <= self.index_rate <= 1.0:
            raise ValueError(f"index_rate must be within 0..1, got {self.index_rate}")
        if not 0.0 <= self.protect <= 0.5:  # RVC-WebUI's slider range
            raise ValueError(f"protect must be within 0..0.5, got {self.protect}")


class VoiceConverter(Protocol):
    """Turns speech into the same speech in another voice. Safe to share between tasks."""

    @property
    def name(self) -> str:
        """A short label of the backend for logs and ``/status`` (e.g. ``"rvc-http"``)."""
        ...

    async def convert(self, audio: Audio, *, model: str) -> Audio:
        """``audio`` spoken with the voice ``model``; any length the server accepts.

        The result may have another rate and channel count than ``audio`` (RVC answers at the
        model's own rate), and about the same duration. Raises `RVCUnavailable`, `RVCFailed` or
        `RVCModelNotFound`. Cancellation abandons the request.
        """
        ...

    async def models(self) -> list[str]:
        """The voice models the server has, as ``convert`` accepts them.

        Raises `RVCUnavailable` or `RVCFailed`.
        """
        ...
