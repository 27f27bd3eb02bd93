"""The configuration model: every setting as a field of a frozen msgspec Struct.

A field's constraints (``ge``/``le``, patterns, literals) are its validation; ``_m(expected=...)``
overrides how the expectation is phrased in a problem, and ``secret=True`` keeps a value out of
every output. Add a setting here, explain it in ``companion.example.toml``, and it gets its
environment name, its validation and its place in ``check-config`` for free.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

__all__ = [
    "AmbientConfig",
    "ChatConfig",
    "Config",
    "DiscordConfig",
    "LLMConfig",
    "LoggingConfig",
    "MemoryConfig",
    "RVCConfig",
    "RemindersConfig",
    "STTConfig",
    "Section",
    "StorageConfig",
    "TTSConfig",
    "VoiceConfig",
]


def _m(expected: str | None = None, *, secret: bool = False, **constraints: Any) -> msgspec.Meta:
    extra: dict[str, Any] = {}
    if expected is not None:
        extra["expected"] = expected
    if secret:
        extra["secret"] = True
    return msgspec.Meta(**constraints, extra=extra)


Url = Annotated[str, _m("an http:// or https:// URL", pattern=r"^https?://[^\s/?#]+[^\s]*$")]
OptionalUrl = Annotated[
    str, _m("an http(s) URL or empty", pattern=r"^(https?://[^\s/?#]+[^\s]*)?$")
]
Secret = Annotated[str, _m(secret=True)]
Snowflake = Annotated[int, _m("a Discord id", ge=1)]
Probability = Annotated[float, _m(ge=0.0, le=1.0)]
Seconds = Annotated[float, _m(ge=0.0)]
PositiveSeconds = Annotated[float, _m(gt=0.0)]
Port = Annotated[int, _m(ge=1, le=65535)]


class Section(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class DiscordConfig(Section, frozen=True):
    token: Secret = ""
    api_url: Url = "https://discord.com/api/v10"
    dev_guild_id: Snowflake | None = None
    shard_count: Literal["auto"] | Annotated[int, _m(ge=1, le=10_000)] = "auto"
    members_intent: bool = False
    admin_user_ids: list[Snowflake] = msgspec.field(default_factory=list)
    activity: Annotated[str, _m(max_length=128)] = ""


class LLMConfig(Section, frozen=True):
    provider: Literal["ollama", "openai"] = "ollama"
    url: Url = "http://localhost:11434"
    model: Annotated[str, _m("a model name", min_length=1)] = "llama3.2"
    api_key: Secret = ""
    temperature: Annotated[float, _m(ge=0.0, le=2.0)] = 0.8
    top_k: Annotated[int, _m(ge=0, le=1000)] = 40
    top_p: Probability = 0.9
    min_p: Probability = 0.05
    repeat_penalty: Annotated[float, _m(ge=0.0, le=2.0)] = 1.1
    num_predict: Annotated[int, _m("-1 (no limit) or a positive integer", ge=-1, le=32768)] = 512
    num_ctx: Annotated[int, _m(ge=512, le=1_048_576)] = 8192
    keep_alive: Annotated[str, _m("an Ollama duration such as '5m'", pattern=r"^-?\d+[smh]?$")] = (
        "5m"
    )
    connect_timeout: PositiveSeconds = 5.0
    read_timeout: PositiveSeconds = 120.0
    max_concurrency: Annotated[int, _m(ge=1, le=64)] = 2
    requests_per_minute: Annotated[int, _m(ge=1, le=100_000)] = 120
    strip_thinking: bool = True


class ChatConfig(Section, frozen=True):
    personas_dir: str = "personas"
    default_persona: Annotated[str, _m(min_length=1)] = "default"
    history_turns: Annotated[int, _m(ge=1, le=500)] = 30
    session_window: Seconds = 300.0
    ignored_user_ids: list[Snowflake] = msgspec.field(default_factory=list)
    stream_edit_interval: Annotated[float, _m(ge=0.5, le=10.0)] = 1.0
    reply_delay_min: Seconds = 0.0
    reply_delay_max: Seconds = 0.0
    max_message_chars: Annotated[int, _m(ge=1, le=6000)] = 4000


class MemoryConfig(Section, frozen=True):
    profiles_enabled: bool = True
    summarize_after_turns: Annotated[int, _m(ge=10, le=10_000)] = 60
    rag_enabled: bool = True
    documents_dir: str = "documents"
    rag_top_k: Annotated[int, _m(ge=1, le=20)] = 3
    embedding_model: str = ""
    history_retention_days: Annotated[int, _m(ge=1, le=36_500)] = 90
    search_provider: Literal["none", "searxng", "duckduckgo"] = "none"
    searxng_url: OptionalUrl = ""
    auto_search: bool = False
    maintenance_every: Annotated[float, _m(gt=0.0, le=168.0)] = 6.0
    temp_file_max_age: Annotated[float, _m(gt=0.0)] = 24.0


class AmbientConfig(Section, frozen=True):
    lull_seconds: PositiveSeconds = 600.0
    min_interval: Seconds = 1800.0
    chance: Probability = 0.3
    proactive_chance: Probability = 0.05
    proactive_cooldown: Seconds = 600.0


class RemindersConfig(Section, frozen=True):
    default_timezone: Annotated[str, _m("an IANA time zone name such as 'Europe/Paris'")] = "UTC"
    max_per_user: Annotated[int, _m(ge=1, le=1000)] = 25


class VoiceConfig(Section, frozen=True):
    speak_chat_replies: bool = False
    queue_limit: Annotated[int, _m(ge=1, le=100)] = 10
    bitrate: Annotated[
        int, _m("an Opus bitrate in bit/s from 8000 to 512000", ge=8000, le=512_000)
    ] = 64_000
    max_speak_chars: Annotated[int, _m(ge=1, le=4000)] = 1000
    leave_when_alone: Seconds = 120.0


class TTSConfig(Section, frozen=True):
    engine: Literal["espeak", "openai", "piper"] = "espeak"
    url: Url = "http://localhost:8880"
    api_key: Secret = ""
    voice: str = ""
    speed: Annotated[float, _m(ge=0.25, le=4.0)] = 1.0
    piper_model: str = ""


class RVCConfig(Section, frozen=True):
    enabled: bool = False
    mode: Literal["http", "webui"] = "http"
    url: Url = "http://localhost:7865"
    model: str = ""
    pitch_shift: Annotated[int, _m(ge=-24, le=24)] = 0
    protect: Annotated[float, _m(ge=0.0, le=0.5)] = 0.33
    index_rate: Probability = 0.75


class STTConfig(Section, frozen=True):
    enabled: bool = False
    url: Url = "http://localhost:9000"
    language: Annotated[
        str, _m("a language code such as 'en'", pattern=r"^[a-z]{2,3}(-[A-Za-z]+)?$")
    ] = "en"
    silence_seconds: Annotated[float, _m(ge=0.2, le=10.0)] = 1.0


class StorageConfig(Section, frozen=True):
    database: Annotated[str, _m("a file name", pattern=r"^[^/\\]+$")] = "companion.sqlite3"
    synchronous: Literal["normal", "full"] = "full"


class LoggingConfig(Section, frozen=True):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    file: str = ""
    max_bytes: Annotated[int, _m(ge=10_000)] = 10_000_000
    backup_count: Annotated[int, _m(ge=0, le=100)] = 5


class Config(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Every setting of the companion; see ``companion.example.toml`` for each one explained."""

    data_dir: str = "data"
    shutdown_grace: Annotated[float, _m(gt=0.0, le=300.0)] = 10.0
    discord: DiscordConfig = msgspec.field(default_factory=DiscordConfig)
    llm: LLMConfig = msgspec.field(default_factory=LLMConfig)
    chat: ChatConfig = msgspec.field(default_factory=ChatConfig)
    memory: MemoryConfig = msgspec.field(default_factory=MemoryConfig)
    ambient: AmbientConfig = msgspec.field(default_factory=AmbientConfig)
    reminders: RemindersConfig = msgspec.field(default_factory=RemindersConfig)
    voice: VoiceConfig = msgspec.field(default_factory=VoiceConfig)
    tts: TTSConfig = msgspec.field(default_factory=TTSConfig)
    rvc: RVCConfig = msgspec.field(default_factory=RVCConfig)
    stt: STTConfig = msgspec.field(default_factory=STTConfig)
    storage: StorageConfig = msgspec.field(default_factory=StorageConfig)
    logging: LoggingConfig = msgspec.field(default_factory=LoggingConfig)

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)

    @property
    def database_path(self) -> Path:
        return self.data_path / self.storage.database
