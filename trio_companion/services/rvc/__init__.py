"""Voice conversion (RVC): the `VoiceConverter` capability, its backends, and the fallback.

- `base`: `VoiceConverter`, `RVCParams`;
- `http`: `RVCHttpConverter`, for an rvc-python API server;
- `gradio`: `RVCWebUIConverter`, for RVC-WebUI's Gradio API (same host only);
- `convert`: `convert_long` (chunk, convert, crossfade) and `SpeechConverter` (speak unconverted
  when the converter is down, and say so once);
- `errors`: `RVCError` and its leaves.
"""

from __future__ import annotations

from trio_companion.services.rvc.base import F0_METHODS, RVCParams, VoiceConverter
from trio_companion.services.rvc.convert import (
    Conversion,
    ConversionStatistics,
    SpeechConverter,
    convert_long,
)
from trio_companion.services.rvc.errors import (
    RVCError,
    RVCFailed,
    RVCModelNotFound,
    RVCUnavailable,
)
from trio_companion.services.rvc.gradio import RVCWebUIConverter
from trio_companion.services.rvc.http import RVCHttpConverter, RVCHttpPaths

__all__ = [
    "F0_METHODS",
    "Conversion",
    "ConversionStatistics",
    "RVCError",
    "RVCFailed",
    "RVCHttpConverter",
    "RVCHttpPaths",
    "RVCModelNotFound",
    "RVCParams",
    "RVCUnavailable",
    "RVCWebUIConverter",
    "SpeechConverter",
    "VoiceConverter",
    "convert_long",
]
