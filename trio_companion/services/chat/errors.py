"""Errors of the chat service.

::

    CompanionError
    └── ChatError                  (this module)
        └── PromptTooLong          build_prompt: the new message and the persona alone do not
                                   fit the model's context window

LLM failures keep their own types (`trio_companion.services.llm.errors`); the chat service shows
their message in the reply rather than raising.
"""

from __future__ import annotations

from trio_companion.errors import CompanionError


class ChatError(CompanionError):
    """Root of the chat service's errors."""


class PromptTooLong(ChatError):
    def __init__(self, needed: int, budget: int) -> None:
        self.needed = needed
        self.budget = budget
        super().__init__(
            f"That message is too long for the model's context window (about {needed} tokens "
            f"with the persona; {budget} fit). Please send something shorter."
        )
