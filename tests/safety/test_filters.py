"""Word and pattern lists: what they catch, what they leave alone, and that no pattern can make
matching slow."""

from __future__ import annotations

import random
import re
import time
from pathlib import Path

import pytest

from causette.errors import ConfigError
from causette.safety import filters
from causette.safety.filters import FilterAction, TextFilter, normalize, word_form


@pytest.fixture(scope="module")
def builtin() -> TextFilter:
    return TextFilter.load([])


@pytest.mark.parametrize(
    ("text", "action", "category"),
    [
        ("sale arabe", FilterAction.BLOCK, "hate"),
        ("SALE   ARABE !!", FilterAction.BLOCK, "hate"),
        ("s@le ar@be", FilterAction.BLOCK, "hate"),
        ("ｓａｌｅ ａｒａｂｅ", FilterAction.BLOCK, "hate"),  # full-width look-alikes
        ("bougnoooule", FilterAction.BLOCK, "hate"),  # repeated letters
        ("n1gg3r", FilterAction.BLOCK, "hate"),  # leet
        ("pthc", FilterAction.BLOCK, "child_safety"),
        ("envoie un coupon PCS", FilterAction.HOLD, "spam_scam"),
        ("paye par Western-Union", FilterAction.HOLD, "spam_scam"),
        ("gagnez 500 euros par jour", FilterAction.HOLD, "spam_scam"),
        ("vends beuh pas cher", FilterAction.FLAG, "drugs"),
        ("tu es seule chez toi ?", FilterAction.FLAG, "child_safety"),
        ("150 euros la passe", FilterAction.FLAG, "trafficking"),
    ],
)
def test_the_starter_lists_catch(
    builtin: TextFilter, text: str, action: FilterAction, category: str
) -> None:
    result = builtin.check(text)
    assert result.action == action
    assert category in result.categories


@pytest.mark.parametrize(
    "text",
    [
        "Bonjour à tous, ça va ?",
        "je reviens du Niger",  # not "nigger": runs of two letters are kept
        "le négociant est arabe et fier de l'être",
        "un coca et une coke zero",
        "Achetez ici !",
        "rdv au café à 18 h",
        "j'ai 150 euros de courses",
    ],
)
def test_ordinary_talk_passes(builtin: TextFilter, text: str) -> None:
    assert builtin.check(text).action is None


def test_normalisation_keeps_digits_for_patterns_and_folds_them_for_words() -> None:
    assert normalize("Gagnez 500 € !") == "gagnez 500"
    assert word_form("Gagnez 500 € !") == "gagnez soo"
    assert word_form("Ça   VA ?") == "ca va"


def test_an_operator_list_adds_rules_and_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "words.txt"
    path.write_text("# mes règles\nhold spam_scam word:promo exclusive\n")
    extra = TextFilter.load([path], builtin=False)
    assert len(extra) == 1
    assert extra.check("Une PROMO exclusive !").action == FilterAction.HOLD
    for line, expected in [
        ("ban hate word:x", "unknown action"),
        ("block nope word:x", "unknown category"),
        ("block hate x", "word:… or regex:…"),
        ("block hate", "expected"),
        ("block hate regex:(?<=a)b", "invalid RE2"),  # lookbehind: not linear-time
        ("block hate word:!!!", "no letter"),
    ]:
        path.write_text(f"# ok\n{line}\n")
        with pytest.raises(ConfigError) as info:
            TextFilter.load([path], builtin=False)
        message = info.value.message("en")
        assert f"{path}:2" in message
        assert expected in message
    with pytest.raises(ConfigError, match="config_invalid"):
        TextFilter.load([tmp_path / "missing.txt"], builtin=False)


def test_no_pattern_can_make_matching_slow(tmp_path: Path) -> None:
    # Nested quantifiers: exponential with a backtracking engine on a near-miss, linear with
    # RE2. 20,000 words must take milliseconds, not centuries.
    path = tmp_path / "evil.txt"
    path.write_text("flag other regex:^([a-z]+ ?)*$\n")
    evil = TextFilter.load([path], builtin=False)
    text = "ab " * 20_000 + "1"
    started = time.perf_counter()
    assert evil.check(text).action is None
    assert time.perf_counter() - started < 1.0


def test_the_ascii_shortcut_cleans_like_the_expressions() -> None:
    # ASCII text skips the Unicode-aware substitution; the result must be the same.
    def reference(folded: str) -> str:
        spaced = re.sub(r"[\W_]+", " ", folded)
        return " ".join(re.sub(r"([^\W\d_])\1{2,}", r"\1", spaced).split())

    rng = random.Random(5)
    alphabet = "aaabbl01__--  ..!?@$|'\"\t\nxyz"
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        assert filters._clean(text) == reference(text), text
