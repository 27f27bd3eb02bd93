"""User profiles: facts, interests and preferences learned from conversation, ``/remember``
instructions, and an affection score with relationship stages.

* `ProfileLearner` (``extract.py``) buffers what users say and extracts facts from it in the
  background, batched, under its own limiter; it never stores instructions.
* `next_affection` / `stage_for` (``affection.py``) are the pure affection rules.
* `profile_summary` (``summary.py``) renders one user's profile as a short, bounded block for
  the prompt, with instructions clearly delimited as the user's wishes.

Storage is `trio_companion.storage.ProfilesRepository` (``store.profiles``).
"""

from trio_companion.services.profiles.affection import Stage, next_affection, stage_for
from trio_companion.services.profiles.extract import (
    EXTRACT_EVERY,
    LearnerStatistics,
    ProfileLearner,
    parse_extraction,
)
from trio_companion.services.profiles.summary import CLOSE, OPEN, profile_summary, render_summary

__all__ = [
    "CLOSE",
    "EXTRACT_EVERY",
    "OPEN",
    "LearnerStatistics",
    "ProfileLearner",
    "Stage",
    "next_affection",
    "parse_extraction",
    "profile_summary",
    "render_summary",
    "stage_for",
]
