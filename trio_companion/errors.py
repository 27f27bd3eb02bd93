"""The root of every error trio_companion raises on purpose.

::

    CompanionError                 (this module)
    ├── ConfigError                (config: the configuration cannot be used)
    ├── StorageError               (storage: the database cannot be opened or written)
    └── …                          (one root per package: gateway, voice, services)

Each package defines its own root under `CompanionError` with leaf errors that carry typed
fields. Code at a boundary (the CLI, a command handler) catches `CompanionError` to turn it into a
clear, user-visible message; anything else is a bug and is logged with its traceback.
"""

from __future__ import annotations


class CompanionError(Exception):
    """Base class of the errors trio_companion raises deliberately.

    ``str(error)`` is a complete sentence fit to show a user: it names what went wrong and, where
    there is one, what to do about it. It never contains a secret.
    """
