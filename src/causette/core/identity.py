"""Pseudonym and message text rules (pure functions).

Pseudonym: NFKC-normalised, 2–20 characters, letters / marks / digits and ``- _ . '`` only.
Uniqueness uses a *key*: case-folded, accents removed, look-alike characters folded to one
representative (Unicode confusables, via the ``confusable_homoglyphs`` data) and separators
dropped, so ``Camille``, ``CAMILLE``, ``Cämille``, ``Cаmille`` (Cyrillic а) and ``Cam-ille`` share
one key.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable
from functools import cache
from importlib import resources

from causette import errors

PSEUDONYM_MIN = 2
PSEUDONYM_MAX = 20
_PSEUDONYM_PUNCT = frozenset("-_.'")
_ALLOWED_CATEGORIES = ("L", "M", "N")  # letters, marks, numbers (first letter of the category)

# Characters that reorder or hide text: refused in messages (and in pseudonyms, where every
# format character is refused anyway).
_BIDI_CONTROLS = frozenset(
    "\u202a\u202b\u202c\u202d\u202e"  # embeddings and overrides
    "\u2066\u2067\u2068\u2069"  # isolates
)
_MESSAGE_ALLOWED_CONTROLS = frozenset("\n\t")


# What a message may not hold, as one character class (one C-speed scan): the bidi controls
# above, control characters (Cc) but tab and newline, surrogates (Cs) and private use (Co).
# These categories are fixed by Unicode's stability policy; a test checks every code point.
_MESSAGE_FORBIDDEN = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069"
    "\ud800-\uf8ff\U000f0000-\U000ffffd\U00100000-\U0010fffd]"
)


def normalize_pseudonym(raw: str) -> str:
    """NFKC, surrounding whitespace removed; raise the first rule the result breaks."""
    name = unicodedata.normalize("NFKC", raw).strip()
    if not PSEUDONYM_MIN <= len(name) <= PSEUDONYM_MAX:
        raise errors.PseudonymLength(field="pseudonym", min=PSEUDONYM_MIN, max=PSEUDONYM_MAX)
    has_alnum = False
    for ch in name:
        if ch in _PSEUDONYM_PUNCT:
            continue
        category = unicodedata.category(ch)
        if category[0] not in _ALLOWED_CATEGORIES or category == "No":
            # "No" (other numbers: ², ½, circled digits…) are look-alike bait; refuse them.
            raise errors.PseudonymChars(field="pseudonym")
        if category[0] in ("L", "N"):
            has_alnum = True
    if not has_alnum:
        raise errors.PseudonymChars(field="pseudonym")
    return name


def _rank(c: str) -> tuple[int, int]:
    """Prefer simple characters as prototypes: ASCII lowercase, ASCII, then code point order."""
    if c.isascii() and c.islower():
        return (0, ord(c))
    if c.isascii():
        return (1, ord(c))
    return (2, ord(c))


@cache
def _prototypes() -> dict[str, str]:
    """Map a character to the prototype it can be confused with (one step, as in UTS #39).

    The data lists, for a prototype, all characters confusable with it, and for every other
    character a single entry: its prototype. When two characters list only each other, the
    simpler one (``_rank``) is the prototype.
    """
    with resources.files("confusable_homoglyphs").joinpath("confusables.json").open("rb") as fh:
        data: dict[str, list[dict[str, str]]] = json.load(fh)

    def clean(c: str) -> str:
        return c.strip("\u200e")  # the data wraps right-to-left characters in LRM marks

    mapping: dict[str, str] = {}
    for char, homoglyphs in data.items():
        if len(char) != 1 or len(homoglyphs) != 1:
            continue
        target = clean(homoglyphs[0]["c"])
        if len(target) != 1 or target == char:
            continue
        back = data.get(target, [])
        if len(back) == 1 and clean(back[0]["c"]) == char and _rank(char) < _rank(target):
            continue  # ``char`` is the simpler of a mutual pair: it is the prototype
        mapping[char] = target
    return mapping


def skeleton_text(text: str) -> str:
    """Replace each character by its look-alike prototype (e.g. Cyrillic "а" by "a")."""
    protos = _prototypes()
    return "".join(protos.get(c, c) for c in text)


def _strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))


def pseudonym_key(name: str) -> str:
    """The uniqueness key of a (normalised) pseudonym.

    Case-folded, accents removed, each character replaced by its look-alike prototype, then
    case-folded again; separators are dropped. Case folding hides one classic impersonation
    (capital ``I`` for small ``l``: "AIice"), so ``l`` is folded to ``i`` as well.
    """
    text = _strip_accents(unicodedata.normalize("NFKC", name).casefold())
    text = _strip_accents(skeleton_text(text).casefold())
    text = skeleton_text(text).replace("l", "i")
    return "".join(c for c in text if c not in _PSEUDONYM_PUNCT)


def is_reserved(key: str, reserved: Iterable[str], prefixes: Iterable[str]) -> bool:
    """True when the key equals a reserved name's key or starts with a reserved prefix's key."""
    names, starts = _reserved_keys(tuple(reserved), tuple(prefixes))
    return key in names or key.startswith(starts)


@cache
def _reserved_keys(
    reserved: tuple[str, ...], prefixes: tuple[str, ...]
) -> tuple[frozenset[str], tuple[str, ...]]:
    """The keys of the configured names, worked out once (not at every entry)."""
    return frozenset(pseudonym_key(r) for r in reserved), tuple(pseudonym_key(p) for p in prefixes)


def check_message_text(raw: str, max_chars: int) -> str:
    """The text to store (surrounding whitespace removed) or the rule it breaks."""
    text = raw.strip()
    if not text:
        raise errors.MessageEmpty(field="text")
    if len(text) > max_chars:
        raise errors.MessageTooLong(field="text", length=len(text), max=max_chars)
    if _MESSAGE_FORBIDDEN.search(text):
        raise errors.MessageForbiddenChars(field="text")
    return text
