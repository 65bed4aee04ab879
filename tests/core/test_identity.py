"""Message text rules and pseudonym keys (pure functions)."""

from __future__ import annotations

import sys
import unicodedata

import pytest

from causette import errors
from causette.core import identity
from causette.core.identity import check_message_text, is_reserved, pseudonym_key


def refusal(text: str, max_chars: int = 1000) -> tuple[str, str | None]:
    with pytest.raises(errors.CausetteError) as info:
        check_message_text(text, max_chars)
    return info.value.code, info.value.field


@pytest.mark.parametrize("text", ["", " ", "\n\n", "\t \n ", "\u3000"])
def test_empty_or_blank_text_is_refused(text: str) -> None:
    assert refusal(text) == ("message_empty", "text")


def test_text_is_trimmed() -> None:
    assert check_message_text("  Bonjour !\n", 1000) == "Bonjour !"


def test_the_length_limit_is_exact() -> None:
    assert check_message_text("a" * 50, 50) == "a" * 50
    assert refusal("a" * 51, 50) == ("message_too_long", "text")
    # Counted after trimming, in characters (not bytes).
    assert check_message_text("  " + "é" * 50 + "  ", 50) == "é" * 50


def test_too_long_message_says_both_lengths() -> None:
    with pytest.raises(errors.MessageTooLong) as info:
        check_message_text("a" * 51, 50)
    assert "51" in info.value.message("fr")
    assert "50" in info.value.message("en")


@pytest.mark.parametrize(
    "ch",
    [
        "\x00",
        "\x07",  # bell
        "\x1b",  # escape
        "\r",
        "\x7f",  # delete
        "\x85",  # next line (C1)
        "\u202e",  # right-to-left override
        "\u202a",  # left-to-right embedding
        "\u2067",  # right-to-left isolate
        "\u2069",  # pop directional isolate
        "\ue000",  # private use
    ],
)
def test_control_and_bidi_characters_are_refused(ch: str) -> None:
    assert refusal(f"avant{ch}après") == ("message_forbidden_chars", "text")


def test_the_forbidden_class_is_exactly_the_rule_on_every_code_point() -> None:
    # The rule as written: bidi controls, Cc but tab and newline, Cs, Co. The check itself is
    # one precomputed character class; it must not drift from the rule.
    def forbidden(ch: str) -> bool:
        category = unicodedata.category(ch)
        return (
            ch in identity._BIDI_CONTROLS
            or (category == "Cc" and ch not in identity._MESSAGE_ALLOWED_CONTROLS)
            or category in ("Cs", "Co")
        )

    every = "".join(map(chr, range(sys.maxunicode + 1)))
    expected = [ch for ch in every if forbidden(ch)]
    assert identity._MESSAGE_FORBIDDEN.findall(every) == expected


def test_newlines_and_tabs_are_kept() -> None:
    assert check_message_text("ligne 1\nligne 2\tcolonne", 1000) == "ligne 1\nligne 2\tcolonne"


@pytest.mark.parametrize(
    "text",
    [
        "Salut 😀",
        "👩‍💻 au travail",  # ZWJ sequence
        "👨‍👩‍👧‍👦",
        "🇫🇷 allez !",  # regional indicators
        "👍🏽",  # skin tone modifier
        "❤️",  # variation selector
        "مرحبا",  # right-to-left script without override characters
        "https://example.org/a?b=c&d=<e>",
    ],
)
def test_emoji_and_ordinary_text_are_accepted(text: str) -> None:
    assert check_message_text(text, 1000) == text


def test_look_alike_pseudonyms_share_a_key() -> None:
    key = pseudonym_key("Camille")
    for name in [
        "CAMILLE",
        "Cämille",
        "Cаmille",
        "Cam-ille",
        "Ca.mi_lle",
        "camiIle",
        "ＣＡＭＩＬＬＥ",
    ]:
        assert pseudonym_key(name) == key, name
    assert pseudonym_key("Camilla") != key
    assert pseudonym_key("Camile") != key


def test_reserved_names_compare_by_key() -> None:
    assert is_reserved(pseudonym_key("ADMIN"), ["admin"], [])
    assert is_reserved(pseudonym_key("Аdmin"), ["admin"], [])  # Cyrillic А
    assert is_reserved(pseudonym_key("moderatrice"), [], ["moderat"])
    assert not is_reserved(pseudonym_key("Madmin"), ["admin"], ["admin"])
