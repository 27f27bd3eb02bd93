"""Chat text to speakable text, and speakable text to sentences (sans-IO).

Theory of operation
-------------------
A reply written for Discord is full of things a voice should not read out: markdown markers,
mention syntax (``<@123>``), emoji, URLs. `clean_for_speech` rewrites them in a fixed order, each
step a regular expression over the whole text:

1. Code fences lose their fence lines (and language tag); the code inside stays, as plain text.
2. Masked links ``[text](url)`` become ``text``; ``<url>`` and bare URLs become "a link".
3. Mentions become names from ``names`` (user, role and channel ids share one mapping, as Discord
   snowflakes are unique); unknown ones become "someone", "a role", "a channel". Custom emoji
   ``<:name:id>`` are dropped, slash-command mentions ``</name:id>`` become the command name,
   timestamps ``<t:…>`` become "a time".
4. Line-level markdown goes: headers (``#``, ``-#``), quotes (``>``, ``>>>``), list markers.
   Each line then ends with a sentence stop if it had none, so a list is read as a list with
   pauses rather than one run-on sentence.
5. Inline markdown goes: bold, italic, underline, strikethrough, spoilers, inline code. Single
   ``_``/``*`` only count as markers at word edges, so ``snake_case`` and ``2 * 3`` survive.
6. Unicode emoji (pictographs, dingbats, flags, skin tones, joiners) are dropped, with the
   space they leave before punctuation, and whitespace is collapsed to single spaces.

`split_sentences` cuts the result into chunks a TTS engine speaks one at a time, so playback can
start after the first. A boundary is a run of ``.``, ``!``, ``?`` or ``…`` (plus closing quotes
or brackets) followed by whitespace — so "3.5" never splits — except after a known abbreviation
("e.g.", "Mr.") or a single-letter initial, or when the next word starts in lower case. A chunk
longer than ``max_chars`` is cut at its last comma-like pause before the limit, else at its last
space, else mid-word.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

__all__ = ["clean_for_speech", "split_sentences"]

_NO_NAMES: Final[Mapping[int, str]] = {}

_FENCE: Final = re.compile(r"```[^\n`]*\n?(.*?)```", re.DOTALL)
_MASKED_LINK: Final = re.compile(r"\[([^\]\n]+)\]\(<?https?://[^)\s]+>?\)")
_ANGLE_URL: Final = re.compile(r"<https?://[^>\s]+>")
_BARE_URL: Final = re.compile(r"https?://[^\s<>]+")
_USER: Final = re.compile(r"<@!?(\d+)>")
_ROLE: Final = re.compile(r"<@&(\d+)>")
_CHANNEL: Final = re.compile(r"<#(\d+)>")
_CUSTOM_EMOJI: Final = re.compile(r"<a?:\w+:\d+>")
_COMMAND: Final = re.compile(r"</([\w -]+):\d+>")
_TIMESTAMP: Final = re.compile(r"<t:-?\d+(?::[tTdDfFR])?>")
_HEADER: Final = re.compile(r"^\s*(?:#{1,6}|-#)\s+", re.MULTILINE)
_QUOTE: Final = re.compile(r"^\s*>(?:>>)?\s?", re.MULTILINE)
_LIST: Final = re.compile(r"^\s*(?:[-*+•]|\d+[.)])\s+", re.MULTILINE)
_INLINE: Final = (
    re.compile(r"\*\*(.+?)\*\*", re.DOTALL),  # bold
    re.compile(r"__(.+?)__", re.DOTALL),  # underline
    re.compile(r"~~(.+?)~~", re.DOTALL),  # strikethrough
    re.compile(r"\|\|(.+?)\|\|", re.DOTALL),  # spoiler
    re.compile(r"(?<![\w*])\*(?![\s*])(.+?)(?<![\s*])\*(?![\w*])", re.DOTALL),  # italic *x*
    re.compile(r"(?<!\w)_(?![\s_])(.+?)(?<![\s_])_(?!\w)", re.DOTALL),  # italic _x_
    re.compile(r"`+([^`]+?)`+"),  # inline code
)
# Emoji blocks (Unicode 15.1 emoji-data): pictographs, symbols and flags U+1F000-1FAFF (incl.
# skin tones), misc symbols and dingbats U+2600-27BF, stars/arrows U+2B00-2BFF, joiner U+200D,
# variation selectors U+FE00-FE0F, keycap U+20E3, tag characters U+E0020-E007F.
_EMOJI: Final = re.compile(
    "[\U0001f000-\U0001faff\u2600-\u27bf\u2b00-\u2bff\u200d\ufe00-\ufe0f\u20e3"
    "\U000e0020-\U000e007f]+"
)
# Space left before punctuation by a dropped emoji or mention ("great job 🎉!").
_SPACE_BEFORE_STOP: Final = re.compile(r"\s+(?=[.,!?;:\u2026](?:\s|$))")
_STOP: Final = (".", "!", "?", "…", ":", ";", ",")

# Words ending in "." that rarely end a sentence (lower-cased, with their dots).
_ABBREVIATIONS: Final = frozenset(
    {
        "mr.", "mrs.", "ms.", "dr.", "prof.", "sr.", "jr.", "st.", "mt.", "vs.", "e.g.", "i.e.",
        "cf.", "approx.", "no.", "nos.", "fig.", "inc.", "ltd.", "co.", "corp.", "dept.",
        "capt.", "gen.", "lt.", "col.", "sgt.", "rev.", "hon.", "gov.", "sen.", "rep.", "est.",
        "vol.", "ch.", "p.", "pp.", "ft.", "a.m.", "p.m.", "u.s.", "u.k.",
    }
)  # fmt: skip
# Closing quotes/brackets after the stop belong to the sentence (U+201D, U+2019: curly quotes).
_BOUNDARY: Final = re.compile("[.!?\u2026]+[\"'\u201d\u2019)\\]]*(?=\\s)|\n")
_INITIAL: Final = re.compile(r"^[A-Z]\.$")
# Commas and the like, and dashes between spaces (U+2014 em dash, U+2013 en dash).
_PAUSE: Final = re.compile("[,;:\u2014\u2013](?=\\s)|\\s[-\u2014\u2013]\\s")
_SPEAKABLE: Final = re.compile(r"\w")


def clean_for_speech(text: str, *, names: Mapping[int, str] = _NO_NAMES) -> str:
    """``text`` with Discord markup turned into words a TTS engine can read (see module doc).

    ``names`` maps user, role and channel ids to display names. Returns "" when nothing
    speakable is left (a message of only emoji or links still says "a link").
    """
    text = _FENCE.sub(lambda m: "\n" + m.group(1) + "\n", text)
    text = _MASKED_LINK.sub(r"\1", text)
    text = _ANGLE_URL.sub("a link", text)
    text = _BARE_URL.sub("a link", text)
    text = _USER.sub(lambda m: names.get(int(m.group(1)), "someone"), text)
    text = _ROLE.sub(lambda m: names.get(int(m.group(1)), "a role"), text)
    text = _CHANNEL.sub(lambda m: names.get(int(m.group(1)), "a channel"), text)
    text = _CUSTOM_EMOJI.sub("", text)
    text = _COMMAND.sub(r"\1", text)
    text = _TIMESTAMP.sub("a time", text)
    text = _HEADER.sub("", text)
    text = _QUOTE.sub("", text)
    text = _LIST.sub("", text)
    for pattern in _INLINE:
        text = pattern.sub(r"\1", text)
    text = _EMOJI.sub("", text)
    text = _SPACE_BEFORE_STOP.sub("", text)
    lines = [" ".join(line.split()) for line in text.splitlines()]
    lines = [line for line in lines if line]
    if len(lines) > 1:
        lines = [line if line.endswith(_STOP) else line + "." for line in lines]
    return " ".join(lines)


def _is_boundary(text: str, match: re.Match[str]) -> bool:
    if match.group() == "\n":
        return True
    rest = text[match.end() :].lstrip()
    if rest[:1].islower():
        return False
    if match.group().startswith("."):
        word = text[: match.start() + 1].rsplit(None, 1)[-1]
        if word.lower().lstrip("(\"'") in _ABBREVIATIONS or _INITIAL.match(word):
            return False
    return True


def _hard_split(sentence: str, max_chars: int) -> list[str]:
    pieces: list[str] = []
    while len(sentence) > max_chars:
        window = sentence[: max_chars + 1]
        pauses = [m.end() for m in _PAUSE.finditer(window) if m.end() <= max_chars]
        # A pause too near the start would leave a tiny first piece: prefer a space then.
        if pauses and pauses[-1] >= max_chars // 3:
            cut = pauses[-1]
        elif (space := window.rfind(" ")) > 0:
            cut = space
        else:
            cut = max_chars
        pieces.append(sentence[:cut].strip())
        sentence = sentence[cut:].strip()
    pieces.append(sentence)
    return pieces


def split_sentences(text: str, *, max_chars: int = 300) -> list[str]:
    """``text`` cut into sentences of at most ``max_chars`` characters, in order.

    Whitespace inside each is collapsed; pieces with nothing to say (no letters or digits, as
    a lone "...") are dropped. Raises `ValueError` if ``max_chars < 1``.
    """
    if max_chars < 1:
        raise ValueError(f"max_chars must be positive, got {max_chars}")
    sentences: list[str] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        if _is_boundary(text, match):
            sentences.append(text[start : match.end()])
            start = match.end()
    sentences.append(text[start:])
    out: list[str] = []
    for raw in sentences:
        sentence = " ".join(raw.split())
        if _SPEAKABLE.search(sentence):
            out.extend(_hard_split(sentence, max_chars))
    return out
