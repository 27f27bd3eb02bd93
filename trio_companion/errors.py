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

from typing import Any, TypeVar


class CompanionError(Exception):
    """Base class of the errors trio_companion raises deliberately.

    ``str(error)`` is a complete sentence fit to show a user: it names what went wrong and, where
    there is one, what to do about it. It never contains a secret.
    """


_E = TypeVar("_E", bound=BaseException)


def first_exception(group: BaseExceptionGroup[Any], kind: type[_E]) -> _E:
    """The first leaf of ``group``, nested groups included, for a message or a typed field.

    Use it in an ``except* Kind as group`` clause, where every leaf is a ``Kind``."""
    leaf: BaseException = group
    while isinstance(leaf, BaseExceptionGroup):
        leaf = leaf.exceptions[0]
    assert isinstance(leaf, kind)
    return leaf
