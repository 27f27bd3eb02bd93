"""The configuration: one typed model (`model`), loaded and validated by `load` (whose docstring
tells the theory: sources, precedence, environment names, problems), shown by `render`."""

from trio_companion.config.load import ConfigError, ConfigProblem, LoadedConfig, load_config
from trio_companion.config.model import (
    AmbientConfig,
    ChatConfig,
    Config,
    DiscordConfig,
    LLMConfig,
    LoggingConfig,
    MemoryConfig,
    RemindersConfig,
    RVCConfig,
    StorageConfig,
    STTConfig,
    TTSConfig,
    VoiceConfig,
)
from trio_companion.config.render import render_effective
from trio_companion.config.schema import SCHEMA, describe_expected, secret_keys

__all__ = [
    "SCHEMA",
    "AmbientConfig",
    "ChatConfig",
    "Config",
    "ConfigError",
    "ConfigProblem",
    "DiscordConfig",
    "LLMConfig",
    "LoadedConfig",
    "LoggingConfig",
    "MemoryConfig",
    "RVCConfig",
    "RemindersConfig",
    "STTConfig",
    "StorageConfig",
    "TTSConfig",
    "VoiceConfig",
    "describe_expected",
    "load_config",
    "render_effective",
    "secret_keys",
]
