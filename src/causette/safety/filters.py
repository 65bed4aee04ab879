"""Word and pattern lists, matched in linear time.

A list is a UTF-8 text file, one rule a line::

    # comment
    block  hate       word:sale race
    hold   spam_scam  word:western union
    flag   drugs      regex:\\b(?:vends|vend)\\s+(?:beuh|shit)\\b

- action: ``block`` (the message is refused, the person is told why), ``hold`` (kept for a
  moderator to release or refuse, the person is told), ``flag`` (delivered, and a case is opened
  for moderators);
- category: one of the report categories (``causette.safety.categories``);
- ``word:`` a word or phrase, matched on whole words; ``regex:`` an RE2 expression (no
  backreferences or lookarounds: RE2 guarantees linear time, so no pattern can hang the server).

Texts are normalised before matching: case folded, accents removed, non-ASCII look-alike
characters replaced by their prototype (Cyrillic "а" by "a"), everything but letters and digits
turned into single spaces, and runs of three or more of one letter collapsed ("coooonnard" →
"connard"; runs of two are kept, or "nigger" would become "Niger"). ``regex:`` rules see that
text, digits intact. ``word:`` rules and the text are also leet-folded the same way ("0" → "o",
"1", "l" and "!" → "i", "3" → "e", "@" → "a", "$" → "s"…), so "n1gg3r" matches a word rule.
"""

from __future__ import annotations

import operator
import re
import re._constants as sre  # type: ignore[import-not-found]  # (no stubs: sre_* were renamed)
import re._parser as sre_parse  # type: ignore[import-not-found]
import unicodedata
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum
from importlib import resources
from pathlib import Path
from typing import Any

import ahocorasick
import re2

from causette.core.identity import skeleton_text
from causette.errors import ConfigError
from causette.safety.categories import CATEGORIES


class FilterAction(IntEnum):
    FLAG = 1
    HOLD = 2
    BLOCK = 3


@dataclass(frozen=True, slots=True)
class Rule:
    action: FilterAction
    category: str
    kind: str  # "word" or "regex"
    pattern: str
    source: str  # file:line, for moderators and operators


@dataclass(frozen=True, slots=True)
class FilterResult:
    """What the lists say about a text: the strongest action and every rule that matched."""

    action: FilterAction | None
    rules: tuple[Rule, ...]

    @property
    def categories(self) -> list[str]:
        return sorted({r.category for r in self.rules})


_REPEATS = re.compile(r"([^\W\d_])\1{2,}")  # a letter three times or more
_FIRST_GROUP = operator.itemgetter(1)  # a run becomes its letter: r"\1" without a template per call
_NOT_ALNUM = re.compile(r"[\W_]+")  # what str.isalnum() refuses (\w is isalnum() plus "_")
# Leet and look-alike spellings folded for whole-word matching only (regexes keep digits).
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "l": "i"})
# Symbols stand for letters only inside a word ("s@le"), not as punctuation ("ici !").
_LEET_SYMBOLS = re.compile(r"(?<=[a-z0-9])[@$!|](?=[a-z0-9])")
_SYMBOL_LETTER = {"@": "a", "$": "s", "!": "i", "|": "i"}


def _fold(text: str) -> str:
    """Case folded, accents removed, non-ASCII look-alikes replaced by their prototype."""
    if text.isascii():  # the common case: no accents, no look-alikes, NFKC changes nothing
        return text.lower()
    folded = unicodedata.normalize("NFKC", text).casefold()
    folded = "".join(
        c for c in unicodedata.normalize("NFD", folded) if not unicodedata.combining(c)
    )
    if not folded.isascii():
        folded = "".join(
            skeleton_text(c) if not c.isascii() and c.isalpha() else c for c in folded
        ).casefold()
    return folded


# ASCII text (the common case): what _NOT_ALNUM replaces, as a translation (C speed)
_ASCII_NOT_ALNUM = str.maketrans({c: " " for c in map(chr, range(128)) if not c.isalnum()})


def _clean(folded: str) -> str:
    spaced = folded.translate(_ASCII_NOT_ALNUM) if folded.isascii() else _NOT_ALNUM.sub(" ", folded)
    return " ".join(_REPEATS.sub(_FIRST_GROUP, spaced).split())


def _symbol_letters(folded: str) -> str:
    return _LEET_SYMBOLS.sub(lambda m: _SYMBOL_LETTER[m.group()], folded)


def _normalize_any(text: str) -> str:
    return _clean(_fold(text))


def _word_form_any(text: str) -> str:
    return _clean(_symbol_letters(_fold(text)).translate(_LEET))


# Both forms are computed for every message (twice ~10 us per chat line with the steps above):
# ASCII text, the common case, takes one byte table for folding case, leet and punctuation at
# once, and a letter-only expression for runs. The tests hold these to the general path.
def _ascii_table(leet: bool) -> bytes:
    table = bytearray(range(256))
    for code in range(128):
        char = chr(code).lower()
        if leet:
            char = char.translate(_LEET)
        table[code] = ord(char) if char.isalnum() else 0x20
    return bytes(table)


_ASCII_NORMAL = _ascii_table(leet=False)
_ASCII_WORDS = _ascii_table(leet=True)
_ASCII_REPEATS = re.compile(r"([a-z])\1\1+")  # _REPEATS on lowercase ASCII


def _clean_ascii(text: str, table: bytes) -> str:
    spaced = text.encode("ascii").translate(table).decode("ascii")
    return " ".join(_ASCII_REPEATS.sub(_FIRST_GROUP, spaced).split())


def normalize(text: str) -> str:
    """The form ``regex:`` rules are matched against (see the module docstring)."""
    if text.isascii():
        return _clean_ascii(text, _ASCII_NORMAL)
    return _normalize_any(text)


def word_form(text: str) -> str:
    """The form ``word:`` rules and texts are compared in: ``normalize`` plus leet folding."""
    if text.isascii():
        if "@" in text or "$" in text or "!" in text or "|" in text:
            text = _symbol_letters(text.lower())
        return _clean_ascii(text, _ASCII_WORDS)
    return _word_form_any(text)


# Flags that do not change which strings a pattern's literals match.
_PLAIN_FLAGS = sre.SRE_FLAG_UNICODE | sre.SRE_FLAG_DOTALL | sre.SRE_FLAG_MULTILINE
_REPEATS_OPS = (sre.MAX_REPEAT, sre.MIN_REPEAT)


def required_literals(pattern: str) -> frozenset[str] | None:
    """Strings of which every match of ``pattern`` contains at least one, the longest such set
    found; None when none is known (the pattern may match without any particular string).

    Read with Python's own regular-expression parser, whose syntax RE2's is close to. Anything
    it reads otherwise than RE2 would (an error, a warning such as "possible nested set" for
    ``[[:alpha:]]``, a flag such as case folding) gives None, which only means that RE2 must
    always be asked: the set can only spare RE2 texts that it could not match."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            parsed = sre_parse.parse(pattern)
        if parsed.state.flags & ~_PLAIN_FLAGS:
            return None
        return _needs(list(parsed))
    except Exception:
        return None


#: The most strings an exact part of a pattern may stand for (``_exact``).
_MAX_EXACT = 16


def _joined(left: frozenset[str], right: frozenset[str]) -> frozenset[str] | None:
    out = frozenset(a + b for a in left for b in right)
    return out if len(out) <= _MAX_EXACT else None


def _union(parts: Iterable[frozenset[str] | None]) -> frozenset[str] | None:
    """Every string of the parts (the alternatives of a branch); None if one part is None."""
    out: frozenset[str] = frozenset()
    for part in parts:
        if part is None:
            return None
        out |= part
    return out


def _strength(strings: frozenset[str]) -> tuple[int, int]:
    """How well a set of required strings sorts texts out: longer first, then fewer."""
    return min(map(len, strings)), -len(strings)


def _exact(items: list[tuple[Any, Any]]) -> frozenset[str] | None:
    """Every string a sequence can match, when they are few and known; else None."""
    out: frozenset[str] | None = frozenset(("",))
    for op, arg in items:
        part = _exact_part(op, arg)
        if part is None or out is None:
            return None
        out = _joined(out, part)
    return out


def _exact_part(op: Any, arg: Any) -> frozenset[str] | None:
    if op is sre.LITERAL:
        return frozenset((chr(arg),))
    if op is sre.AT:
        return frozenset(("",))  # an anchor matches no character
    if op is sre.SUBPATTERN:
        _group, add_flags, del_flags, inner = arg
        return None if add_flags or del_flags else _exact(list(inner))
    if op is sre.BRANCH:
        union = _union(_exact(list(branch)) for branch in arg[1])
        return union if union is not None and len(union) <= _MAX_EXACT else None
    if op is sre.IN:
        if all(item_op is sre.LITERAL for item_op, _ in arg) and len(arg) <= _MAX_EXACT:
            return frozenset(chr(value) for _, value in arg)
        return None
    if op in _REPEATS_OPS:
        low, high, inner = arg
        once = _exact(list(inner))
        if once is None or (low, high) not in ((0, 1), (1, 1)):
            return None
        return once | {""} if low == 0 else once
    return None


def _needs(items: list[tuple[Any, Any]]) -> frozenset[str] | None:
    """``required_literals`` of a sequence: the best of what its parts each require, where a
    run of exact parts requires one of their concatenations."""
    best: frozenset[str] | None = None

    def consider(found: frozenset[str] | None) -> None:
        nonlocal best
        if found and "" not in found and (best is None or _strength(found) > _strength(best)):
            best = found

    run = frozenset(("",))  # what the current run of exact parts can match
    for op, arg in items:
        part = _exact_part(op, arg)
        if part is not None:
            joined = _joined(run, part)
            if joined is None:
                consider(run)
                run = part
            else:
                run = joined
            continue
        consider(run)
        run = frozenset(("",))
        if op is sre.SUBPATTERN:
            _group, add_flags, del_flags, inner = arg
            if not add_flags and not del_flags:
                consider(_needs(list(inner)))
        elif op is sre.BRANCH:
            consider(_union(_needs(list(branch)) for branch in arg[1]))
        elif op in _REPEATS_OPS:
            low, _high, inner = arg
            if low >= 1:
                consider(_needs(list(inner)))
        # Anything else (a class, a category, any character) needs no particular string.
    consider(run)
    return best


class TextFilter:
    def __init__(self, rules: Iterable[Rule]) -> None:
        self.rules: tuple[Rule, ...] = tuple(rules)
        self._words: ahocorasick.Automaton | None = None
        words = [r for r in self.rules if r.kind == "word"]
        if words:
            automaton = ahocorasick.Automaton()
            grouped: dict[str, list[Rule]] = {}
            for rule in words:
                key = f" {word_form(rule.pattern)} "
                grouped.setdefault(key, []).append(rule)
            for key, group in grouped.items():
                automaton.add_word(key, tuple(group))
            automaton.make_automaton()
            self._words = automaton
        options = re2.Options()
        options.max_mem = 8 << 20
        # Every expression in one RE2 set: one linear pass over the text finds all that match.
        self._regex_rules: list[Rule] = []
        self._regex_set: Any = None
        self._regex_gate: ahocorasick.Automaton | None = None
        regex_set = re2.Set.SearchSet(options)
        for rule in self.rules:
            if rule.kind == "regex":
                try:
                    re2.compile(rule.pattern, options)  # for its error message
                    regex_set.Add(rule.pattern)
                except re2.error as exc:
                    raise ConfigError(
                        detail=f"{rule.source}: invalid RE2 expression ({exc})"
                    ) from exc
                self._regex_rules.append(rule)
        if self._regex_rules:
            try:
                regex_set.Compile()
            except re2.error as exc:
                raise ConfigError(
                    detail="word lists: the expressions are too large together"
                ) from exc
            self._regex_set = regex_set
            self._regex_gate = self._gate(self._regex_rules)

    @staticmethod
    def _gate(rules: list[Rule]) -> ahocorasick.Automaton | None:
        """An automaton of strings one of which a text needs before any expression can match
        it: RE2 releases the GIL for every match, and on the message path each release let the
        SQLite worker's thread take the GIL from the event loop for up to the switch interval
        (decision 11). Most texts contain none of them and never reach RE2. None: RE2 is always
        asked (some expression requires no particular string)."""
        strings: set[str] = set()
        for rule in rules:
            needs = required_literals(rule.pattern)
            if needs is None:
                return None
            strings |= needs
        gate = ahocorasick.Automaton()
        for string in strings:
            gate.add_word(string, string)
        gate.make_automaton()
        return gate

    def __len__(self) -> int:
        return len(self.rules)

    def check(self, text: str, words: str | None = None) -> FilterResult:
        """``words``: ``word_form(text)`` when the caller already has it."""
        matched: list[Rule] = []
        if self._words is not None:
            if words is None:
                words = word_form(text)
            if words:
                for _end, group in self._words.iter(f" {words} "):
                    matched.extend(group)
        if self._regex_set is not None:
            normal = normalize(text)
            gate = self._regex_gate
            if gate is None or next(gate.iter(normal), None) is not None:
                hits = self._regex_set.Match(normal)
                if hits:
                    matched.extend(self._regex_rules[i] for i in sorted(hits))
        if not matched:
            return FilterResult(None, ())
        unique = tuple(dict.fromkeys(matched))
        return FilterResult(max(r.action for r in unique), unique)

    @classmethod
    def parse(cls, lines: Iterable[str], source: str) -> list[Rule]:
        rules: list[Rule] = []
        for number, raw in enumerate(lines, start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            where = f"{source}:{number}"
            parts = line.split(None, 2)
            if len(parts) != 3:
                raise ConfigError(detail=f"{where}: expected 'action category kind:pattern'")
            action_name, category, spec = parts
            try:
                action = FilterAction[action_name.upper()]
            except KeyError:
                raise ConfigError(
                    detail=f"{where}: unknown action {action_name!r} (block, hold or flag)"
                ) from None
            if category not in CATEGORIES:
                raise ConfigError(
                    detail=f"{where}: unknown category {category!r} ({', '.join(CATEGORIES)})"
                )
            kind, sep, pattern = spec.partition(":")
            if not sep or kind not in ("word", "regex") or not pattern.strip():
                raise ConfigError(detail=f"{where}: the pattern must be word:… or regex:…")
            pattern = pattern.strip()
            if kind == "word" and not word_form(pattern):
                raise ConfigError(detail=f"{where}: the word has no letter or digit")
            rules.append(Rule(action, category, kind, pattern, where))
        return rules

    @classmethod
    def load(cls, paths: Iterable[str | Path], *, builtin: bool = True) -> TextFilter:
        """The built-in starter lists (French and English) and the operator's files."""
        rules: list[Rule] = []
        if builtin:
            folder = resources.files("causette").joinpath("data", "wordlists")
            for name in ("fr.txt", "en.txt"):
                text = folder.joinpath(name).read_text("utf-8")
                rules.extend(cls.parse(text.splitlines(), f"builtin/{name}"))
        for path in paths:
            try:
                text = Path(path).read_text("utf-8")
            except OSError as exc:
                raise ConfigError(detail=f"word list {path}: {exc.strerror}") from exc
            rules.extend(cls.parse(text.splitlines(), str(path)))
        return cls(rules)
