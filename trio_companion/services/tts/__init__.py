"""Text-to-speech: engines behind one `TTSEngine` protocol, and the sentence pipeline.

- `base.TTSEngine`: the capability (``name``, ``synthesize``, ``voices``).
- Engines, one module each: `espeak.EspeakEngine` (the ``espeak-ng`` binary),
  `piper.PiperEngine` (local neural voices; the optional ``piper`` extra),
  `openai_speech.OpenAISpeechEngine` (Kokoro-FastAPI or any OpenAI-compatible speech server).
- `text`: sans-IO cleaning of chat markup and sentence splitting.
- `pipeline.synthesize_stream`: speak a reply sentence by sentence into a channel.
- `errors`: `TTSError` and its leaves.

Audio comes back as `trio_companion.services.audio.Audio` at the engine's native rate;
`audio.to_discord_pcm` turns it into what the voice connection sends.
"""

from __future__ import annotations

from trio_companion.services.tts.base import TTSEngine
from trio_companion.services.tts.errors import TTSError, TTSFailed, TTSUnavailable
from trio_companion.services.tts.pipeline import synthesize_stream
from trio_companion.services.tts.text import clean_for_speech, split_sentences

__all__ = [
    "TTSEngine",
    "TTSError",
    "TTSFailed",
    "TTSUnavailable",
    "clean_for_speech",
    "split_sentences",
    "synthesize_stream",
]
